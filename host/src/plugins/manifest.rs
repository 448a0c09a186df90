//! A plugin's manifest, validated: a proper name and version, well-formed routes with
//! unique operation ids, `/admin/` routes only for platform admins, known event names.

use crate::auth::Capability;
use crate::hostapi::wit;
use crate::routing::{Method, RouteTemplate};
use std::sync::Arc;

/// One route a plugin serves.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    pub template: Arc<RouteTemplate>,
    pub capability: Capability,
    pub operation_id: String,
    pub summary: String,
    pub description: Option<String>,
    pub request_schema: Option<serde_json::Value>,
    pub response_schema: Option<serde_json::Value>,
    pub success_status: u16,
    pub query_params: Vec<(String, String, bool)>,
}

#[derive(Debug, Clone)]
pub struct PluginManifest {
    pub name: String,
    pub version: String,
    pub routes: Vec<RouteSpec>,
    pub events: Vec<String>,
}

fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_lowercase()
}

fn valid_version(s: &str) -> bool {
    let core = s.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && s.len() <= 64
}

fn valid_event(s: &str) -> bool {
    s == "*"
        || ((1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_'))
}

fn schema(raw: Option<String>, what: &str, op: &str) -> Result<Option<serde_json::Value>, String> {
    match raw {
        None => Ok(None),
        Some(s) => serde_json::from_str::<serde_json::Value>(&s)
            .map_err(|e| format!("{op}: {what} is not JSON: {e}"))
            .and_then(|v| {
                if v.is_object() || v.is_boolean() {
                    Ok(Some(v))
                } else {
                    Err(format!("{op}: {what} must be a JSON Schema object"))
                }
            }),
    }
}

/// The name of a parameter that follows a `sessions` segment but is not `session`: such a
/// route would reach a session without the gateway's tenancy check.
fn session_param_misnamed(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    segments.windows(2).find_map(|w| {
        let param = w[1]
            .split(':')
            .next()?
            .strip_prefix('{')?
            .strip_suffix('}')?;
        (w[0] == "sessions" && param != "session").then(|| param.to_owned())
    })
}

impl PluginManifest {
    /// Validates what a plugin's `describe` answered; the error says what is wrong.
    pub fn from_wit(m: wit::Manifest) -> Result<PluginManifest, String> {
        if !valid_name(&m.name) {
            return Err(format!(
                "plugin name '{}' must be 1-64 of [a-z0-9-], starting with a letter",
                m.name.chars().take(64).collect::<String>()
            ));
        }
        if !valid_version(&m.version) {
            return Err(format!("version '{}' is not semver", m.version));
        }
        let mut routes = Vec::with_capacity(m.routes.len());
        let mut ops = std::collections::HashSet::new();
        for r in m.routes {
            let op = r.operation_id.clone();
            if op.is_empty()
                || op.len() > 64
                || !op.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(format!("operation id '{op}' must be 1-64 of [A-Za-z0-9_]"));
            }
            if !ops.insert(op.clone()) {
                return Err(format!("operation id '{op}' is declared twice"));
            }
            let method = Method::parse(&r.method)
                .ok_or_else(|| format!("{op}: method '{}' is not routable", r.method))?;
            let template = RouteTemplate::parse(&r.path).map_err(|e| format!("{op}: {e}"))?;
            if let Some(other) = session_param_misnamed(&r.path) {
                return Err(format!(
                    "{op}: the segment after /sessions/ must be {{session}}, not {{{other}}} \
                     (the gateway checks that parameter belongs to the caller)"
                ));
            }
            let capability = crate::hostapi::convert::capability(r.capability);
            let admin_path = r.path == "/admin" || r.path.starts_with("/admin/");
            if admin_path != (capability == Capability::PlatformAdmin) {
                return Err(format!(
                    "{op}: routes under /admin/ and only those must require platform-admin"
                ));
            }
            let success_status = r.success_status.unwrap_or(200);
            if !(200..300).contains(&success_status) {
                return Err(format!("{op}: success status {success_status} is not 2xx"));
            }
            routes.push(RouteSpec {
                method,
                template: Arc::new(template),
                capability,
                request_schema: schema(r.request_schema, "request schema", &op)?,
                response_schema: schema(r.response_schema, "response schema", &op)?,
                operation_id: op,
                summary: r.summary,
                description: r.description,
                success_status,
                query_params: r
                    .query_params
                    .into_iter()
                    .map(|q| (q.name, q.description, q.required))
                    .collect(),
            });
        }
        for e in &m.events {
            if !valid_event(e) {
                return Err(format!("event name '{e}' is not valid"));
            }
        }
        Ok(PluginManifest {
            name: m.name,
            version: m.version,
            routes,
            events: m.events,
        })
    }

    pub fn subscribes_to(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == event)
    }
}

#[cfg(test)]
mod tests;
