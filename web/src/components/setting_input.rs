//! A numeric training setting, and the callback that applies one change to the settings.

use graft::train::TrainConfig;
use web_sys::HtmlInputElement;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct SettingInputProps {
    pub testid: &'static str,
    pub label: AttrValue,
    pub initial: String,
    pub step: &'static str,
    pub on_value: Callback<f64>,
    #[prop_or_default]
    pub disabled: bool,
}

/// A numeric setting. It keeps its own text, so re-renders while training (every epoch) never
/// overwrite what a person is typing; each number is passed on as it is typed, and
/// `TrainConfig::validate` (in the page's reducer) says when one is out of range. The panels
/// are keyed by the settings' revision, so a restored project gives the inputs their text again.
#[function_component(SettingInput)]
pub fn setting_input(props: &SettingInputProps) -> Html {
    let text = use_state(|| props.initial.clone());
    let on_input = {
        let (text, on_value) = (text.clone(), props.on_value.clone());
        Callback::from(move |e: InputEvent| {
            let value = e.target_unchecked_into::<HtmlInputElement>().value();
            if let Ok(v) = value.trim().parse::<f64>() {
                if v.is_finite() && v >= 0.0 {
                    on_value.emit(v);
                }
            }
            text.set(value);
        })
    };
    html! {
        <label class="setting">{ props.label.clone() }
            <input type="number" data-testid={ props.testid } value={ (*text).clone() } step={ props.step } min="0"
                oninput={ on_input } disabled={ props.disabled } />
        </label>
    }
}

/// Applies `update` to a copy of the settings and emits it.
pub fn updater<T: 'static>(
    settings: &TrainConfig,
    on_settings: &Callback<TrainConfig>,
    update: fn(&mut TrainConfig, T),
) -> Callback<T> {
    let (settings, on_settings) = (settings.clone(), on_settings.clone());
    Callback::from(move |v| {
        let mut next = settings.clone();
        update(&mut next, v);
        on_settings.emit(next);
    })
}
