// Page objects: what a person does on mnode's pages, found by role, label and visible text
// (the contract is /tmp/ui-contract.md while the UI is being built; see README.md).

import assert from 'node:assert/strict';
import { NAV_TIMEOUT, step } from './env.mjs';

const exact = { exact: true };

/** One person's browser tab on one node. */
export class Site {
  /** @param {import('playwright-core').Page} page @param {{url: string}} node */
  constructor(page, node) {
    this.page = page;
    this.node = node;
  }

  url(path) {
    return this.node.url + path;
  }

  path() {
    return new URL(this.page.url()).pathname;
  }

  /** Opens `path` and checks the status (200 unless told). */
  async open(path, status = 200) {
    const res = await this.page.goto(this.url(path));
    assert.ok(res, `no response for ${path}`);
    assert.equal(res.status(), status, `GET ${path} answered ${res.status()}`);
    return res;
  }

  /** Runs `fn` and, when it fails, reports what the page shows. */
  step(what, fn) {
    return step(this.page, what, fn);
  }

  nav() {
    return this.page.getByRole('navigation', { name: 'Main' });
  }

  heading(name, level) {
    return this.page.getByRole('heading', level ? { name, level, exact: true } : { name, exact: true });
  }

  button(name) {
    return this.page.getByRole('button', { name, exact: true });
  }

  link(name) {
    return this.page.getByRole('link', { name, exact: true });
  }

  /**
   * The control labelled `label`. A required field's label may end in a marker ("Text *",
   * the star aria-hidden, so its accessible name is still "Text"); getByLabel reads the
   * label's whole text, so the marker is allowed here.
   */
  field(label) {
    return this.page.getByLabel(new RegExp(`^\\s*${escapeRe(label)}\\s*\\*?\\s*$`));
  }

  /** Waits until `locator` (its first match) is visible. */
  async sees(locator, what, timeout) {
    await this.step(`seeing ${what}`, () =>
      locator.first().waitFor({ state: 'visible', ...(timeout ? { timeout } : {}) }),
    );
  }

  /** Waits for a heading of level 1 named `name`. */
  async seesTitle(name) {
    await this.sees(this.heading(name, 1), `the heading <h1> "${name}"`);
  }

  /** Waits until the page's path is one `test` accepts (a path string or a predicate). */
  async arrives(test, what, timeout = NAV_TIMEOUT) {
    const ok = typeof test === 'string' ? (p) => p === test : test;
    await this.step(`arriving at ${what}`, () =>
      this.page.waitForURL((u) => ok(u.pathname), { timeout }),
    );
  }

  /**
   * Clicks the button `name` in the page's main content (or inside `within`): the header's
   * links may look like buttons too ("Sign up").
   */
  async press(name, within) {
    await this.step(`pressing the button "${name}"`, () =>
      (within ?? this.page.getByRole('main')).getByRole('button', { name, exact: true }).first().click(),
    );
  }

  /**
   * Follows the link `name`. A link styled as a button (Pico's `<a role="button">`) is
   * announced as a button, so either role is accepted.
   */
  async follow(name) {
    await this.step(`following the link "${name}"`, () =>
      this.link(name).or(this.button(name)).first().click(),
    );
  }

  /**
   * Fills the control labelled `label`. The editor island hides a `textarea[data-editor]` and
   * puts its editor under the label once the page's deferred scripts have run; a fill that
   * caught the textarea before that would wait on a hidden control, so the page is let finish
   * loading first (with JavaScript off the textarea simply stays).
   */
  async fill(label, value) {
    await this.step(`filling "${label}"`, async () => {
      const field = this.field(label);
      await field.first().waitFor({ state: 'attached' });
      await this.page.waitForFunction(() => document.readyState === 'complete');
      await field.fill(value);
    });
  }

  // ---- accounts ---------------------------------------------------------------------------

