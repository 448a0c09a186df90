//! History sync as an account's phone sends it to its linked devices: a `HistorySync`
//! snapshot of what the phone knows (its chats with saved contacts and its groups, the
//! push names in them, and their PN ↔ LID mappings), zlib-compressed, encrypted like media
//! and uploaded to the loopback CDN, announced by a `HISTORY_SYNC_NOTIFICATION` protocol
//! message the phone Signal-encrypts to each device.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::sync::Arc;

use buffa::Message as _;
use wacore::download::MediaType;
use wacore_binary::Jid;
use waproto::whatsapp as wa;

use crate::error::{Result, StandInError};
use crate::registry::{DeviceAddress, Registry};
use crate::server::Shared;

/// The initial-bootstrap snapshot the phone of `account` holds.
pub(crate) fn snapshot(registry: &Registry, account: &str) -> Result<wa::HistorySync> {
    let user = registry
        .user(account)
        .ok_or_else(|| StandInError::UnknownAccount(account.to_owned()))?;
    let mut people = BTreeSet::new();
    let mut conversations = Vec::new();
    for saved in user.address_book.values() {
        let lid = registry.user(&saved.phone).map(|u| u.lid_jid().to_string());
        conversations.push(wa::Conversation {
            id: Jid::pn(saved.phone.as_str()).to_string(),
            name: Some(saved.full_name.clone()),
            lid_jid: lid,
            ..Default::default()
        });
        people.insert(saved.phone.clone());
    }
    for group in registry.groups.values().filter(|g| g.is_member(account)) {
        conversations.push(wa::Conversation {
            id: group.jid().to_string(),
            name: Some(group.subject.clone()),
            ..Default::default()
        });
        people.extend(group.member_pns());
    }
    people.remove(account);
    let known: Vec<_> = people.iter().filter_map(|pn| registry.user(pn)).collect();
    Ok(wa::HistorySync {
        sync_type: wa::history_sync::HistorySyncType::INITIAL_BOOTSTRAP,
        conversations,
        chunk_order: Some(1),
        progress: Some(100),
        pushnames: known
            .iter()
            .filter(|u| !u.push_name.is_empty())
            .map(|u| wa::Pushname {
                id: Some(u.pn_jid().to_string()),
                pushname: Some(u.push_name.clone()),
            })
            .collect(),
        phone_number_to_lid_mappings: known
            .iter()
            .map(|u| wa::PhoneNumberToLIDMapping {
                pn_jid: Some(u.pn_jid().to_string()),
                lid_jid: Some(u.lid_jid().to_string()),
            })
            .collect(),
        ..Default::default()
    })
}

/// The phone of `account` sends its history to every linked device. Returns how many
/// devices it was sent to.
pub(crate) async fn send(shared: &Arc<Shared>, account: &str) -> Result<usize> {
    let (history, devices) = {
        let registry = shared.registry();
        let history = snapshot(&registry, account)?;
        let devices: Vec<u16> = registry
            .user(account)
            .map(|u| u.companions.keys().copied().collect())
            .unwrap_or_default();
        (history, devices)
    };
    if devices.is_empty() {
        return Err(StandInError::NoRecipientDevice(account.to_owned()));
    }
    let mut compressed =
        flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    compressed.write_all(&history.encode_to_vec())?;
    let compressed = compressed.finish()?;
    let media = shared
        .cdn
        .upload_plaintext(&compressed, MediaType::History)?;
    let notification = wa::message::HistorySyncNotification {
        file_sha256: Some(media.file_sha256.to_vec()),
        file_length: Some(media.file_length),
        media_key: Some(media.media_key.to_vec()),
        file_enc_sha256: Some(media.file_enc_sha256.to_vec()),
        direct_path: Some(media.direct_path.clone()),
        sync_type: Some(wa::message::HistorySyncType::INITIAL_BOOTSTRAP),
        chunk_order: Some(1),
        progress: Some(100),
        ..Default::default()
    };
    let message = wa::Message {
        protocol_message: buffa::MessageField::some(wa::message::ProtocolMessage {
            r#type: Some(wa::message::protocol_message::Type::HISTORY_SYNC_NOTIFICATION),
            history_sync_notification: buffa::MessageField::some(notification),
            ..Default::default()
        }),
        ..Default::default()
    };
    for device in &devices {
        let address = DeviceAddress {
            pn: account.to_owned(),
            device: *device,
        };
        crate::messages::send_from_phone(shared, account, &address, &message, "protocol").await?;
    }
    Ok(devices.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Group, ParticipantRole, SavedContact};

    #[test]
    fn the_snapshot_holds_saved_chats_groups_names_and_lid_mappings() {
        let mut registry = Registry::default();
        registry.upsert_user("15550009001", Some("250000000000001"), "Alice");
        registry.upsert_user("15550009002", Some("250000000000002"), "Bob");
        registry.upsert_user("15550009003", Some("250000000000003"), "Carol");
        registry
            .user_mut("15550009001")
            .unwrap()
            .address_book
            .insert(
                "15550009002".to_owned(),
                SavedContact {
                    phone: "15550009002".to_owned(),
                    full_name: "Bob Builder".to_owned(),
                    first_name: None,
                },
            );
        let group = Group::new(
            "120363000000000077".to_owned(),
            "Book club",
            "15550009003",
            1_700_000_000,
            vec![
                ("15550009003".to_owned(), ParticipantRole::SuperAdmin),
                ("15550009001".to_owned(), ParticipantRole::Member),
            ],
            None,
        );
        registry.groups.insert(group.id.clone(), group);
        let history = snapshot(&registry, "15550009001").unwrap();
        let bytes = history.encode_to_vec();
        let parsed = wa::HistorySync::decode_from_slice(&bytes).unwrap();
        let ids: Vec<&str> = parsed.conversations.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["15550009002@s.whatsapp.net", "120363000000000077@g.us"]
        );
        assert_eq!(parsed.conversations[0].name.as_deref(), Some("Bob Builder"));
        assert_eq!(parsed.pushnames.len(), 2);
        assert!(parsed.phone_number_to_lid_mappings.iter().any(|m| {
            m.pn_jid.as_deref() == Some("15550009003@s.whatsapp.net")
                && m.lid_jid.as_deref() == Some("250000000000003@lid")
        }));
    }
}
