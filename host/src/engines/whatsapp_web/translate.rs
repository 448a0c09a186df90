//! whatsapp-rust's events in the gateway's vocabulary: lifecycle steps for the session
//! manager, and the domain events the sandbox also emits (`contacts.upsert`,
//! `chats.upsert`, `groups.upsert`, `group.participants`, `lid.mapping`, `message`), so
//! plugins see one shape whichever engine runs.

use super::account_of;
use crate::clock::now_ms;
use crate::engines::{Account, EngineEvent, PairingCode};
use serde_json::{Value, json};
use std::sync::Arc;
use whatsapp_rust::Client;
use whatsapp_rust::types::events::Event;
use whatsapp_rust::wacore::proto_helpers::MessageExt;
use whatsapp_rust::wacore::stanza::groups::{
    GroupNotificationAction, GroupParticipantInfo, GroupParticipantType,
};

fn domain(session: &str, name: &str, payload: Value) -> EngineEvent {
    EngineEvent::Domain {
        session: session.to_owned(),
        name: name.to_owned(),
        payload,
    }
}

fn jid_string(j: &whatsapp_rust::Jid) -> String {
    j.to_non_ad().to_string()
}

/// `{lid, jid}` of a person from a primary JID and an alternative one.
fn person(
    primary: &whatsapp_rust::Jid,
    alt: Option<&whatsapp_rust::Jid>,
) -> (Option<String>, Option<String>) {
    let mut lid = None;
    let mut pn = None;
    for j in std::iter::once(primary).chain(alt) {
        if j.is_lid() {
            lid.get_or_insert_with(|| jid_string(j));
        } else if j.is_pn() {
            pn.get_or_insert_with(|| jid_string(j));
        }
    }
    (lid, pn)
}

fn role(t: &Option<GroupParticipantType>) -> &'static str {
    match t {
        Some(GroupParticipantType::Admin) => "admin",
        Some(GroupParticipantType::SuperAdmin) => "superadmin",
        _ => "member",
    }
}

