// Every page type: axe-core finds no serious or critical accessibility problem (light and dark),
// and, when MNODE_SCREENSHOTS names a folder, a full-page screenshot of each at desktop and
// phone sizes, light and dark, named like release-desktop-light.png.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FAILING, axe, describe } from './lib/axe.mjs';
import { PASSWORD, handle, launch, newContext, node, screenshotsDir } from './lib/env.mjs';
import { mediaFiles } from './lib/files.mjs';
import { Site, idOf } from './lib/pages.mjs';

let browser;
/** Session cookies of the people the pages are seen as: anon (none), user, owner. */
const sessions = { anon: undefined, user: undefined, owner: undefined };
/** [name, who, path] for each page type. */
let pages = [];

before(async () => {
  browser = await launch();
  // Node B: the other tests leave little there (random handles, markup from the escaping
  // test stay on A), so its pages make tidy screenshots.
  const b = node('B');
  const files = mediaFiles();

  // The node's owner posts, so the user's timeline has something on it.
  const ownerContext = await newContext(browser);
  const owner = new Site(await ownerContext.newPage(), b);
  await owner.logIn(b.owner, b.password);
  await owner.newPost('Welcome to this node: new music every Friday.');
  sessions.owner = await ownerContext.storageState();

  // A person with an artist, a release (edited once), a post, following the owner.
  const userContext = await newContext(browser);
  const user = new Site(await userContext.newPage(), b);
  await user.signUp(handle('listener'), PASSWORD);
  const artist = 'The Kitchen Band';
  const artistPath = await user.newArtist(artist);
  const releasePath = await user.newRelease({
    title: 'Home Recordings',
    artists: [artist],
    cover: files.cover,
    files: [files.track],
  });
  await user.open(`${releasePath}/edit`);
  await user.fill('Title', 'Home Recordings, Vol. 1');
  await user.press('Save');
  await user.arrives(releasePath, 'the release after editing');
  const postPath = await user.newPost('Recorded these in the kitchen last winter. The kettle is on track two.');
  await user.followAuthor(b.did);

  // Explore: the release's id is the CID of its first version; typed into the form.
  await user.open('/explore');
  await user.fill('CID', idOf(releasePath));
  await user.press('Explore');
  await user.arrives((p) => p.startsWith('/explore/'), 'the explorer page of the CID');
  await user.sees(user.page.getByText(/Signature: valid/), '"Signature: valid" for the signed record');
  const explorePath = user.path();
  sessions.user = await userContext.storageState();
  await ownerContext.close();
  await userContext.close();

  pages = [
    ['home', 'anon', '/'],
    ['signup', 'anon', '/signup'],
    ['login', 'anon', '/login'],
    ['timeline', 'user', '/'],
    ['account', 'user', '/account'],
    ['releases', 'user', '/art/releases'],
    ['artists', 'user', '/art/artists'],
    ['release-new', 'user', '/art/releases/new'],
    ['release-edit', 'user', `${releasePath}/edit`],
    ['release', 'user', releasePath],
    ['release-anon', 'anon', releasePath],
    ['history', 'user', `${releasePath}/history`],
    ['delete', 'user', `${releasePath}/delete`],
    ['artist', 'user', artistPath],
    ['post', 'user', postPath],
    ['post-new', 'user', '/social/posts/new'],
    ['author', 'user', `/authors/${b.did}`],
    ['following', 'user', '/following'],
    ['node', 'owner', '/node'],
    ['explore', 'user', '/explore'],
    ['explore-cid', 'user', explorePath],
  ];
});

after(async () => {
  await browser?.close();
});

/** A context seeing the pages as `who`, with `options` (viewport, colour scheme). */
async function contextFor(who, options) {
  return newContext(browser, { ...options, storageState: sessions[who] });
}

/** Opens each page of `who`; returns the problems (wrong status) found on the way. */
async function eachPage(who, options, fn) {
  const b = node('B');
  const context = await contextFor(who, options);
  const page = await context.newPage();
  const problems = [];
  for (const [name, as, path] of pages) {
    if (as !== who) continue;
    const res = await page.goto(b.url + path, { waitUntil: 'load' });
    if (res?.status() !== 200) {
      problems.push(`${name} (${path}) answered ${res?.status()}`);
      continue;
    }
    await fn(name, page, path);
  }
  await context.close();
  return problems;
}

test('no serious or critical accessibility violations on any page type (axe-core, light and dark)', { timeout: 300_000 }, async () => {
  const failing = [];
  const problems = [];
  for (const colorScheme of ['light', 'dark']) {
    for (const who of ['anon', 'user', 'owner']) {
      problems.push(
        ...(await eachPage(who, { colorScheme }, async (name, page) => {
          const violations = await axe(page);
          if (violations.length) console.log(describe(`${name} (${colorScheme})`, violations));
          for (const v of violations) {
            if (FAILING.has(v.impact)) failing.push(`${name} (${colorScheme}): ${v.id} [${v.impact}] at ${v.nodes.map((n) => n.target).join(', ')}`);
          }
        })),
      );
    }
  }
  assert.deepEqual(problems, [], 'every page type opens');
  assert.deepEqual(failing, [], 'serious or critical axe violations (details above)');
});

test('screenshots of every page type: desktop and phone, light and dark', { timeout: 600_000, skip: !screenshotsDir && 'MNODE_SCREENSHOTS is not set' }, async () => {
  mkdirSync(screenshotsDir, { recursive: true });
  const devices = {
    desktop: { viewport: { width: 1280, height: 800 } },
    phone: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 },
  };
  const problems = [];
  let count = 0;
  for (const [device, options] of Object.entries(devices)) {
    for (const colorScheme of ['light', 'dark']) {
      for (const who of ['anon', 'user', 'owner']) {
        problems.push(
          ...(await eachPage(who, { ...options, colorScheme }, async (name, page) => {
            await page.evaluate(() => document.fonts.ready);
            await page.screenshot({
              path: join(screenshotsDir, `${name}-${device}-${colorScheme}.png`),
              fullPage: true,
              animations: 'disabled',
            });
            count++;
          })),
        );
      }
    }
  }
  console.log(`# ${count} screenshots in ${screenshotsDir}`);
  assert.deepEqual(problems, [], 'every page type opens');
});
