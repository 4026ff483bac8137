//! One class: its editable name, sample count, a capped strip of thumbnails (removable),
//! a multi-file picker and drop target, and a delete button.

use web_sys::{DragEvent, File, HtmlInputElement};
use yew::prelude::*;

use crate::dropped::Dropped;
use crate::file_input::take_files;
use crate::i18n::use_lang;
use crate::state::ClassState;
use crate::t;

/// Thumbnails shown per class: the newest ones; the count shows the rest.
const THUMBNAILS_SHOWN: usize = 24;

#[derive(Properties, PartialEq)]
pub struct ClassCardProps {
    pub class: ClassStateProp,
    pub on_rename: Callback<(u64, String)>,
    pub on_delete: Callback<u64>,
    pub on_files: Callback<(u64, Vec<File>)>,
    pub on_remove_sample: Callback<(u64, u64)>,
    /// Start (`true`) or stop (`false`) recording webcam frames into this class.
    pub on_record: Callback<(u64, bool)>,
    pub camera_on: bool,
    pub recording: bool,
    pub disabled: bool,
    /// The unlabelled bin of the new domain: a fixed title, no delete, its own test ids.
    #[prop_or_default]
    pub unlabelled: bool,
}

/// `ClassState` compared by identity and content that the card shows.
#[derive(Clone)]
pub struct ClassStateProp(pub ClassState);

impl PartialEq for ClassStateProp {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        a.id == b.id
            && a.name == b.name
            && a.samples.len() == b.samples.len()
            && a.samples.iter().zip(&b.samples).all(|(x, y)| x.id == y.id && x.embedded == y.embedded)
    }
}

#[function_component(ClassCard)]
pub fn class_card(props: &ClassCardProps) -> Html {
    let class = &props.class.0;
    let class_id = class.id;
    let upload_ref = use_node_ref();
    let lang = use_lang();

    let on_name = {
        let on_rename = props.on_rename.clone();
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            on_rename.emit((class_id, input.value()));
        })
    };
    let on_upload = {
        let on_files = props.on_files.clone();
        let upload_ref = upload_ref.clone();
        Callback::from(move |_: Event| on_files.emit((class_id, take_files(&upload_ref))))
    };
    let on_drop = {
        let on_files = props.on_files.clone();
        let disabled = props.disabled;
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            if disabled {
                return;
            }
            let Some(transfer) = e.data_transfer() else { return };
            let dropped = Dropped::take(&transfer);
            let on_files = on_files.clone();
            wasm_bindgen_futures::spawn_local(async move {
                on_files.emit((class_id, dropped.files().await));
            });
        })
    };
    let on_delete = {
        let on_delete = props.on_delete.clone();
        let count = class.samples.len();
        let name = class.name.clone();
        Callback::from(move |_: MouseEvent| {
            let confirmed =
                count == 0 || gloo::dialogs::confirm(&t!(lang, "class-delete-confirm", name = &name, count = count));
            if confirmed {
                on_delete.emit(class_id);
            }
        })
    };
    let record = |start: bool| {
        let on_record = props.on_record.clone();
        move || on_record.emit((class_id, start))
    };
    let (start, stop) = (record(true), record(false));
    let on_pointer_down = Callback::from(move |e: PointerEvent| {
        e.prevent_default();
        // Captured, the pointer keeps this button until it is released, even off its edge.
        if let Some(button) = e.target_dyn_into::<web_sys::Element>() {
            let _ = button.set_pointer_capture(e.pointer_id());
        }
        start();
    });
    let stop_pointer = {
        let stop = stop.clone();
        Callback::from(move |_: PointerEvent| stop())
    };
    let on_key_down = {
        let start = record(true);
        Callback::from(move |e: KeyboardEvent| {
            if (e.key() == " " || e.key() == "Enter") && !e.repeat() {
                e.prevent_default();
                start();
            }
        })
    };
    let on_key_up = Callback::from(move |e: KeyboardEvent| {
        if e.key() == " " || e.key() == "Enter" {
            stop();
        }
    });
    let pending = class.samples.iter().filter(|s| !s.embedded).count();
    let shown = class.samples.iter().rev().take(THUMBNAILS_SHOWN);

    let record_text = if props.recording { t!(lang, "recording") } else { t!(lang, "record-hold") };
    let testid = |name: &'static str| if props.unlabelled { format!("target-{name}") } else { format!("class-{name}") };
    html! {
        <section class={ classes!("class-card", props.unlabelled.then_some("target")) }
            data-testid={ if props.unlabelled { "target-card" } else { "class-card" } } data-class-name={ class.name.clone() }
            ondragover={ Callback::from(|e: DragEvent| e.prevent_default()) } ondrop={ on_drop }>
            <header>
                if props.unlabelled {
                    <h3 class="class-name">{ t!(lang, "target-name") }</h3>
                } else {
                    <input class="class-name" data-testid="class-name" value={ class.name.clone() }
                        aria-label={ t!(lang, "class-name-label") } oninput={ on_name } disabled={ props.disabled } />
                    <button class="icon delete" data-testid="delete-class" title={ t!(lang, "class-delete") } aria-label={ t!(lang, "class-delete-named", name = &class.name) } onclick={ on_delete } disabled={ props.disabled }>{ "✕" }</button>
                }
            </header>
            if props.unlabelled {
                <p class="explain">{ t!(lang, "target-explain") }</p>
            }
            <p class="count">
                <span data-testid={ if props.unlabelled { "target-count" } else { "sample-count" } }>{ class.samples.len() }</span>{ " " }{ t!(lang, "samples-unit", count = class.samples.len()) }
                if pending > 0 { <span class="pending">{ t!(lang, "samples-embedding", pending = pending) }</span> }
            </p>
            <div class="thumbnails">
                { for shown.map(|sample| {
                    let on_remove_sample = props.on_remove_sample.clone();
                    let sample_id = sample.id;
                    html! {
                        <button class={ classes!("thumb", (!sample.embedded).then_some("pending")) } title={ t!(lang, "sample-remove") } aria-label={ t!(lang, "sample-remove") }
                            onclick={ Callback::from(move |_| on_remove_sample.emit((class_id, sample_id))) } disabled={ props.disabled }>
                            <img src={ sample.picture.src() } alt="" />
                        </button>
                    }
                }) }
            </div>
            <button class={ classes!("record", props.recording.then_some("recording")) }
                data-testid={ if props.unlabelled { "target-record" } else { "record" } }
                disabled={ props.disabled || !props.camera_on }
                title={ if props.camera_on { t!(lang, "record-title") } else { t!(lang, "record-needs-camera") } }
                aria-label={ t!(lang, "record-label", action = record_text.clone(), name = &class.name) }
                oncontextmenu={ Callback::from(|e: MouseEvent| e.prevent_default()) }
                onpointerdown={ on_pointer_down } onpointerup={ stop_pointer.clone() }
                onpointercancel={ stop_pointer.clone() } onlostpointercapture={ stop_pointer }
                onkeydown={ on_key_down } onkeyup={ on_key_up }>
                { record_text }
            </button>
            <label class="upload">
                <input ref={ upload_ref } type="file" accept="image/*" multiple=true data-testid={ testid("upload") }
                    aria-label={ t!(lang, "upload-label", name = &class.name) }
                    disabled={ props.disabled } onchange={ on_upload } />
                <span>{ t!(lang, "upload-images") }</span>
            </label>
        </section>
    }
}
