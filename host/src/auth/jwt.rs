//! Person logins: JWTs minted by the dashboard and verified against its JWKS (API.md §1.1).
//!
//! Only RS256, ES256 and EdDSA are accepted, and only with a key of the matching type, so
//! `alg: none`, HMAC tokens and algorithm-confusion tricks all fail. Keys are cached for
//! `jwks_ttl_secs`; a token naming an unknown `kid` triggers at most one refresh per
//! `jwks_min_refresh_secs`, however many such tokens arrive. A token whose signature was
//! checked is remembered until its `exp`, while the very key that checked it is still in
//! the key set: a dashboard sends the same token on every request.

use super::{AuthError, Caller, Capability, CapabilitySet, Principal};
use crate::config::AuthConfig;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Tokens are bounded: a longer one is refused before any parsing.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// A JWKS document larger than this is refused.
const MAX_JWKS_BYTES: u64 = 1 << 20;
/// Verified tokens remembered at most; past that the expired ones go, then all.
const MAX_VERIFIED: usize = 4_096;

/// Three base64url parts separated by dots, the first a JSON header.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

/// The `exp` claim (epoch seconds) of a token [`JwtVerifier::verify`] has accepted, so
/// connections it opens can end when it does. The signature is not checked again here:
/// call it only on a token that was just verified.
pub fn verified_expiry(token: &str) -> Option<u64> {
    use base64::Engine as _;
    if !looks_like_jwt(token) || token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Map<String, Value>>(&bytes)
        .ok()?
        .get("exp")?
        .as_u64()
}

#[derive(Debug, Clone)]
enum Source {
    Http(String),
    File(PathBuf),
}

struct VerifyingKey {
    alg: Algorithm,
    key: DecodingKey,
}

/// A token whose signature and claims were checked, by the SHA-256 of the token.
struct Verified {
    caller: Arc<Caller>,
    kid: Option<String>,
    /// The key that checked it. The entry holds only while the key set still offers this
    /// very key: a refresh builds new ones, a rotation drops it.
    key: Arc<VerifyingKey>,
    /// The token's `exp` (epoch seconds): from then on it is checked in full again.
    exp: u64,
}

#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<VerifyingKey>>,
    /// Keys without a `kid`, usable only when the set holds exactly one key.
    anonymous: Vec<Arc<VerifyingKey>>,
    fetched_at: Option<Instant>,
}

pub struct JwtVerifier {
    source: Source,
    issuer: Option<String>,
    audience: Vec<String>,
    leeway: u64,
    ttl: Duration,
    /// How long past the TTL keys stay trusted while refreshes fail.
    max_stale: Duration,
    min_refresh: Duration,
    fetch_timeout: Duration,
    org_claim: String,
    role_claim: String,
    platform_role_claim: String,
    roles: HashMap<String, CapabilitySet>,
    keys: RwLock<KeySet>,
    /// Serialises fetches so concurrent misses cause one request.
    refreshing: tokio::sync::Mutex<()>,
    /// When the JWKS was last fetched (or tried), for rate limiting.
    last_attempt: Mutex<Option<Instant>>,
    verified: Mutex<HashMap<[u8; 32], Verified>>,
    agent: ureq::Agent,
}

/// What the JWKS said, or why it could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot fetch JWKS from {0}: {1}")]
    Fetch(String, String),
    #[error("JWKS from {0} is not valid: {1}")]
    Parse(String, String),
}

