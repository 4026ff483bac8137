//! 3x3 patches of an NHWC image as rows, so that a full 3x3 convolution (MobileNetV2's stem,
//! 3 input channels) becomes one [`super::pointwise::pointwise`] product.
//!
//! `cols[i * out_w + j, (ky * 3 + kx) * C + c] = x[s*i + ky - p, s*j + kx - p, c]`, zero outside,
//! `x: (H, W, C)`, `p` rows (columns) of padding before, stride `s`, `cols: (out_h * out_w, 9 * C)`. A conv weight
//! `(C_out, C, 3, 3)` matches it once laid out as `((ky, kx, c), C_out)`.

use super::depthwise::DepthwiseShape;

/// Writes the patch rows of one image into `cols`; the shape is the same as a depthwise conv's.
pub fn im2col3x3(shape: DepthwiseShape, input: &[f32], cols: &mut [f32]) {
    let DepthwiseShape { height, width, channels: c, window } = shape;
    assert_eq!(window.kernel, 3, "im2col3x3 window");
    let (out_h, out_w) = (shape.out_height(), shape.out_width());
    assert_eq!(input.len(), height * width * c, "im2col input");
    assert_eq!(cols.len(), out_h * out_w * 9 * c, "im2col output");
    for i in 0..out_h {
        for j in 0..out_w {
            let row = &mut cols[(i * out_w + j) * 9 * c..][..9 * c];
            for ky in 0..3 {
                for kx in 0..3 {
                    let dst = &mut row[(ky * 3 + kx) * c..][..c];
                    let (y, x) = (window.source(i, ky, height), window.source(j, kx, width));
                    match (y, x) {
                        (Some(y), Some(x)) => dst.copy_from_slice(&input[(y * width + x) * c..][..c]),
                        _ => dst.fill(0.0),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::random_vec;
    use crate::kernels::Window;

    /// The twin: each patch element read straight from its definition.
    fn patch_value(input: &[f32], shape: DepthwiseShape, pixel: usize, column: usize) -> f32 {
        let DepthwiseShape { height, width, channels: c, window } = shape;
        let (i, j) = (pixel / shape.out_width(), pixel % shape.out_width());
        let (tap, ch) = (column / c, column % c);
        let (stride, pad) = (window.stride as isize, window.pad as isize);
        let (y, x) = (i as isize * stride + (tap / 3) as isize - pad, j as isize * stride + (tap % 3) as isize - pad);
        let inside = y >= 0 && x >= 0 && (y as usize) < height && (x as usize) < width;
        if inside {
            input[(y as usize * width + x as usize) * c + ch]
        } else {
            0.0
        }
    }

    #[test]
    fn every_patch_element_is_the_shifted_input_or_zero() {
        for (height, width, channels) in [(1, 1, 1), (5, 7, 3), (8, 8, 2), (9, 4, 3)] {
            for window in [Window::symmetric(3, 1), Window::symmetric(3, 2), Window { kernel: 3, stride: 2, pad: 0 }] {
                let shape = DepthwiseShape { height, width, channels, window };
                let input = random_vec(height * width * channels, 7);
                let pixels = shape.out_height() * shape.out_width();
                let mut cols = vec![f32::NAN; pixels * 9 * channels];
                im2col3x3(shape, &input, &mut cols);
                for (index, value) in cols.iter().enumerate() {
                    let expected = patch_value(&input, shape, index / (9 * channels), index % (9 * channels));
                    assert_eq!(*value, expected, "{shape:?} element {index}");
                }
            }
        }
    }
}
