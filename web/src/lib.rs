//! Graft's web front end (Yew) and its model worker. The `graft-app` binary mounts the page;
//! the `graft-worker` binary registers [`worker::GraftWorker`] inside a Web Worker.

pub mod clock;
pub mod components;
pub mod download;
pub mod dropped;
pub mod fetch;
pub mod file_input;
pub mod hooks;
pub mod i18n;
pub use graft::project;
pub mod protocol;
pub mod state;
pub mod webcam;
pub mod worker;
