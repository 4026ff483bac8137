// Drives the benchmark page in headless Chromium: once with onnxruntime-web on one thread
// (Graft runs in that load too), once with its threaded build. Prints one JSON document.
// Usage: node tests/bench/browser.mjs URL
import { launch } from "../e2e/browser.mjs";

const TIMEOUT_MS = 10 * 60 * 1000;

async function runPage(browser, url) {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("request", (r) => {
    if (!r.url().startsWith(new URL(url).origin) && !/^(blob|data):/.test(r.url())) {
      problems.push(`request outside the origin: ${r.url()}`);
    }
  });
  await page.goto(url);
  await page.waitForFunction(() => window.benchResult !== undefined, null, { timeout: TIMEOUT_MS, polling: 500 });
  const result = await page.evaluate(() => window.benchResult);
  await page.close();
  if (result.error || problems.length) {
    throw new Error(`${url}: ${result.error ?? ""} ${problems.join("; ")}`);
  }
  return result;
}

const base = process.argv[2];
const browser = await launch();
try {
  const single = await runPage(browser, `${base}?threads=1`);
  const threads = single.hardware_concurrency;
  const threaded = single.cross_origin_isolated && threads > 1
    ? await runPage(browser, `${base}?threads=${threads}&skip-graft`)
    : null;
  console.log(JSON.stringify({ single, threaded }));
} finally {
  await browser.close();
}
