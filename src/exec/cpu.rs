//! The CPU executor: runs a [`FoldedPlan`]'s blocks with the fused kernels of
//! [`crate::kernels`], activations in NHWC, buffers reused across layers, images and calls;
//! natively, the images of a batch spread over every core (scoped threads).
//!
//! Per image, `(H, W, C)` activations: stem `im2col 3x3/2 + product, ReLU6` -> inverted
//! residuals `[pointwise expand + ReLU6] -> depthwise 3x3 or 5x5 + ReLU6 -> pointwise project
//! (+ residual)` -> pointwise + ReLU6 -> (features) spatial mean. The Candle backbone is the
//! reference twin (tests below, natively, and tests/wasm.rs in Chromium); the PyTorch parity
//! tests (tests/backbone_parity.rs) run through this path.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use candle_core::{bail, Result, Tensor};

use super::plan::{FoldedPlan, Unit};
use super::profile::Profile;
use super::{spatial_mean, Executor, FeatureMap};
use crate::backbone::Block;
use crate::kernels::depthwise::{depthwise, DepthwiseShape};
use crate::kernels::im2col::im2col3x3;
use crate::kernels::pointwise::{pointwise, PointwiseShape};

/// An activation of one image: `data (height, width, channels)`.
pub(crate) struct Activation {
    pub data: Vec<f32>,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

/// Spare activation buffers of one caller (contents unspecified; every kernel overwrites).
pub(crate) type Spare = Vec<Vec<f32>>;

/// See the module header.
#[derive(Debug)]
pub struct CpuExecutor {
    plan: Arc<FoldedPlan>,
    /// Sets of spare buffers, one per concurrent caller, kept between calls so that no layer
    /// allocates.
    spare: Mutex<Vec<Spare>>,
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

impl CpuExecutor {
    pub fn new(plan: Arc<FoldedPlan>) -> Self {
        Self { plan, spare: Mutex::new(Vec::new()), threads: default_threads() }
    }

    pub fn plan(&self) -> &FoldedPlan {
        &self.plan
    }

    /// The plan, to hand to another executor (the GPU's) without copying the weights.
    pub fn shared_plan(&self) -> Arc<FoldedPlan> {
        Arc::clone(&self.plan)
    }

    /// Spreads the images of a batch over `threads` threads (at least one; wasm32 keeps one).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = if cfg!(target_arch = "wasm32") { 1 } else { threads.max(1) };
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// [`Executor::run`], answered at once.
    pub fn run_now(&self, x: &FeatureMap, blocks: Range<usize>) -> Result<FeatureMap> {
        self.check_range(&blocks)?;
        let (data, shape) = self.map_images(x.batch, |index, spare| {
            let out = self.run_image(image_activation(x, index, spare), blocks.clone(), spare, None);
            let values = out.data[..out.height * out.width * out.channels].to_vec();
            let dims = (out.height, out.width, out.channels);
            spare.push(out.data);
            (values, dims)
        })?;
        let (height, width, channels) = shape.unwrap_or((x.height, x.width, x.channels));
        Ok(FeatureMap { data, batch: x.batch, height, width, channels })
    }

    /// An executor of these blocks folded with their current weights (fine-tuned blocks, in
    /// inference mode), or `None` for blocks the plan has no kernel for.
    pub fn of_blocks(blocks: &[Block]) -> Option<Self> {
        FoldedPlan::from_blocks(blocks).ok().map(|plan| Self::new(Arc::new(plan)))
    }

    /// Pooled features `(B, D)` of NHWC activations `(B, h, w, C)` entering the plan's first
    /// block, through all of its blocks (a fine-tuned suffix's plan).
    pub fn pooled_nhwc(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, height, width, channels) = x.dims4()?;
        let data = x.flatten_all()?.to_vec1::<f32>()?;
        let map = FeatureMap { data, batch, height, width, channels };
        let out = self.run_now(&map, 0..self.plan.num_blocks())?;
        Tensor::from_vec(out.pooled(), (batch, out.channels), x.device())
    }

