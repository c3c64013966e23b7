//! Webhook signatures: `hex(HMAC-SHA256(secret, "<timestamp>.<raw body>"))`
//! with the Unix time in seconds in a second header (the scheme of Stripe
//! and GitHub). The timestamp is inside the signed text, so a captured
//! request cannot be replayed once it is older than the tolerance.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use reventless_spec::{SecretValue, WebhookSignature};
use sha2::Sha256;

/// Why a request's signature is refused (the answer is 401; nothing runs).
/// No variant carries the secret or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A header the signature needs is absent.
    #[error("the request has no `{0}` header")]
    MissingHeader(String),
    /// The timestamp header is not a Unix time in seconds.
    #[error("the `{header}` header is not a Unix time in seconds")]
    BadTimestamp {
        /// The timestamp header.
        header: String,
    },
    /// The request was signed too long ago (or in the future).
    #[error("the request was signed {age_seconds} s from now; at most {tolerance_seconds} s are accepted")]
    StaleTimestamp {
        /// How far the timestamp is from now.
        age_seconds: u64,
        /// The route's tolerance.
        tolerance_seconds: u64,
    },
    /// The signature does not match the body and timestamp.
    #[error("the signature does not match the request")]
    Mismatch,
}

impl SignatureError {
    /// The error's code in an answer (`MISSING_SIGNATURE`, `STALE_SIGNATURE`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "MISSING_SIGNATURE",
            Self::BadTimestamp { .. } => "BAD_SIGNATURE_TIMESTAMP",
            Self::StaleTimestamp { .. } => "STALE_SIGNATURE",
            Self::Mismatch => "BAD_SIGNATURE",
        }
    }
}

fn mac(secret: &SecretValue, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header's value for `body` signed at `timestamp` (Unix
/// seconds): `sha256=<hex>`. What a sender (or a test) puts in the request.
pub fn sign(secret: &SecretValue, timestamp: u64, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(secret, &timestamp.to_string(), body).finalize().into_bytes()))
}

/// Checks a request against `signature`: both headers present (`header`
/// looks one up by its lower-case name), the timestamp within the tolerance
/// of `now`, and the HMAC equal in constant time.
pub fn verify<'a>(
    signature: &WebhookSignature,
    secret: &SecretValue,
    header: impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
    now: SystemTime,
) -> Result<(), SignatureError> {
    let given = header(&signature.signature_header)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| SignatureError::MissingHeader(signature.signature_header.clone()))?;
    let timestamp = header(&signature.timestamp_header)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| SignatureError::MissingHeader(signature.timestamp_header.clone()))?;
    let signed_at: u64 =
        timestamp.parse().map_err(|_| SignatureError::BadTimestamp { header: signature.timestamp_header.clone() })?;
    let now = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    let age = now.abs_diff(signed_at);
    if age > signature.tolerance.as_secs() {
        return Err(SignatureError::StaleTimestamp {
            age_seconds: age,
            tolerance_seconds: signature.tolerance.as_secs(),
        });
    }
    let hex_text = given.strip_prefix("sha256=").unwrap_or(given);
    let bytes = hex::decode(hex_text).map_err(|_| SignatureError::Mismatch)?;
    // `verify_slice` compares in constant time.
    mac(secret, timestamp, body).verify_slice(&bytes).map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"type":"payment.succeeded","orderId":"o1"}"#;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn check(headers: &[(&str, String)], body: &[u8], now: u64) -> Result<(), SignatureError> {
        let scheme = WebhookSignature::hmac_sha256("hook-secret");
        let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        verify(&scheme, &SecretValue::new("s3cret"), header, body, at(now))
    }

    fn signed(timestamp: u64, body: &[u8]) -> Vec<(&'static str, String)> {
        vec![
            ("x-signature", sign(&SecretValue::new("s3cret"), timestamp, body)),
            ("x-signature-timestamp", timestamp.to_string()),
        ]
    }

    #[test]
    fn a_request_signed_with_the_secret_within_the_tolerance_passes() {
        assert_eq!(check(&signed(1_000, BODY), BODY, 1_000), Ok(()));
        assert_eq!(check(&signed(1_000, BODY), BODY, 1_300), Ok(()), "five minutes late");
        // A bare hex signature (without `sha256=`) is accepted too.
        let mut bare = signed(1_000, BODY);
        bare[0].1 = bare[0].1.trim_start_matches("sha256=").to_string();
        assert_eq!(check(&bare, BODY, 1_000), Ok(()));
    }

    #[test]
    fn another_secret_another_body_or_another_timestamp_is_a_mismatch() {
        let other = sign(&SecretValue::new("wrong"), 1_000, BODY);
        let headers = vec![("x-signature", other), ("x-signature-timestamp", "1000".to_string())];
        assert_eq!(check(&headers, BODY, 1_000), Err(SignatureError::Mismatch));
        assert_eq!(check(&signed(1_000, BODY), b"{}", 1_000), Err(SignatureError::Mismatch));
        let mut moved = signed(1_000, BODY);
        moved[1].1 = "1001".into();
        assert_eq!(check(&moved, BODY, 1_000), Err(SignatureError::Mismatch));
        let mut garbage = signed(1_000, BODY);
        garbage[0].1 = "sha256=not-hex".into();
        assert_eq!(check(&garbage, BODY, 1_000), Err(SignatureError::Mismatch));
        assert_eq!(SignatureError::Mismatch.code(), "BAD_SIGNATURE");
    }

    #[test]
    fn a_stale_or_future_timestamp_is_refused_even_when_signed() {
        let stale = check(&signed(1_000, BODY), BODY, 1_301);
        assert_eq!(stale, Err(SignatureError::StaleTimestamp { age_seconds: 301, tolerance_seconds: 300 }));
        assert!(matches!(check(&signed(2_000, BODY), BODY, 1_000), Err(SignatureError::StaleTimestamp { .. })));
        let mut words = signed(1_000, BODY);
        words[1].1 = "yesterday".into();
        assert_eq!(
            check(&words, BODY, 1_000),
            Err(SignatureError::BadTimestamp { header: "x-signature-timestamp".into() })
        );
    }

    #[test]
    fn missing_headers_are_named() {
        let headers = signed(1_000, BODY);
        assert_eq!(check(&headers[1..], BODY, 1_000), Err(SignatureError::MissingHeader("x-signature".into())));
        assert_eq!(
            check(&headers[..1], BODY, 1_000),
            Err(SignatureError::MissingHeader("x-signature-timestamp".into()))
        );
        assert_eq!(check(&[], BODY, 1_000).map_err(|e| e.code()), Err("MISSING_SIGNATURE"));
    }

    #[test]
    fn errors_never_show_the_secret_or_the_expected_signature() {
        let expected = sign(&SecretValue::new("s3cret"), 1_000, b"{}");
        let error = check(&signed(1_000, BODY), b"{}", 1_000).map(|_| ()).unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(!text.contains("s3cret") && !text.contains(expected.trim_start_matches("sha256=")), "{text}");
    }
}
