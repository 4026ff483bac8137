// Domain adaptation in the page: an unlabelled bin for images of the new domain (uploaded like
// a class, saved like the rest), the "Adapt to the new domain" option, a run that adapts (the
// domain classifier's accuracy charted beside the loss, with what it means), the kept weights
// named, the labelled check images of the new domain scored with adaptation and without, and
// everything back after a reload.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fillClasses, launch, openGraft, sortedFiles, waitReady as ready } from "./browser.mjs";

const CLASSES = ["Trouser", "Bag"];
let browser;
let data;

before(async () => {
  browser = await launch();
  data = mkdtempSync(join(tmpdir(), "graft-shift-"));
  const script = new URL("../reference/transfer_datasets.py", import.meta.url).pathname;
  const run = spawnSync("/usr/bin/python3", [script, "shift", data, "--per-class", "8"]);
  assert.equal(run.status, 0, String(run.stderr));
});
after(async () => {
  await browser?.close();
});

const files = (...parts) => sortedFiles(data, ...parts);

test("images of the new domain are collected unlabelled and a run adapts to them", async () => {
  const { page, problems } = await openGraft(browser);
  await ready(page);
  const target = page.locator('[data-testid="target-card"]');
  assert.match(await target.textContent(), /Unlabelled: new domain/);
  await fillClasses(page, CLASSES, (name) => files("source", name));
  const unlabelled = files("target").slice(0, 20);
  await target.locator('[data-testid="target-upload"]').setInputFiles(unlabelled);
  await page.waitForFunction(() => !document.querySelector(".class-card .pending"), null, { timeout: 120_000 });
  assert.equal(await page.locator('[data-testid="target-count"]').textContent(), "20");
  // A few labelled images of the new domain, per class, to check with (never trained on).
  const checkUploads = page.locator('[data-testid="check-upload"]');
  assert.equal(await checkUploads.count(), CLASSES.length);
  for (const [i, name] of CLASSES.entries()) {
    await checkUploads.nth(i).setInputFiles(files("target_test", name).slice(0, 4));
  }
  await page.waitForFunction(() => !document.querySelector(".check-set .pending"), null, { timeout: 120_000 });
  assert.deepEqual(await page.locator('[data-testid="check-count"]').allTextContents(), ["4", "4"]);
  assert.match(await page.locator('[data-testid="check-hint"]').textContent(), /Train to measure/);
  const percent = async (testid) => {
    const text = await page.locator(`[data-testid="${testid}"]`).textContent();
    const value = Number(text.replace("%", ""));
    assert.ok(/^\d+%$/.test(text) && value >= 0 && value <= 100, `${testid}: ${text}`);
    return value;
  };
  const trainUntilDone = async () => {
    await page.locator('[data-testid="train"]').click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="train-status"]')?.textContent === "done",
      null,
      { timeout: 180_000 },
    );
  };
  // Without adaptation first: the page measures it and says how to compare.
  await page.locator('[data-testid="epochs"]').fill("10");
  await page.locator('[data-testid="epochs"]').press("Tab");
  await trainUntilDone();
  await page.waitForFunction(() => document.querySelector('[data-testid="check-source-only"]')?.textContent.endsWith("%"));
  const sourceOnly = await percent("check-source-only");
  assert.match(await page.locator('[data-testid="check-hint"]').textContent(), /Turn on/);

  await page.locator('[data-testid="adapt"]').check();
  await trainUntilDone();
  await page.locator('[data-testid="domain-chart"]').waitFor();
  const domain = Number(await page.locator('[data-testid="domain-accuracy"]').getAttribute("data-value"));
  assert.ok(domain >= 0 && domain <= 1, `${domain}`);
  assert.match(await page.locator('[data-testid="domain-accuracy"]').textContent(), /Near 50%/);
  assert.match(await page.locator(".metrics h3").first().textContent(), /Final epoch 10 kept/);
  // Both figures side by side, with the verdict.
  await page.waitForFunction(() => document.querySelector('[data-testid="check-adapted"]')?.textContent.endsWith("%"));
  const adapted = await percent("check-adapted");
  const verdict = await page.locator('[data-testid="check-verdict"]').textContent();
  const expected = adapted > sourceOnly ? /helps/ : adapted < sourceOnly ? /does not help/ : /no difference/;
  assert.match(verdict, expected);
  console.log(`check images (4 per class): ${sourceOnly}% without adaptation, ${adapted}% with`);

  await page.reload();
  await ready(page);
  assert.equal(await page.locator('[data-testid="target-count"]').textContent(), "20");
  assert.equal(await page.locator('[data-testid="adapt"]').isChecked(), true);
  assert.deepEqual(await page.locator('[data-testid="check-count"]').allTextContents(), ["4", "4"]);
  assert.equal(await percent("check-adapted"), adapted);
  assert.equal(await percent("check-source-only"), sourceOnly);
  assert.deepEqual(problems, []);
});
