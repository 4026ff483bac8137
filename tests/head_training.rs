//! Head training: AdamW steps against PyTorch (`tests/reference/make_fixtures.py`), and the
//! training loop's behaviour (learning, keeping the best weights, refusing bad set-ups,
//! reporting divergence).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use graft::embed::block_on;
use graft::error::DivergedAdvice;
use graft::model::{MlpHead, MlpHeadSpec};
use graft::train::{TrainConfig, TrainData, Trainer};
use graft::GraftError;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    lr: f64,
    weight_decay: f64,
    x: Vec<Vec<f32>>,
    y: Vec<u32>,
    initial: HashMap<String, serde_json::Value>,
    losses: Vec<f32>,
    #[serde(rename = "final")]
    final_weights: HashMap<String, serde_json::Value>,
}

fn tensor(value: &serde_json::Value) -> Tensor {
    match value {
        serde_json::Value::Array(rows) if rows.first().is_some_and(|r| r.is_array()) => {
            let rows: Vec<Vec<f32>> = serde_json::from_value(value.clone()).unwrap();
            Tensor::new(rows, &Device::Cpu).unwrap()
        }
        _ => {
            let row: Vec<f32> = serde_json::from_value(value.clone()).unwrap();
            Tensor::new(row, &Device::Cpu).unwrap()
        }
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

#[test]
fn adamw_steps_match_pytorch() {
    let reference: Reference = serde_json::from_str(include_str!("fixtures/head_training_reference.json")).unwrap();
    let varmap = VarMap::new();
    let spec = MlpHeadSpec { in_dim: 8, hidden: 5, classes: 3 };
    let head = MlpHead::load(spec, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
    for (name, var) in varmap.data().lock().unwrap().iter() {
        var.set(&tensor(&reference.initial[name])).unwrap();
    }
    let params = ParamsAdamW { lr: reference.lr, weight_decay: reference.weight_decay, ..Default::default() };
    let mut optimizer = AdamW::new(varmap.all_vars(), params).unwrap();
    let x = Tensor::new(reference.x.clone(), &Device::Cpu).unwrap();
    let y = Tensor::new(reference.y.as_slice(), &Device::Cpu).unwrap();
    for (step, expected) in reference.losses.iter().enumerate() {
        let loss = candle_nn::loss::cross_entropy(&head.forward_with_mask(&x, None).unwrap(), &y).unwrap();
        let value: f32 = loss.to_scalar().unwrap();
        assert!((value - expected).abs() < 1e-5, "step {step}: loss {value} vs {expected}");
        optimizer.backward_step(&loss).unwrap();
    }
    for (name, var) in varmap.data().lock().unwrap().iter() {
        let diff = max_abs_diff(var.as_tensor(), &tensor(&reference.final_weights[name]));
        assert!(diff < 1e-5, "{name}: max |diff| {diff}");
    }
}

/// Two well-separated Gaussian blobs per class in 16 dimensions.
fn blobs(per_class: usize, classes: usize) -> (Tensor, Vec<usize>) {
    let mut rng = graft::train::rng::SplitMix64::new(42);
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for class in 0..classes {
        for _ in 0..per_class {
            for d in 0..16 {
                let centre = if d % classes == class { 3.0 } else { 0.0 };
                data.push(centre + rng.next_f32() - 0.5);
            }
            labels.push(class);
        }
    }
    let n = labels.len();
    (Tensor::from_vec(data, (n, 16), &Device::Cpu).unwrap(), labels)
}

fn trainer(
    features: Tensor,
    labels: Vec<usize>,
    class_names: &[String],
    config: TrainConfig,
) -> graft::Result<Trainer> {
    Trainer::new(TrainData::new(features, labels, class_names.to_vec()), config)
}

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("Class {i}")).collect()
}

#[test]
fn learns_separable_classes_and_reports_per_class_metrics() {
    let (features, labels) = blobs(20, 3);
    let config = TrainConfig { epochs: 30, ..Default::default() };
    let mut trainer = trainer(features, labels, &names(3), config).unwrap();
    assert_eq!(trainer.split().val.len(), 9); // 15% of 20, per class
    let mut history = Vec::new();
    while !trainer.is_done() {
        history.push(block_on(trainer.run_epoch()).unwrap());
    }
    assert!(history.last().unwrap().train_loss < history[0].train_loss);
    let trained = block_on(trainer.finish()).unwrap();
    assert_eq!(trained.report.val_accuracy, 1.0);
    assert_eq!(trained.report.per_class_accuracy, vec![Some(1.0); 3]);
    let diagonal: u32 = (0..3).map(|i| trained.report.confusion.counts[i][i]).sum();
    assert_eq!(diagonal, 9);
    let bytes = trained.to_safetensors().unwrap();
    let loaded = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).unwrap();
    assert_eq!(loaded["hidden.weight"].dims(), &[100, 16]);
    assert_eq!(loaded["output.weight"].dims(), &[3, 100]);
}

