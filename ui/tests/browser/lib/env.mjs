// What the Rust test (cli/tests/browser.rs) hands over, and how to start Chromium.
//
// The daemons are started by that test; it passes, for nodes A, B and C (C has low rate
// limits, for limits.test.mjs):
//   MNODE_{A,B,C}_URL       the API and UI address, e.g. http://127.0.0.1:43211
//   MNODE_{A,B,C}_OWNER     the owner's handle
//   MNODE_{A,B,C}_PASSWORD  the owner's password
//   MNODE_{A,B,C}_ADDR      a full multiaddr of the node, ending /p2p/<peer id>
//   MNODE_{A,B,C}_DID       the owner's did:key
// plus CHROMIUM (the browser to run) and MNODE_SCREENSHOTS (a folder; screenshots only when set).

import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chromium } from 'playwright-core';

function required(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(
      `${name} is not set: these tests run against daemons that cli/tests/browser.rs starts ` +
        '(cargo nextest run -p mnode --test browser)',
    );
  }
  return v;
}

/** One node as the tests see it. */
export function node(letter) {
  const addr = required(`MNODE_${letter}_ADDR`);
  return {
    name: letter,
    url: required(`MNODE_${letter}_URL`).replace(/\/+$/, ''),
    owner: required(`MNODE_${letter}_OWNER`),
    password: required(`MNODE_${letter}_PASSWORD`),
    addr,
    peerId: addr.split('/p2p/').pop(),
    did: required(`MNODE_${letter}_DID`),
  };
}

export const screenshotsDir = process.env.MNODE_SCREENSHOTS || '';

function chromiumPath() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      return execFileSync('which', [name], { encoding: 'utf8' }).trim();
    } catch {
      // try the next name
    }
  }
  throw new Error('no Chromium found: set CHROMIUM or install it (apt-get install -y chromium)');
}

/** Debian's Chromium, headless; Playwright's own browser downloads are not used. */
export async function launch() {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
      '--disable-quic',
    ],
  });
}

/** How long one action or wait may take. A debug build on two cores is slow to answer. */
export const TIMEOUT = 20_000;
/** How long a navigation may take (uploads, signing, argon2 at log in). */
export const NAV_TIMEOUT = 60_000;

/**
 * A new browser context with the house timeouts; `options` go to browser.newContext.
 * Uncaught page errors are collected in `context.pageErrors` (tests assert there are none);
 * console errors (CSP reports among them) are printed.
 */
export async function newContext(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  context.setDefaultTimeout(TIMEOUT);
  context.setDefaultNavigationTimeout(NAV_TIMEOUT);
  context.pageErrors = [];
  context.on('page', (page) => watch(context, page));
  return context;
}

function watch(context, page) {
  page.on('pageerror', (e) => {
    context.pageErrors.push(`${page.url()}: ${e.message}`);
    console.log(`# page error at ${page.url()}: ${e.message}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) console.log(`# console error at ${page.url()}: ${m.text()}`);
  });
}

/** A fresh handle: `t` and random digits. */
export function handle(prefix = 't') {
  return `${prefix}${randomInt(10_000_000, 99_999_999)}`;
}

/** Some random digits to make a title or text unique. */
export function unique() {
  return String(randomInt(100_000, 999_999));
}

export const PASSWORD = 'correct horse battery staple 42';

/**
 * Runs `fn`; if it throws, adds what the page shows (its URL, status and accessibility tree
 * as Playwright sees it) to the error, so a failure says which label or button was missing.
 */
export async function step(page, what, fn) {
  try {
    return await fn();
  } catch (e) {
    let snapshot = '';
    try {
      snapshot = await page.ariaSnapshot({ timeout: 5_000 });
    } catch (inner) {
      snapshot = `(no accessibility snapshot: ${inner.message})`;
    }
    const err = new Error(
      `${what} failed at ${page.url()}:\n${e.message}\n--- what the page shows (ARIA snapshot) ---\n${snapshot}`,
    );
    err.cause = e;
    throw err;
  }
}
