//! One DANN step against PyTorch (`tests/reference/dann_reference.py`): the label and domain
//! losses, the domain classifier's hits, and the gradient of every parameter of the head and
//! the domain classifier, the features' through the gradient reversal. Both sides fill the
//! weights with the same deterministic values, so the fixture holds none.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use graft::model::{MlpHead, MlpHeadSpec};
use graft::train::dann::{dann_losses, grl_lambda, DomainClassifier};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    shapes: Shapes,
    progress: f64,
    lambda: f64,
    label_loss: f64,
    domain_loss: f64,
    domain_correct: usize,
    grads: HashMap<String, Summary>,
}

#[derive(Deserialize)]
struct Shapes {
    d: usize,
    h: usize,
    c: usize,
    source: usize,
    target: usize,
}

#[derive(Deserialize)]
struct Summary {
    sum: f64,
    sq: f64,
    head: Vec<f64>,
}

/// `scale * sin(a j + b)` for j < n (the script's `wave`).
fn wave(n: usize, a: f64, b: f64, scale: f64) -> Vec<f32> {
    (0..n).map(|j| (scale * (a * j as f64 + b).sin()) as f32).collect()
}

fn tensor(values: Vec<f32>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

/// The parameters in the script's order, filled as it fills them.
const ORDER: [&str; 8] = [
    "hidden.weight",
    "hidden.bias",
    "output.weight",
    "output.bias",
    "domain.hidden.weight",
    "domain.hidden.bias",
    "domain.output.weight",
    "domain.output.bias",
];

#[test]
fn one_dann_step_matches_pytorch() {
    let reference: Reference = serde_json::from_str(include_str!("fixtures/dann_reference.json")).unwrap();
    let Shapes { d, h, c, source, target } = reference.shapes;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let head = MlpHead::load(MlpHeadSpec { in_dim: d, hidden: h, classes: c }, vb.clone()).unwrap();
    let domain = DomainClassifier::load(h, vb.pp("domain")).unwrap();
    let vars = varmap.data().lock().unwrap().clone();
    for (t, name) in ORDER.iter().enumerate() {
        let var = &vars[*name];
        let dims = var.dims();
        let scale = if dims.len() == 2 { 1.0 / (dims[1] as f64).sqrt() } else { 0.1 };
        var.set(&tensor(wave(var.elem_count(), 1.3, 0.2 + 0.5 * t as f64, scale), dims)).unwrap();
    }
    let xs = tensor(wave(source * d, 0.37, 0.0, 1.0), &[source, d]);
    let xt = (tensor(wave(target * d, 0.53, 1.0, 1.0), &[target, d]) + 0.5).unwrap();
    let labels: Vec<u32> = (0..source as u32).map(|i| i % c as u32).collect();
    let labels = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
    let lambda = grl_lambda(reference.progress, 1.0);
    assert!((lambda - reference.lambda).abs() < 1e-9);

    let (hs, ht) = (head.features(&xs).unwrap(), head.features(&xt).unwrap());
    let logits = head.classify(&hs, None).unwrap();
    let losses = dann_losses(&logits, &labels, (&hs, &ht), &domain, lambda).unwrap();
    let value = |t: &Tensor| t.to_scalar::<f32>().unwrap() as f64;
    assert!((value(&losses.label) - reference.label_loss).abs() < 1e-5, "label loss {}", value(&losses.label));
    assert!((value(&losses.domain) - reference.domain_loss).abs() < 1e-5, "domain loss {}", value(&losses.domain));
    assert_eq!(losses.domain_correct, reference.domain_correct);

    let grads = losses.total.backward().unwrap();
    assert_eq!(reference.grads.len(), ORDER.len());
    for name in ORDER {
        let grad = grads.get(vars[name].as_tensor()).unwrap_or_else(|| panic!("{name} has no gradient"));
        let values: Vec<f64> = grad.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1().unwrap();
        let want = &reference.grads[name];
        let scale = want.sq.sqrt().max(1e-6);
        let sq: f64 = values.iter().map(|v| v * v).sum();
        assert!((sq - want.sq).abs() <= 1e-4 * want.sq.max(1e-8), "{name}: sum of squares {sq} vs PyTorch {}", want.sq);
        let sum: f64 = values.iter().sum();
        assert!(
            (sum - want.sum).abs() <= 1e-4 * scale * (values.len() as f64).sqrt(),
            "{name}: sum {sum} vs {}",
            want.sum
        );
        for (i, (got, want)) in values.iter().zip(&want.head).enumerate() {
            assert!((got - want).abs() <= 1e-4 * scale, "{name}[{i}]: {got} vs PyTorch {want}");
        }
    }
}

/// Two blobs per class in 6 dimensions; the target domain is the same blobs shifted.
fn shifted_blobs(shift: f32) -> (Tensor, Vec<usize>) {
    let mut rng = graft::train::rng::SplitMix64::new(5);
    let (mut rows, mut labels) = (Vec::new(), Vec::new());
    for i in 0..40 {
        let label = i % 2;
        rows.extend((0..6).map(|d| rng.next_f32() - 0.5 + if d == label { 2.0 } else { 0.0 } + shift));
        labels.push(label);
    }
    (tensor(rows, &[40, 6]), labels)
}

#[test]
fn an_adapting_run_reports_the_domain_accuracy_and_keeps_its_final_weights() {
    use graft::train::{Adapt, Keep, TrainConfig, TrainData, Trainer};
    let (inputs, labels) = shifted_blobs(0.0);
    let (target, _) = shifted_blobs(1.5);
    let names = vec!["a".to_string(), "b".to_string()];
    let adapt = Adapt { enabled: true, weight: 1.0 };
    let config = TrainConfig { epochs: 4, hidden: 8, adapt, ..TrainConfig::default() };
    let data =
        TrainData { target: Some(target.clone()), ..TrainData::new(inputs.clone(), labels.clone(), names.clone()) };
    let mut trainer = Trainer::new(data, config.clone()).unwrap();
    for _ in 0..4 {
        let epoch = graft::embed::block_on(trainer.run_epoch()).unwrap();
        let domain = epoch.domain_accuracy.expect("an adapting epoch reports the domain accuracy");
        assert!((0.0..=1.0).contains(&domain));
    }
    let report = graft::embed::block_on(trainer.finish()).unwrap().report;
    assert!(report.kept_final && report.best_epoch == 4, "{report:?}");
    // Asked to, it keeps the best validation loss's weights instead; without `adapt` the
    // target is ignored.
    let keep_best = TrainConfig { keep: Keep::BestValidation, ..config.clone() };
    let data =
        TrainData { target: Some(target.clone()), ..TrainData::new(inputs.clone(), labels.clone(), names.clone()) };
    let report = graft::embed::block_on(Trainer::new(data, keep_best).unwrap().finish()).unwrap().report;
    assert!(!report.kept_final);
    let plain = TrainConfig { adapt: Adapt::default(), ..config };
    let data = TrainData { target: Some(target), ..TrainData::new(inputs, labels, names) };
    let mut trainer = Trainer::new(data, plain).unwrap();
    assert_eq!(graft::embed::block_on(trainer.run_epoch()).unwrap().domain_accuracy, None);
}
