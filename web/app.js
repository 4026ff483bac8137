// Loads the Yew page (wasm-bindgen output, --target web); `main` mounts it.
import init from "./graft-app.js";
init();
