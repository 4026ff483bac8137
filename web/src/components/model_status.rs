//! Model download progress, then which model and compute backend are in use.

use yew::prelude::*;

use crate::state::ModelStatus;

#[derive(Properties, PartialEq)]
pub struct ModelStatusProps {
    pub status: ModelStatus,
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[function_component(ModelStatusBar)]
pub fn model_status_bar(props: &ModelStatusProps) -> Html {
    match &props.status {
        ModelStatus::Loading { loaded_bytes, total_bytes } => html! {
            <section class="model-status loading">
                <label for="load-progress">{ "Loading the model… " }
                    <span class="bytes">{ format!("{} / {}", megabytes(*loaded_bytes), megabytes(*total_bytes)) }</span>
                </label>
                <progress id="load-progress" data-testid="load-progress"
                    max={ total_bytes.max(&1).to_string() } value={ loaded_bytes.to_string() }
                    data-loaded={ loaded_bytes.to_string() } data-total={ total_bytes.to_string() } />
                <span class="backend" data-testid="backend">{ "starting…" }</span>
            </section>
        },
        ModelStatus::Ready { model_name, backend, load_millis } => html! {
            <section class="model-status ready" data-ready="true">
                <progress data-testid="load-progress" max="1" value="1" />
                <span class="model-name">{ model_name }</span>
                <span class="backend" data-testid="backend" title="Where the model computes">{ backend }</span>
                <span class="load-time">{ format!("ready in {:.1} s", load_millis / 1000.0) }</span>
            </section>
        },
        ModelStatus::Failed { .. } => html! {
            <section class="model-status failed">
                <span class="backend" data-testid="backend">{ "no model" }</span>
            </section>
        },
    }
}
