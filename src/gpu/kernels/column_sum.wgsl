// Column sums: out (N) = sum_r x[r, :] for x (R, N): a bias's gradient. One thread per column.

struct Params {
    rows: u32,
    columns: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) global: vec3<u32>) {
    let c = global.x;
    if (c >= params.columns) {
        return;
    }
    var sum = 0.0;
    for (var r = 0u; r < params.rows; r++) {
        sum = sum + x[r * params.columns + c];
    }
    output[c] = sum;
}
