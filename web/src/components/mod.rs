//! The page's components.

pub mod app;
pub mod image_drop;
pub mod model_status;
pub mod top_predictions;

pub use app::App;
