//! Finding the one credential in a request: `Authorization: Bearer …` or `x-api-key: …`.

use super::AuthError;
use http::HeaderMap;

/// The longest credential examined; anything longer is refused unread.
const MAX_CREDENTIAL_BYTES: usize = 8 * 1024;

/// Where the credential came from.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    Bearer(&'a str),
    ApiKeyHeader(&'a str),
}

impl<'a> Credential<'a> {
    /// Reads the credential; `Authorization` wins when both are sent.
    pub fn from_headers(headers: &'a HeaderMap) -> Result<Credential<'a>, AuthError> {
        if let Some(v) = headers.get(http::header::AUTHORIZATION) {
            let v = readable(v)?;
            let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AuthError::Invalid(
                    "Authorization must use the Bearer scheme".into(),
                ));
            }
            let token = rest.trim();
            if token.is_empty() {
                return Err(AuthError::Invalid("empty bearer token".into()));
            }
            return Ok(Credential::Bearer(token));
        }
        if let Some(v) = headers.get("x-api-key") {
            let token = readable(v)?.trim();
            if token.is_empty() {
                return Err(AuthError::Invalid("empty x-api-key".into()));
            }
            return Ok(Credential::ApiKeyHeader(token));
        }
        Err(AuthError::Missing)
    }

    pub fn token(&self) -> &'a str {
        match self {
            Credential::Bearer(t) | Credential::ApiKeyHeader(t) => t,
        }
    }
}

fn readable(v: &http::HeaderValue) -> Result<&str, AuthError> {
    if v.len() > MAX_CREDENTIAL_BYTES {
        return Err(AuthError::Invalid("credential too long".into()));
    }
    v.to_str()
        .map_err(|_| AuthError::Invalid("credential is not printable ASCII".into()))
}
