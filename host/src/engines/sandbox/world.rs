//! The sandbox's simulated world, read from a JSON file (see `examples/sandbox-world.json`):
//! contacts with LIDs, phone numbers, names, pictures and about texts; groups with
//! full metadata (description, settings, owner, creation time, invite code, picture,
//! pending join requests), participants with roles and nicknames, and the account's own
//! role; groups the account is not in but may join by invite; direct chats; a starting
//! block list.

use gateway_sdk::Jid;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct World {
    #[serde(default)]
    pub contacts: Vec<WorldContact>,
    #[serde(default)]
    pub groups: Vec<WorldGroup>,
    /// Groups the account is not in (whatever `me` says), reachable by their invite code.
    #[serde(default)]
    pub other_groups: Vec<WorldGroup>,
    /// LIDs or phone JIDs blocked when a session first pairs.
    #[serde(default)]
    pub blocked: Vec<String>,
    /// The account name every sandbox session pairs as, unless the scan names one.
    #[serde(default)]
    pub push_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorldContact {
    pub lid: String,
    /// Digits with country code; absent for people known only by LID.
    pub phone: Option<String>,
    /// The name in the address book.
    pub name: Option<String>,
    /// The name they chose for themselves.
    pub push_name: Option<String>,
    pub business_name: Option<String>,
    #[serde(default)]
    pub about: String,
    pub picture: Option<WorldPicture>,
    /// A picture exists but privacy hides it from this account.
    #[serde(default)]
    pub picture_hidden: bool,
    /// Whether the session has a direct chat with them.
    #[serde(default)]
    pub dm: bool,
    /// They answer every text the session sends them with this (`{text}` is replaced by
    /// what they got), so a client sees a conversation without a phone.
    pub auto_reply: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorldPicture {
    pub id: String,
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorldGroup {
    pub jid: String,
    pub subject: String,
    pub description: Option<String>,
    /// The creator's LID (a participant); none means the group's first superadmin.
    pub owner: Option<String>,
    /// Epoch ms.
    pub created_at: Option<u64>,
    #[serde(default)]
    pub announce: bool,
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub join_approval: bool,
    #[serde(default)]
    pub members_can_add: bool,
    /// The account's own role here: `member` (default), `admin` or `superadmin`.
    #[serde(default = "member")]
    pub me: String,
    /// The invite code; derived from the JID when absent.
    pub invite_code: Option<String>,
    pub picture: Option<WorldPicture>,
    /// People waiting for an admin to let them in (LIDs of contacts).
    #[serde(default)]
    pub requests: Vec<String>,
    #[serde(default)]
    pub participants: Vec<WorldParticipant>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorldParticipant {
    pub lid: String,
    /// `member` | `admin` | `superadmin`.
    #[serde(default = "member")]
    pub role: String,
    /// Their nickname in this group.
    pub tag: Option<String>,
}

fn member() -> String {
    "member".into()
}

/// A world checked for consistency, with look-up indexes.
#[derive(Debug, Default)]
pub struct IndexedWorld {
    pub world: World,
    by_lid: HashMap<String, usize>,
    by_phone: HashMap<String, usize>,
}

impl IndexedWorld {
    pub fn load(path: &Path) -> anyhow::Result<IndexedWorld> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("sandbox world {}: {e}", path.display()))?;
        let world: World = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("sandbox world {}: {e}", path.display()))?;
        Self::new(world).map_err(|e| anyhow::anyhow!("sandbox world {}: {e}", path.display()))
    }

    pub fn new(world: World) -> anyhow::Result<IndexedWorld> {
        let mut by_lid = HashMap::new();
        let mut by_phone = HashMap::new();
        for (i, c) in world.contacts.iter().enumerate() {
            let lid = gateway_sdk::jid::parse_lid(&c.lid)?;
            if by_lid.insert(lid.to_string(), i).is_some() {
                anyhow::bail!("contact {} appears twice", c.lid);
            }
            if let Some(p) = &c.phone {
                let p = gateway_sdk::jid::parse_phone(p, false)?;
                if by_phone.insert(p, i).is_some() {
                    anyhow::bail!("phone of {} appears twice", c.lid);
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for g in world.groups.iter().chain(&world.other_groups) {
            gateway_sdk::jid::parse_group(&g.jid)?;
            if !seen.insert(g.jid.as_str()) {
                anyhow::bail!("group {} appears twice", g.jid);
            }
            if !matches!(g.me.as_str(), "member" | "admin" | "superadmin") {
                anyhow::bail!(
                    "group {}: me '{}' is not member/admin/superadmin",
                    g.jid,
                    g.me
                );
            }
            for r in g.requests.iter().chain(&g.owner) {
                if !by_lid.contains_key(r) {
                    anyhow::bail!("group {} names {} who is not a contact", g.jid, r);
                }
            }
            for p in &g.participants {
                if !by_lid.contains_key(&p.lid) {
                    anyhow::bail!(
                        "group {} has participant {} who is not a contact",
                        g.jid,
                        p.lid
                    );
                }
                if !matches!(p.role.as_str(), "member" | "admin" | "superadmin") {
                    anyhow::bail!(
                        "group {}: role '{}' is not member/admin/superadmin",
                        g.jid,
                        p.role
                    );
                }
            }
        }
        Ok(IndexedWorld {
            world,
            by_lid,
            by_phone,
        })
    }

    /// The contact a person's JID (phone or LID) names.
    pub fn contact(&self, jid: &Jid) -> Option<&WorldContact> {
        let i = if jid.is_lid() {
            self.by_lid.get(&jid.to_non_device().to_string())
        } else {
            self.by_phone.get(jid.user())
        }?;
        Some(&self.world.contacts[*i])
    }

    pub fn by_phone(&self, phone: &str) -> Option<&WorldContact> {
        self.by_phone.get(phone).map(|i| &self.world.contacts[*i])
    }
}

impl WorldContact {
    pub fn phone_jid(&self) -> Option<String> {
        self.phone.as_ref().map(|p| format!("{p}@s.whatsapp.net"))
    }
}
