// Fine-tuning as a student meets it: the backbone's blocks as chips, unfreeze the last two,
// see augmented samples, train in two stages (head, then fine-tune), predict with the result.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fashionMnistFolder, launch, openGraft, predictUpload } from "./browser.mjs";

const CLASSES = ["T-shirt", "Trouser"];
let browser;
let trainDir;
let testDir;


const files = (dir, name) => readdirSync(join(dir, name)).map((f) => join(dir, name, f));
const text = (page, id) => page.locator(`[data-testid="${id}"]`).textContent();
const trainable = (page) =>
  page.locator('[data-testid="block-chip"]').evaluateAll((chips) => chips.map((c) => c.dataset.trainable === "true"));

before(async () => {
  browser = await launch();
  trainDir = fashionMnistFolder("train", 12, 2);
  testDir = fashionMnistFolder("test", 2, 2);
});
after(async () => {
  await browser?.close();
});

test("unfreezing the last two blocks trains head then fine-tune, and the model predicts", async () => {
  const { page, problems } = await openGraft(browser);
  await page.locator('[data-ready="true"]').waitFor({ timeout: 180_000 });

  // The freeze picture: 19 blocks, all frozen by default (feature extraction).
  assert.deepEqual(await trainable(page), Array(19).fill(false));
  const headOnly = await text(page, "trainable-params");
  assert.equal(await page.locator('[data-testid="augment"]').isChecked(), false, "no augmentation for the head alone");

  // Out of range is named.
  await page.locator('[data-testid="unfreeze"]').fill("20");
  await page.locator('[data-testid="error"]').waitFor();
  assert.match(await text(page, "error"), /between 0 and 19/);

  // The last two blocks, and only they, become trainable; augmentation turns on with them.
  await page.locator('[data-testid="unfreeze"]').fill("2");
  await page.waitForFunction(() => !document.querySelector('[data-testid="error"]'));
  const expected = Array(19).fill(false).fill(true, 17);
  assert.deepEqual(await trainable(page), expected);
  assert.notEqual(await text(page, "trainable-params"), headOnly);
  assert.equal(await page.locator('[data-testid="augment"]').isChecked(), true, "augmentation on when fine-tuning");
  await page.locator('[data-testid="head-epochs"]').fill("2");
  await page.locator('[data-testid="epochs"]').fill("5");
  assert.equal(await page.locator('[data-testid="backbone-lr"]').inputValue(), "0.0001");

  const cards = page.locator('[data-testid="class-card"]');
  for (let i = 0; i < 2; i++) {
    await cards.nth(i).locator('[data-testid="class-name"]').fill(CLASSES[i]);
    const card = page.locator(`[data-testid="class-card"][data-class-name="${CLASSES[i]}"]`);
    await card.locator('[data-testid="class-upload"]').setInputFiles(files(trainDir, CLASSES[i]));
  }
  await page.waitForFunction(() => !document.querySelector(".class-card .pending"), null, { timeout: 180_000 });

  // A preview of augmented samples.
  await page.locator('[data-testid="preview-augment"]').click();
  await page.locator('[data-testid="augment-preview"] img').first().waitFor();
  assert.ok((await page.locator('[data-testid="augment-preview"] img').count()) >= 2);

  const started = Date.now();
  await page.locator('[data-testid="train"]').click();
  const stages = new Set();
  await page.waitForFunction(() => document.querySelector('[data-testid="train-stage"]')?.textContent === "head", null, {
    timeout: 180_000,
  });
  stages.add("head");
  await page.waitForFunction(
    () => document.querySelector('[data-testid="train-stage"]')?.textContent === "fine-tune",
    null,
    { timeout: 180_000 },
  );
  stages.add("fine-tune");
  await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]')?.textContent === "done", null, {
    timeout: 300_000,
  });
  const millis = Date.now() - started;
  assert.deepEqual([...stages], ["head", "fine-tune"]);
  assert.deepEqual(await trainable(page), expected, "the chips still show the run's trainable blocks");
  await page.locator('[data-testid="loss-chart"] [data-testid="stage-marker"]').waitFor();
  assert.match(await text(page, "cache-size"), /augmented view/);
  const accuracy = Number.parseFloat(await text(page, "val-accuracy"));

  // The fine-tuned model predicts unseen images.
  let correct = 0;
  const unseen = CLASSES.flatMap((name) => files(testDir, name).map((file) => [name, file]));
  for (const [name, file] of unseen) {
    const bars = await predictUpload(page, file);
    assert.equal(bars.length, 2);
    correct += bars.reduce((a, b) => (b[1] > a[1] ? b : a))[0] === name ? 1 : 0;
  }
  console.log(`# fine-tuning 2 blocks on 24 images: ${millis} ms; validation ${accuracy}%; unseen ${correct}/${unseen.length}`);
  assert.ok(correct >= unseen.length - 1, `unseen images right: ${correct}/${unseen.length}`);
  assert.deepEqual(problems, []);
  await page.close();
});
