//! Messages between the page and the model worker. Serde enums with named fields; the worker
//! answers every request with exactly one final message (plus progress while loading).

use graft::classify::Prediction;
use serde::{Deserialize, Serialize};

/// Page -> worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Fetch the manifest at `manifest_url`, then its weights and labels, and build the model.
    LoadModel { manifest_url: String },
    /// Classify one image file's bytes.
    Classify {
        request_id: u64,
        file_name: String,
        bytes: Vec<u8>,
    },
}

/// Worker -> page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
    LoadProgress { loaded_bytes: u64, total_bytes: u64 },
    ModelReady {
        model_name: String,
        backend: String,
        load_millis: f64,
    },
    LoadFailed { message: String },
    Classified {
        request_id: u64,
        file_name: String,
        top5: Vec<Prediction>,
        millis: f64,
    },
    ClassifyFailed {
        request_id: u64,
        file_name: String,
        message: String,
    },
}
