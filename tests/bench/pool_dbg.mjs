import { launch } from "../e2e/browser.mjs";
const browser = await launch(process.argv.slice(2));
const page = await browser.newPage();
await page.goto("http://127.0.0.1:8097/index.html?threads=1&ort-only");
await page.waitForFunction(() => window.benchResult !== undefined, null, { timeout: 900000, polling: 500 });
const r = await page.evaluate(async () => {
  const manifest = await (await fetch("models/mobilenet_v2.json")).text();
  const weights = new Uint8Array(await (await fetch("models/" + JSON.parse(manifest).weights)).arrayBuffer());
  const inputs = new Float32Array(await (await fetch("inputs.f32")).arrayBuffer());
  const w = new Worker(new URL("pool_worker.mjs", location.href), { type: "module" });
  const ask = (m) => new Promise((res) => { w.onmessage = ({ data }) => res(data); w.postMessage(m); });
  await ask({ load: { module: new URL("./graft-bench-web-relaxed.js", location.href).href, manifest, weights } });
  const times = [];

  for (let i = 0; i < 16; i++) {
    const t = performance.now();
    const b = i < 8 ? 1 : 8;
    await ask({ id: i, x: inputs.slice(0, b * 3 * 224 * 224), batch: b });
    times.push(b + ":" + ((performance.now() - t) / b).toFixed(1));
  }
  return times.join(" ");
});
console.log(r);
await browser.close();
