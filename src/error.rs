//! The engine's one error type. Every failure a user can cause (a file, a weights file, an
//! image) ends up here with a message that names what went wrong; the UI and the CLI show
//! `Display` as is.

use std::path::PathBuf;

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
    Settings(String),

    #[error("cannot train: {0}")]
    Training(String),

    /// The loss exploded or stopped being a number; `advice` says what to change.
    #[error("training diverged in epoch {epoch} (the loss exploded or is no longer a number); {advice}")]
    Diverged { epoch: usize, advice: String },

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

impl GraftError {
    /// A GPU failure, after which the CPU takes over.
    pub fn is_gpu(&self) -> bool {
        matches!(self, GraftError::Gpu(_) | GraftError::GpuUnavailable(_))
    }
}

pub type Result<T> = std::result::Result<T, GraftError>;
