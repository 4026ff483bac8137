//! Image decoding and the backbone's input transform, shared by the CLI and the browser.
//!
//! `bytes -> RGB8` : decode JPEG/PNG/WebP/GIF (first frame), apply the EXIF orientation,
//! composite any alpha channel on white.
//! `RGB8 (H, W) -> f32 (3, crop, crop)` : scale to [0, 1], resize so the shorter side is
//! `resize_shorter` with antialiased bilinear filtering (the triangle filter widened by the
//! downscale factor, as PIL's and torch's `antialias=True`, in float), centre-crop, then
//! `(x - mean) / std` per channel. Only the cropped window is ever resampled, so a large
//! photo costs one pass over its rows and a few megabytes.

use std::io::Cursor;

use candle_core::{Device, Tensor};
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use crate::error::{GraftError, Result};

/// Largest accepted side, in pixels; anything larger is refused before decoding.
pub const MAX_SIDE: u32 = 10_000;
/// Largest accepted pixel count (a 50 MP photo decodes to 200 MB of RGBA).
pub const MAX_PIXELS: u64 = 50_000_000;

/// How a backbone wants its input.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InputSpec {
    /// The shorter side is resized to this before the crop.
    pub resize_shorter: u32,
    /// Side of the square centre crop fed to the network.
    pub crop: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl InputSpec {
    /// torchvision's ImageNet transform (MobileNetV2, ResNet, ...).
    pub fn imagenet() -> Self {
        Self { resize_shorter: 256, crop: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }
    }

    /// EfficientNet-Lite's: TensorFlow trained it on 0..255 pixels with mean 127 and standard
    /// deviation 128 (about [-1, 1]), after the same centre crop of 224 / (224 + 32). Measured
    /// against ImageNet's mean/std on the reference photos (`efficientnet_lite_reference.py`):
    /// mean top-1 probability 0.66 against 0.56.
    pub fn efficientnet_lite() -> Self {
        Self { resize_shorter: 256, crop: 224, mean: [127.0 / 255.0; 3], std: [128.0 / 255.0; 3] }
    }
}

/// Decodes an image file's bytes into upright RGB. `name` labels errors.
pub fn decode_image(name: &str, bytes: &[u8]) -> Result<RgbImage> {
    if bytes.is_empty() {
        return Err(GraftError::EmptyFile { name: name.into() });
    }
    let not_image = |reason: String| GraftError::NotAnImage { name: name.into(), reason };
    let reader = || ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| not_image(e.to_string()));
    let format = reader()?.format().ok_or_else(|| not_image("unrecognised file format".into()))?;
    if format == image::ImageFormat::Jpeg && jpeg_is_truncated(bytes) {
        return Err(GraftError::TruncatedImage { name: name.into() });
    }
    // The header alone first, so that a huge image (a decompression bomb) gets its own
    // message; the decoder's limits stay as a second cap on what it may allocate.
    let (width, height) = match png_dimensions(bytes) {
        Some(size) if format == image::ImageFormat::Png => size,
        _ => {
            let mut header = reader()?;
            header.no_limits();
            header.into_dimensions().map_err(|e| not_image(e.to_string()))?
        }
    };
    if width.max(height) > MAX_SIDE || width as u64 * height as u64 > MAX_PIXELS {
        return Err(GraftError::ImageTooLarge { name: name.into(), width, height, max_side: MAX_SIDE });
    }
    if width == 0 || height == 0 {
        return Err(not_image("the image has no pixels".into()));
    }
    let mut reader = reader()?;
    reader.limits(decode_limits());
    let mut decoder = reader.into_decoder().map_err(|e| not_image(e.to_string()))?;
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| not_image(e.to_string()))?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(flatten_on_white(image))
}

/// A PNG's size from its header (IHDR is the first chunk), read directly: on wasm32 the png
/// crate refuses a huge image with a generic memory error before it reports the size.
fn png_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let field = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    (bytes.get(12..16)? == b"IHDR").then_some(())?;
    Some((field(16)?, field(20)?))
}

/// The decoder's caps: [`MAX_SIDE`] a side, and the bytes of [`MAX_PIXELS`] RGBA pixels of
/// 16 bits (a 16-bit PNG) plus the RGB8 copy.
fn decode_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 8 + MAX_PIXELS * 3);
    limits
}

/// A JPEG whose last scan has no end-of-image marker after it: the file was cut short (the
/// decoder would fill the missing rows with grey and say nothing). Inside entropy-coded data
/// `FF` is always followed by `00` or a restart marker, so `FF DA` (start of scan) and `FF D9`
/// (end of image) are found only as markers; an EXIF thumbnail's own markers come before the
/// main image's last scan.
fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_scan {
        Some(at) => !bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => true,
    }
}

