// Softmax cross-entropy over rows of logits (B, C), mean over the batch, with its gradient:
// loss_r = logsumexp(z_r) - z_r[y_r],  grad (B, C) = (softmax(z_r) - onehot(y_r)) / B,
// and per_row[2r] = loss_r, per_row[2r + 1] = argmax_c z_r (the prediction, for metrics).
// Labels are stored as f32 (exact below 2^24). One thread per row: C is a few classes.
// Twin: candle_nn::loss::cross_entropy and its backward.

struct Params {
    rows: u32,
    classes: u32,
    // 1 / (rows in the batch), as f32 bits: the mean's scale.
    scale: f32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> per_row: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) global: vec3<u32>) {
    let r = global.x;
    if (r >= params.rows) {
        return;
    }
    let base = r * params.classes;
    var top = logits[base];
    var best = 0u;
    for (var c = 1u; c < params.classes; c++) {
        if (logits[base + c] > top) {
            top = logits[base + c];
            best = c;
        }
    }
    var sum = 0.0;
    for (var c = 0u; c < params.classes; c++) {
        sum = sum + exp(logits[base + c] - top);
    }
    let label = u32(labels[r]);
    per_row[2u * r] = log(sum) + top - logits[base + label];
    per_row[2u * r + 1u] = f32(best);
    for (var c = 0u; c < params.classes; c++) {
        let p = exp(logits[base + c] - top) / sum;
        let onehot = select(0.0, 1.0, c == label);
        grad[base + c] = (p - onehot) * params.scale;
    }
}
