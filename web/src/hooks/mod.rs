//! Side-effect bundles of the page (in the way yew's todomvc example keeps `hooks/`): the
//! camera, recording frames into a class, live prediction, and what is done to classes.

mod use_camera;
mod use_class_actions;
mod use_live_prediction;
mod use_project_actions;
mod use_recorder;

pub use use_camera::{use_camera, CameraHandle};
pub use use_class_actions::{input_error, use_class_actions, ClassActions};
pub use use_live_prediction::use_live_prediction;
pub use use_project_actions::{first_project, use_project_actions, ProjectActions};
pub use use_recorder::{use_recorder, RecorderHandle};