/// Side of the raw-pixel input of the no-transfer baseline.
pub const BASELINE_SIDE: u32 = 32;

/// The input of the baseline that uses no pretrained knowledge: the image squeezed to
/// `BASELINE_SIDE x BASELINE_SIDE` (triangle filter), RGB in `[-0.5, 0.5]`, HWC order
/// (`3 * 32 * 32` values).
pub fn baseline_pixels(image: &RgbImage) -> Vec<f32> {
    let small = image::imageops::resize(image, BASELINE_SIDE, BASELINE_SIDE, image::imageops::FilterType::Triangle);
    small.into_raw().into_iter().map(|v| f32::from(v) / 255.0 - 0.5).collect()
}

/// An RGBA frame (a webcam capture drawn to a canvas) as RGB, alpha on white.
pub fn image_from_rgba(name: &str, width: u32, height: u32, rgba: Vec<u8>) -> Result<RgbImage> {
    if width.max(height) > MAX_SIDE {
        return Err(GraftError::ImageTooLarge { name: name.into(), width, height, max_side: MAX_SIDE });
    }
    let image = image::RgbaImage::from_raw(width, height, rgba).ok_or_else(|| GraftError::NotAnImage {
        name: name.into(),
        reason: format!("the frame does not hold {width}x{height} RGBA pixels"),
    })?;
    if width == 0 || height == 0 {
        return Err(GraftError::NotAnImage { name: name.into(), reason: "the frame has no pixels".into() });
    }
    Ok(flatten_on_white(DynamicImage::ImageRgba8(image)))
}

fn flatten_on_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (out, px) in rgb.pixels_mut().zip(rgba.pixels()) {
        let alpha = px[3] as f32 / 255.0;
        for c in 0..3 {
            out[c] = (px[c] as f32 * alpha + 255.0 * (1.0 - alpha)).round() as u8;
        }
    }
    rgb
}

/// Taps of a 1-D antialiased bilinear resampling: for each output pixel, the first input
/// index and the normalised weights from there on.
#[derive(Debug)]
struct Taps {
    start: Vec<usize>,
    weights: Vec<Vec<f32>>,
}

/// Output pixels `range` of resampling `in_size` to `out_size` (torch's `_upsample_bilinear2d_aa`).
fn bilinear_aa_taps(in_size: usize, out_size: usize, range: std::ops::Range<usize>) -> Taps {
    let scale = in_size as f64 / out_size as f64;
    let (support, inv_scale) = if scale >= 1.0 { (scale, 1.0 / scale) } else { (1.0, 1.0) };
    let mut taps = Taps { start: Vec::with_capacity(range.len()), weights: Vec::with_capacity(range.len()) };
    for i in range {
        let center = scale * (i as f64 + 0.5);
        let lo = ((center - support + 0.5).max(0.0)) as usize;
        let hi = ((center + support + 0.5) as usize).min(in_size);
        let mut w: Vec<f64> = (lo..hi)
            .map(|j| {
                let x = (j as f64 - center + 0.5) * inv_scale;
                (1.0 - x.abs()).max(0.0)
            })
            .collect();
        let total: f64 = w.iter().sum();
        if total > 0.0 {
            w.iter_mut().for_each(|v| *v /= total);
        }
        taps.start.push(lo);
        taps.weights.push(w.into_iter().map(|v| v as f32).collect());
    }
    taps
}

/// The resized size (height, width) whose shorter side is `shorter`, torchvision's rounding.
fn resized_size(height: usize, width: usize, shorter: usize) -> (usize, usize) {
    if width <= height {
        ((shorter as f64 * height as f64 / width as f64) as usize, shorter)
    } else {
        (shorter, (shorter as f64 * width as f64 / height as f64) as usize)
    }
}

/// Applies `spec` to an RGB image: returns `3 * crop * crop` floats, channel-major (CHW).
pub fn image_to_chw(image: &RgbImage, spec: &InputSpec) -> Vec<f32> {
    let (in_h, in_w) = (image.height() as usize, image.width() as usize);
    let crop = spec.crop as usize;
    let (out_h, out_w) = resized_size(in_h, in_w, spec.resize_shorter as usize);
    let top = ((out_h as f64 - crop as f64) / 2.0).round().max(0.0) as usize;
    let left = ((out_w as f64 - crop as f64) / 2.0).round().max(0.0) as usize;
    let rows = bilinear_aa_taps(in_h, out_h, top..(top + crop).min(out_h));
    let cols = bilinear_aa_taps(in_w, out_w, left..(left + crop).min(out_w));
    let mut out = resample(image, &rows, &cols, crop);
    normalise(&mut out, spec);
    out
}

