//! Networks: backbones (feature extractors) and heads, built from `VarBuilder`s whose
//! prefixes match the checkpoint names.

pub mod conv_bn;
pub mod depthwise;
pub mod folded;
pub mod head;
pub mod mlp_head;
pub mod mobilenet_v2;

pub use folded::FoldedMobileNetV2;
pub use head::LinearHead;
pub use mlp_head::{MlpHead, MlpHeadSpec};
pub use mobilenet_v2::MobileNetV2;
