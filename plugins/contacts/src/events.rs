//! Building the store from WhatsApp events. Both engines publish the same vocabulary:
//! `contacts.upsert`, `chats.upsert`, `groups.upsert`, `group.participants`,
//! `lid.mapping` and `message` (see README, "Events"); each has its handler here.

use crate::store::{ContactStore, PersonUpdate};
use gateway_sdk::{ApiError, Event, Jid, jid};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Person {
    lid: Option<String>,
    jid: Option<String>,
    phone_number: Option<String>,
    name: Option<String>,
    push_name: Option<String>,
    business_name: Option<String>,
    role: Option<String>,
    tag: Option<String>,
}

#[derive(Deserialize)]
struct ContactsUpsert {
    #[serde(default)]
    contacts: Vec<Person>,
}

#[derive(Deserialize)]
struct ChatsUpsert {
    #[serde(default)]
    chats: Vec<Person>,
}

#[derive(Deserialize)]
struct GroupInfo {
    jid: String,
    subject: Option<String>,
    /// When present, the full member list.
    participants: Option<Vec<Person>>,
}

#[derive(Deserialize)]
struct GroupsUpsert {
    #[serde(default)]
    groups: Vec<GroupInfo>,
}

#[derive(Deserialize)]
struct ParticipantsChange {
    group: String,
    action: String,
    #[serde(default)]
    participants: Vec<Person>,
}

#[derive(Deserialize)]
struct LidMapping {
    #[serde(default)]
    mappings: Vec<Person>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    chat: String,
    sender: Option<String>,
    sender_lid: Option<String>,
    sender_jid: Option<String>,
    #[serde(default)]
    from_me: bool,
    #[serde(default)]
    is_group: bool,
    push_name: Option<String>,
    timestamp: Option<u64>,
}

/// Reads an address leniently: events come from WhatsApp, so one malformed entry is
/// skipped rather than failing the whole event.
fn address(raw: Option<&str>) -> Option<Jid> {
    raw.and_then(|s| jid::parse_person(s).ok())
}

impl Person {
    fn update(&self) -> PersonUpdate {
        let mut u = PersonUpdate {
            name: self.name.clone(),
            push_name: self.push_name.clone(),
            business_name: self.business_name.clone(),
            ..PersonUpdate::default()
        };
        for j in [address(self.lid.as_deref()), address(self.jid.as_deref())]
            .into_iter()
            .flatten()
        {
            if j.is_lid() {
                u.lid.get_or_insert(j);
            } else {
                u.phone.get_or_insert(j);
            }
        }
        if u.phone.is_none()
            && let Some(p) = self.phone_number.as_deref()
        {
            u.phone = Jid::from_phone(p).ok();
        }
        u
    }

    fn role(&self) -> Option<&str> {
        self.role
            .as_deref()
            .filter(|r| matches!(*r, "member" | "admin" | "superadmin"))
    }
}

/// Whether a group member is the session's own account (group metadata lists it too):
/// the account is not one of its own contacts.
fn is_me(p: &Person, me: Option<&gateway_sdk::whatsapp::Identity>) -> bool {
    let Some(me) = me else {
        return false;
    };
    let u = p.update();
    u.phone.is_some_and(|j| j.to_string() == me.jid)
        || u.lid
            .is_some_and(|j| me.lid.as_deref() == Some(j.to_string().as_str()))
}

/// The session's own account, when it was paired.
fn me() -> Option<gateway_sdk::whatsapp::Identity> {
    gateway_sdk::whatsapp::self_identity().ok().flatten()
}

fn group_jid(raw: &str) -> Option<String> {
    jid::parse_group(raw).ok().map(|j| j.to_string())
}

/// Applies one event's changes to the session's store, atomically.
fn apply(
    event: &Event,
    change: impl FnOnce(&mut ContactStore, u64) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let now = event.timestamp();
    let mut store = ContactStore::new(now);
    change(&mut store, now)?;
    store.commit()
}

/// Contact sync: names and addresses.
pub(crate) fn contacts_upsert(event: &Event) -> Result<(), ApiError> {
    let upsert: ContactsUpsert = event.payload()?;
    apply(event, |store, _| {
        for p in upsert.contacts {
            store.upsert(&p.update())?;
        }
        Ok(())
    })
}

