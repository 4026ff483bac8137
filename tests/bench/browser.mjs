// Drives the benchmark page in headless Chromium: once with onnxruntime-web on one thread
// (Graft runs in that load too), then, when the page is cross-origin isolated, with its own
// default thread count and, if that is not every core, with one thread per core.
// Prints one JSON document.
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
  const cores = single.hardware_concurrency;
  const threaded = [];
  if (single.cross_origin_isolated) {
    const byDefault = await runPage(browser, `${base}?threads=default&skip-graft`);
    threaded.push(byDefault);
    if (byDefault.ort.threads !== cores && cores > 1) {
      threaded.push(await runPage(browser, `${base}?threads=${cores}&skip-graft`));
    }
  }
  console.log(JSON.stringify({ single, threaded }));
} finally {
  await browser.close();
}