#[test]
fn same_seed_same_run() {
    let run = |seed| {
        let (features, labels) = blobs(10, 2);
        let config = TrainConfig { epochs: 3, seed, ..Default::default() };
        let mut trainer = trainer(features, labels, &names(2), config).unwrap();
        (0..3).map(|_| block_on(trainer.run_epoch()).unwrap().train_loss).collect::<Vec<_>>()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn refuses_too_few_classes_and_empty_classes_by_name() {
    let (features, labels) = blobs(5, 2);
    let one = trainer(features.clone(), vec![0; 10], &names(1), TrainConfig::default());
    assert!(matches!(one, Err(GraftError::Training(_))));
    let mut three = names(2);
    three.push("Empty one".into());
    let err = trainer(features, labels, &three, TrainConfig::default()).err().unwrap();
    assert!(err.to_string().contains("\"Empty one\" has no samples"), "{err}");
}

#[test]
fn divergence_is_reported_not_hidden() {
    // Features near f32's limit overflow the hidden layer: the loss is no longer a number.
    let (features, labels) = blobs(10, 2);
    let features = (features * 1e38).unwrap();
    let config = TrainConfig { learning_rate: 1.0, ..Default::default() };
    let mut trainer = trainer(features, labels, &names(2), config).unwrap();
    let outcome = block_on(trainer.run_epoch());
    assert!(matches!(outcome, Err(GraftError::Diverged { epoch: 1, .. })), "{outcome:?}");
    // No epoch was kept before it: finishing says so, naming the same epoch.
    let finished = block_on(trainer.finish()).err();
    assert!(
        matches!(finished, Some(GraftError::Diverged { epoch: 1, advice: DivergedAdvice::NoWeightsKept })),
        "{finished:?}"
    );
}

/// Epoch 1 trains on a sane view, epoch 2 on one that overflows: the run stops with advice, and
/// finishing it keeps the weights of epoch 1 (scored on the plain inputs).
#[test]
fn an_exploding_run_stops_and_keeps_its_best_epoch() {
    let (features, labels) = blobs(10, 2);
    let views = vec![features.clone(), (&features * 1e38).unwrap()];
    let data = TrainData { inputs: features, views, labels, class_names: names(2), target: None };
    let config = TrainConfig { learning_rate: 1e-2, ..Default::default() };
    let mut trainer = Trainer::new(data, config).unwrap();
    let first = block_on(trainer.run_epoch()).unwrap();
    let err = block_on(trainer.run_epoch()).unwrap_err();
    assert!(matches!(&err, GraftError::Diverged { epoch: 2, .. }), "{err}");
    assert!(err.to_string().contains("try a smaller learning rate"), "{err}");
    assert!(block_on(trainer.run_epoch()).is_err(), "a diverged run does not go on");
    let kept = block_on(trainer.finish()).unwrap();
    assert_eq!(kept.report.best_epoch, 1);
    assert_eq!(kept.report.val_accuracy, first.val_accuracy.unwrap());
}

#[test]
fn cosine_decay_lowers_the_rate_to_zero_over_the_run() {
    let (features, labels) = blobs(10, 2);
    let config = TrainConfig { epochs: 4, cosine_decay: true, ..Default::default() };
    let mut trainer = trainer(features, labels, &names(2), config).unwrap();
    let mut rates = Vec::new();
    for _ in 0..4 {
        block_on(trainer.run_epoch()).unwrap();
        rates.push(trainer.learning_rates()[0]);
    }
    let expected = [1.0, 0.853_553, 0.5, 0.146_447].map(|f| f * 1e-3);
    for (got, want) in rates.iter().zip(expected) {
        assert!((got - want).abs() < 1e-9, "{rates:?}");
    }
}

#[test]
fn bad_settings_are_refused_before_training() {
    let (features, labels) = blobs(5, 2);
    let config = TrainConfig { learning_rate: f64::INFINITY, ..Default::default() };
    let err = trainer(features, labels, &names(2), config).err().unwrap();
    assert!(matches!(err, GraftError::Settings(_)), "{err}");
}

/// Overlapping classes and a large learning rate: the validation loss bottoms out early and
/// rises after, so the kept weights are not the last ones.
#[test]
fn finish_restores_the_weights_of_the_best_epoch() {
    let mut rng = graft::train::rng::SplitMix64::new(7);
    let labels: Vec<usize> = (0..80).map(|i| i % 2).collect();
    let data: Vec<f32> = labels.iter().flat_map(|&l| (0..16).map(move |d| (l * d % 3) as f32 * 0.2)).collect();
    let noise: Vec<f32> = (0..data.len()).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
    let values: Vec<f32> = data.iter().zip(&noise).map(|(d, n)| d + n).collect();
    let features = Tensor::from_vec(values, (80, 16), &Device::Cpu).unwrap();
    let config = TrainConfig { epochs: 40, learning_rate: 0.05, hidden: 64, val_fraction: 0.3, ..Default::default() };
    let mut trainer = trainer(features, labels, &names(2), config).unwrap();
    let mut history = Vec::new();
    while !trainer.is_done() {
        history.push(block_on(trainer.run_epoch()).unwrap());
    }
    let (best_index, best) =
        history.iter().enumerate().min_by(|a, b| a.1.val_loss.unwrap().total_cmp(&b.1.val_loss.unwrap())).unwrap();
    assert!(best_index + 1 < history.len(), "the last epoch was the best: the test needs overfitting");
    let last_loss = history.last().unwrap().val_loss.unwrap();
    let trained = block_on(trainer.finish()).unwrap();
    assert_eq!(trained.report.best_epoch, best.epoch);
    // Scored again with the restored weights: the best epoch's loss, not the last one's.
    let best_loss = best.val_loss.unwrap();
    assert!((trained.report.val_loss - best_loss).abs() < 1e-5, "{} vs best {best_loss}", trained.report.val_loss);
    assert!((trained.report.val_loss - last_loss).abs() > 1e-4, "restored the last weights ({last_loss})");
}

#[test]
fn time_slices_add_up_to_the_same_run_as_whole_epochs() {
    let run = |sliced: bool| {
        let (features, labels) = blobs(30, 3);
        let config = TrainConfig { epochs: 3, batch_size: 4, ..Default::default() };
        let mut trainer = trainer(features, labels, &names(3), config).unwrap();
        let mut epochs = Vec::new();
        let mut slices = 0;
        while !trainer.is_done() {
            if sliced {
                // A clock that moves 10 ms per reading and a 15 ms budget: two batches a slice.
                let ticks = std::cell::Cell::new(0.0);
                let clock = || {
                    ticks.set(ticks.get() + 10.0);
                    ticks.get()
                };
                slices += 1;
                if let Some(metrics) = block_on(trainer.step_for(&clock, 15.0)).unwrap() {
                    epochs.push(metrics);
                }
            } else {
                epochs.push(block_on(trainer.run_epoch()).unwrap());
            }
        }
        (epochs, slices)
    };
    let (whole, _) = run(false);
    let (sliced, slices) = run(true);
    assert_eq!(whole, sliced);
    // 3 epochs of 77 training samples in batches of 4 = 20 batches each, two per slice.
    assert!(slices >= 30, "{slices} slices");
}
