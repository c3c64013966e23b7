//! The gateway verifies end users' bearer tokens before anything runs: a
//! token signed by the issuer's keys (RS256 as Cognito signs, ES256) reaches
//! the plugin as the caller; forged, expired, foreign or misdirected tokens
//! are refused with 401 `UNAUTHENTICATED` and no plugin is called; no token
//! is an anonymous caller; what a client puts in its own request context
//! never reaches a plugin. The issuer is a tiny JWKS server in the test
//! (keys generated here); the registry is on the emulator (moto).
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use reventless_aws::emulator::Emulator;
use reventless_aws::gateway::{AuthSettings, Authenticator, Gateway, PluginApis, Registration, Registry};
use serde_json::{Map, Value, json};

const AUDIENCE: &str = "shop-web";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A signing key of the test issuer (or of a forger).
enum Key {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl Key {
    fn rsa() -> Self {
        Key::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
    }

    fn ec() -> Self {
        Key::Ec(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    fn alg(&self) -> &'static str {
        match self {
            Key::Rsa(_) => "RS256",
            Key::Ec(_) => "ES256",
        }
    }

    fn jwk(&self, kid: &str) -> Value {
        match self {
            Key::Rsa(pair) => json!({
                "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                "n": b64(pair.public_key().modulus().big_endian_without_leading_zero()),
                "e": b64(pair.public_key().exponent().big_endian_without_leading_zero()),
            }),
            Key::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                       "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
        }
    }

    /// A compact JWS of `claims`, signed here (not by the crate under test).
    fn sign(&self, kid: &str, claims: &Value) -> String {
        let header = json!({"alg": self.alg(), "kid": kid, "typ": "JWT"});
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let signature = match self {
            Key::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature).unwrap();
                signature
            }
            Key::Ec(pair) => pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap().as_ref().to_vec(),
        };
        format!("{input}.{}", b64(&signature))
    }
}

/// The issuer: discovery and JWKS on loopback, counting key-set reads.
struct TestIssuer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    jwks_reads: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct IssuerState {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    jwks_reads: Arc<AtomicUsize>,
}

impl TestIssuer {
    async fn start(keys: Vec<Value>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/pool", listener.local_addr().unwrap());
        let state = IssuerState {
            url: url.clone(),
            keys: Arc::new(Mutex::new(keys)),
            jwks_reads: Arc::new(AtomicUsize::new(0)),
        };
        let app = axum::Router::new()
            .route(
                "/pool/.well-known/openid-configuration",
                get(|State(s): State<IssuerState>| async move {
                    Json(json!({"issuer": s.url, "jwks_uri": format!("{}/.well-known/jwks.json", s.url)}))
                }),
            )
            .route(
                "/pool/.well-known/jwks.json",
                get(|State(s): State<IssuerState>| async move {
                    s.jwks_reads.fetch_add(1, Ordering::SeqCst);
                    let keys = s.keys.lock().unwrap().clone();
                    Json(json!({ "keys": keys }))
                }),
            )
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestIssuer { url, keys: state.keys, jwks_reads: state.jwks_reads }
    }

    fn claims(&self, sub: &str, groups: &[&str]) -> Map<String, Value> {
        let now = now();
        json!({"iss": self.url, "aud": AUDIENCE, "sub": sub, "cognito:groups": groups,
               "token_use": "id", "iat": now, "exp": now + 600})
        .as_object()
        .cloned()
        .unwrap()
    }
}

/// A plugin API that records what it was called with and answers with the
/// authorizer context it received (what its `caller_from_claims` reads).
#[derive(Default)]
struct RecordingApis {
    calls: Mutex<Vec<Value>>,
}