impl JwtVerifier {
    /// A verifier when `auth.jwks_url` is configured.
    pub fn from_config(config: &AuthConfig) -> anyhow::Result<Option<JwtVerifier>> {
        let Some(url) = config
            .jwks_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        else {
            return Ok(None);
        };
        let source = if url.starts_with("https://") || url.starts_with("http://") {
            Source::Http(url.to_owned())
        } else {
            Source::File(PathBuf::from(url.strip_prefix("file://").unwrap_or(url)))
        };
        let roles: HashMap<String, CapabilitySet> = config
            .roles
            .iter()
            .map(|(role, perms)| (role.clone(), perms.iter().collect()))
            .collect();
        let fetch_timeout = Duration::from_millis(config.jwks_fetch_timeout_ms.max(1));
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(fetch_timeout))
            .http_status_as_error(true)
            .build()
            .new_agent();
        Ok(Some(JwtVerifier {
            source,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: config.leeway_secs,
            ttl: Duration::from_secs(config.jwks_ttl_secs),
            max_stale: Duration::from_secs(config.jwks_max_stale_secs),
            min_refresh: Duration::from_secs(config.jwks_min_refresh_secs),
            fetch_timeout,
            org_claim: config.org_claim.clone(),
            role_claim: config.role_claim.clone(),
            platform_role_claim: config.platform_role_claim.clone(),
            roles,
            keys: RwLock::new(KeySet::default()),
            refreshing: tokio::sync::Mutex::new(()),
            last_attempt: Mutex::new(None),
            verified: Mutex::new(HashMap::new()),
            agent,
        }))
    }

    /// The JWKS source for logs: an URL without credentials, query or fragment.
    fn source_name(&self) -> String {
        match &self.source {
            Source::Http(u) => redact_url(u),
            Source::File(p) => p.display().to_string(),
        }
    }

    /// Fetches the JWKS now (start-up warms the cache this way).
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        let _guard = self.refreshing.lock().await;
        self.refresh_locked().await
    }

    async fn refresh_locked(&self) -> Result<usize, JwksError> {
        *self.last_attempt.lock().expect("lock") = Some(Instant::now());
        let name = self.source_name();
        let text = match &self.source {
            Source::Http(url) => {
                let agent = self.agent.clone();
                let url = url.clone();
                tokio::task::spawn_blocking(move || -> Result<String, String> {
                    let mut resp = agent.get(&url).call().map_err(|e| e.to_string())?;
                    resp.body_mut()
                        .with_config()
                        .limit(MAX_JWKS_BYTES)
                        .read_to_string()
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| JwksError::Fetch(name.clone(), e.to_string()))?
                .map_err(|e| JwksError::Fetch(name.clone(), e))?
            }
            Source::File(path) => {
                tokio::time::timeout(self.fetch_timeout, tokio::fs::read_to_string(path))
                    .await
                    .map_err(|_| JwksError::Fetch(name.clone(), "timed out".into()))?
                    .map_err(|e| JwksError::Fetch(name.clone(), e.to_string()))?
            }
        };
        let set = parse_jwks(&text).map_err(|e| JwksError::Parse(name.clone(), e))?;
        let count = set.by_kid.len() + set.anonymous.len();
        *self.keys.write().expect("lock") = set;
        tracing::info!(jwks = %name, keys = count, "JWKS loaded");
        Ok(count)
    }

    /// Whether a forced refresh (unknown `kid`) is allowed now.
    fn may_force_refresh(&self) -> bool {
        self.last_attempt
            .lock()
            .expect("lock")
            .is_none_or(|t| t.elapsed() >= self.min_refresh)
    }

    fn lookup(&self, kid: Option<&str>) -> Option<Arc<VerifyingKey>> {
        let keys = self.keys.read().expect("lock");
        // Keys the JWKS could not confirm for longer than the grace period are no longer
        // trusted: a key removed from the JWKS while it was unreachable must not live on.
        if keys
            .fetched_at
            .is_none_or(|t| t.elapsed() >= self.ttl + self.max_stale)
        {
            return None;
        }
        match kid {
            Some(k) => keys.by_kid.get(k).cloned(),
            None if keys.by_kid.len() + keys.anonymous.len() == 1 => keys
                .anonymous
                .first()
                .or_else(|| keys.by_kid.values().next())
                .cloned(),
            None => None,
        }
    }

    fn stale(&self) -> bool {
        self.keys
            .read()
            .expect("lock")
            .fetched_at
            .is_none_or(|t| t.elapsed() >= self.ttl)
    }

    /// Finds the key for a token, refreshing the cache when it is stale or (rate-limited)
    /// when the `kid` is unknown.
    async fn key_for(&self, kid: Option<&str>) -> Result<Arc<VerifyingKey>, AuthError> {
        if self.stale() {
            let _guard = self.refreshing.lock().await;
            if self.stale()
                && self.may_force_refresh()
                && let Err(e) = self.refresh_locked().await
            {
                tracing::warn!(error = %e, "JWKS refresh failed; keeping the keys we have");
            }
        }
        if let Some(k) = self.lookup(kid) {
            return Ok(k);
        }
        if self.may_force_refresh() {
            let _guard = self.refreshing.lock().await;
            // Another request may have refreshed while we waited.
            if let Some(k) = self.lookup(kid) {
                return Ok(k);
            }
            if self.may_force_refresh() {
                tracing::info!(kid = kid.unwrap_or("-"), "unknown key id: refreshing JWKS");
                if let Err(e) = self.refresh_locked().await {
                    tracing::warn!(error = %e, "JWKS refresh failed");
                }
            }
        }
        self.lookup(kid)
            .ok_or_else(|| AuthError::Invalid("token is signed by an unknown key".into()))
    }

    /// Verifies a token and derives the caller; a token verified before answers from
    /// memory while it is unexpired and its key unchanged.
    pub async fn verify(&self, token: &str) -> Result<Arc<Caller>, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid("token too long".into()));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(caller) = self.recall(&digest) {
            return Ok(caller);
        }
        let verified = self.check(token).await?;
        let caller = verified.caller.clone();
        self.remember(digest, verified);
        Ok(caller)
    }

    /// The caller of a token verified before, when it still holds.
    fn recall(&self, digest: &[u8; 32]) -> Option<Arc<Caller>> {
        // A key set due for a refresh takes the full path, which refreshes it.
        if self.stale() {
            return None;
        }
        let now = crate::clock::now_ms() / 1000;
        let verified = self.verified.lock().expect("lock");
        let v = verified.get(digest)?;
        let key = self.lookup(v.kid.as_deref())?;
        (now < v.exp && Arc::ptr_eq(&key, &v.key)).then(|| v.caller.clone())
    }

    fn remember(&self, digest: [u8; 32], v: Verified) {
        let now = crate::clock::now_ms() / 1000;
        if v.exp <= now {
            return;
        }
        let mut verified = self.verified.lock().expect("lock");
        if verified.len() >= MAX_VERIFIED {
            verified.retain(|_, v| v.exp > now);
            if verified.len() >= MAX_VERIFIED {
                verified.clear();
            }
        }
        verified.insert(digest, v);
    }

    /// Checks a token's signature and claims in full.
    async fn check(&self, token: &str) -> Result<Verified, AuthError> {
        let invalid = |m: &str| AuthError::Invalid(m.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed token"))?;
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
        ) {
            return Err(invalid(
                "token algorithm is not accepted (RS256, ES256, EdDSA)",
            ));
        }
        let key = self.key_for(header.kid.as_deref()).await?;
        if key.alg != header.alg {
            return Err(invalid("token algorithm does not match its key"));
        }
        let mut validation = Validation::new(key.alg);
        validation.leeway = self.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // Configured means required: a token that leaves `iss` or `aud` out is refused,
        // not waved through because there was nothing to compare.
        let mut required = vec!["exp", "sub"];
        if self.issuer.is_some() {
            required.push("iss");
        }
        if !self.audience.is_empty() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        match &self.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        if self.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audience);
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                AuthError::Invalid(
                    match e.kind() {
                        K::ExpiredSignature => "token has expired",
                        K::ImmatureSignature => "token is not valid yet",
                        K::InvalidIssuer => "token issuer is not accepted",
                        K::InvalidAudience => "token audience is not accepted",
                        K::InvalidSignature => "token signature is invalid",
                        K::MissingRequiredClaim(_) => "token lacks a required claim",
                        _ => "token is invalid",
                    }
                    .to_owned(),
                )
            })?;
        Ok(Verified {
            caller: Arc::new(self.caller(&data.claims)?),
            // Required and validated above; a non-integer `exp` is never remembered.
            exp: data.claims.get("exp").and_then(Value::as_u64).unwrap_or(0),
            kid: header.kid,
            key,
        })
    }

    fn caller(&self, claims: &Map<String, Value>) -> Result<Caller, AuthError> {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let sub = text("sub")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthError::Invalid("token has no subject".into()))?;
        let platform_admin = text(&self.platform_role_claim).as_deref() == Some("super_admin");
        let organization = match text(&self.org_claim).filter(|o| !o.is_empty()) {
            // Held to the same rule as API-key organizations: it prefixes stored keys.
            Some(o) => {
                super::apikey::validate_org(&o).map_err(|_| {
                    AuthError::Invalid("token names an organization id that is not valid".into())
                })?;
                o
            }
            None if platform_admin => String::new(),
            None => return Err(AuthError::Invalid("token names no organization".into())),
        };
        let mut capabilities = text(&self.role_claim)
            .and_then(|r| self.roles.get(&r).copied())
            .unwrap_or_default();
        if platform_admin {
            capabilities = capabilities.with(Capability::PlatformAdmin);
        }
        Ok(Caller::new(
            &organization,
            Principal::User(sub),
            capabilities,
        ))
    }
}

