//! What simulated contacts write besides text, built the way WhatsApp's apps build them:
//! reactions, edits and revokes (protocol messages naming their target by key), polls and
//! encrypted poll votes (keyed by the poll's message secret), and image / document
//! messages pointing at media the phone uploaded to the loopback CDN.

use wacore_binary::Jid;
use waproto::whatsapp as wa;

use crate::error::{Result, StandInError};
use crate::media::UploadedMedia;
use crate::server::now;

/// A message a new one refers to (the target of a reaction, edit, revoke or vote).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRef {
    /// The target's message id.
    pub id: String,
    /// The phone number of whoever wrote it (an account or a simulated contact).
    pub sender: String,
}

impl MessageRef {
    /// The message `id` written by `sender` (a phone number).
    pub fn new(id: impl Into<String>, sender: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            sender: sender.into(),
        }
    }
}

/// The key of `target` as `author` names it in the chat it shares with `peer`: the peer's
/// JID for a direct chat (`peer` a phone number), the group for a group chat (`peer` a
/// group JID), `from_me` when the author wrote the target, and in groups the target's
/// writer as participant when someone else wrote it.
pub(crate) fn key_for(author: &str, peer: &Jid, target: &MessageRef) -> wa::MessageKey {
    let from_me = target.sender == author;
    let is_group = peer.server == wacore_binary::Server::Group;
    wa::MessageKey {
        remote_jid: Some(peer.to_string()),
        from_me: Some(from_me),
        id: Some(target.id.clone()),
        participant: (is_group && !from_me).then(|| Jid::pn(target.sender.as_str()).to_string()),
    }
}

