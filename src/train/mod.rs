//! Training classifiers: settings, splitting, the training loop with parameter groups,
//! metrics, and trained heads as files.

pub mod config;
pub mod head_file;
pub mod metrics;
pub mod report;
pub mod rng;
pub mod split;
pub mod trainer;
mod vars;

pub use config::TrainConfig;
pub use head_file::{SavedHead, TrainedHead};
pub use report::{EpochMetrics, TrainReport};
pub use trainer::{class_problem, SuffixMode, TrainData, Trainer};
