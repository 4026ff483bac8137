//! Fine-tuning controls: the backbone as a row of block chips (frozen or trainable), how many of
//! the last blocks train, the two-stage schedule, the backbone's learning rate, cosine decay,
//! batch norm, augmentation with a preview, and advice when the choice is risky.

use graft::backbone::BlockInfo;
use graft::train::{BatchNormMode, TrainConfig};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::setting_input::{updater, SettingInput};
use crate::i18n::{use_lang, Lang};
use crate::state::Picture;
use crate::t;

#[derive(Properties, PartialEq)]
pub struct FreezePanelProps {
    pub blocks: Vec<BlockInfo>,
    pub settings: TrainConfig,
    pub classes: usize,
    pub samples: usize,
    pub on_settings: Callback<TrainConfig>,
    /// Augmented views of a few samples, once asked for.
    pub preview: Vec<Picture>,
    pub on_preview: Callback<()>,
    pub disabled: bool,
}

/// Parameters the run trains: the unfrozen blocks' and the head's.
pub fn trainable_parameters(blocks: &[BlockInfo], settings: &TrainConfig, classes: usize) -> usize {
    let unfrozen = blocks.iter().rev().take(settings.unfreeze).map(|b| b.parameters).sum::<usize>();
    let features = blocks.last().map_or(0, |b| b.output[2]);
    let head = match settings.hidden {
        0 => features * classes + classes,
        h => features * h + h + h * classes + classes,
    };
    unfrozen + head
}

/// `2,223,872` -> `2.22 M`, `4,100` -> `4.1 k`.
fn count(n: usize) -> String {
    match n {
        0..=999 => n.to_string(),
        1_000..=999_999 => format!("{:.1} k", n as f64 / 1e3),
        _ => format!("{:.2} M", n as f64 / 1e6),
    }
}

/// The advice for risky settings: many unfrozen blocks for few images.
fn advice(lang: Lang, settings: &TrainConfig, samples: usize, unfrozen_parameters: usize) -> Option<String> {
    (settings.unfreeze >= 4 && samples < 100 * settings.unfreeze).then(|| {
        t!(
            lang,
            "finetune-advice",
            blocks = settings.unfreeze,
            parameters = count(unfrozen_parameters),
            samples = samples
        )
    })
}

fn chip(lang: Lang, index: usize, block: &BlockInfo, trainable: bool) -> Html {
    let [h, w, c] = block.output;
    let shape = format!("{h}×{w}×{c}");
    let title = t!(lang, "block-title", name = &block.name, shape = shape, parameters = block.parameters);
    html! {
        <li class={ classes!("block-chip", trainable.then_some("trainable")) } data-testid="block-chip"
            data-block={ index.to_string() } data-trainable={ trainable.to_string() } title={ title }>
            <span class="block-name">{ block.name.rsplit('.').next().unwrap_or(&block.name).to_string() }</span>
            <span class="block-shape">{ format!("{h}×{w}×{c}") }</span>
            <span class="block-params">{ count(block.parameters) }</span>
        </li>
    }
}

