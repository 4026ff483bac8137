//! MobileNetV2 for frozen inference: batch norm folded into the convolutions, activations in
//! NHWC, each unit one fused kernel from [`crate::kernels`], buffers reused across layers,
//! images and calls; natively, the images of a batch spread over every core.
//!
//! Same maths and shapes as [`MobileNetV2::forward_features`]:
//! `(B, 3, H, W) -> (B, 1280)`; inside, per image, `(H, W, C)` activations:
//! stem `im2col 3x3/2 + product (27 -> 32), ReLU6` -> 17 x [pointwise expand + ReLU6] ->
//! depthwise 3x3 + ReLU6 -> pointwise project (+ residual) -> pointwise 320 -> 1280 + ReLU6
//! -> spatial mean. Built from the Candle model, which stays the differentiable path and is
//! the reference twin (the test below, natively, and tests/wasm.rs in Chromium); the PyTorch
//! parity test (tests/mobilenet_parity.rs) runs through this path.

use std::sync::Mutex;

use candle_core::{bail, Result, Tensor};

use super::conv_bn::ConvBn;
use super::mobilenet_v2::{Block, MobileNetV2};
use crate::kernels::depthwise::{depthwise3x3, DepthwiseShape};
use crate::kernels::im2col::im2col3x3;
use crate::kernels::pointwise::{pointwise, PointwiseShape};

/// One fused unit with its folded weights, laid out for its kernel.
#[derive(Debug, Clone)]
enum Unit {
    /// Full 3x3 conv: `weight ((ky, kx, c_in), c_out)`.
    Conv3x3 { stride: usize, in_channels: usize, weight: Vec<f32>, bias: Vec<f32>, relu: bool },
    /// 1x1 conv: `weight (c_in, c_out)`.
    Pointwise { in_channels: usize, weight: Vec<f32>, bias: Vec<f32>, relu: bool },
    /// Depthwise 3x3 conv + ReLU6: `taps ((ky, kx), c)`.
    Depthwise { stride: usize, taps: Vec<f32>, bias: Vec<f32> },
}

/// An activation of one image: `data (height, width, channels)`.
struct Activation {
    data: Vec<f32>,
    height: usize,
    width: usize,
    channels: usize,
}

#[derive(Debug, Clone)]
struct FoldedBlock {
    units: Vec<Unit>,
    residual: bool,
}

/// See the module header.
#[derive(Debug)]
pub struct FoldedMobileNetV2 {
    blocks: Vec<FoldedBlock>,
    /// Sets of spare activation buffers, one per concurrent caller, kept between calls so
    /// that no layer allocates.
    spare: Mutex<Vec<Vec<Vec<f32>>>>,
    /// Threads the images of a batch are spread over.
    threads: usize,
}

/// Every core natively; one on wasm32, where the module has no threads.
fn default_threads() -> usize {
    if cfg!(target_arch = "wasm32") {
        1
    } else {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    }
}

impl FoldedMobileNetV2 {
    /// Folds every block of the Candle backbone (its current weights).
    pub fn new(backbone: &MobileNetV2) -> Result<Self> {
        let blocks = backbone.blocks().iter().map(fold_block).collect::<Result<_>>()?;
        Ok(Self { blocks, spare: Mutex::new(Vec::new()), threads: default_threads() })
    }

