//! A backbone with random weights for tests that need no checkpoint (natively and in wasm).

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use graft::backbone::{Architecture, Backbone};
use graft::preprocess::InputSpec;
use graft::train::rng::SplitMix64;

/// A MobileNetV2 with random weights and non-trivial BN statistics, so that folding matters.
/// The values come from a fixed seed (variables in name order), so that every run of a test
/// sees the same network: running variances `U(0.5, 1.5)`, running means and biases
/// `N(0, 0.1)`, every other tensor `N(0, 0.3)`.
pub fn random_backbone() -> Backbone {
    random_backbone_of(Architecture::MobileNetV2)
}

/// [`random_backbone`] of any architecture.
pub fn random_backbone_of(architecture: Architecture) -> Backbone {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = Backbone::load(architecture, InputSpec::imagenet(), vb).unwrap();
    let mut rng = SplitMix64::new(2024);
    let data = varmap.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let n = var.elem_count();
        let values: Vec<f32> = if name.ends_with("running_var") {
            (0..n).map(|_| 0.5 + rng.next_f32()).collect()
        } else if name.ends_with("running_mean") || name.ends_with(".bias") {
            (0..n).map(|_| 0.1 * normal(&mut rng)).collect()
        } else {
            (0..n).map(|_| 0.3 * normal(&mut rng)).collect()
        };
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap()).unwrap();
    }
    drop(data);
    model
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut SplitMix64) -> f32 {
    let u = rng.next_f32().max(f32::MIN_POSITIVE);
    let v = rng.next_f32();
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}
