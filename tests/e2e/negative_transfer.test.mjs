// Negative transfer in the page: every run is followed by the same head trained on the raw
// pixels (same split and seed); on real photos the page says transfer helps, and on classes
// that differ only in an invisible pixel pattern it warns that transfer is not helping and says
// what to try. The comparison survives a reload.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fillClasses, sortedFiles, launch, openGraft, waitReady as ready } from "./browser.mjs";

let browser;

/** `transfer_datasets.py KIND` into a fresh folder. */
function dataset(kind, perClass) {
  const dir = mkdtempSync(join(tmpdir(), `graft-${kind}-`));
  const script = new URL("../reference/transfer_datasets.py", import.meta.url).pathname;
  const run = spawnSync("/usr/bin/python3", [script, kind, dir, "--per-class", String(perClass)]);
  assert.equal(run.status, 0, String(run.stderr));
  return dir;
}

const files = sortedFiles;

before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** Fills one class card per folder of `dir`, trains with 30% validation, waits for the
 * baseline's comparison and returns it. */
async function trainAndCompare(page, dir, classes) {
  await fillClasses(page, classes, (name) => files(dir, name));
  await page.locator('[data-testid="val-fraction"]').fill("0.3");
  await page.locator('[data-testid="val-fraction"]').press("Tab");
  await page.locator('[data-testid="train"]').click();
  await page.locator('[data-testid="baseline-accuracy"]').waitFor({ timeout: 180_000 });
  const shown = page.locator('[data-testid="baseline-accuracy"]');
  return { baseline: Number(await shown.getAttribute("data-baseline")), transferred: Number(await shown.getAttribute("data-transferred")) };
}

test("on real photos transfer helps and no warning appears", async () => {
  const { page, problems } = await openGraft(browser);
  await ready(page);
  const { baseline, transferred } = await trainAndCompare(page, dataset("photos", 10), ["astronaut", "coffee", "chelsea"]);
  assert.ok(transferred >= baseline + 0.02, `transferred ${transferred}, pixels ${baseline}`);
  assert.equal(await page.locator('[data-testid="transfer-warning"]').count(), 0);
  assert.equal(await page.locator('[data-testid="transfer-helps"]').count(), 1);
  assert.deepEqual(problems, []);
  await page.close();
});

test("on an invisible pixel pattern the page warns that transfer is not helping, also after a reload", async () => {
  const { page, problems } = await openGraft(browser);
  await ready(page);
  const { baseline, transferred } = await trainAndCompare(page, dataset("pattern", 30), ["minus", "plus"]);
  assert.ok(baseline > transferred + 0.2, `transferred ${transferred}, pixels ${baseline}`);
  const warning = page.locator('[data-testid="transfer-warning"]');
  assert.match(await warning.textContent(), /Transfer is not helping here.*another backbone.*Fine-tune.*more images/s);
  await page.reload();
  await ready(page);
  await warning.waitFor();
  assert.deepEqual(problems, []);
  await page.close();
});
