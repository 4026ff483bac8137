// A crash mid-save: the browser is killed (SIGKILL, no chance to tidy up) in the middle of a
// burst of 50 uploads. After it starts again on the same profile, every sample whose save the
// page had acknowledged (shown embedded) is there with its image and embedding, none is half
// there, what was still being saved is named, and the counts agree with the records.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fashionMnistFolder, sortedFiles, startChromium, waitReady } from "./browser.mjs";

const BURST = 50;
let dir;
let profile;
before(() => {
  dir = fashionMnistFolder("train", BURST, 1);
  profile = mkdtempSync(join(tmpdir(), "graft-crash-profile-"));
});
after(() => rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }));

/** The first class's samples, and how many of them the page shows as embedded (saved). */
const counts = (page) =>
  page.evaluate(() => {
    const card = document.querySelector('[data-testid="class-card"]');
    const samples = Number(card.querySelector('[data-testid="sample-count"]').textContent);
    const pending = Number(card.querySelector(".pending")?.textContent.match(/\d+/)?.[0] ?? 0);
    return { samples, acknowledged: samples - pending };
  });

/** Sample and embedding records of every project, read from the page's IndexedDB. */
const records = (page) =>
  page.evaluate(async () => {
    const db = await new Promise((ok, fail) => {
      const open = indexedDB.open("graft");
      open.onsuccess = () => ok(open.result);
      open.onerror = () => fail(open.error);
    });
    const count = (store) =>
      new Promise((ok) => {
        const request = db.transaction(store).objectStore(store).count();
        request.onsuccess = () => ok(request.result);
      });
    const result = { samples: await count("samples"), embeddings: await count("embeddings") };
    db.close();
    return result;
  });

test("a browser killed in the middle of a burst of uploads keeps every acknowledged sample whole", async () => {
  let run = await startChromium(profile);
  await waitReady(run.page);
  await run.page.locator('[data-testid="class-upload"]').first().setInputFiles(sortedFiles(dir, "T-shirt"));
  await run.page.waitForFunction(
    () => {
      const card = document.querySelector('[data-testid="class-card"]');
      const pending = Number(card.querySelector(".pending")?.textContent.match(/\d+/)?.[0] ?? 0);
      return pending > 0 && pending < 35;
    },
    null,
    { timeout: 120_000, polling: 20 },
  );
  const before = await counts(run.page);
  await run.kill();
  assert.equal(before.samples, BURST);
  assert.ok(before.acknowledged >= 15 && before.acknowledged < BURST, `killed with ${before.acknowledged} saved`);

  run = await startChromium(profile);
  await waitReady(run.page);
  await run.page.waitForFunction(() => !document.querySelector(".class-card .pending"), null, { timeout: 120_000 });
  const back = await counts(run.page);
  const stored = await records(run.page);
  console.log(`killed after ${before.acknowledged} of ${BURST} saves; back: ${back.samples}; records: ${JSON.stringify(stored)}`);
  assert.ok(back.samples >= before.acknowledged, `${back.samples} back of ${before.acknowledged} acknowledged`);
  assert.equal(stored.samples, back.samples, "every sample record is shown");
  assert.equal(stored.embeddings, stored.samples, "each with its embedding: none half there");
  assert.equal(back.acknowledged, back.samples, "none needs embedding again");
  if (back.samples < BURST) {
    const lost = run.page.locator('[data-testid="storage-problem"]');
    assert.match(
      await lost.textContent(),
      new RegExp(`${BURST - back.samples} samples? of 'Class 1' (was|were) still being saved when the page closed`),
    );
  }
  assert.deepEqual(run.problems, []);
  await run.browser.close();
  await run.kill();
});
