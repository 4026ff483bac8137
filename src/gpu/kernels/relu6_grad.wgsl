// The gradient through a ReLU6, in place: grad[i] = 0 where its output y[i] was clamped
// (y <= 0 or y >= 6). Twin: crate::kernels::backward::relu6_mask.

struct Params {
    len: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) global: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = global.y * groups.x * 64u + global.x;
    if (i < params.len && (y[i] <= 0.0 || y[i] >= 6.0)) {
        grad[i] = 0.0;
    }
}
