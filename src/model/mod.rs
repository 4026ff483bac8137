//! Heads: the modules that turn pooled backbone features into class scores, built from
//! `VarBuilder`s whose prefixes match the checkpoint names. Backbones live in
//! [`crate::backbone`].

pub mod head;
pub mod mlp_head;
pub mod names;

pub use head::LinearHead;
pub use mlp_head::{MlpHead, MlpHeadSpec};
