//! The app: the Library plugin on the local platform.
//!
//! `cargo run -- dev` serves its GraphQL API on 127.0.0.1:4000 (GraphiQL at
//! `/`), `cargo run -- script data/first-day.jsonl` runs commands from a
//! file and prints the rows, `cargo run -- manifest` shows the plugin.
use std::process::ExitCode;

use reventless::App;

// mimalloc: small allocations dominate a GraphQL request.
#[global_allocator]
static ALLOCATOR: reventless::Allocator = reventless::Allocator;

fn main() -> ExitCode {
    match App::new().plugin(library::plugin()).run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
