//! The session's group store: each group once (its API object, listed by case-folded
//! subject then JID), its members keyed by LID (else phone JID), and the account's own
//! role. Every change of one event or request is one [`Tx`], committed together.

use gateway_sdk::store::{self as kv, Tx};
use gateway_sdk::whatsapp::{self, Identity};
use gateway_sdk::{ApiError, JsonSchema, jid};
use serde::{Deserialize, Serialize};

/// `o/<case-folded subject>\0<gid>` → Group: the list order.
pub(crate) const ORDER_PREFIX: &[u8] = b"o/";
/// `g/<gid>` → the group's order key.
const GROUP_PREFIX: &[u8] = b"g/";
/// `m/<gid>\0<lid or phone JID>` → Member.
const MEMBER_PREFIX: &[u8] = b"m/";
const NEXT_GROUP: &[u8] = b"n/group";
const NEXT_MEMBER: &[u8] = b"n/member";

/// The API's Group object, stored as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Group {
    pub id: u64,
    pub group_jid: String,
    pub subject: String,
    pub description: Option<String>,
    pub owner_jid: Option<String>,
    pub participant_count: u32,
    pub is_announce: bool,
    pub is_locked: bool,
    pub join_approval: bool,
    pub members_can_add: bool,
    /// `member`, `admin` or `superadmin`; null once the account left or was removed.
    pub my_role: Option<String>,
    pub created_at_wa: Option<u64>,
    pub first_seen_at: u64,
    pub updated_at: u64,
}

/// One member of a group (the API's Member without `sessionId` and `groupJid`, added
/// when answered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Member {
    pub id: u64,
    pub lid: Option<String>,
    pub phone_jid: Option<String>,
    pub role: String,
    pub tag: Option<String>,
    pub first_seen_at: u64,
    pub last_seen_at: u64,
}

impl Member {
    fn key(&self) -> &str {
        self.lid
            .as_deref()
            .or(self.phone_jid.as_deref())
            .unwrap_or_default()
    }

    /// Whether this is the person `p` names (same LID or same phone JID).
    pub(crate) fn is(&self, p: &Person) -> bool {
        (p.lid.is_some() && self.lid == p.lid) || (p.phone.is_some() && self.phone_jid == p.phone)
    }

    /// The list order: superadmin, admin, member, then address.
    pub(crate) fn order(&self) -> (u8, String) {
        let rank = match self.role.as_str() {
            "superadmin" => 0,
            "admin" => 1,
            _ => 2,
        };
        (rank, self.key().to_owned())
    }
}

/// A person as events and WhatsApp name them: a LID and/or a phone JID, normalised.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Person {
    pub lid: Option<String>,
    pub phone: Option<String>,
    pub role: Option<String>,
    pub tag: Option<String>,
}

impl Person {
    /// From the addresses an event carries (either may hold a LID or a phone JID);
    /// `None` when neither is a person's address.
    pub(crate) fn from_addresses(
        a: Option<&str>,
        b: Option<&str>,
        role: Option<&str>,
        tag: Option<&str>,
    ) -> Option<Person> {
        let mut p = Person {
            role: role
                .filter(|r| matches!(*r, "member" | "admin" | "superadmin"))
                .map(str::to_owned),
            tag: tag.map(str::to_owned),
            ..Person::default()
        };
        for j in [a, b]
            .into_iter()
            .flatten()
            .filter_map(|s| jid::parse_person(s).ok())
        {
            let s = j.to_non_device().to_string();
            if j.is_lid() {
                p.lid.get_or_insert(s);
            } else {
                p.phone.get_or_insert(s);
            }
        }
        (p.lid.is_some() || p.phone.is_some()).then_some(p)
    }

    pub(crate) fn is_me(&self, me: Option<&Identity>) -> bool {
        me.is_some_and(|me| {
            self.phone.as_deref() == Some(me.jid.as_str())
                || (self.lid.is_some() && self.lid == me.lid)
        })
    }

    /// The address to give WhatsApp: the phone JID when known, else the LID.
    pub(crate) fn address(&self) -> String {
        self.phone
            .clone()
            .or_else(|| self.lid.clone())
            .unwrap_or_default()
    }
}

/// Metadata fields an event or a live read sets; `None` leaves one as it is.
#[derive(Debug, Default, Clone)]
pub(crate) struct GroupPatch {
    pub subject: Option<String>,
    /// `Some(None)` clears it.
    pub description: Option<Option<String>>,
    pub owner: Option<Option<String>>,
    pub created_at: Option<Option<u64>>,
    pub announce: Option<bool>,
    pub locked: Option<bool>,
    pub join_approval: Option<bool>,
    pub members_can_add: Option<bool>,
}

