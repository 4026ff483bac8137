//! Training classifiers: settings, splitting, the training loop with parameter groups,
//! metrics, and trained heads as files.

mod candle_step;
pub mod config;
pub mod dann;
mod data;
mod fallback;
mod gpu_step;
pub mod head_file;
pub mod inputs;
pub mod metrics;
pub mod model_file;
pub mod report;
pub mod rng;
pub mod split;
pub mod step;
pub mod trainer;
mod vars;

pub use candle_step::{CandleStep, StepSpec};
pub use config::{Adapt, Augment, BatchNormMode, Keep, TrainConfig};
pub use fallback::FallbackStep;
pub use gpu_step::GpuStep;
pub use head_file::{SavedHead, TrainedHead};
pub use inputs::InputBuilder;
pub use model_file::{ModelFile, ModelMeta};
pub use report::{EpochMetrics, Stage, TrainReport};
pub use trainer::{class_problem, ClassProblem, SuffixMode, TrainData, Trainer};