#[async_trait::async_trait]
impl PluginApis for RecordingApis {
    async fn call(&self, _function: &str, event: Value) -> Result<Value, String> {
        self.calls.lock().unwrap().push(event.clone());
        let claims = event.pointer("/requestContext/authorizer/jwt/claims").cloned().unwrap_or(Value::Null);
        let body = json!({ "data": { "Shop_Whoami": claims.to_string() } });
        Ok(json!({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": body.to_string()}))
    }
}

impl RecordingApis {
    fn take(&self) -> Vec<Value> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

async fn registry() -> Registry {
    let emulator = Emulator::shared().expect("the AWS emulator (moto) must run for these tests");
    let config = emulator.sdk_config().await;
    let table = format!("registry-{}", uuid::Uuid::now_v7().simple());
    reventless_aws::provision::create_rows_table(&aws_sdk_dynamodb::Client::new(&config), &table).await.unwrap();
    let registry = Registry::new(&config, &table);
    registry
        .register(&Registration {
            plugin: "Shop".into(),
            version: "1.0.0".into(),
            api_function: "shop-api".into(),
            schema: "type Query {\n  Shop_Whoami: String\n}\n".into(),
            last_heartbeat: 0,
            inbox: None,
        })
        .await
        .unwrap();
    registry
}

async fn gateway(settings: Option<AuthSettings>) -> (Gateway, Arc<RecordingApis>) {
    let apis = Arc::new(RecordingApis::default());
    let gateway = Gateway::new(registry().await, apis.clone()).unwrap().with_auth(Authenticator::https(settings));
    (gateway, apis)
}

/// A function URL event (payload 2.0) asking `{ Shop_Whoami }`.
fn request(authorization: Option<&str>) -> Value {
    let mut headers = json!({"content-type": "application/json"});
    if let Some(value) = authorization {
        headers["authorization"] = json!(value);
    }
    json!({
        "version": "2.0", "rawPath": "/graphql", "rawQueryString": "", "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": "/graphql"}, "requestId": "r1"},
        "body": json!({"query": "{ Shop_Whoami }"}).to_string(), "isBase64Encoded": false,
    })
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The claims the plugin received (null: anonymous).
fn seen_claims(response: &Value) -> Value {
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body.get("errors"), None, "{body}");
    serde_json::from_str(body["data"]["Shop_Whoami"].as_str().unwrap()).unwrap()
}

fn assert_unauthenticated(response: &Value, reason: &str) {
    assert_eq!(response["statusCode"], 401, "{reason}: {response}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{reason}: {body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(reason), "expected `{reason}` in `{message}`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_tokens_reach_the_plugin_as_the_caller_and_nothing_else_does() {
    let (rsa, ec) = (Key::rsa(), Key::ec());
    let issuer = TestIssuer::start(vec![rsa.jwk("rsa-1"), ec.jwk("ec-1")]).await;
    let (gateway, apis) = gateway(Some(AuthSettings::new(&issuer.url, AUDIENCE))).await;

    // An RS256 ID token (`aud`), as Cognito signs them.
    let id_token = rsa.sign("rsa-1", &Value::Object(issuer.claims("ann", &["Merchandiser", "Support"])));
    let answer = gateway.handle(request(Some(&bearer(&id_token)))).await;
    assert_eq!(seen_claims(&answer), json!({"sub": "ann", "roles": ["Merchandiser", "Support"]}));
    let calls = apis.take();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].pointer("/headers/authorization"), None, "the token itself is not passed on");

    // An ES256 access token: no `aud`, the audience is its `client_id`.
    let mut access = issuer.claims("bob", &[]);
    access.remove("aud");
    access.insert("client_id".into(), json!(AUDIENCE));
    access.insert("token_use".into(), json!("access"));
    let answer = gateway.handle(request(Some(&bearer(&ec.sign("ec-1", &Value::Object(access)))))).await;
    assert_eq!(seen_claims(&answer), json!({"sub": "bob", "roles": []}));
    assert_eq!(apis.take().len(), 1);

    // No token: anonymous, even with claims and identity headers smuggled in.
    let mut smuggling = request(None);
    smuggling["requestContext"]["authorizer"] =
        json!({"jwt": {"claims": {"sub": "mallory", "cognito:groups": ["Admin"], "roles": "Admin"}}});
    smuggling["headers"]["x-user-id"] = json!("mallory");
    assert_eq!(seen_claims(&gateway.handle(smuggling.clone()).await), Value::Null);
    let calls = apis.take();
    assert_eq!(calls[0].pointer("/requestContext/authorizer"), None, "{}", calls[0]);

    // With a valid token, the smuggled claims are replaced by the verified ones.
    let token = rsa.sign("rsa-1", &Value::Object(issuer.claims("ann", &["Support"])));
    smuggling["headers"]["authorization"] = json!(bearer(&token));
    assert_eq!(seen_claims(&gateway.handle(smuggling).await), json!({"sub": "ann", "roles": ["Support"]}));
    assert_eq!(issuer.jwks_reads.load(Ordering::SeqCst), 1, "the key set is read once and cached");

    // The health check needs no identity.
    let mut health = request(Some("Bearer garbage"));
    health["requestContext"]["http"]["method"] = json!("GET");
    health["rawPath"] = json!("/health");
    assert_eq!(gateway.handle(health).await["statusCode"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_before_any_plugin_is_called() {
    let (rsa, ec, forger) = (Key::rsa(), Key::ec(), Key::rsa());
    let issuer = TestIssuer::start(vec![rsa.jwk("rsa-1"), ec.jwk("ec-1")]).await;
    let (gateway, apis) = gateway(Some(AuthSettings::new(&issuer.url, AUDIENCE))).await;
    let good = issuer.claims("ann", &["Admin"]);
    let with = |change: &dyn Fn(&mut Map<String, Value>)| {
        let mut claims = good.clone();
        change(&mut claims);
        Value::Object(claims)
    };

    let valid = rsa.sign("rsa-1", &Value::Object(good.clone()));
    let (head, rest) = valid.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let tampered_claims = b64(with(&|c| drop(c.insert("sub".into(), json!("mallory")))).to_string().as_bytes());
    let cases: Vec<(String, &str)> = vec![
        (forger.sign("rsa-1", &Value::Object(good.clone())), "signature"),
        (format!("{head}.{tampered_claims}.{signature}"), "signature"),
        (rsa.sign("rsa-1", &with(&|c| drop(c.insert("exp".into(), json!(now() - 300))))), "expired"),
        (rsa.sign("rsa-1", &with(&|c| drop(c.insert("nbf".into(), json!(now() + 600))))), "not valid yet"),
        (rsa.sign("rsa-1", &with(&|c| drop(c.insert("iss".into(), json!("https://evil.example.org"))))), "issuer"),
        (rsa.sign("rsa-1", &with(&|c| drop(c.insert("aud".into(), json!("another-app"))))), "audience"),
        (rsa.sign("rsa-1", &with(&|c| drop(c.remove("aud")))), "audience"),
        // An RFC 9068 access token for another API (`aud`) of our app (`client_id`).
        (
            rsa.sign(
                "rsa-1",
                &with(&|c| {
                    c.remove("token_use");
                    c.insert("aud".into(), json!("https://other-api.example.org"));
                    c.insert("client_id".into(), json!(AUDIENCE));
                }),
            ),
            "audience",
        ),
        // Cognito: an ID token is matched by `aud`, an access token by `client_id`, no other `token_use`.
        (rsa.sign("rsa-1", &with(&|c| drop(c.insert("token_use".into(), json!("access"))))), "audience"),
        (
            rsa.sign(
                "rsa-1",
                &with(&|c| {
                    c.remove("aud");
                    c.insert("client_id".into(), json!(AUDIENCE));
                }),
            ),
            "audience",
        ),
        (rsa.sign("rsa-1", &with(&|c| drop(c.insert("token_use".into(), json!("refresh"))))), "token_use"),
        (rsa.sign("rsa-1", &with(&|c| drop(c.remove("exp")))), "exp"),
        (rsa.sign("rsa-1", &with(&|c| drop(c.remove("sub")))), "sub"),
        (forger.sign("forged-1", &Value::Object(good.clone())), "unknown signing key"),
        // An EC token naming the RSA key, and an unsigned one.
        (ec.sign("rsa-1", &Value::Object(good.clone())), "not a key for ES256"),
        (format!("{}.{}.", b64(br#"{"alg":"none","kid":"rsa-1"}"#), b64(good_json(&good).as_bytes())), "malformed"),
        (
            format!("{}.{}.c2ln", b64(br#"{"alg":"HS256","kid":"rsa-1"}"#), b64(good_json(&good).as_bytes())),
            "not accepted",
        ),
        ("not-a-jwt".to_string(), "malformed"),
    ];
    for (token, reason) in &cases {
        assert_unauthenticated(&gateway.handle(request(Some(&bearer(token)))).await, reason);
    }
    assert_unauthenticated(&gateway.handle(request(Some("Basic YW5uOnB3"))).await, "Bearer");
    assert!(apis.take().is_empty(), "no plugin was called for a refused request");
    // Unknown key ids within 30 s of the first read do not read the key set again.
    assert_eq!(issuer.jwks_reads.load(Ordering::SeqCst), 1, "forged key ids must not flood the issuer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_key_id_reads_the_key_set_again_at_most_once_per_interval() {
    let old = Key::ec();
    let issuer = TestIssuer::start(vec![old.jwk("ec-1")]).await;
    let settings = AuthSettings::new(&issuer.url, AUDIENCE);
    let apis = Arc::new(RecordingApis::default());
    let authenticator = Authenticator::https(Some(settings.clone())).refetching_after(Duration::from_secs(3));
    let gateway = Gateway::new(registry().await, apis.clone()).unwrap().with_auth(authenticator);
    let claims = Value::Object(issuer.claims("ann", &["Support"]));
    assert_eq!(seen_claims(&gateway.handle(request(Some(&bearer(&old.sign("ec-1", &claims))))).await)["sub"], "ann");

    // The issuer rotates a key in: right away it is unknown (no second read
    // within the interval); after it, the first token with it reads the set again.
    let fresh = Key::rsa();
    issuer.keys.lock().unwrap().push(fresh.jwk("rsa-2"));
    let token = fresh.sign("rsa-2", &claims);
    assert_unauthenticated(&gateway.handle(request(Some(&bearer(&token)))).await, "unknown signing key");
    assert_eq!(issuer.jwks_reads.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(seen_claims(&gateway.handle(request(Some(&bearer(&token)))).await)["roles"], json!(["Support"]));
    assert_eq!(issuer.jwks_reads.load(Ordering::SeqCst), 2);
    // Known keys keep verifying without reads.
    for _ in 0..3 {
        gateway.handle(request(Some(&bearer(&old.sign("ec-1", &claims))))).await;
    }
    assert_eq!(issuer.jwks_reads.load(Ordering::SeqCst), 2);
    assert_eq!(apis.take().len(), 5);
}

fn good_json(claims: &Map<String, Value>) -> String {
    Value::Object(claims.clone()).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_issuer_callers_are_anonymous_and_tokens_are_refused() {
    let key = Key::ec();
    let issuer = TestIssuer::start(vec![key.jwk("ec-1")]).await;
    let (gateway, apis) = gateway(None).await;
    let mut smuggling = request(None);
    smuggling["requestContext"]["authorizer"] = json!({"jwt": {"claims": {"sub": "mallory", "roles": ["Admin"]}}});
    assert_eq!(seen_claims(&gateway.handle(smuggling).await), Value::Null);
    assert_eq!(apis.take().len(), 1);
    // Even a token the issuer really signed: no issuer is configured to trust.
    let token = key.sign("ec-1", &Value::Object(issuer.claims("ann", &["Admin"])));
    assert_unauthenticated(&gateway.handle(request(Some(&bearer(&token)))).await, "no issuer is configured");
    assert!(apis.take().is_empty());
    assert_eq!(issuer.jwks_reads.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_claims_and_a_configured_key_set_url_are_used() {
    let key = Key::rsa();
    let issuer = TestIssuer::start(vec![key.jwk("rsa-1")]).await;
    let settings = AuthSettings {
        user_claim: "email".into(),
        roles_claim: "custom:roles".into(),
        jwks_url: Some(format!("{}/.well-known/jwks.json", issuer.url)),
        ..AuthSettings::new(&issuer.url, AUDIENCE)
    };
    let (custom, _apis) = gateway(Some(settings)).await;
    let mut claims = issuer.claims("sub-1", &["Ignored"]);
    claims.insert("email".into(), json!("ann@example.org"));
    claims.insert("custom:roles".into(), json!("Merchandiser,Support"));
    let answer = custom.handle(request(Some(&bearer(&key.sign("rsa-1", &Value::Object(claims)))))).await;
    assert_eq!(seen_claims(&answer), json!({"sub": "ann@example.org", "roles": ["Merchandiser", "Support"]}));
    assert_eq!(issuer.jwks_reads.load(Ordering::SeqCst), 1);

    // An issuer whose keys cannot be read: 503, not a silent anonymous caller.
    let (down, down_apis) = gateway(Some(AuthSettings::new("http://127.0.0.1:9/pool", AUDIENCE))).await;
    let token = key.sign("rsa-1", &Value::Object(issuer.claims("ann", &[])));
    let answer = down.handle(request(Some(&bearer(&token)))).await;
    assert_eq!(answer["statusCode"], 503, "{answer}");
    assert!(down_apis.take().is_empty());
}