    /// [`Executor::features`], answered at once: `(B, 3, H, W)` NCHW -> `(B, feature_dim)`.
    pub fn features_now(&self, x: &Tensor) -> Result<Tensor> {
        let input = NchwBatch::new(x)?;
        let all = 0..self.plan.num_blocks();
        let (features, _) = self.map_images(input.batch, |index, spare| {
            let out = self.run_image(input.activation(index, spare), all.clone(), spare, None);
            let pooled = spatial_mean(&out.data[..out.height * out.width * out.channels], out.channels);
            spare.push(out.data);
            (pooled, ())
        })?;
        let dim = features.len() / input.batch.max(1);
        Tensor::from_vec(features, (input.batch, dim), x.device())
    }

    /// Milliseconds spent per kind of unit over a forward pass of `x` (one thread), read from
    /// `clock` (milliseconds; `performance.now()` in the browser, `Instant` natively).
    pub fn profile(&self, x: &Tensor, clock: &dyn Fn() -> f64) -> Result<Vec<(&'static str, f64)>> {
        let input = NchwBatch::new(x)?;
        let mut profile = Profile::new(clock, self.plan.num_blocks());
        let mut spare = self.take_spare();
        for index in 0..input.batch {
            let activation = input.activation(index, &mut spare);
            let out = self.run_image(activation, 0..self.plan.num_blocks(), &mut spare, Some(&mut profile));
            spare.push(out.data);
        }
        self.put_spare(spare);
        Ok(profile.totals())
    }

    fn check_range(&self, blocks: &Range<usize>) -> Result<()> {
        if blocks.start > blocks.end || blocks.end > self.plan.num_blocks() {
            bail!("CPU executor: blocks {blocks:?} are not within 0..{}", self.plan.num_blocks());
        }
        Ok(())
    }

    fn take_spare(&self) -> Spare {
        self.spare.lock().ok().and_then(|mut sets| sets.pop()).unwrap_or_default()
    }

    fn put_spare(&self, spare: Spare) {
        if let Ok(mut sets) = self.spare.lock() {
            sets.push(spare);
        }
    }

    /// `per_image(index, spare)` for every image of a batch, outputs concatenated in input
    /// order, with the last image's `D`; the batch is cut into one contiguous share per thread,
    /// each with its own spare buffers.
    fn map_images<D: Send>(
        &self,
        batch: usize,
        per_image: impl Fn(usize, &mut Spare) -> (Vec<f32>, D) + Sync,
    ) -> Result<(Vec<f32>, Option<D>)> {
        let share_of = |range: Range<usize>| {
            let mut spare = self.take_spare();
            let mut values = Vec::new();
            let mut dims = None;
            for index in range {
                let (v, d) = per_image(index, &mut spare);
                values.extend(v);
                dims = Some(d);
            }
            self.put_spare(spare);
            (values, dims)
        };
        if self.threads <= 1 || batch <= 1 {
            return Ok(share_of(0..batch));
        }
        let share = batch.div_ceil(self.threads);
        let parts: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..batch)
                .step_by(share)
                .map(|start| scope.spawn(move || share_of(start..(start + share).min(batch))))
                .collect();
            handles.into_iter().map(|h| h.join()).collect()
        });
        let mut values = Vec::new();
        let mut last = None;
        for part in parts {
            let Ok((v, dims)) = part else { bail!("CPU executor: a worker thread panicked") };
            values.extend(v);
            last = dims.or(last);
        }
        Ok((values, last))
    }

    /// Runs `blocks` on one image.
    fn run_image(
        &self,
        mut act: Activation,
        blocks: Range<usize>,
        spare: &mut Spare,
        mut profile: Option<&mut Profile>,
    ) -> Activation {
        for block_index in blocks {
            let block = &self.plan.blocks()[block_index];
            let mut current: Option<Activation> = None;
            for (index, unit) in block.units.iter().enumerate() {
                let residual = (block.residual && index + 1 == block.units.len()).then_some(&act);
                let start = profile.as_ref().map(|p| p.now());
                let out = run_unit(unit, current.as_ref().unwrap_or(&act), residual, spare);
                if let (Some(p), Some(start)) = (profile.as_deref_mut(), start) {
                    p.record(unit, block_index, start);
                }
                if let Some(old) = current.replace(out) {
                    spare.push(old.data);
                }
            }
            if let Some(out) = current {
                spare.push(std::mem::replace(&mut act, out).data);
            }
        }
        act
    }
}

