//! The embedding pool's Web Workers: [`EmbedPool`] starts and feeds them from the model
//! worker, [`run_embedder`] is their side. Messages are bincode bytes whose buffer is
//! transferred, not copied. See `pool.rs` for the scheduling.

use futures::channel::mpsc;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{
    Blob, BlobPropertyBag, DedicatedWorkerGlobalScope, ErrorEvent, MessageEvent, Url, Worker, WorkerOptions,
};

use super::model::{load_model, Model};
use super::now_millis;
use super::pool::{pool_size, FromEmbedder, Made, Schedule, ToEmbedder, EMBEDDER_NAME};
use super::samples::make_sample;
use crate::protocol::{ImageData, PoolStatus};
use graft::message::UserMessage;

/// How often the pool looks for an embedder past its deadline while jobs are out (ms).
const DEADLINE_CHECK_MS: u32 = 1_000;

fn encode(message: &impl Serialize) -> Result<js_sys::Uint8Array, UserMessage> {
    let bytes =
        bincode::serialize(message).map_err(|e| UserMessage::verbatim(format!("cannot encode a pool message: {e}")))?;
    Ok(js_sys::Uint8Array::from(bytes.as_slice()))
}

fn decode<T: DeserializeOwned>(data: JsValue) -> Result<T, UserMessage> {
    let bytes =
        data.dyn_into::<js_sys::Uint8Array>().map_err(|_| UserMessage::verbatim("a pool message is not bytes"))?;
    bincode::deserialize(&bytes.to_vec()).map_err(|e| UserMessage::verbatim(format!("cannot read a pool message: {e}")))
}

/// Bytes of this wasm instance's memory (it only grows).
fn memory_bytes() -> u64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64
}

/// Whether this Web Worker was started as an embedder.
pub fn is_embedder() -> bool {
    js_sys::global().dyn_into::<DedicatedWorkerGlobalScope>().is_ok_and(|scope| scope.name() == EMBEDDER_NAME)
}

/// The embedder: loads the backbone it is told to, and makes the samples it is sent, one at a
/// time in the order they came.
pub fn run_embedder() {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let (inbox, mut messages) = mpsc::unbounded::<JsValue>();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let _ = inbox.unbounded_send(event.data());
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    post(&scope, &FromEmbedder::Started);
    wasm_bindgen_futures::spawn_local(async move {
        let mut model: Option<Model> = None;
        while let Some(data) = messages.next().await {
            let reply = match decode::<ToEmbedder>(data) {
                Ok(ToEmbedder::Load { manifest_url }) => {
                    model = None;
                    match load_model(&manifest_url, &mut futures::sink::drain()).await {
                        Ok(loaded) => {
                            let key = loaded.extractor.key().clone();
                            model = Some(loaded);
                            FromEmbedder::Loaded { key, memory_bytes: memory_bytes() }
                        }
                        Err(message) => FromEmbedder::LoadFailed { message },
                    }
                }
                Ok(ToEmbedder::Embed { job_id, image }) => embed(model.as_ref(), job_id, image).await,
                Err(message) => FromEmbedder::LoadFailed { message },
            };
            post(&scope, &reply);
        }
    });
}

fn post(scope: &DedicatedWorkerGlobalScope, message: &FromEmbedder) {
    if let Ok(bytes) = encode(message) {
        let _ = scope.post_message_with_transfer(&bytes, &js_sys::Array::of1(&bytes.buffer()));
    }
}

async fn embed(model: Option<&Model>, job_id: u64, image: ImageData) -> FromEmbedder {
    let Some(model) = model else {
        return FromEmbedder::EmbedFailed { job_id, message: UserMessage::verbatim("the embedder has no model") };
    };
    match make_sample(&model.extractor, image).await {
        Ok((sample, row)) => FromEmbedder::Embedded {
            job_id,
            key: model.extractor.key().clone(),
            sample,
            row,
            memory_bytes: memory_bytes(),
        },
        Err(message) => FromEmbedder::EmbedFailed { job_id, message },
    }
}

