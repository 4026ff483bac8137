// Seconds per epoch of fine-tuning in the browser tab, as a person would run it: an ImageFolder
// uploaded into the page's classes, then for each number of unfrozen blocks a short run (one
// head-only epoch, then fine-tuning epochs), read from the page's own figures (samples per second
// of the last epoch). The README's fine-tuning table takes its browser column from here.
//
//   GRAFT_URL=http://127.0.0.1:8080/ node tests/bench/finetune_page.mjs DIR [--runs 0,2,5,8] [--epochs 3] [--augment]
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { launch, openGraft } from "../e2e/browser.mjs";

const args = process.argv.slice(2);
const dir = args[0];
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const runs = option("--runs", "0,2,5,8").split(",").map(Number);
const epochs = Number(option("--epochs", "3"));
const augment = args.includes("--augment");
if (!dir) throw new Error("usage: node tests/bench/finetune_page.mjs DIR [--runs 0,2,5,8] [--epochs 3] [--augment]");

const classes = readdirSync(dir).sort();
const browser = await launch();
const { page, problems } = await openGraft(browser);
await page.locator('[data-ready="true"]').waitFor({ timeout: 180_000 });
const cards = page.locator('[data-testid="class-card"]');
while ((await cards.count()) < classes.length) await page.locator('[data-testid="add-class"]').click();
const started = Date.now();
let images = 0;
for (let i = 0; i < classes.length; i++) {
  await cards.nth(i).locator('[data-testid="class-name"]').fill(classes[i]);
  const files = readdirSync(join(dir, classes[i])).sort().map((f) => join(dir, classes[i], f));
  images += files.length;
  await cards.nth(i).locator('[data-testid="class-upload"]').setInputFiles(files);
}
await page.waitForFunction(() => !document.querySelector(".class-card .pending"), null, { timeout: 1_800_000 });
console.log(`embedded ${classes.length} classes in ${((Date.now() - started) / 1000).toFixed(1)} s`);

const set = async (id, value) => {
  await page.locator(`[data-testid="${id}"]`).fill(String(value));
  await page.locator(`[data-testid="${id}"]`).press("Tab");
};
await set("val-fraction", 0.3333334);
await set("epochs", epochs);
for (const unfreeze of runs) {
  await set("unfreeze", unfreeze);
  if (unfreeze > 0) await set("head-epochs", 1);
  const box = page.locator('[data-testid="augment"]');
  if ((await box.isChecked()) !== augment) await box.click();
  const runStarted = Date.now();
  await page.locator('[data-testid="train"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]')?.textContent === "training");
  await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]')?.textContent === "done", null, {
    timeout: 3_600_000,
  });
  const numbers = await page.locator(".metrics .numbers").first().textContent();
  const perSecond = Number(/([\d.]+) samples\/s/.exec(numbers)[1]);
  const heading = await page.locator(".metrics h3").first().textContent();
  const trainSamples = images - Number(/scored on (\d+) validation samples/.exec(heading)[1]);
  const accuracy = await page.locator('[data-testid="val-accuracy"]').textContent();
  const cache = (await page.locator('[data-testid="cache-size"]').count()) ? await page.locator('[data-testid="cache-size"]').textContent() : "";
  console.log(
    JSON.stringify({ unfreeze, augment, seconds_per_epoch: trainSamples / perSecond, run_seconds: (Date.now() - runStarted) / 1000, accuracy, cache }),
  );
}
if (problems.length) console.log(`page problems: ${problems.join("; ")}`);
await browser.close();
