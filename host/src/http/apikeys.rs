//! `/api/v1/api-keys`: people managing their organization list, mint and revoke its API
//! keys. Only person logins (JWTs) may do this — a leaked key must not be able to mint
//! more keys. The secret is in the creation answer only.

use super::Response;
use super::envelope::{empty_response, json_response};
use crate::app::App;
use crate::auth::{ApiKey, Caller, Capability, Principal};
use crate::plugins::HostRoute;
use gateway_sdk::{ApiError, Page, decode_cursor, encode_cursor, parse_limit};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyView<'a> {
    id: &'a str,
    name: &'a str,
    permissions: &'a [Capability],
    prefix: &'a str,
    created_at: u64,
    created_by: &'a str,
    last_used_at: Option<u64>,
}

impl<'a> From<&'a ApiKey> for KeyView<'a> {
    fn from(k: &'a ApiKey) -> Self {
        KeyView {
            id: &k.id,
            name: &k.name,
            permissions: &k.permissions,
            prefix: &k.prefix,
            created_at: k.created_at,
            created_by: &k.created_by,
            last_used_at: k.last_used_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    permissions: Vec<String>,
}

pub(super) fn handle(
    app: &App,
    route: HostRoute,
    caller: &Caller,
    params: &[(String, String)],
    query: &[(String, String)],
    body: &[u8],
) -> Result<Response, ApiError> {
    if !matches!(caller.principal, Principal::User(_)) {
        return Err(ApiError::forbidden(
            "API keys are managed by people signed in to the dashboard, not by API keys",
        ));
    }
    let keys = app.auth.api_keys();
    let org = caller.organization.as_str();
    match route {
        HostRoute::ListApiKeys => {
            let all = keys.list(Some(org));
            let q = |name: &str| {
                query
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            };
            Ok(json_response(200, &page(&all, q("limit"), q("cursor"))?))
        }
        HostRoute::CreateApiKey => {
            let req: CreateBody =
                serde_json::from_slice(if body.is_empty() { b"{}" } else { body })
                    .map_err(|e| ApiError::validation(format!("request body is not valid: {e}")))?;
            let mut perms = Vec::new();
            for p in &req.permissions {
                perms.push(Capability::parse(p).ok_or_else(|| {
                    ApiError::invalid_field(
                        "permissions",
                        format!("unknown permission '{p}' (read, send, manage)"),
                    )
                })?);
            }
            let created = keys
                .create(org, &req.name, &perms, &caller.created_by())
                .map_err(|e| match e {
                    crate::storage::StorageError::Invalid(m) => ApiError::validation(m),
                    other => {
                        tracing::error!(error = %other, "creating API key failed");
                        ApiError::internal("internal error")
                    }
                })?;
            #[derive(Serialize)]
            struct Created<'a> {
                #[serde(flatten)]
                view: KeyView<'a>,
                key: &'a str,
            }
            Ok(json_response(
                201,
                &Created {
                    view: KeyView::from(&created.key),
                    key: &created.secret,
                },
            ))
        }
        HostRoute::RevokeApiKey => {
            let id = params
                .iter()
                .find(|(k, _)| k == "id")
                .map(|(_, v)| v.as_str())
                .unwrap_or_default();
            match keys.revoke(id, Some(org)) {
                Ok(true) => Ok(empty_response(204)),
                Ok(false) => Err(ApiError::not_found("API key not found")),
                Err(e) => {
                    tracing::error!(error = %e, "revoking API key failed");
                    Err(ApiError::internal("internal error"))
                }
            }
        }
    }
}

/// One page of keys in id order (ids are ULIDs, so oldest first).
fn page<'a>(
    all: &'a [ApiKey],
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<Page<KeyView<'a>>, ApiError> {
    let limit = parse_limit(limit)? as usize;
    let after = cursor.map(decode_cursor).transpose()?;
    let start = match &after {
        Some(a) => all.partition_point(|k| k.id.as_bytes() <= a.as_slice()),
        None => 0,
    };
    let slice = &all[start..];
    let data: Vec<KeyView<'a>> = slice.iter().take(limit).map(KeyView::from).collect();
    let next_cursor = (slice.len() > limit).then(|| encode_cursor(slice[limit - 1].id.as_bytes()));
    Ok(Page { data, next_cursor })
}
