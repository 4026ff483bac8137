//! The engine's one error type. Every failure a user can cause (a file, a weights file, an
//! image) ends up here with a message that names what went wrong; the UI and the CLI show
//! `Display` as is.

use std::fmt;
use std::path::PathBuf;

use crate::message::UserMessage;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum GraftError {
    #[error("could not read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{name} is not an image Graft can read (JPEG, PNG, WebP or GIF): {reason}")]
    NotAnImage { name: String, reason: String },

    #[error("{name} is too large ({width}x{height} pixels); the limit is {max_side} pixels a side")]
    ImageTooLarge { name: String, width: u32, height: u32, max_side: u32 },

    #[error("{name} is truncated (the file ends before the image does); it was not added")]
    TruncatedImage { name: String },

    #[error("{name} is empty (0 bytes)")]
    EmptyFile { name: String },

    #[error("weights file {name} is not a valid PyTorch legacy checkpoint: {reason}")]
    BadCheckpoint { name: String, reason: String },

    #[error("weights file {name} is truncated: {reason}")]
    TruncatedWeights { name: String, reason: String },

    #[error("checksum mismatch for {name}: expected sha256 {expected}, got {actual}")]
    ChecksumMismatch { name: String, expected: String, actual: String },

    #[error("weights do not fit the model: {0}")]
    Weights(String),

    #[error("model manifest is invalid: {0}")]
    Manifest(String),

    #[error("{what} is not usable: {reason}")]
    BadFile { what: &'static str, reason: String },

    /// An exported model file (`graft predict --model`, the page's import) that cannot be used.
    #[error("{file} is not a usable Graft model: {reason}")]
    BadModelFile { file: String, reason: String },

    /// A `.graft` project file that cannot be imported; nothing was changed.
    #[error("{file} is not a usable Graft project: {reason}")]
    BadProjectFile { file: String, reason: String },

    #[error("these features were made by backbone {found}, but the loaded backbone is {expected}")]
    BackboneMismatch { expected: String, found: String },

    #[error("invalid setting: {0}")]
    Settings(SettingProblem),

    #[error("cannot train: {0}")]
    Training(String),

    /// The loss exploded or stopped being a number; `advice` says what to change.
    #[error("training diverged in epoch {epoch} (the loss exploded or is no longer a number); {advice}")]
    Diverged { epoch: usize, advice: DivergedAdvice },

    /// No GPU to use: the CPU runs instead.
    #[error("WebGPU is not available: {0}")]
    GpuUnavailable(String),

    /// The GPU failed while working (a shader, a limit, a lost device): the work in flight
    /// is redone on the CPU, which stays in use.
    #[error("the GPU failed: {0}")]
    Gpu(String),

    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

/// What to try after a run diverged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DivergedAdvice {
    SmallerLearningRate,
    /// Fine-tuning: the unfrozen blocks' rate, or fewer of them.
    SmallerBackboneRate,
    /// It diverged in the first epoch: no weights to keep.
    NoWeightsKept,
}

impl DivergedAdvice {
    fn message_id(self) -> &'static str {
        match self {
            DivergedAdvice::SmallerLearningRate => "advice-smaller-rate",
            DivergedAdvice::SmallerBackboneRate => "advice-smaller-backbone-rate",
            DivergedAdvice::NoWeightsKept => "advice-no-weights",
        }
    }
}

impl fmt::Display for DivergedAdvice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DivergedAdvice::SmallerLearningRate => "try a smaller learning rate",
            DivergedAdvice::SmallerBackboneRate => "try a smaller backbone learning rate or fewer unfrozen blocks",
            DivergedAdvice::NoWeightsKept => "no epoch finished before it, so there are no weights to keep",
        })
    }
}

/// A training setting out of range: which one (its English name) and what it accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingProblem {
    pub setting: &'static str,
    pub accepted: Accepted,
}

/// The values a setting accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Accepted {
    Between(f64, f64),
    AboveZeroAtMost(f64),
    AtLeastZeroBelow(f64),
    /// Hidden units: 0 for a linear head, up to the limit.
    LinearOrUpTo(usize),
    /// Head-only epochs: fewer than the epochs, so that the unfrozen blocks train.
    FewerThanEpochs,
    /// Unfrozen blocks: up to the backbone's blocks.
    UpToBlocks(usize),
}

