//! Graft's engine: pretrained image backbones in Candle, their input transform, their
//! weights (legacy PyTorch checkpoints to safetensors), and classification. No web
//! dependencies: it builds natively (the `graft` CLI) and for wasm32 (the browser worker).

pub mod augment;
pub mod backbone;
pub mod classify;
pub mod embed;
pub mod error;
pub mod exec;
pub mod gpu;
pub mod kernels;
pub mod manifest;
pub mod message;
pub mod model;
pub mod preprocess;
pub mod project;
pub mod train;
pub mod transfer;
pub mod weights;

pub use error::{GraftError, Result};
