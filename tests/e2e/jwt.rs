//! Bearer JWTs from an OpenID Connect issuer, against `storytime serve`
//! with the issuer's key set served on loopback: good RS256 and ES256
//! tokens (and a Cognito access token, whose audience is in `client_id`)
//! are accepted beside the API keys; expired, early, wrong-audience,
//! wrong-issuer, wrong-key, unknown-key, `alg: none` and HMAC-with-the-
//! public-key tokens each get 401 with a JSON reason and `WWW-Authenticate`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use storytime_tests::{Page, Server, render_page};

const AUDIENCE: &str = "storytime-client";
const API_KEY: &str = "static-key-1";

fn rsa_private() -> EncodingKey {
    let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/jwt-rsa.pem")).expect("fixture");
    EncodingKey::from_rsa_pem(&pem).expect("an RSA key")
}

fn rsa_public() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/jwt-rsa.jwk.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A fresh P-256 key: its signing key and its public JWK.
fn ec_key(kid: &str) -> (EncodingKey, Value) {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &SystemRandom::new()).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
}

/// The issuer: its key set at `/.well-known/jwks.json`, counting fetches.
struct Issuer {
    url: String,
    fetches: Arc<AtomicUsize>,
}

async fn issuer(keys: Vec<Value>) -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let set = json!({ "keys": keys });
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let set = set.clone();
            async move { axum::Json(set) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Issuer { url, fetches }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A request that needs authorization and, once past it, answers 404.
async fn status_with(server: &Server, authorization: Option<&str>) -> (u16, Value, Option<String>) {
    let mut request = server.http.get(server.url("/retrieve")).header("ETag", "0".repeat(32)).header("Timestamp", "1");
    if let Some(a) = authorization {
        request = request.header("Authorization", a);
    }
    let r = request.send().await.unwrap();
    let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null), challenge)
}

#[tokio::test]
async fn tokens_are_checked_against_the_issuers_keys_and_claims() {
    let (ec, ec_public) = ec_key("test-ec");
    let issuer = issuer(vec![rsa_public(), ec_public]).await;
    let server = Server::start(&[
        ("STORYTIME_JWT_ISSUER", issuer.url.as_str()),
        ("STORYTIME_JWT_AUDIENCE", AUDIENCE),
        ("STORYTIME_API_KEYS", API_KEY),
    ]);
    let claims = |extra: Value| {
        let mut c = json!({ "iss": issuer.url, "sub": "parent-1", "aud": AUDIENCE, "exp": now() + 600, "iat": now() });
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    };
    let rsa = rsa_private();

    // Accepted: RS256, ES256, a Cognito access token, and the static key.
    let good = sign(Algorithm::RS256, "test-rsa", &rsa, &claims(json!({})));
    let page = render_page(&Page::new(&["The owl read a book under the moon."]));
    let upload = server.upload(page, "owl.png", &[("Authorization", &format!("Bearer {good}"))]).await;
    assert_eq!(upload.status(), 200, "{:?}", upload.text().await);
    let es = sign(Algorithm::ES256, "test-ec", &ec, &claims(json!({})));
    assert_eq!(status_with(&server, Some(&format!("Bearer {es}"))).await.0, 404, "past authorization");
    let mut access = claims(json!({ "token_use": "access", "client_id": AUDIENCE }));
    access.as_object_mut().unwrap().remove("aud");
    let access = sign(Algorithm::RS256, "test-rsa", &rsa, &access);
    assert_eq!(status_with(&server, Some(&format!("Bearer {access}"))).await.0, 404);
    assert_eq!(status_with(&server, Some(&format!("Bearer {API_KEY}"))).await.0, 404);
    let fetched = issuer.fetches.load(Ordering::SeqCst);
    assert_eq!(fetched, 1, "the keys are fetched once and cached");

    // Refused, each with its reason.
    let (other_ec, _) = ec_key("test-ec");
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"test-rsa"}"#);
    let none_body = URL_SAFE_NO_PAD.encode(claims(json!({})).to_string());
    let public_n = rsa_public()["n"].as_str().unwrap().to_owned();
    let hmac = sign(Algorithm::HS256, "test-rsa", &EncodingKey::from_secret(public_n.as_bytes()), &claims(json!({})));
    let cases = [
        ("expired", sign(Algorithm::RS256, "test-rsa", &rsa, &claims(json!({ "exp": now() - 3600 }))), "expired"),
        (
            "not yet valid",
            sign(Algorithm::RS256, "test-rsa", &rsa, &claims(json!({ "nbf": now() + 3600 }))),
            "not valid yet",
        ),
        (
            "wrong audience",
            sign(Algorithm::RS256, "test-rsa", &rsa, &claims(json!({ "aud": "someone-else" }))),
            "audience",
        ),
        (
            "wrong issuer",
            sign(Algorithm::RS256, "test-rsa", &rsa, &claims(json!({ "iss": "https://evil.example" }))),
            "issued",
        ),
        ("wrong key", sign(Algorithm::ES256, "test-ec", &other_ec, &claims(json!({}))), "signature"),
        ("unknown key", sign(Algorithm::ES256, "nobody", &other_ec, &claims(json!({}))), "key"),
        ("alg none", format!("{none_header}.{none_body}."), "JWT"),
        ("HMAC with the public key", hmac, "HS256"),
        ("garbage", "not.a.token".to_owned(), "JWT"),
    ];
    for (name, token, reason) in cases {
        let (status, body, challenge) = status_with(&server, Some(&format!("Bearer {token}"))).await;
        assert_eq!(status, 401, "{name}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(body["error"]["code"], "invalid_token", "{name}: {body}");
        assert!(message.contains(reason), "{name}: {message}");
        let challenge = challenge.unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains(r#"error="invalid_token""#),
            "{name}: {challenge}"
        );
    }
    let (status, body, challenge) = status_with(&server, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="storytime""#));
    // An unknown key fetches the set again, but not for every request.
    assert!(issuer.fetches.load(Ordering::SeqCst) <= fetched + 1, "{}", issuer.fetches.load(Ordering::SeqCst));
}
