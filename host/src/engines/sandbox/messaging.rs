//! Messaging in the sandbox: sends are acknowledged by the simulated server, delivered and
//! read receipts follow after the configured delays, contacts marked `autoReply` answer,
//! media sent or injected can be downloaded again, and the control API can make sends
//! fail (transiently or for good) so a client's retry and failure paths are testable.

use super::*;
use crate::engines::{
    MediaBlob, MediaBytes, MessageRef, OutgoingContent, OutgoingMessage, Receipt, ReceiptKind,
    SendError, SentAck,
};
use base64::Engine as _;

const MEDIA_PREFIX: &str = "media/";
/// What reached the simulated server, one row per message id (`wire/<id>`).
const WIRE_PREFIX: &str = "wire/";

/// One message as the simulated server received it: the control API's view of "the wire".
/// WhatsApp drops a resend of an id it already has; so does the sandbox, counting it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireMessage {
    pub id: String,
    pub to: String,
    /// `text`, `image`, `reaction`, `edit`, … as the outbox handed it over.
    pub kind: String,
    /// The text or caption, if any.
    pub text: Option<String>,
    /// When the server first took it (ms) and a tie-breaker for the order of arrival.
    pub received_at: u64,
    pub seq: u64,
    /// How many times this id was transmitted (1 unless resent; resends are dropped).
    pub transmissions: u32,
}

fn wire_kind(content: &OutgoingContent) -> (&'static str, Option<String>) {
    match content {
        OutgoingContent::Text(t) => ("text", Some(t.clone())),
        OutgoingContent::Media(m) => (m.kind.as_str(), m.caption.clone()),
        OutgoingContent::Location { .. } => ("location", None),
        OutgoingContent::Contact { .. } => ("contact", None),
        OutgoingContent::Poll { name, .. } => ("poll", Some(name.clone())),
        OutgoingContent::Reaction { emoji, .. } => ("reaction", Some(emoji.clone())),
        OutgoingContent::Edit { text, .. } => ("edit", Some(text.clone())),
        OutgoingContent::Revoke { .. } => ("revoke", None),
        OutgoingContent::Vote { .. } => ("vote", None),
    }
}

/// How the simulated server treats sends (control API).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SendFailure {
    /// Sends go through.
    #[default]
    None,
    /// The server errs (5xx): the outbox retries.
    Transient,
    /// The server refuses for good.
    Permanent,
}

/// A stored copy of a message's media, for downloads.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredBlob {
    mimetype: String,
    file_name: Option<String>,
    data: String,
}

fn media_key(chat: &str, id: &str) -> Vec<u8> {
    format!("{MEDIA_PREFIX}{chat}\0{id}").into_bytes()
}

impl SandboxEngine {
    /// Sets how sends fail from now on.
    pub fn set_send_failure(
        &self,
        session: &str,
        failure: SendFailure,
    ) -> Result<(), ControlError> {
        if self.running_generation(session).is_none() {
            return Err(ControlError::Conflict("session is not running".into()));
        }
        self.send_failures
            .lock()
            .expect("lock")
            .insert(session.to_owned(), failure);
        Ok(())
    }

    /// Who a chat is: a world contact, a world group, or nobody WhatsApp knows.
    fn recipient(&self, chat: &str) -> Result<Recipient, SendError> {
        let jid = Jid::parse(chat).map_err(|e| SendError::Permanent {
            code: "rejected",
            message: e.to_string(),
        })?;
        if jid.is_group() {
            let g = self
                .world
                .world
                .groups
                .iter()
                .find(|g| g.jid == jid.to_string())
                .ok_or_else(|| SendError::Permanent {
                    code: "rejected",
                    message: format!("{jid}: no such group"),
                })?;
            return Ok(Recipient::Group(
                g.participants.iter().map(|p| p.lid.clone()).collect(),
            ));
        }
        match self.world.contact(&jid) {
            Some(c) => Ok(Recipient::Contact(c.clone())),
            None => Err(SendError::Permanent {
                code: "not_on_whatsapp",
                message: format!("{jid} is not on WhatsApp"),
            }),
        }
    }

