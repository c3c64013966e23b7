//! The Lambda entry point: one binary per plugin, told its handler group by
//! its environment ([`FunctionConfig`]). It answers SQS FIFO batches
//! (commands), DynamoDB stream batches (followers catching up) and HTTP
//! requests (the GraphQL API), on the same engine as the local platform.
mod config;
pub mod discovery;
mod events;
mod hooks;
mod https_client;
pub mod logging;
pub mod replay;
pub mod schedules;
pub mod tasks;

use std::sync::Arc;

pub use config::{CONFIG_ENV, CONFIG_FILE_ENV, ConfigError, FunctionConfig, HandlerGroup};
pub use events::{HEARTBEAT_EVENT, Handler, HandlerInitError, stream_log_key};
pub(crate) use events::{graphql_error, http_response, request_body};
use reventless_core::Plugin;
use reventless_spec::Capabilities;
pub use tasks::TASKS_PREFIX;

/// Where distributions keep the bundle of trusted root certificates.
const CA_BUNDLES: [&str; 3] =
    ["/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem"];

/// The SDK configuration from the function's environment. The HTTPS client
/// trusts the system's one CA bundle file: the default loader also reads
/// every file of the certificate directory, which cost ≈ 4 ms of each cold
/// start (measured); `SSL_CERT_FILE` / `SSL_CERT_DIR`, when set, keep the
/// default behaviour. Falling back without a usable bundle is logged as a
/// warning (with each path tried and why), since it costs every cold start.
pub async fn sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    // Lambda puts the credentials and the region in the environment, the
    // first source of each default chain; naming them skips building the
    // rest of the chains (an STS client for web identity, IMDS) at every cold start.
    let has = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    if has("AWS_ACCESS_KEY_ID") && has("AWS_SECRET_ACCESS_KEY") {
        loader = loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
    }
    if let Some(region) = std::env::var("AWS_REGION").ok().filter(|region| !region.is_empty()) {
        loader = loader.region(aws_config::Region::new(region));
    }
    let chosen = std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some();
    match trust_roots(chosen, &CA_BUNDLES.map(std::path::Path::new)) {
        TrustRoots::Environment => {}
        TrustRoots::Bundle { path, pem } => {
            let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(pem);
            match TlsContext::builder().with_trust_store(trust).build() {
                Ok(context) => {
                    let client = aws_smithy_http_client::Builder::new()
                        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                        .tls_context(context)
                        .build_https();
                    loader = loader.http_client(https_client::without_warm_up(client));
                }
                Err(error) => tracing::warn!(
                    bundle = %path.display(), %error,
                    "the TLS layer refused the CA bundle; the default loader reads the certificate directory (slower cold starts)"
                ),
            }
        }
        TrustRoots::Fallback { tried } => {
            let tried: Vec<String> = tried.iter().map(|(path, why)| format!("{}: {why}", path.display())).collect();
            let tried = tried.join("; ");
            tracing::warn!(
                tried,
                "no usable CA bundle; the default loader reads the certificate directory (slower cold starts)"
            );
        }
    }
    loader.load().await
}

