//! The local OIDC issuer's tokens verify with the gateway's own verifier
//! (discovery, JWKS, `iss`, `aud`, `exp`), and only its tokens do.
#![allow(clippy::unwrap_used)] // tests report failures by panicking
use std::time::Duration;

use reventless_aws::gateway::{AuthError, AuthSettings, Authenticator};
use reventless_local_cloud::oidc::Issuer;
use serde_json::{Value, json};

fn verifier(issuer: &Issuer, audience: &str) -> Authenticator {
    Authenticator::https(Some(AuthSettings::new(issuer.issuer_url(), audience)))
}

fn refused<T: std::fmt::Debug>(result: Result<T, AuthError>) -> String {
    match result {
        Err(AuthError::Unauthenticated(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_from_the_token_endpoint_verifies_against_the_served_keys() {
    let issuer = Issuer::start("shop").unwrap();
    let http = reqwest::Client::new();
    let discovery: Value = http
        .get(format!("{}/.well-known/openid-configuration", issuer.issuer_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], issuer.issuer_url());
    assert_eq!(discovery["jwks_uri"], issuer.jwks_url());
    assert_eq!(discovery["token_endpoint"], issuer.token_url());
    let jwks: Value = http.get(issuer.jwks_url()).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    assert!(jwks["keys"][0].get("d").is_none(), "only the public half is served");

    let answer = http
        .post(issuer.token_url())
        .json(&json!({"sub": "ann", "groups": ["Merchandiser", "Support"], "expiresIn": 600}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let token = answer.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();

    let caller = verifier(&issuer, "shop").verify(&token).await.unwrap();
    assert_eq!(caller.user_id.as_deref(), Some("ann"));
    assert_eq!(caller.roles, vec!["Merchandiser", "Support"]);

    // The same token for another audience, and after it expired: refused.
    assert!(refused(verifier(&issuer, "admin").verify(&token).await).contains("audience"));
    let mut expired = issuer.claims("ann", &["Merchandiser"], Duration::from_secs(60));
    expired.insert("exp".into(), json!(expired["iat"].as_u64().unwrap() - 600));
    let expired = issuer.sign_claims(&expired).unwrap();
    assert!(refused(verifier(&issuer, "shop").verify(&expired).await).contains("expired"));

    // Malformed requests are told why.
    let bad = http.post(issuer.token_url()).json(&json!({"groups": ["x"]})).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let empty = http.post(issuer.token_url()).json(&json!({"sub": ""})).send().await.unwrap();
    assert_eq!(empty.status(), 400);
    issuer.shutdown();
}

#[tokio::test]
async fn another_issuers_key_does_not_verify_and_a_stopped_issuer_stops_answering() {
    let issuer = Issuer::start("shop").unwrap();
    let other = Issuer::start("shop").unwrap();
    let forged = other.sign("ann", &["Admin"], Duration::from_secs(600)).unwrap();
    // The other issuer's key is unknown here, whatever `iss` the token claims.
    let mut claims = other.claims("ann", &["Admin"], Duration::from_secs(600));
    claims.insert("iss".into(), json!(issuer.issuer_url()));
    let impersonating = other.sign_claims(&claims).unwrap();
    let verifier = verifier(&issuer, "shop");
    assert!(refused(verifier.verify(&impersonating).await).contains("unknown signing key"));
    assert!(!refused(verifier.verify(&forged).await).is_empty());
    let genuine = issuer.sign("ann", &[], Duration::from_secs(600)).unwrap();
    assert_eq!(verifier.verify(&genuine).await.unwrap().roles, Vec::<String>::new());

    let url = other.jwks_url();
    other.shutdown();
    assert!(reqwest::get(url).await.is_err(), "nothing serves after shutdown");
}
