//! The Lambda's HTTPS client trusts the system bundle's usable roots.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use reventless_aws::lambda::usable_roots;
use rustls_pki_types::pem::PemObject;

#[test]
fn the_system_bundle_yields_trust_anchors_and_garbage_yields_none() {
    let bundle = ["/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt"]
        .iter()
        .find_map(|path| std::fs::read(path).ok())
        .expect("a CA bundle (Debian: ca-certificates)");
    let usable = usable_roots(&bundle).unwrap().into_owned();
    let text = String::from_utf8(usable.clone()).unwrap();
    let count = text.matches("BEGIN CERTIFICATE").count();
    assert!(count > 50, "{count} roots");
    // The same certificates as the TLS layer's own PEM reader finds usable.
    let by_rustls = rustls_pki_types::CertificateDer::pem_slice_iter(&bundle)
        .filter_map(Result::ok)
        .filter(|der| webpki::anchor_from_trusted_cert(der).is_ok())
        .count();
    assert_eq!(count, by_rustls);
    // What we hand to the TLS layer parses again, every certificate of it.
    assert_eq!(usable_roots(&usable).unwrap().as_ref(), usable.as_slice());
    assert_eq!(usable_roots(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), None);
    assert_eq!(usable_roots(b"not pem at all"), None);
    // A bad certificate is left out and the good ones kept, whatever the line length.
    let (begin, end) = ("-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----");
    let body: String = text[begin.len()..text.find(end).unwrap()].split_whitespace().collect();
    // Lines of 50 characters (not whole base64 quanta) and CRLF line ends.
    let lines: Vec<&str> = body.as_bytes().chunks(50).map(|chunk| std::str::from_utf8(chunk).unwrap()).collect();
    let rewrapped = format!("{begin}\r\n{}\r\n{end}", lines.join("\r\n"));
    let mixed = format!("{begin}\nAAAA\n{end}\n{rewrapped}\n");
    let kept = usable_roots(mixed.as_bytes()).unwrap().into_owned();
    assert_eq!(String::from_utf8(kept).unwrap().matches("BEGIN CERTIFICATE").count(), 1);
    // A bundle that reads cleanly is passed on as it is (no copy)...
    assert!(matches!(usable_roots(&usable), Some(std::borrow::Cow::Borrowed(_))));
    // ...and whatever else a bundle holds, what is passed on parses cleanly
    // and completely (the TLS layer panics otherwise).
    let good = String::from_utf8(usable_roots(rewrapped.as_bytes()).unwrap().into_owned()).unwrap();
    let body = &good[begin.len() + 1..good.find(end).unwrap()];
    for bundle in [
        format!("{good}{begin}\nMIIB"),
        format!("{good}{begin}{end}\n"),
        format!("{good}{begin}\nAA==\nAAAA\n{end}\n"),
        format!("{good}-----BEGIN X509 CRL-----\n!!!\n-----END X509 CRL-----\n"),
        format!("{begin} junk\n{body}{end}\n"),
        format!("{begin}\n  {body}{end}\n"),
        format!("{begin}\n{}{end}\n", body.trim_end()),
        format!("# {begin}\n{body}{end}\n"),
    ] {
        let Some(pem) = usable_roots(bundle.as_bytes()) else { continue };
        let parsed: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(&pem).collect();
        assert!(!parsed.is_empty() && parsed.iter().all(Result::is_ok), "{bundle}");
    }
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
