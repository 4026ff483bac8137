// Rows of a resident matrix by index: out (R, D) = x[rows[r], :] (indices stored as f32,
// exact below 2^24). The training batch, picked on the GPU from features uploaded once.

struct Params {
    rows: u32,
    dim: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<f32>;
@group(0) @binding(3) var<storage, read_write> output: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) global: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = global.y * groups.x * 64u + global.x;
    if (index >= params.rows * params.dim) {
        return;
    }
    let r = index / params.dim;
    output[index] = x[u32(rows[r]) * params.dim + index % params.dim];
}
