// Timing and comparison helpers shared by the CPU (bench.mjs) and WebGPU (webgpu.mjs) runs.

export const SIZE = 224;
export const PER_IMAGE = 3 * SIZE * SIZE;
export const FEATURES = 1280;
export const BATCH8_ROUNDS = 3;
/** Untimed runs first, so that V8 has tiered the hot code up before the clock runs. */
export const WARM_UP_RUNS = 3;
/** Written by `cargo xtask bench`: `{ manifest, onnx }`, the files of the backbone under test. */
export const config = fetch("bench-config.json").then((response) => response.json());
export const log = (line) => (document.getElementById("log").textContent += line + "\n");

export function summary(perImageMs) {
  const ordered = [...perImageMs].sort((a, b) => a - b);
  const at = (q) => ordered[Math.round((ordered.length - 1) * q)];
  return { median_ms: at(0.5), p90_ms: at(0.9), runs: ordered.length };
}

/** Per-image milliseconds of `run(batchInput, batch)` over the inputs, after `warmUp` runs. */
export async function timeBatches(inputs, batch, rounds, run, warmUp = WARM_UP_RUNS) {
  const count = Math.floor(inputs.length / PER_IMAGE / batch);
  const slice = (i) => inputs.subarray(i * batch * PER_IMAGE, (i + 1) * batch * PER_IMAGE);
  for (let i = 0; i < warmUp; i++) await run(slice(0), batch);
  const times = [];
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < count; i++) {
      const start = performance.now();
      await run(slice(i), batch);
      times.push((performance.now() - start) / batch);
    }
  }
  return summary(times);
}

/** Features of every input, `batch` images a call (the count a multiple of `batch`). */
export async function features(inputs, run, batch = 1) {
  const count = inputs.length / PER_IMAGE;
  const out = new Float32Array(count * FEATURES);
  for (let i = 0; i < count; i += batch) {
    out.set(await run(inputs.subarray(i * PER_IMAGE, (i + batch) * PER_IMAGE), batch), i * FEATURES);
  }
  return out;
}

export function maxAbsDiff(a, b) {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

export async function bytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

