// Graft's embedding pool in the benchmark: `workers` Web Workers, each with its own engine
// instance and weights (pool_worker.mjs), fed batches of 8 from one queue as the app's pool is
// fed samples. Per-image milliseconds are the wall time of a round divided by its images; the
// features of the inputs come back in order and are compared with one instance's.
import { PER_IMAGE, FEATURES, WARM_UP_RUNS, config, bytes, summary } from "./timing.mjs";

const BATCH = 8;
/** Batches each worker gets in a timed round, and the rounds. */
const BATCHES_PER_WORKER = 4;
const ROUNDS = 3;

function startWorker(load) {
  const worker = new Worker(new URL("pool_worker.mjs", import.meta.url), { type: "module" });
  const pending = new Map();
  worker.onmessage = ({ data }) => {
    const answer = pending.get(data.id ?? "load");
    pending.delete(data.id ?? "load");
    if (data.error) answer.reject(new Error(data.error));
    else answer.resolve(data);
  };
  const ask = (id, message) =>
    new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage(message);
    });
  return { worker, ask, loaded: ask("load", { load }) };
}

/** Runs `batches` (input slices) on the pool, each batch to the next free worker; resolves to
 * the features in batch order and the workers' last memory figures. */
async function runQueue(workers, batches) {
  const out = new Array(batches.length);
  const memory = new Array(workers.length).fill(0);
  let next = 0;
  let id = 0;
  await Promise.all(
    workers.map(async (w, index) => {
      while (next < batches.length) {
        const mine = next++;
        const answer = await w.ask(++id, { id, x: batches[mine], batch: BATCH });
        out[mine] = answer.features;
        memory[index] = answer.memory;
      }
    }),
  );
  return { out, memory };
}

export async function graftPool(inputs, workerCount, modulePath) {
  const manifest = await (await fetch((await config).manifest)).text();
  const weights = await bytes(`models/${JSON.parse(manifest).weights}`);
  const load = { module: new URL(modulePath, location.href).href, manifest, weights };
  const workers = Array.from({ length: workerCount }, () => startWorker(load));
  try {
    await Promise.all(workers.map((w) => w.loaded));
    const images = inputs.length / PER_IMAGE;
    const slice = (i) => inputs.slice((i % (images / BATCH)) * BATCH * PER_IMAGE, ((i % (images / BATCH)) + 1) * BATCH * PER_IMAGE);
    await runQueue(workers, Array.from({ length: WARM_UP_RUNS * workerCount }, (_, i) => slice(i)));
    const times = [];
    let memory = [];
    for (let r = 0; r < ROUNDS; r++) {
      const batches = Array.from({ length: BATCHES_PER_WORKER * workerCount }, (_, i) => slice(i));
      const started = performance.now();
      ({ memory } = await runQueue(workers, batches));
      times.push((performance.now() - started) / (batches.length * BATCH));
    }
    const { out } = await runQueue(workers, Array.from({ length: images / BATCH }, (_, i) => slice(i)));
    const features = new Float32Array(images * FEATURES);
    out.forEach((f, i) => features.set(f, i * BATCH * FEATURES));
    return {
      engine: "graft-wasm-pool",
      workers: workerCount,
      module: modulePath,
      batch8: summary(times),
      features,
      pool_memory_bytes: memory.reduce((a, b) => a + b, 0),
    };
  } finally {
    workers.forEach((w) => w.worker.terminate());
  }
}
