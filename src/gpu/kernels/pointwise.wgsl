// Pointwise (1x1) convolution as a tiled matrix product with bias, residual and ReLU6 fused:
// out[p, o] = act(bias[o] + residual[p, o] + sum_i input[p, i] * weight[i, o]).
// input (P, K), weight (K, N), residual and out (P, N), row-major, K and N multiples of 4
// (read as vec4). A workgroup of 8x8 threads computes a 32x32 tile of the output; each thread
// 4 rows x one vec4 of columns, over K in tiles of 32 staged in workgroup memory (the shape of
// tfjs's and onnxruntime-web's vec4 matmul). Twin: crate::kernels::pointwise.

struct Params {
    rows: u32,
    k: u32,
    n: u32,
    pad: u32,
}

override RELU6: bool = false;
override RESIDUAL: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> output: array<vec4<f32>>;

const TILE: u32 = 32u;
const TILE4: u32 = 8u;

// tile_a[row][k4]: 32 rows x 32 values of K; tile_b[k][n4]: 32 values of K x 32 columns.
var<workgroup> tile_a: array<array<vec4<f32>, TILE4>, TILE>;
var<workgroup> tile_b: array<array<vec4<f32>, TILE4>, TILE>;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(local_invocation_id) local: vec3<u32>, @builtin(workgroup_id) group: vec3<u32>) {
    let k4s = params.k / 4u;
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
        // 256 vec4 per tile and 64 threads: four loads each of A and of B.
        for (var i = 0u; i < 4u; i++) {
            let e = thread + i * 64u;
            let r = e / TILE4;
            let c = e % TILE4;
            let row = first_row + r;
            let a_k4 = t * TILE4 + c;
            var a = vec4<f32>(0.0);
            if (row < params.rows && a_k4 < k4s) {
                a = input[row * k4s + a_k4];
            }
            tile_a[r][c] = a;
            let b_k = t * TILE + r;
            let col4 = first_col4 + c;
            var b = vec4<f32>(0.0);
            if (b_k < params.k && col4 < n4s) {
                b = weight[b_k * n4s + col4];
            }
            tile_b[r][c] = b;
        }
        workgroupBarrier();
        for (var k4 = 0u; k4 < TILE4; k4++) {
            let b0 = tile_b[k4 * 4u][local.x];
            let b1 = tile_b[k4 * 4u + 1u][local.x];
            let b2 = tile_b[k4 * 4u + 2u][local.x];
            let b3 = tile_b[k4 * 4u + 3u][local.x];
            for (var r = 0u; r < 4u; r++) {
                let a = tile_a[local.y * 4u + r][k4];
                acc[r] = fma(vec4<f32>(a.x), b0, acc[r]);
                acc[r] = fma(vec4<f32>(a.y), b1, acc[r]);
                acc[r] = fma(vec4<f32>(a.z), b2, acc[r]);
                acc[r] = fma(vec4<f32>(a.w), b3, acc[r]);
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
            if (RESIDUAL) {
                v = v + residual[row * n4s + col4];
            }
            if (RELU6) {
                v = clamp(v, vec4<f32>(0.0), vec4<f32>(6.0));
            }
            output[row * n4s + col4] = v;
        }
    }
}
