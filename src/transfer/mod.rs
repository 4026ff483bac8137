//! Choosing what to transfer from: scores of a backbone's features on the user's labelled
//! samples, computed without training (LogME).

pub mod logme;

pub use logme::logme;
