//! Broken and hostile inputs, generated here (no committed binaries): every image in the
//! corpus below is decoded correctly or refused with its own message, and property tests
//! feed random and corrupted bytes to every decoder a file from a user reaches (images, the
//! `.pth` reader, model files), which must answer with a typed error, never a panic. They run
//! with integer overflow checks on in every crate (`cargo xtask test native`, `cache::checked_cargo` in xtask), and any
//! input that fails one is written to `hostile_inputs.regressions` beside this file, which
//! proptest replays first on every later run (commit it with the fix).

#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::io::Cursor;

use graft::preprocess::decode_image;
use graft::train::ModelFile;
use graft::weights::legacy_pth::read_legacy_pth;
use graft::GraftError;
use image::{ImageFormat, Rgb, RgbImage};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

fn encode(image: image::DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), format).unwrap();
    bytes
}

/// A 40x20 picture: red on the left half, blue on the right.
fn halves() -> RgbImage {
    RgbImage::from_fn(40, 20, |x, _| if x < 20 { Rgb([230, 20, 20]) } else { Rgb([20, 20, 230]) })
}

fn jpeg() -> Vec<u8> {
    encode(halves().into(), ImageFormat::Jpeg)
}

/// `jpeg` with an EXIF segment saying "rotate 90 degrees clockwise to display" (orientation 6).
fn exif_rotated_jpeg() -> Vec<u8> {
    let mut tiff = b"II*\x00\x08\x00\x00\x00".to_vec();
    tiff.extend([1, 0]); // one IFD entry
    tiff.extend([0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]); // Orientation, SHORT, 1, = 6
    tiff.extend([0, 0, 0, 0]); // no next IFD
    let mut segment = b"Exif\x00\x00".to_vec();
    segment.extend(tiff);
    let length = (segment.len() + 2) as u16;
    let jpeg = jpeg();
    let mut bytes = jpeg[..2].to_vec();
    bytes.extend([0xFF, 0xE1]);
    bytes.extend(length.to_be_bytes());
    bytes.extend(segment);
    bytes.extend(&jpeg[2..]);
    bytes
}

/// A PNG whose header declares 30000 x 30000 pixels (2.7 GB of RGB), with a tiny body.
fn png_bomb() -> Vec<u8> {
    let mut bytes = encode(RgbImage::new(1, 1).into(), ImageFormat::Png);
    // IHDR's width and height follow the 8-byte signature, the chunk length and its type.
    bytes[16..20].copy_from_slice(&30_000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&30_000u32.to_be_bytes());
    // The chunk's CRC covers its type and data.
    let mut crc = flate2::Crc::new();
    crc.update(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    bytes
}

fn animated_gif() -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut bytes);
        let frames = [Rgb([10, 200, 10]), Rgb([200, 10, 10])].map(|c| {
            let rgba = image::DynamicImage::from(RgbImage::from_pixel(16, 16, c)).to_rgba8();
            image::Frame::new(rgba)
        });
        encoder.encode_frames(frames).unwrap();
    }
    bytes
}

fn cmyk_jpeg() -> Vec<u8> {
    let mut bytes = Vec::new();
    // Pure cyan: C = 255, M = Y = K = 0.
    let pixels: Vec<u8> = (0..16 * 16).flat_map(|_| [255u8, 0, 0, 0]).collect();
    jpeg_encoder::Encoder::new(&mut bytes, 95).encode(&pixels, 16, 16, jpeg_encoder::ColorType::Cmyk).unwrap();
    bytes
}

#[test]
fn the_corpus_of_nasty_images_is_decoded_or_refused_with_its_reason() {
    let jpeg = jpeg();
    let refused: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.jpg", Vec::new(), "is empty (0 bytes)"),
        ("truncated.jpg", jpeg[..jpeg.len() * 2 / 3].to_vec(), "is truncated"),
        ("cut-before-the-scan.jpg", jpeg[..200].to_vec(), "is truncated"),
        ("random.jpg", (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect(), "not an image"),
        ("bomb.png", png_bomb(), "too large (30000x30000 pixels)"),
        ("notes.txt.png", b"just some words, not pixels".to_vec(), "not an image"),
        ("truncated.png", encode(halves().into(), ImageFormat::Png)[..60].to_vec(), "not an image"),
    ];
    for (name, bytes, expected) in refused {
        let message = decode_image(name, &bytes).err().unwrap_or_else(|| panic!("{name} was accepted")).to_string();
        assert!(message.contains(name) && message.contains(expected), "{name}: {message}");
    }
    // A 100 MB upload that starts like a JPEG but never ends: refused as truncated after one scan.
    let mut huge = jpeg[..jpeg.len() - 2].to_vec();
    huge.resize(100 << 20, 0x55);
    assert!(matches!(decode_image("huge.jpg", &huge), Err(GraftError::TruncatedImage { .. })));
}