/// What an embedder's Web Worker said: a message, or that it crashed.
enum Event {
    Message(FromEmbedder),
    Crashed(UserMessage),
}

struct Embedder {
    worker: Worker,
    /// Wasm memory it last reported.
    memory_bytes: u64,
    /// It holds the backbone of the pool's manifest.
    loaded: bool,
    /// Messages for it until it has started listening (then `None`).
    held: Option<Vec<ToEmbedder>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

impl Drop for Embedder {
    fn drop(&mut self) {
        self.worker.terminate();
    }
}

/// `(generation, embedder, event)`: events of a pool replaced since are ignored.
type Envelope = (u32, usize, Event);

/// The model worker's side of the pool.
pub struct EmbedPool {
    embedders: Vec<Embedder>,
    schedule: Schedule,
    generation: u32,
    sender: mpsc::UnboundedSender<Envelope>,
    events: mpsc::UnboundedReceiver<Envelope>,
    /// The manifest the embedders were told to load.
    manifest_url: Option<String>,
    /// The script embedders run (for replacing a hung one).
    script_url: String,
    status: PoolStatus,
    /// The page has not seen `status` yet.
    status_changed: bool,
}

impl Default for EmbedPool {
    fn default() -> Self {
        let (sender, events) = mpsc::unbounded();
        let status = PoolStatus { workers: 1, loaded: 1, cores: 1, device_gb: None, memory_bytes: 0, note: None };
        Self {
            embedders: Vec::new(),
            schedule: Schedule::default(),
            generation: 0,
            sender,
            events,
            manifest_url: None,
            script_url: String::new(),
            status,
            status_changed: false,
        }
    }
}

/// This device's logical cores and memory (GB; Chromium says, rounded and at most 8).
fn device() -> (u32, Option<f64>) {
    let Ok(scope) = js_sys::global().dyn_into::<web_sys::WorkerGlobalScope>() else { return (1, None) };
    let navigator = scope.navigator();
    let memory = js_sys::Reflect::get(&navigator, &"deviceMemory".into()).ok().and_then(|v| v.as_f64());
    (navigator.hardware_concurrency() as u32, memory)
}

/// A Web Worker running `script_url` (a wasm-bindgen `no-modules` script) as an embedder.
fn spawn_worker(script_url: &str) -> Result<Worker, JsValue> {
    let wasm_url = script_url.replace(".js", "_bg.wasm");
    let source = js_sys::Array::of1(&format!(r#"importScripts("{script_url}");wasm_bindgen("{wasm_url}");"#).into());
    let options = BlobPropertyBag::new();
    options.set_type("application/javascript");
    let blob = Blob::new_with_str_sequence_and_options(&source, &options)?;
    let url = Url::create_object_url_with_blob(&blob)?;
    let worker_options = WorkerOptions::new();
    worker_options.set_name(EMBEDDER_NAME);
    Worker::new_with_options(&url, &worker_options)
}

impl EmbedPool {
    /// Starts the pool for `script_url` (the model worker's own script): `requested`
    /// embedders, or one per core, within the memory cap. Waits for the samples in flight.
    pub fn configure(&mut self, script_url: &str, requested: Option<u32>) -> PoolStatus {
        let (cores, device_gb) = device();
        let (mut workers, mut note) = pool_size(cores, device_gb, requested);
        self.embedders.clear();
        self.generation += 1;
        self.script_url = script_url.to_string();
        if workers > 1 {
            for index in 0..workers as usize {
                match self.start(script_url, index) {
                    Ok(embedder) => self.embedders.push(embedder),
                    Err(e) => {
                        note = Some(UserMessage::new("pool-note-no-start").arg("detail", format!("{e:?}")));
                        self.embedders.clear();
                        break;
                    }
                }
            }
            workers = self.embedders.len().max(1) as u32;
        }
        self.schedule = Schedule::new(self.embedders.len());
        if let Some(url) = self.manifest_url.take() {
            self.follow(Some(url));
        }
        let loaded = if self.embedders.is_empty() { 1 } else { 0 };
        self.status = PoolStatus { workers, loaded, cores, device_gb, memory_bytes: 0, note };
        self.status.clone()
    }

    fn start(&self, script_url: &str, index: usize) -> Result<Embedder, JsValue> {
        let worker = spawn_worker(script_url)?;
        let (sender, generation) = (self.sender.clone(), self.generation);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let event = match decode::<FromEmbedder>(event.data()) {
                Ok(message) => Event::Message(message),
                Err(message) => Event::Crashed(message),
            };
            let _ = sender.unbounded_send((generation, index, event));
        });
        let sender = self.sender.clone();
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |event: ErrorEvent| {
            let _ = sender.unbounded_send((generation, index, Event::Crashed(UserMessage::verbatim(event.message()))));
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Embedder {
            worker,
            memory_bytes: 0,
            loaded: false,
            held: Some(Vec::new()),
            _on_message: on_message,
            _on_error: on_error,
        })
    }

    /// Has the embedders load the backbone of `manifest_url` (the model worker's), if they
    /// hold another.
    pub fn follow(&mut self, manifest_url: Option<String>) {
        if manifest_url == self.manifest_url {
            return;
        }
        if let Some(url) = &manifest_url {
            for index in 0..self.embedders.len() {
                self.embedders[index].loaded = false;
                self.schedule.set_loaded(index, false, now_millis());
                self.send(index, ToEmbedder::Load { manifest_url: url.clone() });
            }
            self.note_loaded();
        }
        self.manifest_url = manifest_url;
    }

    fn send(&mut self, index: usize, message: ToEmbedder) {
        if let Some(held) = &mut self.embedders[index].held {
            held.push(message);
            return;
        }
        let sent = encode(&message).and_then(|bytes| {
            let transfer = js_sys::Array::of1(&bytes.buffer());
            self.embedders[index]
                .worker
                .post_message_with_transfer(&bytes, &transfer)
                .map_err(|e| UserMessage::verbatim(format!("{e:?}")))
        });
        if let Err(message) = sent {
            self.lose(index, message);
        }
    }

    /// Whether new samples go to the embedders: some have started and are live, they hold the
    /// backbone of `manifest_url`, and the model worker computes on the CPU (a GPU embeds
    /// faster alone). Until one has started, the model worker makes samples itself.
    pub fn takes_samples(&self, manifest_url: Option<&str>, on_cpu: bool) -> bool {
        on_cpu
            && self.schedule.working_embedders() > 0
            && manifest_url.is_some()
            && self.manifest_url.as_deref() == manifest_url
    }

    pub fn submit(&mut self, sample_id: u64, image: ImageData, started: f64) {
        self.schedule.submit(sample_id, image, started);
        self.dispatch();
    }

    fn dispatch(&mut self) {
        for (index, job_id, image) in self.schedule.dispatch(now_millis()) {
            self.send(index, ToEmbedder::Embed { job_id, image });
        }
    }

    fn lose(&mut self, index: usize, why: UserMessage) {
        self.schedule.lose(index);
        self.embedders[index].worker.terminate();
        self.embedders[index].loaded = false;
        self.embedders[index].memory_bytes = 0;
        self.note_loaded();
        let live = self.schedule.live_embedders();
        self.status.workers = live.max(1) as u32;
        self.status.note = Some(UserMessage::new("pool-note-lost").arg("why", why).arg("live", live));
        self.status_changed = true;
    }

    /// Whether samples are still in the pool.
    pub fn is_busy(&self) -> bool {
        !self.schedule.is_empty()
    }

    /// Terminates the embedders past their deadline (their jobs go to the others) and starts
    /// one in each one's place; whether there was one.
    fn replace_hung(&mut self) -> bool {
        let hung = self.schedule.hung(now_millis());
        for &index in &hung {
            let seconds = (self.schedule.deadline() / 1000.0).round();
            self.lose(index, UserMessage::new("pool-note-hung").arg("seconds", seconds));
            // The embedders and the schedule's slots grow together: a new index for the new one.
            let index = self.embedders.len();
            match self.start(&self.script_url, index) {
                Ok(embedder) => {
                    self.schedule.add_embedder();
                    self.embedders.push(embedder);
                    if let Some(url) = self.manifest_url.clone() {
                        self.send(index, ToEmbedder::Load { manifest_url: url });
                    }
                    self.status.workers = self.schedule.live_embedders() as u32;
                    self.status.note = Some(UserMessage::new("pool-note-replaced").arg("seconds", seconds));
                }
                // Without a replacement, the others (or the model worker) make its jobs.
                Err(e) => {
                    self.status.note = Some(UserMessage::new("pool-note-no-start").arg("detail", format!("{e:?}")));
                }
            }
        }
        self.dispatch();
        !hung.is_empty()
    }

    /// Waits for the next event from an embedder and takes it in, checking every
    /// [`DEADLINE_CHECK_MS`] while jobs are out that no embedder has stopped answering (never
    /// resolves while the pool has nothing to do).
    pub async fn next_event(&mut self) {
        use futures::FutureExt;
        loop {
            let busy = self.is_busy() && !self.embedders.is_empty();
            let tick = async move {
                match busy {
                    true => gloo::timers::future::TimeoutFuture::new(DEADLINE_CHECK_MS).await,
                    false => futures::future::pending().await,
                }
            };
            let envelope = futures::select_biased! {
                envelope = self.events.next().fuse() => envelope,
                () = tick.fuse() => {
                    if self.replace_hung() {
                        return;
                    }
                    continue;
                }
            };
            let Some((generation, index, event)) = envelope else { return futures::future::pending().await };
            if generation != self.generation {
                continue;
            }
            match event {
                Event::Message(FromEmbedder::Started) => {
                    self.schedule.start(index);
                    for message in self.embedders[index].held.take().unwrap_or_default() {
                        self.send(index, message);
                    }
                }
                Event::Message(FromEmbedder::Embedded { job_id, key, sample, row, memory_bytes }) => {
                    self.note_memory(index, memory_bytes);
                    self.schedule.complete(index, job_id, Ok((key, (sample, row))), now_millis());
                }
                Event::Message(FromEmbedder::EmbedFailed { job_id, message }) => {
                    self.schedule.complete(index, job_id, Err(message), now_millis())
                }
                Event::Message(FromEmbedder::Loaded { memory_bytes, .. }) => {
                    self.embedders[index].loaded = true;
                    self.schedule.set_loaded(index, true, now_millis());
                    self.note_loaded();
                    self.note_memory(index, memory_bytes)
                }
                Event::Message(FromEmbedder::LoadFailed { message }) | Event::Crashed(message) => {
                    self.lose(index, message)
                }
            }
            // Busy embedders' answers keep the tick from firing: look for a hung one here too
            // (this dispatches the waiting jobs).
            self.replace_hung();
            return;
        }
    }

    fn note_loaded(&mut self) {
        if !self.embedders.is_empty() {
            self.status.loaded = self.embedders.iter().filter(|e| e.loaded).count() as u32;
            self.status_changed = true;
        }
    }

    fn note_memory(&mut self, index: usize, bytes: u64) {
        self.embedders[index].memory_bytes = bytes;
        let total = self.embedders.iter().map(|e| e.memory_bytes).sum();
        if total != self.status.memory_bytes {
            self.status.memory_bytes = total;
            self.status_changed = true;
        }
    }

    /// The pool's status, once after each change (an embedder lost, memory grown).
    pub fn status_change(&mut self) -> Option<PoolStatus> {
        std::mem::take(&mut self.status_changed).then(|| self.status.clone())
    }

    /// Whether jobs wait that no embedder is left to make.
    pub fn has_orphans(&self) -> bool {
        self.schedule.has_orphans()
    }

    /// The jobs no embedder is left to make, `(job_id, image)`.
    pub fn orphans(&self) -> Vec<(u64, ImageData)> {
        self.schedule.orphans()
    }

    pub fn made_here(&mut self, job_id: u64, made: Made) {
        self.schedule.made_here(job_id, made);
    }

    /// Finished samples in the order they were added: `(sample_id, started, made)`.
    pub fn finished(&mut self) -> Vec<(u64, f64, Made)> {
        self.schedule.finished()
    }
}
