//! Live training metrics: loss and accuracy curves (SVG, labelled axes), validation accuracy,
//! throughput and ETA, per-class accuracy and the confusion matrix with class names.

use graft::train::EpochMetrics;
use yew::prelude::*;

use crate::i18n::{use_lang, Lang};
use crate::state::TrainingView;
use crate::t;

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
    series: [(String, &'static str, Vec<f32>); 2],
    y_max: Option<f32>,
    fine_tune_from: Option<usize>,
}

/// An SVG line chart of two series over epochs, with axes, a legend and the stage marker.
fn chart(lang: Lang, testid: &'static str, title: &str, y_label: &str, data: ChartData) -> Html {
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
        html! { <polyline points={ points } fill="none" stroke={ *color } stroke-width="2"><title>{ name.clone() }</title></polyline> }
    });
    // Between the last head-only epoch and the first fine-tuning one.
    let marker = fine_tune_from.filter(|&e| e >= 2 && e <= n).map(|e| (x(e - 2) + x(e - 1)) / 2.0);
    let legend = series.iter().enumerate().map(|(i, (name, color, _))| html! {
        <text x={ (PAD + 8.0 + i as f64 * 110.0).to_string() } y="12" fill={ *color } font-size="11">{ name.clone() }</text>
    });
    html! {
        <figure class="chart" data-testid={ testid }>
            <svg viewBox={ format!("0 0 {W} {H}") } role="img" aria-label={ title.to_string() }>
                <line x1={ PAD.to_string() } y1="16" x2={ PAD.to_string() } y2={ AXIS_BOTTOM.to_string() } stroke="#888" />
                <line x1={ PAD.to_string() } y1={ AXIS_BOTTOM.to_string() } x2={ (W - 8.0).to_string() } y2={ AXIS_BOTTOM.to_string() } stroke="#888" />
                <text x="2" y={ PLOT_TOP.to_string() } font-size="10">{ format!("{top:.2}") }</text>
                <text x="2" y={ AXIS_BOTTOM.to_string() } font-size="10">{ "0" }</text>
                <text x={ (W / 2.0).to_string() } y={ (H - 4.0).to_string() } font-size="11" text-anchor="middle">{ t!(lang, "chart-epochs", epochs = n) }</text>
                <text x="10" y={ (H / 2.0).to_string() } font-size="11" transform={ format!("rotate(-90 10 {})", H / 2.0) } text-anchor="middle">{ y_label }</text>
                { for lines }
                { for legend }
                if let Some(mx) = marker {
                    <g data-testid="stage-marker">
                        <line x1={ mx.to_string() } y1={ PLOT_TOP.to_string() } x2={ mx.to_string() } y2={ AXIS_BOTTOM.to_string() }
                            stroke="#555" stroke-dasharray="4 3" />
                        <text x={ (mx + 3.0).to_string() } y={ (PLOT_TOP + 10.0).to_string() } font-size="10">{ t!(lang, "chart-fine-tuning") }</text>
                    </g>
                }
            </svg>
            <figcaption>{ title }</figcaption>
            <p class="visually-hidden" data-testid={ format!("{testid}-summary") }>{ chart_summary(lang, &series, n) }</p>
        </figure>
    }
}

