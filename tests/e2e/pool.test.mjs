// The embedding pool: 200 uploads are embedded by one worker, then (in a new project) by a pool
// of two; the pool is faster and its embeddings are the same, read back from the page's
// IndexedDB. The choice of workers is kept across a reload, and after 12-megapixel photos the
// pool stays within its memory budget (160 MiB an embedder, web/src/worker/pool.rs). An
// embedder that stops answering is replaced after its deadline, its images go to the others,
// and none is lost or made twice.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PHOTOS, fashionMnistFolder, launch, openGraft, waitPoolLoaded, waitReady } from "./browser.mjs";

const UPLOADS = 200;
const EMBEDDER_BUDGET = 160 * 2 ** 20;

let browser;
let files;
let photos;
before(async () => {
  // Two 12-megapixel camera-sized JPEGs (a photo scaled up, and noise, which compresses worst).
  const big = mkdtempSync(join(tmpdir(), "graft-big-"));
  const script = `
from PIL import Image
import numpy as np, sys
Image.open(sys.argv[1]).convert("RGB").resize((4032, 3024)).save(sys.argv[2] + "/photo.jpg", quality=92)
noise = (np.random.default_rng(0).random((3024, 4032, 3)) * 255).astype("uint8")
Image.fromarray(noise).save(sys.argv[2] + "/noise.jpg", quality=90)`;
  const made = spawnSync("/usr/bin/python3", ["-c", script, PHOTOS.chelsea, big]);
  assert.equal(made.status, 0, String(made.stderr));
  photos = [join(big, "photo.jpg"), join(big, "noise.jpg")];
  browser = await launch();
  const dir = fashionMnistFolder("train", UPLOADS / 10, 10);
  files = readdirSync(dir)
    .sort()
    .flatMap((name) => readdirSync(join(dir, name)).sort().map((f) => join(dir, name, f)));
  assert.equal(files.length, UPLOADS);
});
after(async () => {
  await browser?.close();
});

/** Picks `workers` in the pool's select and waits until that many hold the model. */
async function usePool(page, workers) {
  await page.locator('[data-testid="pool-select"]').selectOption(String(workers));
  const size = page.locator(`[data-testid="pool-size"][data-workers="${workers}"][data-loaded="${workers}"]`);
  await size.waitFor({ timeout: 120_000 });
}

/** Seconds from the upload until every sample of the first class is embedded. */
async function uploadAll(page) {
  const card = page.locator('[data-testid="class-card"]').first();
  const started = Date.now();
  await card.locator('[data-testid="class-upload"]').setInputFiles(files);
  await page.waitForFunction(() => !document.querySelector(".class-card .pending"), null, { timeout: 600_000 });
  const seconds = (Date.now() - started) / 1000;
  assert.equal(await card.locator('[data-testid="sample-count"]').textContent(), String(UPLOADS));
  return seconds;
}