impl fmt::Display for SettingProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = self.setting;
        match self.accepted {
            Accepted::Between(min, max) => write!(f, "{what} must be between {min} and {max}"),
            Accepted::AboveZeroAtMost(max) => write!(f, "{what} must be above 0 and at most {max}"),
            Accepted::AtLeastZeroBelow(max) => write!(f, "{what} must be at least 0 and below {max}"),
            Accepted::LinearOrUpTo(max) => write!(f, "{what} must be between 0 (linear head) and {max}"),
            Accepted::FewerThanEpochs => {
                write!(f, "{what} must be fewer than the epochs, so that the unfrozen blocks train")
            }
            Accepted::UpToBlocks(blocks) => write!(f, "{what} must be between 0 and {blocks} (the backbone's blocks)"),
        }
    }
}

impl SettingProblem {
    /// The problem as a message: `error-setting-<kind>`, the setting's name as `setting-name-<name>`.
    pub fn user_message(&self) -> UserMessage {
        let name = UserMessage::new(format!("setting-name-{}", self.setting.replace(' ', "-")));
        let message = |kind: &str| UserMessage::new(format!("error-setting-{kind}")).arg("setting", name.clone());
        match self.accepted {
            Accepted::Between(min, max) => message("between").arg("min", min).arg("max", max),
            Accepted::AboveZeroAtMost(max) => message("above-zero").arg("max", max),
            Accepted::AtLeastZeroBelow(max) => message("below").arg("max", max),
            Accepted::LinearOrUpTo(max) => message("linear-or").arg("max", max),
            Accepted::FewerThanEpochs => message("fewer-than-epochs"),
            Accepted::UpToBlocks(blocks) => message("up-to-blocks").arg("blocks", blocks),
        }
    }
}

impl GraftError {
    /// The error as a message a front end words in its language (`error-<kind>` ids; the
    /// details a library or the system gave stay as they are).
    pub fn user_message(&self) -> UserMessage {
        use GraftError as E;
        let m = UserMessage::new;
        match self {
            E::Io { path, source } => {
                m("error-io").arg("path", path.display().to_string()).arg("detail", source.to_string())
            }
            E::NotAnImage { name, reason } => m("error-not-an-image").arg("name", name).arg("reason", reason),
            E::ImageTooLarge { name, width, height, max_side } => m("error-image-too-large")
                .arg("name", name)
                .arg("width", *width)
                .arg("height", *height)
                .arg("max_side", *max_side),
            E::TruncatedImage { name } => m("error-truncated-image").arg("name", name),
            E::EmptyFile { name } => m("error-empty-file").arg("name", name),
            E::BadCheckpoint { name, reason } => m("error-bad-checkpoint").arg("name", name).arg("reason", reason),
            E::TruncatedWeights { name, reason } => {
                m("error-truncated-weights").arg("name", name).arg("reason", reason)
            }
            E::ChecksumMismatch { name, expected, actual } => {
                m("error-checksum").arg("name", name).arg("expected", expected).arg("actual", actual)
            }
            E::Weights(detail) => m("error-weights").arg("detail", detail),
            E::Manifest(detail) => m("error-manifest").arg("detail", detail),
            E::BadFile { what, reason } => m("error-bad-file").arg("what", *what).arg("reason", reason),
            E::BadModelFile { file, reason } => m("error-bad-model-file").arg("file", file).arg("reason", reason),
            E::BadProjectFile { file, reason } => m("error-bad-project-file").arg("file", file).arg("reason", reason),
            E::BackboneMismatch { expected, found } => {
                m("error-backbone-mismatch").arg("expected", expected).arg("found", found)
            }
            E::Settings(problem) => problem.user_message(),
            E::Training(detail) => m("error-training").arg("detail", detail),
            E::Diverged { epoch, advice } => {
                m("error-diverged").arg("epoch", *epoch).arg("advice", UserMessage::new(advice.message_id()))
            }
            E::GpuUnavailable(detail) => m("error-gpu-unavailable").arg("detail", detail),
            E::Gpu(detail) => m("error-gpu").arg("detail", detail),
            E::Tensor(error) => m("error-tensor").arg("detail", error.to_string()),
        }
    }

    /// A GPU failure, after which the CPU takes over.
    pub fn is_gpu(&self) -> bool {
        matches!(self, GraftError::Gpu(_) | GraftError::GpuUnavailable(_))
    }
}

pub type Result<T> = std::result::Result<T, GraftError>;

impl From<GraftError> for UserMessage {
    fn from(error: GraftError) -> Self {
        error.user_message()
    }
}

impl From<candle_core::Error> for UserMessage {
    fn from(error: candle_core::Error) -> Self {
        GraftError::Tensor(error).user_message()
    }
}
