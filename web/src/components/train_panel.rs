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

/// A numeric setting input; `apply` writes a parsed value into the settings.
fn number_input(
    testid: &'static str,
    label: &'static str,
    value: String,
    step: &'static str,
    settings: &TrainConfig,
    on_settings: &Callback<TrainConfig>,
    apply: fn(&mut TrainConfig, f64),
) -> Html {
    let settings = settings.clone();
    let on_settings = on_settings.clone();
    let on_change = Callback::from(move |e: Event| {
        let input: HtmlInputElement = e.target_unchecked_into();
        if let Ok(v) = input.value().trim().parse::<f64>() {
            if v.is_finite() && v >= 0.0 {
                let mut next = settings.clone();
                apply(&mut next, v);
                on_settings.emit(next);
            }
        }
    });
    html! {
        <label class="setting">{ label }
            <input type="number" data-testid={ testid } value={ value } step={ step } min="0" onchange={ on_change } />
        </label>
    }
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
                { number_input("epochs", "Epochs", s.epochs.to_string(), "1", s, cb, |c, v| c.epochs = (v as usize).max(1)) }
                { number_input("batch", "Batch size", s.batch_size.to_string(), "1", s, cb, |c, v| c.batch_size = (v as usize).max(1)) }
                { number_input("lr", "Learning rate", s.learning_rate.to_string(), "0.0001", s, cb, |c, v| c.learning_rate = v) }
                { number_input("hidden", "Hidden units (0 = linear)", s.hidden.to_string(), "1", s, cb, |c, v| c.hidden = v as usize) }
                { number_input("val-fraction", "Validation fraction", s.val_fraction.to_string(), "0.05", s, cb, |c, v| c.val_fraction = (v as f32).min(0.9)) }
                { number_input("seed", "Seed", s.seed.to_string(), "1", s, cb, |c, v| c.seed = v as u64) }
            </div>
            <div class="actions">
                <button class="primary" data-testid="train" onclick={ on_train } disabled={ training || props.disabled }>{ "Train" }</button>
                <button data-testid="stop" onclick={ on_stop } disabled={ !training }>{ "Stop" }</button>
                <span class="status">{ "Status: " }<strong data-testid="train-status">{ status_text(props.status, props.pending_samples) }</strong></span>
            </div>
        </section>
    }
}