/// LID ↔ phone mappings: they may show two stored identities are one person.
pub(crate) fn lid_mapping(event: &Event) -> Result<(), ApiError> {
    let mapping: LidMapping = event.payload()?;
    apply(event, |store, _| {
        for p in mapping.mappings {
            let u = p.update();
            // A mapping links two addresses; one alone says nothing new.
            if u.lid.is_some() && u.phone.is_some() {
                store.upsert(&u)?;
            }
        }
        Ok(())
    })
}

/// Direct chats: the session has a DM with these people.
pub(crate) fn chats_upsert(event: &Event) -> Result<(), ApiError> {
    let upsert: ChatsUpsert = event.payload()?;
    apply(event, |store, _| {
        for c in upsert.chats {
            if let Some(id) = store.upsert(&c.update())? {
                store.mark_dm(id)?;
            }
        }
        Ok(())
    })
}

/// Group metadata: names, and the full member list when present.
pub(crate) fn groups_upsert(event: &Event) -> Result<(), ApiError> {
    let upsert: GroupsUpsert = event.payload()?;
    let me = me();
    apply(event, |store, now| {
        for g in upsert.groups {
            let Some(gid) = group_jid(&g.jid) else {
                continue;
            };
            store.upsert_group(&gid, g.subject.as_deref())?;
            let Some(participants) = g.participants else {
                continue;
            };
            let mut present = Vec::new();
            for p in participants.iter().filter(|p| !is_me(p, me.as_ref())) {
                if let Some(id) = store.upsert(&p.update())? {
                    store.set_membership(
                        id,
                        &gid,
                        Some(p.role().unwrap_or("member")),
                        p.tag.as_deref(),
                        now,
                    )?;
                    present.push(id);
                }
            }
            // Metadata lists every member: whoever is missing has left.
            for id in store.members(&gid)? {
                if !present.contains(&id) {
                    store.remove_membership(id, &gid)?;
                }
            }
        }
        Ok(())
    })
}

/// One change to a group's members.
pub(crate) fn group_participants(event: &Event) -> Result<(), ApiError> {
    let change: ParticipantsChange = event.payload()?;
    let Some(gid) = group_jid(&change.group) else {
        return Err(ApiError::validation(
            "group.participants: group is not a group JID",
        ));
    };
    let me = me();
    apply(event, |store, now| {
        store.upsert_group(&gid, None)?;
        for p in change
            .participants
            .iter()
            .filter(|p| !is_me(p, me.as_ref()))
        {
            let Some(id) = store.upsert(&p.update())? else {
                continue;
            };
            let tag = p.tag.as_deref();
            match change.action.as_str() {
                "add" => {
                    store.set_membership(id, &gid, Some(p.role().unwrap_or("member")), tag, now)?
                }
                "remove" => store.remove_membership(id, &gid)?,
                "promote" => {
                    store.set_membership(id, &gid, Some(p.role().unwrap_or("admin")), tag, now)?
                }
                "demote" => store.set_membership(id, &gid, Some("member"), tag, now)?,
                // A changed number or nickname: identity and tag are updated above/here.
                _ => store.set_membership(id, &gid, p.role(), tag, now)?,
            }
        }
        Ok(())
    })
}

/// A message: its sender's push name, and the DM or group they wrote in.
pub(crate) fn message(event: &Event) -> Result<(), ApiError> {
    let m: Message = event.payload()?;
    if m.from_me {
        return Ok(());
    }
    apply(event, |store, now| {
        let sender = Person {
            lid: m
                .sender_lid
                .clone()
                .or_else(|| m.sender.clone().filter(|s| s.ends_with("@lid"))),
            jid: m
                .sender_jid
                .clone()
                .or_else(|| m.sender.clone().filter(|s| !s.ends_with("@lid"))),
            push_name: m.push_name.clone(),
            ..Person::default()
        };
        let seen = m.timestamp.unwrap_or(now);
        if let Some(id) = store.upsert(&sender.update())? {
            if m.is_group {
                if let Some(gid) = group_jid(&m.chat) {
                    store.upsert_group(&gid, None)?;
                    store.set_membership(id, &gid, None, None, seen)?;
                }
            } else {
                store.mark_dm(id)?;
            }
        }
        Ok(())
    })
}
