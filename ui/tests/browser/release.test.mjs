// A person signs up, makes an artist and a release with a cover and a track, plays it, edits
// it, reads its history and deletes it.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PASSWORD, handle, launch, newContext, node, unique } from './lib/env.mjs';
import { mediaFiles } from './lib/files.mjs';
import { Site, isItem } from './lib/pages.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test('sign up, publish a release with a cover and a track, edit it, read its history, delete it', { timeout: 300_000 }, async () => {
  const a = node('A');
  const files = mediaFiles();
  const context = await newContext(browser);
  const page = await context.newPage();
  const site = new Site(page, a);

  await site.signUp(handle(), PASSWORD);

  const artist = `Artist ${unique()}`;
  await site.newArtist(artist);

  const title = `Tones ${unique()}`;
  const releasePath = await site.newRelease({
    title,
    artists: [artist],
    cover: files.cover,
    files: [files.track],
  });

  // The release page: its title, the artist, the cover with alt text, a player.
  await site.sees(page.getByText(artist), `the artist "${artist}" on the release page`);
  const covers = page.getByRole('img').filter({ visible: true });
  const cover = await site.step('finding the cover: an image with alt text, decoded', async () => {
    await covers.first().waitFor();
    for (const img of await covers.all()) {
      const seen = await img.evaluate((el) => ({
        tag: el.tagName,
        alt: el.getAttribute('alt') ?? '',
        width: el.naturalWidth ?? 0,
      }));
      if (seen.tag === 'IMG' && seen.alt.trim() && seen.width === 64) return seen;
    }
    throw new Error('no <img> with non-empty alt text showing the 64x64 cover');
  });
  console.log(`# cover shown with alt text "${cover.alt}"`);

  const audio = page.locator('audio');
  await site.sees(audio, 'an audio player (<audio>) for the track');
  const src = await audio.first().evaluate(
    (el) => el.getAttribute('src') ?? el.querySelector('source')?.getAttribute('src') ?? '',
  );
  assert.match(src, /^\/ipfs\//, `the audio's src is under /ipfs/ (it is "${src}")`);
  assert.equal(await audio.first().evaluate((el) => el.controls), true, 'the audio player shows controls');

  // The track answers a Range request, as players ask.
  const ranged = await page.request.get(a.url + src, { headers: { Range: 'bytes=0-43' } });
  assert.ok([200, 206].includes(ranged.status()), `GET ${src} with Range answered ${ranged.status()}`);
  const head = await ranged.body();
  assert.equal(head.subarray(0, 4).toString('ascii'), 'RIFF', 'the track starts as the WAV that was uploaded');
  if (ranged.status() === 206) {
    assert.equal(head.length, 44, 'a 206 answer holds just the range asked for');
    assert.match(ranged.headers()['content-range'] ?? '', /^bytes 0-43\/\d+$/);
  }

  // Chromium loads the track's metadata: 1 second of audio. A failure here is a failure
  // (a missing WAV decoder would be worth knowing about), never a skip.
  const media = await audio.first().evaluate(
    (el) =>
      new Promise((resolve) => {
        const done = () =>
          resolve({
            duration: el.duration,
            error: el.error ? `MediaError code ${el.error.code}: ${el.error.message}` : null,
            canPlayWav: el.canPlayType('audio/wav'),
          });
        if (el.readyState >= 1 || el.error) return done();
        el.addEventListener('loadedmetadata', done, { once: true });
        el.addEventListener('error', done, { once: true });
        if (el.preload === 'none') el.load();
        setTimeout(done, 15_000);
      }),
  );
  assert.equal(media.error, null, `the audio element could not load the track: ${JSON.stringify(media)}`);
  assert.ok(media.duration > 0.9, `the track's duration is about 1 s (got ${JSON.stringify(media)})`);

  // Edit: the form comes filled; saving makes a new version.
  await site.follow('Edit');
  await site.arrives(`${releasePath}/edit`, 'the edit form');
  assert.equal(await site.field('Title').inputValue(), title, 'the edit form shows the current title');
  const newTitle = `${title} (remastered)`;
  await site.fill('Title', newTitle);
  await site.press('Save');
  await site.arrives(releasePath, 'the release page after saving');
  await site.seesTitle(newTitle);

  // History: two versions, the newer one current.
  await site.follow('History');
  await site.arrives(`${releasePath}/history`, 'the history page');
  await site.seesTitle('History');
  await site.sees(page.getByRole('listitem').filter({ hasText: 'Version 0' }), 'the list item "Version 0"');
  const v1 = page.getByRole('listitem').filter({ hasText: 'Version 1' });
  await site.sees(v1, 'the list item "Version 1"');
  assert.match(await v1.first().innerText(), /current/i, 'version 1 is marked current');
  assert.equal(await page.getByRole('listitem').filter({ hasText: 'Version 2' }).count(), 0, 'only two versions');

  // Delete: asked once, then back on the list, without the release.
  await site.open(releasePath);
  await site.follow('Delete');
  await site.arrives(`${releasePath}/delete`, 'the delete confirmation');
  await site.press('Delete');
  await site.arrives('/art/releases', 'the list of releases after deleting');
  await site.seesTitle('Releases');
  assert.equal(await page.getByRole('link', { name: newTitle }).count(), 0, 'the deleted release is not listed');
  assert.equal(await page.getByRole('link', { name: title, exact: true }).count(), 0, 'nor its old title');
  assert.ok(isItem('/art/releases/')(releasePath));

  assert.deepEqual(context.pageErrors, [], 'no script errors on the pages');
  await context.close();
});
