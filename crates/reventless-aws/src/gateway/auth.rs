//! End-user authentication at the gateway (DESIGN §5): the gateway's function
//! URL is public, so the gateway itself checks `Authorization: Bearer <JWT>`
//! against the configured OIDC issuer (signature from the issuer's JWKS,
//! `iss`, `aud` / `client_id`, `exp` / `nbf`) before anything runs. No token
//! is an anonymous caller; any token that does not verify — or a token when
//! no issuer is configured — is refused with 401 `UNAUTHENTICATED`.
//!
//! The verified caller travels to the plugins inside the `Invoke` event the
//! gateway builds (`requestContext.authorizer.jwt.claims`), which only the
//! gateway's role may send: whatever the client put there is replaced.
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reventless_core::Caller;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The claim naming the user unless `user_claim` says otherwise.
pub const DEFAULT_USER_CLAIM: &str = "sub";
/// The claim listing the roles unless `roles_claim` says otherwise (Cognito's groups).
pub const DEFAULT_ROLES_CLAIM: &str = "cognito:groups";
/// A token with an unknown key id refetches the JWKS at most this often (a
/// flood of forged `kid`s must not become a flood of requests to the issuer).
pub const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// Keys older than this are refetched on the next token (a retired key stops
/// verifying); when the issuer cannot be reached then, the old keys stay.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;
/// The algorithms accepted: Cognito signs RS256; ES256 for other issuers
/// (and the local issuer). Never HMAC: a public key must not become a secret.
pub const ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;
/// Where distributions keep the bundle of trusted root certificates.
const CA_BUNDLES: [&str; 3] =
    ["/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem"];

/// `[auth]` as the gateway receives it (in `REVENTLESS_GATEWAY`): public
/// values only, no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// The OIDC issuer URL, exactly as the tokens' `iss` says it.
    pub issuer: String,
    /// The accepted `aud` (ID tokens) or `client_id` (Cognito access tokens).
    pub audience: String,
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// The issuer's key set; default: `jwks_uri` of its discovery document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
}

fn default_user_claim() -> String {
    DEFAULT_USER_CLAIM.into()
}

fn default_roles_claim() -> String {
    DEFAULT_ROLES_CLAIM.into()
}

impl AuthSettings {
    /// The settings with the default claims and JWKS discovery.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            user_claim: default_user_claim(),
            roles_claim: default_roles_claim(),
            jwks_url: None,
        }
    }

    /// Why the settings cannot work: `(key, message)` of the first broken one.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if let Err(message) = check_url(&self.issuer) {
            return Some(("issuer", message));
        }
        if let Some(Err(message)) = self.jwks_url.as_deref().map(check_url) {
            return Some(("jwks_url", message));
        }
        for (key, value) in
            [("audience", &self.audience), ("user_claim", &self.user_claim), ("roles_claim", &self.roles_claim)]
        {
            if value.trim().is_empty() || value.trim() != value {
                return Some((key, format!("`{value}` is empty or has surrounding spaces")));
            }
        }
        None
    }

    /// The discovery document's URL.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'))
    }
}

/// An issuer or key-set URL must be absolute `https` (plain `http` only on
/// loopback, for emulation), without query or fragment.
pub fn check_url(text: &str) -> Result<(), String> {
    let (secure, rest) = if let Some(rest) = text.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!("`{text}` is not an https:// URL"));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    if host.is_empty() || text.contains(['?', '#', ' ']) || text.parse::<hyper::Uri>().is_err() {
        return Err(format!("`{text}` is not a URL with a host (and without query or fragment)"));
    }
    if !secure && !matches!(host, "127.0.0.1" | "localhost" | "::1") {
        return Err(format!("`{text}` must use https (plain http only on loopback, for emulation)"));
    }
    Ok(())
}

/// Why a request was refused before anything ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The client's credentials: HTTP 401 `UNAUTHENTICATED`.
    #[error("{0}")]
    Unauthenticated(String),
    /// The issuer's keys cannot be read: HTTP 503 `UNAVAILABLE`.
    #[error("{0}")]
    Unavailable(String),
}

fn refused(message: impl Into<String>) -> AuthError {
    AuthError::Unauthenticated(message.into())
}

/// Reads a JSON document over HTTP(S) (the issuer's discovery and JWKS).
#[async_trait::async_trait]
pub trait FetchJson: Send + Sync {
    async fn get(&self, url: &str) -> Result<Value, String>;
}

type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<hyper::body::Bytes>,
>;

