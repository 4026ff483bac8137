//! Training settings (with their defaults shown), Train and Stop, and the status line.

use graft::train::TrainConfig;
use yew::prelude::*;

use super::freeze_panel::checked;
use super::setting_input::{updater, SettingInput};
use crate::state::TrainStatus;

#[derive(Properties, PartialEq)]
pub struct TrainPanelProps {
    pub settings: TrainConfig,
    pub status: TrainStatus,
    /// `preparing`, `head` or `fine-tune` (see `TrainingView::stage`).
    pub stage: Option<&'static str>,
    /// `(prepared, total)` images while the frozen part runs on them.
    pub preparing: Option<(usize, usize)>,
    pub pending_samples: usize,
    pub on_settings: Callback<TrainConfig>,
    pub on_train: Callback<()>,
    pub on_stop: Callback<()>,
    pub disabled: bool,
    /// Unlabelled images of the new domain (adaptation needs some).
    #[prop_or_default]
    pub target_samples: usize,
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

/// The adaptation strength that helped with unfrozen blocks (README, DANN with 2 unfrozen blocks).
const GENTLE_ADAPT_WEIGHT: f32 = 0.1;

#[function_component(TrainPanel)]
pub fn train_panel(props: &TrainPanelProps) -> Html {
    let s = &props.settings;
    let cb = &props.on_settings;
    let training = props.status == TrainStatus::Training;
    let on_train = props.on_train.reform(|_: MouseEvent| ());
    let on_stop = props.on_stop.reform(|_: MouseEvent| ());
    let on_adapt = updater(s, cb, |c, v: bool| c.adapt.enabled = v).reform(checked);
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
            <div class="adapt">
                <label class="setting check"><input type="checkbox" data-testid="adapt" checked={ s.adapt.enabled }
                    onchange={ on_adapt } />{ "Adapt to the new domain" }</label>
                <SettingInput testid="adapt-weight" label="Strength" initial={ s.adapt.weight.to_string() } step="0.1"
                    on_value={ updater(s, cb, |c, v: f64| c.adapt.weight = v as f32) } disabled={ !s.adapt.enabled } />
                <p class="explain">{ format!("Domain adaptation (DANN) trains the features so that a second classifier \
                    cannot tell your labelled images from the {} unlabelled ones of the new domain, while the labels are \
                    still learned: what the model learns then applies where it will be used.", props.target_samples) }</p>
                if s.adapt.enabled && s.unfreeze > 0 && s.adapt.weight > GENTLE_ADAPT_WEIGHT {
                    <p class="hint" data-testid="adapt-hint">{ format!("With unfrozen blocks, adapt gently: at strength 1 the \
                        reversed gradient pulled the blocks away from the labels in our measurements, while {GENTLE_ADAPT_WEIGHT} \
                        raised accuracy on the new domain by 5 points (README).") }</p>
                }
            </div>
            <div class="actions">
                <button class="primary" data-testid="train" onclick={ on_train } disabled={ training || props.disabled }>{ "Train" }</button>
                <button data-testid="stop" onclick={ on_stop } disabled={ !training }>{ "Stop" }</button>
                <span class="status">{ "Status: " }<strong data-testid="train-status">{ status_text(props.status, props.pending_samples) }</strong></span>
                if let Some(stage) = props.stage {
                    <span class="status">{ "Stage: " }<strong data-testid="train-stage">{ stage }</strong></span>
                }
                if let Some((prepared, total)) = props.preparing {
                    <label class="status">{ format!("Preparing images {prepared}/{total} ") }
                        <progress data-testid="prepare-progress" max={ total.to_string() } value={ prepared.to_string() } />
                    </label>
                }
            </div>
        </section>
    }
}
