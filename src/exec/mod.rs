//! Executors: who runs a backbone's frozen blocks, and on what.
//!
//! A [`plan::FoldedPlan`] (weights folded and laid out, backend-neutral) is run by an
//! [`Executor`] over a range of blocks: `run(x, 0..k)` is the frozen prefix up to a freeze
//! boundary, `run(x, k..n)` the rest, and `run(x, 0..n)` then a spatial mean the features.
//! Activations between calls are [`FeatureMap`]s, `(B, H, W, C)` in NHWC.
//!
//! The interface is asynchronous at the boundary: the CPU executor ([`cpu::CpuExecutor`])
//! answers at once, the GPU executor ([`crate::gpu::GpuExecutor`]) when its `map_async`
//! readback resolves; callers await either the same way through [`Backend`], which also
//! falls back to the CPU when the GPU fails.

pub mod cpu;
pub mod plan;
pub mod profile;

use std::future::Future;
use std::ops::Range;

use std::sync::{Arc, Mutex};

use candle_core::{Device, Tensor};

use crate::error::Result;
use crate::gpu::{BackendChoice, GpuContext, GpuExecutor};
use crate::message::UserMessage;
pub use cpu::CpuExecutor;
pub use plan::FoldedPlan;

/// A batch of activations in NHWC: `data[((b * height + y) * width + x) * channels + c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMap {
    pub data: Vec<f32>,
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl FeatureMap {
    /// From an NCHW tensor (a preprocessed batch, or Candle's activations).
    pub fn from_nchw(x: &Tensor) -> candle_core::Result<Self> {
        let (batch, channels, height, width) = x.dims4()?;
        let data = x.permute((0, 2, 3, 1))?.flatten_all()?.to_vec1::<f32>()?;
        Ok(Self { data, batch, height, width, channels })
    }

    /// As an NCHW tensor (to hand to Candle: trainable blocks, the reference twin).
    pub fn to_nchw(&self, device: &Device) -> candle_core::Result<Tensor> {
        let (b, h, w, c) = (self.batch, self.height, self.width, self.channels);
        Tensor::from_slice(&self.data, (b, h, w, c), device)?.permute((0, 3, 1, 2))?.contiguous()
    }

    /// As an NHWC tensor `(B, H, W, C)` (the input of trainable blocks).
    pub fn to_nhwc(&self, device: &Device) -> candle_core::Result<Tensor> {
        Tensor::from_slice(&self.data, (self.batch, self.height, self.width, self.channels), device)
    }

    /// Values of one image, `(H, W, C)`.
    pub fn image(&self, index: usize) -> &[f32] {
        let len = self.height * self.width * self.channels;
        &self.data[index * len..(index + 1) * len]
    }

    /// Spatial mean per image and channel: `(B, C)` row-major.
    pub fn pooled(&self) -> Vec<f32> {
        (0..self.batch).flat_map(|b| spatial_mean(self.image(b), self.channels)).collect()
    }
}

/// Mean over pixels of one `(H, W, C)` activation.
pub(crate) fn spatial_mean(data: &[f32], channels: usize) -> Vec<f32> {
    let mut sum = vec![0f32; channels];
    for pixel in data.chunks_exact(channels) {
        sum.iter_mut().zip(pixel).for_each(|(s, v)| *s += v);
    }
    let n = (data.len() / channels.max(1)).max(1) as f32;
    sum.iter_mut().for_each(|s| *s /= n);
    sum
}

/// Runs a plan's blocks. Asynchronous so that executors whose results come back later (GPU
/// readback) fit beside the CPU one.
pub trait Executor {
    /// What the page shows as the compute backend.
    fn describe(&self) -> String;

    fn num_blocks(&self) -> usize;

    /// Blocks `blocks` of the plan on `x`.
    fn run(&self, x: &FeatureMap, blocks: Range<usize>) -> impl Future<Output = Result<FeatureMap>>;

    /// Pooled features `(B, feature_dim)` of a preprocessed batch `(B, 3, H, W)`: every block,
    /// then the spatial mean.
    fn features(&self, x: &Tensor) -> impl Future<Output = Result<Tensor>>;
}

/// Which executor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Cpu,
    Webgpu,
}

/// Which executor runs, and why the CPU does when a GPU was wanted.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BackendStatus {
    pub kind: BackendKind,
    /// The badge: `"WebGPU · <adapter>"`, or the CPU path.
    pub description: String,
    /// Why the CPU runs although WebGPU was asked for or `auto` looked for it.
    pub cpu_reason: Option<CpuReason>,
}

/// Why the CPU runs although a GPU was wanted: the GPU's error, and whether `auto` chose the
/// CPU (rather than WebGPU asked for, or a GPU failing). `Display` is the English sentence.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CpuReason {
    pub auto: bool,
    pub error: UserMessage,
    english: String,
}

impl CpuReason {
    fn new(auto: bool, error: &crate::GraftError) -> Self {
        CpuReason { auto, error: error.user_message(), english: error.to_string() }
    }