fn order_key(subject: &str, gid: &str) -> Vec<u8> {
    let mut k = ORDER_PREFIX.to_vec();
    k.extend_from_slice(subject.to_lowercase().as_bytes());
    k.push(0);
    k.extend_from_slice(gid.as_bytes());
    k
}

fn group_key(gid: &str) -> Vec<u8> {
    let mut k = GROUP_PREFIX.to_vec();
    k.extend_from_slice(gid.as_bytes());
    k
}

fn members_prefix(gid: &str) -> Vec<u8> {
    let mut k = MEMBER_PREFIX.to_vec();
    k.extend_from_slice(gid.as_bytes());
    k.push(0);
    k
}

fn member_key(gid: &str, m: &Member) -> Vec<u8> {
    let mut k = members_prefix(gid);
    k.extend_from_slice(m.key().as_bytes());
    k
}

/// The stored group `gid`, outside a unit of work.
pub(crate) fn find(gid: &str) -> Result<Option<Group>, ApiError> {
    let Some(order) = kv::get(&group_key(gid))? else {
        return Ok(None);
    };
    kv::get_json(&order)
}

/// Every stored member of `gid`, outside a unit of work.
pub(crate) fn members(gid: &str) -> Result<Vec<Member>, ApiError> {
    Ok(kv::scan_all_json::<Member>(&members_prefix(gid))?
        .into_iter()
        .map(|(_, m)| m)
        .collect())
}

/// One unit of work on the store.
pub(crate) struct GroupStore {
    tx: Tx,
    now: u64,
    me: Option<Option<Identity>>,
}

impl GroupStore {
    pub(crate) fn new(now: u64) -> GroupStore {
        GroupStore {
            tx: Tx::new(),
            now,
            me: None,
        }
    }

    /// The session's own account (asked once per unit; unknown when never paired).
    pub(crate) fn me(&mut self) -> Option<Identity> {
        if self.me.is_none() {
            self.me = Some(whatsapp::self_identity().ok().flatten());
        }
        self.me.clone().flatten()
    }

    fn next(&mut self, counter: &[u8]) -> Result<u64, ApiError> {
        let n = self.tx.get_json::<u64>(counter)?.unwrap_or(0) + 1;
        self.tx.put_json(counter, &n)?;
        Ok(n)
    }

    pub(crate) fn get(&self, gid: &str) -> Result<Option<Group>, ApiError> {
        let Some(order) = self.tx.get(&group_key(gid))? else {
            return Ok(None);
        };
        self.tx.get_json(&order)
    }

    fn save(&mut self, before: Option<&Group>, g: &Group) -> Result<(), ApiError> {
        let key = order_key(&g.subject, &g.group_jid);
        if let Some(b) = before {
            let old = order_key(&b.subject, &b.group_jid);
            if old != key {
                self.tx.delete(&old);
            }
        }
        self.tx.put(&group_key(&g.group_jid), key.clone());
        self.tx.put_json(&key, g)?;
        Ok(())
    }

    /// Creates or changes a group's metadata; answers it. A group first seen without a
    /// subject gets an empty one until WhatsApp tells it.
    pub(crate) fn upsert_group(
        &mut self,
        gid: &str,
        patch: &GroupPatch,
    ) -> Result<Group, ApiError> {
        let before = self.get(gid)?;
        let mut g = match &before {
            Some(g) => g.clone(),
            None => Group {
                id: self.next(NEXT_GROUP)?,
                group_jid: gid.to_owned(),
                subject: String::new(),
                description: None,
                owner_jid: None,
                participant_count: 0,
                is_announce: false,
                is_locked: false,
                join_approval: false,
                members_can_add: false,
                my_role: None,
                created_at_wa: None,
                first_seen_at: self.now,
                updated_at: self.now,
            },
        };
        if let Some(s) = &patch.subject {
            g.subject = s.clone();
        }
        if let Some(d) = &patch.description {
            g.description = d.clone().filter(|d| !d.is_empty());
        }
        if let Some(o) = &patch.owner {
            g.owner_jid = o.clone();
        }
        if let Some(c) = patch.created_at {
            g.created_at_wa = c;
        }
        for (value, slot) in [
            (patch.announce, &mut g.is_announce),
            (patch.locked, &mut g.is_locked),
            (patch.join_approval, &mut g.join_approval),
            (patch.members_can_add, &mut g.members_can_add),
        ] {
            if let Some(v) = value {
                *slot = v;
            }
        }
        if before.as_ref() != Some(&g) {
            g.updated_at = g.updated_at.max(self.now);
            self.save(before.as_ref(), &g)?;
        }
        Ok(g)
    }

    fn load_members(&self, gid: &str) -> Result<Vec<(Vec<u8>, Member)>, ApiError> {
        let mut out = Vec::new();
        for k in self.tx.keys_with_prefix(&members_prefix(gid))? {
            if let Some(m) = self.tx.get_json::<Member>(&k)? {
                out.push((k, m));
            }
        }
        Ok(out)
    }