    /// Spreads the images of a batch over `threads` threads (at least one; wasm32 keeps one).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = if cfg!(target_arch = "wasm32") { 1 } else { threads.max(1) };
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Pooled features `(B, 1280)` of an input batch `(B, 3, H, W)`.
    pub fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let batch = x.dim(0)?;
        let features = if self.threads > 1 && batch > 1 { self.run_shares(x)? } else { self.run_batch(x, None)? };
        let dim = features.len() / batch.max(1);
        Tensor::from_vec(features, (batch, dim), x.device())
    }

    /// The batch cut into one contiguous share of images per thread; features in input order.
    fn run_shares(&self, x: &Tensor) -> Result<Vec<f32>> {
        let batch = x.dim(0)?;
        let share = batch.div_ceil(self.threads);
        let parts: Vec<Result<Vec<f32>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..batch)
                .step_by(share)
                .map(|start| scope.spawn(move || self.run_batch(&x.narrow(0, start, share.min(batch - start))?, None)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(candle_core::Error::Msg("a feature thread panicked".into()))))
                .collect()
        });
        Ok(parts.into_iter().collect::<Result<Vec<_>>>()?.concat())
    }

    /// Milliseconds spent per kind of unit over a forward pass of `x`, read from `clock`
    /// (milliseconds; `performance.now()` in the browser, `Instant` natively): the benchmark's
    /// profile of where the time goes.
    pub fn profile(&self, x: &Tensor, clock: &dyn Fn() -> f64) -> Result<Vec<(&'static str, f64)>> {
        let mut profile = Profile { clock, totals: Vec::new() };
        self.run_batch(x, Some(&mut profile))?;
        Ok(profile.totals)
    }

    /// The features of each image of `x`, one after the other, with the spare buffers taken
    /// for the call and put back after it.
    fn run_batch(&self, x: &Tensor, mut profile: Option<&mut Profile>) -> Result<Vec<f32>> {
        let (_, channels, height, width) = x.dims4()?;
        if channels != 3 {
            bail!("folded MobileNetV2: expected 3 input channels, got {channels}");
        }
        let pixels = x.flatten_all()?.to_vec1::<f32>()?;
        let mut spare = self.spare.lock().ok().and_then(|mut sets| sets.pop()).unwrap_or_default();
        let mut features = Vec::new();
        for image in pixels.chunks_exact(3 * height * width) {
            let input = Activation { data: chw_to_hwc(image, height, width, &mut spare), height, width, channels };
            features.extend(self.run_image(input, &mut spare, profile.as_deref_mut()));
        }
        if let Ok(mut sets) = self.spare.lock() {
            sets.push(spare);
        }
        Ok(features)
    }

    /// Runs every block on one image and pools: the feature vector.
    fn run_image(&self, mut act: Activation, spare: &mut Vec<Vec<f32>>, mut profile: Option<&mut Profile>) -> Vec<f32> {
        for (block_index, block) in self.blocks.iter().enumerate() {
            let mut current: Option<Activation> = None;
            for (index, unit) in block.units.iter().enumerate() {
                let residual = (block.residual && index + 1 == block.units.len()).then_some(&act);
                let start = profile.as_ref().map(|p| (p.clock)());
                let out = run_unit(unit, current.as_ref().unwrap_or(&act), residual, spare);
                if let (Some(p), Some(start)) = (profile.as_deref_mut(), start) {
                    p.add(unit_kind(unit, block_index, self.blocks.len()), (p.clock)() - start);
                }
                if let Some(old) = current.replace(out) {
                    spare.push(old.data);
                }
            }
            if let Some(out) = current {
                spare.push(std::mem::replace(&mut act, out).data);
            }
        }
        let features = spatial_mean(&act);
        spare.push(act.data);
        features
    }
}

/// Accumulated time per kind of unit.
struct Profile<'a> {
    clock: &'a dyn Fn() -> f64,
    totals: Vec<(&'static str, f64)>,
}

impl Profile<'_> {
    fn add(&mut self, kind: &'static str, ms: f64) {
        match self.totals.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, total)) => *total += ms,
            None => self.totals.push((kind, ms)),
        }
    }
}

fn unit_kind(unit: &Unit, block_index: usize, blocks: usize) -> &'static str {
    match unit {
        Unit::Conv3x3 { .. } => "stem conv 3x3",
        Unit::Depthwise { .. } => "depthwise 3x3",
        Unit::Pointwise { .. } if block_index + 1 == blocks => "last conv 1x1",
        Unit::Pointwise { relu: true, .. } => "expand 1x1",
        Unit::Pointwise { .. } => "project 1x1",
    }
}

/// A buffer of `len` values from the spares (contents unspecified; every kernel overwrites).
fn buffer(spare: &mut Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    let mut data = spare.pop().unwrap_or_default();
    data.resize(len, 0.0);
    data
}

fn chw_to_hwc(image: &[f32], height: usize, width: usize, spare: &mut Vec<Vec<f32>>) -> Vec<f32> {
    let plane = height * width;
    let mut out = buffer(spare, 3 * plane);
    for p in 0..plane {
        for c in 0..3 {
            out[p * 3 + c] = image[c * plane + p];
        }
    }
    out
}

fn spatial_mean(act: &Activation) -> Vec<f32> {
    let mut sum = vec![0f32; act.channels];
    for pixel in act.data.chunks_exact(act.channels) {
        sum.iter_mut().zip(pixel).for_each(|(s, v)| *s += v);
    }
    let n = (act.height * act.width) as f32;
    sum.iter_mut().for_each(|s| *s /= n);
    sum
}

