//! Training settings (with their defaults shown), Train and Stop, and the status line.

use graft::train::TrainConfig;
use yew::prelude::*;

use super::freeze_panel::checked;
use super::setting_input::{updater, SettingInput};
use crate::i18n::{use_lang, Lang};
use crate::state::TrainStatus;
use crate::t;

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

/// The status's stable name (`data-status`, and the message id's tail).
fn status_name(status: TrainStatus, pending: usize) -> &'static str {
    match status {
        TrainStatus::Training => "training",
        _ if pending > 0 => "embedding",
        TrainStatus::Idle => "idle",
        TrainStatus::Done => "done",
        TrainStatus::Error => "error",
    }
}

fn status_text(lang: Lang, name: &str) -> String {
    match name {
        "training" => t!(lang, "status-training"),
        "embedding" => t!(lang, "status-embedding"),
        "idle" => t!(lang, "status-idle"),
        "done" => t!(lang, "status-done"),
        _ => t!(lang, "status-error"),
    }
}

fn stage_text(lang: Lang, stage: &str) -> String {
    match stage {
        "preparing" => t!(lang, "stage-preparing"),
        "head" => t!(lang, "stage-head"),
        _ => t!(lang, "stage-fine-tune"),
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
    let lang = use_lang();
    let status = status_name(props.status, props.pending_samples);
    html! {
        <section class="train-panel">
            <h2>{ t!(lang, "train-heading") }</h2>
            <div class="settings">
                <SettingInput testid="epochs" label={ t!(lang, "setting-epochs") } initial={ s.epochs.to_string() } step="1"
                    on_value={ updater(s, cb, |c, v| c.epochs = v as usize) } />
                <SettingInput testid="batch" label={ t!(lang, "setting-batch") } initial={ s.batch_size.to_string() } step="1"
                    on_value={ updater(s, cb, |c, v| c.batch_size = v as usize) } />
                <SettingInput testid="lr" label={ t!(lang, "setting-lr") } initial={ s.learning_rate.to_string() } step="0.0001"
                    on_value={ updater(s, cb, |c, v| c.learning_rate = v) } />
                <SettingInput testid="hidden" label={ t!(lang, "setting-hidden") } initial={ s.hidden.to_string() } step="1"
                    on_value={ updater(s, cb, |c, v| c.hidden = v as usize) } />
                <SettingInput testid="val-fraction" label={ t!(lang, "setting-val-fraction") } initial={ s.val_fraction.to_string() } step="0.05"
                    on_value={ updater(s, cb, |c, v| c.val_fraction = v as f32) } />
                <SettingInput testid="seed" label={ t!(lang, "setting-seed") } initial={ s.seed.to_string() } step="1"
                    on_value={ updater(s, cb, |c, v| c.seed = v as u64) } />
            </div>
            <div class="adapt">
                <label class="setting check"><input type="checkbox" data-testid="adapt" checked={ s.adapt.enabled }
                    onchange={ on_adapt } />{ t!(lang, "adapt-label") }</label>
                <SettingInput testid="adapt-weight" label={ t!(lang, "setting-adapt-weight") } initial={ s.adapt.weight.to_string() } step="0.1"
                    on_value={ updater(s, cb, |c, v: f64| c.adapt.weight = v as f32) } disabled={ !s.adapt.enabled } />
                <p class="explain">{ t!(lang, "adapt-explain", target = props.target_samples) }</p>
                if s.adapt.enabled && s.unfreeze > 0 && s.adapt.weight > GENTLE_ADAPT_WEIGHT {
                    <p class="hint" data-testid="adapt-hint">{ t!(lang, "adapt-hint", gentle = GENTLE_ADAPT_WEIGHT) }</p>
                }
            </div>
            <div class="actions">
                <button class="primary" data-testid="train" onclick={ on_train } disabled={ training || props.disabled }>{ t!(lang, "train-button") }</button>
                <button data-testid="stop" onclick={ on_stop } disabled={ !training }>{ t!(lang, "stop-button") }</button>
                <span class="status" role="status">{ t!(lang, "status-label") }{ " " }<strong data-testid="train-status" data-status={ status }>{ status_text(lang, status) }</strong></span>
                if let Some(stage) = props.stage {
                    <span class="status">{ t!(lang, "stage-label") }{ " " }<strong data-testid="train-stage" data-stage={ stage }>{ stage_text(lang, stage) }</strong></span>
                }
                if let Some((prepared, total)) = props.preparing {
                    <label class="status">{ t!(lang, "preparing-images", prepared = prepared, total = total) }{ " " }
                        <progress data-testid="prepare-progress" max={ total.to_string() } value={ prepared.to_string() } />
                    </label>
                }
            </div>
        </section>
    }
}
