//! Messaging through whatsapp-rust: every content kind sent with the id the outbox
//! assigned (`SendOptions::with_message_id`) and answered with the server's ack time,
//! chat states, read receipts, app-state chat actions (archive, pin, mute, delete), and
//! media downloads with a re-upload request to the phone when the CDN no longer has it.
//!
//! The library's send returns once the stanza is written; the server's `<ack>` (or nack)
//! comes later as `Event::ServerAck`. [`Outbound`] listens for those on the client's event
//! bus directly (not through the ordered event mailbox, which plugins may hold up), so a
//! send waits only for WhatsApp.

use super::archive::{Archive, Remembered};
use super::{Inner, content, live_error, wa_jid};
use crate::clock::now_ms;
use crate::engines::{
    ChatSettings, ChatState, EngineError, MediaBlob, MediaBytes, MediaKind, MessageRef,
    OutgoingContent, OutgoingMedia, OutgoingMessage, SendError, SentAck,
};
use gateway_sdk::Jid;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use whatsapp_rust::buffa::MessageField;
use whatsapp_rust::download::{Downloadable, MediaType};
use whatsapp_rust::features::{MediaRetryResult, MediaReuploadError, MediaReuploadRequest};
use whatsapp_rust::send::SendError as WaSendError;
use whatsapp_rust::types::events::{Event, EventHandler, EventInterest, EventKind, ServerAck};
use whatsapp_rust::wacore::proto_helpers::{MessageExt, build_quote_context_with_info};
use whatsapp_rust::wacore_binary::JidExt as _;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{
    ChatStateType, Client, ErrorChainExt, SendOptions, UploadOptions,
    types::message::AddressingMode,
};

/// How long a send waits for the server to acknowledge the message.
const ACK_TIMEOUT: Duration = Duration::from_secs(20);

/// A live session's sending state: the server acks sends are waiting for, and the phone
/// numbers known to be on WhatsApp (asked once per connection, not once per message).
#[derive(Default)]
pub(super) struct Outbound {
    acks: Mutex<HashMap<String, oneshot::Sender<ServerAck>>>,
    registered: Mutex<HashSet<String>>,
}

impl Outbound {
    /// Waits for the server's ack of message `id` (register before sending: the ack can
    /// beat the send's return).
    fn expect_ack(&self, id: &str) -> oneshot::Receiver<ServerAck> {
        let (tx, rx) = oneshot::channel();
        self.acks.lock().expect("lock").insert(id.to_owned(), tx);
        rx
    }

    fn abandon(&self, id: &str) {
        self.acks.lock().expect("lock").remove(id);
    }

    /// Refuses a phone number WhatsApp does not know (`not_on_whatsapp`); LIDs and groups
    /// exist only on WhatsApp, so they are not asked about.
    async fn ensure_on_whatsapp(
        &self,
        client: &Client,
        to: &whatsapp_rust::Jid,
    ) -> Result<(), SendError> {
        if !to.is_pn() {
            return Ok(());
        }
        let user = to.user.to_string();
        if self.registered.lock().expect("lock").contains(&user) {
            return Ok(());
        }
        let answer = client
            .contacts()
            .is_on_whatsapp(&[to.to_non_ad()])
            .await
            .map_err(|e| failure(&e, "rejected"))?;
        if answer.first().is_some_and(|r| r.is_registered) {
            self.registered.lock().expect("lock").insert(user);
            Ok(())
        } else {
            Err(SendError::Permanent {
                code: "not_on_whatsapp",
                message: format!("{} is not on WhatsApp", to.to_non_ad()),
            })
        }
    }
}

/// Hands the server's acks to the sends waiting for them. Runs on the receive path:
/// only a map look-up.
pub(super) struct AckListener(pub(super) Arc<Outbound>);

impl EventHandler for AckListener {
    fn handle_event(&self, event: Arc<Event>) {
        if let Event::ServerAck(ack) = &*event {
            let waiting = self.0.acks.lock().expect("lock").remove(&ack.id);
            if let Some(tx) = waiting {
                let _ = tx.send(ack.clone());
            }
        }
    }

    fn interest(&self) -> EventInterest {
        EventInterest::none().with(EventKind::ServerAck)
    }
}

