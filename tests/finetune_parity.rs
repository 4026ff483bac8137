//! Fine-tuning's numbers against PyTorch (`tests/reference/make_fixtures.py`, Debian's
//! python3-torch): the gradients of one inverted-residual block (every parameter and the input),
//! and three AdamW steps of a linear head plus the last two blocks, each group at its own
//! learning rate, batch norm in inference mode (the losses of every step, the blocks'
//! gradients at the first) and in training mode (from a boundary of distinct samples: the
//! losses, the first gradients, the running statistics). Both sides fill MobileNetV2 with the same
//! deterministic values (`wave`), so the fixture holds no weights. EfficientNet-Lite0's
//! `_blocks.3` (5x5 depthwise, stride 2, TensorFlow's padding) is checked the same way
//! (`tests/reference/efficientnet_lite_reference.py`).

use std::collections::HashMap;

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use graft::backbone::{Architecture, Backbone};
use graft::model::{MlpHead, MlpHeadSpec};
use graft::preprocess::InputSpec;
use graft::train::BatchNormMode;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    names: Vec<String>,
    block: BlockReference,
    steps: StepsReference,
}

#[derive(Deserialize)]
struct BlockReference {
    index: usize,
    input_shape: Vec<usize>,
    loss: f64,
    input: Summary,
    grads: HashMap<String, Summary>,
}

#[derive(Deserialize)]
struct StepsReference {
    boundary: usize,
    image_shape: Vec<usize>,
    labels: Vec<u32>,
    lr_head: f64,
    lr_backbone: f64,
    weight_decay: f64,
    losses: Vec<f64>,
    /// The unfrozen blocks' gradients at the first step.
    first_grads: HashMap<String, Summary>,
    batch_norm_train: BatchNormTrainReference,
}

/// Three steps with training-mode batch norm from their own boundary (a `wave` tensor of
/// distinct samples: see `batch_norm_train_steps` in the script): losses, the first step's
/// gradients, and the running statistics after the first forward pass.
#[derive(Deserialize)]
struct BatchNormTrainReference {
    boundary_shape: Vec<usize>,
    labels: Vec<u32>,
    losses: Vec<f64>,
    first_grads: HashMap<String, Summary>,
    running: HashMap<String, Summary>,
}

#[derive(Deserialize)]
struct Summary {
    sum: f64,
    sq: f64,
    head: Vec<f64>,
}

fn reference() -> Reference {
    serde_json::from_str(include_str!("fixtures/finetune_reference.json")).unwrap()
}

/// EfficientNet-Lite0's block reference (beside its logits in the same fixture).
#[derive(Deserialize)]
struct LiteReference {
    names: Vec<String>,
    block: BlockReference,
}

/// `scale * sin(a j + b)` for j < n, in f64 then f32 (the script's `wave`).
fn wave(n: usize, a: f64, b: f64, scale: f64) -> Vec<f32> {
    (0..n).map(|j| (scale * (a * j as f64 + b).sin()) as f32).collect()
}

fn tensor(values: Vec<f32>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

/// MobileNetV2 with every tensor filled as the script fills it, by name order.
fn deterministic_backbone(names: &[String]) -> (Backbone, VarMap) {
    deterministic(Architecture::MobileNetV2, names)
}

/// `architecture` with every tensor filled as the scripts fill it, by name order.
fn deterministic(architecture: Architecture, names: &[String]) -> (Backbone, VarMap) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let backbone = Backbone::load(architecture, InputSpec::imagenet(), vb).unwrap();
    let data = varmap.data().lock().unwrap();
    let mut ours: Vec<&String> = data.keys().collect();
    ours.sort();
    assert_eq!(ours, names.iter().collect::<Vec<_>>(), "the checkpoint names differ from PyTorch's");
    for (t, name) in names.iter().enumerate() {
        let var = &data[name];
        let w = wave(var.elem_count(), 1.7, 0.3 * t as f64 + 0.1, 1.0);
        let values: Vec<f32> = if name.ends_with("running_var") {
            w.iter().map(|v| 1.0 + 0.25 * (v + 1.0)).collect()
        } else if name.ends_with("running_mean") || name.ends_with(".bias") {
            w.iter().map(|v| 0.1 * v).collect()
        } else if var.rank() == 1 {
            w.iter().map(|v| 1.0 + 0.1 * v).collect()
        } else {
            let fan_in = (var.elem_count() / var.dims()[0]) as f32;
            w.iter().map(|v| v / fan_in.sqrt()).collect()
        };
        var.set(&tensor(values, var.dims())).unwrap();
    }
    drop(data);
    (backbone, varmap)
}

fn close(got: f64, want: f64, relative: f64) -> bool {
    (got - want).abs() <= relative * want.abs().max(1e-3)
}

