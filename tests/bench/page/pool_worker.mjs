// One worker of Graft's embedding pool in the benchmark: its own instance of the engine (the
// module the page picked: SIMD128 or relaxed SIMD) with its own copy of the folded weights, as
// each of the app's embedders has. Answers `{ load }` once, then `{ id, x, batch }` with the
// features; every answer carries the instance's wasm memory.
let engine;
let model;

onmessage = async ({ data }) => {
  try {
    if (data.load) {
      engine = await import(data.load.module);
      await engine.default();
      model = new engine.BenchBackbone(data.load.manifest, data.load.weights);
      postMessage({ loaded: true, memory: engine.wasm_memory_bytes() });
      return;
    }
    const features = model.embed(data.x, data.batch, false);
    postMessage({ id: data.id, features, memory: engine.wasm_memory_bytes() }, [features.buffer]);
  } catch (e) {
    postMessage({ id: data.id, error: String(e.stack ?? e) });
  }
};
