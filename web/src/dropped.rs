//! Files from a drag-and-drop, whole folders included (walked recursively through the
//! File System Entries API). The entries must be taken during the drop event itself: the
//! browser empties the DataTransfer once the handler returns.

use js_sys::{Array, Function, Promise};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{DataTransfer, File, FileSystemDirectoryEntry, FileSystemEntry, FileSystemFileEntry};

/// What was dropped, taken synchronously inside the `drop` handler.
pub struct Dropped {
    entries: Vec<FileSystemEntry>,
    files: Vec<File>,
}

impl Dropped {
    pub fn take(transfer: &DataTransfer) -> Self {
        let items = transfer.items();
        let entries: Vec<FileSystemEntry> = (0..items.length())
            .filter_map(|i| items.get(i))
            .filter_map(|item| item.webkit_get_as_entry().ok().flatten())
            .collect();
        let files =
            transfer.files().map(|list| (0..list.length()).filter_map(|i| list.get(i)).collect()).unwrap_or_default();
        Self { entries, files }
    }

    /// Every file, folders walked; without entry support, the plain file list.
    pub async fn files(self) -> Vec<File> {
        if self.entries.is_empty() {
            return self.files;
        }
        let mut files = Vec::new();
        let mut stack = self.entries;
        while let Some(entry) = stack.pop() {
            if entry.is_directory() {
                stack.extend(read_directory(entry.unchecked_into()).await);
            } else if let Some(file) = read_file(entry.unchecked_into()).await {
                files.push(file);
            }
        }
        files
    }
}

/// Runs `start(resolve, reject)` and awaits the callback it gets.
async fn callback_promise(start: impl FnOnce(&Function, &Function)) -> Result<JsValue, JsValue> {
    let mut start = Some(start);
    let promise = Promise::new(&mut |resolve, reject| {
        if let Some(start) = start.take() {
            start(&resolve, &reject);
        }
    });
    JsFuture::from(promise).await
}

async fn read_file(entry: FileSystemFileEntry) -> Option<File> {
    callback_promise(|resolve, reject| entry.file_with_callback_and_callback(resolve, reject))
        .await
        .ok()?
        .dyn_into()
        .ok()
}

/// All entries of a folder: `readEntries` answers in batches until an empty one.
async fn read_directory(directory: FileSystemDirectoryEntry) -> Vec<FileSystemEntry> {
    let reader = directory.create_reader();
    let mut entries = Vec::new();
    loop {
        let batch = callback_promise(|resolve, reject| {
            let on_entries = Closure::once_into_js({
                let resolve = resolve.clone();
                move |list: JsValue| {
                    let _ = resolve.call1(&JsValue::NULL, &list);
                }
            });
            let _ = reader.read_entries_with_callback_and_callback(on_entries.unchecked_ref(), reject);
        })
        .await;
        let Ok(batch) = batch else { break };
        let batch = Array::from(&batch);
        if batch.length() == 0 {
            break;
        }
        entries.extend(batch.iter().filter_map(|e| e.dyn_into::<FileSystemEntry>().ok()));
    }
    entries
}
