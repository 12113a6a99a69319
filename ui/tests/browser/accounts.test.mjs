// The account's signing key: the recovery key is shown once after signing up, with a download;
// "Rotate key" gives the account a new key; a wrong recovery key is refused and the saved one
// takes the account back. axe-core checks the recovery key page and the account page after
// each (desktop and phone, light and dark); with MNODE_SCREENSHOTS set they are saved as
// recovery-key-*, account-rotated-* and account-recover-refused-*.png.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PASSWORD, handle, launch, newContext, node } from './lib/env.mjs';
import { Site } from './lib/pages.mjs';
import { inPlace } from './lib/shots.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test('the recovery key is shown once, the key rotates, and the saved recovery key recovers', { timeout: 300_000 }, async () => {
  const a = node('A');
  const context = await newContext(browser);
  const page = await context.newPage();
  const site = new Site(page, a);

  const me = handle();
  await site.open('/signup');
  await site.fill('Handle', me);
  await site.fill('Email', `${me}@example.org`);
  await site.fill('Password', PASSWORD);
  await site.press('Sign up');
  await site.arrives('/account/recovery-key', 'the recovery key after signing up');
  await site.seesTitle('Your recovery key');
  const recovery = (await site.field('Recovery key').inputValue()).trim();
  assert.match(recovery, /^mnode-recovery-1:[0-9a-f]{64}$/);
  // Shown once: checked and photographed as it stands.
  const failing = await inPlace(page, 'recovery-key');
  const download = page.getByRole('button', { name: 'Download recovery key', exact: true });
  assert.equal(await download.getAttribute('href'), `data:text/plain;charset=utf-8,${recovery}%0A`);
  assert.equal(await download.getAttribute('download'), 'mnode-recovery-key.txt');
  await site.follow('Continue');
  await site.arrives('/', 'home after saving the recovery key');
  await site.seesLoggedIn();
  // Shown once: the page has nothing to show any more.
  await site.open('/account/recovery-key');
  assert.equal(await page.getByText(recovery).count(), 0);

  await site.open('/account');
  await site.press('Rotate key');
  await site.sees(page.getByRole('status').filter({ hasText: 'Key rotated' }), 'the notice "Key rotated"');
  failing.push(...(await inPlace(page, 'account-rotated')));

  await site.fill('Recovery key', `mnode-recovery-1:${'ab'.repeat(32)}`);
  await site.press('Recover');
  await site.sees(page.getByRole('alert').filter({ hasText: 'Not changed' }), 'the alert "Not changed"');
  failing.push(...(await inPlace(page, 'account-recover-refused')));

  await site.fill('Recovery key', recovery);
  await site.press('Recover');
  await site.arrives('/account/recovery-key', 'the new recovery key');
  const fresh = (await site.field('Recovery key').inputValue()).trim();
  assert.match(fresh, /^mnode-recovery-1:[0-9a-f]{64}$/);
  assert.notEqual(fresh, recovery);
  assert.deepEqual(failing, [], 'serious or critical axe violations (details above)');
  assert.deepEqual(context.pageErrors, [], 'no script errors');
  await context.close();
});