fn participant(p: &GroupParticipantInfo, with_role: bool) -> Value {
    let (lid, jid) = person(&p.jid, p.lid.as_ref().or(p.phone_number.as_ref()));
    let jid = jid.or_else(|| p.phone_number.as_ref().map(jid_string));
    let mut v = json!({"lid": lid, "jid": jid, "tag": p.display_name});
    if with_role {
        v["role"] = json!(role(&p.r#type));
    }
    v
}

pub(super) fn translate(
    session: &Arc<str>,
    event: &Event,
    client: &Arc<Client>,
) -> Vec<EngineEvent> {
    let s = session.to_string();
    match event {
        Event::PairingQrCode(qr) => vec![EngineEvent::Qr {
            session: s,
            code: PairingCode {
                code: qr.code.clone(),
                expires_at: now_ms() + qr.timeout.as_millis() as u64,
            },
        }],
        Event::PairSuccess(p) => {
            let pn = p.id.to_non_ad();
            vec![EngineEvent::Paired {
                session: s,
                account: Account {
                    phone_number: pn.user.to_string(),
                    jid: pn.to_string(),
                    lid: Some(jid_string(&p.lid)),
                    push_name: (!p.business_name.is_empty()).then(|| p.business_name.clone()),
                },
            }]
        }
        Event::PairError(e) => vec![EngineEvent::Connecting {
            session: s,
            reason: Some(format!("pairing failed: {}", e.error)),
        }],
        Event::PairingQrCodesExhausted(_) => vec![EngineEvent::Failed {
            session: s,
            reason: "no QR code was scanned in time; start the session again".into(),
        }],
        Event::QrScannedWithoutMultidevice(_) => vec![EngineEvent::Connecting {
            session: s,
            reason: Some("the phone scanned the code without multi-device support".into()),
        }],
        Event::Connected(_) => vec![EngineEvent::Connected {
            session: s,
            account: account_of(client),
        }],
        Event::Disconnected(d) => vec![EngineEvent::Disconnected {
            session: s,
            reason: format!("disconnected: {}; reconnecting", d.reason),
            retrying: true,
        }],
        Event::LoggedOut(l) => vec![EngineEvent::LoggedOut {
            session: s,
            reason: format!("logged out by WhatsApp ({:?})", l.reason),
        }],
        Event::StreamReplaced(_) => vec![EngineEvent::Failed {
            session: s,
            reason: "stream replaced: another client connected with this session's credentials".into(),
        }],
        Event::TemporaryBan(b) => vec![EngineEvent::Failed {
            session: s,
            reason: format!("temporarily banned by WhatsApp for {:?}", b.expire),
        }],
        Event::ClientOutdated(_) => vec![EngineEvent::Failed {
            session: s,
            reason: "WhatsApp rejected this client version as outdated".into(),
        }],
        Event::ConnectFailure(f) => vec![EngineEvent::Disconnected {
            session: s,
            reason: format!(
                "connection refused by WhatsApp ({:?}{})",
                f.reason,
                f.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
            ),
            retrying: true,
        }],
        Event::ContactUpdate(c) => {
            let a = &c.action;
            let name = a.full_name.clone().or_else(|| a.first_name.clone());
            let mut lid = a.lid_jid.clone();
            let mut pn = a.pn_jid.clone();
            if c.jid.is_lid() {
                lid.get_or_insert_with(|| jid_string(&c.jid));
            } else if c.jid.is_pn() {
                pn.get_or_insert_with(|| jid_string(&c.jid));
            }
            vec![domain(
                &s,
                "contacts.upsert",
                json!({"source": "contact_sync", "contacts": [{"lid": lid, "jid": pn, "name": name}]}),
            )]
        }
        Event::PushNameUpdate(p) => {
            let (lid, jid) = person(&p.jid, p.message.source.sender_alt.as_ref());
            vec![domain(
                &s,
                "contacts.upsert",
                json!({"source": "push_name", "contacts": [{"lid": lid, "jid": jid, "pushName": p.new_push_name}]}),
            )]
        }
        Event::ContactNumberChanged(c) => match &c.new_lid {
            Some(lid) => vec![domain(
                &s,
                "lid.mapping",
                json!({"mappings": [{"lid": jid_string(lid), "jid": jid_string(&c.new_jid)}]}),
            )],
            None => Vec::new(),
        },
        Event::Messages(batch) => batch
            .messages
            .iter()
            .map(|m| {
                let src = &m.info.source;
                let (lid, jid) = person(&src.sender, src.sender_alt.as_ref());
                domain(
                    &s,
                    "message",
                    json!({
                        "id": m.info.id.to_string(),
                        "chat": jid_string(&src.chat),
                        "sender": jid_string(&src.sender),
                        "senderLid": lid,
                        "senderJid": jid,
                        "fromMe": src.is_from_me,
                        "isGroup": src.is_group,
                        "pushName": (!m.info.push_name.is_empty()).then(|| m.info.push_name.clone()),
                        "timestamp": m.info.timestamp.timestamp_millis(),
                        "type": m.info.r#type,
                        "text": m.message.text_content(),
                    }),
                )
            })
            .collect(),
        Event::GroupUpdate(g) => {
            let group = jid_string(&g.group_jid);
            let (action, participants, with_role) = match &g.action {
                GroupNotificationAction::Add { participants, .. } => ("add", participants, true),
                GroupNotificationAction::Remove { participants, .. } => ("remove", participants, false),
                GroupNotificationAction::Promote { participants } => ("promote", participants, false),
                GroupNotificationAction::Demote { participants } => ("demote", participants, false),
                GroupNotificationAction::Modify { participants } => ("modify", participants, false),
                GroupNotificationAction::Subject { subject, .. } => {
                    return vec![domain(&s, "groups.upsert", json!({"groups": [{"jid": group, "subject": subject}]}))];
                }
                _ => return Vec::new(),
            };
            let list: Vec<Value> = participants.iter().map(|p| participant(p, with_role)).collect();
            vec![domain(
                &s,
                "group.participants",
                json!({"group": group, "action": action, "participants": list}),
            )]
        }
        Event::HistorySync(h) => history(&s, h),
        _ => Vec::new(),
    }
}

/// Names, direct chats and LID ↔ phone mappings from a history sync chunk.
fn history(session: &str, h: &whatsapp_rust::types::events::LazyHistorySync) -> Vec<EngineEvent> {
    let Some(sync) = h.get() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mappings: Vec<Value> = sync
        .phone_number_to_lid_mappings
        .iter()
        .filter_map(|m| Some(json!({"lid": m.lid_jid.clone()?, "jid": m.pn_jid.clone()?})))
        .collect();
    if !mappings.is_empty() {
        out.push(domain(
            session,
            "lid.mapping",
            json!({"mappings": mappings}),
        ));
    }
    let pushnames: Vec<Value> = sync
        .pushnames
        .iter()
        .filter_map(|p| {
            let id = p.id.clone()?;
            let is_lid = id.ends_with("@lid");
            Some(json!({
                "lid": is_lid.then(|| id.clone()),
                "jid": (!is_lid).then_some(id),
                "pushName": p.pushname.clone()?,
            }))
        })
        .collect();
    if !pushnames.is_empty() {
        out.push(domain(
            session,
            "contacts.upsert",
            json!({"source": "history", "contacts": pushnames}),
        ));
    }
    let mut chats = Vec::new();
    let mut named = Vec::new();
    for c in &sync.conversations {
        let id = c.id.clone();
        if !(id.ends_with("@s.whatsapp.net") || id.ends_with("@lid")) {
            continue;
        }
        let is_lid = id.ends_with("@lid");
        let lid = if is_lid { Some(id.clone()) } else { None };
        let pn = if is_lid {
            c.pn_jid.clone()
        } else {
            Some(id.clone())
        };
        chats.push(json!({"jid": pn.clone().or_else(|| lid.clone()), "lid": lid}));
        let name = c.name.clone().or_else(|| c.display_name.clone());
        if name.is_some() {
            named.push(json!({"lid": lid, "jid": pn, "name": name}));
        }
    }
    if !chats.is_empty() {
        out.push(domain(session, "chats.upsert", json!({"chats": chats})));
    }
    if !named.is_empty() {
        out.push(domain(
            session,
            "contacts.upsert",
            json!({"source": "history", "contacts": named}),
        ));
    }
    out
}
