//! Negative transfer: the trained model beside one that learned from the raw pixels alone
//! (same head, split and seed), and what to try when transfer is not clearly helping.

use graft::transfer::baseline::{TransferCheck, CLEAR_LEAD};
use yew::prelude::*;

use crate::i18n::use_lang;
use crate::t;

#[derive(Properties, PartialEq)]
pub struct TransferCheckProps {
    pub check: Option<TransferCheck>,
    /// The baseline of the last run is still training.
    pub pending: bool,
    /// The backbone the model was trained on.
    pub backbone: String,
}

fn percent(accuracy: f32) -> String {
    format!("{:.1}%", 100.0 * accuracy)
}

#[function_component(TransferCheckPanel)]
pub fn transfer_check_panel(props: &TransferCheckProps) -> Html {
    let lang = use_lang();
    if props.pending {
        return html! {
            <section class="transfer-check" aria-live="polite">
                <p class="busy" data-testid="baseline-status">
                    { t!(lang, "baseline-pending") }</p>
            </section>
        };
    }
    let Some(check) = props.check else { return html! {} };
    let comparison = t!(
        lang,
        "baseline-comparison",
        backbone = &props.backbone,
        transferred = percent(check.transferred_accuracy),
        baseline = percent(check.baseline_accuracy)
    );
    html! {
        <section class="transfer-check" aria-live="polite">
            <p data-testid="baseline-accuracy" data-baseline={ check.baseline_accuracy.to_string() }
                data-transferred={ check.transferred_accuracy.to_string() }>{ comparison }</p>
            if check.helps() {
                <p class="ok" data-testid="transfer-helps">{ t!(lang, "transfer-helps") }</p>
            } else {
                <div class="warning" role="status" data-testid="transfer-warning">
                    <p>{ t!(lang, "transfer-warning", points = format!("{:.0}", 100.0 * CLEAR_LEAD)) }</p>
                    <ul>
                        <li>{ t!(lang, "transfer-try-backbone") }</li>
                        <li>{ t!(lang, "transfer-try-finetune") }</li>
                        <li>{ t!(lang, "transfer-try-data") }</li>
                    </ul>
                </div>
            }
        </section>
    }
}
