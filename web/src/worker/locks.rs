//! One editor per project across tabs: the worker that opens a project asks the Web Locks API
//! (`navigator.locks`, which workers have too) for the lock `graft-project:<id>` without
//! waiting. Granted, it saves the project; refused (another tab holds it), the project opens
//! read-only and the page offers to take it over, which steals the lock: the other tab's lock
//! request then fails, and its worker hears of it on [`LockLost`] and stops saving.
//!
//! Why one editor rather than live co-editing: the project record lists every sample, so two
//! writers would need a merge on every save; a lock is one rule the browser enforces, and a
//! take-over reloads the project from storage, so whatever the first tab saved is there.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures::channel::{mpsc, oneshot};
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// A held lock; dropping it releases the lock.
pub struct ProjectLock {
    project_id: String,
    /// Resolves the promise the lock's callback returned (the browser then releases it);
    /// `None` where the browser has no Web Locks (nothing to coordinate with).
    release: Option<Function>,
    /// Set the moment another tab steals the lock, before the worker's loop hears of it, so
    /// that no write slips in between.
    stolen: Rc<Cell<bool>>,
}

impl ProjectLock {
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// This tab still holds the lock.
    pub fn is_held(&self) -> bool {
        !self.stolen.get()
    }
}

/// What the browser answered a lock request.
enum Answer {
    Granted(Function),
    Refused,
    /// The request failed before any answer (an opaque origin, say): nothing to coordinate.
    Unavailable,
}

impl Drop for ProjectLock {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.call0(&JsValue::NULL);
        }
    }
}

/// The id of a project whose lock another tab stole from this one.
pub struct LockLost(pub String);

fn lock_name(project_id: &str) -> String {
    format!("graft-project:{project_id}")
}

/// Asks for `project_id`'s lock: at once or not at all, or `steal`ing it from the tab that
/// holds it. `None`: another tab holds it. When it is stolen later, `lost` hears of it.
pub async fn acquire(project_id: &str, steal: bool, lost: mpsc::UnboundedSender<LockLost>) -> Option<ProjectLock> {
    let stolen = Rc::new(Cell::new(false));
    let lock = |release| ProjectLock { project_id: project_id.to_string(), release, stolen: stolen.clone() };
    let Some((locks, request)) = lock_manager() else { return Some(lock(None)) };
    let options = Object::new();
    let _ = Reflect::set(&options, &(if steal { "steal" } else { "ifAvailable" }).into(), &JsValue::TRUE);
    let (answer, answered) = oneshot::channel::<Answer>();
    let answer = Rc::new(RefCell::new(Some(answer)));
    let say = |answer: &Rc<RefCell<Option<oneshot::Sender<Answer>>>>, what: Answer| {
        answer.borrow_mut().take().is_some_and(|sender| sender.send(what).is_ok())
    };
    let callback = wasm_bindgen::closure::Closure::once_into_js({
        let answer = answer.clone();
        move |granted: JsValue| -> JsValue {
            if granted.is_null() {
                say(&answer, Answer::Refused);
                return JsValue::NULL;
            }
            // Held until `release` resolves this promise.
            let mut release = None;
            let held = Promise::new(&mut |resolve, _| release = Some(resolve));
            say(&answer, release.map_or(Answer::Unavailable, Answer::Granted));
            held.into()
        }
    });
    let name = JsValue::from(lock_name(project_id));
    let Ok(pending) = request.call3(&locks, &name, &options, &callback) else { return Some(lock(None)) };
    let Ok(pending) = pending.dyn_into::<Promise>() else { return Some(lock(None)) };
    let (id, flag) = (project_id.to_string(), stolen.clone());
    // The request's promise settles when the lock is released: rejected when it was stolen,
    // or when the request failed before any answer.
    wasm_bindgen_futures::spawn_local(async move {
        if JsFuture::from(pending).await.is_err() && !say(&answer, Answer::Unavailable) {
            flag.set(true);
            let _ = lost.unbounded_send(LockLost(id));
        }
    });
    match answered.await {
        Ok(Answer::Granted(release)) => Some(lock(Some(release))),
        Ok(Answer::Refused) => None,
        Ok(Answer::Unavailable) | Err(_) => Some(lock(None)),
    }
}

/// `navigator.locks` and its `request` method, where the browser has them.
fn lock_manager() -> Option<(JsValue, Function)> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let locks = Reflect::get(&navigator, &"locks".into()).ok().filter(|l| !l.is_undefined())?;
    let request = Reflect::get(&locks, &"request".into()).ok()?.dyn_into::<Function>().ok()?;
    Some((locks, request))
}
