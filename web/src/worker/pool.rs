//! The embedding pool: engine workers, each with its own wasm instance and folded weights,
//! that decode, store and embed new samples in parallel while the model worker keeps the
//! samples, the head and the page's messages.
//!
//! ```text
//! page --AddSample--> model worker --Embed{job}--> embedder 0 ┐  (least loaded first,
//!                         ^   (in submission order)  embedder 1 ├  at most DEPTH each)
//!                         └──────Embedded{job}─────  embedder k ┘
//! ```
//!
//! - **Sizing** ([`pool_size`]): one embedder per core (`navigator.hardwareConcurrency`, at
//!   most [`MAX_WORKERS`]), fewer when a quarter of the device's memory cannot hold them at
//!   [`EMBEDDER_BUDGET`] each, and one (the model worker itself, no copy of the weights) on
//!   a single core or under [`MIN_DEVICE_GB`]. The user may ask for fewer or more workers,
//!   within the same memory cap.
//! - **Order** ([`Schedule`]): results come back in any order; the model worker keeps them
//!   in the order the samples were added, so the project, the store and the page see the
//!   same sequence as with one worker.
//! - **Barrier**: every message other than `AddSample` waits until the pool has finished
//!   (the worker loop drains it first), so removing, training, saving or switching the
//!   backbone sees every sample added before it, as with one worker.
//! - **Failure**: an embedder that crashes or cannot load is dropped and its jobs go to the
//!   others; with none left, the model worker embeds them itself, and the page is told.
//! - **Deadline** ([`Schedule::hung`]): an embedder whose oldest job has run longer than
//!   [`HANG_FACTOR`] times the measured time per image (at least [`MIN_DEADLINE_MS`]) has
//!   stopped answering: it is terminated, its jobs go to the others, and a new embedder takes
//!   its place. A result from a dropped embedder is ignored, so no sample is made twice.
//!
//! The embedders run the model worker's own script (`graft-worker.js` or its relaxed-SIMD
//! twin): the binary starts [`super::embedder`] when its worker is named [`EMBEDDER_NAME`].

use std::collections::BTreeMap;

use graft::backbone::BackboneKey;
use serde::{Deserialize, Serialize};

use super::samples::StoredSample;
use crate::protocol::ImageData;
use graft::message::UserMessage;

/// The name an embedder's Web Worker is started with.
pub const EMBEDDER_NAME: &str = "graft-embedder";
/// Embedders at most, however many cores.
pub const MAX_WORKERS: u32 = 8;
/// Memory one embedder may use: its wasm instance with the folded weights (14 MB for
/// MobileNetV2, 18 MB for EfficientNet-Lite0), one image's buffers, and a 12-megapixel photo
/// decoded. Measured (the pool's figure on the page, `pool.test.mjs`): 46 MB each once
/// MobileNetV2 is loaded, 136 MB each after 4032x3024 JPEGs.
pub const EMBEDDER_BUDGET: u64 = 160 << 20;
/// Below this much device memory (GB, `navigator.deviceMemory`) the model worker embeds alone.
pub const MIN_DEVICE_GB: f64 = 2.0;
/// Device memory assumed where the browser does not say (Firefox, Safari), in GB.
const UNKNOWN_DEVICE_GB: f64 = 4.0;
/// Jobs in flight per embedder: one computing, one waiting in its queue, so it never idles
/// for the round trip; the rest wait in the model worker, where a lost embedder cannot take
/// them down.
const DEPTH: usize = 2;
/// An embedder's oldest job may take this many times the measured time per image...
pub const HANG_FACTOR: f64 = 20.0;
/// ...and never less than this (a 12-megapixel JPEG decodes in about a second on a phone).
pub const MIN_DEADLINE_MS: f64 = 12_000.0;
/// Time per image assumed before one is measured.
const FIRST_MS_PER_IMAGE: f64 = 500.0;

