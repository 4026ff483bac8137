//! Live training metrics: loss and accuracy curves (SVG, labelled axes), validation accuracy,
//! throughput and ETA, per-class accuracy and the confusion matrix with class names.

use graft::train::EpochMetrics;
use yew::prelude::*;

use crate::state::TrainingView;

#[derive(Properties, PartialEq)]
pub struct MetricsProps {
    pub training: TrainingView,
}

const W: f64 = 320.0;
const H: f64 = 160.0;
const PAD: f64 = 32.0;
/// The y axis runs from `AXIS_BOTTOM` (0) up to `PLOT_TOP` (the top value, labelled there), below
/// the legend line.
const AXIS_BOTTOM: f64 = H - PAD + 8.0;
const PLOT_TOP: f64 = 24.0;

/// What a chart draws: two series over epochs, the top of the y axis (else from the data),
/// and the epoch where fine-tuning began (a dashed line).
struct ChartData {
    series: [(&'static str, &'static str, Vec<f32>); 2],
    y_max: Option<f32>,
    fine_tune_from: Option<usize>,
}

/// An SVG line chart of two series over epochs, with axes, a legend and the stage marker.
fn chart(testid: &'static str, title: &str, y_label: &str, data: ChartData) -> Html {
    let ChartData { series, y_max, fine_tune_from } = data;
    let n = series.iter().map(|s| s.2.len()).max().unwrap_or(0);
    let top = y_max.unwrap_or_else(|| {
        series.iter().flat_map(|s| s.2.iter().copied()).filter(|v| v.is_finite()).fold(0.0f32, f32::max) * 1.1
    });
    let top = if top > 0.0 { top } else { 1.0 } as f64;
    let x = |i: usize| PAD + (W - PAD - 8.0) * if n > 1 { i as f64 / (n - 1) as f64 } else { 0.0 };
    let y = |v: f32| AXIS_BOTTOM - (AXIS_BOTTOM - PLOT_TOP) * (v as f64 / top).clamp(0.0, 1.0);
    let lines = series.iter().map(|(name, color, values)| {
        let points: String = values.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1} ", x(i), y(*v))).collect();
        html! { <polyline points={ points } fill="none" stroke={ *color } stroke-width="2"><title>{ *name }</title></polyline> }
    });
    // Between the last head-only epoch and the first fine-tuning one.
    let marker = fine_tune_from.filter(|&e| e >= 2 && e <= n).map(|e| (x(e - 2) + x(e - 1)) / 2.0);
    let legend = series.iter().enumerate().map(|(i, (name, color, _))| html! {
        <text x={ (PAD + 8.0 + i as f64 * 110.0).to_string() } y="12" fill={ *color } font-size="11">{ *name }</text>
    });
    html! {
        <figure class="chart" data-testid={ testid }>
            <svg viewBox={ format!("0 0 {W} {H}") } role="img" aria-label={ title.to_string() }>
                <line x1={ PAD.to_string() } y1="16" x2={ PAD.to_string() } y2={ AXIS_BOTTOM.to_string() } stroke="#888" />
                <line x1={ PAD.to_string() } y1={ AXIS_BOTTOM.to_string() } x2={ (W - 8.0).to_string() } y2={ AXIS_BOTTOM.to_string() } stroke="#888" />
                <text x="2" y={ PLOT_TOP.to_string() } font-size="10">{ format!("{top:.2}") }</text>
                <text x="2" y={ AXIS_BOTTOM.to_string() } font-size="10">{ "0" }</text>
                <text x={ (W / 2.0).to_string() } y={ (H - 4.0).to_string() } font-size="11" text-anchor="middle">{ format!("epoch (1–{n})") }</text>
                <text x="10" y={ (H / 2.0).to_string() } font-size="11" transform={ format!("rotate(-90 10 {})", H / 2.0) } text-anchor="middle">{ y_label }</text>
                { for lines }
                { for legend }
                if let Some(mx) = marker {
                    <g data-testid="stage-marker">
                        <line x1={ mx.to_string() } y1={ PLOT_TOP.to_string() } x2={ mx.to_string() } y2={ AXIS_BOTTOM.to_string() }
                            stroke="#555" stroke-dasharray="4 3" />
                        <text x={ (mx + 3.0).to_string() } y={ (PLOT_TOP + 10.0).to_string() } font-size="10">{ "fine-tuning" }</text>
                    </g>
                }
            </svg>
            <figcaption>{ title }</figcaption>
        </figure>
    }
}

fn series(history: &[EpochMetrics], pick: fn(&EpochMetrics) -> Option<f32>) -> Vec<f32> {
    history.iter().filter_map(pick).collect()
}

/// Epochs of rising validation loss before the page says the model overfits.
const OVERFIT_EPOCHS: usize = 3;

/// What the run keeps in memory: its inputs at the freeze boundary and augmented views.
fn cache_text(t: &TrainingView) -> String {
    let what = if t.unfreeze > 0 { "activations entering the unfrozen blocks" } else { "features" };
    let views = match t.views {
        0 => String::new(),
        k => format!(", with {k} augmented view(s) per image"),
    };
    format!("Cached {what}: {:.1} MB{views}", t.cache_bytes as f64 / (1 << 20) as f64)
}

fn seconds(millis: f64) -> String {
    format!("{:.1} s", millis / 1000.0)
}

/// The confusion to show: the final one (best weights) once done, else the latest epoch's.
/// The confusion table to show: the final report's, else the latest epoch's.
struct ConfusionView {
    heading: String,
    counts: Vec<Vec<u32>>,
    per_class: Vec<Option<f32>>,
}

