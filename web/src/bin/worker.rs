//! The model worker, or one of its embedding pool's workers when started under that name;
//! runs inside a Web Worker.
use yew_agent::Registrable;

fn main() {
    if graft_web::worker::embedder::is_embedder() {
        graft_web::worker::embedder::run_embedder();
    } else {
        graft_web::worker::GraftWorker::registrar().register();
    }
}