/// A reaction (`""` removes one).
pub(crate) fn reaction(key: wa::MessageKey, emoji: &str) -> wa::Message {
    wa::Message {
        reaction_message: buffa::MessageField::some(wa::message::ReactionMessage {
            key: buffa::MessageField::some(key),
            text: Some(emoji.to_owned()),
            sender_timestamp_ms: Some(now() * 1000),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `ProtocolMessage` `MESSAGE_EDIT`: the target's new text.
pub(crate) fn edit(key: wa::MessageKey, text: &str) -> wa::Message {
    wa::Message {
        protocol_message: buffa::MessageField::some(wa::message::ProtocolMessage {
            key: buffa::MessageField::some(key),
            r#type: Some(wa::message::protocol_message::Type::MESSAGE_EDIT),
            edited_message: buffa::MessageField::some(wa::Message {
                conversation: Some(text.to_owned()),
                ..Default::default()
            }),
            timestamp_ms: Some(now() * 1000),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `ProtocolMessage` `REVOKE`: delete the target for everyone.
pub(crate) fn revoke(key: wa::MessageKey) -> wa::Message {
    wa::Message {
        protocol_message: buffa::MessageField::some(wa::message::ProtocolMessage {
            key: buffa::MessageField::some(key),
            r#type: Some(wa::message::protocol_message::Type::REVOKE),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A poll, as WhatsApp Web builds it: `pollCreationMessageV3` when one option may be
/// chosen, `pollCreationMessage` otherwise, and a fresh 32-byte message secret voters
/// derive their key from.
pub(crate) fn poll(name: &str, options: &[&str], selectable: u32) -> wa::Message {
    let poll = wa::message::PollCreationMessage {
        name: Some(name.to_owned()),
        options: options
            .iter()
            .map(|option| wa::message::poll_creation_message::Option {
                option_name: Some((*option).to_owned()),
                ..Default::default()
            })
            .collect(),
        selectable_options_count: Some(selectable),
        ..Default::default()
    };
    let mut message = if selectable == 1 {
        wa::Message {
            poll_creation_message_v3: buffa::MessageField::some(poll),
            ..Default::default()
        }
    } else {
        wa::Message {
            poll_creation_message: buffa::MessageField::some(poll),
            ..Default::default()
        }
    };
    message.message_context_info = buffa::MessageField::some(wa::MessageContextInfo {
        message_secret: Some(rand::random::<[u8; 32]>().to_vec()),
        ..Default::default()
    });
    message
}

/// A vote on a poll: the chosen options' hashes, encrypted with a key derived from the
/// poll's message secret, the poll id and both phone-number JIDs (PN addressing).
pub(crate) fn poll_vote(
    key: wa::MessageKey,
    secret: &[u8],
    creator: &str,
    voter: &str,
    options: &[&str],
) -> Result<wa::Message> {
    let poll_id = key.id.clone().unwrap_or_default();
    let hashes: Vec<Vec<u8>> = options
        .iter()
        .map(|o| wacore::poll::compute_option_hash(o).to_vec())
        .collect();
    let (payload, iv) = wacore::poll::encrypt_poll_vote_with_secret(
        &hashes,
        secret,
        &poll_id,
        &Jid::pn(creator).to_string(),
        &Jid::pn(voter).to_string(),
    )
    .map_err(|e| StandInError::protocol(format!("encrypting a poll vote: {e}")))?;
    Ok(wa::Message {
        poll_update_message: buffa::MessageField::some(wa::message::PollUpdateMessage {
            poll_creation_message_key: buffa::MessageField::some(key),
            vote: buffa::MessageField::some(wa::message::PollEncValue {
                enc_payload: Some(payload),
                enc_iv: Some(iv.to_vec()),
            }),
            sender_timestamp_ms: Some(now() * 1000),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// An image message for media the phone uploaded.
pub(crate) fn image(media: &UploadedMedia, mimetype: &str, caption: Option<&str>) -> wa::Message {
    wa::Message {
        image_message: buffa::MessageField::some(wa::message::ImageMessage {
            url: Some(media.url.clone()),
            direct_path: Some(media.direct_path.clone()),
            media_key: Some(media.media_key.to_vec()),
            file_sha256: Some(media.file_sha256.to_vec()),
            file_enc_sha256: Some(media.file_enc_sha256.to_vec()),
            file_length: Some(media.file_length),
            mimetype: Some(mimetype.to_owned()),
            caption: caption.map(str::to_owned),
            media_key_timestamp: Some(now()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A document message for media the phone uploaded.
pub(crate) fn document(media: &UploadedMedia, mimetype: &str, file_name: &str) -> wa::Message {
    wa::Message {
        document_message: buffa::MessageField::some(wa::message::DocumentMessage {
            url: Some(media.url.clone()),
            direct_path: Some(media.direct_path.clone()),
            media_key: Some(media.media_key.to_vec()),
            file_sha256: Some(media.file_sha256.to_vec()),
            file_enc_sha256: Some(media.file_enc_sha256.to_vec()),
            file_length: Some(media.file_length),
            mimetype: Some(mimetype.to_owned()),
            file_name: Some(file_name.to_owned()),
            title: Some(file_name.to_owned()),
            media_key_timestamp: Some(now()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_target_from_the_authors_side() {
        let dm = key_for(
            "15550001",
            &Jid::pn("15550002"),
            &MessageRef::new("A1", "15550002"),
        );
        assert_eq!(dm.from_me, Some(false));
        assert_eq!(dm.remote_jid.as_deref(), Some("15550002@s.whatsapp.net"));
        assert_eq!(dm.participant, None);
        let group = Jid::group("120363000000000009");
        let theirs = key_for("15550001", &group, &MessageRef::new("A2", "15550003"));
        assert_eq!(
            theirs.participant.as_deref(),
            Some("15550003@s.whatsapp.net")
        );
        let own = key_for("15550001", &group, &MessageRef::new("A3", "15550001"));
        assert_eq!((own.from_me, own.participant), (Some(true), None));
    }

    #[test]
    fn poll_votes_open_with_the_clients_decryption() {
        let created = poll("Lunch?", &["Pizza", "Sushi"], 1);
        assert!(created.poll_creation_message_v3.as_option().is_some());
        let secret = created
            .message_context_info
            .as_option()
            .unwrap()
            .message_secret
            .clone()
            .unwrap();
        let key = key_for(
            "15550002",
            &Jid::pn("15550001"),
            &MessageRef::new("P1", "15550001"),
        );
        let vote = poll_vote(key, &secret, "15550001", "15550002", &["Sushi"]).unwrap();
        let update = vote.poll_update_message.as_option().unwrap();
        let enc = update.vote.as_option().unwrap();
        let selected = wacore::poll::decrypt_poll_vote_with_secret(
            wacore::poll::PollVoteCiphertext {
                enc_payload: enc.enc_payload.as_deref().unwrap(),
                enc_iv: enc.enc_iv.as_deref().unwrap(),
            },
            &secret,
            "P1",
            "15550001@s.whatsapp.net",
            "15550002@s.whatsapp.net",
        )
        .unwrap();
        assert_eq!(
            selected,
            vec![wacore::poll::compute_option_hash("Sushi").to_vec()]
        );
    }
}
