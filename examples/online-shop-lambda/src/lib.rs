//! The online shop on AWS Lambda: `catalog-lambda` and `ordering-lambda`,
//! each the `bootstrap` of its plugin's functions. Mails go through an
//! `EmailService` that logs them (a real mail client plugs in here).
use std::sync::Arc;

use online_shop::ordering::{EmailService, Mail};
use reventless_spec::Capabilities;

/// Writes each mail to the function's log instead of sending it.
pub struct LoggedEmailService;

impl EmailService for LoggedEmailService {
    fn send(&self, mail: Mail) -> Result<(), String> {
        eprintln!("mail to {}: {}", mail.to, mail.subject);
        Ok(())
    }
}

/// The capabilities of the shop's functions.
pub fn capabilities() -> Capabilities {
    Capabilities::new().with::<dyn EmailService>(Arc::new(LoggedEmailService))
}

/// Runs a plugin as a Lambda function (or prints its manifest when asked).
pub fn serve(plugin: reventless_core::Plugin) -> std::process::ExitCode {
    reventless_aws::lambda::main(plugin, capabilities())
}