/// [`FetchJson`] on the rustls / aws-lc-rs stack the SDK already links (no
/// second TLS library in the binary). Built on first use: a gateway that
/// never sees a token pays nothing at cold start.
#[derive(Default)]
pub struct HttpsFetch {
    client: OnceLock<Result<HttpsClient, String>>,
}

impl HttpsFetch {
    fn client(&self) -> Result<&HttpsClient, String> {
        self.client.get_or_init(build_https_client).as_ref().map_err(Clone::clone)
    }
}

/// Trusts the system's CA bundle file (`SSL_CERT_FILE` when set), as the SDK
/// client does.
fn build_https_client() -> Result<HttpsClient, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let chosen = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    // Without a bundle only plain-http (loopback) issuers can be reached.
    let bundle =
        chosen.into_iter().chain(CA_BUNDLES.iter().map(PathBuf::from)).find_map(|path| std::fs::read(path).ok());
    let bundle = bundle.unwrap_or_else(|| {
        tracing::warn!("no CA bundle found (set SSL_CERT_FILE): https issuers cannot be verified");
        Vec::new()
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(CertificateDer::pem_slice_iter(&bundle).filter_map(Result::ok));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector =
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
    Ok(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector))
}

#[async_trait::async_trait]
impl FetchJson for HttpsFetch {
    async fn get(&self, url: &str) -> Result<Value, String> {
        use http_body_util::BodyExt;
        let client = self.client()?;
        let request = hyper::Request::get(url)
            .header("accept", "application/json")
            .body(http_body_util::Empty::new())
            .map_err(|e| format!("{url}: {e}"))?;
        let response = tokio::time::timeout(FETCH_TIMEOUT, client.request(request))
            .await
            .map_err(|_| format!("{url}: no answer within {FETCH_TIMEOUT:?}"))?
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status()));
        }
        let body = http_body_util::Limited::new(response.into_body(), MAX_DOCUMENT_BYTES);
        let bytes = tokio::time::timeout(FETCH_TIMEOUT, body.collect())
            .await
            .map_err(|_| format!("{url}: the body did not arrive within {FETCH_TIMEOUT:?}"))?
            .map_err(|e| format!("{url}: {e}"))?
            .to_bytes();
        serde_json::from_slice(&bytes).map_err(|e| format!("{url}: not JSON: {e}"))
    }
}

/// The issuer's keys as last read.
#[derive(Default)]
struct KeyCache {
    /// The JWKS URL (configured, or discovered once).
    jwks_url: Option<String>,
    keys: Vec<Jwk>,
    fetched_at: Option<Instant>,
    /// Why the latest fetch failed (answered until [`REFETCH_AFTER`] passed).
    failure: Option<String>,
}

impl KeyCache {
    fn find(&self, kid: &str) -> Option<Jwk> {
        self.keys.iter().find(|k| k.common.key_id.as_deref() == Some(kid)).cloned()
    }
}

/// Verifies bearer tokens against one issuer (or refuses every token when
/// none is configured).
pub struct Authenticator {
    settings: Option<AuthSettings>,
    fetch: Arc<dyn FetchJson>,
    cache: tokio::sync::Mutex<KeyCache>,
    refetch_after: Duration,
}

impl Authenticator {
    pub fn new(settings: Option<AuthSettings>, fetch: Arc<dyn FetchJson>) -> Self {
        Self { settings, fetch, cache: tokio::sync::Mutex::default(), refetch_after: REFETCH_AFTER }
    }

    /// Another minimum interval between key-set reads than [`REFETCH_AFTER`] (tests).
    pub fn refetching_after(self, interval: Duration) -> Self {
        Self { refetch_after: interval, ..self }
    }

    /// Fetching over HTTPS ([`HttpsFetch`]).
    pub fn https(settings: Option<AuthSettings>) -> Self {
        Self::new(settings, Arc::new(HttpsFetch::default()))
    }

    /// Without an issuer: anonymous callers only.
    pub fn none() -> Self {
        Self::https(None)
    }

    pub fn settings(&self) -> Option<&AuthSettings> {
        self.settings.as_ref()
    }

    /// The caller of an HTTP event (payload 2.0 `headers`): anonymous without
    /// `Authorization`, the token's user and roles when it verifies.
    pub async fn caller(&self, headers: Option<&Value>) -> Result<Caller, AuthError> {
        match bearer_token(headers)? {
            None => Ok(Caller::default()),
            Some(token) => self.verify(token).await,
        }
    }

