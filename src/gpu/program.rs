//! Recording kernels once and replaying them: pipelines created once per kernel and set of
//! override constants, a bind group per dispatch, every dispatch's parameters in one uniform
//! buffer read at a dynamic offset (WebGPU has no push constants), and all dispatches of a
//! [`Recorded`] sequence encoded into one compute pass.
//!
//! A kernel's parameters are its WGSL `struct Params` mirrored in Rust ([`kernel_params!`]:
//! `#[repr(C)]` plain old data, named fields of `u32`/`f32`), so that a driver names what it
//! writes instead of filling slots of an array; a test parses every shader with naga and
//! compares names, types, offsets and sizes (`kernels::tests`).

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Mutex;

use super::GpuContext;
use crate::error::Result;

/// How a kernel's storage binding is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// A WGSL compute shader (entry point `main`), the layout of its `struct Params` (the uniform
/// at binding 0) and its storage bindings after it.
#[derive(Debug)]
pub struct Kernel {
    pub name: &'static str,
    pub source: &'static str,
    pub params: ParamsLayout,
    pub bindings: &'static [Access],
}

/// A kernel's `struct Params` mirrored in Rust: `#[repr(C)]`, plain old data, fields of four
/// bytes in the shader's order (declare one with [`kernel_params!`]).
pub trait KernelParams: bytemuck::Pod {
    /// Each field's name, type and byte offset, checked against the shader's struct.
    const FIELDS: &'static [(&'static str, &'static str, usize)];
}

/// What the layout test compares with a shader's `struct Params`.
#[derive(Debug)]
pub struct ParamsLayout {
    pub fields: &'static [(&'static str, &'static str, usize)],
    pub size: usize,
}

impl ParamsLayout {
    pub const fn of<P: KernelParams>() -> Self {
        Self { fields: P::FIELDS, size: std::mem::size_of::<P>() }
    }
}

/// Declares a kernel's parameters: a `#[repr(C)]` Pod struct of `u32`/`f32` fields named and
/// ordered as in the kernel's WGSL `struct Params` (padding fields included, so that the
/// sizes agree), with its [`KernelParams`] layout.
macro_rules! kernel_params {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty),*
        }

        impl $crate::gpu::program::KernelParams for $name {
            const FIELDS: &'static [(&'static str, &'static str, usize)] =
                &[$((stringify!($field), stringify!($ty), std::mem::offset_of!($name, $field))),*];
        }
    };
}
pub(crate) use kernel_params;

/// One dispatch's parameters: its kernel's `Params` bytes, zero-padded to the uniform slot
/// every kernel binds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params([u32; 8]);
const PARAMS_BYTES: u64 = std::mem::size_of::<Params>() as u64;

impl Params {
    pub fn of<P: KernelParams>(params: P) -> Self {
        const { assert!(std::mem::size_of::<P>() <= PARAMS_BYTES as usize, "a kernel's Params exceed the uniform slot") };
        let mut words = [0u32; 8];
        let bytes = bytemuck::bytes_of(&params);
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Self(words)
    }

    fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }
}

/// One dispatch to record.
pub struct KernelCall<'a> {
    pub kernel: &'static Kernel,
    /// Pipeline-overridable constants (booleans as 0/1).
    pub constants: Vec<(&'static str, f64)>,
    pub params: Params,
    /// The storage buffers, in binding order.
    pub buffers: Vec<&'a wgpu::Buffer>,
    pub workgroups: [u32; 3],
}

/// Workgroups for `threads` threads in groups of `per_group` along x, folded into y when
/// they exceed the per-dimension limit (kernels index with `num_workgroups.x`).
pub fn linear_workgroups(threads: u64, per_group: u32, max_per_dimension: u32) -> [u32; 3] {
    let groups = threads.div_ceil(per_group as u64).max(1);
    let x = groups.min(max_per_dimension as u64);
    [x as u32, groups.div_ceil(x) as u32, 1]
}

/// Pipelines and layouts, created on first use and kept.
pub struct Kernels {
    context: GpuContext,
    layouts: Mutex<HashMap<&'static str, (wgpu::BindGroupLayout, wgpu::ShaderModule, wgpu::PipelineLayout)>>,
    pipelines: Mutex<HashMap<String, wgpu::ComputePipeline>>,
    uniform_stride: u64,
}

impl Kernels {
    pub fn new(context: GpuContext) -> Self {
        let alignment = context.limits().min_uniform_buffer_offset_alignment as u64;
        Self {
            uniform_stride: PARAMS_BYTES.next_multiple_of(alignment.max(1)),
            context,
            layouts: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
        }
    }

    pub fn context(&self) -> &GpuContext {
        &self.context
    }