    pub(super) async fn send(
        self: &Arc<Self>,
        session: &str,
        message: &OutgoingMessage,
    ) -> Result<SentAck, SendError> {
        self.live(session)
            .map_err(|e| SendError::NotConnected(e.to_string()))?;
        let failure = self
            .send_failures
            .lock()
            .expect("lock")
            .get(session)
            .copied()
            .unwrap_or_default();
        match failure {
            SendFailure::None => {}
            SendFailure::Transient => {
                return Err(SendError::Transient(
                    "the server answered 503 (sandbox)".into(),
                ));
            }
            SendFailure::Permanent => {
                return Err(SendError::Permanent {
                    code: "rejected",
                    message: "the server refused the message (sandbox)".into(),
                });
            }
        }
        let recipient = self.recipient(&message.to)?;
        if let OutgoingContent::Media(m) = &message.content {
            let (data, mimetype) = match &m.bytes {
                MediaBytes::Data(d) => (d.clone(), m.mimetype.clone()),
                MediaBytes::Message(r) => {
                    let blob = self
                        .media_blob(session, r)
                        .map_err(|_| SendError::Permanent {
                            code: "media_failed",
                            message: format!("no media stored for message {}", r.id),
                        })?;
                    (blob.bytes, blob.mimetype)
                }
            };
            let stored = StoredBlob {
                mimetype,
                file_name: m.file_name.clone(),
                data: base64::engine::general_purpose::STANDARD.encode(data.as_slice()),
            };
            let value = serde_json::to_vec(&stored).expect("serialises");
            self.write(
                Self::scope(session),
                vec![(media_key(&message.to, &message.id), Some(value))],
            )
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?;
        }
        let first = self
            .receive_on_wire(session, message)
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?;
        let ack = SentAck {
            timestamp: now_ms(),
        };
        if first {
            self.follow_up(session, message, recipient);
        }
        Ok(ack)
    }

    /// Records a message on the simulated server; false when its id was already there
    /// (a resend: counted, otherwise dropped as WhatsApp drops it).
    async fn receive_on_wire(
        &self,
        session: &str,
        message: &OutgoingMessage,
    ) -> Result<bool, EngineError> {
        let key = format!("{WIRE_PREFIX}{}", message.id).into_bytes();
        let known = self
            .kv
            .get(&Self::scope(session), &key)
            .map_err(|e| EngineError::Failed(e.to_string()))?
            .and_then(|raw| serde_json::from_slice::<WireMessage>(&raw).ok());
        let (first, row) = match known {
            Some(mut row) => {
                row.transmissions += 1;
                (false, row)
            }
            None => {
                let (kind, text) = wire_kind(&message.content);
                let seq = self
                    .wire_seq
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let row = WireMessage {
                    id: message.id.clone(),
                    to: message.to.clone(),
                    kind: kind.to_owned(),
                    text,
                    received_at: now_ms(),
                    seq,
                    transmissions: 1,
                };
                (true, row)
            }
        };
        self.write(
            Self::scope(session),
            vec![(key, Some(serde_json::to_vec(&row).expect("serialises")))],
        )
        .await?;
        Ok(first)
    }

    /// Everything the simulated server received from a session, in order of arrival.
    pub fn wire(&self, session: &str) -> Result<Vec<WireMessage>, ControlError> {
        let rows = self
            .kv
            .scan_all(&Self::scope(session), WIRE_PREFIX.as_bytes())
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        let mut wire: Vec<WireMessage> = rows
            .iter()
            .filter_map(|(_, v)| serde_json::from_slice(v).ok())
            .collect();
        wire.sort_by_key(|m| (m.received_at, m.seq));
        Ok(wire)
    }

