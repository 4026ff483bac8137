// General matrix product for training, any shape, row-major:
// out (M, N) = op(a) (M, K) * op(b) (K, N) [+ bias (N)] [then ReLU or ReLU6], where op(a) = a stored
// (K, M) when TRANS_A and op(b) = b stored (N, K) when TRANS_B, so that the forward product
// x W^T and the two gradient products dY^T X and dY W need no transposed copies.
// 8x8 threads per 32x32 output tile, 4x4 outputs per thread, K in tiles of 32 staged in
// workgroup memory. Twin: a plain triple loop (tests/gpu.rs) and Candle's matmul.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    pad: u32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override BIAS: bool = false;
override RELU: bool = false;
override RELU6: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

const TILE: u32 = 32u;

var<workgroup> tile_a: array<array<f32, TILE>, TILE>; // [row][k]
var<workgroup> tile_b: array<array<f32, TILE>, TILE>; // [k][col]

fn a_at(row: u32, k: u32) -> f32 {
    if (row >= params.m || k >= params.k) {
        return 0.0;
    }
    if (TRANS_A) {
        return a[k * params.m + row];
    }
    return a[row * params.k + k];
}

fn b_at(k: u32, col: u32) -> f32 {
    if (k >= params.k || col >= params.n) {
        return 0.0;
    }
    if (TRANS_B) {
        return b[col * params.k + k];
    }
    return b[k * params.n + col];
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(local_invocation_id) local: vec3<u32>, @builtin(workgroup_id) group: vec3<u32>) {
    let first_row = group.y * TILE;
    let first_col = group.x * TILE;
    let thread = local.y * 8u + local.x;
    var acc: array<vec4<f32>, 4>;
    for (var r = 0u; r < 4u; r++) {
        acc[r] = vec4<f32>(0.0);
    }
    let tiles = (params.k + TILE - 1u) / TILE;
    for (var t = 0u; t < tiles; t++) {
        // 1024 values of each tile, 16 per thread; consecutive threads read consecutive
        // addresses of whichever layout is stored.
        for (var i = 0u; i < 16u; i++) {
            let e = thread + i * 64u;
            let major = e / TILE;
            let minor = e % TILE;
            if (TRANS_A) {
                tile_a[minor][major] = a_at(first_row + minor, t * TILE + major);
            } else {
                tile_a[major][minor] = a_at(first_row + major, t * TILE + minor);
            }
            if (TRANS_B) {
                tile_b[minor][major] = b_at(t * TILE + minor, first_col + major);
            } else {
                tile_b[major][minor] = b_at(t * TILE + major, first_col + minor);
            }
        }
        workgroupBarrier();
        for (var k = 0u; k < TILE; k++) {
            let bv = vec4<f32>(
                tile_b[k][local.x * 4u],
                tile_b[k][local.x * 4u + 1u],
                tile_b[k][local.x * 4u + 2u],
                tile_b[k][local.x * 4u + 3u],
            );
            for (var r = 0u; r < 4u; r++) {
                acc[r] = fma(vec4<f32>(tile_a[local.y * 4u + r][k]), bv, acc[r]);
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r++) {
        let row = first_row + local.y * 4u + r;
        if (row >= params.m) {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = first_col + local.x * 4u + j;
            if (col < params.n) {
                var v = acc[r][j];
                if (BIAS) {
                    v = v + bias[col];
                }
                if (RELU) {
                    v = max(v, 0.0);
                }
                if (RELU6) {
                    v = clamp(v, 0.0, 6.0);
                }
                output[row * params.n + col] = v;
            }
        }
    }
}
