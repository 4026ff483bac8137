//! Training heads on frozen backbone features: splitting, the training loop, metrics.

pub mod metrics;
pub mod rng;
pub mod split;
pub mod trainer;

pub use trainer::{EpochMetrics, HeadTrainer, TrainConfig, TrainReport, TrainedHead};
