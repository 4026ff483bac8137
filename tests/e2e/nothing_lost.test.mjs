// Nothing lost. In the first seconds: what a person does before the page's project has opened
// (a class renamed, images uploaded while the model still loads) is in the project that opens,
// on a first visit and after a reload, and is still there after the next reload. A broken
// record: one unreadable sample loses only itself, with a message naming it, and an unreadable
// embedding is computed again from its image. Two tabs: one edits, the other says so and can
// take the project over; every sample either tab added is there afterwards.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { fashionMnistFolder, launch, openGraft, savedProject, sortedFiles, waitReady } from "./browser.mjs";

let browser;
let dir;
before(async () => {
  browser = await launch();
  dir = fashionMnistFolder("train", 8, 3);
});
after(async () => {
  await browser?.close();
});

/** Each class card's name and sample count, as shown. */
const cards = (page) =>
  page
    .locator('[data-testid="class-card"]')
    .evaluateAll((all) => all.map((c) => [c.dataset.className, c.querySelector('[data-testid="sample-count"]').textContent]));

/** Whether the page has opened its project yet. */
const projectOpen = (page) => page.locator('[data-ready="true"]').count().then((n) => n > 0);

/** Waits until every sample shown is embedded (and so saved). */
const settled = (page) =>
  page.waitForFunction(() => !document.querySelector(".class-card .pending"), null, { timeout: 120_000 });

/** Holds the worker's model download back by `ms`, so that the person acts before the project
 * opens however fast this machine is. */
async function slowModel(context, ms) {
  await context.route(/\/models\/.*\.safetensors$/, async (route) => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    await route.continue();
  });
}

test("what is done before the project opens is kept, on a first visit and after a reload", async () => {
  const { page, problems } = await openGraft(browser, { setUp: (page) => slowModel(page.context(), 3000) });
  // As soon as the cards appear: rename the first class and upload into it.
  const first = page.locator('[data-testid="class-card"]').first();
  await first.locator('[data-testid="class-name"]').fill("fish");
  await first.locator('[data-testid="class-name"]').press("Tab");
  const fish = sortedFiles(dir, "T-shirt");
  await page.locator('[data-testid="class-card"][data-class-name="fish"] [data-testid="class-upload"]').setInputFiles(fish);
  assert.equal(await projectOpen(page), false, "the upload happened before the project opened");
  await waitReady(page);
  await settled(page);
  assert.deepEqual(await cards(page), [
    ["fish", "8"],
    ["Class 2", "0"],
  ]);

  // After a reload, the saved project opens; what is done before it does joins it.
  await page.reload();
  const second = page.locator('[data-testid="class-card"]').nth(1);
  await second.locator('[data-testid="class-upload"]').setInputFiles(sortedFiles(dir, "Trouser").slice(0, 3));
  assert.equal(await projectOpen(page), false, "the second upload happened before the project opened");
  await waitReady(page);
  await settled(page);
  const joined = [
    ["fish", "8"],
    ["Class 2", "3"],
  ];
  assert.deepEqual(await cards(page), joined, "the draft's Class 2 joined the saved Class 2");

  await page.reload();
  await waitReady(page);
  await settled(page);
  assert.deepEqual(await cards(page), joined, "everything is still there after another reload");
  assert.equal(await page.locator('[data-testid="class-card"] img').count(), 11);
  assert.deepEqual(problems, []);
  await page.context().close();
});

/** Overwrites records of the page's IndexedDB (`graft`) in `store`: the value at the `index`-th
 * key (in key order) becomes `value`, as a broken disk or a bug would leave it; with `"flip"`,
 * one byte of the record's image changes and the rest stays as it was. */
function breakRecord(page, store, index, value) {
  return page.evaluate(
    async ({ store, index, value }) => {
      const db = await new Promise((ok, fail) => {
        const open = indexedDB.open("graft");
        open.onsuccess = () => ok(open.result);
        open.onerror = () => fail(open.error);
      });
      const transaction = db.transaction(store, "readwrite");
      const records = transaction.objectStore(store);
      const keys = await new Promise((ok) => {
        const all = records.getAllKeys();
        all.onsuccess = () => ok(all.result);
      });
      let broken = typeof value === "string" ? value : new Uint8Array(value);
      if (value === "flip") {
        broken = await new Promise((ok) => (records.get(keys[index]).onsuccess = (e) => ok(e.target.result)));
        broken[1][broken[1].length >> 1] ^= 0xff;
      }
      records.put(broken, keys[index]);
      await new Promise((ok) => (transaction.oncomplete = ok));
      db.close();
      return keys.length;
    },
    { store, index, value },
  );
}

