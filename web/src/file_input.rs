//! Reading a file `<input>`, and the files it gives.

use web_sys::{Event, File, HtmlInputElement};
use yew::{Callback, NodeRef};

/// The files chosen in the input behind `input`. The input is then cleared, so that choosing
/// the same file again fires `change` again.
pub fn take_files(input: &NodeRef) -> Vec<File> {
    let Some(input) = input.cast::<HtmlInputElement>() else {
        return Vec::new();
    };
    let files = input.files().map(|list| (0..list.length()).filter_map(|i| list.get(i)).collect()).unwrap_or_default();
    input.set_value("");
    files
}

/// A `change` handler for a single-file input: emits the first chosen file, then clears the
/// input (see [`take_files`]).
pub fn emit_first_file(input: &NodeRef, on_file: &Callback<File>) -> Callback<Event> {
    let (input, on_file) = (input.clone(), on_file.clone());
    Callback::from(move |_: Event| {
        if let Some(file) = take_files(&input).into_iter().next() {
            on_file.emit(file);
        }
    })
}

/// Reads a file's bytes, then hands them to `send`; a read failure goes to `on_error` as a
/// sentence naming the file.
pub fn read_then(file: &File, on_error: Callback<String>, send: impl FnOnce(String, Vec<u8>) + 'static) {
    let blob = gloo::file::Blob::from(file.clone());
    let name = file.name();
    wasm_bindgen_futures::spawn_local(async move {
        match gloo::file::futures::read_as_bytes(&blob).await {
            Ok(bytes) => send(name, bytes),
            Err(e) => on_error.emit(format!("{name} could not be read: {e}")),
        }
    });
}