  async signUp(handle, password, email = `${handle}@example.org`) {
    await this.open('/signup');
    await this.fill('Handle', handle);
    await this.fill('Email', email);
    await this.fill('Password', password);
    await this.press('Sign up');
    await this.arrives('/account/recovery-key', 'the recovery key, shown once after signing up');
    await this.seesTitle('Your recovery key');
    await this.sees(this.link('Download recovery key').or(this.button('Download recovery key')), 'the link "Download recovery key"');
    await this.follow('Continue');
    await this.arrives('/', 'home after signing up');
    await this.seesLoggedIn();
  }

  async logIn(handleOrEmail, password) {
    await this.open('/login');
    await this.fill('Handle or email', handleOrEmail);
    await this.fill('Password', password);
    await this.press('Log in');
    await this.arrives('/', 'home after logging in');
    await this.seesLoggedIn();
  }

  async seesLoggedIn() {
    await this.sees(this.nav().getByRole('button', { name: 'Log out', exact: true }), 'the button "Log out" in the main navigation');
  }

  async logOut() {
    await this.press('Log out', this.nav());
    await this.sees(this.nav().getByRole('link', { name: 'Log in', exact: true }), 'the link "Log in" after logging out');
  }

  // ---- records ----------------------------------------------------------------------------

  /** Creates an artist; returns its page's path. */
  async newArtist(name) {
    await this.open('/art/artists/new');
    await this.fill('Name', name);
    await this.press('Save');
    await this.arrives(isItem('/art/artists/'), `the new artist's page`);
    await this.seesTitle(name);
    return this.path();
  }

  /**
   * Makes a release: title, artists ticked by name, an optional cover and files.
   * Returns its page's path.
   */
  async newRelease({ title, artists = [], cover, files = [] }) {
    await this.open('/art/releases/new');
    await this.fill('Title', title);
    for (const artist of artists) {
      await this.step(`ticking the artist "${artist}"`, () =>
        this.page.getByRole('checkbox', { name: artist, exact: true }).check(),
      );
    }
    // The contract says "Cover image" and "Files"; the form made from the kind's schema labels
    // its file inputs "Upload cover" and "Upload files" (beside a picker of existing ones).
    if (cover) {
      await this.step('choosing a file for "Upload cover" (or "Cover image")', () =>
        this.field('Upload cover').or(this.field('Cover image')).first().setInputFiles(cover),
      );
    }
    if (files.length) {
      await this.step('choosing files for "Upload files" (or "Files")', () =>
        this.field('Upload files').or(this.field('Files')).first().setInputFiles(files),
      );
    }
    await this.press('Save');
    await this.arrives(isItem('/art/releases/'), `the new release's page`);
    await this.seesTitle(title);
    return this.path();
  }

  /** Posts `text`; returns the post's path. */
  async newPost(text) {
    await this.open('/social/posts/new');
    await this.fill('Text', text);
    await this.press('Save');
    await this.arrives(isItem('/social/posts/'), `the new post's page`);
    await this.sees(this.page.getByText(text, exact), `the post's text "${text}"`);
    return this.path();
  }

  /**
   * The button "Follow" (or "Unfollow"). Its accessible name may say whom ("Follow @kim"),
   * as long as it starts with the word shown.
   */
  followButton(word = 'Follow') {
    return this.page.getByRole('main').getByRole('button', { name: new RegExp(`^${word}(\\s|$)`) });
  }

  /** On an author's page: presses "Follow" and waits for "Unfollow". */
  async followAuthor(did) {
    await this.open(`/authors/${did}`);
    await this.step('pressing the button "Follow"', () => this.followButton('Follow').first().click());
    await this.sees(this.followButton('Unfollow'), 'the button "Unfollow" after following');
  }
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A predicate for the path of an item in a collection: `prefix` + one segment, not "new". */
export function isItem(prefix) {
  return (p) => {
    if (!p.startsWith(prefix)) return false;
    const rest = p.slice(prefix.length);
    return rest.length > 0 && !rest.includes('/') && rest !== 'new';
  };
}

/** The last segment of a path: an item's id (the CID of its version 0). */
export function idOf(path) {
  return path.split('/').filter(Boolean).pop();
}