    /// Records `calls` (pipelines compiled, bind groups and the parameter buffer made), to be
    /// encoded as many times as needed. Validation errors (a shader that does not compile, a
    /// buffer beyond the limits) come back as [`crate::error::GraftError::Gpu`].
    pub async fn record(&self, what: &str, calls: &[KernelCall<'_>]) -> Result<Recorded> {
        self.context.checked(what, || self.record_now(calls)).await
    }

    fn record_now(&self, calls: &[KernelCall<'_>]) -> Recorded {
        let device = self.context.device();
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("graft params"),
            size: self.uniform_stride * calls.len().max(1) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut bytes = vec![0u8; (self.uniform_stride as usize) * calls.len()];
        let dispatches = calls
            .iter()
            .enumerate()
            .map(|(index, call)| {
                let offset = index as u64 * self.uniform_stride;
                let at = offset as usize;
                bytes[at..at + PARAMS_BYTES as usize].copy_from_slice(call.params.bytes());
                self.dispatch(call, &uniform, offset as u32)
            })
            .collect();
        if !bytes.is_empty() {
            self.context.queue().write_buffer(&uniform, 0, &bytes);
        }
        Recorded { dispatches, uniform, stride: self.uniform_stride }
    }

    fn dispatch(&self, call: &KernelCall<'_>, uniform: &wgpu::Buffer, offset: u32) -> Dispatch {
        let (layout, pipeline) = self.pipeline(call.kernel, &call.constants);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: uniform,
                offset: 0,
                size: NonZeroU64::new(PARAMS_BYTES),
            }),
        }];
        entries.extend(
            call.buffers.iter().enumerate().map(|(i, buffer)| wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: buffer.as_entire_binding(),
            }),
        );
        let bind_group = self.context.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(call.kernel.name),
            layout: &layout,
            entries: &entries,
        });
        Dispatch { pipeline, bind_group, offset, workgroups: call.workgroups }
    }

    fn pipeline(
        &self,
        kernel: &'static Kernel,
        constants: &[(&'static str, f64)],
    ) -> (wgpu::BindGroupLayout, wgpu::ComputePipeline) {
        let mut layouts = self.layouts.lock().unwrap_or_else(|e| e.into_inner());
        let (bind_layout, module, layout) = layouts.entry(kernel.name).or_insert_with(|| self.layout(kernel)).clone();
        drop(layouts);
        let key = format!("{}{constants:?}", kernel.name);
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        let pipeline = pipelines
            .entry(key)
            .or_insert_with(|| {
                self.context.device().create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(kernel.name),
                    layout: Some(&layout),
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: wgpu::PipelineCompilationOptions { constants, ..Default::default() },
                    cache: None,
                })
            })
            .clone();
        (bind_layout, pipeline)
    }

    fn layout(&self, kernel: &Kernel) -> (wgpu::BindGroupLayout, wgpu::ShaderModule, wgpu::PipelineLayout) {
        let device = self.context.device();
        let storage = |binding: u32, access: Access| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: access == Access::Read },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: NonZeroU64::new(PARAMS_BYTES),
            },
            count: None,
        }];
        entries.extend(kernel.bindings.iter().enumerate().map(|(i, &access)| storage(i as u32 + 1, access)));
        let bind_layout = device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(kernel.name), entries: &entries });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(kernel.name),
            source: wgpu::ShaderSource::Wgsl(kernel.source.into()),
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel.name),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        (bind_layout, module, layout)
    }

    /// Encodes `recorded` into one compute pass, copies each `(buffer, staging, floats)` after
    /// it, submits once, and reads the staging buffers back.
    pub async fn run(
        &self,
        recorded: &Recorded,
        readback: &[(&wgpu::Buffer, &wgpu::Buffer, usize)],
    ) -> Result<Vec<Vec<f32>>> {
        let context = &self.context;
        context
            .checked("running the kernels", || {
                let mut encoder = context.device().create_command_encoder(&Default::default());
                {
                    let mut pass = encoder.begin_compute_pass(&Default::default());
                    recorded.encode(&mut pass);
                }
                for (buffer, staging, len) in readback {
                    encoder.copy_buffer_to_buffer(buffer, 0, staging, 0, (*len as u64 * 4).max(4));
                }
                context.queue().submit([encoder.finish()]);
            })
            .await?;
        let mut values = Vec::with_capacity(readback.len());
        for (_, staging, len) in readback {
            values.push(context.read(staging, *len).await?);
        }
        Ok(values)
    }
}

/// A recorded dispatch.
struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    offset: u32,
    workgroups: [u32; 3],
}

/// A sequence of dispatches, ready to encode.
pub struct Recorded {
    dispatches: Vec<Dispatch>,
    uniform: wgpu::Buffer,
    stride: u64,
}

impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorded").field("dispatches", &self.dispatches.len()).finish_non_exhaustive()
    }
}

impl Recorded {
    /// New parameters for dispatch `index` from the next submit on (AdamW's step count).
    pub fn write_params<P: KernelParams>(&self, queue: &wgpu::Queue, index: usize, params: P) {
        queue.write_buffer(&self.uniform, index as u64 * self.stride, Params::of(params).bytes());
    }

    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        for d in &self.dispatches {
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &d.bind_group, &[d.offset]);
            pass.dispatch_workgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
        }
    }
}
