// Without JavaScript: the plain forms work (sign up, log in, an artist, a release with a cover
// and a track sent as one multipart form) and the release page reads.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PASSWORD, handle, launch, newContext, node, unique } from './lib/env.mjs';
import { mediaFiles } from './lib/files.mjs';
import { Site } from './lib/pages.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test('without JavaScript: sign up, log in, make an artist and a release with a cover, read it', { timeout: 240_000 }, async () => {
  const a = node('A');
  const files = mediaFiles();
  const context = await newContext(browser, { javaScriptEnabled: false });
  const page = await context.newPage();
  const site = new Site(page, a);

  const me = handle();
  await site.signUp(me, PASSWORD);
  await site.logOut();
  await site.logIn(me, PASSWORD);

  const artist = `Quiet ${unique()}`;
  await site.newArtist(artist);
  const title = `Plain form ${unique()}`;
  const releasePath = await site.newRelease({ title, artists: [artist], cover: files.cover, files: [files.track] });

  // The page as served: title, artist, the cover (the very PNG sent), a player for the track.
  const res = await site.open(releasePath);
  assert.match(res.headers()['content-type'] ?? '', /^text\/html/);
  await site.seesTitle(title);
  await site.sees(page.getByText(artist), `the artist "${artist}"`);

  // Images as a screen reader finds them (an <img alt=""> has no role "img").
  const img = page.getByRole('img').filter({ visible: true });
  await site.sees(img, 'an image (the cover)');
  let coverOk = false;
  for (const one of await img.all()) {
    const [src, alt] = [await one.getAttribute('src'), await one.getAttribute('alt')];
    if (!src) continue;
    const got = await page.request.get(new URL(src, a.url + releasePath).href);
    if (got.ok() && Buffer.compare(await got.body(), files.coverBytes) === 0) {
      coverOk = true;
      assert.ok(alt?.trim(), `the cover has alt text (it has alt=${JSON.stringify(alt)})`);
      assert.match(got.headers()['content-type'] ?? '', /^image\/png/, `${src} is served as image/png`);
      break;
    }
  }
  assert.ok(coverOk, 'an image with alt text shows the cover that was uploaded');

  const audio = page.locator('audio');
  await site.sees(audio, 'an audio player (<audio>) for the track');
  const src =
    (await audio.first().getAttribute('src')) ?? (await audio.first().locator('source').first().getAttribute('src'));
  assert.match(src ?? '', /^\/ipfs\//, `the audio's src is under /ipfs/ (it is "${src}")`);
  const track = await page.request.get(a.url + src);
  assert.equal(track.status(), 200);
  assert.equal((await track.body()).length, 44 + 8000 * 2, 'the whole WAV is served');

  assert.deepEqual(context.pageErrors, []);
  await context.close();
});