fn run_unit(unit: &Unit, x: &Activation, residual: Option<&Activation>, spare: &mut Vec<Vec<f32>>) -> Activation {
    let pixels = x.height * x.width;
    match unit {
        Unit::Pointwise { in_channels, weight, bias, relu } => {
            let shape = PointwiseShape { pixels, in_channels: *in_channels, out_channels: bias.len() };
            let mut data = buffer(spare, pixels * bias.len());
            pointwise(shape, &x.data, weight, bias, residual.map(|r| r.data.as_slice()), *relu, &mut data);
            Activation { data, height: x.height, width: x.width, channels: bias.len() }
        }
        Unit::Depthwise { stride, taps, bias } => {
            let shape = DepthwiseShape { height: x.height, width: x.width, channels: x.channels, stride: *stride };
            let (height, width) = (shape.out_height(), shape.out_width());
            let mut data = buffer(spare, height * width * x.channels);
            depthwise3x3(shape, &x.data, taps, bias, &mut data);
            Activation { data, height, width, channels: x.channels }
        }
        Unit::Conv3x3 { stride, in_channels, weight, bias, relu } => {
            let shape = DepthwiseShape { height: x.height, width: x.width, channels: *in_channels, stride: *stride };
            let (height, width) = (shape.out_height(), shape.out_width());
            let mut cols = buffer(spare, height * width * 9 * in_channels);
            im2col3x3(shape, &x.data, &mut cols);
            let product =
                PointwiseShape { pixels: height * width, in_channels: 9 * in_channels, out_channels: bias.len() };
            let mut data = buffer(spare, height * width * bias.len());
            pointwise(product, &cols, weight, bias, None, *relu, &mut data);
            spare.push(cols);
            Activation { data, height, width, channels: bias.len() }
        }
    }
}

fn fold_block(block: &Block) -> Result<FoldedBlock> {
    let units = block.units().iter().map(fold_unit).collect::<Result<_>>()?;
    Ok(FoldedBlock { units, residual: block.residual() })
}

fn fold_unit(unit: &ConvBn) -> Result<Unit> {
    let spec = *unit.spec();
    let (weight, bias) = unit.folded()?;
    let bias = bias.to_vec1::<f32>()?;
    if spec.is_depthwise3x3() {
        if !spec.relu6 {
            bail!("folded MobileNetV2: depthwise convs are fused with ReLU6");
        }
        // (C, 1, 3, 3) -> (9, C)
        let taps = weight.reshape((spec.out_channels, 9))?.t()?.flatten_all()?.to_vec1()?;
        return Ok(Unit::Depthwise { stride: spec.stride, taps, bias });
    }
    if spec.groups != 1 {
        bail!("folded MobileNetV2: grouped conv {spec:?} has no kernel");
    }
    match spec.kernel {
        1 => {
            // (C_out, C_in, 1, 1) -> (C_in, C_out)
            let weight = weight.flatten_from(1)?.t()?.flatten_all()?.to_vec1()?;
            Ok(Unit::Pointwise { in_channels: spec.in_channels, weight, bias, relu: spec.relu6 })
        }
        3 => {
            // (C_out, C_in, ky, kx) -> ((ky, kx, C_in), C_out)
            let weight = weight.permute((2, 3, 1, 0))?.flatten_all()?.to_vec1()?;
            Ok(Unit::Conv3x3 { stride: spec.stride, in_channels: spec.in_channels, weight, bias, relu: spec.relu6 })
        }
        k => bail!("folded MobileNetV2: no kernel for {k}x{k} convs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap};

    /// A MobileNetV2 with random weights and non-trivial BN statistics.
    fn random_backbone() -> MobileNetV2 {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = MobileNetV2::load(vb).unwrap();
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

    #[test]
    fn matches_the_candle_model_over_input_sizes() {
        let backbone = random_backbone();
        let mut folded = FoldedMobileNetV2::new(&backbone).unwrap();
        folded.set_threads(1);
        for (batch, height, width) in [(2, 64, 64), (1, 45, 71), (1, 224, 224)] {
            let x = Tensor::randn(0f32, 1.0, (batch, 3, height, width), &Device::Cpu).unwrap();
            let ours = folded.forward_features(&x).unwrap();
            let twin = backbone.forward_features(&x).unwrap();
            assert_eq!(ours.dims(), twin.dims());
            let scale = twin.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1.0);
            let diff = (ours - twin).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-4 * scale, "{batch}x{height}x{width}: {diff} (scale {scale})");
        }
    }

    #[test]
    fn threads_share_a_batch_without_changing_its_features() {
        let mut folded = FoldedMobileNetV2::new(&random_backbone()).unwrap();
        let x = Tensor::randn(0f32, 1.0, (7, 3, 40, 48), &Device::Cpu).unwrap();
        folded.set_threads(1);
        let alone: Vec<f32> = folded.forward_features(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        for threads in [2, 3, 8] {
            folded.set_threads(threads);
            let shared = folded.forward_features(&x).unwrap();
            assert_eq!(shared.dims(), &[7, 1280]);
            assert_eq!(shared.flatten_all().unwrap().to_vec1::<f32>().unwrap(), alone, "{threads} threads");
        }
    }
}
