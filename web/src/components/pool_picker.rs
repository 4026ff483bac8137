//! The embedding pool: how many workers embed new samples in parallel (`pool-size`), and the
//! choice of that number (`pool-select`: one per core, or a fixed count), kept in this
//! browser's local storage since it belongs to the device, not the project.

use gloo::storage::{LocalStorage, Storage};
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use crate::i18n::{use_lang, Lang};
use crate::protocol::PoolStatus;
use crate::t;
use crate::worker::pool::MAX_WORKERS;

const STORAGE_KEY: &str = "graft.embedWorkers";

/// The workers asked for in this browser (`None`: one per core).
pub fn stored_choice() -> Option<u32> {
    LocalStorage::get::<u32>(STORAGE_KEY).ok().filter(|n| (1..=MAX_WORKERS).contains(n))
}

fn store_choice(choice: Option<u32>) {
    match choice {
        Some(workers) => {
            let _ = LocalStorage::set(STORAGE_KEY, workers);
        }
        None => LocalStorage::delete(STORAGE_KEY),
    }
}

#[derive(Properties, PartialEq)]
pub struct PoolPickerProps {
    pub pool: Option<PoolStatus>,
    pub on_choose: Callback<Option<u32>>,
}

fn summary(lang: Lang, pool: &PoolStatus) -> String {
    let memory = match pool.memory_bytes {
        0 => String::new(),
        bytes => t!(lang, "pool-memory", megabytes = format!("{:.0}", bytes as f64 / 1e6)),
    };
    let loading = match pool.workers - pool.loaded.min(pool.workers) {
        0 => String::new(),
        n => t!(lang, "pool-loading", loading = n),
    };
    t!(lang, "pool-summary", workers = pool.workers, cores = pool.cores, details = memory + &loading)
}

#[function_component(PoolPicker)]
pub fn pool_picker(props: &PoolPickerProps) -> Html {
    let choice = use_state(stored_choice);
    let lang = use_lang();
    let on_change = {
        let (choice, on_choose) = (choice.clone(), props.on_choose.clone());
        Callback::from(move |e: Event| {
            let picked = e.target_unchecked_into::<HtmlSelectElement>().value().parse::<u32>().ok();
            store_choice(picked);
            choice.set(picked);
            on_choose.emit(picked);
        })
    };
    let Some(pool) = &props.pool else { return html! {} };
    let offered = pool.cores.clamp(2, MAX_WORKERS);
    html! {
        <div class="pool">
            <span data-testid="pool-size" data-workers={ pool.workers.to_string() } data-loaded={ pool.loaded.to_string() }
                data-memory-bytes={ pool.memory_bytes.to_string() }
                title={ t!(lang, "pool-title") }>
                { summary(lang, pool) }
            </span>
            if let Some(note) = &pool.note {
                <span class="pool-note" data-testid="pool-note">{ lang.text(note) }</span>
            }
            <label>{ t!(lang, "pool-workers") }{ " " }
                <select data-testid="pool-select" onchange={ on_change }>
                    <option value="auto" selected={ choice.is_none() }>{ t!(lang, "pool-auto") }</option>
                    { for (1..=offered).map(|n| html! {
                        <option value={ n.to_string() } selected={ *choice == Some(n) }>{ n }</option>
                    }) }
                </select>
            </label>
        </div>
    }
}
