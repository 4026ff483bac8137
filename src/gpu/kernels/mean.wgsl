// Global mean over pixels, NHWC: out[b, c] = (1 / (H W)) sum_{y,x} input[b, y, x, c].
// One thread per image and vec4 of channels (C a multiple of 4); 49 pixels at the end of
// MobileNetV2, so a loop is enough. Twin: crate::exec::FeatureMap::pooled.

struct Params {
    batch: u32,
    pixels: u32,
    channels4: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> output: array<vec4<f32>>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) global: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = global.y * groups.x * 64u + global.x;
    if (index >= params.batch * params.channels4) {
        return;
    }
    let c4 = index % params.channels4;
    let b = index / params.channels4;
    var sum = vec4<f32>(0.0);
    for (var p = 0u; p < params.pixels; p++) {
        sum = sum + input[(b * params.pixels + p) * params.channels4 + c4];
    }
    output[index] = sum / f32(max(params.pixels, 1u));
}