    fn new_member(&mut self, p: &Person, role: &str) -> Result<Member, ApiError> {
        Ok(Member {
            id: self.next(NEXT_MEMBER)?,
            lid: p.lid.clone(),
            phone_jid: p.phone.clone(),
            role: role.to_owned(),
            tag: p.tag.clone(),
            first_seen_at: self.now,
            last_seen_at: self.now,
        })
    }

    /// Writes a member under its key (moving it when it gained a LID).
    fn put_member(
        &mut self,
        gid: &str,
        old_key: Option<&[u8]>,
        m: &Member,
    ) -> Result<(), ApiError> {
        let key = member_key(gid, m);
        if let Some(old) = old_key
            && old != key.as_slice()
        {
            self.tx.delete(old);
        }
        self.tx.put_json(&key, m)?;
        Ok(())
    }

    fn merge(m: &mut Member, p: &Person, role: Option<&str>, now: u64) {
        if m.lid.is_none() {
            m.lid = p.lid.clone();
        }
        if m.phone_jid.is_none() {
            m.phone_jid = p.phone.clone();
        }
        if let Some(r) = role {
            m.role = r.to_owned();
        }
        if p.tag.is_some() {
            m.tag = p.tag.clone();
        }
        m.last_seen_at = m.last_seen_at.max(now);
    }

    /// The full member list: whoever is missing has left. Sets the account's role.
    pub(crate) fn set_members(&mut self, gid: &str, people: &[Person]) -> Result<(), ApiError> {
        let me = self.me();
        let existing = self.load_members(gid)?;
        let mut kept = vec![false; existing.len()];
        let mut my_role = None;
        for p in people {
            let role = p.role.as_deref().unwrap_or("member");
            if p.is_me(me.as_ref()) {
                my_role = Some(role.to_owned());
            }
            match existing.iter().position(|(_, m)| m.is(p)) {
                Some(i) => {
                    kept[i] = true;
                    let (k, m) = &existing[i];
                    let mut m = m.clone();
                    Self::merge(&mut m, p, Some(role), self.now);
                    if m != existing[i].1 {
                        self.put_member(gid, Some(k), &m)?;
                    }
                }
                None => {
                    let m = self.new_member(p, role)?;
                    self.put_member(gid, None, &m)?;
                }
            }
        }
        for (i, (k, _)) in existing.iter().enumerate() {
            if !kept[i] {
                self.tx.delete(k);
            }
        }
        let count = self.load_members(gid)?.len() as u32;
        self.finish(gid, count, me.is_some().then_some(my_role))
    }

    /// One change to members (`add`, `remove`, `promote`, `demote`, `modify`).
    pub(crate) fn change_members(
        &mut self,
        gid: &str,
        action: &str,
        people: &[Person],
    ) -> Result<(), ApiError> {
        let me = self.me();
        let mut my_role: Option<Option<String>> = None;
        for p in people {
            let existing = self.load_members(gid)?;
            let found = existing.iter().find(|(_, m)| m.is(p)).cloned();
            let role = match action {
                "add" => Some(p.role.as_deref().unwrap_or("member")),
                "promote" => Some(p.role.as_deref().unwrap_or("admin")),
                "demote" => Some("member"),
                "remove" => None,
                _ => p.role.as_deref(),
            };
            if action == "remove" {
                if let Some((k, _)) = &found {
                    self.tx.delete(k);
                }
                if p.is_me(me.as_ref()) {
                    my_role = Some(None);
                }
                continue;
            }
            let m = match found {
                Some((k, mut m)) => {
                    Self::merge(&mut m, p, role, self.now);
                    self.put_member(gid, Some(&k), &m)?;
                    m
                }
                None => {
                    let m = self.new_member(p, role.unwrap_or("member"))?;
                    self.put_member(gid, None, &m)?;
                    m
                }
            };
            if p.is_me(me.as_ref()) {
                my_role = Some(Some(m.role.clone()));
            }
        }
        let count = self.load_members(gid)?.len() as u32;
        self.finish(gid, count, my_role)
    }

    /// Updates the group's count (and the account's role when it changed).
    fn finish(
        &mut self,
        gid: &str,
        count: u32,
        my_role: Option<Option<String>>,
    ) -> Result<(), ApiError> {
        let Some(before) = self.get(gid)? else {
            return Ok(());
        };
        let mut g = before.clone();
        g.participant_count = count;
        if let Some(r) = my_role {
            g.my_role = r;
        }
        if g != before {
            g.updated_at = g.updated_at.max(self.now);
            self.save(Some(&before), &g)?;
        }
        Ok(())
    }

    pub(crate) fn commit(self) -> Result<(), ApiError> {
        self.tx.commit()
    }
}
