//! The model worker: owns the engine. Loads the backbone, classifies with its pretrained
//! classifier (smoke path), embeds training examples once and keeps them, trains heads in
//! time slices while staying responsive to `StopTraining`, predicts with the trained head,
//! and exports and imports what a project saves. Runs in a Web Worker (`graft-worker`
//! binary), so the page never computes.
//!
//! - `core.rs`      message dispatch (testable natively)
//! - `model.rs`     fetching and building the model
//! - `samples.rs`   stored images and the embedding cache
//! - `training.rs`  the training scheduler

pub mod core;
pub mod model;
pub mod samples;
pub mod training;

use futures::future::{select, Either};
use futures::{SinkExt, StreamExt};
use graft::gpu::BackendChoice;
use yew_agent::prelude::*;

use self::core::WorkerCore;
use crate::protocol::{FromWorker, ToWorker};

type Scope = ReactorScope<ToWorker, FromWorker>;

/// Milliseconds since the epoch.
pub fn now_millis() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    }
}

#[reactor(GraftWorker)]
pub async fn graft_worker(mut scope: Scope) {
    let mut core = WorkerCore::new(now_millis);
    loop {
        let message = if core.is_training() {
            // Between two slices of training, look for a message without waiting for one.
            let tick = gloo::timers::future::TimeoutFuture::new(0);
            match select(scope.next(), tick).await {
                Either::Left((message, _)) => message,
                Either::Right(_) => {
                    let mut replies = core.train_slice().await;
                    replies.extend(core.backend_change());
                    for reply in replies {
                        if scope.send(reply).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
            }
        } else {
            scope.next().await
        };
        let Some(message) = message else { break };
        let reply = match message {
            ToWorker::LoadModel { manifest_url, backend } => {
                Some(load(&mut core, &manifest_url, backend, &mut scope).await)
            }
            other => core.handle(other).await,
        };
        // A GPU failure while answering: say so before the answer the CPU gave.
        for reply in core.backend_change().into_iter().chain(reply) {
            if scope.send(reply).await.is_err() {
                return;
            }
        }
    }
}

async fn load(core: &mut WorkerCore, manifest_url: &str, backend: BackendChoice, scope: &mut Scope) -> FromWorker {
    let started = now_millis();
    match model::load_model(manifest_url, scope).await {
        Ok(model) => core.set_model(model, backend, now_millis() - started).await,
        Err(message) => FromWorker::LoadFailed { message },
    }
}
