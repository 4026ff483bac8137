//! Offering bytes the worker made (a `.graft` project, a model file) as a download, and asking
//! the browser to keep this site's storage.

use gloo::file::{Blob, ObjectUrl};
use wasm_bindgen::JsCast;

/// Saves `bytes` as `file_name` through a temporary link.
pub fn download(file_name: &str, mime: &str, bytes: &[u8]) {
    let url = ObjectUrl::from(Blob::new_with_options(bytes, Some(mime)));
    let document = gloo::utils::document();
    let Some(link) = document.create_element("a").ok().and_then(|e| e.dyn_into::<web_sys::HtmlAnchorElement>().ok())
    else {
        return;
    };
    link.set_href(&url);
    link.set_download(file_name);
    link.click();
    // The download starts from the link's URL; it stays valid a minute, then is freed.
    gloo::timers::callback::Timeout::new(60_000, move || drop(url)).forget();
}

/// Asks the browser not to evict this site's storage under pressure
/// (`navigator.storage.persist()`, which exists only on the window).
pub fn request_persistent_storage() {
    let get = |target: &wasm_bindgen::JsValue, name: &str| js_sys::Reflect::get(target, &name.into()).ok();
    let navigator = gloo::utils::window().navigator();
    let Some(storage) = get(&navigator, "storage") else { return };
    if let Some(persist) = get(&storage, "persist").and_then(|f| f.dyn_into::<js_sys::Function>().ok()) {
        let _ = persist.call0(&storage);
    }
}
