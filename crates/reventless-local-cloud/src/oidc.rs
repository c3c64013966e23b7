//! A local OIDC issuer, **for emulation and tests only**: it signs whatever
//! identity it is asked for, so nothing but a throw-away local stage may
//! trust it. It stands in for Cognito (or any OIDC provider) in front of the
//! emulated gateway: the gateway verifies its tokens exactly as it verifies
//! a real issuer's (discovery document, JWKS, `iss`, `aud`, `exp`).
//!
//! It serves on `127.0.0.1` (a free port):
//! - `GET /.well-known/openid-configuration`: issuer, `jwks_uri`, token endpoint;
//! - `GET /.well-known/jwks.json`: the one public key (EC P-256, `ES256`);
//! - `POST /token` with `{"sub": "...", "groups": ["..."], "expiresIn"?: seconds}`:
//!   `{"token": "<JWT>"}` with `iss`, `aud`, `sub`, `cognito:groups`, `iat`, `exp`.
//!
//! The key pair is generated at start and never leaves the process.
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Digest;

/// How long a token from `POST /token` lives unless `expiresIn` says otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// The signing half, shared with the server's handlers.
struct Signer {
    issuer: String,
    audience: String,
    kid: String,
    key: EncodingKey,
    /// The public key as a JWK.
    jwk: Value,
}

impl Signer {
    fn sign_claims(&self, claims: &Map<String, Value>) -> std::io::Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(std::io::Error::other)
    }

    fn claims(&self, sub: &str, groups: &[String], ttl: Duration) -> Map<String, Value> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let claims = json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "cognito:groups": groups,
            "token_use": "id",
            "iat": now,
            "exp": now.saturating_add(ttl.as_secs()),
        });
        claims.as_object().cloned().unwrap_or_default()
    }
}

/// A running local issuer (stops on [`Issuer::shutdown`] or drop).
pub struct Issuer {
    signer: Arc<Signer>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("issuer", &self.signer.issuer).field("kid", &self.signer.kid).finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenRequest {
    sub: String,
    #[serde(default)]
    groups: Vec<String>,
    expires_in: Option<u64>,
}

impl Issuer {
    /// Generates a key pair and serves on a free loopback port, on its own
    /// thread and runtime (usable from synchronous and async tests alike).
    pub fn start(audience: &str) -> std::io::Result<Issuer> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| std::io::Error::other("cannot generate a P-256 key"))?;
        let pkcs8 = pair.to_pkcs8v1().map_err(|_| std::io::Error::other("cannot encode the key"))?;
        // The uncompressed point: 0x04 ‖ x ‖ y, 32 bytes each.
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return Err(std::io::Error::other("unexpected P-256 public key encoding"));
        }
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let kid = sha2::Sha256::digest(point).iter().take(8).map(|b| format!("{b:02x}")).collect::<String>();

        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let issuer = format!("http://{}", listener.local_addr()?);
        let signer = Arc::new(Signer {
            jwk: json!({
                "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]),
                "kid": kid, "alg": "ES256", "use": "sig",
            }),
            key: EncodingKey::from_ec_der(pkcs8.as_ref()),
            kid,
            issuer,
            audience: audience.to_string(),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/.well-known/jwks.json", get(jwks))
            .route("/token", post(token))
            .with_state(signer.clone());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("oidc-issuer".into()).spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(error) => return tracing::error!(%error, "the local OIDC issuer cannot listen"),
                };
                let served = axum::serve(listener, app).with_graceful_shutdown(async move {
                    let _ = stopped.await;
                });
                if let Err(error) = served.await {
                    tracing::error!(%error, "the local OIDC issuer stopped");
                }
            });
        })?;
        Ok(Issuer { signer, stop: Some(stop), thread: Some(thread) })
    }

    /// The issuer URL (`iss` of its tokens; `[auth].issuer` of a local stage).
    pub fn issuer_url(&self) -> String {
        self.signer.issuer.clone()
    }

    /// The audience its tokens carry (`aud`).
    pub fn audience(&self) -> &str {
        &self.signer.audience
    }

    /// `POST` here for a token.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.signer.issuer)
    }

    /// Its key set.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.signer.issuer)
    }

    /// A token for `sub` with `groups` (as `cognito:groups`), valid for `ttl`.
    pub fn sign(&self, sub: &str, groups: &[&str], ttl: Duration) -> std::io::Result<String> {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        self.signer.sign_claims(&self.signer.claims(sub, &groups, ttl))
    }

    /// Any claims, signed with the issuer's key (tests: expired, other audience, …).
    pub fn sign_claims(&self, claims: &Map<String, Value>) -> std::io::Result<String> {
        self.signer.sign_claims(claims)
    }

    /// The claims [`Issuer::sign`] would put in a token, to alter before [`Issuer::sign_claims`].
    pub fn claims(&self, sub: &str, groups: &[&str], ttl: Duration) -> Map<String, Value> {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        self.signer.claims(sub, &groups, ttl)
    }

    /// Stops serving and waits for the server's thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

async fn discovery(State(signer): State<Arc<Signer>>) -> Json<Value> {
    let issuer = &signer.issuer;
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/token"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
}

async fn jwks(State(signer): State<Arc<Signer>>) -> Json<Value> {
    Json(json!({ "keys": [signer.jwk] }))
}

async fn token(State(signer): State<Arc<Signer>>, body: axum::body::Bytes) -> Response {
    let request: TokenRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            let message = format!("expected {{\"sub\", \"groups\"?, \"expiresIn\"?}}: {error}");
            return (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response();
        }
    };
    if request.sub.is_empty() {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "`sub` is empty" }))).into_response();
    }
    let ttl = request.expires_in.map(Duration::from_secs).unwrap_or(DEFAULT_TTL);
    match signer.sign_claims(&signer.claims(&request.sub, &request.groups, ttl)) {
        Ok(token) => Json(json!({ "token": token })).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": error.to_string() }))).into_response(),
    }
}
