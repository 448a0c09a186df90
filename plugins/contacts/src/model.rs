//! What the contact store keeps, and the JSON shapes of API.md §3.

use gateway_sdk::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One person as seen by one session. `id` is stable; `lid` and the phone JID are the
/// WhatsApp addresses known for them (a person may be known by one before the other).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Identity {
    pub(crate) id: u64,
    pub(crate) lid: Option<String>,
    pub(crate) phone_jid: Option<String>,
    pub(crate) phone_number: Option<String>,
    /// The name in the account's address book (contact or history sync).
    pub(crate) name: Option<String>,
    /// The name the person chose for themselves.
    pub(crate) push_name: Option<String>,
    pub(crate) business_name: Option<String>,
    pub(crate) first_seen_at: u64,
    /// When an address or name last changed.
    pub(crate) updated_at: u64,
    /// Whether the session has a direct chat with them.
    #[serde(default)]
    pub(crate) dm: bool,
    /// Every group the session has seen them in, by group JID. Kept in the identity's own
    /// record so one read answers getContact.
    #[serde(default)]
    pub(crate) groups: BTreeMap<String, Membership>,
}

impl Identity {
    /// The name to show: the address book's, else their own.
    pub(crate) fn display_name(&self) -> Option<&str> {
        self.name.as_deref().or(self.push_name.as_deref())
    }

    /// The getContact answer.
    pub(crate) fn contact(&self) -> ContactView<'_> {
        ContactView {
            identity: self.view(),
            dm: self.dm,
            groups: self
                .groups
                .iter()
                .map(|(jid, m)| GroupView {
                    jid,
                    name: m.name.as_deref(),
                    role: &m.role,
                    tag: m.tag.as_deref(),
                    last_seen: m.last_seen,
                })
                .collect(),
        }
    }

    pub(crate) fn view(&self) -> IdentityView<'_> {
        IdentityView {
            id: self.id,
            lid: self.lid.as_deref(),
            name: self.display_name(),
            business_name: self.business_name.as_deref(),
            phone_jid: self.phone_jid.as_deref(),
            phone_number: self.phone_number.as_deref(),
            first_seen_at: self.first_seen_at,
            updated_at: self.updated_at,
        }
    }

    /// `q`: case-insensitive substring of any name or of the number.
    pub(crate) fn matches(&self, q: &str) -> bool {
        let q = q.trim().to_lowercase();
        let by_name = [&self.name, &self.push_name, &self.business_name]
            .into_iter()
            .flatten()
            .any(|n| n.to_lowercase().contains(&q));
        // A number may be typed with a leading '+' and spaces or dashes.
        let number: String = q
            .trim_start_matches('+')
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        let by_number = !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
            && self
                .phone_number
                .as_deref()
                .is_some_and(|p| p.contains(&number));
        by_name || by_number
    }
}

/// The identity object of the API: one person as seen by one session.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IdentityView<'a> {
    /// Stable per person and session.
    pub(crate) id: u64,
    pub(crate) lid: Option<&'a str>,
    pub(crate) name: Option<&'a str>,
    pub(crate) business_name: Option<&'a str>,
    pub(crate) phone_jid: Option<&'a str>,
    pub(crate) phone_number: Option<&'a str>,
    /// Epoch ms.
    pub(crate) first_seen_at: u64,
    /// Epoch ms of the last change to an address or name.
    pub(crate) updated_at: u64,
}

/// A group the session knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Group {
    pub(crate) jid: String,
    pub(crate) name: Option<String>,
}

/// A person's place in a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Membership {
    /// The group's name (subject), copied here and kept in step on renames.
    pub(crate) name: Option<String>,
    /// `member` | `admin` | `superadmin`.
    pub(crate) role: String,
    /// Their nickname in the group.
    pub(crate) tag: Option<String>,
    pub(crate) last_seen: u64,
}

/// The getContact answer: everything stored about one person.
#[derive(Serialize, JsonSchema)]
pub(crate) struct ContactView<'a> {
    pub(crate) identity: IdentityView<'a>,
    /// Whether the session has a direct chat with them.
    pub(crate) dm: bool,
    /// Every group the session has seen them in.
    pub(crate) groups: Vec<GroupView<'a>>,
}

/// A person's place in one group.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroupView<'a> {
    pub(crate) jid: &'a str,
    /// The group's subject.
    pub(crate) name: Option<&'a str>,
    #[schemars(extend("enum" = ["member", "admin", "superadmin"]))]
    pub(crate) role: &'a str,
    /// Their nickname in the group.
    pub(crate) tag: Option<&'a str>,
    /// Epoch ms.
    pub(crate) last_seen: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity {
            id: 1,
            lid: Some("1@lid".into()),
            phone_jid: Some("6281234567890@s.whatsapp.net".into()),
            phone_number: Some("6281234567890".into()),
            name: None,
            push_name: Some("Alice W".into()),
            business_name: Some("Acme Corp".into()),
            first_seen_at: 0,
            updated_at: 0,
            dm: false,
            groups: BTreeMap::new(),
        }
    }

    #[test]
    fn search_names_and_numbers() {
        let a = alice();
        assert!(a.matches("alice"));
        assert!(a.matches("ACME"));
        assert!(a.matches("12345"));
        assert!(a.matches("+62812"));
        assert!(!a.matches("bob"));
        assert!(!a.matches("999"));
        assert_eq!(a.display_name(), Some("Alice W"));
    }
}
