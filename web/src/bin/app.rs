//! Mounts the Graft page.
fn main() {
    yew::Renderer::<graft_web::components::App>::new().render();
}