#[test]
fn unusual_but_valid_images_decode_to_upright_rgb() {
    let rotated = decode_image("rotated.jpg", &exif_rotated_jpeg()).unwrap();
    assert_eq!(rotated.dimensions(), (20, 40), "the EXIF orientation is applied");
    // Rotated clockwise, the red left half is now on top.
    assert!(rotated.get_pixel(10, 5)[0] > 150 && rotated.get_pixel(10, 35)[2] > 150);
    let gif = decode_image("animated.gif", &animated_gif()).unwrap();
    assert_eq!(gif.get_pixel(8, 8).0, [10, 200, 10], "the first frame");
    let cmyk = decode_image("cmyk.jpg", &cmyk_jpeg()).unwrap();
    let [r, g, b] = cmyk.get_pixel(8, 8).0;
    assert!(r < 60 && g > 190 && b > 190, "cyan decodes as cyan, got {:?}", [r, g, b]);
    let grey = image::GrayImage::from_fn(8, 8, |x, _| image::Luma([x as u8 * 30]));
    let decoded = decode_image("grey.png", &encode(grey.into(), ImageFormat::Png)).unwrap();
    assert_eq!(decoded.get_pixel(3, 0).0, [90, 90, 90]);
    let deep = image::ImageBuffer::<Rgb<u16>, _>::from_pixel(8, 8, Rgb([65535u16, 32896, 0]));
    let decoded = decode_image("deep.png", &encode(deep.into(), ImageFormat::Png)).unwrap();
    assert_eq!(decoded.get_pixel(0, 0).0, [255, 128, 0], "16-bit channels scale to 8");
    assert_eq!(decode_image("photo.jpg", &jpeg()).unwrap().dimensions(), (40, 20));
}

/// Flips `edits` bytes of `bytes` and cuts it after `cut`.
fn corrupt(bytes: &[u8], edits: &[(prop::sample::Index, u8)], cut: prop::sample::Index) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    for (at, value) in edits {
        let i = at.index(bytes.len());
        bytes[i] = *value;
    }
    bytes.truncate(cut.index(bytes.len()) + 1);
    bytes
}

fn tiny_pth() -> Vec<u8> {
    std::fs::read(common::manifest_dir().join("tests/fixtures/tiny_legacy.pth")).unwrap()
}

fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, u8)>> {
    prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))), ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_a_decoder(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode_image("random", &bytes);
        let _ = read_legacy_pth("random.pth", &bytes);
        let _ = ModelFile::parse("random.safetensors", bytes);
    }

    #[test]
    fn corrupted_images_never_panic(edits in edits(), cut in any::<prop::sample::Index>(), which in 0..4usize) {
        let source = match which {
            0 => jpeg(),
            1 => encode(halves().into(), ImageFormat::Png),
            2 => animated_gif(),
            _ => exif_rotated_jpeg(),
        };
        let _ = decode_image("corrupt", &corrupt(&source, &edits, cut));
    }

    #[test]
    fn corrupted_checkpoints_never_panic(edits in edits(), cut in any::<prop::sample::Index>()) {
        let _ = read_legacy_pth("corrupt.pth", &corrupt(&tiny_pth(), &edits, cut));
    }

    #[test]
    fn corrupted_safetensors_headers_never_panic(edits in edits(), cut in any::<prop::sample::Index>()) {
        // A model-like header: the parser checks it against the metadata.
        let metadata = std::collections::HashMap::from([("graft.format".to_string(), "graft-model".to_string()), ("graft.version".to_string(), "1".to_string())]);
        let data = vec![0u8; 8];
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &data).unwrap();
        let bytes = safetensors::serialize([("output.bias", view)], Some(metadata)).unwrap();
        let _ = ModelFile::parse("corrupt.safetensors", corrupt(&bytes, &edits, cut));
    }
}
