// Times Graft's wasm backbone, onnxruntime-web and TensorFlow.js's wasm backend on the same
// inputs in this page and leaves the figures in `window.benchResult` (read by
// tests/bench/browser.mjs): Graft's SIMD128 build on one thread, then its relaxed-SIMD build
// where this browser validates the app's probe for relaxed SIMD (`relaxed_simd_probe`,
// graft::kernels::RELAXED_SIMD_PROBE); Graft's embedding pool (pool.mjs) and TensorFlow.js
// (tfjs.mjs) on `?threads` workers or threads; onnxruntime-web on as many threads. With
// `?webgpu`, the WebGPU engines instead (webgpu.mjs).
import * as simd128 from "./graft-bench-web.js";
const { default: init, BenchBackbone, relaxed_simd_probe } = simd128;

import { SIZE, PER_IMAGE, BATCH8_ROUNDS, config, log, timeBatches, features, maxAbsDiff, bytes } from "./timing.mjs";
import { webgpu } from "./webgpu.mjs";
import { graftPool } from "./pool.mjs";
import { tensorflowWasm } from "./tfjs.mjs";

/** Graft's backbone from `module` (one of the wasm-bindgen builds), timed. */
async function graft(inputs, module, engine) {
  const { default: init, BenchBackbone, wasm_memory_bytes } = module;
  await init();
  const memoryBefore = wasm_memory_bytes();
  const manifest = await (await fetch((await config).manifest)).text();
  const weights = await bytes(`models/${JSON.parse(manifest).weights}`);
  const start = performance.now();
  const model = new BenchBackbone(manifest, weights);
  const loadMs = performance.now() - start;
  const memoryLoaded = wasm_memory_bytes();
  const fast = async (x, batch) => model.embed(x, batch, false);
  const candle = async (x, batch) => model.embed(x, batch, true);
  const result = {
    engine,
    threads: 1,
    load_ms: loadMs,
    batch1: await timeBatches(inputs, 1, 1, fast),
    batch8: await timeBatches(inputs, 8, BATCH8_ROUNDS, fast),
    features: await features(inputs, fast),
    wasm_memory_bytes: { before_load: memoryBefore, after_load: memoryLoaded, after_forward: wasm_memory_bytes() },
  };
  result.profile_ms_per_image = JSON.parse(model.profile(inputs.subarray(0, 8 * PER_IMAGE), 8));
  // The Candle path for reference: a few images are enough to see the gap.
  result.candle_batch1 = await timeBatches(inputs.subarray(0, 8 * PER_IMAGE), 1, 1, candle);
  return result;
}

/** `threads`: a count, or "default" for onnxruntime-web's own choice. */
async function onnxruntime(inputs, threads) {
  const ort = await import("./ort/ort.wasm.min.mjs");
  if (threads !== "default") ort.env.wasm.numThreads = Number(threads);
  ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
  const model = await bytes((await config).onnx);
  const start = performance.now();
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  const loadMs = performance.now() - start;
  const run = async (x, batch) => {
    const feeds = { input: new ort.Tensor("float32", x, [batch, 3, SIZE, SIZE]) };
    const out = await session.run(feeds);
    return out.features.data;
  };
  return {
    engine: "onnxruntime-web",
    version: ort.env.versions?.web ?? "",
    threads: ort.env.wasm.numThreads,
    default_threads: threads === "default",
    load_ms: loadMs,
    batch1: await timeBatches(inputs, 1, 1, run),
    batch8: await timeBatches(inputs, 8, BATCH8_ROUNDS, run),
    features: await features(inputs, run),
  };
}

/** The engine module this browser gets in the app: relaxed SIMD where the probe validates. */
const appModule = () => (WebAssembly.validate(relaxed_simd_probe()) ? "./graft-bench-web-relaxed.js" : "./graft-bench-web.js");

