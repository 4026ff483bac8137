// Graft's service worker: after the first visit the app and its weights load from here, so it
// opens and trains with the network off. `cargo xtask build` writes the cache name (a hash of
// every file it lists) and the file list; a new build gets a new cache, and activation
// deletes the old ones. Cached responses keep their headers (COOP/COEP included).
//
// A new version installs beside the old one and waits: the page says an update is ready and,
// when the person agrees (never during training), posts "graft-update"; this worker then
// takes over and the page reloads. The very first version takes over at once.
const CACHE = "__GRAFT_CACHE__";
const FILES = __GRAFT_FILES__;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(FILES))
      .then(() => (self.registration.active ? undefined : self.skipWaiting())),
  );
});

self.addEventListener("message", (event) => {
  if (event.data === "graft-update") self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith("graft-") && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

// Same-origin GETs: the cached copy when there is one, else the network.
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  event.respondWith(
    caches
      .open(CACHE)
      .then((cache) => cache.match(event.request, { ignoreSearch: true }))
      .then((hit) => hit ?? fetch(event.request)),
  );
});
