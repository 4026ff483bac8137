// Nothing lost: a reload brings back the project and its trained model (which predicts without
// retraining); projects can be listed, renamed, switched and deleted; a .graft export imported
// into a fresh profile predicts the same; an exported model runs in `graft predict`; a broken
// .graft file is refused and leaves the open project as it was; and after the page has loaded,
// none of this makes a single network request.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  fashionMnistFolder,
  fillClasses,
  sortedFiles,
  launch,
  openGraft,
  predictUpload,
  recordRequests,
  waitPoolLoaded,
  waitReady as ready,
} from "./browser.mjs";

const CLASSES = ["Trouser", "Bag"];
const PER_CLASS = 8;

let browser;
let trainDir;
let testDir;
const downloads = mkdtempSync(join(tmpdir(), "graft-downloads-"));

const files = sortedFiles;

before(async () => {
  browser = await launch();
  // Fashion-MNIST classes 1 (Trouser) and 8 (Bag): the folder script names classes by index.
  trainDir = fashionMnistFolder("train", PER_CLASS, 9);
  testDir = fashionMnistFolder("test", 2, 9);
});
after(async () => {
  await browser?.close();
});

const text = (page, id) => page.locator(`[data-testid="${id}"]`).first().textContent();
/** The element's text, or null when the page does not show it. */
const textIfShown = async (page, id) => ((await page.locator(`[data-testid="${id}"]`).count()) ? text(page, id) : null);

/** The probabilities the trained model gives `file` (by class name). */
const predict = async (page, file) => Object.fromEntries(await predictUpload(page, file));

async function fillAndTrain(page) {
  await fillClasses(page, CLASSES, (name) => files(trainDir, name));
  await page.locator('[data-testid="epochs"]').fill("12");
  await page.locator('[data-testid="epochs"]').press("Tab");
  await page.locator('[data-testid="train"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]')?.textContent === "done", null, {
    timeout: 120_000,
  });
}

/** What the page shows of the project: class names, counts, thumbnails, settings, results. */
async function shown(page) {
  const cards = page.locator('[data-testid="class-card"]');
  const classes = [];
  for (let i = 0; i < (await cards.count()); i++) {
    const card = cards.nth(i);
    classes.push([
      await card.getAttribute("data-class-name"),
      await card.locator('[data-testid="sample-count"]').textContent(),
      await card.locator("img").count(),
    ]);
  }
  return {
    classes,
    epochs: await page.locator('[data-testid="epochs"]').inputValue(),
    accuracy: await textIfShown(page, "val-accuracy"),
    confusion: await textIfShown(page, "confusion-matrix"),
    curve: (await page.locator('[data-testid="loss-chart"] polyline').count())
      ? await page.locator('[data-testid="loss-chart"] polyline').first().getAttribute("points")
      : null,
  };
}

async function download(page, testid) {
  const [file] = await Promise.all([page.waitForEvent("download"), page.locator(`[data-testid="${testid}"]`).click()]);
  const path = join(downloads, file.suggestedFilename());
  await file.saveAs(path);
  return path;
}