/** The SIMD128 module's backbone, for TensorFlow.js's copy of the folded plan. */
async function planModel() {
  const manifest = await (await fetch((await config).manifest)).text();
  return new BenchBackbone(manifest, await bytes(`models/${JSON.parse(manifest).weights}`));
}

/** The multi-threaded engines on `threads` threads: Graft's pool of as many workers, and
 * TensorFlow.js's wasm backend; features against onnxruntime-web's. */
async function threadedEngines(inputs, threads, result) {
  result.pool = await graftPool(inputs, threads, appModule());
  log(`graft pool of ${threads}: ${JSON.stringify(result.pool.batch8)}`);
  const one = result.graft_relaxed?.full_features ?? result.graft?.full_features;
  if (one) result.pool.max_abs_diff_to_one_worker = maxAbsDiff(one, result.pool.features);
  result.tfjs = await tensorflowWasm(inputs, await planModel(), threads);
  log(`tfjs wasm (${result.tfjs.threads} threads): ${JSON.stringify(result.tfjs.batch8)}`);
}

/** Keeps the first features of each engine in the result, and their difference to `reference`. */
function compareFeatures(result, reference) {
  for (const engine of [result.graft, result.graft_relaxed, result.pool, result.tfjs]) {
    if (!engine) continue;
    engine.max_abs_diff_to_ort = maxAbsDiff(engine.features, reference);
    engine.features = Array.from(engine.features.subarray(0, 8));
    delete engine.full_features;
  }
}

/** `?threads=N` (or `default`: onnxruntime-web's own choice); `skip-graft`: no one-thread
 * Graft runs; `ort-only`: onnxruntime-web alone. */
async function main() {
  const params = new URLSearchParams(location.search);
  const threads = params.get("threads") ?? "1";
  const inputs = new Float32Array((await bytes("inputs.f32")).buffer);
  await init();
  if (params.has("webgpu")) {
    window.benchResult = await webgpu(inputs, { BenchBackbone, init, ort: await import("./ort/ort.webgpu.min.mjs") });
    return;
  }
  const result = {
    user_agent: navigator.userAgent,
    cross_origin_isolated: self.crossOriginIsolated,
    hardware_concurrency: navigator.hardwareConcurrency,
    images: inputs.length / PER_IMAGE,
  };
  log(`${result.images} images, cross-origin isolated: ${result.cross_origin_isolated}`);
  if (!params.has("skip-graft") && !params.has("ort-only")) {
    result.graft = await graft(inputs, simd128, "graft-wasm");
    log(`graft: ${JSON.stringify(result.graft.batch1)}`);
    if (WebAssembly.validate(relaxed_simd_probe())) {
      const relaxed = await import("./graft-bench-web-relaxed.js");
      result.graft_relaxed = await graft(inputs, relaxed, "graft-wasm-relaxed-simd");
      log(`graft, relaxed SIMD: ${JSON.stringify(result.graft_relaxed.batch1)}`);
      result.graft_relaxed.max_abs_diff_to_simd128 = maxAbsDiff(result.graft.features, result.graft_relaxed.features);
    }
  }
  for (const engine of [result.graft, result.graft_relaxed]) if (engine) engine.full_features = engine.features;
  if (!params.has("ort-only") && threads !== "default") await threadedEngines(inputs, Number(threads), result);
  // onnxruntime-web last: its threads may spin a while after its runs.
  result.ort = await onnxruntime(inputs, threads);
  log(`onnxruntime-web (${threads} threads): ${JSON.stringify(result.ort.batch1)}`);
  if (result.graft) result.max_abs_feature_diff = maxAbsDiff(result.graft.features, result.ort.features);
  compareFeatures(result, result.ort.features);
  result.ort.features = Array.from(result.ort.features.subarray(0, 8));
  window.benchResult = result;
}

main().catch((e) => {
  log(`error: ${e.stack ?? e}`);
  window.benchResult = { error: String(e.stack ?? e) };
});
