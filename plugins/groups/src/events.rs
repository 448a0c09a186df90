//! Building the store from events: `groups.upsert` (metadata, the full member list when
//! present), `groups.update` (settings and info changed) and `group.participants` (one
//! change to members). The engine publishes them and so does this plugin after its own
//! live changes; applying one twice changes nothing.

use crate::store::{GroupPatch, GroupStore, Person};
use gateway_sdk::{ApiError, Event, jid};
use serde::{Deserialize, Deserializer};

/// A field that may be absent (`None`) or `null` (`Some(None)`).
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
pub(crate) struct Participant {
    lid: Option<String>,
    jid: Option<String>,
    role: Option<String>,
    tag: Option<String>,
}

impl Participant {
    fn person(&self) -> Option<Person> {
        Person::from_addresses(
            self.lid.as_deref(),
            self.jid.as_deref(),
            self.role.as_deref(),
            self.tag.as_deref(),
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpsertGroup {
    jid: String,
    subject: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    owner: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    created_at: Option<Option<u64>>,
    announce: Option<bool>,
    locked: Option<bool>,
    join_approval: Option<bool>,
    members_can_add: Option<bool>,
    participants: Option<Vec<Participant>>,
}

#[derive(Deserialize)]
struct GroupsUpsert {
    #[serde(default)]
    groups: Vec<UpsertGroup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupsUpdate {
    group: String,
    subject: Option<String>,
    description: Option<String>,
    announce: Option<bool>,
    locked: Option<bool>,
    join_approval: Option<bool>,
    members_can_add: Option<bool>,
}

#[derive(Deserialize)]
struct ParticipantsChange {
    group: String,
    action: String,
    #[serde(default)]
    participants: Vec<Participant>,
}

fn group_jid(raw: &str) -> Option<String> {
    jid::parse_group(raw).ok().map(|j| j.to_string())
}

pub(crate) fn groups_upsert(event: &Event) -> Result<(), ApiError> {
    let upsert: GroupsUpsert = event.payload()?;
    let mut store = GroupStore::new(event.timestamp());
    for g in upsert.groups {
        let Some(gid) = group_jid(&g.jid) else {
            continue;
        };
        store.upsert_group(
            &gid,
            &GroupPatch {
                subject: g.subject,
                description: g.description,
                owner: g.owner,
                created_at: g.created_at,
                announce: g.announce,
                locked: g.locked,
                join_approval: g.join_approval,
                members_can_add: g.members_can_add,
            },
        )?;
        if let Some(list) = g.participants {
            let people: Vec<Person> = list.iter().filter_map(Participant::person).collect();
            store.set_members(&gid, &people)?;
        }
    }
    store.commit()
}

pub(crate) fn groups_update(event: &Event) -> Result<(), ApiError> {
    let u: GroupsUpdate = event.payload()?;
    let Some(gid) = group_jid(&u.group) else {
        return Err(ApiError::validation(
            "groups.update: group is not a group JID",
        ));
    };
    let mut store = GroupStore::new(event.timestamp());
    // Settings of a group never seen are kept once its metadata arrives.
    if store.get(&gid)?.is_none() && u.subject.is_none() {
        return Ok(());
    }
    store.upsert_group(
        &gid,
        &GroupPatch {
            subject: u.subject,
            description: u.description.map(|d| Some(d).filter(|d| !d.is_empty())),
            announce: u.announce,
            locked: u.locked,
            join_approval: u.join_approval,
            members_can_add: u.members_can_add,
            ..GroupPatch::default()
        },
    )?;
    store.commit()
}

pub(crate) fn group_participants(event: &Event) -> Result<(), ApiError> {
    let c: ParticipantsChange = event.payload()?;
    let Some(gid) = group_jid(&c.group) else {
        return Err(ApiError::validation(
            "group.participants: group is not a group JID",
        ));
    };
    let mut store = GroupStore::new(event.timestamp());
    store.upsert_group(&gid, &GroupPatch::default())?;
    let people: Vec<Person> = c
        .participants
        .iter()
        .filter_map(Participant::person)
        .collect();
    store.change_members(&gid, &c.action, &people)?;
    store.commit()
}
