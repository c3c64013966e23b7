//! The Lambda's HTTPS client trusts the system bundle's usable roots.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use reventless_aws::lambda::usable_roots;

#[test]
fn the_system_bundle_yields_trust_anchors_and_garbage_yields_none() {
    let bundle = ["/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt"]
        .iter()
        .find_map(|path| std::fs::read(path).ok())
        .expect("a CA bundle (Debian: ca-certificates)");
    let usable = usable_roots(&bundle).unwrap();
    let text = String::from_utf8(usable.clone()).unwrap();
    let count = text.matches("BEGIN CERTIFICATE").count();
    assert!(count > 50, "{count} roots");
    // What we hand to the TLS layer parses again, every certificate of it.
    assert_eq!(usable_roots(&usable).unwrap(), usable);
    assert_eq!(usable_roots(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), None);
    assert_eq!(usable_roots(b"not pem at all"), None);
}

#[tokio::test]
async fn the_lambda_https_client_connects_without_panicking() {
    let sdk = reventless_aws::lambda::sdk_config().await;
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url("https://127.0.0.1:9")
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("a", "b", None, None, "test"))
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    // Nothing listens there: the call fails, after the TLS client was built from the bundle.
    assert!(client.list_tables().send().await.is_err());
}