/// Where the HTTPS client's trust anchors come from (see [`sdk_config`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustRoots {
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` is set: the default loader honours it.
    Environment,
    /// The first bundle holding usable certificates (the fast path), and those certificates as PEM.
    Bundle { path: std::path::PathBuf, pem: Vec<u8> },
    /// No bundle can serve: each path tried and why not.
    Fallback { tried: Vec<(std::path::PathBuf, String)> },
}

/// Chooses the trust anchors: the environment's choice when `environment`
/// is set, else the first of `bundles` that can be read and holds a usable
/// certificate, else a fallback saying why each failed.
pub fn trust_roots(environment: bool, bundles: &[&std::path::Path]) -> TrustRoots {
    if environment {
        return TrustRoots::Environment;
    }
    let mut tried = Vec::new();
    for path in bundles {
        match std::fs::read(path) {
            Err(error) => tried.push((path.to_path_buf(), format!("cannot read it: {error}"))),
            Ok(bundle) => {
                // Some(None): the bundle can be passed on as read.
                let usable = usable_roots(&bundle).map(|pem| match pem {
                    std::borrow::Cow::Borrowed(_) => None,
                    std::borrow::Cow::Owned(pem) => Some(pem),
                });
                match usable {
                    Some(pem) => return TrustRoots::Bundle { path: path.to_path_buf(), pem: pem.unwrap_or(bundle) },
                    None => tried.push((path.to_path_buf(), "it holds no usable certificate".to_string())),
                }
            }
        }
    }
    TrustRoots::Fallback { tried }
}

/// The certificates of a PEM bundle that can serve as trust anchors, as
/// canonical PEM (the TLS layer panics on a bundle holding anything it
/// cannot parse, so only checked certificate sections are passed on: BEGIN
/// line, base64 lines, END line); the bundle itself when it holds nothing
/// else than such sections and text without PEM markers between them (no
/// copy: the usual case); None when no certificate can serve. Certificates
/// are public: they are decoded with the plain base64 decoder, not the
/// constant-time one of the PEM reader (a tenth of a cold start,
/// docs/benchmarks.md).
pub fn usable_roots(bundle: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    match read_roots(bundle, None) {
        Roots { usable: false, .. } => None,
        Roots { pristine: true, .. } => Some(std::borrow::Cow::Borrowed(bundle)),
        Roots { pristine: false, .. } => {
            let mut pem = Vec::with_capacity(bundle.len());
            read_roots(bundle, Some(&mut pem));
            Some(std::borrow::Cow::Owned(pem))
        }
    }
}

/// What [`read_roots`] found: whether any certificate can serve, and
/// whether the PEM reader reads the bundle exactly as we did.
struct Roots {
    usable: bool,
    pristine: bool,
}

/// Reads the certificate sections of `bundle`, writing the usable ones as
/// canonical PEM to `pem` when given.
fn read_roots(bundle: &[u8], mut pem: Option<&mut Vec<u8>>) -> Roots {
    use rustls_pki_types::CertificateDer;
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    const MARKER: &[u8] = b"-----";
    let (begin, end, marker) =
        (memchr::memmem::Finder::new(BEGIN), memchr::memmem::Finder::new(END), memchr::memmem::Finder::new(MARKER));
    let line_break = |byte: &u8| *byte == b'\n' || *byte == b'\r';
    let mut der = Vec::with_capacity(4096);
    let mut lines = Vec::new();
    let mut found = Roots { usable: false, pristine: true };
    let mut rest = bundle;
    let mut previous: Option<u8> = None;
    while let Some(start) = begin.find(rest) {
        // As the PEM reader reads it: markers at line starts, nothing but
        // spaces after BEGIN, no other PEM marker between sections.
        found.pristine &= marker.find(&rest[..start]).is_none();
        let before = if start == 0 { previous } else { Some(rest[start - 1]) };
        found.pristine &= before.is_none_or(|byte| line_break(&byte));
        let after_begin = &rest[start + BEGIN.len()..];
        let Some(body_length) = end.find(after_begin) else {
            found.pristine = false;
            break;
        };
        let body = &after_begin[..body_length];
        let first_line = body.split(line_break).next().unwrap_or_default();
        found.pristine &= first_line.iter().all(|byte| *byte == b' ') && body.last().is_some_and(line_break);
        let read = read_pem_body(body, &mut der, &mut lines);
        let usable =
            read != Body::Invalid && webpki::anchor_from_trusted_cert(&CertificateDer::from(der.as_slice())).is_ok();
        found.pristine &= usable && read == Body::AsWritten;
        found.usable |= usable;
        if let (true, Some(pem)) = (usable, pem.as_deref_mut()) {
            write_section(pem, read, &lines, &der);
        }
        rest = &after_begin[body_length + END.len()..];
        previous = END.last().copied();
    }
    found.pristine &= marker.find(rest).is_none();
    found
}

/// How a PEM body was read.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Body {
    /// Lines of base64 characters only (the PEM reader's lines end at CR or LF).
    AsWritten,
    /// Lines of whole base64 quanta once their surrounding whitespace is trimmed.
    Trimmed,
    /// Base64 in another layout: decoded as a whole.
    Compacted,
    Invalid,
}

/// Decodes a PEM body into `der`, keeping its lines in `lines`. Lines of
/// whole base64 quanta with padding only at the end (as PEM writes them)
/// are decoded one by one; any other layout as a whole.
fn read_pem_body<'a>(body: &'a [u8], der: &mut Vec<u8>, lines: &mut Vec<&'a [u8]>) -> Body {
    use base64::Engine;
    let engine = &base64::engine::general_purpose::STANDARD;
    let split = || body.split(|byte| *byte == b'\n' || *byte == b'\r');
    let decode = |lines: &[&[u8]], der: &mut Vec<u8>| {
        der.clear();
        let last = lines.len().saturating_sub(1);
        let regular = lines
            .iter()
            .enumerate()
            .all(|(index, line)| line.len() % 4 == 0 && (index == last || !line.contains(&b'=')));
        // The decoder refuses whitespace: raw lines that decode hold none.
        regular && lines.iter().all(|line| engine.decode_vec(line, der).is_ok()) && !der.is_empty()
    };
    lines.clear();
    lines.extend(split().filter(|line| !line.is_empty()));
    if decode(lines, der) {
        return Body::AsWritten;
    }
    lines.clear();
    lines.extend(split().map(<[u8]>::trim_ascii).filter(|line| !line.is_empty()));
    if decode(lines, der) {
        return Body::Trimmed;
    }
    der.clear();
    let compact: Vec<u8> = body.iter().copied().filter(|byte| !byte.is_ascii_whitespace()).collect();
    if engine.decode_vec(compact, der).is_err() || der.is_empty() {
        return Body::Invalid;
    }
    Body::Compacted
}

/// One certificate as canonical PEM: its lines as read, or its DER encoded again in lines of 64.
fn write_section(pem: &mut Vec<u8>, read: Body, lines: &[&[u8]], der: &[u8]) {
    use base64::Engine;
    pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
    if read == Body::Compacted {
        for chunk in base64::engine::general_purpose::STANDARD.encode(der).as_bytes().chunks(64) {
            pem.extend_from_slice(chunk);
            pem.push(b'\n');
        }
    } else {
        for line in lines {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
    }
    pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
}

/// Runs the plugin as a Lambda function until the runtime stops it.
/// SDK clients and the engine are made once per container, before the first
/// invocation; nothing else happens at init.
pub async fn run(plugin: Plugin, capabilities: Capabilities) -> Result<(), lambda_runtime::Error> {
    let config = FunctionConfig::from_env()?;
    let sdk = sdk_config().await;
    let capabilities = crate::secrets::provide(capabilities, &sdk);
    let handler = Arc::new(Handler::new(&sdk, &config, plugin, capabilities)?);
    let plugin = config.plugin.clone();
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
        let handler = handler.clone();
        let span = invocation_span(&event.context, Some(&plugin));
        tracing::Instrument::instrument(async move { handler.handle(event.payload).await }, span)
    }))
    .await
}

/// The span of one invocation: every line logged while serving it names
/// the request (Lambda's request id) and the plugin.
pub(crate) fn invocation_span(context: &lambda_runtime::Context, plugin: Option<&str>) -> tracing::Span {
    tracing::info_span!("invocation", request_id = context.request_id.as_str(), plugin)
}

/// The `main` of a plugin's Lambda binary (`bootstrap`): with the argument
/// `manifest` it prints the plugin's manifest as JSON (what the deployer
/// plans from); otherwise it serves invocations on a current-thread runtime
/// (one invocation at a time per container).
pub fn main(plugin: Plugin, capabilities: Capabilities) -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("manifest") {
        return match plugin
            .manifest()
            .map_err(|e| e.to_string())
            .and_then(|m| serde_json::to_string(&m).map_err(|e| e.to_string()))
        {
            Ok(json) => {
                println!("{json}");
                std::process::ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    // Without a subscriber `tracing` events go nowhere: the function's
    // errors (failed followers, automations, commands) would never reach its
    // log. Lambda keeps stderr as it keeps stdout.
    logging::init();
    serve(run(plugin, capabilities))
}

/// Runs a Lambda loop on a current-thread runtime (one invocation at a
/// time per container) and turns its end into an exit code.
pub fn serve(work: impl std::future::Future<Output = Result<(), lambda_runtime::Error>>) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests report failures by panicking
    use super::{TrustRoots, trust_roots};

    #[test]
    fn the_first_usable_bundle_is_trusted_and_a_fallback_says_why_each_path_failed() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        let TrustRoots::Fallback { tried } = trust_roots(false, &[&missing, &garbage]) else {
            panic!("no usable bundle: the default loader");
        };
        assert_eq!(tried.len(), 2, "{tried:?}");
        assert_eq!(tried[0].0, missing);
        assert!(tried[0].1.starts_with("cannot read it:"), "{}", tried[0].1);
        assert_eq!(tried[1], (garbage.clone(), "it holds no usable certificate".to_string()));

        let system = ["/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt"]
            .iter()
            .find_map(|path| std::fs::read(path).ok())
            .expect("a CA bundle (Debian: ca-certificates)");
        let good = dir.path().join("good.pem");
        std::fs::write(&good, system).unwrap();
        let chosen = trust_roots(false, &[&missing, &garbage, &good]);
        assert!(matches!(&chosen, TrustRoots::Bundle { path, pem } if *path == good && !pem.is_empty()), "{chosen:?}");
        assert_eq!(trust_roots(true, &[&good]), TrustRoots::Environment, "SSL_CERT_FILE / SSL_CERT_DIR win");
    }
}
