//! The unfrozen blocks of fine-tuning on the GPU, weights resident there: the same network
//! as [`crate::backbone::TrainableSuffix`] with frozen batch norm, its backward pass, and
//! the parameters AdamW moves ([`super::train::GpuHead`] drives it with the head).
//!
//! For `R` images entering the first unfrozen block, NHWC `(R, h, w, C)`, and each
//! conv + BN unit `u` with weight `W_u (C_out, K)` (`K = C_in` for a 1x1 conv, 9 taps for a
//! depthwise 3x3), BN scale and shift `gamma, beta` and running statistics `mean, var`:
//! fold      `g = gamma / sqrt(var + eps)`, `Wf = W * g`, `bf = beta - mean * g` (every pass);
//! forward   pointwise `y = relu6?(x Wf^T + bf)` over `R h w` rows, depthwise
//!           `y = relu6(dwconv3x3(x, Wf) + bf)`; a residual block adds its input to its
//!           output; features = the mean of the last output over pixels, `(R, D)`;
//! backward  from `dF (R, D)`: `dy = dF / P` at every pixel, then per unit from the last,
//!           `dy *= [0 < y < 6]` after a ReLU6, `dbf = sum dy`, pointwise `dWf = dy^T x`,
//!           `dx = dy Wf`, depthwise through its two gradient kernels; a residual block adds
//!           its output gradient to its input gradient; unfolding gives `dW = dWf * g`,
//!           `dgamma = (sum_k dWf W - dbf mean) / sqrt(var + eps)`, `dbeta = dbf`.
//! The first block's input gradient is never computed (nothing before it learns).
//! Training-mode batch norm, and units other than 1x1 and depthwise 3x3 convs, have no
//! kernels here: [`GpuSuffix::unsupported`] says so and the run stays on the CPU.

use super::kernels::backward::{self, FoldShape};
use super::kernels::matmul::{Epilogue, MatmulShape};
use super::kernels::{depthwise, elementwise, matmul, mean};
use super::param::Param;
use super::program::KernelCall;
use super::GpuContext;
use crate::backbone::conv_bn::{ConvBn, ConvBnSpec};
use crate::backbone::TrainableSuffix;
use crate::error::{GraftError, Result};
use crate::kernels::depthwise::DepthwiseShape;
use crate::train::BatchNormMode;

/// `(height, width, channels)` of one image's activation.
pub type Dims = (usize, usize, usize);

/// A tensor's values under its checkpoint name.
type Named = (String, Vec<f32>);

/// One conv + BN unit: its parameters, statistics and folded weights on the GPU.
struct GpuUnit {
    spec: ConvBnSpec,
    input: Dims,
    output: Dims,
    eps: f32,
    weight: Param,
    gamma: Param,
    beta: Param,
    /// `[running_mean (C), running_var (C)]`.
    stats: wgpu::Buffer,
    folded: wgpu::Buffer,
    bias: wgpu::Buffer,
}

struct GpuBlock {
    units: Vec<GpuUnit>,
    residual: bool,
}

/// See the module header.
pub struct GpuSuffix {
    blocks: Vec<GpuBlock>,
    input: Dims,
    /// The batch-norm statistics by checkpoint name (frozen: they never change here).
    stats: Vec<Named>,
}

/// The activations (and, for a training step, gradients) of one pass over `rows` images.
pub struct SuffixScratch {
    /// The boundary activations of the batch, written before each pass.
    pub input: wgpu::Buffer,
    pub features: wgpu::Buffer,
    pub d_features: wgpu::Buffer,
    outputs: Vec<Vec<wgpu::Buffer>>,
    grads: Vec<Vec<wgpu::Buffer>>,
    d_folded: wgpu::Buffer,
}

fn values(tensor: &candle_core::Tensor) -> Result<Vec<f32>> {
    Ok(tensor.flatten_all()?.to_vec1::<f32>()?)
}

fn len((h, w, c): Dims) -> usize {
    h * w * c
}

impl GpuUnit {
    fn new(context: &GpuContext, unit: &ConvBn, input: Dims) -> Result<(Self, [Named; 2])> {
        let spec = *unit.spec();
        let step = |size: usize| (size - 1) / spec.stride + 1;
        let output = (step(input.0), step(input.1), spec.out_channels);
        let t = unit.tensors()?;
        let param = |(name, tensor): &(String, candle_core::Tensor)| -> Result<Param> {
            Ok(Param::new(context, name, &values(tensor)?))
        };
        let (mean, var) = (values(&t.running_mean.1)?, values(&t.running_var.1)?);
        let weight = param(&t.weight)?;
        let gpu = Self {
            spec,
            input,
            output,
            eps: t.eps as f32,
            folded: context.storage("folded weight", (weight.len * 4) as u64),
            bias: context.storage("folded bias", (spec.out_channels * 4) as u64),
            weight,
            gamma: param(&t.gamma)?,
            beta: param(&t.beta)?,
            stats: context.upload("bn statistics", &[mean.clone(), var.clone()].concat()),
        };
        Ok((gpu, [(t.running_mean.0, mean), (t.running_var.0, var)]))
    }

