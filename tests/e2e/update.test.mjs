// A new version of the app. Saved projects written in database version 1 (a fixture made by
// the last build with that layout, `make_db_fixture.mjs`) are upgraded on opening: the project,
// its samples and its trained model are all there, and every record has its checksum. A new
// service worker installs beside the running one: the page says an update is ready, waits
// while training, and reloads into the new version when asked, which removes the old cache.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { BASE_URL, fashionMnistFolder, launch, openGraft, predictUpload, sortedFiles, waitReady } from "./browser.mjs";

let browser;
let dir;
before(async () => {
  browser = await launch();
  dir = fashionMnistFolder("test", 5, 9);
});
after(async () => {
  await browser?.close();
});

/** Writes `dump` (the fixture: records as `{s|n|u8|f32|a}`) into a version-1 database `graft`. */
function restoreDump(page, dump) {
  return page.evaluate(async (dump) => {
    const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const decode = (v) =>
      "s" in v ? v.s : "n" in v ? v.n : "u8" in v ? bytes(v.u8) : "f32" in v ? new Float32Array(bytes(v.f32).buffer) : v.a.map(decode);
    const db = await new Promise((ok, fail) => {
      const open = indexedDB.open("graft", dump.version);
      open.onupgradeneeded = () => Object.keys(dump.stores).forEach((name) => open.result.createObjectStore(name));
      open.onsuccess = () => ok(open.result);
      open.onerror = () => fail(open.error);
    });
    const transaction = db.transaction(Object.keys(dump.stores), "readwrite");
    for (const [name, records] of Object.entries(dump.stores)) {
      for (const [key, value] of records) transaction.objectStore(name).put(decode(value), key);
    }
    await new Promise((ok) => (transaction.oncomplete = ok));
    db.close();
  }, dump);
}

/** The database's version and the number of parts of each store's first record. */
const layout = (page) =>
  page.evaluate(async () => {
    const db = await new Promise((ok) => {
      const open = indexedDB.open("graft");
      open.onsuccess = () => ok(open.result);
    });
    const parts = {};
    for (const name of db.objectStoreNames) {
      const values = await new Promise((ok) => (db.transaction(name).objectStore(name).getAll().onsuccess = (e) => ok(e.target.result)));
      parts[name] = values.map((v) => (Array.isArray(v) && typeof v[v.length - 1] === "string" ? v.length : 0));
    }
    const version = db.version;
    db.close();
    return { version, parts };
  });

const cards = (page) =>
  page
    .locator('[data-testid="class-card"]')
    .evaluateAll((all) => all.map((c) => [c.dataset.className, c.querySelector('[data-testid="sample-count"]').textContent]));

test("projects saved by version 1 of the database are upgraded, model and all", async () => {
  const dump = JSON.parse(readFileSync(new URL("fixtures/graft-db-v1.json", import.meta.url), "utf8"));
  assert.equal(dump.version, 1);
  const { page, problems } = await openGraft(browser, {
    // The first load writes the old records before the app runs: a blank page of the origin.
    setUp: (page) => page.route(BASE_URL, (route) => route.fulfill({ contentType: "text/html", body: "<title>old</title>" })),
  });
  await restoreDump(page, dump);
  await page.unroute(BASE_URL);
  await page.goto(BASE_URL);
  await waitReady(page);
  assert.equal(await page.locator('[data-testid="project-name"]').inputValue(), "Old lesson");
  assert.deepEqual(await cards(page), [
    ["Trouser", "3"],
    ["Bag", "3"],
  ]);
  assert.equal(await page.locator('[data-testid="train-status"]').textContent(), "done", "the model came along");
  const bars = Object.fromEntries(await predictUpload(page, sortedFiles(dir, "Bag")[0]));
  assert.ok(bars.Bag > bars.Trouser, `the old model predicts without retraining: ${JSON.stringify(bars)}`);
  const { version, parts } = await layout(page);
  assert.equal(version, 2);
  assert.deepEqual(parts, { embeddings: [4, 4, 4, 4, 4, 4], projects: [2], samples: [4, 4, 4, 4, 4, 4], weights: [3] });
  assert.equal(await page.locator('[data-testid="storage-problem"]').count(), 0);
  assert.deepEqual(problems, []);
  await page.context().close();
});

/** Serves the built site (`pkg/`) with `sw.js` from memory, so that a test can publish a new
 * version of it; the headers are the dev server's. */
function siteServer() {
  const root = new URL("../../pkg/", import.meta.url).pathname;
  const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png", ".webmanifest": "application/manifest+json" };
  const site = { sw: readFileSync(join(root, "sw.js"), "utf8") };
  const server = createServer((request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url, "http://x").pathname)).replace(/^\/+/, "") || "index.html";
    let body;
    try {
      body = path === "sw.js" ? site.sw : readFileSync(join(root, path));
    } catch {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, {
      "Content-Type": types[extname(path)] ?? "application/octet-stream",
      "Cache-Control": "no-cache",
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Embedder-Policy": "require-corp",
    });
    response.end(body);
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok({ server, site, url: `http://127.0.0.1:${server.address().port}/` })));
}

test("a new version waits, says so, and reloads into itself when asked (not while training)", async () => {
  const { server, site, url } = await siteServer();
  try {
    await updateTo(site, url);
  } finally {
    server.close();
  }
});

/** Opens `url`, publishes a new `site.sw`, and takes the update when allowed. */
async function updateTo(site, url) {
  const page = await browser.newPage({ locale: "en-US" });
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  await page.goto(url);
  await waitReady(page);
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
  const oldCache = site.sw.match(/graft-[0-9a-f]+/)[0];
  assert.deepEqual(await page.evaluate(() => caches.keys()), [oldCache]);
  await page.locator('[data-testid="class-upload"]').first().setInputFiles(sortedFiles(dir, "Bag"));
  await page.locator('[data-testid="class-upload"]').nth(1).setInputFiles(sortedFiles(dir, "Trouser"));
  await page.waitForFunction(() => !document.querySelector(".class-card .pending"));

  // Publish a new version and let the browser look for it.
  site.sw = site.sw.replace(oldCache, `${oldCache}0`);
  await page.evaluate(() => navigator.serviceWorker.getRegistration().then((r) => r.update()));
  await page.locator('[data-testid="update-ready"]').waitFor({ timeout: 120_000 });
  assert.deepEqual(await page.evaluate(() => caches.keys()).then((k) => k.sort()), [oldCache, `${oldCache}0`].sort(), "beside the old");

  await page.locator('[data-testid="epochs"]').fill("10000");
  await page.locator('[data-testid="epochs"]').press("Tab");
  await page.locator('[data-testid="train"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]')?.dataset.status === "training");
  assert.equal(await page.locator('[data-testid="update-reload"]').isDisabled(), true, "never in the middle of training");
  await page.locator('[data-testid="stop"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]')?.dataset.status === "done");

  await Promise.all([page.waitForEvent("load"), page.locator('[data-testid="update-reload"]').click()]);
  await waitReady(page);
  assert.deepEqual(await page.evaluate(() => caches.keys()), [`${oldCache}0`], "the old cache is gone");
  assert.equal(await page.locator('[data-testid="update-ready"]').count(), 0);
  assert.deepEqual(await cards(page), [
    ["Class 1", "5"],
    ["Class 2", "5"],
  ]);
  assert.deepEqual(problems, []);
  await page.context().close();
}
