// Offline use: after one visit the service worker has the app and its weights, so with the
// network off the page reloads, trains and predicts. The page's Content-Security-Policy
// allows only its own origin.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openGraft, waitReady as ready, PHOTOS } from "./browser.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});


test("with the network off, the page reloads from its service worker, trains and predicts", async () => {
  const { page, problems } = await openGraft(browser);
  await ready(page);
  const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute("content");
  assert.match(csp, /default-src 'self'/);
  assert.doesNotMatch(csp, /https?:|\*/, "no other origin is allowed");
  assert.equal(await page.locator('link[rel="manifest"]').count(), 1);
  // Installed and activated: every file of the site is in its cache.
  const cached = await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
    const names = await caches.keys();
    const cache = await caches.open(names.find((n) => n.startsWith("graft-")));
    return (await cache.keys()).map((r) => new URL(r.url).pathname);
  });
  for (const file of ["/", "/graft-worker_bg.wasm", "/models/mobilenet_v2.safetensors", "/manifest.webmanifest"]) {
    assert.ok(cached.includes(file), `${file} is cached (${cached.length} files)`);
  }

  await page.context().setOffline(true);
  await page.reload();
  await ready(page);
  const cards = page.locator('[data-testid="class-card"]');
  await cards.nth(0).locator('[data-testid="class-upload"]').setInputFiles([PHOTOS.chelsea, PHOTOS.baboon]);
  await cards.nth(1).locator('[data-testid="class-upload"]').setInputFiles([PHOTOS.coffee]);
  await page.waitForFunction(() => !document.querySelector(".class-card .pending"), null, { timeout: 120_000 });
  await page.locator('[data-testid="epochs"]').fill("5");
  await page.locator('[data-testid="epochs"]').press("Tab");
  await page.locator('[data-testid="train"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]')?.textContent === "done", null, {
    timeout: 120_000,
  });
  await page.locator('[data-testid="predict-upload"]').setInputFiles(PHOTOS.coffee);
  await page.waitForFunction(() => document.querySelector(".predict-panel .timing")?.textContent.startsWith("coffee.png"));
  assert.equal(await page.locator('[data-testid="prediction"]').count(), 2);
  assert.deepEqual(problems, []);
  await page.context().close();
});
