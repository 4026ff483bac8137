//! The GPU executor: a [`FoldedPlan`] run by the WGSL kernels, activations NHWC in GPU buffers.
//!
//! Weights are uploaded once. For each batch size, block range and input shape a *program* is
//! compiled once: its activation buffers (three, each as large as the largest activation, reused
//! round-robin so a block's input stays alive for its residual), one bind group per dispatch,
//! the parameters of every dispatch in one uniform buffer, and a staging buffer. A forward pass
//! writes the input, encodes every dispatch into one compute pass, submits once and reads back
//! only the output (`(B, C)` features after the mean, or the activation at a freeze boundary).
//! A batch whose activations would exceed the adapter's `maxStorageBufferBindingSize` (or its
//! workgroup-count limit) is cut into chunks that fit.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use candle_core::Tensor;

use super::kernels::{conv3x3, depthwise, mean, pointwise};
use super::program::{KernelCall, Kernels, Recorded};
use super::GpuContext;
use crate::error::{GraftError, Result};
use crate::exec::plan::{FoldedPlan, Unit};
use crate::exec::{Executor, FeatureMap};
use crate::kernels::depthwise::DepthwiseShape;
use crate::kernels::pointwise::PointwiseShape;

/// `(height, width, channels)` of one image's activation.
type Dims = (usize, usize, usize);

/// A unit's folded weights on the GPU.
struct UnitBuffers {
    weight: wgpu::Buffer,
    bias: wgpu::Buffer,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ProgramKey {
    batch: usize,
    blocks: (usize, usize),
    input: Dims,
    pooled: bool,
}

/// One compiled forward pass (see the module header).
struct Program {
    input: wgpu::Buffer,
    output: wgpu::Buffer,
    staging: wgpu::Buffer,
    recorded: Recorded,
    output_len: usize,
    output_dims: Dims,
    _arena: Vec<wgpu::Buffer>,
    /// Held from writing the input to reading the output: two callers of one program would
    /// share its buffers.
    in_use: futures::lock::Mutex<()>,
}

/// See the module header.
pub struct GpuExecutor {
    kernels: Kernels,
    plan: Arc<FoldedPlan>,
    weights: Vec<Vec<UnitBuffers>>,
    unused: wgpu::Buffer,
    programs: futures::lock::Mutex<HashMap<ProgramKey, Arc<Program>>>,
    /// A smaller binding limit than the adapter's (tests of the chunking).
    binding_limit: Option<u64>,
}

impl std::fmt::Debug for GpuExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuExecutor").field("adapter", self.kernels.context().adapter()).finish_non_exhaustive()
    }
}

impl GpuExecutor {
    /// Uploads the plan's weights. Refuses a plan with a unit no kernel takes (the caller
    /// stays on the CPU).
    pub async fn new(context: GpuContext, plan: Arc<FoldedPlan>) -> Result<Self> {
        if let Some(problem) = unsupported_unit(&plan) {
            return Err(GraftError::Gpu(problem));
        }
        let weights = context
            .checked("uploading the weights", || {
                plan.blocks()
                    .iter()
                    .map(|block| block.units.iter().map(|unit| upload_unit(&context, unit)).collect())
                    .collect()
            })
            .await?;
        let unused = context.storage("graft unused", 16);
        Ok(Self {
            kernels: Kernels::new(context),
            plan,
            weights,
            unused,
            programs: Default::default(),
            binding_limit: None,
        })
    }

    pub fn context(&self) -> &GpuContext {
        self.kernels.context()
    }

    /// Cuts batches as if the adapter's `maxStorageBufferBindingSize` were `bytes`.
    pub fn limit_binding_size(&mut self, bytes: u64) {
        self.binding_limit = Some(bytes);
    }

    /// How many forward programs were compiled (each batch size, range and input shape once).
    pub fn programs_compiled(&self) -> usize {
        self.programs.try_lock().map_or(0, |programs| programs.len())
    }

    /// Blocks `blocks` on `input` (NHWC, `batch` images of `dims`); the spatial mean after them
    /// when `pooled`. Returns the values and one image's output dims.
    pub async fn forward(
        &self,
        input: &[f32],
        batch: usize,
        dims: Dims,
        blocks: Range<usize>,
        pooled: bool,
    ) -> Result<(Vec<f32>, Dims)> {
        if blocks.start > blocks.end || blocks.end > self.plan.num_blocks() {
            return Err(GraftError::Gpu(format!("blocks {blocks:?} are not within 0..{}", self.plan.num_blocks())));
        }
        let per_image = dims.0 * dims.1 * dims.2;
        let chunk = self.images_per_chunk(dims, blocks.clone())?;
        let mut values = Vec::new();
        let mut output_dims = dims;
        for start in (0..batch).step_by(chunk.max(1)) {
            let images = chunk.min(batch - start);
            let key = ProgramKey { batch: images, blocks: (blocks.start, blocks.end), input: dims, pooled };
            let program = self.program(key).await?;
            let _in_use = program.in_use.lock().await;
            let slice = &input[start * per_image..(start + images) * per_image];
            self.context().queue().write_buffer(&program.input, 0, bytemuck::cast_slice(slice));
            let mut out =
                self.kernels.run(&program.recorded, &[(&program.output, &program.staging, program.output_len)]).await?;
            values.append(&mut out[0]);
            output_dims = program.output_dims;
        }
        Ok((values, output_dims))
    }