fn assert_summary(what: &str, grad: &Tensor, want: &Summary) {
    let values: Vec<f64> = grad.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1().unwrap();
    let sum: f64 = values.iter().sum();
    let sq: f64 = values.iter().map(|v| v * v).sum();
    assert!(close(sq, want.sq, 1e-4), "{what}: sum of squares {sq} vs PyTorch {}", want.sq);
    let scale = want.sq.sqrt().max(1e-6);
    assert!((sum - want.sum).abs() <= 1e-4 * scale * (values.len() as f64).sqrt(), "{what}: sum {sum} vs {}", want.sum);
    for (i, (got, want)) in values.iter().zip(&want.head).enumerate() {
        assert!((got - want).abs() <= 1e-4 * scale, "{what}[{i}]: {got} vs PyTorch {want}");
    }
}

/// Both paths of a block: Candle's NCHW modules (the reference twin) and the NHWC training
/// ops that fine-tuning runs (hand-written backward passes).
#[test]
fn an_inverted_residual_blocks_gradients_match_pytorch() {
    let reference = reference();
    let (backbone, varmap) = deterministic_backbone(&reference.names);
    block_gradients_match(&backbone, &varmap, &reference.block);
}

#[test]
fn an_efficientnet_lite0_block_with_a_5x5_stride_2_depthwise_conv_matches_pytorch() {
    let reference: LiteReference =
        serde_json::from_str(include_str!("fixtures/efficientnet_lite0_reference.json")).unwrap();
    let (backbone, varmap) = deterministic(Architecture::EfficientNetLite0, &reference.names);
    block_gradients_match(&backbone, &varmap, &reference.block);
}

/// The block's loss `sum(y * r)` and every gradient, through both paths, against `block`.
fn block_gradients_match(backbone: &Backbone, varmap: &VarMap, block: &BlockReference) {
    let n: usize = block.input_shape.iter().product();
    let input = tensor(wave(n, 0.05, 1.0, 1.0), &block.input_shape);
    for nhwc in [false, true] {
        let unit = &backbone.blocks()[block.index];
        let (x, y) = if nhwc {
            let x = Var::from_tensor(&input.permute((0, 2, 3, 1)).unwrap().contiguous().unwrap()).unwrap();
            let y = unit.forward_nhwc(x.as_tensor(), false).unwrap().permute((0, 3, 1, 2)).unwrap();
            (x, y)
        } else {
            let x = Var::from_tensor(&input).unwrap();
            let y = unit.forward(x.as_tensor()).unwrap();
            (x, y)
        };
        let out = y.elem_count();
        let r = tensor(wave(out, 0.11, 0.5, 1.0), &[out]);
        let loss = (y.flatten_all().unwrap() * &r).unwrap().sum_all().unwrap();
        let value = loss.to_scalar::<f32>().unwrap() as f64;
        assert!(close(value, block.loss, 1e-5), "nhwc {nhwc}: loss {value} vs PyTorch {}", block.loss);
        let grads = loss.backward().unwrap();
        let dx = grads.get(x.as_tensor()).unwrap();
        let dx = if nhwc { dx.permute((0, 3, 1, 2)).unwrap().contiguous().unwrap() } else { dx.clone() };
        assert_summary("input", &dx, &block.input);
        let data = varmap.data().lock().unwrap();
        assert_eq!(block.grads.len(), 9, "three convs with their batch norms' scale and shift");
        for (name, want) in &block.grads {
            let var = data.get(name).unwrap_or_else(|| panic!("{name} is not a variable"));
            let grad = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name} has no gradient"));
            assert_summary(&format!("{name} (nhwc {nhwc})"), grad, want);
        }
    }
}

/// What [`adamw_steps`] saw: each step's loss, the first step's block gradients, and the
/// running statistics after the first forward pass.
struct Steps {
    losses: Vec<f64>,
    first_grads: HashMap<String, Tensor>,
    first_stats: HashMap<String, Tensor>,
}

/// What the blocks from `steps.boundary` on see, in NCHW, and the labels.
struct Batch {
    boundary: Tensor,
    labels: Vec<u32>,
}

/// The fine-tuning steps' batch: the images through the frozen blocks.
fn image_batch(backbone: &Backbone, steps: &StepsReference) -> Batch {
    let images = tensor(wave(steps.image_shape.iter().product(), 0.05, 0.0, 1.0), &steps.image_shape);
    Batch { boundary: backbone.forward_blocks(&images, 0..steps.boundary).unwrap(), labels: steps.labels.clone() }
}

