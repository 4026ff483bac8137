//! The guided first run, "two classes from the camera in a minute", for a teacher in front of
//! a class: five steps, each ticked off by what happens on the page (the camera is on, each
//! class has frames, the model is trained, live prediction runs), not by a Next button. It
//! opens on a browser's first visit, can be skipped (remembered in local storage) and opened
//! again from the header.

use gloo::storage::{LocalStorage, Storage};
use yew::prelude::*;

use crate::i18n::use_lang;
use crate::t;

const STORAGE_KEY: &str = "graft.tourSkipped";

/// Frames per class before the guide moves on (enough for a first model to tell two apart).
pub const FRAMES_PER_CLASS: usize = 10;

/// Whether the guide opens by itself: until it is skipped once in this browser.
pub fn opens_by_itself() -> bool {
    !LocalStorage::get::<bool>(STORAGE_KEY).unwrap_or(false)
}

pub fn remember_skipped() {
    let _ = LocalStorage::set(STORAGE_KEY, true);
}

/// What the guide watches.
#[derive(Properties, PartialEq)]
pub struct TourProps {
    pub camera_on: bool,
    /// Samples in the first two classes.
    pub first_counts: [usize; 2],
    pub trained: bool,
    pub live: bool,
    pub on_skip: Callback<()>,
}

/// The steps' message ids and whether each is done.
fn steps(props: &TourProps) -> [(&'static str, bool); 5] {
    let [first, second] = props.first_counts;
    [
        ("tour-camera", props.camera_on || first >= FRAMES_PER_CLASS),
        ("tour-first-class", first >= FRAMES_PER_CLASS),
        ("tour-second-class", second >= FRAMES_PER_CLASS),
        ("tour-train", props.trained),
        ("tour-live", props.live),
    ]
}

#[function_component(Tour)]
pub fn tour(props: &TourProps) -> Html {
    let lang = use_lang();
    let steps = steps(props);
    let current = steps.iter().position(|(_, done)| !done);
    let on_skip = props.on_skip.reform(|_: MouseEvent| ());
    html! {
        <section class="tour" data-testid="tour" aria-labelledby="tour-heading"
            data-step={ current.map_or("done".to_string(), |i| (i + 1).to_string()) }>
            <h2 id="tour-heading">{ t!(lang, "tour-heading") }</h2>
            <ol>
                { for steps.iter().enumerate().map(|(i, (id, done))| html! {
                    <li class={ classes!(done.then_some("done"), (Some(i) == current).then_some("current")) }
                        aria-current={ (Some(i) == current).then_some("step") }>
                        <span class="tick" aria-hidden="true">{ if *done { "✓" } else { "" } }</span>
                        { lang.tr(id) }
                    </li>
                }) }
            </ol>
            <p class="tour-status" role="status">{ match current {
                Some(i) => t!(lang, "tour-progress", step = i + 1, steps = steps.len()),
                None => t!(lang, "tour-finished"),
            } }</p>
            <button data-testid="tour-skip" onclick={ on_skip }>{ if current.is_some() { t!(lang, "tour-skip") } else { t!(lang, "tour-close") } }</button>
        </section>
    }
}
