// Shared set-up for the end-to-end tests: Debian's Chromium, headless, on this closed network.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const BASE_URL = process.env.GRAFT_URL ?? "http://127.0.0.1:8080/";
export const PHOTOS = {
  chelsea: "/usr/lib/python3/dist-packages/skimage/data/chelsea.png",
  coffee: "/usr/lib/python3/dist-packages/skimage/data/coffee.png",
  baboon: "/usr/share/doc/opencv-doc/examples/data/baboon.jpg",
};

/** Debian's Chromium as root on this closed network. */
const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
];

/** Chromium, headless; `extraArgs` add flags (a fake-webcam clip, say). */
export async function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      ...CHROMIUM_FLAGS,
      // A fake camera that needs no permission prompt.
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      ...extraArgs,
    ],
  });
}

/** Opens the page and records uncaught errors and any request that leaves the origin. The
 * browser's language is English unless `options` say otherwise (`{ locale: "zh-CN" }`);
 * `options.setUp(page)` runs before the page loads (routes, say); `options.context` opens it
 * as another tab of that browser context (same storage) instead of in a fresh profile. */
export async function openGraft(browser, options = {}) {
  const { setUp, context, ...pageOptions } = options;
  const page = context ? await context.newPage() : await browser.newPage({ locale: "en-US", ...pageOptions });
  const problems = [];
  const origin = new URL(BASE_URL).origin;
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("request", (r) => {
    const url = r.url();
    if (!url.startsWith(origin) && !url.startsWith("blob:") && !url.startsWith("data:")) {
      problems.push(`request outside the origin: ${url}`);
    }
  });
  await setUp?.(page);
  await page.goto(BASE_URL);
  return { page, problems };
}

/** A fresh ImageFolder of Fashion-MNIST (Debian's copy): `perClass` images of the first `classes`
 * classes of `split` (train or test). */
export function fashionMnistFolder(split, perClass, classes) {
  const dir = mkdtempSync(join(tmpdir(), `graft-fm-${split}-`));
  const script = new URL("../reference/fashion_mnist_folder.py", import.meta.url).pathname;
  const args = [script, dir, "--per-class", String(perClass), "--classes", String(classes), "--split", split];
  const run = spawnSync("/usr/bin/python3", args);
  assert.equal(run.status, 0, String(run.stderr));
  return dir;
}

/** The files of the folder `join(...parts)`, sorted, as paths. */
export const sortedFiles = (...parts) =>
  readdirSync(join(...parts))
    .sort()
    .map((f) => join(...parts, f));

/** Names the first class cards `names` (adding cards as needed) and uploads `filesOf(name)` into
 * each; waits until every sample is embedded. */
export async function fillClasses(page, names, filesOf) {
  const cards = page.locator('[data-testid="class-card"]');
  while ((await cards.count()) < names.length) await page.locator('[data-testid="add-class"]').click();
  for (let i = 0; i < names.length; i++) {
    await cards.nth(i).locator('[data-testid="class-name"]').fill(names[i]);
    const card = page.locator(`[data-testid="class-card"][data-class-name="${names[i]}"]`);
    await card.locator('[data-testid="class-upload"]').setInputFiles(filesOf(names[i]));
  }
  await page.waitForFunction(() => !document.querySelector(".class-card .pending"), null, { timeout: 120_000 });
}

/** Uploads `file` to the trained model and returns its bars: `[[className, prob], ...]`. */
export async function predictUpload(page, file) {
  await page.locator('[data-testid="predict-upload"]').setInputFiles(file);
  await page.waitForFunction(
    (f) => document.querySelector(".predict-panel .timing")?.textContent.startsWith(f),
    file.split("/").pop(),
  );
  return page
    .locator('[data-testid="prediction"]')
    .evaluateAll((items) => items.map((li) => [li.dataset.className, Number(li.dataset.prob)]));
}

/** Waits until the model is loaded and the last project is open. */
export const waitReady = (page) => page.locator('[data-ready="true"]').waitFor({ timeout: 180_000 });

/** Waits until every embedding worker has fetched its model, so that later requests are the
 * page's own (the pool loads in the background after the page is ready). */
