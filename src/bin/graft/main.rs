//! The `graft` command line (see `cli.rs`; `train.rs` holds `graft train`, `predict.rs` `graft predict`, `rank.rs` `graft rank`, `files.rs` reads the model folder, `adapt.rs` the target images of domain adaptation). Native only: on wasm32 the binary is empty so
//! that `cargo test --target wasm32-unknown-unknown` can build the package.

#[cfg(not(target_arch = "wasm32"))]
mod adapt;
#[cfg(not(target_arch = "wasm32"))]
mod cli;
#[cfg(not(target_arch = "wasm32"))]
mod files;
#[cfg(not(target_arch = "wasm32"))]
mod predict;
#[cfg(not(target_arch = "wasm32"))]
mod rank;
#[cfg(not(target_arch = "wasm32"))]
mod train;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {}
