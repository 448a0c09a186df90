//! Standard Webhooks 1.0 signatures: `whsec_` secrets, and the `webhook-signature` header
//! (`v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, one entry per signing key
//! while a rotation overlaps).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub(super) fn generate_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of a secret, or why it cannot be one: `whsec_<base64>` is decoded, any
/// other 16-256 character string is used as its UTF-8 bytes.
pub(super) fn key_of(secret: &str) -> Result<Vec<u8>, String> {
    if let Some(b64) = secret.strip_prefix(PREFIX) {
        let key = STANDARD
            .decode(b64)
            .map_err(|_| "a whsec_ secret must be base64 after the prefix".to_owned())?;
        if !(16..=64).contains(&key.len()) {
            return Err("a whsec_ secret must hold 16 to 64 bytes".into());
        }
        return Ok(key);
    }
    let n = secret.chars().count();
    if !(16..=256).contains(&n) {
        return Err("secret must be whsec_<base64> or 16-256 characters".into());
    }
    Ok(secret.as_bytes().to_vec())
}

/// The `webhook-signature` value for `body` under each key (base64 key bytes).
pub(super) fn signature<'k>(
    keys: impl IntoIterator<Item = &'k str>,
    id: &str,
    timestamp: u64,
    body: &[u8],
) -> String {
    let mut out = Vec::new();
    for key in keys {
        let Ok(key) = STANDARD.decode(key) else {
            continue;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        out.push(format!(
            "v1,{}",
            STANDARD.encode(mac.finalize().into_bytes())
        ));
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        // From the Standard Webhooks reference libraries' tests.
        let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = signature(
            [STANDARD.encode(key).as_str()],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_generated_and_checked() {
        let s = generate_secret();
        assert_eq!(key_of(&s).unwrap().len(), 32);
        assert!(key_of("whsec_!!").is_err());
        assert!(key_of("short").is_err());
        assert_eq!(
            key_of("a-plain-secret-of-20").unwrap(),
            b"a-plain-secret-of-20"
        );
    }
}
