//! Head training: AdamW steps against PyTorch (`tests/reference/make_fixtures.py`), and the
//! training loop's behaviour (learning, keeping the best weights, refusing bad set-ups,
//! reporting divergence).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use graft::model::{MlpHead, MlpHeadSpec};
use graft::train::{HeadTrainer, TrainConfig};
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

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("Class {i}")).collect()
}

#[test]
fn learns_separable_classes_and_reports_per_class_metrics() {
    let (features, labels) = blobs(20, 3);
    let config = TrainConfig { epochs: 30, ..Default::default() };
    let mut trainer = HeadTrainer::new(features, labels, &names(3), config).unwrap();
    assert_eq!(trainer.split().val.len(), 9); // 15% of 20, per class
    let mut history = Vec::new();
    while !trainer.is_done() {
        history.push(trainer.run_epoch().unwrap());
    }
    assert!(history.last().unwrap().train_loss < history[0].train_loss);
    let trained = trainer.finish().unwrap();
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
        let mut trainer = HeadTrainer::new(features, labels, &names(2), config).unwrap();
        (0..3).map(|_| trainer.run_epoch().unwrap().train_loss).collect::<Vec<_>>()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn refuses_too_few_classes_and_empty_classes_by_name() {
    let (features, labels) = blobs(5, 2);
    let one = HeadTrainer::new(features.clone(), vec![0; 10], &names(1), TrainConfig::default());
    assert!(matches!(one, Err(GraftError::Training(_))));
    let mut three = names(2);
    three.push("Empty one".into());
    let err = HeadTrainer::new(features, labels, &three, TrainConfig::default()).err().unwrap();
    assert!(err.to_string().contains("\"Empty one\" has no samples"), "{err}");
}

#[test]
fn divergence_is_reported_not_hidden() {
    let (features, labels) = blobs(10, 2);
    let config = TrainConfig { learning_rate: f64::INFINITY, ..Default::default() };
    let mut trainer = HeadTrainer::new(features, labels, &names(2), config).unwrap();
    let outcome = (0..3).map(|_| trainer.run_epoch()).find(|r| r.is_err());
    assert!(matches!(outcome, Some(Err(GraftError::Diverged { .. }))));
}
