// Frozen batch norm folded into the conv before it, on every forward of an unfrozen block:
// g = gamma / sqrt(var + eps), folded[c, k] = weight[c, k] * g[c], bias[c] = beta[c] - mean[c] g[c],
// for weight (C, K) as stored (K = C_in for a 1x1 conv, 9 taps for a depthwise 3x3). With TAPS
// the folded weight is written (K, C), the depthwise kernel's tap-major layout.
// stats = [running_mean (C), running_var (C)]. Twin: crate::backbone::ConvBn::forward_nhwc.

struct Params {
    channels: u32,
    per_channel: u32,
    eps: f32,
    pad: u32,
}

override TAPS: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> folded: array<f32>;
@group(0) @binding(6) var<storage, read_write> bias: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) global: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = global.y * groups.x * 64u + global.x;
    let channels = params.channels;
    if (i >= channels * params.per_channel) {
        return;
    }
    let c = i / params.per_channel;
    let k = i % params.per_channel;
    let g = gamma[c] / sqrt(stats[channels + c] + params.eps);
    var at = i;
    if (TAPS) {
        at = k * channels + c;
    }
    folded[at] = weight[i] * g;
    if (k == 0u) {
        bias[c] = beta[c] - stats[c] * g;
    }
}
