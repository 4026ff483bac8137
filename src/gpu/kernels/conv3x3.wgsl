// Full 3x3 convolution, PAD zeros before, stride STRIDE (the stem), as an implicit-im2col tiled
// matrix product with bias and ReLU6 fused, NHWC:
// out[p, o] = act(bias[o] + sum_{ky,kx,i} input[b, y*S + ky - PAD, x*S + kx - PAD, i] * weight[(ky, kx, i), o])
// for the output pixel p = (b, y, x). The im2col matrix is never stored: each tile of it is
// gathered from the input into workgroup memory. Columns (N) are a multiple of 4; the input
// channels may be anything (3 for RGB). 8x8 threads per 32x32 output tile, 4 rows x one vec4
// of columns per thread. Twin: crate::kernels::im2col + crate::kernels::pointwise.

struct Params {
    rows: u32,
    k: u32,
    n: u32,
    in_height: u32,
    in_width: u32,
    in_channels: u32,
    out_height: u32,
    out_width: u32,
}

override STRIDE: u32 = 2u;
override PAD: u32 = 1u;
override RELU6: bool = true;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> output: array<vec4<f32>>;

const TILE: u32 = 32u;
const TILE4: u32 = 8u;

var<workgroup> tile_a: array<array<f32, TILE>, TILE>;
var<workgroup> tile_b: array<array<vec4<f32>, TILE4>, TILE>;

// Element (row, kk) of the implicit im2col matrix.
fn gathered(row: u32, kk: u32) -> f32 {
    if (row >= params.rows || kk >= params.k) {
        return 0.0;
    }
    let per_image = params.out_height * params.out_width;
    let b = row / per_image;
    let y = (row % per_image) / params.out_width;
    let x = row % params.out_width;
    let ky = kk / (3u * params.in_channels);
    let kx = (kk / params.in_channels) % 3u;
    let i = kk % params.in_channels;
    let iy = i32(y * STRIDE + ky) - i32(PAD);
    let ix = i32(x * STRIDE + kx) - i32(PAD);
    if (iy < 0 || iy >= i32(params.in_height) || ix < 0 || ix >= i32(params.in_width)) {
        return 0.0;
    }
    return input[((b * params.in_height + u32(iy)) * params.in_width + u32(ix)) * params.in_channels + i];
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(local_invocation_id) local: vec3<u32>, @builtin(workgroup_id) group: vec3<u32>) {
    let n4s = params.n / 4u;
    let first_row = group.y * TILE;
    let first_col4 = group.x * TILE4;
    let thread = local.y * 8u + local.x;
    var acc: array<vec4<f32>, 4>;
    for (var r = 0u; r < 4u; r++) {
        acc[r] = vec4<f32>(0.0);
    }
    let tiles = (params.k + TILE - 1u) / TILE;
    for (var t = 0u; t < tiles; t++) {
        for (var i = 0u; i < 16u; i++) {
            let e = thread + i * 64u;
            tile_a[e / TILE][e % TILE] = gathered(first_row + e / TILE, t * TILE + e % TILE);
        }
        for (var i = 0u; i < 4u; i++) {
            let e = thread + i * 64u;
            let b_k = t * TILE + e / TILE4;
            let col4 = first_col4 + e % TILE4;
            var b = vec4<f32>(0.0);
            if (b_k < params.k && col4 < n4s) {
                b = weight[b_k * n4s + col4];
            }
            tile_b[e / TILE4][e % TILE4] = b;
        }
        workgroupBarrier();
        for (var k = 0u; k < TILE; k++) {
            let b = tile_b[k][local.x];
            for (var r = 0u; r < 4u; r++) {
                acc[r] = fma(vec4<f32>(tile_a[local.y * 4u + r][k]), b, acc[r]);
            }
        }
        workgroupBarrier();
    }
    let col4 = first_col4 + local.x;
    if (col4 >= n4s) {
        return;
    }
    for (var r = 0u; r < 4u; r++) {
        let row = first_row + local.y * 4u + r;
        if (row < params.rows) {
            var v = acc[r] + bias[col4];
            if (RELU6) {
                v = clamp(v, vec4<f32>(0.0), vec4<f32>(6.0));
            }
            output[row * n4s + col4] = v;
        }
    }
}
