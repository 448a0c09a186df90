//! The `admin` plugin: the platform-admin operations of API.md §8 — every organization's
//! sessions, a session's send rates and admin flag, and backfills that heal every
//! plugin's store. Routes live under `/admin/`, so only `super_admin` logins reach them;
//! the host resolves `{session}` in any organization and scopes the call to it.

#[cfg(test)]
mod tests;

use gateway_sdk::platform_admin::{self, BackfillJob, BackfillScope, SessionLimits};
use gateway_sdk::sessions::{self, SessionView};
use gateway_sdk::{
    ApiError, Capability, IntoResponse, Json, JsonSchema, Manifest, Page, Plugin, Request,
    Response, Route, page_sorted,
};
use serde::{Deserialize, Serialize};

/// The statuses a session may have (the `status` filter).
const STATUSES: [&str; 5] = ["stopped", "starting", "scan_qr_code", "working", "failed"];

/// The body of adminUpdateSession: every field optional.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateSession {
    /// Sends per minute.
    #[schemars(range(min = 1, max = 1000))]
    rate_per_min: Option<i64>,
    /// Sends per hour.
    #[schemars(range(min = 1, max = 60000))]
    rate_per_hour: Option<i64>,
    is_admin_session: Option<bool>,
}

/// The body of adminStartSessionBackfill.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StartBackfill {
    /// What to re-read; all three when absent.
    #[schemars(extend("items" = {"enum": ["contacts", "groups", "chats"]}))]
    scope: Option<Vec<String>>,
}

/// One backfill of a session (API.md §8 BackfillJob).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct BackfillJobView {
    id: String,
    session_id: String,
    organization_id: String,
    #[schemars(extend("enum" = ["running", "succeeded", "failed"]))]
    status: String,
    #[schemars(extend("items" = {"enum": ["contacts", "groups", "chats"]}))]
    scope: Vec<String>,
    contacts: u32,
    groups: u32,
    group_members: u32,
    chats: u32,
    /// Epoch ms.
    started_at: u64,
    finished_at: Option<u64>,
    error: Option<String>,
    /// The principal that started it.
    requested_by: String,
}

impl From<BackfillJob> for BackfillJobView {
    fn from(j: BackfillJob) -> Self {
        BackfillJobView {
            id: j.id,
            session_id: j.session_id,
            organization_id: j.organization_id,
            status: j.status,
            scope: j.scope.iter().map(|s| s.as_str().to_owned()).collect(),
            contacts: j.contacts,
            groups: j.groups,
            group_members: j.group_members,
            chats: j.chats,
            started_at: j.started_at,
            finished_at: j.finished_at,
            error: j.error,
            requested_by: j.requested_by,
        }
    }
}

/// A query filter's value, when given and not empty.
fn filter<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.query(name).filter(|v| !v.is_empty())
}

fn admin_list_sessions(req: &Request) -> Result<Json<Page<SessionView>>, ApiError> {
    let page = req.page()?;
    let status = filter(req, "status");
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        return Err(ApiError::invalid_field(
            "status",
            format!("status must be one of {}", STATUSES.join(", ")),
        ));
    }
    let organization = filter(req, "organization");
    let gateway = filter(req, "gatewayId");
    let mut all: Vec<_> = sessions::list_all()?
        .into_iter()
        .filter(|s| organization.is_none_or(|o| s.organization_id == o))
        .filter(|s| status.is_none_or(|st| s.status == st))
        .filter(|s| gateway.is_none_or(|g| s.gateway_id == g))
        .collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let p = page_sorted(&all, |s| s.id.as_bytes(), &page);
    Ok(Json(p.map(|s| SessionView::from(s.clone()))))
}

fn admin_get_session(req: &Request) -> Result<Json<SessionView>, ApiError> {
    Ok(Json(sessions::get(req.session_id()?)?.into()))
}

