// Choosing the pretrained model: the picker lists both backbones with their download size,
// ImageNet top-1 and measured speed; "Which model fits?" scores each one by LogME on the
// labelled samples; switching keeps the classes and embeds the stored images again with a
// progress bar; the new backbone trains and predicts, and a reload keeps it (and its model).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { fashionMnistFolder, fillClasses, sortedFiles, launch, openGraft, predictUpload, waitReady as ready } from "./browser.mjs";

const CLASSES = ["Trouser", "Bag"];
const PER_CLASS = 6;

let browser;
let trainDir;
let testDir;

before(async () => {
  browser = await launch();
  trainDir = fashionMnistFolder("train", PER_CLASS, 9);
  testDir = fashionMnistFolder("test", 1, 9);
});
after(async () => {
  await browser?.close();
});

const files = sortedFiles;

const select = (page) => page.locator('[data-testid="backbone-select"]');

/** Class names with their sample counts, as the cards show them. */
const counts = (page) =>
  page.locator('[data-testid="class-card"]').evaluateAll((cards) =>
    cards.map((c) => [c.dataset.className, c.querySelector('[data-testid="sample-count"]').textContent]),
  );

/** The LogME scores the page shows, in its order. */
async function rank(page) {
  await page.locator('[data-testid="rank-backbones"]').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="backbone-score"]').length === 2 &&
    !document.querySelector('[data-testid="ranking"]'), null, { timeout: 180_000 });
  return page
    .locator('[data-testid="backbone-score"]')
    .evaluateAll((items) => items.map((li) => [li.dataset.backbone, Number(li.dataset.score)]));
}

/** Picks `id` and waits until it is loaded and the project is open again. */
async function switchTo(page, id) {
  await select(page).selectOption(id);
  await page.waitForFunction(
    (id) => document.querySelector('[data-testid="backbone-select"]')?.value === id &&
      document.querySelector('[data-ready="true"]') && !document.querySelector('[data-testid="reembed-progress"]') &&
      !document.querySelector('[data-testid="backbone-select"]').disabled,
    id,
    { timeout: 180_000 },
  );
}

test("which model fits, switching backbones keeps the classes, and a reload keeps the backbone", async () => {
  const { page, problems } = await openGraft(browser);
  await ready(page);
  const options = await select(page).locator("option").evaluateAll((os) => os.map((o) => [o.value, o.textContent]));
  assert.deepEqual(options.map(([value]) => value), ["mobilenet_v2", "efficientnet_lite0"]);
  assert.match(options[0][1], /MobileNetV2 1\.0 · 14\.2 MB · ImageNet top-1 71\.9% · \d+ ms per image here/);
  assert.match(options[1][1], /EfficientNet-Lite0 · 18\.8 MB · ImageNet top-1 75\.1% · speed not measured yet/);
  assert.equal(await select(page).inputValue(), "mobilenet_v2");

  await fillClasses(page, CLASSES, (name) => files(trainDir, name));
  const before = await counts(page);
  assert.deepEqual(before, [["Trouser", "6"], ["Bag", "6"]]);

  // Switching embeds the stored images again, with a progress bar the page shows.
  await page.evaluate(() => {
    window.sawReembedding = false;
    new MutationObserver(() => {
      if (document.querySelector('[data-testid="reembed-progress"]')) window.sawReembedding = true;
    }).observe(document.body, { childList: true, subtree: true });
  });
  await switchTo(page, "efficientnet_lite0");
  assert.equal(await page.evaluate(() => window.sawReembedding), true, "the re-embedding progress was shown");
  assert.deepEqual(await counts(page), before, "the classes and samples stayed");
  assert.match(await select(page).locator("option").nth(1).textContent(), /\d+ ms per image here/);
  assert.match(await page.locator(".model-name").textContent(), /EfficientNet-Lite0/);
  // The freeze picture shows its blocks: stem, 16 MBConv blocks, head.
  const chips = page.locator('[data-testid="block-chip"]');
  assert.equal(await chips.count(), 18);
  assert.match(await chips.first().textContent(), /_conv_stem/);

  // Both backbones scored (the switch cached both backbones' features), best first.
  const scores = await rank(page);
  assert.deepEqual(scores.map(([b]) => b).sort(), ["efficientnet_lite0", "mobilenet_v2"]);
  for (const [, score] of scores) assert.ok(Number.isFinite(score), `${score}`);
  assert.ok(scores[0][1] >= scores[1][1], "best first");

  // The new backbone trains and predicts; a reload keeps it and its model.
  await page.locator('[data-testid="epochs"]').fill("8");
  await page.locator('[data-testid="epochs"]').press("Tab");
  await page.locator('[data-testid="train"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]')?.textContent === "done", null, {
    timeout: 120_000,
  });
  const unseen = files(testDir, "Bag")[0];
  const predicted = Object.fromEntries(await predictUpload(page, unseen));
  assert.ok(predicted.Bag > predicted.Trouser, JSON.stringify(predicted));
  await page.reload();
  await ready(page);
  await page.waitForFunction(() => document.querySelector('[data-testid="backbone-select"]')?.value === "efficientnet_lite0");
  assert.deepEqual(await counts(page), before);
  const again = Object.fromEntries(await predictUpload(page, unseen));
  for (const name of CLASSES) assert.ok(Math.abs(again[name] - predicted[name]) < 1e-5, `${name}: ${again[name]} vs ${predicted[name]}`);

  // Back to MobileNetV2: its saved features serve (no re-embedding), the classes stay.
  await switchTo(page, "mobilenet_v2");
  assert.deepEqual(await counts(page), before);
  assert.deepEqual(problems, []);
});
