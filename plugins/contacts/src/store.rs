//! The contact store, kept per session in the plugin's storage. Each person is one
//! record keyed by a stable numeric id and holding everything getContact answers (names,
//! addresses, direct chat, group memberships); indexes map LIDs and phone numbers to ids,
//! and each group's members to theirs.
//!
//! Keys: `seq` · `i/<id>` identity · `v/<id>` its getContact answer and `l/<id>` its list
//! item, both rendered when the identity is written so reads are lookups without
//! re-encoding · `vl/<lid>` the same answer under the person's LID, so a getContact by LID
//! is one read · `lid/<lid>` ·
//! `pn/<number>` · `g/<gid>` group · `gm/<gid>/<id>` member index. Ids are 16 hex digits
//! so they sort numerically.

use crate::model::{Group, Identity, Membership};
use gateway_sdk::store::Tx;
use gateway_sdk::{ApiError, Jid};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

pub(crate) const IDENTITY_PREFIX: &[u8] = b"i/";

/// `<prefix><id as 16 lower-case hex digits>`, written without the formatter: every
/// `getContact` builds one (the formatter was 2 % of its profile).
fn id_key(prefix: &str, id: u64) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut key = Vec::with_capacity(prefix.len() + 16);
    key.extend_from_slice(prefix.as_bytes());
    key.extend(
        (0..16)
            .rev()
            .map(|nibble| HEX[(id >> (nibble * 4)) as usize & 0xf]),
    );
    key
}

pub(crate) fn identity_key(id: u64) -> Vec<u8> {
    id_key("i/", id)
}

pub(crate) fn view_key(id: u64) -> Vec<u8> {
    id_key("v/", id)
}

pub(crate) const LIST_ITEM_PREFIX: &[u8] = b"l/";

fn list_item_key(id: u64) -> Vec<u8> {
    id_key("l/", id)
}

pub(crate) fn member_index_prefix(group: &str) -> Vec<u8> {
    format!("gm/{group}/").into_bytes()
}

fn member_index_key(group: &str, id: u64) -> Vec<u8> {
    format!("gm/{group}/{id:016x}").into_bytes()
}

fn group_key(group: &str) -> Vec<u8> {
    format!("g/{group}").into_bytes()
}

/// A LID's index key; `lid` is its text or the parsed JID (formatted once, in place).
fn lid_key(lid: impl std::fmt::Display) -> Vec<u8> {
    format!("lid/{lid}").into_bytes()
}

/// The getContact answer of the person with this LID (text or parsed JID, as `lid_key`).
pub(crate) fn view_by_lid_key(lid: impl std::fmt::Display) -> Vec<u8> {
    format!("vl/{lid}").into_bytes()
}

fn pn_key(number: &str) -> Vec<u8> {
    format!("pn/{number}").into_bytes()
}

/// The id encoded at the end of an index key (`…/<16 hex>`).
pub(crate) fn id_suffix(key: &[u8]) -> Option<u64> {
    let hex = std::str::from_utf8(key.get(key.len().checked_sub(16)?..)?).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::internal(format!("stored contact data is unreadable: {e}")))
}

/// What an event says about a person; absent fields leave stored values alone.
#[derive(Debug, Default, Clone)]
pub(crate) struct PersonUpdate {
    pub(crate) lid: Option<Jid>,
    pub(crate) phone: Option<Jid>,
    pub(crate) name: Option<String>,
    pub(crate) push_name: Option<String>,
    pub(crate) business_name: Option<String>,
}

/// The contact store of one session, changed through one unit of work: reads see its
/// earlier writes, and everything it writes commits together.
pub(crate) struct ContactStore {
    tx: Tx,
    /// The time of the change being applied (the event's), for `updatedAt`/`lastSeen`.
    now: u64,
}

