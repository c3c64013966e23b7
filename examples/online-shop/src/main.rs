//! The online shop's composition root: the Catalog and Ordering plugins on
//! the local platform, with a recording fake for the `EmailService` (its
//! API key from `REVENTLESS_SECRET_MAIL_API_KEY` or `.reventless/secrets.toml`;
//! with `REVENTLESS_MAIL_OUTBOX=<file>` every send attempt is appended there,
//! one JSON line each, so several processes on one database share it).
use std::process::ExitCode;

use reventless::App;

#[global_allocator]
static ALLOCATOR: reventless::Allocator = reventless::Allocator;

fn main() -> ExitCode {
    let (capabilities, _mails) = online_shop::ordering::dev_capabilities();
    let app = online_shop::plugins()
        .into_iter()
        .fold(App::new(), App::plugin)
        .capabilities(capabilities)
        .seed(online_shop::seed::seed);
    match app.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
