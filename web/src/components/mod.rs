//! The page's components.

pub mod app;
pub mod backbone_panel;
pub mod check_panel;
pub mod class_card;
pub mod freeze_panel;
pub mod held_elsewhere;
pub mod image_drop;
pub mod language_picker;
pub mod metrics;
pub mod model_status;
pub mod pool_picker;
pub mod predict_panel;
pub mod project_bar;
pub mod projector_toggle;
pub mod setting_input;
pub mod top_predictions;
pub mod tour;
pub mod train_panel;
pub mod transfer_check;
pub mod webcam_panel;

pub use app::App;
