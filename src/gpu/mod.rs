//! The GPU executor and the GPU training step: WGSL compute kernels driven by `wgpu` (the
//! browser's WebGPU on wasm32; Vulkan natively, Mesa lavapipe in tests and CI).
//!
//! Candle has no wgpu backend, so the kernels live here, fed from the same
//! [`FoldedPlan`](crate::exec::FoldedPlan) as the CPU executor, whose kernels are their twins
//! (every `.wgsl` sits beside its Rust driver in [`kernels`], with a parity test against the
//! CPU kernel). Data stays on the GPU between kernels: a forward pass is one compute pass and
//! one submit, and only its output is read back (`map_async`, then an await).
//!
//! - [`GpuContext`]: the adapter, device and queue, the adapter's limits, and whether the device
//!   was lost; every failure is a typed [`GraftError::Gpu`] so that the caller falls back to the
//!   CPU without losing the work item.
//! - [`GpuExecutor`]: the backbone's units on the GPU (see `executor.rs`).

pub mod executor;
pub mod kernels;
pub mod param;
pub mod program;
pub mod suffix;
pub mod train;

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{GraftError, Result};

pub use executor::GpuExecutor;

/// Which backend runs the backbone: chosen by the user, `auto` by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// WebGPU when the adapter is a hardware GPU; otherwise the CPU.
    #[default]
    Auto,
    Cpu,
    /// WebGPU on any adapter, software ones included (SwiftShader, lavapipe).
    Webgpu,
}

impl BackendChoice {
    pub const ALL: [BackendChoice; 3] = [BackendChoice::Auto, BackendChoice::Cpu, BackendChoice::Webgpu];

    /// The name used by the CLI flag and the page's `<option value>`.
    pub fn name(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Cpu => "cpu",
            BackendChoice::Webgpu => "webgpu",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|choice| choice.name() == name)
    }
}

/// What the page and the CLI say about the adapter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterSummary {
    /// The adapter's name, or its vendor and architecture when the browser hides the name.
    pub name: String,
    /// A software rasteriser (SwiftShader, lavapipe): correct, but slower than the CPU path.
    pub software: bool,
}

impl AdapterSummary {
    fn from_info(info: &wgpu::AdapterInfo) -> Self {
        let software = info.device_type == wgpu::DeviceType::Cpu;
        // Browsers may hide the name (Chromium's SwiftShader reports none).
        let name = [info.name.trim(), info.driver.trim()].into_iter().find(|s| !s.is_empty()).map_or_else(
            || if software { "browser fallback adapter".to_string() } else { "GPU".to_string() },
            str::to_string,
        );
        Self { name, software }
    }
}

/// An open GPU device: the queue, the limits every plan is cut to, and a flag raised when the
/// device is lost.
#[derive(Clone)]
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: AdapterSummary,
    limits: wgpu::Limits,
    lost: Arc<Mutex<Option<String>>>,
    /// An error raised outside every error scope (natively wgpu would panic on it): kept here
    /// and returned by the next [`GpuContext::checked`] call.
    uncaptured: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &self.adapter).finish_non_exhaustive()
    }
}

impl GpuContext {
    /// Opens the preferred adapter's device. `allow_software` keeps a software adapter
    /// (the user asked for WebGPU, or a test); otherwise one is refused, naming it, so that
    /// `auto` stays on the faster CPU path.
    pub async fn request(allow_software: bool) -> Result<Self> {
        Self::request_with(allow_software, |_| ()).await
    }

