//! The online shop on AWS Lambda: `catalog-lambda` and `ordering-lambda`,
//! each the `bootstrap` of its plugin's functions. Mails go through the mail
//! API named by `SHOP_MAIL_API_URL` (set it with the Ordering stack's
//! `env_vars`), authenticated with the secret `mail-api-key` (`[secrets]`);
//! without that URL they are written to the function's log.
use std::sync::{Arc, OnceLock};

use online_shop::ordering::{EmailService, MAIL_API_KEY, Mail, Sending};
use reventless_spec::{Capabilities, Secrets};

/// The environment variable naming the mail API's endpoint.
pub const MAIL_API_URL_ENV: &str = "SHOP_MAIL_API_URL";

/// Writes each mail to the function's log instead of sending it.
pub struct LoggedEmailService;

impl EmailService for LoggedEmailService {
    fn send<'a>(&'a self, mail: Mail, _: &'a Secrets) -> Sending<'a> {
        eprintln!("mail to {}: {}", mail.to, mail.subject);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// A transactional-mail API client: `POST <url>` with the mail as JSON and
/// `Authorization: Bearer <mail-api-key>`; any 2xx answer means accepted.
pub struct MailApiClient {
    url: String,
    /// Made on the first mail (nothing at a function's init).
    http: OnceLock<reqwest::Client>,
}

impl MailApiClient {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), http: OnceLock::new() }
    }
}

impl EmailService for MailApiClient {
    fn send<'a>(&'a self, mail: Mail, secrets: &'a Secrets) -> Sending<'a> {
        Box::pin(async move {
            let key = secrets.get(MAIL_API_KEY).await.map_err(|e| e.to_string())?;
            let http = self.http.get_or_init(reqwest::Client::new);
            let answer = http
                .post(&self.url)
                .bearer_auth(key.expose())
                .json(&serde_json::json!({"to": mail.to, "subject": mail.subject, "body": mail.body}))
                .send()
                .await
                // Without the URL: reqwest's text names it, and the key is in a header.
                .map_err(|e| format!("mail API {} unreachable: {}", self.url, e.without_url()))?;
            if !answer.status().is_success() {
                return Err(format!("mail API {} answered {}", self.url, answer.status()));
            }
            Ok(())
        })
    }
}

/// The capabilities of the shop's functions: the mail API client when
/// `SHOP_MAIL_API_URL` is set, else mails to the log.
pub fn capabilities() -> Capabilities {
    let email: Arc<dyn EmailService> = match std::env::var(MAIL_API_URL_ENV) {
        Ok(url) if !url.is_empty() => Arc::new(MailApiClient::new(url)),
        _ => Arc::new(LoggedEmailService),
    };
    Capabilities::new().with::<dyn EmailService>(email)
}

/// Runs a plugin as a Lambda function (or prints its manifest when asked).
pub fn serve(plugin: reventless_core::Plugin) -> std::process::ExitCode {
    reventless_aws::lambda::main(plugin, capabilities())
}
