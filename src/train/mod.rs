//! Training classifiers: settings, splitting, the training loop with parameter groups,
//! metrics, and trained heads as files.

pub mod config;
pub mod head_file;
pub mod metrics;
pub mod rng;
pub mod split;
pub mod trainer;

pub use config::TrainConfig;
pub use head_file::SavedHead;
pub use trainer::{class_problem, EpochMetrics, SuffixMode, TrainData, TrainReport, TrainedHead, Trainer};