test("a broken sample record loses only itself, with a message; a broken embedding is computed again", async () => {
  // (Six Pullover images: one record overwritten with garbage, one with a byte of its image
  // changed, one embedding overwritten.)
  const { page, problems } = await openGraft(browser);
  await waitReady(page);
  const first = page.locator('[data-testid="class-card"]').first();
  await first.locator('[data-testid="class-name"]').fill("fish");
  await first.locator('[data-testid="class-upload"]').setInputFiles(sortedFiles(dir, "Pullover").slice(0, 6));
  await settled(page);
  await savedProject(page, { samples: 6, className: "fish" });
  assert.equal(await breakRecord(page, "samples", 0, [1, 2, 3, 4]), 6);
  assert.equal(await breakRecord(page, "samples", 1, "flip"), 6);
  assert.equal(await breakRecord(page, "embeddings", 3, "garbage"), 6);
  await page.reload();
  await waitReady(page);
  await settled(page);
  assert.deepEqual(await cards(page), [
    ["fish", "4"],
    ["Class 2", "0"],
  ]);
  assert.match(
    await page.locator('[data-testid="storage-problem"]').textContent(),
    /2 samples of 'fish' could not be read and were left out/,
    "a record that does not parse, and one whose image changed (its checksum does not match)",
  );
  assert.equal(await page.locator('[data-testid="class-card"] img').count(), 4, "the other four are whole");
  await page.reload();
  await waitReady(page);
  assert.deepEqual((await cards(page))[0], ["fish", "4"], "the project was saved without the broken samples");
  assert.equal(await page.locator('[data-testid="storage-problem"]').count(), 0, "said once");
  assert.deepEqual(problems, []);
  await page.context().close();
});

test("a project whose record is damaged is listed as such and recovered from its samples", async () => {
  const { page, problems } = await openGraft(browser);
  await waitReady(page);
  await page.locator('[data-testid="class-upload"]').first().setInputFiles(sortedFiles(dir, "Trouser").slice(0, 5));
  await settled(page);
  await savedProject(page, { samples: 5 });
  assert.equal(await breakRecord(page, "projects", 0, [7, 7, 7]), 1);
  await page.reload();
  await waitReady(page);
  // The damaged project cannot open as it was: a new one does, and the picker lists it.
  assert.deepEqual(await cards(page), [
    ["Class 1", "0"],
    ["Class 2", "0"],
  ]);
  const damaged = page.locator('[data-testid="project-select"] option[data-damaged="true"]');
  assert.match(await damaged.textContent(), /Damaged project \(5 images\): open to recover/);
  await page.locator('[data-testid="project-select"]').selectOption(await damaged.getAttribute("value"));
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="class-card"] img').length === 5);
  await waitReady(page);
  assert.deepEqual((await cards(page))[0], ["Class 1", "5"]);
  assert.match(
    await page.locator('[data-testid="storage-problem"]').textContent(),
    /This project's record could not be read: its 5 saved images were recovered into 'Class 1'/,
  );
  assert.equal(await page.locator('[data-testid="project-select"] option[data-damaged="true"]').count(), 0, "repaired");
  assert.deepEqual(problems, []);
  await page.context().close();
});

test("two tabs on one project: one edits, the other says so and can take it over", async () => {
  const context = await browser.newContext({ locale: "en-US" });
  const a = await openGraft(browser, { context });
  await waitReady(a.page);
  // Named key by key while the images are embedded: the page re-renders meanwhile, and what
  // is typed stays (it once went back to 'My project', and the rename was lost).
  await a.page.locator('[data-testid="class-upload"]').first().setInputFiles(sortedFiles(dir, "T-shirt").slice(0, 6));
  await a.page.locator('[data-testid="project-name"]').fill("");
  await a.page.locator('[data-testid="project-name"]').pressSequentially("Aquarium", { delay: 40 });
  await a.page.locator('[data-testid="project-name"]').press("Tab");
  await settled(a.page);
  assert.equal(await a.page.locator('[data-testid="project-name"]').inputValue(), "Aquarium");
  // The other tab shows what the first saved: the name included, whose save may come last.
  await savedProject(a.page, { samples: 6, projectName: "Aquarium" });

  const b = await openGraft(browser, { context });
  const elsewhere = b.page.locator('[data-testid="project-elsewhere"]');
  await elsewhere.waitFor({ timeout: 180_000 });
  assert.match(await elsewhere.textContent(), /'Aquarium' is open in another tab/);
  assert.deepEqual((await cards(b.page))[0], ["Class 1", "6"], "the other tab shows what the first saved");
  assert.equal(await b.page.locator('[data-testid="class-upload"]').first().isDisabled(), true, "and changes nothing");

  await b.page.locator('[data-testid="take-over"]').click();
  await b.page.locator('[data-testid="project-elsewhere"]').waitFor({ state: "detached" });
  await waitReady(b.page);
  const taken = a.page.locator('[data-testid="project-elsewhere"][data-taken-over="true"]');
  await taken.waitFor();
  assert.match(await taken.textContent(), /'Aquarium' was taken over by another tab/);
  assert.equal(await a.page.locator('[data-testid="class-upload"]').first().isDisabled(), true, "the first tab stopped");
  await b.page.locator('[data-testid="class-upload"]').nth(1).setInputFiles(sortedFiles(dir, "Trouser").slice(0, 3));
  await settled(b.page);
  await savedProject(b.page, { samples: 9 });
  await a.page.close();
  await b.page.close();

  const c = await openGraft(browser, { context });
  await waitReady(c.page);
  await settled(c.page);
  assert.deepEqual(await cards(c.page), [
    ["Class 1", "6"],
    ["Class 2", "3"],
  ]);
  assert.equal(await c.page.locator('[data-testid="project-elsewhere"]').count(), 0, "the last tab holds it alone");
  assert.deepEqual([...a.problems, ...b.problems, ...c.problems], []);
  await context.close();
});