impl Executor for CpuExecutor {
    fn describe(&self) -> String {
        if crate::kernels::built_with_relaxed_simd() {
            "CPU · WebAssembly relaxed SIMD".into()
        } else if cfg!(target_arch = "wasm32") {
            "CPU · WebAssembly SIMD128".into()
        } else {
            format!("CPU · {} thread(s)", self.threads)
        }
    }

    fn num_blocks(&self) -> usize {
        self.plan.num_blocks()
    }

    async fn run(&self, x: &FeatureMap, blocks: Range<usize>) -> crate::Result<FeatureMap> {
        Ok(self.run_now(x, blocks)?)
    }

    async fn features(&self, x: &Tensor) -> crate::Result<Tensor> {
        Ok(self.features_now(x)?)
    }
}

/// A buffer of `len` values from the spares (contents unspecified; every kernel overwrites).
fn buffer(spare: &mut Spare, len: usize) -> Vec<f32> {
    let mut data = spare.pop().unwrap_or_default();
    data.resize(len, 0.0);
    data
}

/// Image `index` of `x`, copied into a spare buffer.
fn image_activation(x: &FeatureMap, index: usize, spare: &mut Spare) -> Activation {
    let mut data = buffer(spare, x.height * x.width * x.channels);
    data.copy_from_slice(x.image(index));
    Activation { data, height: x.height, width: x.width, channels: x.channels }
}

/// A preprocessed batch `(B, 3, H, W)` as read from its tensor: each image goes to NHWC only
/// when its turn comes, into a spare buffer.
struct NchwBatch {
    pixels: Vec<f32>,
    batch: usize,
    height: usize,
    width: usize,
}

impl NchwBatch {
    fn new(x: &Tensor) -> Result<Self> {
        let (batch, channels, height, width) = x.dims4()?;
        if channels != 3 {
            bail!("CPU executor: expected 3 input channels, got {channels}");
        }
        Ok(Self { pixels: x.flatten_all()?.to_vec1::<f32>()?, batch, height, width })
    }

    fn activation(&self, index: usize, spare: &mut Spare) -> Activation {
        let plane = self.height * self.width;
        let image = &self.pixels[index * 3 * plane..(index + 1) * 3 * plane];
        let mut data = buffer(spare, 3 * plane);
        for p in 0..plane {
            for c in 0..3 {
                data[p * 3 + c] = image[c * plane + p];
            }
        }
        Activation { data, height: self.height, width: self.width, channels: 3 }
    }
}

fn run_unit(unit: &Unit, x: &Activation, residual: Option<&Activation>, spare: &mut Spare) -> Activation {
    let pixels = x.height * x.width;
    match unit {
        Unit::Pointwise { in_channels, weight, bias, relu } => {
            let shape = PointwiseShape { pixels, in_channels: *in_channels, out_channels: bias.len() };
            let mut data = buffer(spare, pixels * bias.len());
            pointwise(shape, &x.data, weight, bias, residual.map(|r| r.data.as_slice()), *relu, &mut data);
            Activation { data, height: x.height, width: x.width, channels: bias.len() }
        }
        Unit::Depthwise { window, taps, bias } => {
            let shape = DepthwiseShape { height: x.height, width: x.width, channels: x.channels, window: *window };
            let (height, width) = (shape.out_height(), shape.out_width());
            let mut data = buffer(spare, height * width * x.channels);
            depthwise(shape, &x.data, taps, bias, &mut data);
            Activation { data, height, width, channels: x.channels }
        }
        Unit::Conv3x3 { window, in_channels, weight, bias, relu } => {
            let shape = DepthwiseShape { height: x.height, width: x.width, channels: *in_channels, window: *window };
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
