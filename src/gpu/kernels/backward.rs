//! Drivers of the unfrozen blocks' training kernels: the frozen batch norm folded into its
//! conv and back (`bn_fold.wgsl`, `bn_unfold.wgsl`), the depthwise 3x3's input and tap
//! gradients (`depthwise_grad_input.wgsl`, `depthwise_grad_taps.wgsl`), the gradient through
//! a ReLU6 (`relu6_grad.wgsl`) and through the global mean (`spread.wgsl`), and the residual
//! sum (`add.wgsl`). The pointwise convs' gradients are [`super::matmul`] products with
//! transposed operands and [`super::elementwise::column_sum`].
//! Twins: [`crate::kernels::backward`] and the Candle training path of
//! [`crate::backbone::TrainableSuffix`].

use super::depthwise::{window_constants, DepthwiseParams};
use super::flag;
use crate::gpu::program::{kernel_params, linear_workgroups, Access, Kernel, KernelCall, Params, ParamsLayout};
use crate::kernels::depthwise::DepthwiseShape;

use Access::{Read, ReadWrite};

pub static ADD: Kernel = Kernel {
    name: "add",
    source: include_str!("add.wgsl"),
    params: ParamsLayout::of::<LinearParams>(),
    bindings: &[Read, ReadWrite],
};

pub static RELU6_GRAD: Kernel = Kernel {
    name: "relu6_grad",
    source: include_str!("relu6_grad.wgsl"),
    params: ParamsLayout::of::<LinearParams>(),
    bindings: &[Read, ReadWrite],
};

pub static SPREAD: Kernel = Kernel {
    name: "spread",
    source: include_str!("spread.wgsl"),
    params: ParamsLayout::of::<SpreadParams>(),
    bindings: &[Read, ReadWrite],
};

pub static BN_FOLD: Kernel = Kernel {
    name: "bn_fold",
    source: include_str!("bn_fold.wgsl"),
    params: ParamsLayout::of::<FoldParams>(),
    bindings: &[Read, Read, Read, Read, ReadWrite, ReadWrite],
};

pub static BN_UNFOLD: Kernel = Kernel {
    name: "bn_unfold",
    source: include_str!("bn_unfold.wgsl"),
    params: ParamsLayout::of::<FoldParams>(),
    bindings: &[Read, Read, Read, Read, Read, ReadWrite, ReadWrite],
};

pub static DEPTHWISE_GRAD_INPUT: Kernel = Kernel {
    name: "depthwise_grad_input",
    source: include_str!("depthwise_grad_input.wgsl"),
    params: ParamsLayout::of::<DepthwiseParams>(),
    bindings: &[Read, Read, ReadWrite],
};

pub static DEPTHWISE_GRAD_TAPS: Kernel = Kernel {
    name: "depthwise_grad_taps",
    source: include_str!("depthwise_grad_taps.wgsl"),
    params: ParamsLayout::of::<DepthwiseParams>(),
    bindings: &[Read, Read, ReadWrite],
};

kernel_params! {
    /// `len` values, one a thread (`add`, `relu6_grad`, `mask`).
    pub struct LinearParams { len: u32, pad0: u32, pad1: u32, pad2: u32 }
}

impl LinearParams {
    pub fn new(len: usize) -> Self {
        Self { len: len as u32, ..Self::default() }
    }
}

kernel_params! {
    pub struct SpreadParams { batch: u32, pixels: u32, channels: u32, pad: u32 }
}

kernel_params! {
    /// A conv's weight `(channels, per_channel)` and its batch norm's epsilon.
    pub struct FoldParams { channels: u32, per_channel: u32, eps: f32, pad: u32 }
}

fn linear<'a>(kernel: &'static Kernel, len: usize, buffers: [&'a wgpu::Buffer; 2], max: u32) -> KernelCall<'a> {
    KernelCall {
        kernel,
        constants: Vec::new(),
        params: Params::of(LinearParams::new(len)),
        buffers: buffers.to_vec(),
        workgroups: linear_workgroups(len as u64, 64, max),
    }
}

/// `x += y` over `len` values; `[y, x]`.
pub fn add<'a>(len: usize, buffers: [&'a wgpu::Buffer; 2], max_workgroups: u32) -> KernelCall<'a> {
    linear(&ADD, len, buffers, max_workgroups)
}