/// What a failed library call means for the outbox: the connection or a timeout is
/// worth another try, as are WhatsApp's 429 and 5xx; other refusals are final (`code`).
fn failure(e: &(dyn std::error::Error + 'static), code: &'static str) -> SendError {
    if e.is_transport_unavailable() {
        return SendError::Transient(format!("the connection dropped while sending: {e}"));
    }
    if e.is_timeout() {
        return SendError::Transient(format!("WhatsApp did not answer in time: {e}"));
    }
    if let Some(rejection) = e.server_rejection() {
        return if rejection.code == 429 || rejection.code >= 500 {
            SendError::Transient(format!("WhatsApp answered {}: {e}", rejection.code))
        } else {
            SendError::Permanent {
                code,
                message: format!("WhatsApp refused ({}): {e}", rejection.code),
            }
        };
    }
    if let Some(status) = e.http_status() {
        return if status == 429 || status == 408 || status >= 500 {
            SendError::Transient(format!("the media server answered {status}: {e}"))
        } else {
            SendError::Permanent {
                code,
                message: format!("the media server refused ({status}): {e}"),
            }
        };
    }
    if e.store_failure().is_some() {
        return SendError::Transient(format!("the session's store failed: {e}"));
    }
    SendError::Permanent {
        code,
        message: e.to_string(),
    }
}

/// A refused send of the library's: not logged in waits for the connection, a bad
/// request is final, and an internal failure (encryption, device look-ups) is tried again.
fn send_failure(e: WaSendError) -> SendError {
    match &e {
        WaSendError::NotLoggedIn => SendError::NotConnected(e.to_string()),
        WaSendError::InvalidRequest(_) => SendError::Permanent {
            code: "rejected",
            message: e.to_string(),
        },
        WaSendError::Internal(_)
            if !e.is_transport_unavailable()
                && !e.is_timeout()
                && e.server_rejection().is_none() =>
        {
            tracing::warn!(error = %e, "sending failed inside the WhatsApp client");
            SendError::Transient(e.to_string())
        }
        _ => failure(&e, "rejected"),
    }
}

/// A media upload that failed: the CDN's 4xx (or bytes it cannot take) are final
/// (`media_failed`); its 5xx, timeouts and a lost connection are tried again.
fn upload_failure(e: whatsapp_rust::anyhow::Error) -> SendError {
    let cause: &(dyn std::error::Error + 'static) = e.as_ref();
    match failure(cause, "media_failed") {
        SendError::Permanent { message, .. } => SendError::Permanent {
            code: "media_failed",
            message: format!("uploading the media failed: {message}"),
        },
        other => other,
    }
}

fn rejected(message: impl Into<String>) -> SendError {
    SendError::Permanent {
        code: "rejected",
        message: message.into(),
    }
}

fn storage_failure(e: crate::storage::StorageError) -> SendError {
    SendError::Transient(format!("the session's store failed: {e}"))
}

fn parse_jid(raw: &str) -> Result<whatsapp_rust::Jid, SendError> {
    raw.parse()
        .map_err(|e| rejected(format!("{raw} is not a WhatsApp address: {e}")))
}

/// This account's user JID (no device).
fn own_jid(client: &Client) -> Result<whatsapp_rust::Jid, SendError> {
    client
        .pn()
        .map(|p| p.to_non_ad())
        .ok_or_else(|| SendError::NotConnected("the session is not logged in".into()))
}

/// Whether `sender` (a message's author as the outbox names it) is this account.
fn is_own(client: &Client, sender: Option<&str>) -> bool {
    let Some(sender) = sender else {
        return true;
    };
    let Ok(jid) = sender.parse::<whatsapp_rust::Jid>() else {
        return false;
    };
    client.pn().is_some_and(|p| p.is_same_user_as(&jid))
        || client.lid().is_some_and(|l| l.is_same_user_as(&jid))
}

/// The JID this account writes as in a group: its LID where the group is addressed by
/// LID, else its phone JID.
async fn own_jid_in(
    client: &Client,
    chat: &whatsapp_rust::Jid,
) -> Result<whatsapp_rust::Jid, SendError> {
    let pn = own_jid(client)?;
    if !chat.is_group() {
        return Ok(pn);
    }
    let lid_addressed = client
        .groups()
        .query_info(chat)
        .await
        .is_ok_and(|g| g.addressing_mode == AddressingMode::Lid);
    Ok(match client.lid() {
        Some(lid) if lid_addressed => lid.to_non_ad(),
        _ => pn,
    })
}

/// The key of a message the outbox names: whose it is, and in a group who wrote it.
fn key_of(client: &Client, target: &MessageRef) -> wa::MessageKey {
    let from_me = is_own(client, target.sender.as_deref());
    let in_group = target.chat.ends_with("@g.us");
    wa::MessageKey {
        remote_jid: Some(target.chat.clone()),
        from_me: Some(from_me),
        id: Some(target.id.clone()),
        participant: (!from_me && in_group)
            .then(|| target.sender.clone())
            .flatten(),
    }
}

fn media_type(kind: MediaKind) -> MediaType {
    match kind {
        MediaKind::Image => MediaType::Image,
        MediaKind::Video => MediaType::Video,
        MediaKind::Audio => MediaType::Audio,
        MediaKind::Document => MediaType::Document,
        MediaKind::Sticker => MediaType::Sticker,
    }
}

/// Uploads new media and builds its message, or reuses the descriptor of a message
/// already on WhatsApp (forward by reference: no download, no upload).
async fn media_message(
    client: &Client,
    archive: &Archive,
    media: &OutgoingMedia,
) -> Result<wa::Message, SendError> {
    let data = match &media.bytes {
        MediaBytes::Message(source) => return forwarded_media(archive, source, media),
        MediaBytes::Data(d) => d,
    };
    let up = client
        .upload(
            data.to_vec(),
            media_type(media.kind),
            UploadOptions::default(),
        )
        .await
        .map_err(upload_failure)?;
    let mimetype = Some(media.mimetype.clone());
    let caption = media.caption.clone().filter(|c| !c.is_empty());
    let mut message = wa::Message::default();
    match media.kind {
        MediaKind::Image => {
            message.image_message = MessageField::some(wa::message::ImageMessage {
                url: Some(up.url),
                mimetype,
                caption,
                file_sha256: Some(up.file_sha256.to_vec()),
                file_length: Some(up.file_length),
                media_key: Some(up.media_key.to_vec()),
                file_enc_sha256: Some(up.file_enc_sha256.to_vec()),
                direct_path: Some(up.direct_path),
                media_key_timestamp: Some(up.media_key_timestamp),
                ..Default::default()
            })
        }
        MediaKind::Video => {
            message.video_message = MessageField::some(wa::message::VideoMessage {
                url: Some(up.url),
                mimetype,
                caption,
                file_sha256: Some(up.file_sha256.to_vec()),
                file_length: Some(up.file_length),
                media_key: Some(up.media_key.to_vec()),
                file_enc_sha256: Some(up.file_enc_sha256.to_vec()),
                direct_path: Some(up.direct_path),
                media_key_timestamp: Some(up.media_key_timestamp),
                streaming_sidecar: up.streaming_sidecar,
                ..Default::default()
            })
        }
        MediaKind::Audio => {
            message.audio_message = MessageField::some(wa::message::AudioMessage {
                url: Some(up.url),
                mimetype,
                ptt: Some(media.voice_note),
                file_sha256: Some(up.file_sha256.to_vec()),
                file_length: Some(up.file_length),
                media_key: Some(up.media_key.to_vec()),
                file_enc_sha256: Some(up.file_enc_sha256.to_vec()),
                direct_path: Some(up.direct_path),
                media_key_timestamp: Some(up.media_key_timestamp),
                streaming_sidecar: up.streaming_sidecar,
                ..Default::default()
            })
        }
        MediaKind::Document => {
            message.document_message = MessageField::some(wa::message::DocumentMessage {
                url: Some(up.url),
                mimetype,
                title: media.file_name.clone(),
                file_name: media.file_name.clone(),
                caption,
                file_sha256: Some(up.file_sha256.to_vec()),
                file_length: Some(up.file_length),
                media_key: Some(up.media_key.to_vec()),
                file_enc_sha256: Some(up.file_enc_sha256.to_vec()),
                direct_path: Some(up.direct_path),
                media_key_timestamp: Some(up.media_key_timestamp),
                ..Default::default()
            })
        }
        MediaKind::Sticker => {
            message.sticker_message = MessageField::some(wa::message::StickerMessage {
                url: Some(up.url),
                mimetype,
                file_sha256: Some(up.file_sha256.to_vec()),
                file_length: Some(up.file_length),
                media_key: Some(up.media_key.to_vec()),
                file_enc_sha256: Some(up.file_enc_sha256.to_vec()),
                direct_path: Some(up.direct_path),
                media_key_timestamp: Some(up.media_key_timestamp),
                ..Default::default()
            })
        }
    }
    Ok(message)
}

/// The media of a message already on WhatsApp, from its stored descriptor, with the
/// caption the outbox gives it.
fn forwarded_media(
    archive: &Archive,
    source: &MessageRef,
    media: &OutgoingMedia,
) -> Result<wa::Message, SendError> {
    let descriptor = archive
        .media(&source.chat, &source.id)
        .map_err(storage_failure)?
        .ok_or_else(|| SendError::Permanent {
            code: "media_failed",
            message: format!(
                "message {} has no media this session knows of (never seen, or revoked)",
                source.id
            ),
        })?;
    let mut message = descriptor
        .message
        .into_option()
        .ok_or_else(|| SendError::Permanent {
            code: "media_failed",
            message: format!("the descriptor of message {} is empty", source.id),
        })?;
    if let Some(caption) = media.caption.clone().filter(|c| !c.is_empty()) {
        if let Some(m) = message.image_message.as_option_mut() {
            m.caption = Some(caption);
        } else if let Some(m) = message.video_message.as_option_mut() {
            m.caption = Some(caption);
        } else if let Some(m) = message.document_message.as_option_mut() {
            m.caption = Some(caption);
        }
    }
    Ok(message)
}

fn poll_message(name: &str, options: &[String], selectable_count: u32) -> wa::Message {
    let poll = wa::message::PollCreationMessage {
        name: Some(name.to_owned()),
        options: options
            .iter()
            .map(|o| wa::message::poll_creation_message::Option {
                option_name: Some(o.clone()),
                option_hash: None,
            })
            .collect(),
        selectable_options_count: Some(selectable_count),
        poll_content_type: Some(wa::message::PollContentType::TEXT),
        ..Default::default()
    };
    // Single choice is the v3 body, several the original one (WhatsApp Web's choice);
    // the secret lets voters encrypt their votes for everyone in the chat.
    let mut message = wa::Message::default();
    if selectable_count == 1 {
        message.poll_creation_message_v3 = MessageField::some(poll);
    } else {
        message.poll_creation_message = MessageField::some(poll);
    }
    message.message_context_info = MessageField::some(wa::MessageContextInfo {
        message_secret: Some(rand::random::<[u8; 32]>().to_vec()),
        ..Default::default()
    });
    message
}

/// The edit of one of this account's messages (`protocolMessage` `MESSAGE_EDIT`).
async fn edit_message(
    client: &Client,
    target: &MessageRef,
    text: &str,
) -> Result<wa::Message, SendError> {
    if !is_own(client, target.sender.as_deref()) {
        return Err(rejected("only this account's own messages can be edited"));
    }
    let chat = parse_jid(&target.chat)?;
    let participant = if chat.is_group() {
        Some(own_jid_in(client, &chat).await?.to_string())
    } else {
        None
    };
    Ok(wa::Message {
        protocol_message: MessageField::some(wa::message::ProtocolMessage {
            key: MessageField::some(wa::MessageKey {
                remote_jid: Some(target.chat.clone()),
                from_me: Some(true),
                id: Some(target.id.clone()),
                participant,
            }),
            r#type: Some(wa::message::protocol_message::Type::MESSAGE_EDIT),
            edited_message: MessageField::some(wa::Message {
                conversation: Some(text.to_owned()),
                ..Default::default()
            }),
            timestamp_ms: Some(now_ms() as i64),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Deleting a message for everyone: its author's revoke, or a group admin's of someone
/// else's message (the key names that author; WhatsApp checks the admin right).
fn revoke_message(client: &Client, target: &MessageRef) -> Result<wa::Message, SendError> {
    let own = is_own(client, target.sender.as_deref());
    let in_group = target.chat.ends_with("@g.us");
    if !own && !in_group {
        return Err(rejected(
            "only the author can delete a direct message for everyone",
        ));
    }
    let participant = if own {
        None
    } else {
        let author = parse_jid(target.sender.as_deref().unwrap_or_default())?;
        Some(author.to_non_ad().to_string())
    };
    Ok(wa::Message {
        protocol_message: MessageField::some(wa::message::ProtocolMessage {
            key: MessageField::some(wa::MessageKey {
                remote_jid: Some(target.chat.clone()),
                from_me: Some(own),
                id: Some(target.id.clone()),
                participant,
            }),
            r#type: Some(wa::message::protocol_message::Type::REVOKE),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// A vote for `options` (by name; `[]` withdraws it) on a poll this session has seen,
/// encrypted with the poll's secret for its creator and this account.
async fn vote_message(
    client: &Client,
    archive: &Archive,
    target: &MessageRef,
    options: &[String],
) -> Result<wa::Message, SendError> {
    let poll = archive
        .recent(&target.chat, &target.id)
        .map_err(storage_failure)?
        .ok_or_else(|| {
            rejected(format!(
                "poll {} is not known to this session (not seen, or older than it keeps)",
                target.id
            ))
        })?;
    let body = poll.message.as_option().cloned().unwrap_or_default();
    let definition = content::poll_of(&body)
        .ok_or_else(|| rejected(format!("message {} is not a poll", target.id)))?;
    let names: Vec<&str> = definition
        .options
        .iter()
        .filter_map(|o| o.option_name.as_deref())
        .collect();
    if let Some(unknown) = options.iter().find(|o| !names.contains(&o.as_str())) {
        return Err(rejected(format!("the poll has no option {unknown:?}")));
    }
    let secret = body
        .message_context_info
        .as_option()
        .and_then(|c| c.message_secret.clone())
        .ok_or_else(|| rejected(format!("poll {} came without its secret", target.id)))?;
    let key = poll.key.as_option().cloned().unwrap_or_default();
    let creator: whatsapp_rust::Jid = match key.participant.as_deref() {
        Some(p) => parse_jid(p)?,
        None => own_jid(client)?,
    };
    let creator_is_me = key.from_me.unwrap_or(false);
    let voter = if creator.is_lid() {
        client
            .lid()
            .map(|l| l.to_non_ad())
            .map_or_else(|| own_jid(client), Ok)?
    } else {
        own_jid(client)?
    };
    let hashes: Vec<Vec<u8>> = options
        .iter()
        .map(|o| whatsapp_rust::wacore::poll::compute_option_hash(o).to_vec())
        .collect();
    let (payload, iv) = whatsapp_rust::wacore::poll::encrypt_poll_vote_with_secret(
        &hashes,
        &secret,
        &target.id,
        &creator.to_non_ad().to_string(),
        &voter.to_string(),
    )
    .map_err(|e| rejected(format!("encrypting the vote failed: {e}")))?;
    let in_group = target.chat.ends_with("@g.us");
    Ok(wa::Message {
        poll_update_message: MessageField::some(wa::message::PollUpdateMessage {
            poll_creation_message_key: MessageField::some(wa::MessageKey {
                remote_jid: Some(target.chat.clone()),
                from_me: Some(creator_is_me),
                id: Some(target.id.clone()),
                participant: in_group.then(|| creator.to_non_ad().to_string()),
            }),
            vote: MessageField::some(wa::message::PollEncValue {
                enc_payload: Some(payload),
                enc_iv: Some(iv.to_vec()),
            }),
            metadata: MessageField::none(),
            sender_timestamp_ms: Some(now_ms() as i64),
        }),
        ..Default::default()
    })
}

/// The quote, mentions and forwarding mark of a readable message. A quoted message
/// this session still has is embedded (WhatsApp shows it in the reply bubble); one it
/// no longer has is named by id and author only.
async fn context(
    client: &Client,
    archive: &Archive,
    to: &whatsapp_rust::Jid,
    m: &OutgoingMessage,
) -> Result<Option<wa::ContextInfo>, SendError> {
    let mut ctx = match &m.reply_to {
        Some(r) => {
            let quoted_chat = parse_jid(&r.chat)?;
            let kept = archive.recent(&r.chat, &r.id).map_err(storage_failure)?;
            let author = match kept
                .as_ref()
                .and_then(|k| k.key.as_option())
                .and_then(|k| k.participant.clone())
                .or_else(|| r.sender.clone())
            {
                Some(a) => parse_jid(&a)?,
                None => own_jid_in(client, to).await?,
            };
            match kept.and_then(|k| k.message.into_option()) {
                Some(quoted) => {
                    build_quote_context_with_info(&r.id, &author, &quoted_chat, to, &quoted)
                }
                None => wa::ContextInfo {
                    stanza_id: Some(r.id.clone()),
                    participant: Some(author.to_string()),
                    remote_jid: (!quoted_chat.is_same_chat_as(to))
                        .then(|| quoted_chat.to_non_ad().to_string()),
                    ..Default::default()
                },
            }
        }
        None => wa::ContextInfo::default(),
    };
    ctx.mentioned_jid = m.mentions.clone();
    if m.forwarded {
        ctx.is_forwarded = Some(true);
        ctx.forwarding_score = Some(1);
    }
    Ok((ctx != wa::ContextInfo::default()).then_some(ctx))
}

/// The message to put on the wire for the outbox's item.
async fn compose(
    client: &Client,
    archive: &Archive,
    to: &whatsapp_rust::Jid,
    m: &OutgoingMessage,
) -> Result<wa::Message, SendError> {
    let mut body = match &m.content {
        OutgoingContent::Text(text) => wa::Message {
            conversation: Some(text.clone()),
            ..Default::default()
        },
        OutgoingContent::Media(media) => media_message(client, archive, media).await?,
        OutgoingContent::Location {
            latitude,
            longitude,
            name,
            address,
        } => wa::Message {
            location_message: MessageField::some(wa::message::LocationMessage {
                degrees_latitude: Some(*latitude),
                degrees_longitude: Some(*longitude),
                name: name.clone(),
                address: address.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        OutgoingContent::Contact { name, vcard } => wa::Message {
            contact_message: MessageField::some(wa::message::ContactMessage {
                display_name: Some(name.clone()),
                vcard: Some(vcard.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
        OutgoingContent::Poll {
            name,
            options,
            selectable_count,
        } => poll_message(name, options, *selectable_count),
        OutgoingContent::Reaction { target, emoji } => {
            return Ok(
                whatsapp_rust::wacore::proto_helpers::build_reaction_message(
                    key_of(client, target),
                    emoji.as_str(),
                    now_ms() as i64,
                ),
            );
        }
        OutgoingContent::Edit { target, text } => return edit_message(client, target, text).await,
        OutgoingContent::Revoke { target } => return revoke_message(client, target),
        OutgoingContent::Vote { target, options } => {
            return vote_message(client, archive, target, options).await;
        }
    };
    if let Some(ctx) = context(client, archive, to, m).await? {
        body.set_context_info(ctx);
    }
    Ok(body)
}

/// Sends the outbox's message with its id and waits for the server's ack.
pub(super) async fn send(
    engine: &Arc<Inner>,
    session: &str,
    message: &OutgoingMessage,
) -> Result<SentAck, SendError> {
    let (client, outbound) = engine
        .live(session)
        .map_err(|e| SendError::NotConnected(e.to_string()))?;
    let archive = engine.archive(session);
    let to = parse_jid(&message.to)?.to_non_ad();
    outbound.ensure_on_whatsapp(&client, &to).await?;
    let body = compose(&client, &archive, &to, message).await?;
    let acked = outbound.expect_ack(&message.id);
    let sent = client
        .send_message_with_options(
            to.clone(),
            body.clone(),
            SendOptions::default().with_message_id(message.id.clone()),
        )
        .await;
    if let Err(e) = sent {
        outbound.abandon(&message.id);
        return Err(send_failure(e));
    }
    let ack = match tokio::time::timeout(ACK_TIMEOUT, acked).await {
        Ok(Ok(ack)) => ack,
        Ok(Err(_)) | Err(_) => {
            outbound.abandon(&message.id);
            return Err(SendError::Transient(
                "WhatsApp did not acknowledge the message in time".into(),
            ));
        }
    };
    if let Some(code) = &ack.error {
        let n: u16 = code.parse().unwrap_or(0);
        return Err(if n == 429 || n >= 500 {
            SendError::Transient(format!("WhatsApp answered {code}"))
        } else {
            rejected(format!("WhatsApp refused the message (error {code})"))
        });
    }
    let timestamp = ack
        .timestamp
        .map(|t| t.timestamp_millis().max(0) as u64)
        .unwrap_or_else(now_ms);
    remember_sent(&client, &archive, &to, message, body, timestamp).await;
    Ok(SentAck { timestamp })
}

/// Keeps a copy of a sent message (to quote it, vote on it, download or forward its
/// media), or forgets the target of a revoke. Best effort: the message is sent either way.
async fn remember_sent(
    client: &Client,
    archive: &Archive,
    to: &whatsapp_rust::Jid,
    message: &OutgoingMessage,
    body: wa::Message,
    at: u64,
) {
    let archive = archive.clone();
    let write = match &message.content {
        OutgoingContent::Revoke { target } => {
            let (chat, id) = (target.chat.clone(), target.id.clone());
            tokio::task::spawn_blocking(move || archive.forget(&chat, &id)).await
        }
        OutgoingContent::Reaction { .. }
        | OutgoingContent::Edit { .. }
        | OutgoingContent::Vote { .. } => return,
        _ => {
            let author = own_jid_in(client, to).await.ok();
            let info = wa::WebMessageInfo {
                key: MessageField::some(wa::MessageKey {
                    remote_jid: Some(to.to_string()),
                    from_me: Some(true),
                    id: Some(message.id.clone()),
                    participant: author.map(|a| a.to_string()),
                }),
                message: MessageField::some(body),
                message_timestamp: Some(at / 1000),
                ..Default::default()
            };
            tokio::task::spawn_blocking(move || {
                archive.remember(&[Remembered {
                    info,
                    seen_at: at as i64,
                }])
            })
            .await
        }
    };
    match write {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot keep a copy of a sent message"),
        Err(e) => tracing::warn!(error = %e, "cannot keep a copy of a sent message"),
    }
}

pub(super) async fn chat_state(
    client: &Arc<Client>,
    chat: &Jid,
    state: ChatState,
) -> Result<(), EngineError> {
    let to = wa_jid(chat)?;
    let kind = match state {
        ChatState::Composing => ChatStateType::Composing,
        ChatState::Recording => ChatStateType::Recording,
        ChatState::Paused => ChatStateType::Paused,
    };
    client.chatstate().send(&to, kind).await.map_err(live_error)
}

/// Read receipts for others' messages: one per author in a group (the receipt names
/// them), one for the chat in a direct chat. This account's own messages need none.
pub(super) async fn mark_read(
    client: &Arc<Client>,
    chat: &Jid,
    messages: &[MessageRef],
) -> Result<(), EngineError> {
    let to = wa_jid(chat)?;
    let mut by_author: Vec<(Option<whatsapp_rust::Jid>, Vec<&str>)> = Vec::new();
    for m in messages {
        if is_own(client, m.sender.as_deref()) {
            continue;
        }
        let author = if to.is_group() {
            let raw = m.sender.as_deref().unwrap_or_default();
            Some(
                raw.parse::<whatsapp_rust::Jid>()
                    .map_err(|e| EngineError::Invalid(format!("{raw}: {e}")))?,
            )
        } else {
            None
        };
        match by_author.iter_mut().find(|(a, _)| *a == author) {
            Some((_, ids)) => ids.push(&m.id),
            None => by_author.push((author, vec![&m.id])),
        }
    }
    for (author, ids) in by_author {
        client
            .mark_as_read(&to, author.as_ref(), &ids)
            .await
            .map_err(|e| {
                let cause: &(dyn std::error::Error + 'static) = e.as_ref();
                if cause.is_transport_unavailable() {
                    EngineError::NotConnected(e.to_string())
                } else {
                    EngineError::Failed(e.to_string())
                }
            })?;
    }
    Ok(())
}

fn app_state_error(e: whatsapp_rust::AppStateError) -> EngineError {
    match e {
        whatsapp_rust::AppStateError::InvalidRequest(m) => EngineError::Invalid(m),
        other => live_error(other),
    }
}

/// Archives, pins or mutes the chat on WhatsApp (app-state mutations the phone syncs).
pub(super) async fn apply_chat_settings(
    client: &Arc<Client>,
    chat: &Jid,
    settings: ChatSettings,
) -> Result<(), EngineError> {
    let jid = wa_jid(chat)?;
    let actions = client.chat_actions();
    match settings.archived {
        Some(true) => actions.archive_chat(&jid, None).await,
        Some(false) => actions.unarchive_chat(&jid, None).await,
        None => Ok(()),
    }
    .map_err(app_state_error)?;
    match settings.pinned {
        Some(true) => actions.pin_chat(&jid).await,
        Some(false) => actions.unpin_chat(&jid).await,
        None => Ok(()),
    }
    .map_err(app_state_error)?;
    match settings.muted_until {
        Some(0) => actions.unmute_chat(&jid).await,
        Some(-1) => actions.mute_chat(&jid).await,
        Some(until) if until > 0 => actions.mute_chat_until(&jid, until).await,
        Some(other) => {
            return Err(EngineError::Invalid(format!(
                "mutedUntil must be 0, -1 or a future time, not {other}"
            )));
        }
        None => Ok(()),
    }
    .map_err(app_state_error)
}

pub(super) async fn delete_chat(client: &Arc<Client>, chat: &Jid) -> Result<(), EngineError> {
    let jid = wa_jid(chat)?;
    client
        .chat_actions()
        .delete_chat(&jid, false, None)
        .await
        .map_err(app_state_error)
}

/// Downloads a descriptor's media from the CDN.
async fn fetch(client: &Client, media: &wa::Message) -> whatsapp_rust::anyhow::Result<Vec<u8>> {
    let source: &dyn Downloadable = if let Some(m) = media.image_message.as_option() {
        m
    } else if let Some(m) = media.video_message.as_option() {
        m
    } else if let Some(m) = media.audio_message.as_option() {
        m
    } else if let Some(m) = media.document_message.as_option() {
        m
    } else if let Some(m) = media.sticker_message.as_option() {
        m
    } else {
        whatsapp_rust::anyhow::bail!("the descriptor names no media")
    };
    client.download(source).await
}

/// Points a descriptor's media at the path the phone uploaded it to again.
fn moved(media: &mut wa::Message, direct_path: String) {
    let path = Some(direct_path);
    if let Some(m) = media.image_message.as_option_mut() {
        m.direct_path = path;
    } else if let Some(m) = media.video_message.as_option_mut() {
        m.direct_path = path;
    } else if let Some(m) = media.audio_message.as_option_mut() {
        m.direct_path = path;
    } else if let Some(m) = media.document_message.as_option_mut() {
        m.direct_path = path;
    } else if let Some(m) = media.sticker_message.as_option_mut() {
        m.direct_path = path;
    }
}

fn media_key(media: &wa::Message) -> Option<Vec<u8>> {
    media
        .image_message
        .as_option()
        .and_then(|m| m.media_key.clone())
        .or_else(|| {
            media
                .video_message
                .as_option()
                .and_then(|m| m.media_key.clone())
        })
        .or_else(|| {
            media
                .audio_message
                .as_option()
                .and_then(|m| m.media_key.clone())
        })
        .or_else(|| {
            media
                .document_message
                .as_option()
                .and_then(|m| m.media_key.clone())
        })
        .or_else(|| {
            media
                .sticker_message
                .as_option()
                .and_then(|m| m.media_key.clone())
        })
}

/// Whether the CDN says the media is no longer there.
fn gone(e: &whatsapp_rust::anyhow::Error) -> bool {
    let cause: &(dyn std::error::Error + 'static) = e.as_ref();
    matches!(cause.http_status(), Some(404 | 410))
}

fn download_error(e: whatsapp_rust::anyhow::Error) -> EngineError {
    let cause: &(dyn std::error::Error + 'static) = e.as_ref();
    if cause.is_transport_unavailable() {
        EngineError::NotConnected(e.to_string())
    } else {
        EngineError::Failed(format!("downloading the media failed: {e:#}"))
    }
}

/// The media of a message this session received or sent. When the CDN no longer has
/// it, the phone that holds the media key is asked to upload it again (media retry);
/// `NotFound` when there is no media or it stays gone.
pub(super) async fn download(
    engine: &Arc<Inner>,
    session: &str,
    message: &MessageRef,
) -> Result<MediaBlob, EngineError> {
    let client = engine.client(session)?;
    let archive = engine.archive(session);
    let no_media = || EngineError::NotFound(format!("message {} has no media", message.id));
    let mut descriptor = archive
        .media(&message.chat, &message.id)
        .map_err(|e| EngineError::Failed(e.to_string()))?
        .ok_or_else(no_media)?;
    let mut media = descriptor
        .message
        .as_option()
        .cloned()
        .ok_or_else(no_media)?;
    let (mimetype, file_name) = content::media_file(&media);
    let blob = |bytes: Vec<u8>| MediaBlob {
        bytes: Arc::new(bytes),
        mimetype: mimetype
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into()),
        file_name: file_name.clone(),
    };
    let first = fetch(&client, &media).await;
    let err = match first {
        Ok(bytes) => return Ok(blob(bytes)),
        Err(e) if gone(&e) => e,
        Err(e) => return Err(download_error(e)),
    };
    tracing::info!(session, id = %message.id, error = %err, "media gone from the CDN; asking the phone to upload it again");
    let key = descriptor.key.as_option().cloned().unwrap_or_default();
    let chat: whatsapp_rust::Jid = message
        .chat
        .parse()
        .map_err(|e| EngineError::Invalid(format!("{}: {e}", message.chat)))?;
    let participant: Option<whatsapp_rust::Jid> = if chat.is_group() {
        key.participant.as_deref().and_then(|p| p.parse().ok())
    } else {
        None
    };
    let media_key = media_key(&media).ok_or_else(no_media)?;
    let retry = client
        .media_reupload()
        .request(&MediaReuploadRequest {
            msg_id: &message.id,
            chat_jid: &chat,
            media_key: &media_key,
            is_from_me: key.from_me.unwrap_or(false),
            participant: participant.as_ref(),
        })
        .await;
    let gone_for_good = || {
        EngineError::NotFound(format!(
            "the media of message {} is gone from WhatsApp's servers and the phone did not upload it again",
            message.id
        ))
    };
    let direct_path = match retry {
        Ok(MediaRetryResult::Success { direct_path }) => direct_path,
        Ok(_) | Err(MediaReuploadError::Timeout) => return Err(gone_for_good()),
        Err(e) => return Err(live_error(e)),
    };
    moved(&mut media, direct_path);
    descriptor.message = MessageField::some(media.clone());
    let kept = archive.clone();
    let stored = tokio::task::spawn_blocking(move || kept.replace_media(&descriptor)).await;
    if !matches!(stored, Ok(Ok(()))) {
        tracing::warn!(session, id = %message.id, "cannot keep the media's new path");
    }
    match fetch(&client, &media).await {
        Ok(bytes) => Ok(blob(bytes)),
        Err(e) if gone(&e) => Err(gone_for_good()),
        Err(e) => Err(download_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_carry_a_secret_and_pick_their_version_by_choice_count() {
        let single = poll_message("Lunch?", &["Yes".into(), "No".into()], 1);
        assert!(single.poll_creation_message_v3.is_set());
        let secret = single
            .message_context_info
            .as_option()
            .and_then(|c| c.message_secret.clone())
            .unwrap();
        assert_eq!(secret.len(), 32);
        let any = poll_message("Toppings", &["A".into(), "B".into(), "C".into()], 0);
        let p = any.poll_creation_message.as_option().unwrap();
        assert_eq!(p.selectable_options_count, Some(0));
        assert_eq!(p.options.len(), 3);
    }

    #[test]
    fn refusals_map_to_the_outbox_codes() {
        assert!(matches!(
            send_failure(WaSendError::NotLoggedIn),
            SendError::NotConnected(_)
        ));
        assert!(matches!(
            send_failure(WaSendError::InvalidRequest("bad".into())),
            SendError::Permanent {
                code: "rejected",
                ..
            }
        ));
        let refused = whatsapp_rust::IqError::ServerError {
            code: 403,
            text: "forbidden".into(),
            error_type: None,
            backoff: None,
        };
        assert!(matches!(
            send_failure(WaSendError::Iq(refused)),
            SendError::Permanent {
                code: "rejected",
                ..
            }
        ));
        let busy = whatsapp_rust::IqError::ServerError {
            code: 503,
            text: "busy".into(),
            error_type: None,
            backoff: None,
        };
        assert!(matches!(
            send_failure(WaSendError::Iq(busy)),
            SendError::Transient(_)
        ));
        assert!(matches!(
            send_failure(WaSendError::Internal(whatsapp_rust::anyhow::anyhow!(
                "glitch"
            ))),
            SendError::Transient(_)
        ));
    }
}
