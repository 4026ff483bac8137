//! Live prediction: while on, classify a webcam frame whenever the previous answer is in, so
//! it runs as fast as the worker can and never queues frames.

use std::cell::RefCell;
use std::rc::Rc;

use gloo::timers::callback::Interval;
use web_sys::HtmlVideoElement;
use yew::prelude::*;

use crate::protocol::ToWorker;
use crate::state::next_id;
use crate::webcam;

/// `in_flight` is cleared by the page when a prediction's answer arrives.
#[hook]
pub fn use_live_prediction(live: bool, video: NodeRef, in_flight: Rc<RefCell<bool>>, send: Callback<ToWorker>) {
    use_effect_with(live, move |live| {
        let timer = live.then(|| {
            *in_flight.borrow_mut() = false;
            Interval::new(50, move || {
                if *in_flight.borrow() {
                    return;
                }
                let Some((image, _)) = video.cast::<HtmlVideoElement>().and_then(|v| webcam::capture(&v)) else {
                    return;
                };
                *in_flight.borrow_mut() = true;
                send.emit(ToWorker::Predict { request_id: next_id(), image });
            })
        });
        move || drop(timer)
    });
}
