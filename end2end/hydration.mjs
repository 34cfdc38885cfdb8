// Time to a live battle page in headless Chromium: from navigation to the
// page hydrated and its socket open ("Live"), median of several loads.
// Used by scripts/bench.sh: node end2end/hydration.mjs http://127.0.0.1:PORT
import { chromium } from '@playwright/test';

const base = process.argv[2];
const runs = Number(process.argv[3] ?? 7);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const times = [];
for (let run = 0; run < runs; run++) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const start = performance.now();
  await page.goto(`${base}/battle/hydration-${run}-${Date.now()}`);
  await page.locator('#connectionState', { hasText: 'Live' }).waitFor();
  times.push(performance.now() - start);
  const transferred = await page.evaluate(() =>
    performance.getEntriesByType('resource').reduce((sum, entry) => sum + entry.transferSize, 0)
      + performance.getEntriesByType('navigation').reduce((sum, entry) => sum + entry.transferSize, 0));
  if (run === 0) console.log(`transferred on first load: ${transferred} bytes (HTML, wasm, JS, CSS, icon; as encoded on the wire)`);
  await context.close();
}
await browser.close();
times.sort((a, b) => a - b);
console.log(`time to a live page: median ${times[Math.floor(times.length / 2)].toFixed(0)} ms ` +
  `(min ${times[0].toFixed(0)}, max ${times[times.length - 1].toFixed(0)}, ${runs} loads)`);
