// A page that cannot be loaded again as it is (the recovery key, shown once; the answer to a
// POST): checked and photographed where it stands, at desktop and phone widths, light and
// dark. axe-core runs on each (serious and critical violations are returned, all printed);
// with MNODE_SCREENSHOTS set, a full-page screenshot of each is saved as
// <name>-<desktop|phone>-<light|dark>.png, like those of pages.test.mjs.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FAILING, axe, describe } from './axe.mjs';
import { screenshotsDir } from './env.mjs';

/** The sizes of the screenshots, as the other tests take them. */
export const SIZES = {
  desktop: { width: 1280, height: 800 },
  phone: { width: 390, height: 844 },
};

/**
 * Checks and photographs `page` as it stands, under `name`; returns the serious and critical
 * axe violations found (empty when there are none). The page is left at its size, light.
 */
export async function inPlace(page, name) {
  const failing = [];
  const size = page.viewportSize();
  for (const [device, viewport] of Object.entries(SIZES)) {
    await page.setViewportSize(viewport);
    // The menu folds behind its button on a phone, as app.js folds it when a page loads there.
    await page.evaluate((open) => {
      for (const d of document.querySelectorAll('details.menu')) d.open = open;
    }, device !== 'phone');
    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      // The colours change with a CSS transition; axe reads them once it has run. Bounded: an
      // animation that repeats (or one the page keeps restarting) never finishes.
      await page.evaluate(() =>
        Promise.race([
          Promise.allSettled(document.getAnimations().map((a) => a.finished)),
          new Promise((resolve) => setTimeout(resolve, 2000)),
        ]),
      );
      const violations = await axe(page);
      const label = `${name} (${device}, ${colorScheme})`;
      if (violations.length) console.log(describe(label, violations));
      for (const v of violations) {
        if (FAILING.has(v.impact)) failing.push(`${label}: ${v.id} [${v.impact}] at ${v.nodes.map((n) => n.target).join(', ')}`);
      }
      if (screenshotsDir) {
        mkdirSync(screenshotsDir, { recursive: true });
        await page.evaluate(() => document.fonts.ready);
        await page.screenshot({ path: join(screenshotsDir, `${name}-${device}-${colorScheme}.png`), fullPage: true, animations: 'disabled' });
      }
    }
  }
  if (size) await page.setViewportSize(size);
  await page.evaluate(() => {
    for (const d of document.querySelectorAll('details.menu')) d.open = true;
  });
  await page.emulateMedia({ colorScheme: 'light' });
  return failing;
}
