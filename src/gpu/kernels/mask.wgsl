// Elementwise product of a tensor with a mask, in place: x = x * mask (dropout forward, with
// the mask already holding 0 or 1 / (1 - p)); with RELU_OF set, the gradient through a ReLU
// and that dropout: grad = grad * mask * (relu_out > 0).

struct Params {
    len: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

override RELU_OF: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> mask: array<f32>;
@group(0) @binding(2) var<storage, read> relu_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) global: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = global.y * groups.x * 64u + global.x;
    if (i >= params.len) {
        return;
    }
    var v = x[i] * mask[i];
    if (RELU_OF && relu_out[i] <= 0.0) {
        v = 0.0;
    }
    x[i] = v;
}
