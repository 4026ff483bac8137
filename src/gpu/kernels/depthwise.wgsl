// Depthwise KxK convolution (K = 3 or 5), PAD zeros before, stride STRIDE, with bias and ReLU6
// fused, NHWC (zero outside the input):
// out[b, y, x, c] = relu6(bias[c] + sum_{ky,kx} input[b, y*S + ky - PAD, x*S + kx - PAD, c] * taps[ky*K + kx, c]).
// Channels as vec4 (C a multiple of 4); each thread computes 4 neighbouring output columns
// of one vec4 of channels, so that every input value it loads serves up to three of them
// (the shape of tfjs's depthwise_conv2d_vec4). Twin: crate::kernels::depthwise.

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
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> taps: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> output: array<vec4<f32>>;

const COLS: u32 = 4u;
// Input columns one row of COLS outputs reads: (COLS - 1) * STRIDE + K, 11 at most (stride 2, 5x5).
const SPAN: u32 = 11u;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) global: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = global.y * groups.x * 64u + global.x;
    let c4s = params.channels4;
    let col_groups = (params.out_width + COLS - 1u) / COLS;
    if (index >= params.batch * params.out_height * col_groups * c4s) {
        return;
    }
    let c4 = index % c4s;
    let col_group = (index / c4s) % col_groups;
    let y = (index / (c4s * col_groups)) % params.out_height;
    let b = index / (c4s * col_groups * params.out_height);
    let x0 = col_group * COLS;
    var acc: array<vec4<f32>, 4>;
    for (var j = 0u; j < COLS; j++) {
        acc[j] = bias[c4];
    }
    let first_x = i32(x0 * STRIDE) - i32(PAD);
    let span = (COLS - 1u) * STRIDE + K;
    for (var ky = 0u; ky < K; ky++) {
        let iy = i32(y * STRIDE + ky) - i32(PAD);
        if (iy < 0 || iy >= i32(params.in_height)) {
            continue;
        }
        let row_base = (b * params.in_height + u32(iy)) * params.in_width;
        var row: array<vec4<f32>, SPAN>;
        for (var i = 0u; i < span; i++) {
            let ix = first_x + i32(i);
            var v = vec4<f32>(0.0);
            if (ix >= 0 && ix < i32(params.in_width)) {
                v = input[(row_base + u32(ix)) * c4s + c4];
            }
            row[i] = v;
        }
        for (var kx = 0u; kx < K; kx++) {
            let tap = taps[(ky * K + kx) * c4s + c4];
            for (var j = 0u; j < COLS; j++) {
                acc[j] = fma(row[j * STRIDE + kx], tap, acc[j]);
            }
        }
    }
    for (var j = 0u; j < COLS; j++) {
        let x = x0 + j;
        if (x < params.out_width) {
            let out = ((b * params.out_height + y) * params.out_width + x) * c4s + c4;
            output[out] = clamp(acc[j], vec4<f32>(0.0), vec4<f32>(6.0));
        }
    }
}