    /// The receipts (and auto-reply) a sent message gets, later, as WhatsApp's would.
    fn follow_up(self: &Arc<Self>, session: &str, message: &OutgoingMessage, recipient: Recipient) {
        let Some(generation) = self.running_generation(session) else {
            return;
        };
        let (this, session, id, chat) = (
            self.clone(),
            session.to_owned(),
            message.id.clone(),
            message.to.clone(),
        );
        let readers: Vec<Option<String>> = match &recipient {
            Recipient::Contact(c) => vec![Some(c.lid.clone())],
            Recipient::Group(members) => members.iter().take(2).cloned().map(Some).collect(),
        };
        let reply = match (&recipient, &message.content) {
            (Recipient::Contact(c), OutgoingContent::Text(text)) => c
                .auto_reply
                .as_ref()
                .map(|r| (c.clone(), r.replace("{text}", text))),
            _ => None,
        };
        let delivered_after = Duration::from_millis(self.config.delivered_after_ms);
        let read_after = self.config.read_after_ms;
        crate::background::spawn(async move {
            tokio::time::sleep(delivered_after).await;
            if !this.is_current_run(&session, generation) {
                return;
            }
            for r in &readers {
                this.receipt(&session, &chat, &id, ReceiptKind::Delivered, r.clone());
            }
            if let Some((from, text)) = reply {
                this.auto_reply(&session, &from, &text);
            }
            if read_after == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(read_after)).await;
            if !this.is_current_run(&session, generation) {
                return;
            }
            for r in &readers {
                this.receipt(&session, &chat, &id, ReceiptKind::Read, r.clone());
            }
        });
    }

    fn is_current_run(&self, session: &str, generation: u64) -> bool {
        self.running_generation(session) == Some(generation) && self.live(session).is_ok()
    }

    fn receipt(
        &self,
        session: &str,
        chat: &str,
        id: &str,
        kind: ReceiptKind,
        recipient: Option<String>,
    ) {
        self.sink.send(EngineEvent::Receipt {
            session: session.to_owned(),
            receipt: Receipt {
                chat: chat.to_owned(),
                ids: vec![id.to_owned()],
                kind,
                recipient,
                timestamp: now_ms(),
            },
        });
    }

    fn auto_reply(&self, session: &str, from: &world::WorldContact, text: &str) {
        let chat = from.phone_jid().unwrap_or_else(|| from.lid.clone());
        self.domain(
            session,
            "message",
            json!({
                "id": format!("3EB0{}", digest_number(&["reply", session, text, &now_ms().to_string()], 16)),
                "chat": chat,
                "sender": from.lid,
                "senderLid": from.lid,
                "senderJid": from.phone_jid(),
                "fromMe": false,
                "isGroup": false,
                "pushName": from.push_name.clone().or_else(|| from.name.clone()),
                "timestamp": now_ms(),
                "type": "text",
                "text": text,
            }),
        );
    }

    /// Stores the media of an injected message (its `media.data`, base64) for downloads,
    /// and leaves only its description in the event, as the engines publish it.
    pub(super) fn keep_injected_media(
        &self,
        session: &str,
        payload: &mut Value,
    ) -> Result<(), ControlError> {
        let Some(media) = payload.get_mut("media").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        let Some(data) = media.remove("data") else {
            return Ok(());
        };
        let bytes = data
            .as_str()
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            .ok_or_else(|| ControlError::Invalid("media.data must be base64".into()))?;
        let mimetype = media
            .get("mimetype")
            .and_then(Value::as_str)
            .unwrap_or("application/octet-stream")
            .to_owned();
        media.insert("size".into(), json!(bytes.len()));
        let file_name = media
            .get("fileName")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let (chat, id) = match (
            payload.get("chat").and_then(Value::as_str),
            payload.get("id").and_then(Value::as_str),
        ) {
            (Some(c), Some(i)) => (c.to_owned(), i.to_owned()),
            _ => {
                return Err(ControlError::Invalid(
                    "a message with media needs chat and id".into(),
                ));
            }
        };
        let stored = StoredBlob {
            mimetype,
            file_name,
            data: base64::engine::general_purpose::STANDARD.encode(&bytes),
        };
        self.kv
            .put(
                &Self::scope(session),
                &media_key(&chat, &id),
                &serde_json::to_vec(&stored).expect("serialises"),
            )
            .map_err(|e| ControlError::Invalid(e.to_string()))
    }

    pub(super) fn media_blob(
        &self,
        session: &str,
        message: &MessageRef,
    ) -> Result<MediaBlob, EngineError> {
        let raw = self
            .kv
            .get(
                &Self::scope(session),
                &media_key(&message.chat, &message.id),
            )
            .map_err(|e| EngineError::Failed(e.to_string()))?
            .ok_or_else(|| EngineError::NotFound(format!("message {} has no media", message.id)))?;
        let stored: StoredBlob =
            serde_json::from_slice(&raw).map_err(|e| EngineError::Failed(e.to_string()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(stored.data)
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        Ok(MediaBlob {
            bytes: Arc::new(bytes),
            mimetype: stored.mimetype,
            file_name: stored.file_name,
        })
    }
}

/// Who a sandbox message goes to.
enum Recipient {
    Contact(world::WorldContact),
    /// The members' LIDs.
    Group(Vec<String>),
}
