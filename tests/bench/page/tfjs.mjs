// TensorFlow.js in the benchmark: MobileNetV2 built from tfjs-core fused ops with Graft's
// folded weights (the same numbers Graft runs), for the wasm (XNNPACK) and WebGPU backends.
import { SIZE, BATCH8_ROUNDS, timeBatches, features } from "./timing.mjs";

export function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(script);
  });
}

/** MobileNetV2 in tfjs-core fused ops from Graft's folded plan (BN already folded). */
function tfjsNetwork(tf, layout, weights) {
  const slice = ([offset, len]) => weights.subarray(offset, offset + len);
  const blocks = layout.map((block) => ({
    residual: block.residual,
    units: block.units.map((u) => {
      const shape = { conv3x3: [3, 3, u.in, u.out], pointwise: [1, 1, u.in, u.out], depthwise: [3, 3, u.out, 1] }[u.kind];
      return { ...u, filter: tf.tensor4d(slice(u.weight), shape), bias: tf.tensor1d(slice(u.bias)) };
    }),
  }));
  const unit = (x, u) => {
    const args = { x, filter: u.filter, strides: u.stride, bias: u.bias, activation: u.relu ? "relu6" : "linear" };
    if (u.kind === "depthwise") return tf.fused.depthwiseConv2d({ ...args, pad: 1 });
    return tf.fused.conv2d({ ...args, pad: u.kind === "conv3x3" ? 1 : "valid" });
  };
  return (nchw, batch) =>
    tf.tidy(() => {
      let x = tf.transpose(tf.tensor4d(nchw, [batch, 3, SIZE, SIZE]), [0, 2, 3, 1]);
      for (const block of blocks) {
        const input = x;
        for (const u of block.units) x = unit(x, u);
        if (block.residual) x = tf.add(x, input);
      }
      return tf.mean(x, [1, 2]);
    });
}

/** `run(nchw, batch)`: the features of `model`'s folded plan by tfjs's backend in use. */
export function tfjsRunner(tf, model) {
  const forward = tfjsNetwork(tf, JSON.parse(model.plan_layout()), model.plan_weights());
  return async (x, batch) => {
    const y = forward(x, batch);
    const data = await y.data();
    y.dispose();
    return data;
  };
}

/** TensorFlow.js's wasm backend (XNNPACK, SIMD, threaded where the page is cross-origin
 * isolated) on `threads` threads, timed like Graft; `model` gives the folded plan. */
export async function tensorflowWasm(inputs, model, threads) {
  await loadScript("tfjs/tf-core.es2017.min.js");
  await loadScript("tfjs/tf-backend-wasm.es2017.min.js");
  const tf = window.tf;
  tf.wasm.setWasmPaths(new URL("tfjs/", location.href).href);
  tf.wasm.setThreadsCount(threads);
  await tf.setBackend("wasm");
  await tf.ready();
  const run = tfjsRunner(tf, model);
  return {
    engine: "tfjs-wasm",
    version: tf.version_core,
    backend: tf.getBackend(),
    // It caps its thread pool at half the logical cores, whatever it is asked for.
    threads: tf.wasm.getThreadsCount(),
    requested_threads: threads,
    batch1: await timeBatches(inputs, 1, 1, run),
    batch8: await timeBatches(inputs, 8, BATCH8_ROUNDS, run),
    features: await features(inputs, run),
  };
}
