// axe-core in the page under its own CSP.
//
// The pages send `Content-Security-Policy: script-src 'self'`, which blocks the inline
// <script> that page.addScriptTag would add. axe's source is evaluated through the DevTools
// protocol instead (page.evaluate), which CSP does not govern, so the pages are checked with
// their real policy in force and no context needs `bypassCSP`.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Impacts that fail the test; the others are printed only. */
export const FAILING = new Set(['serious', 'critical']);

/** Runs axe on the page as it is; returns its violations (id, impact, help, targets). */
export async function axe(page) {
  const loaded = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!loaded) await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target.join(' '), summary: n.failureSummary })),
    }));
  });
  return result;
}

/** One line a violation and one a node, for the test's output. */
export function describe(name, violations) {
  const lines = [];
  for (const v of violations) {
    lines.push(`${name}: [${v.impact}] ${v.id}: ${v.help}`);
    for (const n of v.nodes) {
      lines.push(`    ${n.target}${n.summary ? `\n      ${n.summary.replace(/\n/g, '\n      ')}` : ''}`);
    }
  }
  return lines.join('\n');
}
