//! HTTP routes (webhooks): a plugin declares `METHOD /path`, served under
//! `/hooks/<Plugin>/path` by the local dev server and by the gateway on AWS,
//! and each request's JSON body is the input of one of its
//! [`crate::InboundTranslationSlice`]s.
//!
//! ```
//! use reventless_spec::{HttpMethod, HttpRoute, WebhookSignature};
//! let route = HttpRoute::new(HttpMethod::Post, "/payments")
//!     .signed(WebhookSignature::hmac_sha256("payment-webhook-secret"));
//! assert_eq!(route.to_string(), "POST /payments");
//! ```
use std::fmt;
use std::time::Duration;

/// The methods a route may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HttpMethod {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

impl HttpMethod {
    /// The method as HTTP writes it (`POST`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }

    /// The method named `text` (any case), if a route may answer it.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Get, Self::Post, Self::Put, Self::Patch, Self::Delete]
            .into_iter()
            .find(|method| method.as_str().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a webhook's sender signs its requests (the scheme Stripe and GitHub
/// use): `hex(HMAC-SHA256(secret, "<timestamp>.<raw body>"))` in
/// `signature_header` (bare or as `sha256=<hex>`), the Unix time in seconds
/// in `timestamp_header`. A request older or newer than `tolerance` is
/// refused, so a captured request cannot be replayed later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSignature {
    /// The plugin secret holding the shared key (`capabilities.secret(name)`).
    pub secret: String,
    /// The header with the signature (lower case).
    pub signature_header: String,
    /// The header with the Unix time in seconds the sender signed at (lower case).
    pub timestamp_header: String,
    /// How far the timestamp may be from now.
    pub tolerance: Duration,
}

/// The signature header unless a route names another.
pub const DEFAULT_SIGNATURE_HEADER: &str = "x-signature";
/// The timestamp header unless a route names another.
pub const DEFAULT_TIMESTAMP_HEADER: &str = "x-signature-timestamp";
/// How old a signed request may be unless a route says otherwise.
pub const DEFAULT_SIGNATURE_TOLERANCE: Duration = Duration::from_secs(300);

impl WebhookSignature {
    /// HMAC-SHA256 with the plugin secret `secret`, the default headers and
    /// a tolerance of five minutes.
    pub fn hmac_sha256(secret: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
            signature_header: DEFAULT_SIGNATURE_HEADER.into(),
            timestamp_header: DEFAULT_TIMESTAMP_HEADER.into(),
            tolerance: DEFAULT_SIGNATURE_TOLERANCE,
        }
    }

    /// The sender's header names (e.g. `stripe-signature`-like names of a provider).
    pub fn headers(mut self, signature: &str, timestamp: &str) -> Self {
        self.signature_header = signature.to_ascii_lowercase();
        self.timestamp_header = timestamp.to_ascii_lowercase();
        self
    }

    /// How far a request's timestamp may be from now.
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }
}

/// One route: method, path below the plugin's prefix, and how its requests
/// are authenticated. Without a signature anyone may call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// The method it answers.
    pub method: HttpMethod,
    /// The path below `/hooks/<Plugin>`, starting with `/` (`/payments`).
    pub path: String,
    /// The signature every request must carry.
    pub signature: Option<WebhookSignature>,
}

impl HttpRoute {
    /// `method path`, unsigned.
    pub fn new(method: HttpMethod, path: impl Into<String>) -> Self {
        Self { method, path: path.into(), signature: None }
    }

    /// `POST path`, unsigned.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new(HttpMethod::Post, path)
    }

    /// Every request must carry `signature`.
    pub fn signed(mut self, signature: WebhookSignature) -> Self {
        self.signature = Some(signature);
        self
    }

    /// Why the path cannot be served, if it cannot: it must start with `/`
    /// and hold only URL-safe segments (letters, digits, `-`, `_`, `.`), no
    /// empty ones.
    pub fn path_problem(&self) -> Option<String> {
        let Some(rest) = self.path.strip_prefix('/') else {
            return Some(format!("path `{}` must start with `/`", self.path));
        };
        let segment_ok =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !rest.split('/').all(segment_ok) {
            return Some(format!(
                "path `{}` must be `/`-separated non-empty segments of letters, digits, `-`, `_` or `.`",
                self.path
            ));
        }
        None
    }
}

impl fmt::Display for HttpRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_in_any_case_and_paths_are_checked() {
        assert_eq!(HttpMethod::parse("post"), Some(HttpMethod::Post));
        assert_eq!(HttpMethod::parse("TRACE"), None);
        assert_eq!(HttpRoute::post("/payments/stripe").path_problem(), None);
        assert!(HttpRoute::post("payments").path_problem().is_some());
        assert!(HttpRoute::post("/a//b").path_problem().is_some());
        assert!(HttpRoute::post("/a?b").path_problem().is_some());
        assert!(HttpRoute::post("/").path_problem().is_some());
    }
}
