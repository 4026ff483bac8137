//! Training classifiers: settings, splitting, the training loop with parameter groups,
//! metrics, and trained heads as files.

pub mod config;
pub mod dann;
pub mod head_file;
pub mod inputs;
pub mod metrics;
pub mod model_file;
pub mod report;
pub mod rng;
pub mod split;
pub mod trainer;
mod vars;

pub use config::{Adapt, Augment, BatchNormMode, Keep, TrainConfig};
pub use head_file::{SavedHead, TrainedHead};
pub use inputs::InputBuilder;
pub use model_file::{ModelFile, ModelMeta};
pub use report::{EpochMetrics, Stage, TrainReport};
pub use trainer::{class_problem, ClassProblem, SuffixMode, TrainData, Trainer};
