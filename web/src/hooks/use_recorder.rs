//! Hold-to-record: while a class's button is held, capture a webcam frame into that class at
//! the chosen rate.

use gloo::timers::callback::Interval;
use yew::prelude::*;

/// `capture(class_id)` grabs one frame into a class.
#[derive(Clone)]
pub struct RecorderHandle {
    pub fps: u32,
    pub set_fps: Callback<u32>,
    /// The class being recorded into.
    pub recording: Option<u64>,
    /// Start (`true`) or stop (`false`) recording into a class.
    pub record: Callback<(u64, bool)>,
}

#[hook]
pub fn use_recorder(capture: Callback<u64>) -> RecorderHandle {
    let fps = use_state(|| 10u32);
    let recording = use_state(|| None::<u64>);
    let timer = use_mut_ref(|| None::<Interval>);
    let set_fps = {
        let fps = fps.clone();
        Callback::from(move |value: u32| fps.set(value))
    };
    let record = {
        let (fps, recording) = (fps.clone(), recording.clone());
        Callback::from(move |(class_id, start): (u64, bool)| {
            if !start {
                timer.borrow_mut().take();
                recording.set(None);
                return;
            }
            if timer.borrow().is_some() {
                return;
            }
            capture.emit(class_id);
            let capture = capture.clone();
            *timer.borrow_mut() = Some(Interval::new(1000 / (*fps).max(1), move || capture.emit(class_id)));
            recording.set(Some(class_id));
        })
    };
    RecorderHandle { fps: *fps, set_fps, recording: *recording, record }
}
