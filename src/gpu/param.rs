//! A trainable tensor on the GPU: its values, gradient and AdamW moments, one buffer each
//! (`len` floats). The head ([`super::train`]), the unfrozen blocks ([`super::suffix`]) and
//! DANN's domain classifier each keep a list of them; AdamW steps every one after a backward.

use super::GpuContext;

/// A trainable tensor with its gradient and AdamW moments.
pub struct Param {
    pub name: String,
    pub len: usize,
    pub value: wgpu::Buffer,
    pub grad: wgpu::Buffer,
    pub m: wgpu::Buffer,
    pub v: wgpu::Buffer,
}

impl Param {
    /// Uploads `values`, with zero moments.
    pub fn new(context: &GpuContext, name: &str, values: &[f32]) -> Self {
        Self {
            name: name.to_string(),
            len: values.len(),
            value: context.upload(name, values),
            grad: context.storage("grad", (values.len() * 4) as u64),
            m: context.upload("adam m", &vec![0.0; values.len()]),
            v: context.upload("adam v", &vec![0.0; values.len()]),
        }
    }
}