/// Model worker -> embedder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToEmbedder {
    /// Fetch and build the backbone of this manifest (dropping the one before).
    Load {
        manifest_url: String,
    },
    Embed {
        job_id: u64,
        image: ImageData,
    },
}

/// Embedder -> model worker. `memory_bytes`: the embedder's wasm memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromEmbedder {
    /// Listening: messages sent before this would be lost, so the pool holds them till then.
    Started,
    Loaded {
        key: BackboneKey,
        memory_bytes: u64,
    },
    LoadFailed {
        message: UserMessage,
    },
    Embedded {
        job_id: u64,
        key: BackboneKey,
        sample: StoredSample,
        row: Vec<f32>,
        memory_bytes: u64,
    },
    EmbedFailed {
        job_id: u64,
        message: UserMessage,
    },
}

/// A sample as an embedder (or the model worker) made it: the backbone that embedded it,
/// the stored sample and its features; or why it could not be made.
pub type Made = Result<(BackboneKey, (StoredSample, Vec<f32>)), UserMessage>;

/// How many embedders to run, and why not more.
pub fn pool_size(cores: u32, device_gb: Option<f64>, requested: Option<u32>) -> (u32, Option<UserMessage>) {
    let device_gb = device_gb.unwrap_or(UNKNOWN_DEVICE_GB);
    if device_gb < MIN_DEVICE_GB {
        return (1, Some(UserMessage::new("pool-note-little-memory").arg("gigabytes", device_gb)));
    }
    let by_memory = ((device_gb * f64::from(1u32 << 30) / 4.0) as u64 / EMBEDDER_BUDGET).max(1) as u32;
    let wanted = requested.unwrap_or(cores.max(1)).clamp(1, MAX_WORKERS);
    if wanted > by_memory {
        let note = UserMessage::new("pool-note-memory").arg("workers", by_memory).arg("gigabytes", device_gb);
        return (by_memory, Some(note));
    }
    (wanted, None)
}

/// One sample's trip through the pool.
struct Job {
    sample_id: u64,
    image: ImageData,
    /// When the page's message arrived (ms), for the answer's timing.
    started: f64,
    /// The embedder computing it.
    on: Option<usize>,
    made: Option<Made>,
}

/// The pool's bookkeeping, apart from the Web Workers (so that it is tested natively): which
/// embedder computes which job, and the results in submission order.
#[derive(Default)]
pub struct Schedule {
    /// Jobs by id; ids grow, so this is submission order.
    jobs: BTreeMap<u64, Job>,
    next_job: u64,
    /// Per embedder: live, started (listening: only then does it get jobs, so that one whose
    /// script never runs holds none), and its jobs in flight.
    live: Vec<bool>,
    started: Vec<bool>,
    in_flight: Vec<usize>,
    /// Per embedder: it holds the backbone (before, its jobs wait behind the download, which
    /// has no deadline), and since when (ms) its oldest job in flight has been its to make.
    loaded: Vec<bool>,
    since: Vec<f64>,
    /// Measured time per image (ms, moving average), for the deadline.
    ms_per_image: f64,
}

impl Schedule {
    pub fn new(embedders: usize) -> Self {
        let mut schedule = Self { ms_per_image: FIRST_MS_PER_IMAGE, ..Self::default() };
        (0..embedders).for_each(|_| {
            schedule.add_embedder();
        });
        schedule
    }

    /// One more embedder (not started yet); its index.
    pub fn add_embedder(&mut self) -> usize {
        self.live.push(true);
        self.started.push(false);
        self.in_flight.push(0);
        self.loaded.push(false);
        self.since.push(0.0);
        self.live.len() - 1
    }

    /// `embedder` holds the backbone (`true`) or is loading another (`false`): its oldest job's
    /// time starts now.
    pub fn set_loaded(&mut self, embedder: usize, loaded: bool, now: f64) {
        if let (Some(flag), Some(since)) = (self.loaded.get_mut(embedder), self.since.get_mut(embedder)) {
            (*flag, *since) = (loaded, now);
        }
    }

