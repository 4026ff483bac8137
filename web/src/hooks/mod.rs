//! Side-effect bundles of the page (in the way yew's todomvc example keeps `hooks/`): the
//! camera, recording frames into a class, live prediction, what is done to classes and
//! projects, and a new version of the app.

mod use_camera;
mod use_class_actions;
mod use_live_prediction;
mod use_project_actions;
mod use_recorder;
mod use_update;

pub use use_camera::{use_camera, CameraHandle};
pub use use_class_actions::{input_error, use_class_actions, ClassActions};
pub use use_live_prediction::use_live_prediction;
pub use use_project_actions::{first_project, use_project_actions, ProjectActions};
pub use use_recorder::{use_recorder, RecorderHandle};
pub use use_update::{use_update, UpdateHandle};
