//! The model worker: owns the engine. Loads the backbone, classifies with its pretrained
//! classifier (smoke path), embeds training examples once and keeps them, trains heads in
//! time slices while staying responsive to `StopTraining`, predicts with the trained head,
//! and exports and imports what a project saves. Runs in a Web Worker (`graft-worker`
//! binary), so the page never computes.
//!
//! - `core.rs`      message dispatch (testable natively)
//! - `model.rs`     fetching and building the model
//! - `backbones.rs` the backbones the site serves: switching, ranking by LogME
//! - `samples.rs`   stored images and the embedding cache; making a new sample
//! - `pool.rs`      the embedding pool's sizing, messages and schedule (in submission order)
//! - `embedder.rs`  the pool's Web Workers: started and fed here, and their own loop
//! - `training.rs`  the training scheduler
//! - `persist.rs`   the open project and its autosave (answers the project messages)
//! - `locks.rs`     one editor per project across tabs (Web Locks)
//! - `records.rs`   the stored values' layout: parts and their checksum
//! - `storage.rs`   IndexedDB: one record per project, sample, embedding and weights file

pub mod backbones;
pub mod core;
pub mod embedder;
pub mod locks;
pub mod model;
pub mod persist;
pub mod pool;
pub mod records;
pub mod samples;
pub mod storage;
pub mod training;

use futures::{SinkExt, StreamExt};
use graft::gpu::BackendChoice;
use yew_agent::prelude::*;

use self::core::WorkerCore;
use self::embedder::EmbedPool;
use self::persist::Persistence;
use crate::protocol::{FromWorker, ToWorker};

type Scope = ReactorScope<ToWorker, FromWorker>;

pub use crate::clock::now_millis;

/// What the loop takes next.
enum Next {
    Message(Option<Box<ToWorker>>),
    /// An embedder of the pool answered.
    Pool,
    /// Time for a slice of training.
    Slice,
    /// Another tab took over a project this one held.
    LockLost(locks::LockLost),
    /// Saving is paused for want of space: time to try again.
    Retry,
}

/// How often writes that waited for space are tried again (ms), besides at every change.
const RETRY_MS: u32 = 5_000;

async fn next(scope: &mut Scope, pool: &mut EmbedPool, persistence: &mut Persistence, training: bool) -> Next {
    use futures::FutureExt;
    // Between two slices of training, look for a message without waiting for one.
    let slice = async {
        match training {
            true => gloo::timers::future::TimeoutFuture::new(0).await,
            false => futures::future::pending().await,
        }
    };
    let paused = persistence.is_paused();
    let retry = async move {
        match paused {
            true => gloo::timers::future::TimeoutFuture::new(RETRY_MS).await,
            false => futures::future::pending().await,
        }
    };
    futures::select_biased! {
        message = scope.next().fuse() => Next::Message(message.map(Box::new)),
        () = pool.next_event().fuse() => Next::Pool,
        () = slice.fuse() => Next::Slice,
        lost = persistence.next_lost().fuse() => Next::LockLost(lost),
        () = retry.fuse() => Next::Retry,
    }
}

