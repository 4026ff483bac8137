// Capturing examples with a (fake) webcam: hold Record, frames arrive in the class; then
// train and predict live from the camera.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, openGraft, recordRequests, waitPoolLoaded } from "./browser.mjs";

let browser;
before(async () => {
  // The fake camera plays real images: Fashion-MNIST T-shirts, as a Y4M clip.
  const dir = mkdtempSync(join(tmpdir(), "graft-webcam-"));
  const script = (name) => new URL(`../reference/${name}`, import.meta.url).pathname;
  const folder = spawnSync("/usr/bin/python3", [script("fashion_mnist_folder.py"), dir, "--per-class", "8", "--classes", "1"]);
  assert.equal(folder.status, 0, String(folder.stderr));
  const clip = join(dir, "clip.y4m");
  const y4m = spawnSync("/usr/bin/python3", [script("make_y4m.py"), join(dir, "T-shirt"), clip]);
  assert.equal(y4m.status, 0, String(y4m.stderr));
  browser = await launch([`--use-file-for-fake-video-capture=${clip}`]);
});
after(async () => {
  await browser?.close();
});

async function holdRecord(page, card, millis) {
  const record = card.locator('[data-testid="record"]');
  await record.hover();
  await page.mouse.down();
  await page.waitForTimeout(millis);
  await page.mouse.up();
}

test("holding Record captures webcam frames into the class, and live prediction runs", async () => {
  const { page, problems } = await openGraft(browser);
  await page.locator('[data-ready="true"]').waitFor({ timeout: 180_000 });
  await waitPoolLoaded(page);
  const requests = recordRequests(page);
  const cards = page.locator('[data-testid="class-card"]');
  assert.ok(await cards.first().locator('[data-testid="record"]').isDisabled(), "Record needs the camera on");

  await page.locator('[data-testid="camera-toggle"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="webcam-video"]')?.videoWidth > 0);

  await holdRecord(page, cards.nth(0), 1200);
  const first = Number(await cards.nth(0).locator('[data-testid="sample-count"]').textContent());
  assert.ok(first >= 5 && first <= 20, `${first} frames in 1.2 s at 10 fps`);
  // Releasing the button stops recording.
  await page.waitForTimeout(400);
  assert.equal(Number(await cards.nth(0).locator('[data-testid="sample-count"]').textContent()), first);

  // Keyboard: Space held on the focused button records too.
  await cards.nth(1).locator('[data-testid="record"]').focus();
  await page.keyboard.down(" ");
  await page.waitForTimeout(800);
  await page.keyboard.up(" ");
  assert.ok(Number(await cards.nth(1).locator('[data-testid="sample-count"]').textContent()) >= 3);

  await page.waitForFunction(() => !document.querySelector(".class-card .pending"), null, { timeout: 120_000 });
  await page.locator('[data-testid="epochs"]').fill("5");
  await page.locator('[data-testid="epochs"]').press("Tab");
  await page.locator('[data-testid="train"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]')?.textContent === "done");

  await page.locator('[data-testid="live-predict"]').click();
  await page.waitForFunction(() =>
    document.querySelector('[data-testid="prediction-source"]')?.textContent.includes("frames per second"),
  );
  const bars = await page.locator('[data-testid="prediction"]').count();
  assert.equal(bars, 2);
  await page.locator('[data-testid="live-predict"]').click();
  assert.deepEqual(requests, [], "capturing, training and live prediction make no request");
  assert.deepEqual(problems, []);
  await page.close();
});

test("a class of 200 webcam frames is embedded while it is recorded", async () => {
  const { page, problems } = await openGraft(browser);
  await page.locator('[data-ready="true"]').waitFor({ timeout: 180_000 });
  await page.locator('[data-testid="fps"]').fill("30");
  await page.locator('[data-testid="fps"]').press("Tab");
  await page.locator('[data-testid="camera-toggle"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="webcam-video"]')?.videoWidth > 0);
  const card = page.locator('[data-testid="class-card"]').first();
  const count = async () => Number(await card.locator('[data-testid="sample-count"]').textContent());

  const started = Date.now();
  const record = card.locator('[data-testid="record"]');
  await record.hover();
  await page.mouse.down();
  await page.waitForFunction(
    () => Number(document.querySelector('[data-testid="sample-count"]')?.textContent) >= 200,
    null,
    { timeout: 60_000, polling: 50 },
  );
  await page.mouse.up();
  const released = Date.now();
  const frames = await count();
  await page.waitForFunction(() => !document.querySelector(".class-card .pending"), null, { timeout: 120_000, polling: 50 });
  const drained = Date.now() - released;
  console.log(
    `# ${frames} webcam frames recorded in ${((released - started) / 1000).toFixed(1)} s at 30 fps; ` +
      `the last embedded ${drained} ms after the button was released`,
  );
  assert.ok(frames >= 200);
  assert.deepEqual(problems, []);
  await page.close();
});