    /// How many images fit in one program: every activation within the adapter's binding size,
    /// and every dispatch within its workgroup count.
    fn images_per_chunk(&self, dims: Dims, blocks: Range<usize>) -> Result<usize> {
        let limits = self.context().limits();
        let (largest, largest_pixels) = largest_activation(&self.plan, dims, blocks);
        let binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
            .min(self.binding_limit.unwrap_or(u64::MAX));
        let by_memory = binding / (largest as u64 * 4).max(1);
        let by_rows = (limits.max_compute_workgroups_per_dimension as u64 * 32) / largest_pixels.max(1) as u64;
        let images = by_memory.min(by_rows.max(1));
        if images == 0 {
            return Err(GraftError::Gpu(format!(
                "one image's activation ({} MB) exceeds this GPU's buffer limit ({} MB)",
                largest * 4 / 1_000_000,
                binding / 1_000_000
            )));
        }
        Ok(images as usize)
    }

    // Natively wgpu's handles are Send + Sync and the Arc is shared; on wasm32 (one thread)
    // they are not, and the Arc only counts references.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    async fn program(&self, key: ProgramKey) -> Result<Arc<Program>> {
        let mut programs = self.programs.lock().await;
        if let Some(program) = programs.get(&key) {
            return Ok(Arc::clone(program));
        }
        let program = Arc::new(self.compile(&key).await?);
        programs.insert(key, Arc::clone(&program));
        Ok(program)
    }

    async fn compile(&self, key: &ProgramKey) -> Result<Program> {
        let context = self.context();
        let (largest, _) = largest_activation(&self.plan, key.input, key.blocks.0..key.blocks.1);
        let (input, arena, features) = context
            .checked("allocating activations", || {
                let bytes = (key.batch * largest * 4) as u64;
                let input =
                    context.storage("graft input", (key.batch * key.input.0 * key.input.1 * key.input.2 * 4) as u64);
                let arena: Vec<_> = (0..3).map(|_| context.storage("graft activation", bytes)).collect();
                let features = context.storage("graft features", (key.batch * self.last_channels(key) * 4) as u64);
                (input, arena, features)
            })
            .await?;
        let mut calls = Vec::new();
        let (last, dims) = self.record_blocks(key, &input, &arena, &mut calls);
        let (output, output_len, output_dims) = if key.pooled {
            let max = context.limits().max_compute_workgroups_per_dimension;
            calls.push(mean::call(key.batch, dims.0 * dims.1, dims.2, [last, &features], max));
            (features.clone(), key.batch * dims.2, (1, 1, dims.2))
        } else {
            (last.clone(), key.batch * dims.0 * dims.1 * dims.2, dims)
        };
        let recorded = self.kernels.record("compiling the backbone's kernels", &calls).await?;
        let staging = context.staging((output_len * 4) as u64);
        Ok(Program {
            input,
            output,
            staging,
            recorded,
            output_len,
            output_dims,
            _arena: arena,
            in_use: Default::default(),
        })
    }

    fn last_channels(&self, key: &ProgramKey) -> usize {
        unit_dims(&self.plan, key.input, key.blocks.0..key.blocks.1).last().map_or(key.input.2, |(_, d)| d.2)
    }

    /// The calls of `key.blocks`, buffers assigned round-robin from `arena`; returns the buffer
    /// holding the result and its dims.
    fn record_blocks<'a>(
        &'a self,
        key: &ProgramKey,
        input: &'a wgpu::Buffer,
        arena: &'a [wgpu::Buffer],
        calls: &mut Vec<KernelCall<'a>>,
    ) -> (&'a wgpu::Buffer, Dims) {
        let max = self.context().limits().max_compute_workgroups_per_dimension;
        let mut block_input = input;
        let mut dims = key.input;
        for block_index in key.blocks.0..key.blocks.1 {
            let block = &self.plan.blocks()[block_index];
            let mut current = block_input;
            for (index, unit) in block.units.iter().enumerate() {
                let residual = (block.residual && index + 1 == block.units.len()).then_some(block_input);
                let Some(output) = arena.iter().find(|b| *b != block_input && *b != current) else {
                    unreachable!("three activation buffers always leave one free")
                };
                let weights = &self.weights[block_index][index];
                let (call, out_dims) = unit_call(
                    unit,
                    key.batch,
                    dims,
                    [current, &weights.weight, &weights.bias, output],
                    residual,
                    &self.unused,
                    max,
                );
                calls.push(call);
                current = output;
                dims = out_dims;
            }
            block_input = current;
        }
        (block_input, dims)
    }
}