    /// [`GpuContext::request`], with the device's limits adjusted by `limits` first (a test
    /// asks for more than the adapter has, to see `request_device` fail).
    pub async fn request_with(allow_software: bool, adjust: impl FnOnce(&mut wgpu::Limits)) -> Result<Self> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let options = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        };
        let adapter =
            instance.request_adapter(&options).await.map_err(|e| GraftError::GpuUnavailable(adapter_missing(&e)))?;
        let summary = AdapterSummary::from_info(&adapter.get_info());
        if summary.software && !allow_software {
            return Err(GraftError::GpuUnavailable(format!(
                "the only adapter is a software renderer ({}), slower than the CPU path",
                summary.name
            )));
        }
        let mut limits = adapter.limits();
        adjust(&mut limits);
        let descriptor =
            wgpu::DeviceDescriptor { label: Some("graft"), required_limits: limits.clone(), ..Default::default() };
        let (device, queue) = adapter
            .request_device(&descriptor)
            .await
            .map_err(|e| GraftError::GpuUnavailable(format!("the adapter refused a device ({e})")))?;
        let lost = Arc::new(Mutex::new(None));
        let flag = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut lost) = flag.lock() {
                *lost = Some(format!(
                    "the GPU device was lost ({reason:?}{}{message})",
                    if message.is_empty() { "" } else { ": " }
                ));
            }
        });
        let uncaptured = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&uncaptured);
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            if let Ok(mut slot) = slot.lock() {
                slot.get_or_insert_with(|| error.to_string());
            }
        }));
        Ok(Self { device, queue, adapter: summary, limits, lost, uncaptured })
    }

    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// An error when the device was lost (then nothing more runs on it).
    pub fn check_alive(&self) -> Result<()> {
        match self.lost.lock().ok().and_then(|lost| lost.clone()) {
            Some(reason) => Err(GraftError::Gpu(reason)),
            None => Ok(()),
        }
    }

    /// Destroys the device, as a driver reset would: the test hook for the lost-device path.
    /// The flag is raised at once because natively wgpu calls the device-lost callback only
    /// when the device is next polled with an empty queue (gfx-rs/wgpu#9278), and a training
    /// step submits without polling.
    pub fn lose_device(&self) {
        self.device.destroy();
        if let Ok(mut lost) = self.lost.lock() {
            lost.get_or_insert_with(|| "the GPU device was lost (destroyed)".into());
        }
    }

    /// A storage buffer holding `values`.
    pub fn upload(&self, label: &str, values: &[f32]) -> wgpu::Buffer {
        let size = (values.len().max(4) * 4) as u64;
        let buffer = self.storage(label, size);
        if !values.is_empty() {
            self.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(values));
        }
        buffer
    }

    /// An empty storage buffer of `bytes` (at least 16), readable and writable by kernels and
    /// copies.
    pub fn storage(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A buffer to read results back through.
    pub fn staging(&self, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("graft staging"),
            size: bytes.max(16).next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// The first `len` floats of `staging`, once the GPU has written them: `map_async`, then
    /// an await (natively the device is polled to get there; in the browser the callback
    /// runs when the worker's event loop gets control back).
    pub async fn read(&self, staging: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        let slice = staging.slice(..(len.max(1) * 4) as u64);
        let (sender, receiver) = futures::channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GraftError::Gpu(format!("waiting for the GPU failed ({e})")))?;
        let mapped = receiver.await.map_err(|_| GraftError::Gpu("the GPU dropped a readback".into()))?;
        if let Err(e) = mapped {
            self.check_alive()?;
            return Err(GraftError::Gpu(format!("reading results back failed ({e})")));
        }
        let values = {
            let view =
                slice.get_mapped_range().map_err(|e| GraftError::Gpu(format!("reading results back failed ({e})")))?;
            bytemuck::cast_slice::<u8, f32>(&view)[..len].to_vec()
        };
        staging.unmap();
        Ok(values)
    }

    /// Runs `work` (creating pipelines, buffers, submitting) and turns any validation or
    /// out-of-memory error it raised into a typed error naming `what`.
    pub async fn checked<T>(&self, what: &str, work: impl FnOnce() -> T) -> Result<T> {
        self.check_alive()?;
        let memory = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = work();
        let invalid = validation.pop().await.map(|e| e.to_string());
        let out_of_memory = memory.pop().await.map(|e| e.to_string());
        let earlier = self.uncaptured.lock().ok().and_then(|mut slot| slot.take());
        if let Some(error) = invalid.or(out_of_memory).or(earlier) {
            self.check_alive()?;
            return Err(GraftError::Gpu(format!("{what} failed on the GPU ({error})")));
        }
        Ok(value)
    }
}

/// Why no adapter came, for the page's badge: wgpu's `NotFound` lists every backend it was
/// built with and what each found (a long line in a browser), which tells a person no more.
fn adapter_missing(error: &wgpu::RequestAdapterError) -> String {
    match error {
        wgpu::RequestAdapterError::NotFound { .. } => "no GPU adapter was found".into(),
        other => format!("no WebGPU adapter ({other})"),
    }
}