#[reactor(GraftWorker)]
pub async fn graft_worker(mut scope: Scope) {
    let mut core = WorkerCore::new(now_millis);
    let mut persistence = Persistence::open().await;
    let mut pool = EmbedPool::default();
    // The first manifest loaded; the other backbones' sit beside it.
    let mut base_manifest: Option<String> = None;
    loop {
        let message = match next(&mut scope, &mut pool, &mut persistence, core.has_work()).await {
            Next::Message(Some(message)) => *message,
            Next::Message(None) => break,
            Next::Pool => {
                if !send_pool_answers(&mut core, &mut pool, &mut persistence, &mut scope).await {
                    return;
                }
                continue;
            }
            Next::Retry => {
                let replies = persistence.flush(&core).await;
                if !send_all(&mut scope, replies.into_iter()).await {
                    return;
                }
                continue;
            }
            Next::LockLost(lost) => {
                if !send_all(&mut scope, persistence.lock_lost(lost).into_iter()).await {
                    return;
                }
                continue;
            }
            Next::Slice => {
                let replies = core.train_slice().await;
                let saved = persistence.after(&core, None, &replies).await;
                let changed = core.backend_change();
                if !send_all(&mut scope, replies.into_iter().chain(changed).chain(saved)).await {
                    return;
                }
                continue;
            }
        };
        let message = match message {
            ToWorker::AddSample { sample_id, image }
                if pool.takes_samples(loaded_manifest(&base_manifest, &core).as_deref(), core.on_cpu()) =>
            {
                pool.submit(sample_id, image, now_millis());
                continue;
            }
            other => other,
        };
        // Everything else sees every sample added before it, as with one worker.
        if !drain_pool(&mut core, &mut pool, &mut persistence, &mut scope).await {
            return;
        }
        let removed = match &message {
            ToWorker::RemoveSample { sample_id } => Some(*sample_id),
            _ => None,
        };
        let replies: Vec<FromWorker> = match message {
            ToWorker::LoadModel { manifest_url, backend } => {
                base_manifest = Some(manifest_url.clone());
                let ready = load(&mut core, &manifest_url, backend, &mut scope).await;
                let listed = backbones::list_backbones(&manifest_url).await;
                if let FromWorker::BackbonesListed { options } = &listed {
                    persistence.set_models(manifest_url, options.iter().map(|o| o.architecture).collect());
                }
                vec![ready, listed]
            }
            ToWorker::SetPool { script_url, workers } => {
                vec![FromWorker::PoolChanged { pool: pool.configure(&script_url, workers) }]
            }
            other => match persistence.handle(&mut core, other, &mut scope).await {
                Ok(replies) => replies,
                Err(other) => core.handle(other).await.into_iter().collect(),
            },
        };
        pool.follow(loaded_manifest(&base_manifest, &core));
        let saved = persistence.after(&core, removed, &replies).await;
        // A GPU failure while answering: say so before the answer the CPU gave.
        if !send_all(&mut scope, core.backend_change().into_iter().chain(replies).chain(saved)).await {
            return;
        }
    }
}

/// The manifest of the loaded backbone (beside the first one loaded).
fn loaded_manifest(base: &Option<String>, core: &WorkerCore) -> Option<String> {
    Some(backbones::manifest_url_of(base.as_deref()?, core.architecture()?))
}

/// The answers for the pool's finished samples, in the order they were added; the model
/// worker makes those no embedder is left for.
async fn pool_answers(core: &mut WorkerCore, pool: &mut EmbedPool) -> Vec<FromWorker> {
    for (job_id, image) in pool.orphans() {
        let made = core.make_sample(image).await;
        pool.made_here(job_id, made);
    }
    let finished = pool.finished().into_iter();
    let answers: Vec<FromWorker> = finished.map(|(id, started, made)| core.accept_sample(id, made, started)).collect();
    pool.status_change().map(|pool| FromWorker::PoolChanged { pool }).into_iter().chain(answers).collect()
}

/// Waits until every sample in the pool is answered (and saved); `false` when the page has gone.
async fn drain_pool(
    core: &mut WorkerCore,
    pool: &mut EmbedPool,
    persistence: &mut Persistence,
    scope: &mut Scope,
) -> bool {
    while pool.is_busy() {
        if !pool.has_orphans() {
            pool.next_event().await;
        }
        if !send_pool_answers(core, pool, persistence, scope).await {
            return false;
        }
    }
    true
}

/// Answers (and saves) the pool's finished samples; `false` when the page has gone.
async fn send_pool_answers(
    core: &mut WorkerCore,
    pool: &mut EmbedPool,
    persistence: &mut Persistence,
    scope: &mut Scope,
) -> bool {
    let replies = pool_answers(core, pool).await;
    let saved = persistence.after(core, None, &replies).await;
    send_all(scope, replies.into_iter().chain(saved)).await
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