impl ContactStore {
    pub(crate) fn new(now: u64) -> ContactStore {
        ContactStore { tx: Tx::new(), now }
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, ApiError> {
        self.tx.get_json(key)
    }

    fn set<T: Serialize>(&mut self, key: Vec<u8>, value: &T) -> Result<(), ApiError> {
        self.tx.put_json(&key, value)?;
        Ok(())
    }

    fn remove(&mut self, key: Vec<u8>) {
        self.tx.delete(&key);
    }

    /// Commits every change at once.
    pub(crate) fn commit(self) -> Result<(), ApiError> {
        self.tx.commit()
    }

    pub(crate) fn identity(&self, id: u64) -> Result<Option<Identity>, ApiError> {
        self.get(&identity_key(id))
    }

    fn identity_or_fail(&self, id: u64) -> Result<Identity, ApiError> {
        self.identity(id)?
            .ok_or_else(|| ApiError::internal("contact index points at a missing identity"))
    }

    /// Writes an identity and its rendered getContact answer (under its id, and under its
    /// LID when it has one).
    fn save(&mut self, ident: &Identity) -> Result<(), ApiError> {
        let answer = ident.contact();
        if let Some(lid) = &ident.lid {
            self.set(view_by_lid_key(lid), &answer)?;
        }
        self.set(view_key(ident.id), &answer)?;
        self.set(list_item_key(ident.id), &ident.view())?;
        self.set(identity_key(ident.id), ident)
    }

    /// Drops what a LID leads to (its index entry and the answer stored under it), when
    /// it leaves an identity.
    fn forget_lid(&mut self, lid: &str) {
        self.remove(lid_key(lid));
        self.remove(view_by_lid_key(lid));
    }

    /// The id of the person a JID (LID or phone) names, if stored.
    pub(crate) fn find(&self, jid: &Jid) -> Result<Option<u64>, ApiError> {
        if jid.is_lid() {
            self.get(&lid_key(jid))
        } else {
            match jid.phone_number() {
                Some(n) => self.get(&pn_key(n)),
                None => Ok(None),
            }
        }
    }

    fn next_id(&mut self) -> Result<u64, ApiError> {
        let n = self.get::<u64>(b"seq")?.unwrap_or(0) + 1;
        self.set(b"seq".to_vec(), &n)?;
        Ok(n)
    }

    /// Finds or creates the identity an update is about, merging two identities when the
    /// update shows that a LID and a phone number known separately are one person.
    /// Returns `None` when the update names no one.
    pub(crate) fn upsert(&mut self, u: &PersonUpdate) -> Result<Option<u64>, ApiError> {
        let lid = u.lid.as_ref().map(|j| j.to_non_device().to_string());
        let phone = u
            .phone
            .as_ref()
            .and_then(|j| j.phone_number().map(str::to_owned));
        if lid.is_none() && phone.is_none() {
            return Ok(None);
        }
        let by_lid: Option<u64> = match &lid {
            Some(l) => self.get(&lid_key(l))?,
            None => None,
        };
        let by_phone: Option<u64> = match &phone {
            Some(p) => self.get(&pn_key(p))?,
            None => None,
        };
        let id = match (by_lid, by_phone) {
            (Some(a), Some(b)) if a != b => self.merge(a, b)?,
            (Some(a), _) => a,
            (None, Some(b)) => b,
            (None, None) => {
                let id = self.next_id()?;
                let fresh = Identity {
                    id,
                    lid: None,
                    phone_jid: None,
                    phone_number: None,
                    name: None,
                    push_name: None,
                    business_name: None,
                    first_seen_at: self.now,
                    updated_at: self.now,
                    dm: false,
                    groups: BTreeMap::new(),
                };
                self.save(&fresh)?;
                id
            }
        };
        let mut ident = self.identity_or_fail(id)?;
        let before = ident.clone();
        if let Some(l) = &lid
            && ident.lid.as_deref() != Some(l.as_str())
        {
            if let Some(old) = ident.lid.take() {
                self.forget_lid(&old);
            }
            ident.lid = Some(l.clone());
            self.set(lid_key(l), &id)?;
        }
        if let Some(p) = &phone
            && ident.phone_number.as_deref() != Some(p.as_str())
        {
            if let Some(old) = ident.phone_number.take() {
                self.remove(pn_key(&old));
            }
            ident.phone_number = Some(p.clone());
            ident.phone_jid = Some(format!("{p}@s.whatsapp.net"));
            self.set(pn_key(p), &id)?;
        }
        let non_empty = |v: &Option<String>| {
            v.as_ref()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        if let Some(n) = non_empty(&u.name) {
            ident.name = Some(n);
        }
        if let Some(n) = non_empty(&u.push_name) {
            ident.push_name = Some(n);
        }
        if let Some(n) = non_empty(&u.business_name) {
            ident.business_name = Some(n);
        }
        if ident != before {
            ident.updated_at = self.now.max(before.updated_at);
            self.save(&ident)?;
        }
        Ok(Some(id))
    }

    /// Folds identity `b` into `a` (the one found by LID, which getContact addresses),
    /// moving its names, direct chat and memberships. Returns `a`.
    fn merge(&mut self, a: u64, b: u64) -> Result<u64, ApiError> {
        let (Some(mut keep), Some(gone)) = (self.identity(a)?, self.identity(b)?) else {
            return Ok(a);
        };
        keep.phone_jid = keep.phone_jid.or(gone.phone_jid);
        keep.phone_number = keep.phone_number.or(gone.phone_number.clone());
        keep.name = keep.name.or(gone.name);
        keep.push_name = keep.push_name.or(gone.push_name);
        keep.business_name = keep.business_name.or(gone.business_name);
        keep.first_seen_at = keep.first_seen_at.min(gone.first_seen_at);
        keep.updated_at = self.now.max(keep.updated_at);
        keep.dm |= gone.dm;
        if let Some(p) = &gone.phone_number {
            self.set(pn_key(p), &a)?;
        }
        if let Some(l) = &gone.lid {
            self.forget_lid(l);
        }
        for (group, m) in gone.groups {
            self.remove(member_index_key(&group, b));
            self.set(member_index_key(&group, a), &true)?;
            match keep.groups.get(&group) {
                Some(existing) if existing.last_seen >= m.last_seen => {}
                _ => {
                    keep.groups.insert(group, m);
                }
            }
        }
        self.remove(identity_key(b));
        self.remove(view_key(b));
        self.remove(list_item_key(b));
        self.save(&keep)?;
        Ok(a)
    }

    pub(crate) fn mark_dm(&mut self, id: u64) -> Result<(), ApiError> {
        let mut ident = self.identity_or_fail(id)?;
        if !ident.dm {
            ident.dm = true;
            self.save(&ident)?;
        }
        Ok(())
    }

    /// Records a group's name, and copies it into its members' memberships.
    pub(crate) fn upsert_group(&mut self, jid: &str, name: Option<&str>) -> Result<(), ApiError> {
        let current: Option<Group> = self.get(&group_key(jid))?;
        let name = name.map(str::to_owned).filter(|n| !n.trim().is_empty());
        match current {
            Some(g) if name.is_none() || g.name == name => return Ok(()),
            _ => {}
        }
        self.set(
            group_key(jid),
            &Group {
                jid: jid.to_owned(),
                name: name.clone(),
            },
        )?;
        for id in self.members(jid)? {
            let mut ident = self.identity_or_fail(id)?;
            if let Some(m) = ident.groups.get_mut(jid) {
                m.name = name.clone();
                self.save(&ident)?;
            }
        }
        Ok(())
    }

    /// Sets a membership; `role`/`tag` of `None` keep what is stored.
    pub(crate) fn set_membership(
        &mut self,
        id: u64,
        group: &str,
        role: Option<&str>,
        tag: Option<&str>,
        seen: u64,
    ) -> Result<(), ApiError> {
        let mut ident = self.identity_or_fail(id)?;
        let current = ident.groups.get(group);
        let group_name = match current {
            Some(m) => m.name.clone(),
            None => self.get::<Group>(&group_key(group))?.and_then(|g| g.name),
        };
        let next = Membership {
            name: group_name,
            role: role
                .map(str::to_owned)
                .or_else(|| current.map(|m| m.role.clone()))
                .unwrap_or_else(|| "member".into()),
            tag: tag
                .map(str::to_owned)
                .filter(|t| !t.trim().is_empty())
                .or_else(|| current.and_then(|m| m.tag.clone())),
            last_seen: seen.max(current.map_or(0, |m| m.last_seen)),
        };
        if current != Some(&next) {
            if current.is_none() {
                self.set(member_index_key(group, id), &true)?;
            }
            ident.groups.insert(group.to_owned(), next);
            self.save(&ident)?;
        }
        Ok(())
    }

    pub(crate) fn remove_membership(&mut self, id: u64, group: &str) -> Result<(), ApiError> {
        let mut ident = self.identity_or_fail(id)?;
        if ident.groups.remove(group).is_some() {
            self.save(&ident)?;
        }
        self.remove(member_index_key(group, id));
        Ok(())
    }

    /// Ids of a group's stored members.
    pub(crate) fn members(&self, group: &str) -> Result<Vec<u64>, ApiError> {
        Ok(self
            .tx
            .keys_with_prefix(&member_index_prefix(group))?
            .iter()
            .filter_map(|k| id_suffix(k))
            .collect())
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn id_keys_are_the_formatted_ids_and_read_back() {
        for id in [0, 1, 0xa, 0xdead_beef, u64::MAX / 3, u64::MAX] {
            assert_eq!(view_key(id), format!("v/{id:016x}").into_bytes());
            assert_eq!(identity_key(id), format!("i/{id:016x}").into_bytes());
            assert_eq!(list_item_key(id), format!("l/{id:016x}").into_bytes());
            assert_eq!(id_suffix(&view_key(id)), Some(id));
        }
    }
}
