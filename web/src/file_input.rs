//! Reading a file `<input>`.

use web_sys::{File, HtmlInputElement};
use yew::NodeRef;

/// The files chosen in the input behind `input`. The input is then cleared, so that choosing
/// the same file again fires `change` again.
pub fn take_files(input: &NodeRef) -> Vec<File> {
    let Some(input) = input.cast::<HtmlInputElement>() else {
        return Vec::new();
    };
    let files = input
        .files()
        .map(|list| (0..list.length()).filter_map(|i| list.get(i)).collect())
        .unwrap_or_default();
    input.set_value("");
    files
}
