//! Negative transfer: the trained model beside one that learned from the raw pixels alone
//! (same head, split and seed), and what to try when transfer is not clearly helping.

use graft::transfer::baseline::{TransferCheck, CLEAR_LEAD};
use yew::prelude::*;

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
    if props.pending {
        return html! {
            <section class="transfer-check" aria-live="polite">
                <p class="busy" data-testid="baseline-status">
                    { "Comparing with a model that learned from the raw pixels, without transfer…" }</p>
            </section>
        };
    }
    let Some(check) = props.check else { return html! {} };
    let comparison = format!(
        "Validation accuracy with {}: {}. Without transfer (the same head on the raw pixels, 32 x 32): {}.",
        props.backbone,
        percent(check.transferred_accuracy),
        percent(check.baseline_accuracy)
    );
    html! {
        <section class="transfer-check" aria-live="polite">
            <p data-testid="baseline-accuracy" data-baseline={ check.baseline_accuracy.to_string() }
                data-transferred={ check.transferred_accuracy.to_string() }>{ comparison }</p>
            if check.helps() {
                <p class="ok" data-testid="transfer-helps">{ "Transfer is helping: what the backbone learned \
                    from millions of images makes your model better than learning from your images alone." }</p>
            } else {
                <div class="warning" role="status" data-testid="transfer-warning">
                    <p>{ format!("Transfer is not helping here: the pretrained features are not at least {:.0} points \
                        better than the raw pixels (negative transfer, when they are worse).", 100.0 * CLEAR_LEAD) }</p>
                    <ul>
                        <li>{ "Try another backbone: \u{201c}Which model fits?\u{201d} scores them on your images." }</li>
                        <li>{ "Fine-tune: unfreeze the last blocks so that the features adapt to your images." }</li>
                        <li>{ "Add more images, or cleaner ones: check that each class shows what tells it apart." }</li>
                    </ul>
                </div>
            }
        </section>
    }
}