/// `https://user:pass@host/path?token=x` → `https://host/path`.
fn redact_url(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..cut];
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Reads the keys a JWKS offers for RS256, ES256 and EdDSA; other keys (HMAC secrets,
/// other curves, encryption keys) are skipped.
fn parse_jwks(text: &str) -> Result<KeySet, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no \"keys\" array")?;
    let mut set = KeySet {
        fetched_at: Some(Instant::now()),
        ..KeySet::default()
    };
    for raw in keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| !matches!(u, jsonwebtoken::jwk::PublicKeyUse::Signature))
        {
            continue;
        }
        let Some(alg) = algorithm_for(&jwk) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        let vk = Arc::new(VerifyingKey { alg, key });
        match jwk.common.key_id {
            Some(kid) => {
                set.by_kid.insert(kid, vk);
            }
            None => set.anonymous.push(vk),
        }
    }
    Ok(set)
}

/// The one algorithm a key may verify, from its type (and its `alg` when stated).
fn algorithm_for(jwk: &Jwk) -> Option<Algorithm> {
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(by_type),
        Some(KeyAlgorithm::RS256) if by_type == Algorithm::RS256 => Some(by_type),
        Some(KeyAlgorithm::ES256) if by_type == Algorithm::ES256 => Some(by_type),
        Some(KeyAlgorithm::EdDSA) if by_type == Algorithm::EdDSA => Some(by_type),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{JwtVerifier, redact_url, verified_expiry};
    use crate::config::AuthConfig;
    use base64::Engine as _;
    use std::sync::Arc;

    /// An Ed25519 key: its JWKS document (kid `k1`) and a token it signs for `sub`.
    struct Key(ed25519_dalek::SigningKey);

    impl Key {
        fn new() -> Key {
            Key(ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng))
        }

        fn jwks(&self) -> String {
            let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(self.0.verifying_key().to_bytes());
            serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "use": "sig", "x": x}]})
                .to_string()
        }

        fn token(&self, sub: &str, exp: u64) -> String {
            use ed25519_dalek::pkcs8::{EncodePrivateKey, spki::der::pem::LineEnding};
            let pem = self.0.to_pkcs8_pem(LineEnding::LF).unwrap();
            let key = jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()).unwrap();
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
            header.kid = Some("k1".into());
            let claims =
                serde_json::json!({"sub": sub, "org": "org_a", "role": "member", "exp": exp});
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        }
    }

    #[tokio::test]
    async fn a_verified_token_is_remembered_until_its_key_changes() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        let first = Key::new();
        std::fs::write(&jwks, first.jwks()).unwrap();
        let config = AuthConfig {
            jwks_url: Some(jwks.display().to_string()),
            ..AuthConfig::default()
        };
        let v = JwtVerifier::from_config(&config).unwrap().unwrap();
        v.refresh().await.unwrap();
        let exp = crate::clock::now_ms() / 1000 + 600;
        let token = first.token("user_1", exp);

        // Checked once, then answered from memory: the same caller.
        let a = v.verify(&token).await.unwrap();
        assert_eq!(a.organization.as_ref(), "org_a");
        let b = v.verify(&token).await.unwrap();
        assert!(
            Arc::ptr_eq(&a, &b),
            "the second request checked the token again"
        );

        // A refresh builds new keys: the token is checked again, and still holds.
        v.refresh().await.unwrap();
        let c = v.verify(&token).await.unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert!(Arc::ptr_eq(&c, &v.verify(&token).await.unwrap()));

        // A rotation to another key under the same kid: the remembered token is refused.
        std::fs::write(&jwks, Key::new().jwks()).unwrap();
        v.refresh().await.unwrap();
        let refused = v.verify(&token).await.unwrap_err();
        assert!(refused.to_string().contains("signature"), "{refused}");

        // An expired token is never answered from memory.
        std::fs::write(&jwks, first.jwks()).unwrap();
        v.refresh().await.unwrap();
        let expired = first.token("user_2", crate::clock::now_ms() / 1000 - 3_600);
        assert!(v.verify(&expired).await.is_err());
        assert!(v.verify(&expired).await.is_err());
    }

    #[test]
    fn the_expiry_of_a_verified_token_is_read_from_its_claims() {
        use base64::Engine as _;
        let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let token = format!(
            "{}.{}.sig",
            enc(r#"{"alg":"RS256"}"#),
            enc(r#"{"sub":"u","exp":1719662400}"#)
        );
        assert_eq!(verified_expiry(&token), Some(1_719_662_400));
        let no_exp = format!(
            "{}.{}.sig",
            enc(r#"{"alg":"RS256"}"#),
            enc(r#"{"sub":"u"}"#)
        );
        assert_eq!(verified_expiry(&no_exp), None);
        assert_eq!(verified_expiry("wa_notajwt"), None);
    }

    #[test]
    fn logged_jwks_urls_carry_no_credentials() {
        assert_eq!(
            redact_url("https://user:s3cret@auth.example/.well-known/jwks.json?key=abc#x"),
            "https://auth.example/.well-known/jwks.json"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:9/jwks"),
            "http://127.0.0.1:9/jwks"
        );
    }
}
