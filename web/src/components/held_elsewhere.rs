//! Another tab edits the open project (it holds the project's lock): this tab says so, shows
//! the project without changing it, and offers to take it over.

use yew::prelude::*;

use crate::i18n::use_lang;
use crate::t;

#[derive(Properties, PartialEq)]
pub struct HeldElsewhereProps {
    /// The project's name.
    pub name: String,
    /// The other tab took the project over from this one (which had been editing it).
    pub taken_over: bool,
    /// A take-over is under way.
    pub busy: bool,
    pub on_take_over: Callback<()>,
}

#[function_component(HeldElsewhere)]
pub fn held_elsewhere(props: &HeldElsewhereProps) -> Html {
    let lang = use_lang();
    let text = match props.taken_over {
        true => t!(lang, "project-taken-over", name = &props.name),
        false => t!(lang, "project-elsewhere", name = &props.name),
    };
    html! {
        <div class="warning held-elsewhere" role="status" data-testid="project-elsewhere"
            data-taken-over={ props.taken_over.to_string() }>
            <p>{ text }</p>
            <button data-testid="take-over" onclick={ props.on_take_over.reform(|_: MouseEvent| ()) } disabled={ props.busy }>
                { t!(lang, "project-take-over") }
            </button>
        </div>
    }
}
