// Two people talk in a forum: A makes a forum and a branch and starts a thread; B replies to
// A's post in place (htmx) and A, with the thread open, sees it arrive; A forks the thread at
// B's reply; B states a fact and A adds context to it. axe-core finds no violation on any of
// the new pages, and with MNODE_SCREENSHOTS set each is saved at desktop and phone sizes.

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

/** The post (an article) showing `text`. */
function post(site, text) {
  return site.page.getByRole('article').filter({ hasText: text });
}

test('a forum, a branch, a thread, a reply in place, a fork, context on a fact', { timeout: 480_000 }, async () => {
  const a = node('A');
  const contextA = await newContext(browser);
  const contextB = await newContext(browser);
  const A = new Site(await contextA.newPage(), a);
  const B = new Site(await contextB.newPage(), a);
  const handleA = handle('ann');
  const handleB = handle('bo');
  await A.signUp(handleA, PASSWORD);
  await B.signUp(handleB, PASSWORD);
  /** [name, path] of each new page, for axe and the screenshots. */
  const pages = [];

  // A: a forum (the generic form), then a branch and a thread through the forum's pages.
  const forum = `Kitchen Jazz ${unique()}`;
  await A.open('/');
  await A.step('following "Forums" in the main navigation', () => A.nav().getByRole('link', { name: 'Forums', exact: true }).click());
  await A.seesTitle('Forums');
  pages.push(['forums', '/forums']);
  await A.follow('New forum');
  await A.fill('Name', forum);
  await A.fill('Description', 'Standards played at home, and the records that taught us.');
  await A.fill('Rules', 'Be kind. Name the record.');
  await A.fill('Tags', 'music, music/jazz');
  await A.press('Save');
  await A.arrives(isItem('/forums/'), "the forum's page");
  await A.seesTitle(forum);
  pages.push(['forum', A.path()]);

  await A.follow('New branch');
  await A.fill('Name', 'Standards');
  await A.fill('Description', 'Tunes everyone knows.');
  await A.press('New branch');
  await A.arrives(isItem('/branches/'), "the branch's page");
  await A.seesTitle('Standards');
  pages.push(['branch', A.path()]);

  await A.follow('New thread');
  pages.push(['thread-new', A.path()]);
  const title = `Favourite standards ${unique()}`;
  const first = 'Mine is Autumn Leaves: the Cannonball Adderley record.';
  await A.fill('Title', title);
  await A.fill('Text', first);
  await A.fill('Tags', 'music/jazz');
  await A.press('New thread');
  await A.arrives(isItem('/threads/'), "the new thread's page");
  await A.seesTitle(title);
  await A.sees(A.page.getByText(first, { exact: true }), 'the first post');
  const threadPath = A.path();
  await A.sees(A.followButton('Follow').or(A.followButton('Unfollow')), 'a Follow button for the thread');

  // A keeps the thread open; B replies to A's post with the form that opens under it.
  const live = A.page
    .waitForResponse((r) => (r.headers()['content-type'] ?? '').includes('text/event-stream'), { timeout: 10_000 })
    .catch(() => null);
  await A.open(threadPath);
  await live;
  await A.page.evaluate(() => {
    window.__notReloaded = true;
  });
  await B.open(threadPath);
  await B.press('Reply', post(B, first));
  const form = B.page.getByRole('form', { name: `Reply to @${handleA}` });
  await B.sees(form, 'the reply form under the post');
  await B.sees(form.getByRole('blockquote').or(form.getByText(first)), 'the post quoted in the form');
  const answer = 'Mine is Blue in Green, from Kind of Blue.';
  await B.step('filling "Text" in the reply form', () => form.getByLabel('Text').fill(answer));
  await B.press('Reply', form);
  await B.sees(post(B, answer), 'the reply in place');
  assert.equal(B.path(), threadPath, 'the reply was made without leaving the thread');
  await A.sees(A.page.getByText(answer, { exact: true }), "B's reply on A's open thread", 15_000);
  assert.equal(await A.page.evaluate(() => window.__notReloaded === true), true, 'A saw it without a reload');

  // The reply sits under A's post.
  await B.open(threadPath);
  const nested = B.page.getByRole('listitem').filter({ has: post(B, first) }).getByRole('list').getByRole('article').filter({ hasText: answer });
  await B.sees(nested, "the reply nested under A's post");

  // A forks the thread at B's reply.
  await A.open(threadPath);
  await A.press('Fork', post(A, answer));
  await A.arrives((p) => p.endsWith('/fork'), 'the fork form');
  pages.push(['fork-new', `${A.path()}${new URL(A.page.url()).search}`]);
  assert.equal(await A.field('Title').inputValue(), `${title} (fork)`);
  const forkTitle = `Modal tunes ${unique()}`;
  await A.fill('Title', forkTitle);
  await A.press('Fork');
  await A.arrives(isItem('/threads/'), "the fork's page");
  await A.seesTitle(forkTitle);
  await A.sees(A.page.getByText(/Forked from/), '"Forked from"');
  await A.sees(A.link(title), 'the link back to the thread');
  pages.push(['fork', A.path()]);
  await A.open(threadPath);
  await A.sees(A.heading('Forks', 2), 'the heading "Forks"');
  await A.sees(A.link(forkTitle), 'the link to the fork');
  pages.push(['thread', threadPath]);

  // A visitor reads it all, with "Log in to reply" in place of forms.
  const anonContext = await newContext(browser);
  const anon = new Site(await anonContext.newPage(), a);
  await anon.open(threadPath);
  await anon.sees(anon.page.getByText(answer, { exact: true }), 'the reply, logged out');
  await anon.sees(anon.link('Log in to reply'), 'the link "Log in to reply"');
  assert.equal(await anon.page.getByRole('button', { name: 'Reply', exact: true }).count(), 0, 'no Reply for visitors');

  // B states a fact; A adds context to it.
  await B.open('/info/facts/new');
  const statement = `Blue in Green was recorded in 1959 (${unique()})`;
  await B.fill('Statement', statement);
  await B.press('Save');
  await B.arrives(isItem('/facts/'), "the fact's page");
  const factPath = B.path();
  await A.open(factPath);
  await A.seesTitle(statement);
  const note = 'On 2 March 1959, at Columbia 30th Street Studio.';
  const addContext = A.page.getByRole('form', { name: 'Add context' });
  await A.step('filling the form "Add context"', async () => {
    await addContext.getByLabel('Note').fill(note);
    await addContext.getByLabel('Source title').fill('Kind of Blue liner notes');
    await addContext.getByLabel('Source URL').fill('https://example.org/kind-of-blue');
  });
  await A.press('Add context', addContext);
  await A.arrives(factPath, 'the fact again');
  await A.sees(A.page.getByText(note, { exact: true }), 'the context note');
  await A.sees(A.link('Kind of Blue liner notes'), 'its source');
  const addFact = A.page.getByRole('form', { name: 'Add fact' });
  await A.step('filling "Statement" in the form "Add fact"', () => addFact.getByLabel('Statement').fill('It was the first take.'));
  await A.press('Add fact', addFact);
  await A.sees(A.link('It was the first take.'), 'the fact under it');
  pages.push(['fact', factPath]);

  // axe on every new page, as A; then the screenshots.
  const failing = [];
  for (const [name, path] of pages) {
    await A.open(path);
    const violations = await axe(A.page);
    if (violations.length) {
      console.log(describe(name, violations));
      failing.push(...violations.map((v) => `${name}: ${v.id} [${v.impact}]`));
    }
  }
  await anon.open(threadPath);
  const anonViolations = await axe(anon.page);
  if (anonViolations.length) console.log(describe('thread-anon', anonViolations));
  failing.push(...anonViolations.map((v) => `thread-anon: ${v.id} [${v.impact}]`));
  assert.deepEqual(failing, [], 'axe violations on the discussion pages (details above)');

  if (screenshotsDir) {
    mkdirSync(screenshotsDir, { recursive: true });
    const state = await contextA.storageState();
    for (const [device, options] of Object.entries({
      desktop: { viewport: { width: 1280, height: 800 } },
      phone: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 },
    })) {
      for (const colorScheme of ['light', 'dark']) {
        const context = await newContext(browser, { ...options, colorScheme, storageState: state });
        const page = await context.newPage();
        for (const [name, path] of pages) {
          await page.goto(a.url + path, { waitUntil: 'load' });
          await page.screenshot({ path: join(screenshotsDir, `${name}-${device}-${colorScheme}.png`), fullPage: true, animations: 'disabled' });
        }
        await context.close();
      }
    }
  }

  for (const c of [contextA, contextB, anonContext]) assert.deepEqual(c.pageErrors, [], 'no script errors');
  await contextA.close();
  await contextB.close();
  await anonContext.close();
});
