//! Same-origin fetches from inside the worker, with byte-level progress for large files.

use graft::message::UserMessage;
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response, WorkerGlobalScope};

/// A JavaScript error's own words (the browser's language, shown as they are).
fn js_message(value: JsValue) -> UserMessage {
    let words = value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"));
    UserMessage::verbatim(words)
}

fn fetch_failed(url: &str, detail: impl Into<graft::message::MessageArg>) -> UserMessage {
    UserMessage::new("fetch-failed").arg("url", url).arg("detail", detail)
}

async fn response(url: &str) -> Result<Response, UserMessage> {
    let scope: WorkerGlobalScope =
        js_sys::global().dyn_into().map_err(|_| UserMessage::verbatim("fetch must run in a worker"))?;
    let response: Response =
        JsFuture::from(scope.fetch_with_str(url)).await.map_err(|e| fetch_failed(url, js_message(e)))?.unchecked_into();
    if !response.ok() {
        return Err(fetch_failed(url, format!("HTTP {}", response.status())));
    }
    Ok(response)
}

/// The body of `url` as text.
pub async fn fetch_text(url: &str) -> Result<String, UserMessage> {
    let promise = response(url).await?.text().map_err(js_message)?;
    let text = JsFuture::from(promise).await.map_err(js_message)?.as_string();
    text.ok_or_else(|| fetch_failed(url, "not text"))
}

/// The body of `url` as bytes; `on_progress(loaded, total)` runs after each chunk, with
/// `total` from Content-Length or `expected_total` when the server sends none.
pub async fn fetch_bytes(
    url: &str,
    expected_total: u64,
    mut on_progress: impl FnMut(u64, u64),
) -> Result<Vec<u8>, UserMessage> {
    let response = response(url).await?;
    let total =
        response.headers().get("content-length").ok().flatten().and_then(|v| v.parse().ok()).unwrap_or(expected_total);
    let body = response.body().ok_or_else(|| fetch_failed(url, "no body"))?;
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::with_capacity(total as usize);
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(js_message)?;
        let done = Reflect::get(&chunk, &"done".into()).map_err(js_message)?;
        if done.is_truthy() {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(js_message)?.unchecked_into();
        let start = bytes.len();
        bytes.resize(start + value.length() as usize, 0);
        value.copy_to(&mut bytes[start..]);
        on_progress(bytes.len() as u64, total.max(bytes.len() as u64));
    }
    Ok(bytes)
}
