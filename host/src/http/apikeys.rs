//! `/api/v1/api-keys`: people managing their organization list, mint and revoke its API
//! keys. Only person logins (JWTs) may do this — a leaked key must not be able to mint
//! more keys. The secret is in the creation answer only.

use super::Response;
use super::envelope::{empty_response, json_response};
use crate::auth::{ApiKey, ApiKeyStore, Caller, Capability, Permission, Principal};
use crate::plugins::BuiltinRoute;
use gateway_sdk::{ApiError, PageRequest, page_sorted};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyView<'a> {
    id: &'a str,
    name: &'a str,
    permissions: &'a [Permission],
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
    permissions: Vec<Permission>,
}

pub(super) fn handle(
    keys: &ApiKeyStore,
    route: BuiltinRoute,
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
    let org = &*caller.organization;
    match route {
        BuiltinRoute::ListApiKeys => {
            let all = keys.list(Some(org));
            let q = |name: &str| {
                query
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            };
            let page = PageRequest::parse(q("limit"), q("cursor"))?;
            let page = page_sorted(&all, |k| k.id.as_bytes(), &page).map(KeyView::from);
            Ok(json_response(200, &page))
        }
        BuiltinRoute::CreateApiKey => {
            let req: CreateBody =
                serde_json::from_slice(if body.is_empty() { b"{}" } else { body })
                    .map_err(|e| ApiError::validation(format!("request body is not valid: {e}")))?;
            // Nobody hands out a permission they do not hold themselves.
            if let Some(p) = req
                .permissions
                .iter()
                .find(|p| !caller.capabilities.contains(Capability::from(**p)))
            {
                return Err(ApiError::forbidden(format!(
                    "you cannot grant '{}': your role does not hold it",
                    Capability::from(*p)
                ))
                .with_detail("field", "permissions"));
            }
            let created = keys.create(org, &req.name, &req.permissions, caller.created_by())?;
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
        BuiltinRoute::UploadMedia
        | BuiltinRoute::CreateRealtimeTicket
        | BuiltinRoute::CreateAdminRealtimeTicket
        | BuiltinRoute::RealtimeStream => Err(ApiError::internal("not an API-key route")),
        BuiltinRoute::RevokeApiKey => {
            let id = params
                .iter()
                .find(|(k, _)| k == "id")
                .map(|(_, v)| v.as_str())
                .unwrap_or_default();
            if keys.revoke(id, Some(org))? {
                Ok(empty_response(204))
            } else {
                Err(ApiError::not_found("API key not found"))
            }
        }
    }
}
