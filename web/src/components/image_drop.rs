//! Pick or drop one image file.

use wasm_bindgen::JsCast;
use web_sys::{DragEvent, File, HtmlInputElement};
use yew::prelude::*;

use crate::file_input::emit_first_file;
use crate::i18n::use_lang;
use crate::t;

#[derive(Properties, PartialEq)]
pub struct ImageDropProps {
    pub on_file: Callback<File>,
    pub disabled: bool,
}

#[function_component(ImageDrop)]
pub fn image_drop(props: &ImageDropProps) -> Html {
    let input_ref = use_node_ref();
    let dragging = use_state(|| false);
    let lang = use_lang();

    let on_change = emit_first_file(&input_ref, &props.on_file);
    let on_drop = {
        let on_file = props.on_file.clone();
        let dragging = dragging.clone();
        Callback::from(move |event: DragEvent| {
            event.prevent_default();
            dragging.set(false);
            let file = event.data_transfer().and_then(|transfer| transfer.files()).and_then(|files| files.get(0));
            if let Some(file) = file {
                on_file.emit(file);
            }
        })
    };
    let on_drag_over = {
        let dragging = dragging.clone();
        Callback::from(move |event: DragEvent| {
            event.prevent_default();
            dragging.set(true);
        })
    };
    let on_drag_leave = {
        let dragging = dragging.clone();
        Callback::from(move |_: DragEvent| dragging.set(false))
    };
    let open_picker = {
        let input_ref = input_ref.clone();
        Callback::from(move |event: KeyboardEvent| {
            if event.key() == "Enter" || event.key() == " " {
                if let Some(input) = input_ref.get().and_then(|n| n.dyn_into::<HtmlInputElement>().ok()) {
                    input.click();
                }
            }
        })
    };

    html! {
        <label class={ classes!("drop-zone", dragging.then_some("dragging"), props.disabled.then_some("disabled")) }
            ondrop={ on_drop } ondragover={ on_drag_over } ondragleave={ on_drag_leave }
            tabindex="0" onkeydown={ open_picker }>
            <input ref={ input_ref } type="file" accept="image/*" data-testid="image-input"
                disabled={ props.disabled } onchange={ on_change } />
            <span class="hint">{ t!(lang, "drop-hint") }</span>
            <span class="formats">{ t!(lang, "drop-formats") }</span>
        </label>
    }
}