export const waitPoolLoaded = (page) =>
  page.waitForFunction(
    () => {
      const pool = document.querySelector('[data-testid="pool-size"]');
      return pool !== null && pool.dataset.loaded === pool.dataset.workers;
    },
    null,
    { timeout: 180_000 },
  );

/** Every network request (same origin or not) the page and its workers make from now on;
 * `blob:` and `data:` URLs are the page's own memory. */
export function recordRequests(page) {
  const seen = [];
  page.on("request", (r) => {
    if (!/^(blob|data):/.test(r.url())) seen.push(r.url());
  });
  return seen;
}

/** Chromium on the profile folder `profile`, as processes a test can kill (`kill()`), driven
 * over the DevTools protocol, with the page open; its uncaught errors go to `problems`. */
export async function startChromium(profile) {
  const args = [
    "--headless=new",
    ...CHROMIUM_FLAGS,
    "--lang=en-US",
    "--remote-debugging-port=0",
    `--user-data-dir=${profile}`,
    "about:blank",
  ];
  // Its own process group, so that `kill` takes every Chromium process down at once, as a
  // crash would (the main process alone leaves its helpers writing into the profile a while).
  const child = spawn(process.env.CHROMIUM ?? "/usr/bin/chromium", args, { stdio: ["ignore", "ignore", "pipe"], detached: true });
  const exited = new Promise((done) => child.once("exit", done));
  const kill = async () => {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
    await exited;
  };
  const endpoint = await new Promise((found, failed) => {
    let said = "";
    child.stderr.on("data", (chunk) => {
      said += chunk;
      const match = said.match(/DevTools listening on (ws:\/\/\S+)/);
      if (match) found(match[1]);
    });
    child.on("exit", () => failed(new Error(`Chromium exited: ${said}`)));
  });
  const browser = await chromium.connectOverCDP(endpoint);
  const page = await browser.contexts()[0].newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  await page.goto(BASE_URL);
  return { child, kill, browser, page, problems };
}

/**
 * Waits until the autosave has written a project record that lists `samples` samples in all
 * (in a class named `className`, and under the name `projectName`, when given) and the sample
 * and embedding stores hold at least that many records. The autosave follows each change after
 * the page shows it; a fixed pause raced it on a slower machine.
 */
export async function savedProject(page, { samples, className, projectName }, timeout = 120_000) {
  // Polled from here: `waitForFunction` does not await a predicate's promise (an async
  // predicate is truthy at once), and IndexedDB answers only asynchronously.
  const deadline = Date.now() + timeout;
  while (!(await page.evaluate(isSaved, { samples, className, projectName }))) {
    assert.ok(Date.now() < deadline, `no saved project lists ${samples} samples ${JSON.stringify({ className, projectName })}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** In the page: whether IndexedDB holds the project `savedProject` waits for. */
async function isSaved({ samples, className, projectName }) {
  const db = await new Promise((ok, fail) => {
    const open = indexedDB.open("graft");
    open.onsuccess = () => ok(open.result);
    open.onerror = () => fail(open.error);
  });
  // A store the page has not made yet reads as nothing.
  const read = (store, what) =>
    new Promise((ok) => {
      if (!db.objectStoreNames.contains(store)) return ok(null);
      const request = db.transaction(store).objectStore(store)[what]();
      request.onsuccess = () => ok(request.result);
      request.onerror = () => ok(null);
    });
  try {
    const [records, sampleCount, embeddingCount] = await Promise.all([
      read("projects", "getAll"),
      read("samples", "count"),
      read("embeddings", "count"),
    ]);
    const lists = (record) => {
      try {
        const saved = JSON.parse(record[0]);
        const classes = saved.project.classes;
        const listed = classes.reduce((sum, c) => sum + c.sample_ids.length, 0);
        const named = !projectName || saved.name === projectName;
        return listed === samples && named && (!className || classes.some((c) => c.name === className));
      } catch {
        return false;
      }
    };
    return (records ?? []).some(lists) && sampleCount >= samples && embeddingCount >= samples;
  } finally {
    db.close();
  }
}