    fn fold_shape(&self) -> FoldShape {
        let channels = self.spec.out_channels;
        FoldShape { channels, per_channel: self.weight.len / channels, eps: self.eps, taps: !self.spec.is_pointwise() }
    }

    fn depthwise_shape(&self) -> DepthwiseShape {
        let (height, width, channels) = self.input;
        DepthwiseShape { height, width, channels, window: self.spec.window() }
    }

    fn forward<'a>(&'a self, rows: usize, x: &'a wgpu::Buffer, y: &'a wgpu::Buffer, max: u32) -> KernelCall<'a> {
        if self.spec.is_pointwise() {
            let pixels = rows * self.input.0 * self.input.1;
            let shape =
                MatmulShape { m: pixels, n: self.spec.out_channels, k: self.input.2, trans_a: false, trans_b: true };
            let epilogue = Epilogue { bias: true, relu: false, relu6: self.spec.relu6 };
            return matmul::call(shape, epilogue, [x, &self.folded, &self.bias, y]);
        }
        depthwise::call(self.depthwise_shape(), rows, [x, &self.folded, &self.bias, y], max)
    }

    /// The parameter gradients from `dy` (already through the ReLU6), and `dx` when asked.
    fn backward<'a>(
        &'a self,
        rows: usize,
        [x, dy, d_folded]: [&'a wgpu::Buffer; 3],
        dx: Option<&'a wgpu::Buffer>,
        calls: &mut Vec<KernelCall<'a>>,
        max: u32,
    ) {
        let (co, ci) = (self.spec.out_channels, self.input.2);
        let pixels = rows * self.output.0 * self.output.1;
        if self.spec.is_pointwise() {
            let shape = MatmulShape { m: co, n: ci, k: pixels, trans_a: true, trans_b: false };
            calls.push(matmul::call(shape, Epilogue::default(), [dy, x, dy, d_folded]));
        } else {
            calls.push(backward::depthwise_grad_taps(self.depthwise_shape(), rows, [dy, x, d_folded]));
        }
        calls.push(elementwise::column_sum(pixels, co, [dy, &self.beta.grad]));
        calls.push(backward::bn_unfold(
            self.fold_shape(),
            [
                &self.weight.value,
                &self.gamma.value,
                &self.stats,
                d_folded,
                &self.beta.grad,
                &self.weight.grad,
                &self.gamma.grad,
            ],
        ));
        let Some(dx) = dx else { return };
        if self.spec.is_pointwise() {
            let shape = MatmulShape { m: pixels, n: ci, k: co, trans_a: false, trans_b: false };
            calls.push(matmul::call(shape, Epilogue::default(), [dy, &self.folded, dy, dx]));
        } else {
            calls.push(backward::depthwise_grad_input(self.depthwise_shape(), rows, [dy, &self.folded, dx], max));
        }
    }
}

impl GpuSuffix {
    /// Why these blocks cannot train on the GPU, if they cannot.
    pub fn unsupported(suffix: &TrainableSuffix) -> Option<String> {
        if suffix.batch_norm() == BatchNormMode::Train {
            return Some("training-mode batch norm has no WebGPU kernels yet".into());
        }
        for block in suffix.blocks() {
            for unit in block.units() {
                let spec = unit.spec();
                let depthwise = spec.is_depthwise() && spec.relu6 && spec.in_channels.is_multiple_of(4);
                if !(spec.is_pointwise() || depthwise) {
                    return Some(format!(
                        "block {} ({}x{} convolution, stride {}) has no WebGPU backward kernel",
                        block.name(),
                        spec.kernel,
                        spec.kernel,
                        spec.stride
                    ));
                }
            }
            let last = block.units().last().map(|u| *u.spec());
            if block.residual() && last.is_some_and(|s| s.relu6) {
                return Some(format!("block {} adds its input after a ReLU6", block.name()));
            }
        }
        None
    }

    /// Uploads the blocks of `suffix`, which take `(h, w, C)` activations.
    pub fn new(context: &GpuContext, suffix: &TrainableSuffix, input: Dims) -> Result<Self> {
        if let Some(why) = Self::unsupported(suffix) {
            return Err(GraftError::GpuUnavailable(why));
        }
        let (mut blocks, mut stats, mut dims) = (Vec::new(), Vec::new(), input);
        for block in suffix.blocks() {
            let mut units = Vec::new();
            for unit in block.units() {
                let (gpu, unit_stats) = GpuUnit::new(context, unit, dims)?;
                dims = gpu.output;
                stats.extend(unit_stats);
                units.push(gpu);
            }
            blocks.push(GpuBlock { units, residual: block.residual() });
        }
        if blocks.iter().any(|b| b.units.is_empty()) || !dims.2.is_multiple_of(4) {
            return Err(GraftError::GpuUnavailable(format!("the unfrozen blocks end in {dims:?} activations")));
        }
        Ok(Self { blocks, input, stats })
    }

