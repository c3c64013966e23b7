//! The online shop's composition root: `manifest` prints what the plugins
//! are made of; `demo` runs a short scenario on the local platform.
use std::process::ExitCode;

use online_shop::catalog;
use reventless::App;

fn main() -> ExitCode {
    let app = App::new().plugin(catalog::plugin());
    match app.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
