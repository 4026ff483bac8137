//! A backbone with random weights for tests that need no checkpoint (natively and in wasm).

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use graft::backbone::{Architecture, Backbone};
use graft::preprocess::InputSpec;

/// A MobileNetV2 with random weights and non-trivial BN statistics, so that folding matters.
pub fn random_backbone() -> Backbone {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = Backbone::load(Architecture::MobileNetV2, InputSpec::imagenet(), vb).unwrap();
    for (name, var) in varmap.data().lock().unwrap().iter() {
        let shape = var.shape().clone();
        let value = if name.ends_with("running_var") {
            Tensor::rand(0.5f32, 1.5, shape, &Device::Cpu)
        } else if name.ends_with("running_mean") || name.ends_with(".bias") {
            Tensor::randn(0f32, 0.1, shape, &Device::Cpu)
        } else {
            Tensor::randn(0f32, 0.3, shape, &Device::Cpu)
        };
        var.set(&value.unwrap()).unwrap();
    }
    model
}