/// `grad = 0` where the ReLU6 output `y` is clamped; `[y, grad]`.
pub fn relu6_grad<'a>(len: usize, buffers: [&'a wgpu::Buffer; 2], max_workgroups: u32) -> KernelCall<'a> {
    linear(&RELU6_GRAD, len, buffers, max_workgroups)
}

/// `dx (batch, pixels, channels) = dmean (batch, channels) / pixels`; `[dmean, dx]`.
pub fn spread<'a>(
    batch: usize,
    pixels: usize,
    channels: usize,
    buffers: [&'a wgpu::Buffer; 2],
    max_workgroups: u32,
) -> KernelCall<'a> {
    KernelCall {
        kernel: &SPREAD,
        constants: Vec::new(),
        params: Params::of(SpreadParams {
            batch: batch as u32,
            pixels: pixels as u32,
            channels: channels as u32,
            pad: 0,
        }),
        buffers: buffers.to_vec(),
        workgroups: linear_workgroups((batch * pixels * channels) as u64, 64, max_workgroups),
    }
}

/// A conv's weight `(channels, per_channel)` and its batch norm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FoldShape {
    pub channels: usize,
    pub per_channel: usize,
    pub eps: f32,
    /// The folded weight is stored tap-major, `(per_channel, channels)` (a depthwise conv).
    pub taps: bool,
}

impl FoldShape {
    fn params(&self) -> Params {
        Params::of(FoldParams {
            channels: self.channels as u32,
            per_channel: self.per_channel as u32,
            eps: self.eps,
            pad: 0,
        })
    }
}

/// `[weight, gamma, beta, stats (mean, var), folded, bias]`.
pub fn bn_fold<'a>(shape: FoldShape, buffers: [&'a wgpu::Buffer; 6], max_workgroups: u32) -> KernelCall<'a> {
    KernelCall {
        kernel: &BN_FOLD,
        constants: vec![("TAPS", flag(shape.taps))],
        params: shape.params(),
        buffers: buffers.to_vec(),
        workgroups: linear_workgroups((shape.channels * shape.per_channel) as u64, 64, max_workgroups),
    }
}

/// `[weight, gamma, stats, d_folded, d_bias, d_weight, d_gamma]`.
pub fn bn_unfold(shape: FoldShape, buffers: [&wgpu::Buffer; 7]) -> KernelCall<'_> {
    KernelCall {
        kernel: &BN_UNFOLD,
        constants: vec![("TAPS", flag(shape.taps))],
        params: shape.params(),
        buffers: buffers.to_vec(),
        workgroups: [shape.channels.div_ceil(64) as u32, 1, 1],
    }
}

/// `dx (batch, H, W, C)` from `grad (batch, H', W', C)` and `taps (k*k, C)`; `[grad, taps, dx]`.
pub fn depthwise_grad_input<'a>(
    shape: DepthwiseShape,
    batch: usize,
    buffers: [&'a wgpu::Buffer; 3],
    max_workgroups: u32,
) -> KernelCall<'a> {
    let threads = batch * shape.height * shape.width * shape.channels / 4;
    KernelCall {
        kernel: &DEPTHWISE_GRAD_INPUT,
        constants: window_constants(shape.window),
        params: Params::of(DepthwiseParams::new(shape, batch)),
        buffers: buffers.to_vec(),
        workgroups: linear_workgroups(threads as u64, 64, max_workgroups),
    }
}

/// `dtaps (k*k, C)` from `grad (batch, H', W', C)` and `input (batch, H, W, C)`;
/// `[grad, input, dtaps]`.
pub fn depthwise_grad_taps(shape: DepthwiseShape, batch: usize, buffers: [&wgpu::Buffer; 3]) -> KernelCall<'_> {
    KernelCall {
        kernel: &DEPTHWISE_GRAD_TAPS,
        constants: window_constants(shape.window),
        params: Params::of(DepthwiseParams::new(shape, batch)),
        buffers: buffers.to_vec(),
        workgroups: [(shape.channels / 4) as u32, shape.window.taps() as u32, 1],
    }
}
