//! The authenticated caller and the capabilities a route can demand.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A permission (API.md §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Read,
    Send,
    Manage,
    /// `super_admin` persons only; never held by API keys or org roles.
    PlatformAdmin,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Read => "read",
            Capability::Send => "send",
            Capability::Manage => "manage",
            Capability::PlatformAdmin => "platform_admin",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A permission an organization role or an API key can hold: the capabilities without
/// the platform's own. Parsed once wherever it enters (configuration, REST bodies, the
/// CLI); an unknown name is refused with the list of known ones.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    Read,
    Send,
    Manage,
}

impl From<Permission> for Capability {
    fn from(p: Permission) -> Capability {
        match p {
            Permission::Read => Capability::Read,
            Permission::Send => Capability::Send,
            Permission::Manage => Capability::Manage,
        }
    }
}

/// A small set of capabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapabilitySet(u8);

impl CapabilitySet {
    fn bit(c: Capability) -> u8 {
        1 << (c as u8)
    }

    pub fn with(mut self, c: Capability) -> Self {
        self.0 |= Self::bit(c);
        self
    }

    pub fn contains(self, c: Capability) -> bool {
        self.0 & Self::bit(c) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Capability> {
        [
            Capability::Read,
            Capability::Send,
            Capability::Manage,
            Capability::PlatformAdmin,
        ]
        .into_iter()
        .filter(move |c| self.contains(*c))
    }
}

impl FromIterator<Capability> for CapabilitySet {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        iter.into_iter().fold(CapabilitySet::default(), Self::with)
    }
}

impl<'a> FromIterator<&'a Permission> for CapabilitySet {
    fn from_iter<I: IntoIterator<Item = &'a Permission>>(iter: I) -> Self {
        iter.into_iter().map(|p| Capability::from(*p)).collect()
    }
}

/// Who authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A person, by the JWT `sub`.
    User(String),
    /// An API key, by its id.
    ApiKey(String),
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(sub) => write!(f, "user:{sub}"),
            Principal::ApiKey(id) => write!(f, "apikey:{id}"),
        }
    }
}

/// An authenticated caller: their organization, identity and capabilities. Built once per
/// credential and shared: the texts every call needs are rendered here, not per request.
#[derive(Debug)]
pub struct Caller {
    pub organization: Arc<str>,
    pub principal: Principal,
    pub capabilities: CapabilitySet,
    /// `principal` as text: `user:<sub>` or `apikey:<id>`.
    principal_text: Arc<str>,
    /// The `createdByUserId` form: the JWT `sub`, or `apikey:<id>`.
    created_by: Arc<str>,
}

impl Caller {
    pub fn new(organization: &str, principal: Principal, capabilities: CapabilitySet) -> Caller {
        let principal_text: Arc<str> = Arc::from(principal.to_string());
        let created_by = match &principal {
            Principal::User(sub) => Arc::from(sub.as_str()),
            Principal::ApiKey(_) => principal_text.clone(),
        };
        Caller {
            organization: Arc::from(organization),
            principal,
            capabilities,
            principal_text,
            created_by,
        }
    }

    /// `user:<sub>` or `apikey:<id>`.
    pub fn principal_text(&self) -> &Arc<str> {
        &self.principal_text
    }

    /// The `createdByUserId` form: the JWT `sub`, or `apikey:<id>`.
    pub fn created_by(&self) -> &Arc<str> {
        &self.created_by
    }
}