/// The call of one unit on `batch` images of `dims`, and its output dims.
fn unit_call<'a>(
    unit: &Unit,
    batch: usize,
    dims: Dims,
    [input, weight, bias, output]: [&'a wgpu::Buffer; 4],
    residual: Option<&'a wgpu::Buffer>,
    unused: &'a wgpu::Buffer,
    max_workgroups: u32,
) -> (KernelCall<'a>, Dims) {
    let (height, width, channels) = dims;
    match unit {
        Unit::Pointwise { in_channels, bias: b, relu, .. } => {
            let shape =
                PointwiseShape { pixels: batch * height * width, in_channels: *in_channels, out_channels: b.len() };
            let buffers = pointwise::PointwiseBuffers { input, weight, bias, residual, unused, output };
            (pointwise::call(shape, *relu, buffers), (height, width, b.len()))
        }
        Unit::Depthwise { window, .. } => {
            let shape = DepthwiseShape { height, width, channels, window: *window };
            let call = depthwise::call(shape, batch, [input, weight, bias, output], max_workgroups);
            (call, (shape.out_height(), shape.out_width(), channels))
        }
        Unit::Conv3x3 { window, in_channels, bias: b, relu, .. } => {
            let shape = DepthwiseShape { height, width, channels: *in_channels, window: *window };
            let call = conv3x3::call(shape, batch, b.len(), *relu, [input, weight, bias, output]);
            (call, (shape.out_height(), shape.out_width(), b.len()))
        }
    }
}

/// Each unit of `blocks` with its output dims, starting from `input`.
fn unit_dims(plan: &FoldedPlan, input: Dims, blocks: Range<usize>) -> impl Iterator<Item = (&Unit, Dims)> {
    plan.blocks()[blocks].iter().flat_map(|block| &block.units).scan(input, |dims, unit| {
        let (h, w, _) = *dims;
        *dims = match unit {
            Unit::Pointwise { bias, .. } => (h, w, bias.len()),
            Unit::Depthwise { window, bias, .. } | Unit::Conv3x3 { window, bias, .. } => {
                (window.out(h), window.out(w), bias.len())
            }
        };
        Some((unit, *dims))
    })
}

/// Values and pixels of one image's largest activation over `blocks` (their input included).
fn largest_activation(plan: &FoldedPlan, input: Dims, blocks: Range<usize>) -> (usize, usize) {
    let all = std::iter::once(input).chain(unit_dims(plan, input, blocks).map(|(_, d)| d));
    all.fold((1, 1), |(values, pixels), (h, w, c)| (values.max(h * w * c), pixels.max(h * w)))
}

/// Why a unit of the plan has no GPU kernel (the kernels read channels four at a time).
fn unsupported_unit(plan: &FoldedPlan) -> Option<String> {
    plan.blocks().iter().flat_map(|b| &b.units).find_map(|unit| {
        let ok = match unit {
            Unit::Pointwise { in_channels, bias, .. } => {
                pointwise::supports(PointwiseShape { pixels: 1, in_channels: *in_channels, out_channels: bias.len() })
            }
            Unit::Depthwise { window, bias, .. } => {
                depthwise::supports(DepthwiseShape { height: 1, width: 1, channels: bias.len(), window: *window })
            }
            Unit::Conv3x3 { window, in_channels, bias, .. } => conv3x3::supports(
                DepthwiseShape { height: 1, width: 1, channels: *in_channels, window: *window },
                bias.len(),
            ),
        };
        (!ok).then(|| format!("the GPU kernels have no variant for {} output channels", unit.out_channels()))
    })
}

fn upload_unit(context: &GpuContext, unit: &Unit) -> UnitBuffers {
    let (weight, bias) = match unit {
        Unit::Pointwise { weight, bias, .. } | Unit::Conv3x3 { weight, bias, .. } => (weight, bias),
        Unit::Depthwise { taps, bias, .. } => (taps, bias),
    };
    UnitBuffers { weight: context.upload("graft weight", weight), bias: context.upload("graft bias", bias) }
}

impl Executor for GpuExecutor {
    fn describe(&self) -> String {
        format!("WebGPU · {}", self.context().adapter().name)
    }

    fn num_blocks(&self) -> usize {
        self.plan.num_blocks()
    }

    async fn run(&self, x: &FeatureMap, blocks: Range<usize>) -> Result<FeatureMap> {
        let dims = (x.height, x.width, x.channels);
        let (data, (height, width, channels)) = self.forward(&x.data, x.batch, dims, blocks, false).await?;
        Ok(FeatureMap { data, batch: x.batch, height, width, channels })
    }

    async fn features(&self, x: &Tensor) -> Result<Tensor> {
        let map = FeatureMap::from_nchw(x)?;
        let dims = (map.height, map.width, map.channels);
        let (data, (_, _, channels)) =
            self.forward(&map.data, map.batch, dims, 0..self.plan.num_blocks(), true).await?;
        Ok(Tensor::from_vec(data, (map.batch, channels), x.device())?)
    }
}