/// `(x - mean) / std` per channel of a CHW image.
pub(crate) fn normalise(chw: &mut [f32], spec: &InputSpec) {
    let plane = chw.len() / 3;
    for (c, values) in chw.chunks_exact_mut(plane.max(1)).enumerate().take(3) {
        values.iter_mut().for_each(|v| *v = (*v - spec.mean[c]) / spec.std[c]);
    }
}

/// The window `(top, left, height, width)` of `image` resampled to `size x size`, channel-major
/// values in [0, 1] (the random resized crop of augmentation).
pub(crate) fn resample_window(image: &RgbImage, window: (usize, usize, usize, usize), size: usize) -> Vec<f32> {
    let (top, left, height, width) = window;
    let offset = |mut taps: Taps, by: usize| {
        taps.start.iter_mut().for_each(|s| *s += by);
        taps
    };
    let rows = offset(bilinear_aa_taps(height, size, 0..size), top);
    let cols = offset(bilinear_aa_taps(width, size, 0..size), left);
    resample(image, &rows, &cols, size)
}

/// The two antialiased passes: input rows and columns through `rows` and `cols` taps into a
/// `(3, crop, crop)` buffer of values in [0, 1] (pixels the taps do not reach stay 0).
fn resample(image: &RgbImage, rows: &Taps, cols: &Taps, crop: usize) -> Vec<f32> {
    let in_w = image.width() as usize;
    let pixels = image.as_raw();

    // Horizontal pass over the input rows the vertical taps need: (rows, crop, 3).
    let first_row = rows.start.first().copied().unwrap_or(0);
    let last_row = rows.start.iter().zip(&rows.weights).map(|(s, w)| s + w.len()).max().unwrap_or(0);
    let mut horizontal = vec![0f32; (last_row - first_row) * cols.start.len() * 3];
    for y in first_row..last_row {
        let src = &pixels[y * in_w * 3..(y + 1) * in_w * 3];
        let dst_row = &mut horizontal[(y - first_row) * cols.start.len() * 3..];
        for (x, (&start, weights)) in cols.start.iter().zip(&cols.weights).enumerate() {
            let mut acc = [0f32; 3];
            for (k, &w) in weights.iter().enumerate() {
                let p = &src[(start + k) * 3..(start + k) * 3 + 3];
                for c in 0..3 {
                    acc[c] += w * (p[c] as f32 / 255.0);
                }
            }
            dst_row[x * 3..x * 3 + 3].copy_from_slice(&acc);
        }
    }

    // Vertical pass, written channel-major.
    let (out_rows, out_cols) = (rows.start.len(), cols.start.len());
    let mut out = vec![0f32; 3 * crop * crop];
    for (y, (&start, weights)) in rows.start.iter().zip(&rows.weights).enumerate() {
        for x in 0..out_cols {
            let mut acc = [0f32; 3];
            for (k, &w) in weights.iter().enumerate() {
                let p = &horizontal[((start + k - first_row) * out_cols + x) * 3..][..3];
                for c in 0..3 {
                    acc[c] += w * p[c];
                }
            }
            for c in 0..3 {
                out[c * crop * crop + y * crop + x] = acc[c];
            }
        }
    }
    debug_assert!(out_rows <= crop && out_cols <= crop);
    out
}

/// Decodes and transforms a batch of image files into a `(N, 3, crop, crop)` tensor.
pub fn images_to_tensor(images: &[RgbImage], spec: &InputSpec, device: &Device) -> Result<Tensor> {
    let crop = spec.crop as usize;
    let mut data = Vec::with_capacity(images.len() * 3 * crop * crop);
    for image in images {
        data.extend(image_to_chw(image, spec));
    }
    Ok(Tensor::from_vec(data, (images.len(), 3, crop, crop), device)?)
}

/// A sample's image as the project keeps it: downscaled to what the backbone needs (shorter
/// side at most `resize_shorter`) and encoded, JPEG (quality 90) for photos and frames, PNG
/// for small images (shorter side up to [`PNG_MAX_SIDE`]), where JPEG's blocks would show.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredImage {
    pub mime: String,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

/// Shorter sides up to this are stored losslessly.
pub const PNG_MAX_SIDE: u32 = 64;

