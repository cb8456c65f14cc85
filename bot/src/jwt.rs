//! Bearer JWTs from an OpenID Connect provider (Amazon Cognito or any
//! other): the signature is checked against the issuer's published keys
//! (JWKS; RS256 or ES256 only, so `alg: none` and an HMAC made with a
//! public key never pass), then `exp`, `nbf`, `iss`, and the audience: `aud`,
//! or `client_id` for a Cognito access token. Keys are cached and fetched
//! again when a token names a key not seen yet (the provider rotated its
//! keys), at most once every few seconds.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};

/// Shortest time between two fetches of the key set.
const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// Clock difference allowed on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 30;

/// `STORYTIME_JWT_ISSUER`, `STORYTIME_JWT_AUDIENCE`, `STORYTIME_JWKS_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    pub issuer: String,
    /// Accepted audiences (an app client ID for Cognito).
    pub audiences: Vec<String>,
    /// Where the keys are; by default the issuer's
    /// `/.well-known/jwks.json`, where Cognito publishes them.
    pub jwks_url: String,
}

/// Why a token was refused (the client sees this).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a JWT this server accepts ({0})")]
    Malformed(String),
    #[error("the token is signed with {0:?}; only RS256 and ES256 are accepted")]
    Algorithm(String),
    #[error("the token names no key of its issuer")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone else")]
    Issuer,
    #[error("the token is meant for another audience")]
    Audience,
    /// The keys could not be fetched: not the client's fault.
    #[error("the issuer's keys cannot be fetched: {0}")]
    KeysUnavailable(String),
}

/// The claims Storytime reads beyond those `jsonwebtoken` checks.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    token_use: Option<String>,
}

struct Keys {
    by_id: HashMap<String, (DecodingKey, Algorithm)>,
    fetched: Option<Instant>,
}

pub struct JwtVerifier {
    settings: JwtSettings,
    http: reqwest::Client,
    keys: RwLock<Keys>,
    /// One fetch at a time.
    fetching: Mutex<()>,
}

impl JwtVerifier {
    pub fn new(settings: JwtSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .expect("a plain HTTP client builds");
        Self {
            settings,
            http,
            keys: RwLock::new(Keys { by_id: HashMap::new(), fetched: None }),
            fetching: Mutex::new(()),
        }
    }

    /// The subject (`sub`) of a token that passes every check.
    pub async fn verify(&self, token: &str) -> Result<String, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| JwtError::Malformed(e.to_string()))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(JwtError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(JwtError::UnknownKey)?;
        let (key, alg) = match self.key(&kid).await {
            Some(found) => found,
            None => {
                self.refetch().await?;
                self.key(&kid).await.ok_or(JwtError::UnknownKey)?
            }
        };
        // The key decides the algorithm, not the token.
        if alg != header.alg {
            return Err(JwtError::Algorithm(format!("{:?}", header.alg)));
        }
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => JwtError::Expired,
                K::ImmatureSignature => JwtError::NotYetValid,
                K::InvalidIssuer => JwtError::Issuer,
                K::InvalidSignature => JwtError::Signature,
                K::MissingRequiredClaim(claim) => JwtError::Malformed(format!("no {claim} claim")),
                other => JwtError::Malformed(format!("{other:?}")),
            }
        })?;
        let claims = data.claims;
        if !self.audience_accepted(&claims) {
            return Err(JwtError::Audience);
        }
        Ok(claims.sub.unwrap_or_default())
    }

    /// `aud` names an accepted audience; a Cognito access token carries
    /// its app client in `client_id` instead.
    fn audience_accepted(&self, claims: &Claims) -> bool {
        let accepted = |a: &str| self.settings.audiences.iter().any(|x| x == a);
        let by_aud = match &claims.aud {
            Some(Value::String(a)) => accepted(a),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(accepted),
            _ => false,
        };
        let by_client = claims.aud.is_none()
            && claims.token_use.as_deref() == Some("access")
            && claims.client_id.as_deref().is_some_and(accepted);
        by_aud || by_client
    }

    async fn key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        self.keys.read().await.by_id.get(kid).cloned()
    }

    /// Fetches the key set again, unless that was done moments ago.
    async fn refetch(&self) -> Result<(), JwtError> {
        let _one = self.fetching.lock().await;
        if self.keys.read().await.fetched.is_some_and(|at| at.elapsed() < REFETCH_AFTER) {
            return Ok(());
        }
        let unavailable = |e: String| JwtError::KeysUnavailable(e);
        let response = self
            .http
            .get(&self.settings.jwks_url)
            .send()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("HTTP {}", response.status())));
        }
        let set: Value = response.json().await.map_err(|e| unavailable(e.without_url().to_string()))?;
        let by_id = keys_of(&set);
        tracing::info!(keys = by_id.len(), url = %self.settings.jwks_url, "fetched the token issuer's keys");
        *self.keys.write().await = Keys { by_id, fetched: Some(Instant::now()) };
        Ok(())
    }
}

/// The RS256 and ES256 (P-256) keys of a JWK set, by key ID; others are
/// left out, as are keys without an ID.
fn keys_of(set: &Value) -> HashMap<String, (DecodingKey, Algorithm)> {
    let mut out = HashMap::new();
    for raw in set["keys"].as_array().into_iter().flatten() {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else { continue };
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        let alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
            _ => continue,
        };
        // A key that says which algorithm it is for must say this one.
        if let Some(stated) = raw["alg"].as_str()
            && stated != format!("{alg:?}")
        {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            out.insert(kid, (key, alg));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rsa_and_p256_keys_with_ids_are_kept() {
        let set = serde_json::json!({ "keys": [
            { "kty": "RSA", "kid": "r1", "alg": "RS256", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB" },
            { "kty": "RSA", "n": "sXch", "e": "AQAB" },
            { "kty": "oct", "kid": "h1", "k": "c2VjcmV0" },
            { "kty": "RSA", "kid": "r2", "alg": "HS256", "n": "sXch", "e": "AQAB" },
            { "kty": "weird", "kid": "w1" }
        ]});
        let keys = keys_of(&set);
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["r1"]);
    }
}
