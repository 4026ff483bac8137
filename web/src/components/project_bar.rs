//! The project bar: which saved project is open (pick another, rename, new, delete with a
//! confirmation), its files (export and import a `.graft` project, export the trained model),
//! and how much the browser stores for this site.

use web_sys::{File, HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::file_input::emit_first_file;
use crate::i18n::use_lang;
use crate::protocol::ProjectSummary;
use crate::t;

#[derive(Properties, PartialEq)]
pub struct ProjectBarProps {
    pub project_id: Option<String>,
    pub name: String,
    pub projects: Vec<ProjectSummary>,
    /// `(usage, quota)` in bytes.
    pub storage: Option<(f64, f64)>,
    /// Images in the open project (the list's count for it is as of the last listing).
    pub samples: usize,
    pub trained: bool,
    pub busy: bool,
    /// This tab may change the open project (no other tab edits it).
    pub editable: bool,
    pub on_open: Callback<String>,
    pub on_rename: Callback<String>,
    pub on_new: Callback<()>,
    pub on_delete: Callback<()>,
    pub on_export: Callback<()>,
    pub on_import: Callback<File>,
    pub on_export_model: Callback<()>,
}

/// `1.2 MB`, `3.4 GB`: decimal units, as browsers report storage.
pub fn bytes_text(bytes: f64) -> String {
    match bytes {
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.1} MB", b / 1e6),
        b => format!("{:.0} kB", b / 1e3),
    }
}

fn confirmed(question: &str) -> bool {
    gloo::utils::window().confirm_with_message(question).unwrap_or(false)
}

#[derive(Properties, PartialEq)]
struct ProjectNameProps {
    name: String,
    on_rename: Callback<String>,
    disabled: bool,
}

/// The open project's name, renamed when the field is left. It keeps the text as
/// typed: rendered from the saved name alone, any re-render while a person types (a sample
/// embedded, the storage counted) would put the saved name back, and the rename would be lost.
#[function_component(ProjectName)]
fn project_name(props: &ProjectNameProps) -> Html {
    let typed = use_state(|| props.name.clone());
    {
        // The rename landed, or another tab's name came: the field shows it.
        let typed = typed.clone();
        use_effect_with(props.name.clone(), move |name| typed.set(name.clone()));
    }
    let on_input = {
        let typed = typed.clone();
        Callback::from(move |e: InputEvent| typed.set(e.target_unchecked_into::<HtmlInputElement>().value()))
    };
    let on_change = {
        let (typed, on_rename) = (typed.clone(), props.on_rename.clone());
        Callback::from(move |e: Event| {
            let name = e.target_unchecked_into::<HtmlInputElement>().value().trim().to_string();
            // The saved name is trimmed: the field shows it so, also when nothing else changed.
            typed.set(name.clone());
            on_rename.emit(name);
        })
    };
    html! {
        <input type="text" data-testid="project-name" value={ (*typed).clone() } oninput={ on_input }
            onchange={ on_change } disabled={ props.disabled } />
    }
}

#[function_component(ProjectBar)]
pub fn project_bar(props: &ProjectBarProps) -> Html {
    let import_input = use_node_ref();
    let lang = use_lang();
    let on_select = props.on_open.reform(|e: Event| e.target_unchecked_into::<HtmlSelectElement>().value());
    let on_new = props.on_new.reform(|_: MouseEvent| ());
    let on_delete = {
        let (on_delete, name) = (props.on_delete.clone(), props.name.clone());
        Callback::from(move |_: MouseEvent| {
            if confirmed(&t!(lang, "project-delete-confirm", name = &name)) {
                on_delete.emit(());
            }
        })
    };
    let on_export = props.on_export.reform(|_: MouseEvent| ());
    let on_export_model = props.on_export_model.reform(|_: MouseEvent| ());
    let on_import = emit_first_file(&import_input, &props.on_import);
    let open = props.project_id.is_some() && !props.busy;
    html! {
        <section class="project-bar" aria-label={ t!(lang, "project-label") }>
            <label>{ t!(lang, "project-label") }{ " " }
                <select data-testid="project-select" onchange={ on_select } disabled={ !open }>
                    { for props.projects.iter().map(|p| {
                        let open = Some(&p.id) == props.project_id.as_ref();
                        let (name, samples) = if open { (&props.name, props.samples) } else { (&p.name, p.samples) };
                        let text = match p.damaged && !open {
                            true => t!(lang, "project-option-damaged", samples = samples),
                            false => t!(lang, "project-option", name = name, samples = samples),
                        };
                        html! { <option value={ p.id.clone() } selected={ open } data-damaged={ p.damaged.to_string() }>{ text }</option> }
                    }) }
                </select>
            </label>
            <label>{ t!(lang, "project-name") }{ " " }
                // Keyed by the project: another project (even of the same name) gets a fresh field.
                <ProjectName key={ props.project_id.clone().unwrap_or_default() } name={ props.name.clone() } on_rename={ props.on_rename.clone() } disabled={ !open || !props.editable } />
            </label>
            <button data-testid="new-project" onclick={ on_new } disabled={ !open }>{ t!(lang, "project-new") }</button>
            <button data-testid="delete-project" onclick={ on_delete } disabled={ !open || !props.editable }>{ t!(lang, "project-delete") }</button>
            <button data-testid="export-project" onclick={ on_export } disabled={ !open }>{ t!(lang, "project-export") }</button>
            <label class="file-button">{ t!(lang, "project-import") }
                <input ref={ import_input } type="file" accept=".graft,application/zip" data-testid="import-project"
                    onchange={ on_import } disabled={ !open } />
            </label>
            <button data-testid="export-model" onclick={ on_export_model } disabled={ !open || !props.trained }
                title={ t!(lang, "model-export-title") }>{ t!(lang, "model-export") }</button>
            <span class="storage" data-testid="storage-used">
                { match props.storage {
                    Some((usage, quota)) => t!(lang, "storage-used", used = bytes_text(usage), quota = bytes_text(quota)),
                    None if props.project_id.is_some() => t!(lang, "storage-saved"),
                    None => t!(lang, "storage-opening"),
                } }
            </span>
        </section>
    }
}
