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
    // rest of the chains (an STS client, profile files, IMDS) at every cold start.
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
                // Some(None): every certificate is usable, the bundle is kept as read.
                let filtered = usable_roots(&bundle).map(|usable| match usable {
                    std::borrow::Cow::Borrowed(_) => None,
                    std::borrow::Cow::Owned(pem) => Some(pem),
                });
                match filtered {
                    Some(pem) => return TrustRoots::Bundle { path: path.to_path_buf(), pem: pem.unwrap_or(bundle) },
                    None => tried.push((path.to_path_buf(), "it holds no usable certificate".to_string())),
                }
            }
        }
    }
    TrustRoots::Fallback { tried }
}

/// The certificates of a PEM bundle that can serve as trust anchors, as PEM
/// again (the TLS layer refuses a bundle holding one it cannot parse, as a
/// panic): the bundle itself when every certificate can, None when none
/// can. Certificates are public: they are decoded line by line with the
/// plain base64 decoder, not the constant-time one of the PEM reader, and
/// the bundle is not copied when nothing is left out — together a tenth of
/// a cold start (docs/benchmarks.md).
pub fn usable_roots(bundle: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    use rustls_pki_types::CertificateDer;
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let (begin, end) = (memchr::memmem::Finder::new(BEGIN), memchr::memmem::Finder::new(END));
    let mut usable: Vec<&[u8]> = Vec::new();
    let mut left_out = false;
    let mut der = Vec::with_capacity(4096);
    let mut rest = bundle;
    while let Some(start) = begin.find(rest) {
        let section = &rest[start..];
        let Some(length) = end.find(section).map(|at| at + END.len()) else { break };
        let decoded = decode_pem_body(&section[BEGIN.len()..length - END.len()], &mut der);
        if decoded && webpki::anchor_from_trusted_cert(&CertificateDer::from(der.as_slice())).is_ok() {
            usable.push(&section[..length]);
        } else {
            left_out = true;
        }
        rest = &section[length..];
    }
    if usable.is_empty() {
        return None;
    }
    if !left_out {
        return Some(std::borrow::Cow::Borrowed(bundle));
    }
    let mut pem = Vec::with_capacity(bundle.len());
    for section in usable {
        pem.extend_from_slice(section);
        pem.push(b'\n');
    }
    Some(std::borrow::Cow::Owned(pem))
}

/// Decodes a PEM body into `der`: line by line (lines of whole base64
/// quanta, as PEM writes them), else the body without its whitespace.
fn decode_pem_body(body: &[u8], der: &mut Vec<u8>) -> bool {
    use base64::Engine;
    let engine = &base64::engine::general_purpose::STANDARD;
    der.clear();
    let by_lines = body
        .split(|byte| *byte == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|line| !line.is_empty())
        .try_for_each(|line| engine.decode_vec(line, der).map(|_| ()));
    if by_lines.is_ok() {
        return true;
    }
    der.clear();
    let compact: Vec<u8> = body.iter().copied().filter(|byte| !byte.is_ascii_whitespace()).collect();
    engine.decode_vec(compact, der).is_ok()
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
