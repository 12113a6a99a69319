// Writing in the editor: a text with a heading, bold words, a list and a link is written in
// the rich-text editor, saved, read back as formatted HTML, and edited again (the editor
// opening with what was saved). A moderator hides a post in a thread and a visitor sees it
// folded away with the reason. axe-core finds no violation on the editor's page.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { axe, describe, FAILING } from './lib/axe.mjs';
import { PASSWORD, handle, launch, newContext, node, screenshotsDir, unique } from './lib/env.mjs';
import { Site, isItem } from './lib/pages.mjs';

let browser;

/** Saves the page as `name`.png when MNODE_SCREENSHOTS is set. */
async function shot(page, name) {
  if (!screenshotsDir) return;
  mkdirSync(screenshotsDir, { recursive: true });
  await page.screenshot({ path: join(screenshotsDir, `${name}.png`), fullPage: true, animations: 'disabled' });
}
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test('a text written and edited in the editor', { timeout: 300_000 }, async () => {
  const a = node('A');
  const A = new Site(await (await newContext(browser)).newPage(), a);
  await A.signUp(handle('tex'), PASSWORD);
  await A.open('/core/texts/new');
  const title = `Liner notes ${unique()}`;
  await A.fill('Title', title);
  const editor = A.page.getByRole('textbox', { name: /^\s*Document/ });
  await A.sees(editor, 'the editor');
  const violations = (await axe(A.page)).filter((v) => FAILING.has(v.impact));
  assert.deepEqual(violations, [], describe('the new text form', violations));

  // A heading, a paragraph with bold words and a link, then a list: typed as a person would.
  await editor.click();
  await A.page.keyboard.type('# Side A');
  await A.page.keyboard.press('Enter');
  await A.page.keyboard.type('Recorded ');
  const toolbar = A.page.getByRole('toolbar').first();
  await toolbar.getByRole('button', { name: 'Bold' }).click();
  await editor.pressSequentially('live');
  await toolbar.getByRole('button', { name: 'Bold' }).click();
  await editor.pressSequentially(' in one take.');
  await A.page.keyboard.press('Enter');
  await A.page.keyboard.type('- first');
  await A.page.keyboard.press('Enter');
  await A.page.keyboard.type('second');
  await shot(A.page, 'text-editor-desktop-light');
  await A.press('Save');
  await A.arrives(isItem('/core/texts/'), "the text's page");
  await A.sees(A.heading('Side A', 2), 'the heading, as <h2>');
  await A.sees(A.page.locator('.doc strong', { hasText: 'live' }), 'the bold word');
  await A.sees(A.page.locator('.doc li', { hasText: 'second' }), 'the list');
  const textPath = A.path();

  // Edit: the editor opens with what was saved; a link is added by pasting Markdown.
  await A.follow('Edit');
  const again = A.page.getByRole('textbox', { name: /^\s*Document/ });
  await A.sees(again.getByText('Side A'), 'the saved heading in the editor');
  await again.click();
  await A.page.keyboard.press('Control+End');
  await A.page.keyboard.press('Enter');
  await A.page.keyboard.press('Enter');
  await A.page.evaluate(() => {
    const data = new DataTransfer();
    data.setData('text/plain', 'See [the label](https://example.org/label).');
    document.querySelector('[role=textbox][contenteditable=true]').dispatchEvent(
      new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }),
    );
  });
  await A.press('Save');
  await A.arrives(textPath, "the text's page again");
  const link = A.page.locator('.doc a', { hasText: 'the label' });
  await A.sees(link, 'the pasted link');
  assert.equal(await link.getAttribute('href'), 'https://example.org/label');
  await A.sees(A.heading('Side A', 2), 'the heading, kept');
  await shot(A.page, 'text-read-desktop-light');
});

test('a moderator hides a post and a visitor sees it folded away', { timeout: 300_000 }, async () => {
  const a = node('A');
  const M = new Site(await (await newContext(browser)).newPage(), a);
  const T = new Site(await (await newContext(browser)).newPage(), a);
  const owner = handle('mod');
  await M.signUp(owner, PASSWORD);
  await T.signUp(handle('tro'), PASSWORD);
  // The owner of a forum moderates it.
  await M.open('/social/forums/new');
  await M.fill('Name', `Tape decks ${unique()}`);
  await M.press('Save');
  await M.arrives(isItem('/forums/'), "the forum's page");
  await M.follow('New branch');
  await M.fill('Name', 'Heads');
  await M.press('New branch');
  await M.arrives(isItem('/branches/'), "the branch's page");
  await M.follow('New thread');
  await M.fill('Title', 'Cleaning heads');
  await M.fill('Text', 'Alcohol and a cotton swab?');
  await M.press('New thread');
  await M.arrives(isItem('/threads/'), "the thread's page");
  const threadPath = M.path();

  await T.open(threadPath);
  await T.press('Reply');
  const spam = `cheap watches ${unique()}`;
  await T.fill('Text', spam);
  await T.press('Reply', T.page.locator('form').filter({ has: T.page.getByRole('button', { name: 'Reply', exact: true }) }).last());
  await T.sees(T.page.getByText(spam, { exact: true }), 'the reply');
  assert.equal(await T.page.getByText('Moderate', { exact: true }).count(), 0, 'no moderation for others');

  await M.open(threadPath);
  const post = M.page.getByRole('article').filter({ hasText: spam });
  await post.getByText('Moderate', { exact: true }).click();
  await post.getByLabel('Reason', { exact: true }).fill('spam');
  await post.getByRole('button', { name: 'Hide', exact: true }).click();
  await M.arrives(threadPath, 'the thread again');
  await shot(M.page, 'thread-moderated-desktop-light');

  const V = new Site(await (await newContext(browser)).newPage(), a);
  await V.open(threadPath);
  await V.sees(V.page.getByText('Hidden by a moderator: spam'), 'the folded post with its reason');
  assert.equal(await V.page.getByText(spam, { exact: true }).isVisible(), false, 'folded away');
});