/// See [`StoredImage`]; decoding the bytes gives back the same size.
pub fn store_image(image: &RgbImage, spec: &InputSpec) -> Result<StoredImage> {
    let (w, h) = image.dimensions();
    let shorter = w.min(h).max(1);
    let scaled;
    let image = if shorter > spec.resize_shorter {
        let scale = spec.resize_shorter as f64 / shorter as f64;
        let (nw, nh) = (((w as f64 * scale).round() as u32).max(1), ((h as f64 * scale).round() as u32).max(1));
        scaled = image::imageops::resize(image, nw, nh, image::imageops::FilterType::Triangle);
        &scaled
    } else {
        image
    };
    let mut bytes = Vec::new();
    let mime = if image.width().min(image.height()) <= PNG_MAX_SIDE {
        image.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png).map(|()| "image/png")
    } else {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(image).map(|()| "image/jpeg")
    }
    .map_err(|e| GraftError::NotAnImage { name: "sample".into(), reason: format!("could not encode it: {e}") })?;
    Ok(StoredImage { mime: mime.into(), width: image.width(), height: image.height(), bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_images_are_downscaled_photos_in_jpeg_and_small_images_in_png() {
        let photo = RgbImage::from_fn(1200, 800, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let stored = store_image(&photo, &InputSpec::imagenet()).unwrap();
        assert_eq!((stored.mime.as_str(), stored.width, stored.height), ("image/jpeg", 384, 256));
        let back = decode_image("stored.jpg", &stored.bytes).unwrap();
        assert_eq!(back.dimensions(), (384, 256));
        let small = RgbImage::from_fn(28, 28, |x, y| image::Rgb([(x * 9) as u8, (y * 9) as u8, 0]));
        let stored = store_image(&small, &InputSpec::imagenet()).unwrap();
        assert_eq!(stored.mime, "image/png");
        assert_eq!(decode_image("stored.png", &stored.bytes).unwrap(), small, "PNG is lossless");
    }

    #[test]
    fn taps_sum_to_one_and_stay_in_bounds() {
        for (input, output) in [(500, 256), (256, 256), (28, 256), (1000, 3), (7, 5)] {
            let taps = bilinear_aa_taps(input, output, 0..output);
            for (start, w) in taps.start.iter().zip(&taps.weights) {
                assert!(start + w.len() <= input);
                let sum: f32 = w.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "{input}->{output}: {sum}");
            }
        }
    }

    #[test]
    fn identity_size_copies_pixels() {
        let taps = bilinear_aa_taps(10, 10, 0..10);
        for (i, (start, w)) in taps.start.iter().zip(&taps.weights).enumerate() {
            let value: f32 = w.iter().enumerate().map(|(k, w)| w * (start + k) as f32).sum();
            assert!((value - i as f32).abs() < 1e-5);
        }
    }

    #[test]
    fn resized_size_follows_torchvision() {
        assert_eq!(resized_size(300, 451, 256), (256, 384));
        assert_eq!(resized_size(512, 512, 256), (256, 256));
        assert_eq!(resized_size(28, 28, 256), (256, 256));
        assert_eq!(resized_size(640, 480, 256), (341, 256));
    }

    #[test]
    fn constant_image_normalises_to_constant() {
        let image = RgbImage::from_pixel(317, 211, image::Rgb([255, 0, 128]));
        let spec = InputSpec::imagenet();
        let chw = image_to_chw(&image, &spec);
        assert_eq!(chw.len(), 3 * 224 * 224);
        let expect = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (128.0 / 255.0 - 0.406) / 0.225];
        for c in 0..3 {
            for v in &chw[c * 224 * 224..(c + 1) * 224 * 224] {
                assert!((v - expect[c]).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn bad_bytes_are_typed_errors() {
        assert!(matches!(decode_image("a.png", b""), Err(GraftError::EmptyFile { .. })));
        assert!(matches!(decode_image("notes.txt", b"hello, this is text"), Err(GraftError::NotAnImage { .. })));
        // A PNG signature followed by garbage.
        let broken = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRgarbage";
        assert!(matches!(decode_image("b.png", broken), Err(GraftError::NotAnImage { .. })));
    }

    #[test]
    fn huge_image_is_refused_before_decoding() {
        // A valid PNG header claiming 20000 x 20000 pixels, with no pixel data at all.
        let mut png = Vec::new();
        png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&20000u32.to_be_bytes());
        ihdr.extend_from_slice(&20000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        // The decoder reads the header chunks up to the first IDAT, which may be empty.
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(b"IDAT");
        png.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
        assert!(matches!(decode_image("huge.png", &png), Err(GraftError::ImageTooLarge { width: 20000, .. })));
    }

    #[test]
    fn transparent_pixels_become_white() {
        let mut image = image::RgbaImage::new(2, 1);
        image.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        image.put_pixel(1, 0, image::Rgba([10, 20, 30, 255]));
        let rgb = flatten_on_white(DynamicImage::ImageRgba8(image));
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(1, 0).0, [10, 20, 30]);
    }

    #[test]
    fn rgba_frames_are_checked_and_flattened() {
        let frame = image_from_rgba("frame", 2, 1, vec![10, 20, 30, 255, 0, 0, 0, 0]).unwrap();
        assert_eq!(frame.get_pixel(0, 0).0, [10, 20, 30]);
        assert_eq!(frame.get_pixel(1, 0).0, [255, 255, 255]);
        assert!(matches!(image_from_rgba("frame", 3, 3, vec![0; 8]), Err(GraftError::NotAnImage { .. })));
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}
