//! The training step with the fallback between devices, as [`crate::exec::Backend`] is for
//! inference: the GPU step when one is attached, the Candle step always.

use super::candle_step::CandleStep;
use super::config::TrainConfig;
use super::data::TrainData;
use super::gpu_step::GpuStep;
use super::step::{Batch, Rates, Scored, TrainDevice, TrainStep, Weights};
use crate::error::{GraftError, Result};
use crate::gpu::GpuContext;

/// The GPU step when one is attached, the Candle step always. A GPU failure (a shader, a limit, a
/// lost device) redoes the work item in the Candle step, which holds the weights of the last
/// snapshot or restore, and the run stays there; the device then says why.
pub struct FallbackStep {
    cpu: CandleStep,
    gpu: Option<GpuStep>,
    cpu_reason: Option<String>,
}

impl FallbackStep {
    pub fn new(cpu: CandleStep) -> Self {
        Self { cpu, gpu: None, cpu_reason: None }
    }

    /// Trains on `context` from now on, from the Candle step's current weights, rates and
    /// stage. When the GPU cannot take the run, the Candle step goes on and the device says why.
    pub async fn use_gpu(&mut self, context: GpuContext, data: &TrainData, config: &TrainConfig) -> Result<()> {
        match GpuStep::new(context, &self.cpu, data, config).await {
            Ok(gpu) => {
                self.gpu = Some(gpu);
                self.cpu_reason = None;
                Ok(())
            }
            Err(e) => {
                let why = match &e {
                    GraftError::GpuUnavailable(why) => why.clone(),
                    other => other.to_string(),
                };
                self.cpu_reason = Some(why);
                Err(e)
            }
        }
    }

    /// The Candle step, holding the weights of the last snapshot or restore (the GPU is let go).
    pub fn into_cpu(self) -> CandleStep {
        self.cpu
    }

    fn fall_back(&mut self, error: &GraftError) {
        self.gpu = None;
        self.cpu_reason = Some(error.to_string());
    }
}

impl TrainStep for FallbackStep {
    fn device(&self) -> TrainDevice {
        match &self.gpu {
            Some(gpu) => gpu.device(),
            None => TrainDevice::Cpu { reason: self.cpu_reason.clone() },
        }
    }

    async fn train_batch(&mut self, data: &TrainData, batch: &Batch<'_>) -> Result<Option<usize>> {
        if let Some(gpu) = self.gpu.as_mut() {
            match gpu.train_batch(data, batch).await {
                Err(e) if e.is_gpu() => self.fall_back(&e),
                done => return done,
            }
        }
        self.cpu.train_batch(data, batch).await
    }

    async fn score(&mut self, data: &TrainData, samples: &[usize]) -> Result<Scored> {
        if let Some(gpu) = self.gpu.as_mut() {
            match gpu.score(data, samples).await {
                Err(e) if e.is_gpu() => self.fall_back(&e),
                done => return done,
            }
        }
        self.cpu.score(data, samples).await
    }

    /// The GPU's weights are also set into the Candle step, so that a run that loses the GPU
    /// continues from the weights the trainer keeps. (An adapting run's domain classifier
    /// continues from its initial weights: it learns again within an epoch.)
    async fn snapshot(&mut self) -> Result<Weights> {
        if let Some(gpu) = self.gpu.as_mut() {
            match gpu.snapshot().await {
                Ok(weights) => {
                    self.cpu.restore(&weights)?;
                    return Ok(weights);
                }
                Err(e) if e.is_gpu() => self.fall_back(&e),
                Err(e) => return Err(e),
            }
        }
        self.cpu.snapshot().await
    }

    fn restore(&mut self, weights: &Weights) -> Result<()> {
        self.cpu.restore(weights)?;
        if let Some(gpu) = self.gpu.as_mut() {
            match gpu.restore(weights) {
                Err(e) if e.is_gpu() => self.fall_back(&e),
                done => return done,
            }
        }
        Ok(())
    }

    fn set_learning_rates(&mut self, rates: Rates) {
        self.cpu.set_learning_rates(rates);
        if let Some(gpu) = self.gpu.as_mut() {
            gpu.set_learning_rates(rates);
        }
    }

    fn set_blocks_learn(&mut self, learns: bool) -> Result<()> {
        if let Some(gpu) = self.gpu.as_mut() {
            match gpu.set_blocks_learn(learns) {
                Err(e) if e.is_gpu() => self.fall_back(&e),
                done => done?,
            }
        }
        self.cpu.set_blocks_learn(learns)
    }
}
