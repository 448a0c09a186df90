//! A stand-in for the dashboard: real RSA, P-256 and Ed25519 keys, a JWKS served over
//! loopback HTTP (swappable, counting fetches), and tokens signed with those keys.

#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub const ISSUER: &str = "https://dashboard.test";
pub const AUDIENCE: &str = "wa-gateway";

/// A signing key and its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// The public key as PEM (for the HMAC-confusion attack).
    pub public_pem: String,
}

pub fn rsa_key(kid: &str) -> SigningKey {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
    let public = private.to_public_key();
    let pem = private.to_pkcs1_pem(LineEnding::LF).unwrap();
    SigningKey {
        kid: kid.into(),
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                    "n": B64.encode(public.n().to_bytes_be()), "e": B64.encode(public.e().to_bytes_be())}),
        public_pem: public.to_public_key_pem(LineEnding::LF).unwrap(),
    }
}

pub fn ec_key(kid: &str) -> SigningKey {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let point = secret.public_key().to_encoded_point(false);
    let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
    SigningKey {
        kid: kid.into(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                    "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap())}),
        public_pem: secret
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    }
}

pub fn ed_key(kid: &str) -> SigningKey {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};
    let signing = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let pem = signing.to_pkcs8_pem(LineEnding::LF).unwrap();
    SigningKey {
        kid: kid.into(),
        alg: Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig",
                    "x": B64.encode(signing.verifying_key().to_bytes())}),
        public_pem: signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    }
}

/// A JWKS over loopback HTTP whose document can be swapped and whose fetches are counted.
pub struct JwksServer {
    pub url: String,
    doc: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl JwksServer {
    pub fn start(keys: &[&SigningKey]) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let doc = Arc::new(Mutex::new(String::new()));
        let hits = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (d, h, off) = (doc.clone(), hits.clone(), down.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                // Read the request head.
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                if off.load(Ordering::SeqCst) {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    continue;
                }
                let body = d.lock().unwrap().clone();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                    body.len(),
                    body
                );
            }
        });
        let s = JwksServer {
            url,
            doc,
            hits,
            down,
        };
        s.publish(keys);
        s
    }

    /// Replaces the served key set.
    pub fn publish(&self, keys: &[&SigningKey]) {
        let set = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
        *self.doc.lock().unwrap() = set.to_string();
    }

    /// Makes the JWKS answer 503 (an outage) or serve again.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The `[auth]` section pointing a gateway at this JWKS.
    pub fn auth_toml(&self, ttl_secs: u64, min_refresh_secs: u64) -> String {
        format!(
            "[auth]\njwks_url = {:?}\nissuer = {ISSUER:?}\naudience = [{AUDIENCE:?}]\nleeway_secs = 30\njwks_ttl_secs = {ttl_secs}\njwks_min_refresh_secs = {min_refresh_secs}\n",
            self.url
        )
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Standard claims for a person of `org` with `role`, valid for an hour.
pub fn claims(org: &str, role: &str) -> Value {
    json!({
        "sub": format!("user_{role}_{org}"),
        "org": org,
        "role": role,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now(),
        "nbf": now() - 5,
        "exp": now() + 3600,
    })
}

/// A platform operator's login: `super_admin`, no organization, valid for an hour.
pub fn super_admin(key: &SigningKey, sub: &str) -> String {
    let mut c = claims("", "member");
    c.as_object_mut().unwrap().remove("org");
    c["sub"] = json!(sub);
    c["platform_role"] = json!("super_admin");
    sign(key, &c)
}

pub fn sign(key: &SigningKey, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

/// A token with a hand-written header and signature (for attacks).
pub fn forge(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string()),
        B64.encode(signature)
    )
}

/// HS256 over `header.payload` with `secret`.
pub fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let signing_input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        B64.encode(mac.finalize().into_bytes())
    )
}
