//! 3x3 patches of an NHWC image as rows, so that a full 3x3 convolution (MobileNetV2's stem,
//! 3 input channels) becomes one [`super::pointwise::pointwise`] product.
//!
//! `cols[i * out_w + j, (ky * 3 + kx) * C + c] = x[s*i + ky - 1, s*j + kx - 1, c]`, zero outside,
//! `x: (H, W, C)`, padding 1, stride `s`, `cols: (out_h * out_w, 9 * C)`. A conv weight
//! `(C_out, C, 3, 3)` matches it once laid out as `((ky, kx, c), C_out)`.

use super::depthwise::DepthwiseShape;

/// Writes the patch rows of one image into `cols`; the shape is the same as a depthwise conv's.
pub fn im2col3x3(shape: DepthwiseShape, input: &[f32], cols: &mut [f32]) {
    let DepthwiseShape { height, width, channels: c, stride } = shape;
    let (out_h, out_w) = (shape.out_height(), shape.out_width());
    assert_eq!(input.len(), height * width * c, "im2col input");
    assert_eq!(cols.len(), out_h * out_w * 9 * c, "im2col output");
    for i in 0..out_h {
        for j in 0..out_w {
            let row = &mut cols[(i * out_w + j) * 9 * c..][..9 * c];
            for ky in 0..3 {
                for kx in 0..3 {
                    let dst = &mut row[(ky * 3 + kx) * c..][..c];
                    let (y, x) = ((i * stride + ky).checked_sub(1), (j * stride + kx).checked_sub(1));
                    match (y, x) {
                        (Some(y), Some(x)) if y < height && x < width => {
                            dst.copy_from_slice(&input[(y * width + x) * c..][..c])
                        }
                        _ => dst.fill(0.0),
                    }
                }
            }
        }
    }
}
