// Domain adaptation in the page: an unlabelled bin for images of the new domain (uploaded like
// a class, saved like the rest), the "Adapt to the new domain" option, a run that adapts (the
// domain classifier's accuracy charted beside the loss, with what it means), the kept weights
// named, and everything back after a reload.
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

  await page.locator('[data-testid="adapt"]').check();
  await page.locator('[data-testid="epochs"]').fill("10");
  await page.locator('[data-testid="epochs"]').press("Tab");
  await page.locator('[data-testid="train"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]')?.textContent === "done", null, {
    timeout: 180_000,
  });
  await page.locator('[data-testid="domain-chart"]').waitFor();
  const domain = Number(await page.locator('[data-testid="domain-accuracy"]').getAttribute("data-value"));
  assert.ok(domain >= 0 && domain <= 1, `${domain}`);
  assert.match(await page.locator('[data-testid="domain-accuracy"]').textContent(), /Near 50%/);
  assert.match(await page.locator(".metrics h3").first().textContent(), /Final epoch 10 kept/);

  await page.reload();
  await ready(page);
  assert.equal(await page.locator('[data-testid="target-count"]').textContent(), "20");
  assert.equal(await page.locator('[data-testid="adapt"]').isChecked(), true);
  assert.deepEqual(problems, []);
});
