// Prints why conformance checks failed. A full-suite run of `conformance server` shows only a
// pass/fail count per scenario; the reasons are in the checks.json files it writes with
// `--output-dir`, and they are what a server engineer needs to see.
//
// Usage: node conformance-failures.mjs RESULTS_DIR

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node conformance-failures.mjs RESULTS_DIR');
  process.exit(2);
}

const lines = [];
for (const entry of readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
  let checks;
  try {
    checks = JSON.parse(readFileSync(path.join(dir, entry.name, 'checks.json'), 'utf8'));
  } catch {
    continue;
  }
  // Directory names are "server-<scenario>-<timestamp>".
  const scenario = entry.name.replace(/^server-/, '').replace(/-\d{4}-\d\d-\d\dT[\d-]+Z$/, '');
  for (const check of checks) {
    if (check.status === 'FAILURE' || check.status === 'WARNING') {
      lines.push(`  ${check.status.padEnd(7)} ${scenario} / ${check.id}: ${check.errorMessage ?? check.description}`);
    }
  }
}
if (lines.length > 0) {
  console.log('Failed and warning checks:');
  for (const line of lines) console.log(line);
}
