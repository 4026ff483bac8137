//! Training settings (with their defaults shown), Train and Stop, and the status line.

use graft::train::TrainConfig;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::state::TrainStatus;

#[derive(Properties, PartialEq)]
pub struct TrainPanelProps {
    pub settings: TrainConfig,
    pub status: TrainStatus,
    pub pending_samples: usize,
    pub on_settings: Callback<TrainConfig>,
    pub on_train: Callback<()>,
    pub on_stop: Callback<()>,
    pub disabled: bool,
}

fn status_text(status: TrainStatus, pending: usize) -> &'static str {
    match status {
        TrainStatus::Training => "training",
        _ if pending > 0 => "embedding",
        TrainStatus::Idle => "idle",
        TrainStatus::Done => "done",
        TrainStatus::Error => "error",
    }
}

#[derive(Properties, PartialEq)]
struct SettingInputProps {
    testid: &'static str,
    label: &'static str,
    initial: String,
    step: &'static str,
    on_value: Callback<f64>,
}

/// A numeric setting. It keeps its own text, so re-renders while training (every epoch) never
/// overwrite what a person is typing; each number is passed on as it is typed, and
/// `TrainConfig::validate` (in the page's reducer) says when one is out of range. The panel is
/// keyed by the settings' revision, so a restored project gives the inputs their text again.
#[function_component(SettingInput)]
fn setting_input(props: &SettingInputProps) -> Html {
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
        <label class="setting">{ props.label }
            <input type="number" data-testid={ props.testid } value={ (*text).clone() } step={ props.step } min="0" oninput={ on_input } />
        </label>
    }
}

/// Applies `update` to a copy of the settings and emits it.
fn updater(
    settings: &TrainConfig,
    on_settings: &Callback<TrainConfig>,
    update: fn(&mut TrainConfig, f64),
) -> Callback<f64> {
    let (settings, on_settings) = (settings.clone(), on_settings.clone());
    Callback::from(move |v| {
        let mut next = settings.clone();
        update(&mut next, v);
        on_settings.emit(next);
    })
}

#[function_component(TrainPanel)]
pub fn train_panel(props: &TrainPanelProps) -> Html {
    let s = &props.settings;
    let cb = &props.on_settings;
    let training = props.status == TrainStatus::Training;
    let on_train = props.on_train.reform(|_: MouseEvent| ());
    let on_stop = props.on_stop.reform(|_: MouseEvent| ());
    html! {
        <section class="train-panel">
            <h2>{ "Train" }</h2>
            <div class="settings">
                <SettingInput testid="epochs" label="Epochs" initial={ s.epochs.to_string() } step="1"
                    on_value={ updater(s, cb, |c, v| c.epochs = v as usize) } />
                <SettingInput testid="batch" label="Batch size" initial={ s.batch_size.to_string() } step="1"
                    on_value={ updater(s, cb, |c, v| c.batch_size = v as usize) } />
                <SettingInput testid="lr" label="Learning rate" initial={ s.learning_rate.to_string() } step="0.0001"
                    on_value={ updater(s, cb, |c, v| c.learning_rate = v) } />
                <SettingInput testid="hidden" label="Hidden units (0 = linear)" initial={ s.hidden.to_string() } step="1"
                    on_value={ updater(s, cb, |c, v| c.hidden = v as usize) } />
                <SettingInput testid="val-fraction" label="Validation fraction" initial={ s.val_fraction.to_string() } step="0.05"
                    on_value={ updater(s, cb, |c, v| c.val_fraction = v as f32) } />
                <SettingInput testid="seed" label="Seed" initial={ s.seed.to_string() } step="1"
                    on_value={ updater(s, cb, |c, v| c.seed = v as u64) } />
            </div>
            <div class="actions">
                <button class="primary" data-testid="train" onclick={ on_train } disabled={ training || props.disabled }>{ "Train" }</button>
                <button data-testid="stop" onclick={ on_stop } disabled={ !training }>{ "Stop" }</button>
                <span class="status">{ "Status: " }<strong data-testid="train-status">{ status_text(props.status, props.pending_samples) }</strong></span>
            </div>
        </section>
    }
}