/** Every saved embedding, by project: rows as plain arrays, sorted. */
function savedEmbeddings(page) {
  return page.evaluate(async () => {
    const done = (request) =>
      new Promise((resolve, reject) => {
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    const db = await done(indexedDB.open("graft"));
    const store = db.transaction("embeddings").objectStore("embeddings");
    const [keys, values] = await Promise.all([done(store.getAllKeys()), done(store.getAll())]);
    const byProject = {};
    keys.forEach((key, i) => (byProject[String(key).split(":")[0]] ??= []).push(Array.from(values[i][1])));
    for (const rows of Object.values(byProject)) rows.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    return byProject;
  });
}

test("200 uploads are embedded faster by the pool than by one worker, with the same embeddings", { timeout: 1_500_000 }, async () => {
  const { page, problems } = await openGraft(browser);
  await waitReady(page);
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  const auto = page.locator('[data-testid="pool-size"]');
  await auto.waitFor();
  assert.equal(Number(await auto.getAttribute("data-workers")), Math.min(Math.max(cores, 1), 8), "one worker per core");

  await usePool(page, 1);
  const single = await uploadAll(page);

  await page.locator('[data-testid="new-project"]').click();
  await waitReady(page);
  await usePool(page, 2);
  const pooled = await uploadAll(page);
  console.log(
    `# ${UPLOADS} uploads embedded: ${single.toFixed(1)} s on one worker, ${pooled.toFixed(1)} s on a pool of 2 ` +
      `(${(single / pooled).toFixed(2)}x, ${cores} cores); pool ${await auto.textContent()}`,
  );
  assert.ok(pooled < single, `the pool took ${pooled} s, one worker ${single} s`);

  const saved = Object.values(await savedEmbeddings(page));
  assert.equal(saved.length, 2, "two projects' embeddings are saved");
  assert.equal(saved[0].length, UPLOADS);
  assert.equal(saved[1].length, UPLOADS);
  let worst = 0;
  saved[0].forEach((row, i) => row.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - saved[1][i][j])))));
  console.log(`# largest difference between the two sets of embeddings: ${worst}`);
  assert.ok(worst <= 1e-6, `the pool's embeddings differ from one worker's by ${worst}`);

  // The choice belongs to this browser: it is back after a reload.
  await page.reload();
  await waitReady(page);
  await page.locator('[data-testid="pool-size"][data-workers="2"]').waitFor();
  assert.equal(await page.locator('[data-testid="pool-select"]').inputValue(), "2");

  // Camera-sized photos: each embedder's memory grows for the decoded image, within budget.
  const card = page.locator('[data-testid="class-card"]').first();
  await card.locator('[data-testid="class-upload"]').setInputFiles([...photos, ...photos]);
  await page.waitForFunction(() => !document.querySelector(".class-card .pending"), null, { timeout: 300_000 });
  assert.equal(await card.locator('[data-testid="sample-count"]').textContent(), String(UPLOADS + 4));
  const memory = Number(await page.locator('[data-testid="pool-size"]').getAttribute("data-memory-bytes"));
  console.log(`# pool memory after 12-megapixel JPEGs: ${(memory / 1e6).toFixed(0)} MB for 2 embedders`);
  assert.ok(memory > 0 && memory <= 2 * EMBEDDER_BUDGET, `the pool holds ${memory} bytes`);
  assert.deepEqual(problems, []);
});

test("an embedder that stops answering is replaced, and no sample is lost or made twice", async () => {
  const { page, problems } = await openGraft(browser);
  await waitReady(page);
  await waitPoolLoaded(page);
  const embedders = [];
  for (const worker of page.workers()) if ((await worker.evaluate(() => self.name)) === "graft-embedder") embedders.push(worker);
  assert.equal(embedders.length, 2, "a pool of two on this machine's two cores");
  // The first embedder hangs: busy forever, as a wasm loop that never returns would be.
  await embedders[0].evaluate(() => {
    setTimeout(() => {
      for (;;);
    }, 0);
  });
  const started = Date.now();
  await page.locator('[data-testid="class-upload"]').first().setInputFiles(files.slice(0, 12));
  await page.waitForFunction(() => !document.querySelector(".class-card .pending"), null, { timeout: 120_000 });
  const seconds = (Date.now() - started) / 1000;
  const note = await page.locator('[data-testid="pool-note"]').textContent();
  console.log(`12 samples with a hung embedder: ${seconds.toFixed(1)} s; note: ${note}`);
  assert.match(note, /An embedding worker did not answer for 12 s: a new one took its place/);
  assert.equal(await page.locator('[data-testid="sample-count"]').first().textContent(), "12");
  await waitPoolLoaded(page);
  assert.equal(await page.locator('[data-testid="pool-size"]').getAttribute("data-workers"), "2", "two again");
  const records = await page.evaluate(async () => {
    const db = await new Promise((ok) => {
      const open = indexedDB.open("graft");
      open.onsuccess = () => ok(open.result);
    });
    const keys = await new Promise((ok) => {
      const all = db.transaction("samples").objectStore("samples").getAllKeys();
      all.onsuccess = () => ok(all.result);
    });
    db.close();
    return keys.length;
  });
  assert.equal(records, 12, "each sample saved once");
  assert.deepEqual(problems, []);
  await page.context().close();
});
