// The tap gradient of a depthwise KxK convolution (PAD zeros before, stride STRIDE), NHWC,
// channels as vec4: dtaps[ky * K + kx, c] = sum over b, oy, ox of grad[b, oy, ox, c] *
// input[b, oy * S + ky - PAD, ox * S + kx - PAD, c] (zero outside the image).
// One workgroup per (vec4 of channels, tap): its 64 threads stride over the batch's output
// pixels, then sum their partial sums in workgroup memory.
// Twin: crate::kernels::backward::depthwise_backward_reference.

struct Params {
    batch: u32,
    in_height: u32,
    in_width: u32,
    channels4: u32,
    out_height: u32,
    out_width: u32,
    pad0: u32,
    pad1: u32,
}

override STRIDE: u32 = 1u;
override K: u32 = 3u;
override PAD: u32 = 1u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dtaps: array<vec4<f32>>;

var<workgroup> partial: array<vec4<f32>, 64>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_index) thread: u32, @builtin(workgroup_id) group: vec3<u32>) {
    let c4 = group.x;
    let tap = group.y;
    let c4s = params.channels4;
    let ky = tap / K;
    let kx = tap % K;
    let outputs = params.batch * params.out_height * params.out_width;
    var acc = vec4<f32>(0.0);
    for (var p = thread; p < outputs; p += 64u) {
        let ox = p % params.out_width;
        let oy = (p / params.out_width) % params.out_height;
        let b = p / (params.out_width * params.out_height);
        let iy = i32(oy * STRIDE + ky) - i32(PAD);
        let ix = i32(ox * STRIDE + kx) - i32(PAD);
        if (iy < 0 || ix < 0 || iy >= i32(params.in_height) || ix >= i32(params.in_width)) {
            continue;
        }
        let at = ((b * params.in_height + u32(iy)) * params.in_width + u32(ix)) * c4s + c4;
        acc = fma(grad[p * c4s + c4], input[at], acc);
    }
    partial[thread] = acc;
    workgroupBarrier();
    for (var half = 32u; half > 0u; half = half / 2u) {
        if (thread < half) {
            partial[thread] = partial[thread] + partial[thread + half];
        }
        workgroupBarrier();
    }
    if (thread == 0u) {
        dtaps[tap * c4s + c4] = partial[0];
    }
}