/// Three AdamW steps of a linear head after the last two blocks, batch norm `mode`, on
/// `batch` (made from the backbone).
fn adamw_steps(mode: BatchNormMode, batch: impl FnOnce(&Backbone, &StepsReference) -> Batch) -> Steps {
    let reference = reference();
    let (backbone, _) = deterministic_backbone(&reference.names);
    let steps = &reference.steps;
    let Batch { boundary, labels } = batch(&backbone, steps);
    let boundary = boundary.permute((0, 2, 3, 1)).unwrap().contiguous().unwrap();
    let mut suffix = backbone.trainable_suffix(steps.boundary).unwrap();
    suffix.set_batch_norm(mode);

    let head_vars = VarMap::new();
    let spec = MlpHeadSpec { in_dim: 1280, hidden: 0, classes: 3 };
    let head = MlpHead::load(spec, VarBuilder::from_varmap(&head_vars, DType::F32, &Device::Cpu)).unwrap();
    {
        let data = head_vars.data().lock().unwrap();
        data["output.weight"].set(&tensor(wave(3 * 1280, 1.3, 0.2, 1.0 / 1280f64.sqrt()), &[3, 1280])).unwrap();
        data["output.bias"].set(&tensor(wave(3, 0.7, 0.0, 0.1), &[3])).unwrap();
    }
    let group = |vars: Vec<Var>, lr: f64| {
        AdamW::new(vars, ParamsAdamW { lr, weight_decay: steps.weight_decay, ..Default::default() }).unwrap()
    };
    let mut head_optimizer = group(head_vars.all_vars(), steps.lr_head);
    let mut block_optimizer = group(suffix.vars().iter().map(|(_, v)| v.clone()).collect(), steps.lr_backbone);
    let labels = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
    let mut seen = Steps { losses: Vec::new(), first_grads: HashMap::new(), first_stats: HashMap::new() };
    for step in 0..steps.losses.len() {
        let logits = head.forward(&suffix.forward_features_training(&boundary).unwrap()).unwrap();
        let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
        seen.losses.push(loss.to_scalar::<f32>().unwrap() as f64);
        let grads = loss.backward().unwrap();
        if step == 0 {
            for (name, var) in suffix.vars() {
                let grad = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name} has no gradient"));
                seen.first_grads.insert(name.clone(), grad.clone());
            }
            let stats = suffix.tensors().filter(|(n, _)| n.contains("running"));
            seen.first_stats = stats.map(|(n, v)| (n.clone(), v.as_tensor().copy().unwrap())).collect();
        }
        head_optimizer.step(&grads).unwrap();
        block_optimizer.step(&grads).unwrap();
    }
    seen
}

#[test]
fn adamw_steps_of_a_head_and_the_last_two_blocks_match_pytorch() {
    let reference = reference();
    let steps = &reference.steps;
    let seen = adamw_steps(BatchNormMode::Frozen, image_batch);
    for (step, (got, want)) in seen.losses.iter().zip(&steps.losses).enumerate() {
        println!("step {step}: loss {got:.7} (PyTorch {want:.7})");
        assert!(close(*got, *want, 1e-4), "step {step}: loss {got} vs PyTorch {want}");
    }
    assert_gradients(&seen.first_grads, &steps.first_grads);
}

/// Training-mode batch norm: batch statistics in the forward pass, running statistics moved
/// with momentum 0.1 (unbiased variance), as PyTorch's `BatchNorm2d.train()`. From a boundary
/// of distinct samples (the images through 17 blocks of `wave` weights come out nearly alike,
/// and batch statistics would then normalise rounding noise), every step's loss, the first
/// step's gradients and the running statistics match to 1e-4, on either of gemm's code paths
/// (`GRAFT_GEMM_KERNEL=portable` in `cargo xtask test native`).
#[test]
fn training_mode_batch_norm_matches_pytorch() {
    let reference = reference();
    let want = &reference.steps.batch_norm_train;
    let seen = adamw_steps(BatchNormMode::Train, |_, _| Batch {
        boundary: tensor(wave(want.boundary_shape.iter().product(), 1.3, 0.0, 1.0), &want.boundary_shape),
        labels: want.labels.clone(),
    });
    for (step, (got, want)) in seen.losses.iter().zip(&want.losses).enumerate() {
        println!("step {step}: loss {got:.7} (PyTorch {want:.7})");
        assert!(close(*got, *want, 1e-4), "step {step}: loss {got} vs PyTorch {want}");
    }
    assert_gradients(&seen.first_grads, &want.first_grads);
    assert_eq!(seen.first_stats.len(), want.running.len(), "every running statistic is compared");
    for (name, summary) in &want.running {
        assert_summary(name, &seen.first_stats[name], summary);
    }
}

/// Every gradient against PyTorch's. One is zero in theory: block 17's last batch-norm shift,
/// which block 18's batch statistics subtract again (PyTorch's is 1e-17 in float64, rounding
/// in float32): such a gradient must be as small here, measured against the largest.
fn assert_gradients(got: &HashMap<String, Tensor>, want: &HashMap<String, Summary>) {
    assert_eq!(got.len(), want.len(), "every unfrozen parameter is compared");
    let largest = want.values().map(|s| s.sq.sqrt()).fold(0.0, f64::max);
    for (name, summary) in want {
        if summary.sq.sqrt() > 1e-6 * largest {
            assert_summary(name, &got[name], summary);
            continue;
        }
        let norm = got[name].sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap().sqrt() as f64;
        assert!(
            norm <= 1e-5 * largest,
            "{name}: a gradient that is zero in theory has norm {norm} (largest {largest})"
        );
    }
}
