//! Projector mode (`projector-mode`): larger type, thicker chart lines and stronger contrast
//! for a classroom screen (the `projector` class on `<html>`, styled in styles.css), kept in
//! local storage like the language.

use gloo::storage::{LocalStorage, Storage};
use yew::prelude::*;

use super::freeze_panel::checked;
use crate::i18n::use_lang;
use crate::t;

const STORAGE_KEY: &str = "graft.projector";

fn apply(on: bool) {
    if let Some(root) = gloo::utils::document().document_element() {
        let _ = root.class_list().toggle_with_force("projector", on);
    }
}

#[function_component(ProjectorToggle)]
pub fn projector_toggle() -> Html {
    let lang = use_lang();
    let on = use_state(|| LocalStorage::get::<bool>(STORAGE_KEY).unwrap_or(false));
    use_effect_with(*on, |on| apply(*on));
    let on_change = {
        let on = on.clone();
        Callback::from(move |e: Event| {
            let value = checked(e);
            let _ = LocalStorage::set(STORAGE_KEY, value);
            on.set(value);
        })
    };
    html! {
        <label class="projector">
            <input type="checkbox" data-testid="projector-mode" checked={ *on } onchange={ on_change } />
            { " " }{ t!(lang, "projector-mode") }
        </label>
    }
}