    /// The caller a token names, when it verifies.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let Some(settings) = &self.settings else {
            return Err(refused("a bearer token was sent, but no issuer is configured (`[auth]` in reventless.toml)"));
        };
        let header = jsonwebtoken::decode_header(token).map_err(|e| refused(format!("malformed token: {e}")))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(refused(format!("algorithm {:?} is not accepted (RS256, ES256)", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| refused("the token names no signing key (`kid`)"))?;
        let jwk = self.key(settings, &kid).await?.ok_or_else(|| refused(format!("unknown signing key `{kid}`")))?;
        if !key_fits(&jwk, header.alg) {
            return Err(refused(format!("key `{kid}` is not a key for {:?}", header.alg)));
        }
        let key =
            DecodingKey::from_jwk(&jwk).map_err(|e| refused(format!("the issuer's key `{kid}` is unusable: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.validate_aud = false; // `aud` or `client_id`, checked by `for_audience`
        validation.set_issuer(&[&settings.issuer]);
        validation.required_spec_claims = HashSet::from(["exp".to_string(), "iss".to_string()]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            refused(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".to_string(),
                ErrorKind::ImmatureSignature => "the token is not valid yet (`nbf`)".to_string(),
                ErrorKind::InvalidIssuer => format!("the token is not from issuer `{}`", settings.issuer),
                ErrorKind::InvalidSignature => "the token's signature does not verify".to_string(),
                ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}`"),
                _ => format!("invalid token: {e}"),
            })
        })?;
        let claims = data.claims;
        for_audience(&claims, &settings.audience).map_err(refused)?;
        let user = claims.get(&settings.user_claim).and_then(Value::as_str).filter(|user| !user.is_empty());
        let user = user.ok_or_else(|| refused(format!("the token has no `{}` claim", settings.user_claim)))?;
        Ok(Caller { user_id: Some(user.to_string()), roles: roles(claims.get(&settings.roles_claim)) })
    }

    /// The issuer's key `kid`: cached, else the key set read again (at most
    /// every [`REFETCH_AFTER`]; and when the cache is older than [`KEYS_MAX_AGE`]).
    async fn key(&self, settings: &AuthSettings, kid: &str) -> Result<Option<Jwk>, AuthError> {
        let mut cache = self.cache.lock().await;
        let age = cache.fetched_at.map(|at| at.elapsed());
        let found = cache.find(kid);
        let stale = age.is_none_or(|age| age >= KEYS_MAX_AGE);
        if found.is_some() && !stale {
            return Ok(found);
        }
        if age.is_some_and(|age| age < self.refetch_after) {
            return match &cache.failure {
                Some(failure) if found.is_none() => Err(AuthError::Unavailable(failure.clone())),
                _ => Ok(found),
            };
        }
        cache.fetched_at = Some(Instant::now());
        match self.fetch_keys(settings, &mut cache).await {
            Ok(keys) => {
                cache.keys = keys;
                cache.failure = None;
            }
            Err(error) => {
                tracing::error!(error, "cannot read the issuer's keys");
                cache.failure = Some(format!("the issuer's keys cannot be read: {error}"));
                if found.is_none() {
                    return Err(AuthError::Unavailable(cache.failure.clone().unwrap_or_default()));
                }
                return Ok(found); // a stale key still verifies until the issuer answers again
            }
        }
        Ok(cache.find(kid))
    }

    async fn fetch_keys(&self, settings: &AuthSettings, cache: &mut KeyCache) -> Result<Vec<Jwk>, String> {
        let url = match (&settings.jwks_url, &cache.jwks_url) {
            (Some(url), _) | (None, Some(url)) => url.clone(),
            (None, None) => {
                let discovery = settings.discovery_url();
                let document = self.fetch.get(&discovery).await?;
                let url = document
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{discovery}: no `jwks_uri`"))?
                    .to_string();
                check_url(&url).map_err(|e| format!("{discovery}: jwks_uri {e}"))?;
                cache.jwks_url = Some(url.clone());
                url
            }
        };
        let set = self.fetch.get(&url).await?;
        let listed = set.get("keys").and_then(Value::as_array).ok_or_else(|| format!("{url}: no `keys` list"))?;
        // One key of a type this crate cannot read must not hide the others.
        let keys: Vec<Jwk> = listed
            .iter()
            .filter(|key| key.get("use").is_none_or(|u| u == "sig"))
            .filter_map(|key| serde_json::from_value(key.clone()).ok())
            .collect();
        Ok(keys)
    }
}

/// Whether a JWK can carry `alg` (its type, curve and own `alg`, if any).
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let declared = jwk.common.key_algorithm.map(|a| format!("{a:?}"));
    if declared.is_some_and(|declared| declared != format!("{alg:?}")) {
        return false;
    }
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => ec.curve == EllipticCurve::P256,
        _ => false,
    }
}

/// Whether the token is for `audience`, or why not.
///
/// A Cognito token says which it is in `token_use`: an ID token names the
/// app client in `aud`, an access token (which has no `aud`) in
/// `client_id`; any other `token_use` is refused. Without `token_use`
/// (other OIDC providers), `aud` decides when the token has one: in an
/// RFC 9068 access token `aud` names the API and `client_id` the app that
/// asked for it, so a token for another API must not pass by its
/// `client_id`. Only a token without `aud` is matched by `client_id`.
fn for_audience(claims: &Map<String, Value>, audience: &str) -> Result<(), String> {
    let by_aud = || match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    };
    let by_client_id = || claims.get("client_id").and_then(Value::as_str) == Some(audience);
    let matches = match claims.get("token_use") {
        Some(Value::String(token_use)) if token_use == "id" => by_aud(),
        Some(Value::String(token_use)) if token_use == "access" => by_client_id(),
        Some(other) => return Err(format!("the token's `token_use` is {other}, not `id` or `access`")),
        None if claims.contains_key("aud") => by_aud(),
        None => by_client_id(),
    };
    if matches { Ok(()) } else { Err(format!("the token is not for audience `{audience}`")) }
}

/// A roles claim: a list of strings, or one string listing them (comma or space separated).
fn roles(claim: Option<&Value>) -> Vec<String> {
    match claim {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(Value::String(list)) => {
            list.split([',', ' ']).map(str::trim).filter(|r| !r.is_empty()).map(str::to_string).collect()
        }
        _ => Vec::new(),
    }
}

/// The bearer token of payload 2.0 `headers` (names in any case); None
/// without `Authorization`. Another scheme, or an empty token, is refused
/// rather than ignored.
pub fn bearer_token(headers: Option<&Value>) -> Result<Option<&str>, AuthError> {
    let Some(headers) = headers.and_then(Value::as_object) else { return Ok(None) };
    let mut values = headers.iter().filter(|(name, _)| name.eq_ignore_ascii_case("authorization"));
    let Some((_, value)) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(refused("more than one Authorization header"));
    }
    let value = value.as_str().unwrap_or_default().trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(refused("Authorization must be `Bearer <token>`"));
    }
    let token = token.trim();
    if token.is_empty() || token.contains([' ', ',']) {
        return Err(refused("Authorization must be `Bearer <token>` with one token"));
    }
    Ok(Some(token))
}

/// The event a plugin's Api receives for `caller`: the client's event with
/// its own authorizer context and `Authorization` header removed, and the
/// verified caller as JWT claims (`sub`, `roles`) in their place, as the
/// Api's `caller_from_claims` reads them. Nothing the client sent can name
/// a user or a role.
pub fn forwarded_event(event: &Value, caller: &Caller, body: String) -> Value {
    let mut event = event.clone();
    let Some(object) = event.as_object_mut() else { return event };
    object.insert("body".into(), Value::String(body));
    object.insert("isBase64Encoded".into(), Value::Bool(false));
    if let Some(headers) = object.get_mut("headers").and_then(Value::as_object_mut) {
        headers.retain(|name, _| !name.eq_ignore_ascii_case("authorization"));
    }
    let context = object.entry("requestContext").or_insert_with(|| json!({}));
    if !context.is_object() {
        *context = json!({});
    }
    if let Some(context) = context.as_object_mut() {
        context.remove("authorizer");
        if let Some(user) = &caller.user_id {
            let claims: BTreeMap<&str, Value> = BTreeMap::from([("sub", json!(user)), ("roles", json!(caller.roles))]);
            context.insert("authorizer".into(), json!({ "jwt": { "claims": claims, "scopes": [] } }));
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_except_on_loopback() {
        assert_eq!(check_url("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"), Ok(()));
        assert_eq!(check_url("http://127.0.0.1:4001"), Ok(()));
        assert_eq!(check_url("http://localhost:4001/"), Ok(()));
        assert_eq!(check_url("http://[::1]:4001"), Ok(()));
        assert!(check_url("http://issuer.example.org").is_err());
        assert!(check_url("issuer.example.org").is_err());
        assert!(check_url("https://").is_err());
        assert!(check_url("https://issuer.example.org/?x=1").is_err());
        assert!(check_url("ftp://issuer.example.org").is_err());
    }

    #[test]
    fn bearer_tokens_are_read_in_any_case_and_other_schemes_are_refused() {
        let token = |headers: Value| bearer_token(Some(&headers)).map(|t| t.map(str::to_string));
        assert_eq!(token(json!({"content-type": "application/json"})), Ok(None));
        assert_eq!(token(json!({"authorization": "Bearer abc.def.ghi"})), Ok(Some("abc.def.ghi".into())));
        assert_eq!(token(json!({"Authorization": "bearer  abc"})), Ok(Some("abc".into())));
        assert!(matches!(token(json!({"authorization": "Basic dXNlcjpwdw=="})), Err(AuthError::Unauthenticated(_))));
        assert!(matches!(token(json!({"authorization": "Bearer "})), Err(AuthError::Unauthenticated(_))));
        assert!(matches!(token(json!({"authorization": "Bearer a, Bearer b"})), Err(AuthError::Unauthenticated(_))));
        assert_eq!(bearer_token(None), Ok(None));
    }

    #[test]
    fn roles_are_read_from_lists_and_from_listing_strings() {
        assert_eq!(roles(Some(&json!(["a", "b", 3]))), vec!["a", "b"]);
        assert_eq!(roles(Some(&json!("a, b c"))), vec!["a", "b", "c"]);
        assert_eq!(roles(None), Vec::<String>::new());
    }

    #[test]
    fn the_audience_is_aud_or_without_aud_client_id() {
        let claims = |value: Value| value.as_object().cloned().unwrap_or_default();
        let ok = |value: Value| for_audience(&claims(value), "app").is_ok();
        assert!(ok(json!({"aud": "app"})));
        assert!(ok(json!({"aud": ["other", "app"]})));
        assert!(ok(json!({"client_id": "app"})));
        assert!(ok(json!({"aud": "app", "token_use": "id"})));
        assert!(ok(json!({"client_id": "app", "token_use": "access"})));
        assert!(!ok(json!({"aud": "other"})));
        assert!(!ok(json!({})));
        // RFC 9068: `aud` names the API; a token for another API does not pass by its `client_id`.
        assert!(!ok(json!({"aud": "other-api", "client_id": "app"})));
        // Cognito: an ID token by `aud`, an access token by `client_id`, nothing else.
        assert!(!ok(json!({"client_id": "app", "token_use": "id"})));
        assert!(!ok(json!({"aud": "app", "token_use": "access"})));
        assert!(!ok(json!({"aud": "app", "client_id": "app", "token_use": "refresh"})));
        assert!(!ok(json!({"aud": "app", "token_use": 1})));
    }

    #[test]
    fn the_forwarded_event_carries_only_the_verified_caller() {
        let event = json!({
            "headers": {"Authorization": "Bearer x", "x-user-id": "mallory", "content-type": "application/json"},
            "requestContext": {"http": {"method": "POST"},
                               "authorizer": {"jwt": {"claims": {"sub": "mallory", "cognito:groups": ["Admin"]}}}},
        });
        let anonymous = forwarded_event(&event, &Caller::default(), "{}".into());
        assert_eq!(anonymous.pointer("/requestContext/authorizer"), None);
        assert_eq!(anonymous.pointer("/headers/Authorization"), None);
        assert_eq!(anonymous.pointer("/requestContext/http/method"), Some(&json!("POST")));
        assert_eq!(anonymous["body"], "{}");
        let ann = Caller { user_id: Some("ann".into()), roles: vec!["Merchandiser".into()] };
        let verified = forwarded_event(&event, &ann, "{}".into());
        assert_eq!(
            verified.pointer("/requestContext/authorizer/jwt/claims"),
            Some(&json!({"sub": "ann", "roles": ["Merchandiser"]}))
        );
    }

    #[test]
    fn settings_name_their_broken_key() {
        assert_eq!(AuthSettings::new("https://issuer.example.org", "app").problem(), None);
        assert_eq!(AuthSettings::new("issuer", "app").problem().map(|p| p.0), Some("issuer"));
        assert_eq!(AuthSettings::new("https://issuer.example.org", " ").problem().map(|p| p.0), Some("audience"));
        let jwks = AuthSettings {
            jwks_url: Some("http://keys.example.org".into()),
            ..AuthSettings::new("https://i.example.org", "a")
        };
        assert_eq!(jwks.problem().map(|p| p.0), Some("jwks_url"));
        let discovery = AuthSettings::new("https://issuer.example.org/", "app").discovery_url();
        assert_eq!(discovery, "https://issuer.example.org/.well-known/openid-configuration");
    }
}