    /// Floats of one image's input.
    pub fn input_len(&self) -> usize {
        len(self.input)
    }

    fn units(&self) -> impl Iterator<Item = &GpuUnit> {
        self.blocks.iter().flat_map(|b| &b.units)
    }

    fn last_output(&self) -> Dims {
        self.units().last().map_or(self.input, |u| u.output)
    }

    /// Width of the pooled features.
    pub fn feature_dim(&self) -> usize {
        self.last_output().2
    }

    /// The trainable tensors, in a fixed order (the AdamW calls follow it).
    pub fn params(&self) -> impl Iterator<Item = &Param> {
        self.units().flat_map(|u| [&u.weight, &u.gamma, &u.beta])
    }

    /// The batch-norm statistics, by checkpoint name.
    pub fn stats(&self) -> &[Named] {
        &self.stats
    }

    /// Buffers for a pass over `rows` images; gradients too when `train`.
    pub fn scratch(&self, context: &GpuContext, rows: usize, train: bool) -> SuffixScratch {
        let buffer = |floats: usize| context.storage("suffix scratch", (floats * 4) as u64);
        let per_unit = |make: &dyn Fn(usize) -> wgpu::Buffer| -> Vec<Vec<wgpu::Buffer>> {
            self.blocks.iter().map(|b| b.units.iter().map(|u| make(rows * len(u.output))).collect()).collect()
        };
        let outputs = per_unit(&buffer);
        let grads = if train { per_unit(&buffer) } else { Vec::new() };
        let largest_weight = self.units().map(|u| u.weight.len).max().unwrap_or(1);
        let dim = self.feature_dim();
        SuffixScratch {
            input: buffer(rows * self.input_len()),
            features: buffer(rows * dim),
            d_features: buffer(if train { rows * dim } else { 1 }),
            outputs,
            grads,
            d_folded: buffer(if train { largest_weight } else { 1 }),
        }
    }

    /// Folds the batch norms, runs the blocks on `s.input` and pools into `s.features`.
    pub fn forward<'a>(&'a self, s: &'a SuffixScratch, rows: usize, calls: &mut Vec<KernelCall<'a>>, max: u32) {
        for u in self.units() {
            let buffers = [&u.weight.value, &u.gamma.value, &u.beta.value, &u.stats, &u.folded, &u.bias];
            calls.push(backward::bn_fold(u.fold_shape(), buffers, max));
        }
        let mut x = &s.input;
        for (block, outputs) in self.blocks.iter().zip(&s.outputs) {
            let block_input = x;
            for (unit, y) in block.units.iter().zip(outputs) {
                calls.push(unit.forward(rows, x, y, max));
                x = y;
            }
            if block.residual {
                calls.push(backward::add(rows * len(self.block_output(block)), [block_input, x], max));
            }
        }
        let (h, w, c) = self.last_output();
        calls.push(mean::call(rows, h * w, c, [x, &s.features], max));
    }

    fn block_output(&self, block: &GpuBlock) -> Dims {
        block.units.last().map_or(self.input, |u| u.output)
    }

    /// The gradients of every parameter from `s.d_features`, after [`Self::forward`].
    pub fn backward<'a>(&'a self, s: &'a SuffixScratch, rows: usize, calls: &mut Vec<KernelCall<'a>>, max: u32) {
        let (h, w, c) = self.last_output();
        let last_grad = s.grads.iter().rev().find_map(|g| g.last()).unwrap_or(&s.d_features);
        calls.push(backward::spread(rows, h * w, c, [&s.d_features, last_grad], max));
        for (b, block) in self.blocks.iter().enumerate().rev() {
            // The block's input and where its gradient goes (none for the first block).
            let previous = b.checked_sub(1);
            let block_input = previous.and_then(|p| s.outputs[p].last()).unwrap_or(&s.input);
            let d_block_input = previous.and_then(|p| s.grads[p].last());
            for (u, unit) in block.units.iter().enumerate().rev() {
                let (y, dy) = (&s.outputs[b][u], &s.grads[b][u]);
                if unit.spec.relu6 {
                    calls.push(backward::relu6_grad(rows * len(unit.output), [y, dy], max));
                }
                let (x, dx) =
                    if u > 0 { (&s.outputs[b][u - 1], Some(&s.grads[b][u - 1])) } else { (block_input, d_block_input) };
                unit.backward(rows, [x, dy, &s.d_folded], dx, calls, max);
            }
            if let (true, Some(d_input), Some(d_output)) = (block.residual, d_block_input, s.grads[b].last()) {
                calls.push(backward::add(rows * len(self.block_output(block)), [d_output, d_input], max));
            }
        }
    }
}