    /// The reason as a message for the page.
    pub fn user_message(&self) -> UserMessage {
        match self.auto {
            true => UserMessage::new("backend-auto-chose").arg("problem", self.error.clone()),
            false => self.error.clone(),
        }
    }
}

impl std::fmt::Display for CpuReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.auto {
            true => write!(f, "auto chose the CPU: {}", self.english),
            false => f.write_str(&self.english),
        }
    }
}

/// The backbone's executors with the fallback between them: the GPU when one is attached, the
/// CPU always. A GPU failure (a shader, a limit, a lost device) redoes the work item on the CPU,
/// which then stays in use until a GPU is attached again; the reason is kept for the page.
#[derive(Debug)]
pub struct Backend {
    cpu: CpuExecutor,
    gpu: Mutex<Option<Arc<GpuExecutor>>>,
    cpu_reason: Mutex<Option<CpuReason>>,
}

impl Backend {
    pub fn new(cpu: CpuExecutor) -> Self {
        Self { cpu, gpu: Mutex::new(None), cpu_reason: Mutex::new(None) }
    }

    pub fn cpu(&self) -> &CpuExecutor {
        &self.cpu
    }

    pub fn cpu_mut(&mut self) -> &mut CpuExecutor {
        &mut self.cpu
    }

    /// The GPU executor in use, if any. A GPU whose device was lost is let go here, with the
    /// reason, so that the status says so before any work fails on it.
    pub fn gpu(&self) -> Option<Arc<GpuExecutor>> {
        let gpu = self.gpu.lock().ok().and_then(|gpu| gpu.clone())?;
        match gpu.context().check_alive() {
            Ok(()) => Some(gpu),
            Err(e) => {
                self.fall_back(&e);
                None
            }
        }
    }

    /// Opens the GPU `choice` asks for and moves the work there, or stays on (or returns to)
    /// the CPU, keeping the reason. Errs only when WebGPU was asked for explicitly and cannot
    /// run; the CPU is in use then too.
    pub async fn select(&self, choice: BackendChoice) -> crate::error::Result<BackendStatus> {
        let opened = match choice {
            BackendChoice::Cpu => {
                self.use_cpu(None);
                return Ok(self.status());
            }
            BackendChoice::Auto => GpuContext::request(false).await,
            BackendChoice::Webgpu => GpuContext::request(true).await,
        };
        let executor = match opened {
            Ok(context) => GpuExecutor::new(context, self.cpu.shared_plan()).await,
            Err(e) => Err(e),
        };
        match executor {
            Ok(gpu) => {
                self.attach(gpu);
                Ok(self.status())
            }
            Err(e) if choice == BackendChoice::Auto => {
                self.use_cpu(Some(CpuReason::new(true, &e)));
                Ok(self.status())
            }
            Err(e) => {
                self.use_cpu(Some(CpuReason::new(false, &e)));
                Err(e)
            }
        }
    }

    /// Runs on `gpu` from now on.
    // Natively wgpu's handles are Send + Sync and the Arc is shared; on wasm32 (one thread)
    // they are not, and the Arc only counts references.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn attach(&self, gpu: GpuExecutor) {
        set(&self.gpu, Some(Arc::new(gpu)));
        set(&self.cpu_reason, None);
    }

    /// Runs on the CPU from now on; `reason` says why when a GPU was wanted.
    pub fn use_cpu(&self, reason: Option<CpuReason>) {
        set(&self.gpu, None);
        set(&self.cpu_reason, reason);
    }

    pub fn status(&self) -> BackendStatus {
        let cpu_reason = self.cpu_reason.lock().ok().and_then(|r| r.clone());
        match self.gpu() {
            Some(gpu) => BackendStatus { kind: BackendKind::Webgpu, description: gpu.describe(), cpu_reason: None },
            None => BackendStatus { kind: BackendKind::Cpu, description: self.cpu.describe(), cpu_reason },
        }
    }

    /// Hands a GPU failure's work item to the CPU: the GPU is dropped and the reason kept.
    fn fall_back(&self, error: &crate::GraftError) {
        self.use_cpu(Some(CpuReason::new(false, error)));
    }
}

fn set<T>(slot: &Mutex<T>, value: T) {
    if let Ok(mut slot) = slot.lock() {
        *slot = value;
    }
}

impl Executor for Backend {
    fn describe(&self) -> String {
        self.status().description
    }

    fn num_blocks(&self) -> usize {
        self.cpu.num_blocks()
    }

    async fn run(&self, x: &FeatureMap, blocks: Range<usize>) -> Result<FeatureMap> {
        if let Some(gpu) = self.gpu() {
            match gpu.run(x, blocks.clone()).await {
                Err(e) if e.is_gpu() => self.fall_back(&e),
                done => return done,
            }
        }
        self.cpu.run(x, blocks).await
    }

    async fn features(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(gpu) = self.gpu() {
            match gpu.features(x).await {
                Err(e) if e.is_gpu() => self.fall_back(&e),
                done => return done,
            }
        }
        self.cpu.features(x).await
    }
}
