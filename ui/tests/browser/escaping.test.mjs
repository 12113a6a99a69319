// What people type is shown as text, never run: a post and an artist name made of markup.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PASSWORD, handle, launch, newContext, node } from './lib/env.mjs';
import { Site, isItem } from './lib/pages.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const POST = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">';
const ARTIST = '<img src=x onerror="window.__xss=3">';

test('markup in a post and in an artist name is shown as text on their pages and in lists', { timeout: 240_000 }, async () => {
  const a = node('A');
  // bypassCSP: the pages' strict CSP would stop an injected script even if escaping failed;
  // without it, markup that reached the DOM would run here and set window.__xss.
  const context = await newContext(browser, { bypassCSP: true });
  const page = await context.newPage();
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
  const site = new Site(page, a);
  const me = handle();
  await site.signUp(me, PASSWORD);

  // Made through the forms; each page checked for a payload that ran before its text is read.
  await site.open('/social/posts/new');
  await site.fill('Text', POST);
  await site.press('Save');
  await site.arrives(isItem('/social/posts/'), "the new post's page");
  const postPath = site.path();
  await assertInert(page, postPath);
  await site.open('/art/artists/new');
  await site.fill('Name', ARTIST);
  await site.press('Save');
  await site.arrives(isItem('/art/artists/'), "the new artist's page");
  const artistPath = site.path();
  await assertInert(page, artistPath);
  await site.seesTitle(ARTIST);

  // The author's page lists both.
  await site.open(postPath);
  await site.step(`following the link to the author "${me}"`, () =>
    page.getByRole('link', { name: new RegExp(me) }).first().click(),
  );
  await site.arrives((p) => p.startsWith('/authors/'), 'my author page');
  const authorPath = site.path();

  const checks = [
    [postPath, [POST]],
    ['/social/posts', [POST]],
    [artistPath, [ARTIST]],
    ['/art/artists', [ARTIST]],
    [authorPath, [POST]],
  ];
  for (const [path, texts] of checks) {
    await site.open(path);
    for (const text of texts) {
      await site.sees(page.getByText(text), `the markup shown as text on ${path}: ${text}`);
    }
    await assertInert(page, path);
  }

  // Logged out, the home page shows what is new on the node, the post among it.
  const anon = await newContext(browser, { bypassCSP: true });
  const anonPage = await anon.newPage();
  const home = new Site(anonPage, a);
  await home.open('/');
  await home.seesTitle('New on this node');
  await home.sees(anonPage.getByText(POST), 'the post as text on the logged-out home page');
  await assertInert(anonPage, '/ (logged out)');

  assert.deepEqual(dialogs, [], 'no dialogs opened');
  assert.deepEqual(context.pageErrors, []);
  await anon.close();
  await context.close();
});

/** Nothing from the payloads ran or became an element. */
async function assertInert(page, where) {
  // Give a broken image's onerror time to fire.
  await page.waitForTimeout(300);
  assert.equal(await page.evaluate(() => typeof window.__xss), 'undefined', `a payload ran on ${where}`);
  // The payload's own element, looked for by what only it would have (src="x").
  assert.equal(await page.locator('img[src="x"]').count(), 0, `an <img src=x> element was made on ${where}`);
  assert.equal(
    await page.evaluate(() => [...document.scripts].some((s) => s.textContent.includes('__xss'))),
    false,
    `a <script> with the payload is in the DOM on ${where}`,
  );
}
