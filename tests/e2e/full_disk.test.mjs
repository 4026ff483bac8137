// A full disk, for real: Chromium's profile lives on a small tmpfs this test mounts (as root),
// and a ballast file takes the space that is left, so that IndexedDB really refuses to write.
// What was saved stays, the page says once what to do, saving pauses; when the ballast goes,
// saving resumes by itself with what was added meanwhile, and after a restart every sample is
// there.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { savedProject, startChromium, waitPoolLoaded, waitReady } from "./browser.mjs";

const DISK_MB = 160;
const IMAGES = 24;
let mount;
let images;

before(() => {
  mount = mkdtempSync(join(tmpdir(), "graft-small-disk-"));
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${DISK_MB}m`, "tmpfs", mount]);
  assert.equal(mounted.status, 0, `mounting a ${DISK_MB} MB tmpfs needs root: ${mounted.stderr}`);
  // Noise photos (PNG does not compress them): about 190 KB each.
  images = mkdtempSync(join(tmpdir(), "graft-noise-"));
  const script = `
import numpy as np, sys
from PIL import Image
rng = np.random.default_rng(1)
for i in range(int(sys.argv[2])):
    Image.fromarray((rng.random((256, 256, 3)) * 255).astype("uint8")).save(f"{sys.argv[1]}/{i:02}.png")`;
  const made = spawnSync("/usr/bin/python3", ["-c", script, images, String(IMAGES)]);
  assert.equal(made.status, 0, String(made.stderr));
});
after(() => {
  spawnSync("umount", ["-l", mount]);
  rmSync(mount, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  rmSync(images, { recursive: true, force: true });
});

const count = (page) => page.locator('[data-testid="sample-count"]').first().textContent().then(Number);
const files = (from, to) => Array.from({ length: to - from }, (_, i) => join(images, `${String(from + i).padStart(2, "0")}.png`));
/** Sample records in the page's IndexedDB. */
const savedSamples = (page) =>
  page.evaluate(async () => {
    const db = await new Promise((ok) => {
      const open = indexedDB.open("graft");
      open.onsuccess = () => ok(open.result);
    });
    const n = await new Promise((ok) => (db.transaction("samples").objectStore("samples").count().onsuccess = (e) => ok(e.target.result)));
    db.close();
    return n;
  });
const settled = (page) =>
  page.waitForFunction(() => !document.querySelector(".class-card .pending"), null, { timeout: 120_000 });

test("a full disk pauses saving with one message, keeps what was saved, and resumes by itself", async () => {
  const profile = join(mount, "profile");
  let run = await startChromium(profile);
  await waitReady(run.page);
  await waitPoolLoaded(run.page);
  await run.page.locator('[data-testid="class-upload"]').first().setInputFiles(files(0, 4));
  await settled(run.page);
  await savedProject(run.page, { samples: 4 });

  // Leave about 2 MB free on the profile's disk.
  const { bavail, bsize } = statfsSync(mount);
  const ballast = join(mount, "ballast");
  writeFileSync(ballast, Buffer.alloc(Math.max(0, bavail * bsize - 2 * 2 ** 20)));
  await run.page.locator('[data-testid="class-upload"]').first().setInputFiles(files(4, IMAGES));
  const error = run.page.locator('[data-testid="error"]');
  await error.waitFor({ timeout: 120_000 });
  assert.match(await error.textContent(), /storage for this site is full.*export the project to keep a copy, and free space/);
  await settled(run.page);
  assert.equal(await count(run.page), IMAGES, "what was added is kept in the tab");
  assert.equal(await run.page.locator('[data-testid="error"]').count(), 1, "said once");
  const saved = await savedSamples(run.page);
  console.log(`disk full: ${saved} of ${IMAGES} samples saved, the rest kept in the tab`);
  assert.ok(saved >= 4 && saved < IMAGES, `the first four stayed saved, the others waited: ${saved}`);

  // Space returns: saving resumes by itself (within the retry interval) and the message goes.
  rmSync(ballast);
  await error.waitFor({ state: "detached", timeout: 60_000 });
  await savedProject(run.page, { samples: IMAGES });
  await run.kill();

  run = await startChromium(profile);
  await waitReady(run.page);
  await settled(run.page);
  assert.equal(await count(run.page), IMAGES, "every sample was saved once there was room");
  assert.equal(await run.page.locator('[data-testid="storage-problem"]').count(), 0);
  assert.deepEqual(run.problems, []);
  await run.browser.close();
  await run.kill();
});
