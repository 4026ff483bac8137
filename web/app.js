// Loads the Yew page (wasm-bindgen output, --target web); `main` mounts it. The service worker
// (sw.js) caches the app and its weights so that later visits work offline.
import init from "./graft-app.js";
init();
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("sw.js").catch((e) => console.warn("offline use is unavailable:", e));
}