#[function_component(FreezePanel)]
pub fn freeze_panel(props: &FreezePanelProps) -> Html {
    let (s, cb, blocks) = (&props.settings, &props.on_settings, &props.blocks);
    let first_trainable = blocks.len().saturating_sub(s.unfreeze);
    let unfrozen_parameters = blocks[first_trainable.min(blocks.len())..].iter().map(|b| b.parameters).sum();
    let features = blocks.last().map_or(0, |b| b.output[2]);
    let on_cosine = updater(s, cb, |c, v: bool| c.cosine_decay = v).reform(checked);
    let on_augment = updater(s, cb, |c, v: bool| c.augment.enabled = v).reform(checked);
    let on_bn = updater(s, cb, |c, v: BatchNormMode| c.batch_norm = v).reform(|e: Event| {
        BatchNormMode::parse(&e.target_unchecked_into::<HtmlSelectElement>().value()).unwrap_or_default()
    });
    let on_preview = props.on_preview.reform(|_: MouseEvent| ());
    let fine_tuning = s.unfreeze > 0;
    let lang = use_lang();
    html! {
        <section class="freeze-panel" aria-labelledby="freeze-heading">
            <h2 id="freeze-heading">{ t!(lang, "freeze-heading") }</h2>
            <p class="explain">{ t!(lang, "freeze-explain") }</p>
            <ol class="blocks" aria-label={ t!(lang, "blocks-label") }>
                { for blocks.iter().enumerate().map(|(i, b)| chip(lang, i, b, i >= first_trainable)) }
                <li class="block-chip head trainable" data-testid="head-chip">
                    <span class="block-name">{ t!(lang, "head-chip") }</span>
                    <span class="block-shape">{ match s.hidden { 0 => format!("{features} → {}", props.classes), h => format!("{features} → {h} → {}", props.classes) } }</span>
                </li>
            </ol>
            <div class="settings">
                <SettingInput testid="unfreeze" label={ t!(lang, "setting-unfreeze") } initial={ s.unfreeze.to_string() } step="1"
                    on_value={ updater(s, cb, |c, v: f64| c.unfreeze = v as usize) } disabled={ props.disabled } />
                <SettingInput testid="head-epochs" label={ t!(lang, "setting-head-epochs") } initial={ s.head_epochs.to_string() } step="1"
                    on_value={ updater(s, cb, |c, v: f64| c.head_epochs = v as usize) } disabled={ !fine_tuning } />
                <SettingInput testid="backbone-lr" label={ t!(lang, "setting-backbone-lr") } initial={ s.backbone_learning_rate.to_string() } step="0.00001"
                    on_value={ updater(s, cb, |c, v: f64| c.backbone_learning_rate = v) } disabled={ !fine_tuning } />
                <label class="setting">{ t!(lang, "setting-bn") }
                    <select data-testid="bn-mode" onchange={ on_bn } disabled={ !fine_tuning }>
                        <option value="frozen" selected={ s.batch_norm == BatchNormMode::Frozen }>{ t!(lang, "bn-frozen") }</option>
                        <option value="train" selected={ s.batch_norm == BatchNormMode::Train }>{ t!(lang, "bn-train") }</option>
                    </select>
                </label>
                <label class="setting check"><input type="checkbox" data-testid="cosine" checked={ s.cosine_decay } onchange={ on_cosine } />{ t!(lang, "setting-cosine") }</label>
            </div>
            <p class="numbers">{ t!(lang, "trainable-label") }{ " " }
                <strong data-testid="trainable-params">{ count(trainable_parameters(blocks, s, props.classes)) }</strong>
                { " " }{ if fine_tuning { t!(lang, "trainable-split", parameters = count(unfrozen_parameters), blocks = s.unfreeze) } else { t!(lang, "trainable-head") } }
            </p>
            if fine_tuning {
                <p class="explain">{ t!(lang, "schedule-explain", epochs = s.head_epochs, blocks = s.unfreeze, lr = s.backbone_learning_rate.to_string()) }{ " " }
                    { match s.batch_norm {
                        BatchNormMode::Frozen => t!(lang, "bn-frozen-explain"),
                        BatchNormMode::Train => t!(lang, "bn-train-explain"),
                    } }
                </p>
            }
            if let Some(text) = advice(lang, s, props.samples, unfrozen_parameters) {
                <p class="advice" role="note" data-testid="finetune-hint">{ text }</p>
            }
            <div class="augment">
                <label class="setting check"><input type="checkbox" data-testid="augment" checked={ s.augment.enabled } onchange={ on_augment } />
                    { t!(lang, "augment-label") }</label>
                <SettingInput testid="augment-strength" label={ t!(lang, "augment-strength") } initial={ s.augment.strength.to_string() } step="0.1"
                    on_value={ updater(s, cb, |c, v: f64| c.augment.strength = v as f32) } disabled={ !s.augment.enabled } />
                <button data-testid="preview-augment" onclick={ on_preview } disabled={ props.disabled || props.samples == 0 }>{ t!(lang, "augment-preview") }</button>
                <div class="augment-preview" data-testid="augment-preview" aria-live="polite">
                    { for props.preview.iter().map(|p| html! { <img src={ p.src() } alt={ t!(lang, "augment-alt") } width="96" height="96" /> }) }
                </div>
            </div>
        </section>
    }
}

pub fn checked(e: Event) -> bool {
    e.target_unchecked_into::<HtmlInputElement>().checked()
}