fn confusion_view(t: &TrainingView) -> Option<ConfusionView> {
    if let Some(report) = &t.report {
        let kept = match report.kept_final {
            true => format!(
                "Final epoch {} kept (domain adaptation: the new domain's images have no labels to pick an \
                epoch by, and the best validation loss tends to come before the adaptation took hold)",
                report.epochs_run
            ),
            false => format!("Best epoch {} of {} kept (lowest validation loss)", report.best_epoch, report.epochs_run),
        };
        let heading = format!("{kept} · scored on {} validation samples", report.val_samples);
        return Some(ConfusionView {
            heading,
            counts: report.confusion.counts.clone(),
            per_class: report.per_class_accuracy.clone(),
        });
    }
    let last = t.history.last()?;
    Some(ConfusionView {
        heading: format!("Epoch {} · validation", last.epoch),
        counts: last.confusion.counts.clone(),
        per_class: last.confusion.per_class_accuracy(),
    })
}

#[function_component(Metrics)]
pub fn metrics(props: &MetricsProps) -> Html {
    let t = &props.training;
    if t.history.is_empty() && t.report.is_none() {
        return html! {};
    }
    let last = t.history.last();
    let done = t.history.len();
    let eta = if done > 0 && t.running {
        seconds(t.elapsed_millis / done as f64 * t.epochs_planned.saturating_sub(done) as f64)
    } else {
        "–".into()
    };
    let fine_tune_from = t.fine_tune_start();
    let overfitting = t.overfitting_epochs();
    let val_accuracy = t.report.as_ref().map(|r| r.val_accuracy).or_else(|| last.and_then(|m| m.val_accuracy));
    html! {
        <section class="metrics">
            <h2>{ "How it learns" }</h2>
            <p class="numbers">
                { "Validation accuracy: " }
                <strong data-testid="val-accuracy">{ val_accuracy.map_or("–".into(), |a| format!("{:.1}%", a * 100.0)) }</strong>
                { format!(" · epoch {done}/{} · {:.0} samples/s · elapsed {} · ETA {eta}", t.epochs_planned, t.samples_per_second, seconds(t.elapsed_millis)) }
                if let Some(device) = &t.device {
                    { " · trained on " }<span data-testid="train-device">{ device }</span>
                }
            </p>
            if t.cache_bytes > 0 {
                <p class="numbers" data-testid="cache-size">{ cache_text(t) }</p>
            }
            if overfitting >= OVERFIT_EPOCHS {
                <p class="advice" role="note" data-testid="overfit-hint">{ format!(
                    "Validation loss has risen for {overfitting} epochs while training loss fell: the model is starting to \
                     memorise its training images (overfitting). The best weights so far are kept; more images, augmentation \
                     or fewer epochs would help{}.", if t.unfreeze > 0 { ", and so would fewer unfrozen blocks" } else { "" }) }</p>
            }
            if t.stale {
                <p class="stale" data-testid="stale">{ "The data changed since training: train again to use it." }</p>
            }
            <div class="charts">
                { chart("loss-chart", "Loss", "cross-entropy", ChartData { series: [
                    ("train loss", "#2f7d4f", series(&t.history, |m| Some(m.train_loss))),
                    ("validation loss", "#c0572b", series(&t.history, |m| m.val_loss)),
                ], y_max: None, fine_tune_from }) }
                { chart("accuracy-chart", "Accuracy", "accuracy", ChartData { series: [
                    ("train accuracy", "#2f7d4f", series(&t.history, |m| Some(m.train_accuracy))),
                    ("validation accuracy", "#c0572b", series(&t.history, |m| m.val_accuracy)),
                ], y_max: Some(1.0), fine_tune_from }) }
                if t.history.iter().any(|m| m.domain_accuracy.is_some()) {
                    { chart("domain-chart", "Telling the domains apart", "accuracy", ChartData { series: [
                        ("domain classifier", "#5b4ab0", series(&t.history, |m| m.domain_accuracy)),
                        ("chance (50%)", "#999999", t.history.iter().map(|_| 0.5).collect()),
                    ], y_max: Some(1.0), fine_tune_from }) }
                }
            </div>
            if let Some(domain) = t.history.last().and_then(|m| m.domain_accuracy) {
                <p class="explain" data-testid="domain-accuracy" data-value={ domain.to_string() }>{ format!(
                    "The domain classifier tells your labelled images from the new domain's {:.0}% of the time. Near 50% \
                     the features no longer tell the two domains apart, so what the model learned from your labels \
                     applies to the new images too.", domain * 100.0) }</p>
            }
            if let Some(ConfusionView { heading, counts, per_class }) = confusion_view(t) {
                <h3>{ heading }</h3>
                <table class="confusion" data-testid="confusion-matrix">
                    <caption>{ "Confusion matrix: rows are the true class, columns the prediction" }</caption>
                    <thead><tr><th></th>{ for t.class_names.iter().map(|n| html! { <th scope="col">{ n }</th> }) }<th>{ "accuracy" }</th></tr></thead>
                    <tbody>
                        { for counts.iter().enumerate().map(|(i, row)| html! {
                            <tr>
                                <th scope="row">{ t.class_names.get(i).cloned().unwrap_or_default() }</th>
                                { for row.iter().enumerate().map(|(j, c)| html! { <td class={ classes!((i == j).then_some("diagonal")) }>{ c }</td> }) }
                                <td class="per-class" data-testid="class-accuracy">{ per_class.get(i).copied().flatten().map_or("–".into(), |a| format!("{:.0}%", a * 100.0)) }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            }
        </section>
    }
}
