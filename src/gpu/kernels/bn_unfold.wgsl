// The backward of bn_fold.wgsl, one thread per channel c: from the gradients of the folded
// weight d_folded (C, K) (or (K, C) with TAPS) and of the folded bias d_bias (C),
// d_weight[c, k] = d_folded[c, k] g[c] and
// d_gamma[c] = (sum_k d_folded[c, k] weight[c, k] - d_bias[c] mean[c]) / sqrt(var[c] + eps);
// d_beta = d_bias, so the bias gradient's buffer serves as beta's.

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
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read> d_folded: array<f32>;
@group(0) @binding(5) var<storage, read> d_bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> d_weight: array<f32>;
@group(0) @binding(7) var<storage, read_write> d_gamma: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) global: vec3<u32>) {
    let c = global.x;
    let channels = params.channels;
    if (c >= channels) {
        return;
    }
    let inv_std = 1.0 / sqrt(stats[channels + c] + params.eps);
    let g = gamma[c] * inv_std;
    var sum = 0.0;
    for (var k = 0u; k < params.per_channel; k++) {
        let i = c * params.per_channel + k;
        var d = d_folded[i];
        if (TAPS) {
            d = d_folded[k * channels + c];
        }
        d_weight[i] = d * g;
        sum = sum + d * weight[i];
    }
    d_gamma[c] = (sum - d_bias[c] * stats[c]) * inv_std;
}
