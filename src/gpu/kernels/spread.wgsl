// The gradient of the global spatial mean, NHWC: dx[b, p, c] = dmean[b, c] / P, for
// dmean (B, C) and dx (B, P, C). Twin: Candle's mean((1, 2)) backward.

struct Params {
    batch: u32,
    pixels: u32,
    channels: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dmean: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) global: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = global.y * groups.x * 64u + global.x;
    let per_image = params.pixels * params.channels;
    if (i >= params.batch * per_image) {
        return;
    }
    let b = i / per_image;
    let c = i % params.channels;
    dx[i] = dmean[b * params.channels + c] / f32(params.pixels);
}