/// What a chart shows, in words, for screen readers: each series' first, last and best value.
fn chart_summary(lang: Lang, series: &[(String, &'static str, Vec<f32>); 2], epochs: usize) -> String {
    let lines = series.iter().filter_map(|(name, _, values)| {
        let (first, last) = (values.first()?, values.last()?);
        let low = values.iter().copied().fold(f32::INFINITY, f32::min);
        let high = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let [first, last, low, high] = [first, last, &low, &high].map(|v| format!("{v:.3}"));
        Some(t!(lang, "chart-series-summary", name = name, first = first, last = last, low = low, high = high))
    });
    let lines: Vec<String> = lines.collect();
    format!("{} {}", t!(lang, "chart-summary", epochs = epochs), lines.join(" "))
}

fn series(history: &[EpochMetrics], pick: fn(&EpochMetrics) -> Option<f32>) -> Vec<f32> {
    history.iter().filter_map(pick).collect()
}

/// Epochs of rising validation loss before the page says the model overfits.
const OVERFIT_EPOCHS: usize = 3;

/// What the run keeps in memory: its inputs at the freeze boundary and augmented views.
fn cache_text(lang: Lang, t: &TrainingView) -> String {
    let megabytes = format!("{:.1}", t.cache_bytes as f64 / (1 << 20) as f64);
    let what = if t.unfreeze > 0 { "activations" } else { "features" };
    t!(lang, "cache-size", what = what, megabytes = megabytes, views = t.views)
}

fn seconds(lang: Lang, millis: f64) -> String {
    t!(lang, "seconds", seconds = format!("{:.1}", millis / 1000.0))
}

/// The confusion to show: the final one (best weights) once done, else the latest epoch's.
/// The confusion table to show: the final report's, else the latest epoch's.
struct ConfusionView {
    heading: String,
    counts: Vec<Vec<u32>>,
    per_class: Vec<Option<f32>>,
}

fn confusion_view(lang: Lang, t: &TrainingView) -> Option<ConfusionView> {
    if let Some(report) = &t.report {
        let kept = match report.kept_final {
            true => t!(lang, "kept-final", epoch = report.epochs_run),
            false => t!(lang, "kept-best", epoch = report.best_epoch, epochs = report.epochs_run),
        };
        let heading = t!(lang, "confusion-heading", kept = kept, samples = report.val_samples);
        return Some(ConfusionView {
            heading,
            counts: report.confusion.counts.clone(),
            per_class: report.per_class_accuracy.clone(),
        });
    }
    let last = t.history.last()?;
    Some(ConfusionView {
        heading: t!(lang, "confusion-heading-epoch", epoch = last.epoch),
        counts: last.confusion.counts.clone(),
        per_class: last.confusion.per_class_accuracy(),
    })
}

/// The confusion matrix in one sentence: how many were right, and the most frequent mistake.
fn confusion_summary(lang: Lang, counts: &[Vec<u32>], names: &[String]) -> String {
    let total: u32 = counts.iter().flatten().sum();
    let right: u32 = counts.iter().enumerate().map(|(i, row)| row.get(i).copied().unwrap_or(0)).sum();
    let cells = counts.iter().enumerate().flat_map(|(i, row)| row.iter().enumerate().map(move |(j, &c)| (i, j, c)));
    let worst = cells.filter(|&(i, j, c)| i != j && c > 0).max_by_key(|&(_, _, c)| c);
    let name = |i: usize| names.get(i).cloned().unwrap_or_default();
    let overall = t!(lang, "confusion-right", right = right, total = total);
    match worst {
        Some((truth, predicted, count)) => {
            let mistake = t!(lang, "confusion-worst", count = count, truth = name(truth), predicted = name(predicted));
            format!("{overall} {mistake}")
        }
        None => overall,
    }
}

#[function_component(Metrics)]
pub fn metrics(props: &MetricsProps) -> Html {
    let t = &props.training;
    let lang = use_lang();
    if t.history.is_empty() && t.report.is_none() {
        return html! {};
    }
    let last = t.history.last();
    let done = t.history.len();
    let eta = if done > 0 && t.running {
        seconds(lang, t.elapsed_millis / done as f64 * t.epochs_planned.saturating_sub(done) as f64)
    } else {
        "–".into()
    };
    let fine_tune_from = t.fine_tune_start();
    let overfitting = t.overfitting_epochs();
    let val_accuracy = t.report.as_ref().map(|r| r.val_accuracy).or_else(|| last.and_then(|m| m.val_accuracy));
    html! {
        <section class="metrics">
            <h2>{ t!(lang, "metrics-heading") }</h2>
            <p class="numbers">
                { t!(lang, "val-accuracy-label") }{ " " }
                <strong data-testid="val-accuracy">{ val_accuracy.map_or("–".into(), |a| format!("{:.1}%", a * 100.0)) }</strong>
                { t!(lang, "progress-numbers", done = done, planned = t.epochs_planned,
                    rate = format!("{:.0}", t.samples_per_second), elapsed = seconds(lang, t.elapsed_millis), eta = eta) }
                if let Some(device) = &t.device {
                    { t!(lang, "trained-on") }<span data-testid="train-device">{ device }</span>
                }
            </p>
            if t.cache_bytes > 0 {
                <p class="numbers" data-testid="cache-size">{ cache_text(lang, t) }</p>
            }
            if overfitting >= OVERFIT_EPOCHS {
                <p class="advice" role="note" data-testid="overfit-hint">{ t!(lang, "overfit-hint", epochs = overfitting, unfrozen = t.unfreeze) }</p>
            }
            if t.stale {
                <p class="stale" data-testid="stale">{ t!(lang, "metrics-stale") }</p>
            }
            <div class="charts">
                { chart(lang, "loss-chart", &t!(lang, "chart-loss"), &t!(lang, "chart-cross-entropy"), ChartData { series: [
                    (t!(lang, "series-train-loss"), "#2f7d4f", series(&t.history, |m| Some(m.train_loss))),
                    (t!(lang, "series-val-loss"), "#b5461b", series(&t.history, |m| m.val_loss)),
                ], y_max: None, fine_tune_from }) }
                { chart(lang, "accuracy-chart", &t!(lang, "chart-accuracy"), &t!(lang, "chart-accuracy-axis"), ChartData { series: [
                    (t!(lang, "series-train-accuracy"), "#2f7d4f", series(&t.history, |m| Some(m.train_accuracy))),
                    (t!(lang, "series-val-accuracy"), "#b5461b", series(&t.history, |m| m.val_accuracy)),
                ], y_max: Some(1.0), fine_tune_from }) }
                if t.history.iter().any(|m| m.domain_accuracy.is_some()) {
                    { chart(lang, "domain-chart", &t!(lang, "chart-domains"), &t!(lang, "chart-accuracy-axis"), ChartData { series: [
                        (t!(lang, "series-domain"), "#5b4ab0", series(&t.history, |m| m.domain_accuracy)),
                        (t!(lang, "series-chance"), "#767676", t.history.iter().map(|_| 0.5).collect()),
                    ], y_max: Some(1.0), fine_tune_from }) }
                }
            </div>
            if let Some(domain) = t.history.last().and_then(|m| m.domain_accuracy) {
                <p class="explain" data-testid="domain-accuracy" data-value={ domain.to_string() }>{ t!(lang, "domain-explain", percent = format!("{:.0}", domain * 100.0)) }</p>
            }
            if let Some(ConfusionView { heading, counts, per_class }) = confusion_view(lang, t) {
                <h3>{ heading }</h3>
                <div class="table-scroll">
                <table class="confusion" data-testid="confusion-matrix">
                    <caption>{ t!(lang, "confusion-caption") }</caption>
                    <thead><tr><td></td>{ for t.class_names.iter().map(|n| html! { <th scope="col">{ n }</th> }) }<th scope="col">{ t!(lang, "confusion-accuracy") }</th></tr></thead>
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
                </div>
                <p class="explain" data-testid="confusion-summary">{ confusion_summary(lang, &counts, &t.class_names) }</p>
            }
        </section>
    }
}
