// A group that co-edits: P makes a group with Q in it (New group, by the Groups link in the
// navigation), adds the node's owner and makes them an admin, is told why a stranger cannot be
// added (the form keeps what was typed), gives a new artist to the group with the New form's
// Owner select; Q, a member but not the author, edits the artist; P removes Q, who then has no
// Edit. P, the only owner, is told why there is no Leave group; Q may leave. axe-core finds no violation on the group pages at desktop and phone sizes, light and
// dark; with MNODE_SCREENSHOTS set each is saved as groups-<page>-<device>-<scheme>.png.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { axe, describe } from './lib/axe.mjs';
import { PASSWORD, handle, launch, newContext, node, screenshotsDir, unique } from './lib/env.mjs';
import { Site, isItem } from './lib/pages.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const devices = {
  desktop: { viewport: { width: 1280, height: 800 } },
  phone: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 },
};

/** The members table's row of `name` (a handle, shown as @handle). */
function row(site, name) {
  return site.page.getByRole('main').getByRole('row').filter({ hasText: name });
}

test('a group: make it, manage members, give it an artist, a member edits it', { timeout: 480_000 }, async () => {
  // Node B: the other tests leave it tidy, so its pages make good screenshots.
  const b = node('B');
  const contextP = await newContext(browser);
  const contextQ = await newContext(browser);
  const P = new Site(await contextP.newPage(), b);
  const Q = new Site(await contextQ.newPage(), b);
  const handleP = handle('lead');
  const handleQ = handle('player');
  await P.signUp(handleP, PASSWORD);
  await Q.signUp(handleQ, PASSWORD);
  /** [name, who, path] of each page, for axe and the screenshots. */
  const pages = [];

  // P finds Groups in the navigation and makes a group with Q in it.
  await P.open('/');
  await P.step('following "Groups" in the main navigation', () => P.nav().getByRole('link', { name: 'Groups', exact: true }).click());
  await P.seesTitle('Groups');
  await P.sees(P.page.getByText('You are in no group yet', { exact: false }), 'the empty state of "Your groups"');
  await P.follow('New group');
  await P.seesTitle('New group');
  const name = `Kitchen Band crew ${unique()}`;
  await P.fill('Name', name);
  await P.fill('Description', 'The people behind the Kitchen Band: we record at home and share the work.');
  await P.fill('Members', `@${handleQ}`);
  await P.press('Create group');
  await P.arrives(isItem('/groups/'), "the group's page");
  await P.seesTitle(name);
  const groupPath = P.path();
  const groupId = groupPath.split('/').pop();
  await P.sees(row(P, `@${handleQ}`).getByRole('cell', { name: 'member', exact: true }), `@${handleQ} as member`);
  await P.sees(row(P, `@${handleP}`).getByRole('cell', { name: 'owner', exact: true }), `@${handleP} as owner`);
  // P is its only owner: no Leave group, and why.
  await P.sees(P.page.getByText('You are the only owner: make someone else an owner before you leave.', { exact: false }), 'why the only owner cannot leave');
  assert.equal(await P.page.getByRole('main').getByRole('button', { name: 'Leave group', exact: true }).count(), 0, 'no Leave group for the only owner');

  // A stranger: the refusal is said next to Add member, what was typed kept.
  const stranger = `@nobody${unique()}`;
  await P.fill('Member', stranger);
  await P.step('choosing the role "admin"', () => P.field('Role').selectOption('admin'));
  await P.press('Add member');
  await P.sees(P.page.getByRole('alert').filter({ hasText: 'Not done:' }), 'the refusal next to Add member');
  assert.equal(await P.field('Member').inputValue(), stranger, 'what was typed is kept');
  assert.equal(await P.field('Role').inputValue(), 'admin', 'the role chosen is kept');

  // The node's owner is added as moderator, then made an admin.
  await P.open(groupPath);
  await P.fill('Member', b.owner);
  await P.step('choosing the role "moderator"', () => P.field('Role').selectOption('moderator'));
  await P.press('Add member');
  await P.arrives(groupPath, "the group's page after adding");
  const ownerRow = row(P, `@${b.owner}`);
  await P.sees(ownerRow.getByRole('cell', { name: 'moderator', exact: true }), `@${b.owner} as moderator`);
  await P.step(`choosing "admin" for @${b.owner}`, () => ownerRow.getByLabel(`Role of @${b.owner}`, { exact: true }).selectOption('admin'));
  await P.press(`Change role of @${b.owner}`, ownerRow);
  await P.sees(row(P, `@${b.owner}`).getByRole('cell', { name: 'admin', exact: true }), `@${b.owner} as admin`);
  pages.push(['group', 'P', groupPath]);

  // P makes an artist owned by the group, from the group's own link to New artist.
  await P.open('/art/artists/new');
  assert.equal(await P.field('Owner').locator('option:checked').textContent(), 'Just me', '"Just me" is the default');
  const artist = `The Kitchen Band ${unique()}`;
  await P.fill('Name', artist);
  await P.step(`choosing the group as Owner`, () => P.field('Owner').selectOption({ label: name }));
  pages.push(['artist-new', 'P', `/art/artists/new?owner=${groupId}`]);
  await P.press('Save');
  await P.arrives(isItem('/art/artists/'), "the artist's page");
  await P.seesTitle(artist);
  const artistPath = P.path();
  await P.sees(P.page.getByText('Owned by the group', { exact: false }), '"Owned by the group"');
  await P.sees(P.link(name), 'the link to the group');
  await P.open(groupPath);
  await P.sees(P.link(artist), "the artist among what the group owns");

  // Q, a member but not the author, sees Edit (no Delete) and edits it.
  await Q.open('/groups');
  await Q.sees(Q.page.getByRole('region', { name: 'Your groups' }).getByRole('link', { name }), 'the group among "Your groups"');
  await Q.open(groupPath);
  await Q.sees(Q.button('Leave group'), 'Leave group for a member');
  pages.push(['list', 'Q', '/groups']);
  await Q.open(artistPath);
  await Q.sees(Q.link('Edit').or(Q.button('Edit')), 'Edit for a member');
  assert.equal(await Q.page.getByRole('main').getByRole('button', { name: 'Delete', exact: true }).count(), 0, 'no Delete for a member');
  assert.equal(await Q.page.getByRole('main').getByRole('link', { name: 'Delete', exact: true }).count(), 0, 'no Delete for a member');
  pages.push(['artist', 'Q', artistPath]);
  await Q.follow('Edit');
  const renamed = `${artist} (live)`;
  await Q.fill('Name', renamed);
  await Q.press('Save');
  await Q.arrives(artistPath, "the artist's page after editing");
  await Q.seesTitle(renamed);
  await Q.sees(Q.page.getByText('Owned by the group', { exact: false }), 'still the group\'s');
  pages.push(['member', 'Q', groupPath]);
  pages.push(['new', 'P', '/groups/new']);

  // axe on every page, desktop and phone, light and dark, before anyone is removed.
  const sessions = { P: await contextP.storageState(), Q: await contextQ.storageState() };
  const failing = [];
  for (const [device, options] of Object.entries(devices)) {
    for (const colorScheme of ['light', 'dark']) {
      for (const who of ['P', 'Q']) {
        const context = await newContext(browser, { ...options, colorScheme, storageState: sessions[who] });
        const page = await context.newPage();
        for (const [pageName, as, path] of pages) {
          if (as !== who) continue;
          const res = await page.goto(b.url + path, { waitUntil: 'load' });
          assert.equal(res?.status(), 200, `${path} answered ${res?.status()}`);
          const violations = await axe(page);
          const label = `groups-${pageName} (${device}, ${colorScheme})`;
          if (violations.length) console.log(describe(label, violations));
          failing.push(...violations.map((v) => `${label}: ${v.id} [${v.impact}]`));
          if (screenshotsDir) {
            mkdirSync(screenshotsDir, { recursive: true });
            await page.evaluate(() => document.fonts.ready);
            await page.screenshot({ path: join(screenshotsDir, `groups-${pageName}-${device}-${colorScheme}.png`), fullPage: true, animations: 'disabled' });
          }
        }
        if (who === 'P') {
          // The New group form refused, as typed.
          await page.goto(`${b.url}/groups/new`, { waitUntil: 'load' });
          const site = new Site(page, b);
          await site.fill('Name', 'A group with a stranger');
          await site.fill('Members', `${stranger} admin`);
          await site.press('Create group');
          await site.sees(page.getByRole('alert'), 'the refusal of the New group form');
          assert.equal(await site.field('Members').inputValue(), `${stranger} admin`, 'what was typed is kept');
          const violations = await axe(page);
          const label = `groups-new-refused (${device}, ${colorScheme})`;
          if (violations.length) console.log(describe(label, violations));
          failing.push(...violations.map((v) => `${label}: ${v.id} [${v.impact}]`));
          if (screenshotsDir) {
            await page.screenshot({ path: join(screenshotsDir, `groups-new-refused-${device}-${colorScheme}.png`), fullPage: true, animations: 'disabled' });
          }
        }
        await context.close();
      }
    }
  }
  assert.deepEqual(failing, [], 'axe violations on the group pages (details above)');

  // P removes Q, who then has no Edit; Q's version stays.
  await P.open(groupPath);
  await P.press(`Remove @${handleQ}`, row(P, `@${handleQ}`));
  await P.arrives(groupPath, "the group's page after removing");
  await P.step(`waiting for @${handleQ}'s row to go`, () => row(P, `@${handleQ}`).waitFor({ state: 'detached' }));
  await Q.open(artistPath);
  await Q.seesTitle(renamed);
  assert.equal(await Q.page.getByRole('main').getByRole('link', { name: 'Edit', exact: true }).count(), 0, 'no Edit once removed');

  for (const c of [contextP, contextQ]) assert.deepEqual(c.pageErrors, [], 'no script errors');
  await contextP.close();
  await contextQ.close();
});
