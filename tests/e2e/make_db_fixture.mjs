// Writes tests/e2e/fixtures/graft-db-v1.json: every record of the page's IndexedDB (`graft`) as
// the build before the version-2 schema saved them (one project, "Old lesson": classes
// "Trouser" and "Bag" with three Fashion-MNIST images each, a linear head trained for 5
// epochs). `migration.test.mjs` writes them back into a fresh profile and opens the app, which
// must upgrade them. Run against that build (commit d6e1815), served:
//   GRAFT_URL=http://127.0.0.1:8080/ node tests/e2e/make_db_fixture.mjs
import { writeFileSync } from "node:fs";
import { fashionMnistFolder, fillClasses, launch, openGraft, sortedFiles, waitReady } from "./browser.mjs";

const dir = fashionMnistFolder("train", 3, 9);
const browser = await launch();
const { page } = await openGraft(browser);
await waitReady(page);
await page.locator('[data-testid="project-name"]').fill("Old lesson");
await page.locator('[data-testid="project-name"]').press("Tab");
await fillClasses(page, ["Trouser", "Bag"], (name) => sortedFiles(dir, name));
for (const [id, value] of [["hidden", "0"], ["epochs", "5"], ["val-fraction", "0"]]) {
  await page.locator(`[data-testid="${id}"]`).fill(value);
  await page.locator(`[data-testid="${id}"]`).press("Tab");
}
await page.locator('[data-testid="train"]').click();
await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]')?.textContent === "done");
await page.waitForTimeout(1000);
const dump = await page.evaluate(async () => {
  const encode = (value) => {
    if (typeof value === "string") return { s: value };
    if (typeof value === "number") return { n: value };
    if (value instanceof Uint8Array) return { u8: btoa(String.fromCharCode(...value)) };
    if (value instanceof Float32Array) return { f32: btoa(String.fromCharCode(...new Uint8Array(value.buffer))) };
    if (Array.isArray(value)) return { a: value.map(encode) };
    throw new Error(`unexpected record value ${value}`);
  };
  const db = await new Promise((ok) => {
    const open = indexedDB.open("graft");
    open.onsuccess = () => ok(open.result);
  });
  const stores = {};
  for (const name of db.objectStoreNames) {
    const store = db.transaction(name).objectStore(name);
    const keys = await new Promise((ok) => (store.getAllKeys().onsuccess = (e) => ok(e.target.result)));
    const values = await new Promise((ok) => (store.getAll().onsuccess = (e) => ok(e.target.result)));
    stores[name] = keys.map((key, i) => [key, encode(values[i])]);
  }
  return { version: db.version, stores };
});
const out = new URL("fixtures/graft-db-v1.json", import.meta.url).pathname;
writeFileSync(out, JSON.stringify(dump));
console.log(`wrote ${out}: version ${dump.version}, ${Object.entries(dump.stores).map(([n, r]) => `${n} ${r.length}`).join(", ")}`);
await browser.close();
