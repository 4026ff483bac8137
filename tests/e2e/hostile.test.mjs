// Broken and hostile uploads, made here: each is skipped with its reason, nothing is added,
// the tab neither freezes nor errors, and a good image still goes in afterwards.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, openGraft, PHOTOS, waitReady } from "./browser.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** CRC-32 of PNG chunks. */
function crc32(bytes) {
  let crc = ~0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

/** A valid 1x1 PNG whose header then declares 30000 x 30000 pixels (2.7 GB decoded). */
function pngBomb() {
  const signature = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(30000, 0);
  header.writeUInt32BE(30000, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([signature, chunk("IHDR", header), chunk("IDAT", Buffer.from([0x78, 0x9c, 3, 0, 0, 0, 0, 1])), chunk("IEND", Buffer.alloc(0))]);
}

test("broken and hostile uploads are skipped with their reasons, and the page keeps working", async () => {
  const dir = mkdtempSync(join(tmpdir(), "graft-hostile-"));
  const baboon = readFileSync(PHOTOS.baboon);
  const huge = Buffer.alloc(100 * 1024 * 1024, 0x55);
  huge.set([0xff, 0xd8, 0xff, 0xe0]);
  const cases = {
    "empty.jpg": [Buffer.alloc(0), /empty\.jpg is empty/],
    "truncated.jpg": [baboon.subarray(0, Math.floor(baboon.length * 0.6)), /truncated\.jpg is truncated/],
    "random.jpg": [Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 7919) % 251)), /random\.jpg is not an image/],
    "bomb.png": [pngBomb(), /bomb\.png is too large \(30000x30000 pixels\)/],
    "huge.jpg": [huge, /huge\.jpg is too large \(105 MB; the limit is 64 MB\)/],
    "notes.png": [Buffer.from("just words"), /notes\.png is not an image/],
  };
  const paths = Object.entries(cases).map(([name, [bytes]]) => {
    writeFileSync(join(dir, name), bytes);
    return join(dir, name);
  });
  const { page, problems } = await openGraft(browser);
  await waitReady(page);
  const card = page.locator('[data-testid="class-card"]').first();
  await card.locator('[data-testid="class-upload"]').setInputFiles(paths);
  await page.waitForFunction(
    (n) => document.querySelectorAll('[data-testid="skipped-file"]').length === n,
    Object.keys(cases).length,
    { timeout: 120_000 },
  );
  const reasons = await page.locator('[data-testid="skipped-file"]').allTextContents();
  for (const [name, [, expected]] of Object.entries(cases)) {
    assert.ok(reasons.some((r) => expected.test(r)), `${name}: ${JSON.stringify(reasons)}`);
  }
  assert.equal(await card.locator('[data-testid="sample-count"]').textContent(), "0");
  await card.locator('[data-testid="class-upload"]').setInputFiles(PHOTOS.chelsea);
  await page.waitForFunction(() => !document.querySelector(".class-card .pending"));
  assert.equal(await card.locator('[data-testid="sample-count"]').textContent(), "1");
  assert.deepEqual(problems, []);
  await page.context().close();
});
