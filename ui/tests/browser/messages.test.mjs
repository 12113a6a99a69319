// Private writing: P finds Messages in the navigation, writes to Q, who reads it in their
// conversation with P and answers; P makes a post only Q may read ("Who can read": People I
// list), and R, who is not on the list, sees that it exists but cannot read it and does not
// find it in Posts. axe-core finds no violation on the Messages pages and the private post,
// desktop and phone, light and dark; with MNODE_SCREENSHOTS set each is saved as
// messages-<page>-<device>-<scheme>.png.

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

test('messages and a post only some may read', { timeout: 480_000 }, async () => {
  const a = node('A');
  const contexts = [await newContext(browser), await newContext(browser), await newContext(browser)];
  const [P, Q, R] = await Promise.all(contexts.map(async (c) => new Site(await c.newPage(), a)));
  const [handleP, handleQ, handleR] = [handle('writer'), handle('reader'), handle('other')];
  await P.signUp(handleP, PASSWORD);
  await Q.signUp(handleQ, PASSWORD);
  await R.signUp(handleR, PASSWORD);
  /** [name, who, path] of each page, for axe and the screenshots. */
  const pages = [];

  // P: Messages in the navigation, an empty list, then a message to Q.
  await P.open('/');
  await P.step('following "Messages" in the main navigation', () => P.nav().getByRole('link', { name: 'Messages', exact: true }).click());
  await P.seesTitle('Messages');
  await P.sees(P.page.getByText('No messages yet', { exact: false }), 'the empty state');
  pages.push(['list-empty', 'R', '/messages']);
  // Nobody to send to: said next to the field, the message kept.
  await P.fill('To', `nobody${unique()}`);
  await P.fill('Message', 'Hello?');
  await P.press('Send');
  await P.sees(P.page.getByRole('alert').filter({ hasText: 'neither a handle' }), 'the refusal of an unknown recipient');
  assert.equal(await P.field('Message').inputValue(), 'Hello?', 'the message typed is kept');
  const text = `The mix is ready, have a listen ${unique()}`;
  await P.fill('To', handleQ);
  await P.fill('Message', text);
  await P.press('Send');
  await P.arrives((p) => p.startsWith('/messages/did:key:'), 'the conversation with Q');
  const withQ = P.path();
  await P.sees(P.page.getByRole('main').getByText(text), 'the message sent');

  // Q reads it among their conversations and answers.
  await Q.open('/messages');
  const conv = Q.page.getByRole('main').getByRole('link').filter({ hasText: handleP });
  await Q.sees(conv, `the conversation with ${handleP}`);
  await Q.sees(Q.page.getByRole('main').getByText(text, { exact: false }), 'the last message in the list');
  pages.push(['list', 'Q', '/messages']);
  await Q.step('opening the conversation', () => conv.first().click());
  await Q.sees(Q.page.getByRole('main').getByText(text), 'the message received');
  const answer = 'Sounds great, thank you';
  await Q.fill('Message', answer);
  await Q.press('Send');
  await Q.sees(Q.page.getByRole('main').getByText(answer), 'the answer in the conversation');
  pages.push(['conversation', 'Q', Q.path()]);
  await P.open(withQ);
  await P.sees(P.page.getByRole('main').getByText(answer), 'the answer, for P');

  // R has no conversation, and cannot open P and Q's.
  await R.open('/messages');
  await R.sees(R.page.getByText('No messages yet', { exact: false }), "R's empty state");
  await R.open(withQ);
  assert.equal(await R.page.getByRole('main').getByText(text).count(), 0, 'R does not read P and Q\'s messages');

  // P writes a post only Q may read.
  await P.open('/social/posts/new');
  assert.equal(await P.field('Who can read').locator('option:checked').textContent(), 'Everyone', '"Everyone" is the default');
  const secret = `Rehearsal moved to Thursday ${unique()}`;
  await P.fill('Text', secret);
  await P.step('choosing "People I list"', () => P.field('Who can read').selectOption({ label: 'People I list' }));
  await P.fill('People who can read', handleQ);
  pages.push(['post-new', 'P', '/social/posts/new']);
  await P.press('Save');
  await P.arrives(isItem('/social/posts/'), "the private post's page");
  const postPath = P.path();
  await P.sees(P.page.getByText('Private: readable by', { exact: false }), 'the "Private: readable by" note');
  await P.sees(P.page.getByRole('main').getByText(secret), 'the text, for its author');
  await Q.open(postPath);
  await Q.sees(Q.page.getByRole('main').getByText(secret), 'the text, for Q');
  pages.push(['post', 'Q', postPath]);
  await R.open(postPath);
  await R.sees(R.page.getByText('only the people it is for can read it', { exact: false }), 'that R cannot read it');
  assert.equal(await R.page.getByRole('main').getByText(secret).count(), 0, 'R does not read the post');
  assert.equal(await R.page.getByRole('main').getByRole('link', { name: 'Edit', exact: true }).count(), 0, 'no Edit for R');
  pages.push(['post-withheld', 'R', postPath]);
  await R.open('/social/posts');
  assert.equal(await R.page.getByRole('main').getByText(secret).count(), 0, 'not in Posts');

  // axe on every page, desktop and phone, light and dark.
  const sessions = { P: await contexts[0].storageState(), Q: await contexts[1].storageState(), R: await contexts[2].storageState() };
  const failing = [];
  for (const [device, options] of Object.entries(devices)) {
    for (const colorScheme of ['light', 'dark']) {
      for (const who of ['P', 'Q', 'R']) {
        const context = await newContext(browser, { ...options, colorScheme, storageState: sessions[who] });
        const page = await context.newPage();
        for (const [pageName, as, path] of pages) {
          if (as !== who) continue;
          const res = await page.goto(a.url + path, { waitUntil: 'load' });
          assert.equal(res?.status(), 200, `${path} answered ${res?.status()}`);
          const violations = await axe(page);
          const label = `messages-${pageName} (${device}, ${colorScheme})`;
          if (violations.length) console.log(describe(label, violations));
          failing.push(...violations.map((v) => `${label}: ${v.id} [${v.impact}]`));
          if (screenshotsDir) {
            mkdirSync(screenshotsDir, { recursive: true });
            await page.evaluate(() => document.fonts.ready);
            await page.screenshot({ path: join(screenshotsDir, `messages-${pageName}-${device}-${colorScheme}.png`), fullPage: true, animations: 'disabled' });
          }
        }
        await context.close();
      }
    }
  }
  assert.deepEqual(failing, [], 'axe violations on the messages pages (details above)');
  for (const c of contexts) assert.deepEqual(c.pageErrors, [], 'no script errors');
  for (const c of contexts) await c.close();
});