/// A rate from the body, checked against its range (the host checks again).
fn rate(field: &str, value: Option<i64>, max: u32) -> Result<Option<u32>, ApiError> {
    value
        .map(|v| {
            u32::try_from(v)
                .ok()
                .filter(|v| (1..=max).contains(v))
                .ok_or_else(|| ApiError::invalid_field(field, format!("{field} must be 1-{max}")))
        })
        .transpose()
}

fn admin_update_session(req: &Request) -> Result<Json<SessionView>, ApiError> {
    let b: UpdateSession = req.json()?;
    let limits = SessionLimits {
        rate_per_min: rate("ratePerMin", b.rate_per_min, 1_000)?,
        rate_per_hour: rate("ratePerHour", b.rate_per_hour, 60_000)?,
        is_admin_session: b.is_admin_session,
    };
    Ok(Json(
        platform_admin::update_session(req.session_id()?, limits)?.into(),
    ))
}

fn admin_start_backfill(req: &Request) -> Result<Response, ApiError> {
    let b: StartBackfill = req.json()?;
    let scope = match b.scope {
        None => Vec::new(),
        Some(names) if names.is_empty() => {
            return Err(ApiError::invalid_field(
                "scope",
                "scope must name at least one of contacts, groups, chats",
            ));
        }
        Some(names) => names
            .iter()
            .map(|n| {
                BackfillScope::parse(n).ok_or_else(|| {
                    ApiError::invalid_field(
                        "scope",
                        format!("scope '{n}' is not one of contacts, groups, chats"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let job = platform_admin::start_backfill(req.session_id()?, &scope)?;
    Ok(Json(BackfillJobView::from(job)).into_response(202))
}

fn admin_backfill_status(req: &Request) -> Result<Json<BackfillJobView>, ApiError> {
    platform_admin::backfill_status(req.session_id()?)?
        .map(|j| Json(j.into()))
        .ok_or_else(|| ApiError::not_found("no backfill on record for this session"))
}

/// An admin route: every one needs the platform-admin capability.
fn op(method: fn(&str, Capability, &str) -> Route, path: &str, id: &str, summary: &str) -> Route {
    method(path, Capability::PlatformAdmin, id).summary(summary)
}

struct Admin;

impl Plugin for Admin {
    fn manifest() -> Manifest {
        let one = "/admin/sessions/{session}";
        Manifest::new("admin", env!("CARGO_PKG_VERSION"))
            .route(
                op(
                    Route::get,
                    "/admin/sessions",
                    "adminListSessions",
                    "Every organization's sessions (super_admin only)",
                )
                .query("organization", "Only this organization's sessions", false)
                .query(
                    "status",
                    "Only sessions with this status (stopped, starting, scan_qr_code, working, failed)",
                    false,
                )
                .query("gatewayId", "Only sessions held by this gateway node", false)
                .paged()
                .response::<Page<SessionView>>(),
                admin_list_sessions,
            )
            .route(
                op(Route::get, one, "adminGetSession", "Any organization's session")
                    .response::<SessionView>(),
                admin_get_session,
            )
            .route(
                op(
                    Route::patch,
                    one,
                    "adminUpdateSession",
                    "Change a session's send rates or admin flag",
                )
                .request::<UpdateSession>()
                .response::<SessionView>(),
                admin_update_session,
            )
            .route(
                op(
                    Route::post,
                    "/admin/sessions/{session}:backfill",
                    "adminStartSessionBackfill",
                    "Re-read a session's contacts, groups and chats in the background",
                )
                .request::<StartBackfill>()
                .response::<BackfillJobView>()
                .status(202),
                admin_start_backfill,
            )
            .route(
                op(
                    Route::get,
                    "/admin/sessions/{session}/backfill",
                    "adminSessionBackfillStatus",
                    "The running backfill, else the last one",
                )
                .response::<BackfillJobView>(),
                admin_backfill_status,
            )
    }
}

gateway_sdk::export!(Admin);
