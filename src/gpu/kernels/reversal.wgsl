// Where DANN's two gradients meet at the head's hidden layer h (the batch's R source rows, then
// its R target rows): the gradient reversal layer turns the domain loss's gradient `x` into
// `-lambda x`, the source rows add the label loss's gradient `y` (its first `y_len` entries),
// and both go back through the hidden layer's ReLU:
// x = (scale * x + [i < y_len] y) * [relu_out > 0], with scale = -lambda.
// Twin: graft::gpu::kernels::elementwise::reversal_reference (and the CPU trainer's
// reverse_gradient, whose autograd does the same sum).

struct Params {
    len: u32,
    y_len: u32,
    // -lambda, as f32 bits: written before each step, as lambda follows the schedule.
    scale: f32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> relu_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) global: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = global.y * groups.x * 64u + global.x;
    if (i >= params.len) {
        return;
    }
    var v = params.scale * x[i];
    if (i < params.y_len) {
        v = v + y[i];
    }
    if (relu_out[i] <= 0.0) {
        v = 0.0;
    }
    x[i] = v;
}
