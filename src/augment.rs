//! Augmentation of training images: random resized crop, horizontal flip, colour jitter.
//!
//! At strength `s` in [0, 1]: a window of the image covering a fraction `a` of its area,
//! `a ~ U(1 - 0.7 s, 1)`, with aspect ratio `exp(U(-0.3 s, 0.3 s))` at a uniform position
//! (ten tries, then the central square, as torchvision's `RandomResizedCrop`), resampled to
//! `crop x crop` with the antialiased bilinear filter of [`crate::preprocess`]; a horizontal
//! flip with probability 1/2; brightness `x b`, contrast `(x - mean) c + mean` (mean of the
//! grey image), saturation `(x - grey) t + grey`, each factor `~ U(1 - 0.4 s, 1 + 0.4 s)`,
//! values clamped to [0, 1]; then the backbone's normalisation. Strength 0 is the largest
//! central square, unflipped, unjittered.

use image::RgbImage;

use crate::preprocess::{normalise, resample_window, InputSpec};
use crate::train::rng::SplitMix64;

/// One random view's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewParams {
    /// `(top, left, height, width)` in the image's pixels.
    pub window: (usize, usize, usize, usize),
    pub flip: bool,
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
}

fn uniform(rng: &mut SplitMix64, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.next_f32()
}

/// Draws a view of a `width x height` image at `strength`.
pub fn random_view(width: usize, height: usize, strength: f32, rng: &mut SplitMix64) -> ViewParams {
    let s = strength.clamp(0.0, 1.0);
    let area = (width * height) as f32;
    let mut window = None;
    for _ in 0..10 {
        let fraction = uniform(rng, 1.0 - 0.7 * s, 1.0);
        let ratio = uniform(rng, -0.3 * s, 0.3 * s).exp();
        let w = (area * fraction * ratio).sqrt().round() as usize;
        let h = (area * fraction / ratio).sqrt().round() as usize;
        if (1..=width).contains(&w) && (1..=height).contains(&h) {
            let top = rng.below(height - h + 1);
            let left = rng.below(width - w + 1);
            window = Some((top, left, h, w));
            break;
        }
    }
    let side = width.min(height).max(1);
    let window = window.unwrap_or(((height - side) / 2, (width - side) / 2, side, side));
    let flip = s > 0.0 && rng.next_f32() < 0.5;
    let mut factor = || uniform(rng, 1.0 - 0.4 * s, 1.0 + 0.4 * s);
    ViewParams { window, flip, brightness: factor(), contrast: factor(), saturation: factor() }
}

/// The view `params` of `image` as the backbone's normalised input, `(3, crop, crop)` CHW.
pub fn augmented_chw(image: &RgbImage, spec: &InputSpec, params: &ViewParams) -> Vec<f32> {
    let mut chw = view_unit(image, spec.crop as usize, params);
    normalise(&mut chw, spec);
    chw
}

/// The view `params` of `image` as a `size x size` picture (the page's preview).
pub fn augmented_image(image: &RgbImage, size: u32, params: &ViewParams) -> RgbImage {
    let chw = view_unit(image, size as usize, params);
    let plane = (size * size) as usize;
    RgbImage::from_fn(size, size, |x, y| {
        let i = (y * size + x) as usize;
        image::Rgb([0, 1, 2].map(|c| (chw[c * plane + i] * 255.0).round() as u8))
    })
}

/// The view as CHW values in [0, 1], `size x size`.
fn view_unit(image: &RgbImage, size: usize, params: &ViewParams) -> Vec<f32> {
    let mut chw = resample_window(image, params.window, size);
    if params.flip {
        for row in chw.chunks_exact_mut(size) {
            row.reverse();
        }
    }
    jitter(&mut chw, params);
    chw
}

/// Brightness, contrast and saturation of a CHW image in [0, 1], in that order.
fn jitter(chw: &mut [f32], params: &ViewParams) {
    let plane = chw.len() / 3;
    let grey_of = |chw: &[f32], i: usize| 0.299 * chw[i] + 0.587 * chw[plane + i] + 0.114 * chw[2 * plane + i];
    chw.iter_mut().for_each(|v| *v = (*v * params.brightness).clamp(0.0, 1.0));
    let mean = (0..plane).map(|i| grey_of(chw, i)).sum::<f32>() / plane.max(1) as f32;
    chw.iter_mut().for_each(|v| *v = ((*v - mean) * params.contrast + mean).clamp(0.0, 1.0));
    for i in 0..plane {
        let grey = grey_of(chw, i);
        for c in 0..3 {
            let v = &mut chw[c * plane + i];
            *v = ((*v - grey) * params.saturation + grey).clamp(0.0, 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128]))
    }

    #[test]
    fn views_stay_inside_the_image_and_follow_the_strength() {
        let mut rng = SplitMix64::new(3);
        for (w, h) in [(28, 28), (640, 480), (100, 1000), (1, 1)] {
            for strength in [0.0, 0.5, 1.0] {
                for _ in 0..50 {
                    let v = random_view(w, h, strength, &mut rng);
                    let (top, left, vh, vw) = v.window;
                    assert!(top + vh <= h && left + vw <= w && vh > 0 && vw > 0, "{v:?} in {w}x{h}");
                    let area = (vh * vw) as f32 / (w * h) as f32;
                    let square = (w.min(h) * w.min(h)) as f32 / (w * h) as f32;
                    let least = (1.0 - 0.7 * strength - 0.1).min(square);
                    assert!(area >= least, "{area} at strength {strength} in {w}x{h}");
                    for f in [v.brightness, v.contrast, v.saturation] {
                        assert!((1.0 - 0.4 * strength..=1.0 + 0.4 * strength).contains(&f));
                    }
                    if strength == 0.0 {
                        assert!(!v.flip);
                    }
                }
            }
        }
    }

    #[test]
    fn a_flip_mirrors_the_columns_and_strength_zero_keeps_the_pixels() {
        let spec = InputSpec::imagenet();
        let image = gradient(64, 64);
        let plain = ViewParams { window: (0, 0, 64, 64), flip: false, brightness: 1.0, contrast: 1.0, saturation: 1.0 };
        let flipped = ViewParams { flip: true, ..plain };
        let (a, b) = (augmented_chw(&image, &spec, &plain), augmented_chw(&image, &spec, &flipped));
        let crop = spec.crop as usize;
        assert_eq!(a[5], b[crop - 1 - 5], "first row, mirrored");
        // Red rises left to right in the plain view.
        assert!(a[crop - 1] > a[0]);
        // Brightness 0 makes every pixel black: (0 - mean) / std per channel.
        let dark = augmented_chw(&image, &spec, &ViewParams { brightness: 0.0, ..plain });
        assert!((dark[0] - (0.0 - spec.mean[0]) / spec.std[0]).abs() < 1e-5);
    }
}
