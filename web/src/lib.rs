//! Graft's web front end (Yew) and its model worker. The `graft-app` binary mounts the page;
//! the `graft-worker` binary registers [`worker::GraftWorker`] inside a Web Worker. The page's
//! modules are behind the `page` feature (on by default), which the worker's build leaves off.

pub mod clock;
#[cfg(feature = "page")]
pub mod components;
#[cfg(feature = "page")]
pub mod download;
#[cfg(feature = "page")]
pub mod dropped;
pub mod fetch;
#[cfg(feature = "page")]
pub mod file_input;
#[cfg(feature = "page")]
pub mod hooks;
#[cfg(feature = "page")]
pub mod i18n;
pub use graft::project;
pub mod protocol;
#[cfg(feature = "page")]
pub mod state;
#[cfg(feature = "page")]
pub mod webcam;
pub mod worker;
