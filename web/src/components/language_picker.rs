//! The page's language (`language-select`): English or Simplified Chinese, first from this
//! browser's languages, then as chosen here (kept in local storage, like the pool's size,
//! since it belongs to the person at this browser rather than to the project). `<html lang>`
//! and the document's title follow it.

use gloo::storage::{LocalStorage, Storage};
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use crate::i18n::Lang;
use crate::t;

const STORAGE_KEY: &str = "graft.language";

/// The language chosen here before, else the first of the browser's languages the page speaks.
pub fn initial_language() -> Lang {
    if let Some(lang) = LocalStorage::get::<String>(STORAGE_KEY).ok().and_then(|code| Lang::from_tag(&code)) {
        return lang;
    }
    let navigator = gloo::utils::window().navigator();
    let languages = navigator.languages();
    let tags = languages.iter().filter_map(|tag| tag.as_string());
    tags.chain(navigator.language()).find_map(|tag| Lang::from_tag(&tag)).unwrap_or_default()
}

/// Puts `lang` on `<html lang>` and the title, where assistive technology and the browser read it.
pub fn apply_to_document(lang: Lang) {
    let document = gloo::utils::document();
    if let Some(root) = document.document_element() {
        let _ = root.set_attribute("lang", lang.code());
    }
    document.set_title(&t!(lang, "page-title"));
}

#[derive(Properties, PartialEq)]
pub struct LanguagePickerProps {
    pub lang: Lang,
    pub on_choose: Callback<Lang>,
}

#[function_component(LanguagePicker)]
pub fn language_picker(props: &LanguagePickerProps) -> Html {
    let on_change = props.on_choose.reform(|e: Event| {
        let code = e.target_unchecked_into::<HtmlSelectElement>().value();
        let lang = Lang::from_tag(&code).unwrap_or_default();
        let _ = LocalStorage::set(STORAGE_KEY, lang.code());
        lang
    });
    html! {
        <label class="language">{ t!(props.lang, "language-label") }{ " " }
            <select data-testid="language-select" onchange={ on_change }>
                { for Lang::ALL.into_iter().map(|lang| html! {
                    <option value={ lang.code() } lang={ lang.code() } selected={ lang == props.lang }>{ lang.native_name() }</option>
                }) }
            </select>
        </label>
    }
}
