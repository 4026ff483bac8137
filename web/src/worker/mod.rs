//! The model worker: owns the engine. Loads the backbone, classifies with its pretrained
//! classifier (smoke path), embeds training examples once and keeps them, trains heads in
//! time slices while staying responsive to `StopTraining`, predicts with the trained head,
//! and exports and imports what a project saves. Runs in a Web Worker (`graft-worker`
//! binary), so the page never computes.
//!
//! - `core.rs`      message dispatch (testable natively)
//! - `model.rs`     fetching and building the model
//! - `backbones.rs` the backbones the site serves: switching, ranking by LogME
//! - `samples.rs`   stored images and the embedding cache
//! - `training.rs`  the training scheduler
//! - `persist.rs`   the open project and its autosave (answers the project messages)
//! - `storage.rs`   IndexedDB: one record per project, sample, embedding and weights file

pub mod backbones;
pub mod core;
pub mod model;
pub mod persist;
pub mod samples;
pub mod storage;
pub mod training;

use futures::future::{select, Either};
use futures::{SinkExt, StreamExt};
use graft::gpu::BackendChoice;
use yew_agent::prelude::*;

use self::core::WorkerCore;
use self::persist::Persistence;
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
    let mut persistence = Persistence::open().await;
    loop {
        let message = if core.has_work() {
            // Between two slices of training, look for a message without waiting for one.
            let tick = gloo::timers::future::TimeoutFuture::new(0);
            match select(scope.next(), tick).await {
                Either::Left((message, _)) => message,
                Either::Right(_) => {
                    let replies = core.train_slice().await;
                    let saved = persistence.after(&core, None, &replies).await;
                    let changed = core.backend_change();
                    if !send_all(&mut scope, replies.into_iter().chain(changed).chain(saved)).await {
                        return;
                    }
                    continue;
                }
            }
        } else {
            scope.next().await
        };
        let Some(message) = message else { break };
        let removed = match &message {
            ToWorker::RemoveSample { sample_id } => Some(*sample_id),
            _ => None,
        };
        let replies: Vec<FromWorker> = match message {
            ToWorker::LoadModel { manifest_url, backend } => {
                let ready = load(&mut core, &manifest_url, backend, &mut scope).await;
                let listed = backbones::list_backbones(&manifest_url).await;
                if let FromWorker::BackbonesListed { options } = &listed {
                    persistence.set_models(manifest_url, options.iter().map(|o| o.architecture).collect());
                }
                vec![ready, listed]
            }
            other => match persistence.handle(&mut core, other, &mut scope).await {
                Ok(replies) => replies,
                Err(other) => core.handle(other).await.into_iter().collect(),
            },
        };
        let saved = persistence.after(&core, removed, &replies).await;
        // A GPU failure while answering: say so before the answer the CPU gave.
        if !send_all(&mut scope, core.backend_change().into_iter().chain(replies).chain(saved)).await {
            return;
        }
    }
}

/// Sends every message; `false` when the page has gone.
async fn send_all(scope: &mut Scope, messages: impl Iterator<Item = FromWorker>) -> bool {
    for message in messages {
        if scope.send(message).await.is_err() {
            return false;
        }
    }
    true
}

async fn load(core: &mut WorkerCore, manifest_url: &str, backend: BackendChoice, scope: &mut Scope) -> FromWorker {
    let started = now_millis();
    match model::load_model(manifest_url, scope).await {
        Ok(model) => core.set_model(model, backend, now_millis() - started).await,
        Err(message) => FromWorker::LoadFailed { message },
    }
}
