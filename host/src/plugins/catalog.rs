//! The catalog: one immutable, consistent set of loaded plugins and the routing table
//! built from their manifests and the gateway's built-in routes. A request takes the
//! current catalog once and finishes on it; the [`super::PluginRegistry`] assembles a new
//! one on reload — refusing plugins whose routes conflict — and swaps it in.

use super::instance::LoadedPlugin;
use super::manifest::{PluginManifest, RouteSpec};
use crate::auth::Capability;
use crate::routing::{Method, RouteConflict, RouteTable, RouteTableBuilder};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Routes the gateway serves itself under `/api/v1` (they carry credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinRoute {
    ListApiKeys,
    CreateApiKey,
    RevokeApiKey,
    /// Media bytes streamed to disk, never through a plugin.
    UploadMedia,
    /// Trades a credential for a realtime stream ticket.
    CreateRealtimeTicket,
    /// The realtime WebSocket: authenticated by its ticket, not by a credential.
    RealtimeStream,
    /// A platform admin's ticket for a stream of any (or every) organization.
    CreateAdminRealtimeTicket,
}

impl BuiltinRoute {
    const ALL: [(BuiltinRoute, Method, &'static str); 7] = [
        (BuiltinRoute::ListApiKeys, Method::Get, "/api-keys"),
        (BuiltinRoute::CreateApiKey, Method::Post, "/api-keys"),
        (BuiltinRoute::RevokeApiKey, Method::Delete, "/api-keys/{id}"),
        (
            BuiltinRoute::UploadMedia,
            Method::Post,
            "/sessions/{session}/media",
        ),
        (
            BuiltinRoute::CreateRealtimeTicket,
            Method::Post,
            "/realtime/ticket",
        ),
        (BuiltinRoute::RealtimeStream, Method::Get, "/realtime"),
        (
            BuiltinRoute::CreateAdminRealtimeTicket,
            Method::Post,
            "/admin/realtime/ticket",
        ),
    ];

    /// The capability the caller needs; for the stream, the one its ticket was minted with.
    pub fn capability(self) -> Capability {
        match self {
            BuiltinRoute::UploadMedia => Capability::Send,
            BuiltinRoute::CreateRealtimeTicket | BuiltinRoute::RealtimeStream => Capability::Read,
            BuiltinRoute::CreateAdminRealtimeTicket => Capability::PlatformAdmin,
            _ => Capability::Manage,
        }
    }

    /// Whether the route authenticates the request itself instead of by a credential.
    pub fn own_authentication(self) -> bool {
        matches!(self, BuiltinRoute::RealtimeStream)
    }

    pub fn operation_id(self) -> &'static str {
        match self {
            BuiltinRoute::ListApiKeys => "listApiKeys",
            BuiltinRoute::CreateApiKey => "createApiKey",
            BuiltinRoute::RevokeApiKey => "revokeApiKey",
            BuiltinRoute::UploadMedia => "uploadMedia",
            BuiltinRoute::CreateRealtimeTicket => "createRealtimeTicket",
            BuiltinRoute::RealtimeStream => "realtimeStream",
            BuiltinRoute::CreateAdminRealtimeTicket => "adminEventsTicket",
        }
    }

    pub fn all() -> impl Iterator<Item = (BuiltinRoute, Method, &'static str)> {
        Self::ALL.into_iter()
    }
}

/// What the catalog needs of a loaded plugin: its name and validated manifest. Loaded
/// components implement it; unit tests use plain manifests.
pub trait Routable: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn manifest(&self) -> &PluginManifest;
}

impl Routable for LoadedPlugin {
    fn name(&self) -> &str {
        LoadedPlugin::name(self)
    }

    fn manifest(&self) -> &PluginManifest {
        &self.manifest
    }
}

/// What a route leads to.
#[derive(Debug)]
pub enum RouteTarget<P = LoadedPlugin> {
    Builtin(BuiltinRoute),
    Plugin { plugin: Arc<P>, route: usize },
}

impl<P> Clone for RouteTarget<P> {
    fn clone(&self) -> Self {
        match self {
            RouteTarget::Builtin(b) => RouteTarget::Builtin(*b),
            RouteTarget::Plugin { plugin, route } => RouteTarget::Plugin {
                plugin: plugin.clone(),
                route: *route,
            },
        }
    }
}

impl<P: Routable> RouteTarget<P> {
    pub fn capability(&self) -> Capability {
        match self {
            RouteTarget::Builtin(b) => b.capability(),
            RouteTarget::Plugin { .. } => self.spec().expect("plugin route").capability,
        }
    }