test("a reload restores the project and its model, projects are managed, and nothing is requested", async () => {
  const { page, problems } = await openGraft(browser);
  await ready(page);
  await waitPoolLoaded(page);
  const requests = recordRequests(page);
  await fillAndTrain(page);
  const before = await shown(page);
  assert.deepEqual(before.classes, [
    ["Trouser", "8", 8],
    ["Bag", "8", 8],
  ]);
  const unseen = files(testDir, "Bag")[0];
  const predicted = await predict(page, unseen);
  assert.match(await text(page, "storage-used"), /Saved in this browser: [\d.]+ [kMG]B of [\d.]+ [kMG]B/);
  const modelFile = await download(page, "export-model");
  assert.deepEqual(requests, [], "no request after the page loaded");

  await page.reload();
  await ready(page);
  assert.deepEqual(await shown(page), before, "the reload brought back what the page showed");
  assert.equal(await page.locator('[data-testid="predict-upload"]').isEnabled(), true, "ready to predict");
  const again = await predict(page, unseen);
  for (const name of CLASSES) assert.ok(Math.abs(again[name] - predicted[name]) < 1e-5, `${name}: ${again[name]} vs ${predicted[name]}`);

  // graft predict runs the exported model natively and agrees with the page.
  const cli = spawnSync(process.env.GRAFT_BIN ?? "target/release/graft", ["predict", "--model", modelFile, "--json", "--backend", "cpu", unseen]);
  assert.equal(cli.status, 0, String(cli.stderr));
  const [result] = JSON.parse(String(cli.stdout));
  for (const { label, prob } of result.predictions) assert.ok(Math.abs(prob - predicted[label]) < 1e-3, `${label}: ${prob}`);

  // A second project: new, renamed, listed; switching back restores the first; deleting it
  // (after a confirmation) opens the other.
  const firstId = await page.locator('[data-testid="project-select"]').inputValue();
  await page.locator('[data-testid="new-project"]').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="project-select"] option').length === 2);
  await ready(page);
  assert.deepEqual((await shown(page)).classes, [
    ["Class 1", "0", 0],
    ["Class 2", "0", 0],
  ]);
  await page.locator('[data-testid="project-name"]').fill("Second lesson");
  await page.locator('[data-testid="project-name"]').press("Tab");
  await page.waitForFunction(() => /Second lesson/.test(document.querySelector('[data-testid="project-select"]').textContent));
  await page.locator('[data-testid="project-select"]').selectOption(firstId);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="class-card"] img').length === 16);
  assert.deepEqual((await shown(page)).classes, before.classes);
  page.once("dialog", (dialog) => dialog.accept());
  await page.locator('[data-testid="delete-project"]').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="project-select"] option').length === 1);
  await ready(page);
  assert.equal(await page.locator('[data-testid="project-name"]').inputValue(), "Second lesson");
  await page.reload();
  await ready(page);
  assert.equal(await page.locator('[data-testid="project-name"]').inputValue(), "Second lesson");
  assert.equal(await page.locator('[data-testid="project-select"] option').count(), 1);
  assert.deepEqual(problems, []);
  await page.context().close();
});

test("an exported project imported into a fresh profile predicts the same, and broken files are refused", async () => {
  const { page, problems } = await openGraft(browser);
  await ready(page);
  await fillAndTrain(page);
  const unseen = files(testDir, "Trouser")[1];
  const predicted = await predict(page, unseen);
  const before = await shown(page);
  const projectFile = await download(page, "export-project");
  assert.match(projectFile, /\.graft$/);
  await page.context().close();

  const fresh = await openGraft(browser);
  await ready(fresh.page);
  await waitPoolLoaded(fresh.page);
  const requests = recordRequests(fresh.page);
  // A broken file first: refused with a message, the open project untouched.
  const broken = join(downloads, "broken.graft");
  writeFileSync(broken, readFileSync(projectFile).subarray(0, 3000));
  await fresh.page.locator('[data-testid="import-project"]').setInputFiles(broken);
  await fresh.page.locator('[data-testid="error"]').waitFor();
  assert.match(await text(fresh.page, "error"), /broken\.graft is not a usable Graft project/);
  assert.deepEqual((await shown(fresh.page)).classes, [
    ["Class 1", "0", 0],
    ["Class 2", "0", 0],
  ]);
  await fresh.page.locator('[data-testid="import-project"]').setInputFiles(projectFile);
  await fresh.page.waitForFunction(() => document.querySelectorAll('[data-testid="class-card"] img').length === 16, null, {
    timeout: 120_000,
  });
  await ready(fresh.page);
  assert.deepEqual(await shown(fresh.page), before);
  const imported = await predict(fresh.page, unseen);
  for (const name of CLASSES) assert.ok(Math.abs(imported[name] - predicted[name]) < 1e-5, `${name}: ${imported[name]} vs ${predicted[name]}`);
  assert.equal(await fresh.page.locator('[data-testid="project-select"] option').count(), 2, "the import is a new project");
  assert.deepEqual(requests, [], "no request after the page loaded");
  assert.deepEqual(fresh.problems, []);
  assert.deepEqual(problems, []);
  await fresh.page.context().close();
});
