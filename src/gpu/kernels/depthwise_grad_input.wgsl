// The input gradient of a depthwise KxK convolution (PAD zeros before, stride STRIDE), NHWC,
// channels as vec4: dx[b, iy, ix, c] = sum over the taps (ky, kx) and outputs (oy, ox) with
// oy * S + ky - PAD = iy and ox * S + kx - PAD = ix of grad[b, oy, ox, c] * taps[ky * K + kx, c].
// One thread per input vec4, so nothing is summed by two threads.
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
@group(0) @binding(2) var<storage, read> taps: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dx: array<vec4<f32>>;

// The output index whose tap k reads input index i, or -1.
fn output_of(i: u32, k: u32, size: u32) -> i32 {
    let t = i32(i) + i32(PAD) - i32(k);
    if (t < 0 || t % i32(STRIDE) != 0) {
        return -1;
    }
    let o = t / i32(STRIDE);
    if (o >= i32(size)) {
        return -1;
    }
    return o;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) global: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = global.y * groups.x * 64u + global.x;
    let c4s = params.channels4;
    if (index >= params.batch * params.in_height * params.in_width * c4s) {
        return;
    }
    let c4 = index % c4s;
    let ix = (index / c4s) % params.in_width;
    let iy = (index / (c4s * params.in_width)) % params.in_height;
    let b = index / (c4s * params.in_width * params.in_height);
    var acc = vec4<f32>(0.0);
    for (var ky = 0u; ky < K; ky++) {
        let oy = output_of(iy, ky, params.out_height);
        if (oy < 0) {
            continue;
        }
        for (var kx = 0u; kx < K; kx++) {
            let ox = output_of(ix, kx, params.out_width);
            if (ox < 0) {
                continue;
            }
            let at = ((b * params.out_height + u32(oy)) * params.out_width + u32(ox)) * c4s + c4;
            acc = fma(grad[at], taps[(ky * K + kx) * c4s + c4], acc);
        }
    }
    dx[index] = acc;
}
