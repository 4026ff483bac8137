// One AdamW step on a parameter, in place (Candle's AdamW, decoupled weight decay):
// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
// theta = theta (1 - lr wd) - lr (m scale_m) / (sqrt(v scale_v) + eps),
// scale_m = 1 / (1 - b1^t), scale_v = 1 / (1 - b2^t) for step t (from the driver).

struct Params {
    len: u32,
    lr: f32,
    weight_decay: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    scale_m: f32,
    scale_v: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> theta: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) global: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = global.y * groups.x * 64u + global.x;
    if (i >= params.len) {
        return;
    }
    let g = grad[i];
    let next_m = params.beta1 * m[i] + (1.0 - params.beta1) * g;
    let next_v = params.beta2 * v[i] + (1.0 - params.beta2) * g * g;
    m[i] = next_m;
    v[i] = next_v;
    let update = (next_m * params.scale_m) / (sqrt(next_v * params.scale_v) + params.eps);
    theta[i] = theta[i] * (1.0 - params.lr * params.weight_decay) - params.lr * update;
}
