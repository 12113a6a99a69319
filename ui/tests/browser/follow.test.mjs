// Two people on one node: one follows the other, and the other's new post shows up on the
// first one's timeline while it is open (server-sent events, no reload).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PASSWORD, handle, launch, newContext, node, unique } from './lib/env.mjs';
import { Site } from './lib/pages.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test('following an author on the same node; their new post appears on the open timeline', { timeout: 240_000 }, async () => {
  const a = node('A');
  const readerContext = await newContext(browser);
  const writerContext = await newContext(browser);
  const reader = new Site(await readerContext.newPage(), a);
  const writer = new Site(await writerContext.newPage(), a);

  const readerHandle = handle();
  const writerHandle = handle();
  await reader.signUp(readerHandle, PASSWORD);
  await writer.signUp(writerHandle, PASSWORD);
  const firstText = `First words ${unique()}`;
  const postPath = await writer.newPost(firstText);

  // The reader finds the writer through the post: its author links to the author's page.
  await reader.open(postPath);
  await reader.sees(reader.page.getByText(firstText, { exact: true }), 'the post');
  await reader.step(`following the link to the author "${writerHandle}"`, () =>
    reader.page.getByRole('link', { name: new RegExp(writerHandle) }).first().click(),
  );
  await reader.arrives((p) => p.startsWith('/authors/did:key:'), "the author's page");
  const writerDid = decodeURIComponent(reader.path().slice('/authors/'.length));
  await reader.sees(reader.page.getByRole('heading', { level: 1, name: new RegExp(writerHandle) }), `a heading with the handle "${writerHandle}"`);
  await reader.sees(reader.page.getByText(firstText, { exact: true }), "the author's post on their page");
  await reader.followAuthor(writerDid);

  // Following lists them.
  await reader.open('/following');
  await reader.seesTitle('Following');
  await reader.sees(reader.followButton('Unfollow'), 'an "Unfollow" button for the followed author');

  // The timeline, open; a mark in the window tells whether it was reloaded.
  const stream = reader.page
    .waitForResponse((r) => (r.headers()['content-type'] ?? '').includes('text/event-stream'), { timeout: 10_000 })
    .catch(() => null);
  await reader.open('/');
  await reader.seesTitle('Timeline');
  const opened = await stream;
  console.log(opened ? `# timeline listens on ${new URL(opened.url()).pathname}` : '# no text/event-stream response seen within 10 s of opening the timeline');
  await reader.page.evaluate(() => {
    window.__notReloaded = true;
  });

  const text = `Live ${unique()} from ${writerHandle}`;
  await writer.newPost(text);
  await reader.sees(reader.page.getByText(text), `the new post "${text}" on the open timeline within 15 s`, 15_000);
  assert.equal(
    await reader.page.evaluate(() => window.__notReloaded === true),
    true,
    'the timeline showed the post without a reload',
  );

  assert.deepEqual(readerContext.pageErrors, [], 'no script errors on the reader pages');
  assert.deepEqual(writerContext.pageErrors, [], 'no script errors on the writer pages');
  await readerContext.close();
  await writerContext.close();
});
