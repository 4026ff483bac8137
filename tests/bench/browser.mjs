// Drives the benchmark page in headless Chromium: once on one thread (Graft's builds, its pool
// of one, TensorFlow.js's wasm backend and onnxruntime-web), then, when the page is
// cross-origin isolated, onnxruntime-web with its default thread count, and all three engines
// on 2 threads and on one per core; then the
// WebGPU engines (`?webgpu`) in a Chromium with WebGPU enabled (SwiftShader where there is no
// GPU: correctness figures, not speed). Prints one JSON document.
// Usage: node tests/bench/browser.mjs URL [webgpu]   (`webgpu`: only the WebGPU page)
import { launch } from "../e2e/browser.mjs";

const TIMEOUT_MS = 10 * 60 * 1000;
/** WebGPU in headless Chromium; SwiftShader when the machine has no GPU (a real adapter is
 * preferred where one exists). */
const WEBGPU_FLAGS = ["--enable-unsafe-webgpu", ...(process.env.GRAFT_BENCH_SWIFTSHADER === "0" ? [] : ["--use-webgpu-adapter=swiftshader"])];

async function runPage(browser, url, timeout = TIMEOUT_MS) {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("request", (r) => {
    if (!r.url().startsWith(new URL(url).origin) && !/^(blob|data):/.test(r.url())) {
      problems.push(`request outside the origin: ${r.url()}`);
    }
  });
  await page.goto(url);
  await page.waitForFunction(() => window.benchResult !== undefined, null, { timeout, polling: 500 });
  const result = await page.evaluate(() => window.benchResult);
  await page.close();
  if (result.error || problems.length) {
    throw new Error(`${url}: ${result.error ?? ""} ${problems.join("; ")}`);
  }
  return result;
}

/** The WebGPU engines' page, in a Chromium with WebGPU enabled. */
async function runWebgpu() {
  const gpuBrowser = await launch(WEBGPU_FLAGS);
  try {
    return await runPage(gpuBrowser, `${process.argv[2]}?webgpu`, 3 * TIMEOUT_MS);
  } finally {
    await gpuBrowser.close();
  }
}

const base = process.argv[2];
const onlyWebgpu = process.argv[3] === "webgpu";
const browser = await launch();
try {
  if (onlyWebgpu) {
    console.log(JSON.stringify({ webgpu: await runWebgpu() }));
    process.exit(0);
  }
  const single = await runPage(browser, `${base}?threads=1`);
  const cores = single.hardware_concurrency;
  const threaded = [];
  if (single.cross_origin_isolated) {
    threaded.push(await runPage(browser, `${base}?threads=default&ort-only`));
    // Graft's pool, TensorFlow.js and onnxruntime-web at 2 threads and at every core.
    for (const threads of new Set([2, cores].filter((n) => n > 1))) {
      threaded.push(await runPage(browser, `${base}?threads=${threads}&skip-graft`));
    }
  }
  console.log(JSON.stringify({ single, threaded, webgpu: await runWebgpu() }));
} finally {
  await browser.close();
}
