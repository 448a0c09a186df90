//! Building the store from WhatsApp events. Both engines publish the same vocabulary:
//! `contacts.upsert`, `chats.upsert`, `groups.upsert`, `group.participants`,
//! `lid.mapping` and `message` (see README, "Events").

use crate::store::{PersonUpdate, Tx};
use gateway_sdk::{ApiError, Event, Jid, jid};
use serde::Deserialize;

pub(crate) const SUBSCRIPTIONS: [&str; 6] = [
    "contacts.upsert",
    "chats.upsert",
    "groups.upsert",
    "group.participants",
    "lid.mapping",
    "message",
];

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

fn parse<'a, T: Deserialize<'a>>(event: &'a Event) -> Result<T, ApiError> {
    serde_json::from_str(&event.payload)
        .map_err(|e| ApiError::validation(format!("{} payload: {e}", event.name)))
}

fn group_jid(raw: &str) -> Option<String> {
    jid::parse_group(raw).ok().map(|j| j.to_string())
}

/// Applies one event to the session's store, atomically.
pub(crate) fn apply(event: &Event) -> Result<(), ApiError> {
    let now = event.timestamp;
    let mut tx = Tx::new(now);
    match event.name.as_str() {
        "contacts.upsert" => {
            for p in parse::<ContactsUpsert>(event)?.contacts {
                tx.upsert(&p.update())?;
            }
        }
        "lid.mapping" => {
            for p in parse::<LidMapping>(event)?.mappings {
                let u = p.update();
                // A mapping links two addresses; one alone says nothing new.
                if u.lid.is_some() && u.phone.is_some() {
                    tx.upsert(&u)?;
                }
            }
        }
        "chats.upsert" => {
            for c in parse::<ChatsUpsert>(event)?.chats {
                if let Some(id) = tx.upsert(&c.update())? {
                    tx.mark_dm(id)?;
                }
            }
        }
        "groups.upsert" => {
            for g in parse::<GroupsUpsert>(event)?.groups {
                let Some(gid) = group_jid(&g.jid) else {
                    continue;
                };
                tx.upsert_group(&gid, g.subject.as_deref())?;
                let Some(participants) = g.participants else {
                    continue;
                };
                let mut present = Vec::new();
                for p in &participants {
                    if let Some(id) = tx.upsert(&p.update())? {
                        tx.set_membership(
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
                for id in tx.members(&gid)? {
                    if !present.contains(&id) {
                        tx.remove_membership(id, &gid)?;
                    }
                }
            }
        }
        "group.participants" => {
            let change = parse::<ParticipantsChange>(event)?;
            let Some(gid) = group_jid(&change.group) else {
                return Err(ApiError::validation(
                    "group.participants: group is not a group JID",
                ));
            };
            tx.upsert_group(&gid, None)?;
            for p in &change.participants {
                let Some(id) = tx.upsert(&p.update())? else {
                    continue;
                };
                match change.action.as_str() {
                    "add" => tx.set_membership(
                        id,
                        &gid,
                        Some(p.role().unwrap_or("member")),
                        p.tag.as_deref(),
                        now,
                    )?,
                    "remove" => tx.remove_membership(id, &gid)?,
                    "promote" => tx.set_membership(
                        id,
                        &gid,
                        Some(p.role().unwrap_or("admin")),
                        p.tag.as_deref(),
                        now,
                    )?,
                    "demote" => {
                        tx.set_membership(id, &gid, Some("member"), p.tag.as_deref(), now)?
                    }
                    // A changed number or nickname: identity and tag are updated above/here.
                    _ => tx.set_membership(id, &gid, p.role(), p.tag.as_deref(), now)?,
                }
            }
        }
        "message" => {
            let m = parse::<Message>(event)?;
            if !m.from_me {
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
                if let Some(id) = tx.upsert(&sender.update())? {
                    if m.is_group {
                        if let Some(gid) = group_jid(&m.chat) {
                            tx.upsert_group(&gid, None)?;
                            tx.set_membership(id, &gid, None, None, seen)?;
                        }
                    } else {
                        tx.mark_dm(id)?;
                    }
                }
            }
        }
        _ => return Ok(()),
    }
    tx.commit()
}
