// The pages a person sees over a rate limit, on node C (low limits: cli/tests/browser.rs): a
// post over the account's write budget answers 429 with the "Slow down" page, and a login
// attempt after a failed one is refused on the login form itself, what was typed kept. On
// both, axe-core finds no serious or critical problem (light and dark), and, when
// MNODE_SCREENSHOTS names a folder, full-page screenshots at desktop and phone sizes, light
// and dark: slow-down-*.png and login-throttled-*.png. The htmx Follow button over the budget
// says so beside itself, and stays (follow-limited-*.png).

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FAILING, axe, describe } from './lib/axe.mjs';
import { PASSWORD, handle, launch, newContext, node, screenshotsDir, unique } from './lib/env.mjs';
import { Site } from './lib/pages.mjs';

/** Writes one account may make on node C (`api.limits.writes_per_account`). */
const WRITES = 2;
/** Failed logins before the next must wait (`api.limits.login_free_failures_per_account`). */
const FREE_FAILURES = 1;

const DEVICES = {
  desktop: { viewport: { width: 1280, height: 800 } },
  phone: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 },
};

/** Both sizes for the screenshots; without them, the desktop is enough for axe. */
const devices = Object.entries(DEVICES).filter(([name]) => screenshotsDir || name === 'desktop');

let browser;

before(async () => {
  browser = await launch();
  if (screenshotsDir) mkdirSync(screenshotsDir, { recursive: true });
});

after(async () => {
  await browser?.close();
});

/** Presses the button `name` of a form posting to `path`; returns the answer to that POST. */
async function submit(site, name, path) {
  const [res] = await Promise.all([
    site.page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path),
    site.press(name),
  ]);
  await site.page.waitForLoadState('load');
  return res;
}

/** The whole seconds of an answer's `Retry-After`. */
function retryAfter(res) {
  const value = res.headers()['retry-after'];
  assert.match(value ?? '', /^[1-9][0-9]*$/, `Retry-After of ${res.url()}`);
  return Number(value);
}

/** A wait as the node words it (api/src/limits.rs `wait_text`): `45 s`, `5 min`, `12 h 1 min`. */
function waitText(secs) {
  if (secs < 120) return `${secs} s`;
  const minutes = Math.ceil(secs / 60);
  const [h, m] = [Math.floor(minutes / 60), minutes % 60];
  if (h === 0) return `${m} min`;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

/**
 * Runs axe on the page as it stands, light and dark, adding serious and critical violations
 * to `failing`; takes the screenshots when MNODE_SCREENSHOTS is set. The page is not loaded
 * again (it is the answer to a POST), so the colour scheme is switched in place.
 */
async function checkPage(page, name, device, failing) {
  for (const colorScheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme });
    // The colours change with a CSS transition; axe reads them once it has run.
    await page.evaluate(() => Promise.all(document.getAnimations().map((a) => a.finished)));
    const violations = await axe(page);
    const label = `${name} (${device}, ${colorScheme})`;
    if (violations.length) console.log(describe(label, violations));
    for (const v of violations) {
      if (FAILING.has(v.impact)) failing.push(`${label}: ${v.id} [${v.impact}] at ${v.nodes.map((n) => n.target).join(', ')}`);
    }
    if (screenshotsDir) {
      await page.evaluate(() => document.fonts.ready);
      await page.screenshot({
        path: join(screenshotsDir, `${name}-${device}-${colorScheme}.png`),
        fullPage: true,
        animations: 'disabled',
      });
    }
  }
}

/**
 * For each device: `prepare(site)`, at desktop size (the page objects use the desktop's
 * navigation), brings a fresh account to its limit; then, in a context of the device's with
 * the same cookies, `over(site, prepared)` brings the page a person sees over the limit and
 * returns its name; then axe-core and the screenshots.
 */
async function overALimit(prepare, over) {
  const c = node('C');
  const failing = [];
  for (const [device, options] of devices) {
    const setup = await newContext(browser);
    const prepared = await prepare(new Site(await setup.newPage(), c));
    const storageState = await setup.storageState();
    await setup.close();
    const context = await newContext(browser, { ...options, storageState });
    const site = new Site(await context.newPage(), c);
    const name = await over(site, prepared);
    await checkPage(site.page, name, device, failing);
    assert.deepEqual([...setup.pageErrors, ...context.pageErrors], [], 'no script errors');
    await context.close();
  }
  assert.deepEqual(failing, [], 'serious or critical axe violations (details above)');
}