    /// How long an embedder's oldest job may take before it counts as hung (ms).
    pub fn deadline(&self) -> f64 {
        (HANG_FACTOR * self.ms_per_image).max(MIN_DEADLINE_MS)
    }

    /// The working embedders that hold the backbone and whose oldest job is past the deadline.
    pub fn hung(&self, now: f64) -> Vec<usize> {
        let late = |e: &usize| self.working(*e) && self.loaded[*e] && self.in_flight[*e] > 0;
        (0..self.live.len()).filter(late).filter(|&e| now - self.since[e] > self.deadline()).collect()
    }

    pub fn live_embedders(&self) -> usize {
        self.live.iter().filter(|&&live| live).count()
    }

    /// `embedder` is listening: it may take jobs.
    pub fn start(&mut self, embedder: usize) {
        if let Some(started) = self.started.get_mut(embedder) {
            *started = true;
        }
    }

    fn working(&self, embedder: usize) -> bool {
        self.live[embedder] && self.started[embedder]
    }

    /// Embedders that are live and have started: those that make jobs.
    pub fn working_embedders(&self) -> usize {
        (0..self.live.len()).filter(|&e| self.working(e)).count()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    pub fn submit(&mut self, sample_id: u64, image: ImageData, started: f64) {
        self.next_job += 1;
        self.jobs.insert(self.next_job, Job { sample_id, image, started, on: None, made: None });
    }

    /// The jobs to send now, `(embedder, job_id, image)`: waiting jobs in order, each to the
    /// working embedder with the fewest in flight while one has fewer than [`DEPTH`].
    pub fn dispatch(&mut self, now: f64) -> Vec<(usize, u64, ImageData)> {
        let mut sends = Vec::new();
        for (&job_id, job) in self.jobs.iter_mut().filter(|(_, job)| job.on.is_none() && job.made.is_none()) {
            // The fields, not `working`: the jobs are borrowed mutably.
            let working = |e: usize| self.live[e] && self.started[e];
            let least = (0..self.live.len()).filter(|&e| working(e)).min_by_key(|&e| self.in_flight[e]);
            let Some(embedder) = least.filter(|&e| self.in_flight[e] < DEPTH) else { break };
            if self.in_flight[embedder] == 0 {
                self.since[embedder] = now;
            }
            self.in_flight[embedder] += 1;
            job.on = Some(embedder);
            sends.push((embedder, job_id, job.image.clone()));
        }
        sends
    }

    /// `embedder` finished `job_id`. A result from an embedder that was dropped meanwhile
    /// (its job went elsewhere) is ignored.
    pub fn complete(&mut self, embedder: usize, job_id: u64, made: Made, now: f64) {
        let Some(job) = self.jobs.get_mut(&job_id).filter(|job| job.on == Some(embedder)) else { return };
        job.on = None;
        job.made = Some(made);
        self.in_flight[embedder] -= 1;
        if self.loaded[embedder] {
            // The job's own time: from when it became the oldest (the next one's starts now).
            let took = now - self.since[embedder];
            self.ms_per_image = 0.7 * self.ms_per_image + 0.3 * took.max(0.0);
        }
        self.since[embedder] = now;
    }

    /// Drops `embedder`; its jobs wait for another one.
    pub fn lose(&mut self, embedder: usize) {
        if !self.live.get(embedder).copied().unwrap_or(false) {
            return;
        }
        self.live[embedder] = false;
        self.in_flight[embedder] = 0;
        self.jobs.values_mut().filter(|job| job.on == Some(embedder)).for_each(|job| job.on = None);
    }

    /// Whether jobs wait that no embedder will make (none is working: lost, or never started).
    pub fn has_orphans(&self) -> bool {
        self.working_embedders() == 0 && self.jobs.values().any(|job| job.made.is_none())
    }

    /// The jobs no embedder will make (none is working): `(job_id, image)`, for the model
    /// worker. None is in flight then: only working embedders get jobs, and a lost one's
    /// jobs wait again.
    pub fn orphans(&self) -> Vec<(u64, ImageData)> {
        if self.working_embedders() > 0 {
            return Vec::new();
        }
        let waiting = self.jobs.iter().filter(|(_, job)| job.made.is_none());
        waiting.map(|(&id, job)| (id, job.image.clone())).collect()
    }

    /// Sets the result of an orphan the model worker made.
    pub fn made_here(&mut self, job_id: u64, made: Made) {
        if let Some(job) = self.jobs.get_mut(&job_id) {
            job.made = Some(made);
        }
    }

    /// The finished samples at the front, in submission order: `(sample_id, started, made)`.
    pub fn finished(&mut self) -> Vec<(u64, f64, Made)> {
        let mut done = Vec::new();
        while let Some(mut entry) = self.jobs.first_entry() {
            let Some(made) = entry.get_mut().made.take() else { break };
            let job = entry.remove();
            done.push((job.sample_id, job.started, made));
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft::backbone::Architecture;

    fn frame(shade: u8) -> ImageData {
        ImageData::Frame { width: 1, height: 1, rgba: vec![shade, shade, shade, 255] }
    }

    fn made(shade: u8) -> Made {
        let key = BackboneKey { architecture: Architecture::DEFAULT, weights_sha256: "ab".into() };
        let picture =
            graft::preprocess::StoredImage { mime: "image/png".into(), width: 1, height: 1, bytes: vec![shade] };
        Ok((key, (StoredSample { image: picture.clone(), thumbnail: picture }, vec![f32::from(shade)])))
    }

    #[test]
    fn the_pool_has_a_worker_per_core_within_a_quarter_of_the_memory() {
        assert_eq!(pool_size(8, Some(8.0), None), (8, None));
        assert_eq!(pool_size(16, Some(8.0), None).0, MAX_WORKERS);
        // A 4 GB Chromebook with 8 cores: 1 GB for the pool.
        let (workers, note) = pool_size(8, Some(4.0), None);
        assert_eq!(workers, 6);
        assert_eq!(note.unwrap().id, "pool-note-memory");
        assert_eq!(pool_size(1, Some(8.0), None), (1, None));
        assert_eq!(pool_size(4, Some(1.0), None).0, 1);
        assert_eq!(pool_size(8, Some(8.0), Some(2)), (2, None));
        assert_eq!(pool_size(2, Some(8.0), Some(4)), (4, None));
        assert_eq!(pool_size(4, None, None), (4, None));
    }

    fn started(embedders: usize) -> Schedule {
        let mut schedule = Schedule::new(embedders);
        (0..embedders).for_each(|e| schedule.start(e));
        schedule
    }

    #[test]
    fn jobs_go_to_the_least_loaded_embedder_and_come_back_in_order() {
        let mut schedule = started(2);
        for id in 0..6 {
            schedule.submit(100 + id, frame(id as u8), 0.0);
        }
        let sent = schedule.dispatch(0.0);
        let placed: Vec<(usize, u64)> = sent.iter().map(|(e, job, _)| (*e, *job)).collect();
        assert_eq!(placed, vec![(0, 1), (1, 2), (0, 3), (1, 4)], "two in flight each, alternating");
        assert!(schedule.dispatch(0.0).is_empty(), "both are full");
        schedule.complete(1, 2, made(2), 0.0);
        assert!(schedule.finished().is_empty(), "job 1 is still computing");
        assert_eq!(schedule.dispatch(0.0).iter().map(|(e, job, _)| (*e, *job)).collect::<Vec<_>>(), vec![(1, 5)]);
        schedule.complete(0, 1, made(1), 0.0);
        let done: Vec<u64> = schedule.finished().into_iter().map(|(sample, _, _)| sample).collect();
        assert_eq!(done, vec![100, 101]);
    }

    #[test]
    fn a_lost_embedders_jobs_go_to_the_others_then_to_the_model_worker() {
        let mut schedule = started(2);
        for id in 0..3 {
            schedule.submit(id, frame(id as u8), 0.0);
        }
        schedule.dispatch(0.0);
        schedule.lose(0);
        // Its late answer is ignored; job 1 is computed again by embedder 1.
        schedule.complete(0, 1, made(9), 0.0);
        let again: Vec<(usize, u64)> = schedule.dispatch(0.0).iter().map(|(e, job, _)| (*e, *job)).collect();
        assert_eq!(again, vec![(1, 1)]);
        assert!(schedule.orphans().is_empty() && !schedule.has_orphans());
        schedule.lose(1);
        assert!(schedule.has_orphans());
        let orphans: Vec<u64> = schedule.orphans().into_iter().map(|(job, _)| job).collect();
        assert_eq!(orphans, vec![1, 2, 3]);
        for job in orphans {
            schedule.made_here(job, made(job as u8));
        }
        let done = schedule.finished();
        assert_eq!(done.len(), 3);
        assert!(schedule.is_empty());
        let rows: Vec<f32> = done.into_iter().map(|(_, _, made)| made.unwrap().1 .1[0]).collect();
        assert_eq!(rows, vec![1.0, 2.0, 3.0], "the lost embedder's late row was not kept");
    }

    #[test]
    fn only_started_embedders_get_jobs_and_without_one_the_model_worker_makes_them() {
        let mut schedule = Schedule::new(2);
        schedule.submit(7, frame(7), 0.0);
        assert!(schedule.dispatch(0.0).is_empty(), "neither has started");
        assert!(schedule.has_orphans(), "so the model worker makes the job rather than wait");
        schedule.start(1);
        assert!(!schedule.has_orphans());
        let sent: Vec<(usize, u64)> = schedule.dispatch(0.0).iter().map(|(e, job, _)| (*e, *job)).collect();
        assert_eq!(sent, vec![(1, 1)], "to the one that started");
        // The started one is lost; the other never starts: its job is not left waiting.
        schedule.lose(1);
        assert_eq!(schedule.orphans().into_iter().map(|(job, _)| job).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn an_embedder_past_its_deadline_is_hung_and_its_replacement_takes_the_jobs() {
        let mut schedule = started(2);
        (0..2).for_each(|e| schedule.set_loaded(e, true, 0.0));
        for id in 0..4 {
            schedule.submit(id, frame(id as u8), 0.0);
        }
        schedule.dispatch(1_000.0);
        // Embedder 1 answers every 100 ms; embedder 0 never does.
        for (job, at) in [(2, 1_100.0), (4, 1_200.0)] {
            schedule.complete(1, job, made(job as u8), at);
        }
        assert!(schedule.deadline() >= MIN_DEADLINE_MS);
        assert!(schedule.hung(1_000.0 + MIN_DEADLINE_MS - 1.0).is_empty(), "not yet");
        assert_eq!(schedule.hung(1_000.0 + MIN_DEADLINE_MS + 1.0), vec![0]);
        // An embedder still loading its backbone is not hung, however long the download.
        schedule.set_loaded(1, false, 0.0);
        schedule.lose(0);
        let new = schedule.add_embedder();
        assert!(schedule.hung(1e9).is_empty());
        schedule.start(new);
        schedule.set_loaded(new, true, 20_000.0);
        let sent: Vec<(usize, u64)> = schedule.dispatch(20_000.0).iter().map(|(e, job, _)| (*e, *job)).collect();
        assert_eq!(sent, vec![(1, 1), (new, 3)], "the hung one's jobs went to the others");
        schedule.complete(0, 1, made(9), 20_001.0);
        for (embedder, job) in [(1, 1), (new, 3)] {
            schedule.complete(embedder, job, made(job as u8), 20_050.0);
        }
        let rows: Vec<f32> = schedule.finished().into_iter().map(|(_, _, made)| made.unwrap().1 .1[0]).collect();
        assert_eq!(rows, vec![1.0, 2.0, 3.0, 4.0], "each once, none from the dropped embedder");
        assert!(schedule.hung(1e9).is_empty());
    }
}