    /// The plugin's declaration of the route.
    pub fn spec(&self) -> Option<&RouteSpec> {
        match self {
            RouteTarget::Builtin(_) => None,
            RouteTarget::Plugin { plugin, route } => Some(&plugin.manifest().routes[*route]),
        }
    }

    pub fn operation_id(&self) -> &str {
        match self {
            RouteTarget::Builtin(b) => b.operation_id(),
            RouteTarget::Plugin { .. } => &self.spec().expect("plugin route").operation_id,
        }
    }

    /// `host` or the plugin's name, for logs and metrics.
    pub fn owner(&self) -> &str {
        match self {
            RouteTarget::Builtin(_) => HOST_OWNER,
            RouteTarget::Plugin { plugin, .. } => plugin.name(),
        }
    }
}

impl RouteTarget<LoadedPlugin> {
    /// [`RouteTarget::owner`], shared (for labels kept per request).
    pub fn shared_owner(&self) -> Arc<str> {
        match self {
            RouteTarget::Builtin(_) => Arc::from(HOST_OWNER),
            RouteTarget::Plugin { plugin, .. } => plugin.shared_name(),
        }
    }
}

/// The owner of the host's built-in routes, in metrics and logs.
pub const HOST_OWNER: &str = "host";

/// One consistent set of plugins and their routes.
pub struct Catalog<P = LoadedPlugin> {
    pub plugins: BTreeMap<String, Arc<P>>,
    pub routes: RouteTable<RouteTarget<P>>,
    /// Bumped on every swap.
    pub generation: u64,
}

/// A plugin left out of a new catalog, and why.
pub type Refusal = (String, String);

impl<P: Routable> Catalog<P> {
    fn build(plugins: BTreeMap<String, Arc<P>>, generation: u64) -> Result<Self, RouteConflict> {
        let mut b = RouteTableBuilder::default();
        for (h, method, path) in BuiltinRoute::all() {
            b.add(method, path, RouteTarget::Builtin(h), "the host")?;
        }
        for p in plugins.values() {
            for (i, r) in p.manifest().routes.iter().enumerate() {
                b.add(
                    r.method,
                    r.template.as_str(),
                    RouteTarget::Plugin {
                        plugin: p.clone(),
                        route: i,
                    },
                    p.name(),
                )?;
            }
        }
        Ok(Catalog {
            routes: b.build()?,
            plugins,
            generation,
        })
    }

    /// The built-in routes alone.
    pub fn empty() -> Self {
        Catalog::build(BTreeMap::new(), 0).expect("built-in routes do not conflict")
    }

    /// The catalog for `candidates`. While two plugins' routes conflict, the one that
    /// `changed` in this reload (else the later in the conflict) is refused and its
    /// `previous` version, if any, restored; the refusals are returned. Fails only when a
    /// conflict involves no plugin at all (the built-in routes).
    pub fn assemble(
        mut candidates: BTreeMap<String, Arc<P>>,
        changed: &mut BTreeSet<String>,
        previous: &BTreeMap<String, Arc<P>>,
        generation: u64,
    ) -> Result<(Self, Vec<Refusal>), RouteConflict> {
        let mut refused = Vec::new();
        loop {
            match Catalog::build(candidates.clone(), generation) {
                Ok(c) => return Ok((c, refused)),
                Err(conflict) => {
                    let owners = conflict_owners(&conflict);
                    let culprit = owners
                        .iter()
                        .rev()
                        .find(|o| changed.contains(*o))
                        .or_else(|| owners.iter().rev().find(|o| candidates.contains_key(*o)))
                        .cloned()
                        .ok_or_else(|| conflict.clone())?;
                    refused.push((culprit.clone(), conflict.to_string()));
                    // The restored previous version is not new: it cannot be the culprit
                    // of a later conflict unless nothing else is.
                    let was_new = changed.remove(&culprit);
                    candidates.remove(&culprit);
                    if was_new && let Some(p) = previous.get(&culprit) {
                        candidates.insert(culprit, p.clone());
                    }
                }
            }
        }
    }

    /// Plugins subscribed to an event name.
    pub fn subscribers(&self, event: &str) -> impl Iterator<Item = &Arc<P>> {
        self.plugins
            .values()
            .filter(move |p| p.manifest().subscribes_to(event))
    }
}

fn conflict_owners(c: &RouteConflict) -> Vec<String> {
    match c {
        RouteConflict::Duplicate { first, second, .. } => vec![first.clone(), second.clone()],
        RouteConflict::Ambiguous { owner, other, .. } => {
            let mut v: Vec<String> = other.split(", ").map(str::to_owned).collect();
            v.push(owner.clone());
            v
        }
        RouteConflict::Template { owner, .. } => vec![owner.clone()],
    }
}

#[cfg(test)]
mod tests;