test('a post over the write budget shows "Slow down" with the wait (axe-core, light and dark)', { timeout: 300_000 }, () =>
  overALimit(
    async (site) => {
      await site.signUp(handle('busy'), PASSWORD);
      for (let i = 1; i <= WRITES; i++) {
        await site.newPost(`Post ${i} of ${WRITES} for now (${unique()})`);
      }
    },
    async (site) => {
      await site.open('/social/posts/new');
      await site.fill('Text', 'One post too many');
      const res = await site.step('saving a post over the budget', () => submit(site, 'Save', '/social/posts/new'));
      assert.equal(res.status(), 429, `post ${WRITES + 1} answered ${res.status()}`);
      assert.match(res.headers()['content-type'] ?? '', /^text\/html/, 'a page, not a JSON body');
      const wait = retryAfter(res);
      await site.seesTitle('Slow down');
      await site.sees(
        site.page.getByRole('alert').getByText(`Too many writes from this account; try again in ${waitText(wait)}.`, { exact: true }),
        `"Too many writes from this account; try again in ${waitText(wait)}." in an alert`,
      );
      await site.sees(site.page.getByRole('main').getByRole('link', { name: 'Home', exact: true }), 'the link "Home" on the error page');
      return 'slow-down';
    },
  ));

test('a login after a failed one is refused on the login form, with the wait (axe-core, light and dark)', { timeout: 300_000 }, () =>
  overALimit(
    async (site) => {
      // An account of its own, so that no other attempt's failures count here.
      const who = handle('forgetful');
      await site.signUp(who, PASSWORD);
      await site.logOut();
      return who;
    },
    async (site, who) => {
      await site.open('/login');
      // Each failure past the free ones makes the next attempt wait (1 s, then 2 s, 4 s …), so
      // a slow machine that misses one wait meets the next, longer one.
      let res;
      for (let attempt = 1; ; attempt++) {
        await site.fill('Handle or email', who);
        await site.fill('Password', 'not my password');
        res = await site.step(`logging in with a wrong password (attempt ${attempt})`, () => submit(site, 'Log in', '/login'));
        if (res.status() === 429) break;
        assert.equal(res.status(), 401, `attempt ${attempt} with a wrong password answered ${res.status()}`);
        assert.ok(attempt < FREE_FAILURES + 5, `no attempt was made to wait after ${attempt} failed logins`);
      }
      const wait = retryAfter(res);
      await site.seesTitle('Log in');
      await site.sees(
        site.page.getByRole('alert').getByText(`Too many failed logins at this account; try again in ${waitText(wait)}.`, { exact: true }),
        `"Too many failed logins at this account; try again in ${waitText(wait)}." in an alert on the login form`,
      );
      assert.equal(await site.field('Handle or email').inputValue(), who, 'what was typed is kept');
      return 'login-throttled';
    },
  ));

test('Follow over the write budget says so beside the button, which stays (axe-core, light and dark)', { timeout: 300_000 }, () =>
  overALimit(
    async (site) => {
      await site.signUp(handle('keen'), PASSWORD);
      for (let i = 1; i <= WRITES; i++) {
        await site.newPost(`Post ${i} of ${WRITES} before following (${unique()})`);
      }
    },
    async (site) => {
      const c = node('C');
      await site.open(`/authors/${c.did}`);
      const follow = site.followButton('Follow').first();
      // Once the page's scripts have run, the button posts through htmx and swaps in place.
      await site.page.waitForFunction(() => document.readyState === 'complete' && 'htmx' in window);
      const [res] = await site.step('pressing "Follow" over the budget', () =>
        Promise.all([
          site.page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/follow'),
          follow.click(),
        ]),
      );
      assert.equal(res.status(), 429, `Follow answered ${res.status()}`);
      const wait = retryAfter(res);
      const text = `Slow down: Too many writes from this account; try again in ${waitText(wait)}.`;
      const form = site.page.getByRole('main').locator('form').filter({ has: site.page.getByRole('button', { name: /^Follow(\s|$)/ }) });
      await site.sees(form.getByRole('alert').getByText(text, { exact: true }), `"${text}" beside the button`);
      assert.equal(site.path(), `/authors/${c.did}`, 'still on the author\'s page');
      await site.sees(follow, 'the button "Follow", still there');
      // Pressed again: one alert, the newest.
      await Promise.all([
        site.page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/follow'),
        follow.click(),
      ]);
      await site.page.waitForFunction(() => document.querySelectorAll('.hx-error').length === 2);
      assert.equal(await form.getByRole('alert').filter({ visible: true }).count(), 1, 'one alert shows');
      return 'follow-limited';
    },
  ));
