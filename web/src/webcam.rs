//! The webcam: opening a camera, listing cameras, and capturing frames as RGBA (for the
//! worker) plus a small JPEG data URL (for the thumbnail). Frames are drawn so that their
//! shorter side is 256 pixels, the size the backbone's transform resizes to anyway.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    CanvasRenderingContext2d, DomException, HtmlCanvasElement, HtmlVideoElement, MediaDeviceInfo, MediaDeviceKind,
    MediaStream, MediaStreamConstraints,
};

use crate::i18n::Text;
use crate::protocol::ImageData;

const FRAME_SHORTER_SIDE: f64 = 256.0;
const THUMBNAIL_SIDE: f64 = 64.0;

/// A camera the browser offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Camera {
    pub device_id: String,
    pub label: String,
}

/// A message a person can act on, for each way opening the camera fails.
fn camera_error(error: JsValue) -> Text {
    match error.dyn_ref::<DomException>().map(|e| e.name()) {
        Some(name) if name == "NotAllowedError" || name == "SecurityError" => Text::new("camera-denied"),
        Some(name) if name == "NotFoundError" || name == "OverconstrainedError" => Text::new("camera-missing"),
        Some(name) if name == "NotReadableError" => Text::new("camera-busy"),
        Some(name) => Text::new("camera-failed-named").arg("name", name),
        None => Text::new("camera-failed"),
    }
}

/// Which camera to open: a listed device, or the one facing a way (a phone's rear camera is
/// `environment`, its selfie camera `user`); `Default` lets the browser pick.
#[derive(Clone, Debug, PartialEq)]
pub enum CameraSource {
    Default,
    Device(String),
    Facing(&'static str),
}

/// Opens `source` and plays it in `video`.
pub async fn open(video: &HtmlVideoElement, source: &CameraSource) -> Result<MediaStream, Text> {
    let devices = gloo::utils::window().navigator().media_devices().map_err(|_| Text::new("camera-unavailable"))?;
    let constraints = MediaStreamConstraints::new();
    let video_constraints = Object::new();
    let (key, value, strength) = match source {
        CameraSource::Default => ("", "", ""),
        CameraSource::Device(id) => ("deviceId", id.as_str(), "exact"),
        // `ideal`: a laptop with one camera still opens it.
        CameraSource::Facing(facing) => ("facingMode", *facing, "ideal"),
    };
    if !key.is_empty() {
        let wanted = Object::new();
        let _ = Reflect::set(&wanted, &strength.into(), &value.into());
        let _ = Reflect::set(&video_constraints, &key.into(), &wanted);
    }
    constraints.set_video(&video_constraints);
    let promise = devices.get_user_media_with_constraints(&constraints).map_err(camera_error)?;
    let stream: MediaStream = JsFuture::from(promise).await.map_err(camera_error)?.unchecked_into();
    video.set_src_object(Some(&stream));
    video.set_muted(true);
    if let Ok(playing) = video.play() {
        let _ = JsFuture::from(playing).await;
    }
    Ok(stream)
}

/// Stops every track of `stream`.
pub fn close(stream: &MediaStream) {
    for track in stream.get_tracks().iter() {
        if let Ok(track) = track.dyn_into::<web_sys::MediaStreamTrack>() {
            track.stop();
        }
    }
}

/// The cameras the browser lists (labels appear once permission is granted).
pub async fn cameras() -> Vec<Camera> {
    let Ok(devices) = gloo::utils::window().navigator().media_devices() else {
        return Vec::new();
    };
    let Ok(promise) = devices.enumerate_devices() else {
        return Vec::new();
    };
    let Ok(list) = JsFuture::from(promise).await else {
        return Vec::new();
    };
    Array::from(&list)
        .iter()
        .filter_map(|d| d.dyn_into::<MediaDeviceInfo>().ok())
        .filter(|d| d.kind() == MediaDeviceKind::Videoinput)
        .enumerate()
        .map(|(i, d)| Camera {
            device_id: d.device_id(),
            label: if d.label().is_empty() { format!("Camera {}", i + 1) } else { d.label() },
        })
        .collect()
}

fn context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok()??.dyn_into().ok()
}

fn canvas(width: f64, height: f64) -> Option<HtmlCanvasElement> {
    let canvas: HtmlCanvasElement = gloo::utils::document().create_element("canvas").ok()?.dyn_into().ok()?;
    canvas.set_width(width.round().max(1.0) as u32);
    canvas.set_height(height.round().max(1.0) as u32);
    Some(canvas)
}

/// The current video frame as RGBA for the worker and a thumbnail data URL; `None` until the
/// video has a frame.
pub fn capture(video: &HtmlVideoElement) -> Option<(ImageData, String)> {
    let (w, h) = (video.video_width() as f64, video.video_height() as f64);
    if w < 1.0 || h < 1.0 {
        return None;
    }
    let scale = FRAME_SHORTER_SIDE / w.min(h);
    let frame = canvas(w * scale, h * scale)?;
    let ctx = context(&frame)?;
    ctx.draw_image_with_html_video_element_and_dw_and_dh(video, 0.0, 0.0, frame.width() as f64, frame.height() as f64)
        .ok()?;
    let pixels = ctx.get_image_data(0.0, 0.0, frame.width() as f64, frame.height() as f64).ok()?;
    let thumb_scale = THUMBNAIL_SIDE / w.min(h);
    let thumb = canvas(w * thumb_scale, h * thumb_scale)?;
    context(&thumb)?
        .draw_image_with_html_canvas_element_and_dw_and_dh(
            &frame,
            0.0,
            0.0,
            thumb.width() as f64,
            thumb.height() as f64,
        )
        .ok()?;
    let thumbnail = thumb.to_data_url_with_type("image/jpeg").ok()?;
    Some((ImageData::Frame { width: frame.width(), height: frame.height(), rgba: pixels.data().0 }, thumbnail))
}
