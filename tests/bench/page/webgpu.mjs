// The WebGPU rows of the benchmark, in one page on the same inputs: Graft's GPU executor,
// onnxruntime-web's WebGPU execution provider on the same ONNX file, and TensorFlow.js's WebGPU
// backend running MobileNetV2 built from tfjs-core fused ops with Graft's folded weights (the
// same numbers Graft runs). Per-image milliseconds after warm-up at batch 1, 8 and 32; the
// first run's time (pipeline compilation included); features against Graft's CPU path.
import { SIZE, PER_IMAGE, FEATURES, config, log, timeBatches, features, maxAbsDiff, bytes } from "./timing.mjs";
import { loadScript, tfjsRunner } from "./tfjs.mjs";

const BATCHES = [1, 8, 32];
/** Untimed runs at each batch size: the GPU engines are warm once their pipelines exist. */
const GPU_WARM_UP = 1;
/** Timed batches per batch size: fewer on a software adapter (SwiftShader takes about a second
 * an image), where the figures show correctness and relative cost, not speed. */
const ROUNDS = { hardware: { 1: 24, 8: 6, 32: 2 }, software: { 1: 4, 8: 1, 32: 1 } };

/** The inputs, repeated until there are at least `count` images. */
function atLeast(inputs, count) {
  const images = inputs.length / PER_IMAGE;
  if (images >= count) return inputs;
  const out = new Float32Array(count * PER_IMAGE);
  for (let i = 0; i < count; i++) out.set(inputs.subarray((i % images) * PER_IMAGE, (i % images + 1) * PER_IMAGE), i * PER_IMAGE);
  return out;
}

/** `{ first_run_ms, batch1, batch8, batch32, features }` of one engine's `run(x, batch)`;
 * `rounds[batch]` timed batches of each size. */
async function timeEngine(inputs, run, rounds) {
  const started = performance.now();
  await run(inputs.subarray(0, PER_IMAGE), 1);
  const result = { first_run_ms: performance.now() - started };
  for (const batch of BATCHES) {
    const images = atLeast(inputs, rounds[batch] * batch).subarray(0, rounds[batch] * batch * PER_IMAGE);
    result[`batch${batch}`] = await timeBatches(images, batch, 1, run, GPU_WARM_UP);
  }
  result.features = await features(inputs.subarray(0, 8 * PER_IMAGE), run, 8);
  return result;
}

async function graftEngines(inputs, { BenchBackbone, init }, rounds) {
  await init();
  const manifest = await (await fetch((await config).manifest)).text();
  const model = new BenchBackbone(manifest, await bytes(`models/${JSON.parse(manifest).weights}`));
  const cpu = await features(inputs.subarray(0, 8 * PER_IMAGE), async (x, batch) => model.embed(x, batch, false), 8);
  const adapter = await model.use_webgpu();
  log(`Graft on ${adapter}`);
  const graft = await timeEngine(inputs, (x, batch) => model.embed_async(x, batch), rounds);
  return { cpu, graft: { engine: "graft-webgpu", adapter, ...graft }, model };
}

async function onnxruntime(inputs, ort, rounds) {
  ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
  const started = performance.now();
  const session = await ort.InferenceSession.create(await bytes((await config).onnx), {
    executionProviders: ["webgpu"],
    graphOptimizationLevel: "all",
  });
  const loadMs = performance.now() - started;
  const run = async (x, batch) => (await session.run({ input: new ort.Tensor("float32", x, [batch, 3, SIZE, SIZE]) })).features.data;
  return { engine: "onnxruntime-web-webgpu", version: ort.env.versions?.web ?? "", load_ms: loadMs, ...(await timeEngine(inputs, run, rounds)) };
}

async function tensorflow(inputs, model, rounds) {
  await loadScript("tfjs/tf-core.es2017.min.js");
  await loadScript("tfjs/tf-backend-webgpu.es2017.min.js");
  const tf = window.tf;
  await tf.setBackend("webgpu");
  await tf.ready();
  const run = tfjsRunner(tf, model);
  return { engine: "tfjs-webgpu", version: tf.version_core, backend: tf.getBackend(), ...(await timeEngine(inputs, run, rounds)) };
}

export async function webgpu(inputs, engines) {
  const gpuAdapter = await navigator.gpu?.requestAdapter();
  const adapter = gpuAdapter
    ? { vendor: gpuAdapter.info.vendor, architecture: gpuAdapter.info.architecture, fallback: gpuAdapter.info.isFallbackAdapter }
    : null;
  log(`WebGPU adapter: ${JSON.stringify(adapter)}`);
  const rounds = adapter?.fallback ? ROUNDS.software : ROUNDS.hardware;
  const { cpu, graft, model } = await graftEngines(inputs, engines, rounds);
  log(`graft webgpu: ${JSON.stringify(graft.batch8)}`);
  const ort = await onnxruntime(inputs, engines.ort, rounds);
  log(`onnxruntime-web webgpu: ${JSON.stringify(ort.batch8)}`);
  const tfjs = await tensorflow(inputs, model, rounds);
  log(`tfjs webgpu: ${JSON.stringify(tfjs.batch8)}`);
  const result = { adapter, engines: [graft, ort, tfjs] };
  for (const engine of result.engines) {
    engine.max_abs_diff_vs_graft_cpu = maxAbsDiff(engine.features, cpu);
    engine.features = Array.from(engine.features.subarray(0, 8));
  }
  result.features_per_image = FEATURES;
  return result;
}
