//! Choosing what to transfer from: scores of a backbone's features on the user's labelled
//! samples, computed without training (LogME); and whether transfer helps at all, against a
//! baseline that learns from the raw pixels.

pub mod baseline;
pub mod logme;

pub use baseline::{baseline_accuracy, transfer_helps};
pub use logme::logme;
