//! Authentication and authorization: who is calling (a person's JWT or an API key) and
//! what they may do. A plugin never sees a credential, only the resulting [`Caller`].

mod apikey;
mod caller;
mod credential;
pub mod jwt;

pub use apikey::{ApiKey, ApiKeyStore, NewApiKey};
pub use caller::{Caller, Capability, CapabilitySet, Permission, Principal};
pub use credential::Credential;

use std::sync::Arc;

/// Why a request was refused before it reached its handler.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("missing credential: send Authorization: Bearer <token> or x-api-key")]
    Missing,
    #[error("{0}")]
    Invalid(String),
    #[error("this route needs the '{0}' permission")]
    MissingCapability(Capability),
    #[error("this route is for platform operators")]
    NotPlatformAdmin,
}

/// Turns a credential into a caller: a JWT when it looks like one and a JWKS is
/// configured, else an API key.
pub struct Authenticator {
    keys: Arc<ApiKeyStore>,
    jwt: Option<Arc<jwt::JwtVerifier>>,
}

impl Authenticator {
    pub fn new(keys: Arc<ApiKeyStore>, jwt: Option<Arc<jwt::JwtVerifier>>) -> Self {
        Authenticator { keys, jwt }
    }

    pub fn api_keys(&self) -> &Arc<ApiKeyStore> {
        &self.keys
    }

    pub async fn authenticate(&self, credential: Credential<'_>) -> Result<Arc<Caller>, AuthError> {
        let token = credential.token();
        if token.starts_with(apikey::KEY_PREFIX) {
            return self.keys.verify(token);
        }
        if let Credential::ApiKeyHeader(_) = credential {
            return Err(AuthError::Invalid(
                "x-api-key must carry an API key (wa_…)".into(),
            ));
        }
        match &self.jwt {
            Some(v) if jwt::looks_like_jwt(token) => v.verify(token).await,
            Some(_) => Err(AuthError::Invalid(
                "bearer token is neither a JWT nor an API key".into(),
            )),
            None => Err(AuthError::Invalid("unknown API key".into())),
        }
    }
}
