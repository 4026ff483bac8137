//! Registers the model worker; runs inside a Web Worker.
use yew_agent::Registrable;

fn main() {
    graft_web::worker::GraftWorker::registrar().register();
}
