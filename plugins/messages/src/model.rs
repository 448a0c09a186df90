//! What the plugin stores about a message, and the API's views of it: the Message object
//! and the SendResult of API.md §6.1.

use gateway_sdk::JsonSchema;
use gateway_sdk::outbox::{SendMode, SendResult, SendStatus, Submitted};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A message's kind (`type` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MessageType {
    Text,
    Image,
    Video,
    Audio,
    Document,
    Sticker,
    Location,
    Contact,
    Poll,
    Unknown,
}

impl MessageType {
    const ALL: [MessageType; 10] = [
        MessageType::Text,
        MessageType::Image,
        MessageType::Video,
        MessageType::Audio,
        MessageType::Document,
        MessageType::Sticker,
        MessageType::Location,
        MessageType::Contact,
        MessageType::Poll,
        MessageType::Unknown,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MessageType::Text => "text",
            MessageType::Image => "image",
            MessageType::Video => "video",
            MessageType::Audio => "audio",
            MessageType::Document => "document",
            MessageType::Sticker => "sticker",
            MessageType::Location => "location",
            MessageType::Contact => "contact",
            MessageType::Poll => "poll",
            MessageType::Unknown => "unknown",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The engine's name for a message's kind; anything new to us is `unknown`.
    pub(crate) fn from_engine(s: Option<&str>) -> MessageType {
        s.and_then(MessageType::parse)
            .unwrap_or(MessageType::Unknown)
    }
}

/// What is known of a message's media (the bytes stay with the host).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MediaInfo {
    /// Null while unknown (a file uploaded earlier, sent without `media.mimetype`).
    pub(crate) mimetype: Option<String>,
    /// Bytes; null while unknown.
    pub(crate) size: Option<u64>,
    pub(crate) file_name: Option<String>,
    /// Length of audio or video.
    pub(crate) seconds: Option<u32>,
    pub(crate) width: Option<u32>,
    pub(crate) height: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct LocationInfo {
    pub(crate) latitude: f64,
    pub(crate) longitude: f64,
    pub(crate) name: Option<String>,
    pub(crate) address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct ContactInfo {
    pub(crate) name: String,
    pub(crate) vcard: String,
}

/// A poll as it was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PollDefinition {
    pub(crate) name: String,
    pub(crate) options: Vec<String>,
    /// 0 = any number of options.
    pub(crate) selectable_count: u32,
}

/// One person's reaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredReaction {
    pub(crate) emoji: String,
    pub(crate) timestamp: u64,
}

/// One voter's current choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredVote {
    pub(crate) options: Vec<String>,
    pub(crate) timestamp: u64,
}

/// Who reacted or voted: [`ME`] for this session's account, else their JID.
pub(crate) type Person = String;

/// The key under which this account's own reactions and votes are kept: its JIDs may not
/// be known when it acts.
pub(crate) const ME: &str = "me";

/// A message as stored: the Message object's facts, plus what its derived fields are
/// computed from (reactions and votes per person, the acknowledgement level).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredMessage {
    pub(crate) id: String,
    pub(crate) chat: String,
    /// The author as WhatsApp addresses them in this chat (needed to act on the
    /// message); `None` for this account's own messages.
    pub(crate) sender: Option<String>,
    pub(crate) sender_jid: Option<String>,
    pub(crate) sender_lid: Option<String>,
    pub(crate) from_me: bool,
    pub(crate) kind: MessageType,
    pub(crate) body: String,
    pub(crate) media: Option<MediaInfo>,
    pub(crate) quoted_id: Option<String>,
    pub(crate) mentions: Vec<String>,
    pub(crate) location: Option<LocationInfo>,
    pub(crate) contact: Option<ContactInfo>,
    pub(crate) poll: Option<PollDefinition>,
    pub(crate) reactions: BTreeMap<Person, StoredReaction>,
    pub(crate) votes: BTreeMap<Person, StoredVote>,
    pub(crate) forwarded: bool,
    pub(crate) edited: bool,
    /// When the text shown was written (the latest edit applied), so a late edit
    /// does not overwrite a newer one.
    pub(crate) edited_at: Option<u64>,
    pub(crate) deleted: bool,
    /// Out: 0 pending/failed, 1 sent, 2 delivered, 3 read, 4 played. In: 1 received, 3
    /// read by this session.
    pub(crate) ack_level: u8,
    /// An outgoing message that will not be sent.
    pub(crate) failed: bool,
    pub(crate) error: Option<String>,
    pub(crate) error_code: Option<String>,
    pub(crate) outbox_id: Option<String>,
    pub(crate) push_name: Option<String>,
    pub(crate) created_at: u64,
    pub(crate) updated_at: u64,
    /// Arrival order in the session (from 1; 0 = not stored yet): breaks ties of
    /// `created_at` in a chat's list.
    pub(crate) seq: u64,
}

impl StoredMessage {
    /// "Deleted for everyone": the content goes, the facts about the message stay.
    pub(crate) fn revoke(&mut self, at: u64) {
        self.deleted = true;
        self.body.clear();
        self.media = None;
        self.location = None;
        self.contact = None;
        self.poll = None;
        self.mentions.clear();
        self.votes.clear();
        self.touch(at);
    }

    pub(crate) fn touch(&mut self, at: u64) {
        self.updated_at = self.updated_at.max(at);
    }

    /// Applies a new text if it is not older than the one shown.
    pub(crate) fn edit(&mut self, text: &str, at: u64) {
        if self.deleted || self.edited_at.is_some_and(|t| t > at) {
            return;
        }
        self.body = text.to_owned();
        self.edited = true;
        self.edited_at = Some(at);
        self.touch(at);
    }

    /// Sets (or, with `""`, removes) a person's reaction, unless a newer one is stored.
    pub(crate) fn react(&mut self, who: Person, emoji: &str, at: u64) {
        if self.reactions.get(&who).is_some_and(|r| r.timestamp > at) {
            return;
        }
        if emoji.is_empty() {
            self.reactions.remove(&who);
        } else {
            let reaction = StoredReaction {
                emoji: emoji.to_owned(),
                timestamp: at,
            };
            self.reactions.insert(who, reaction);
        }
        self.touch(at);
    }

    /// Sets (or, with no options, clears) a voter's choice, unless a newer one is stored.
    pub(crate) fn vote(&mut self, who: Person, options: &[String], at: u64) {
        if self.deleted || self.votes.get(&who).is_some_and(|v| v.timestamp > at) {
            return;
        }
        if options.is_empty() {
            self.votes.remove(&who);
        } else {
            let vote = StoredVote {
                options: options.to_vec(),
                timestamp: at,
            };
            self.votes.insert(who, vote);
        }
        self.touch(at);
    }

    /// A receipt or an outbox status, applied monotonically: the level only rises, and
    /// `failed` applies only to an outgoing message not yet sent.
    pub(crate) fn acknowledge(&mut self, status: &str, error: Option<(String, String)>, at: u64) {
        if self.from_me {
            if self.failed {
                return;
            }
            if status == "failed" {
                if self.ack_level == 0 {
                    self.failed = true;
                    if let Some((code, message)) = error {
                        self.error_code = Some(code);
                        self.error = Some(message);
                    }
                    self.touch(at);
                }
                return;
            }
            let level = match status {
                "sent" => 1,
                "delivered" => 2,
                "read" => 3,
                "played" => 4,
                _ => return,
            };
            if level > self.ack_level {
                self.ack_level = level;
                self.touch(at);
            }
        } else if matches!(status, "read" | "played") && self.ack_level < 3 {
            self.ack_level = 3;
            self.touch(at);
        }
    }

    /// The outbox's status of this account's message.
    pub(crate) fn acknowledge_send(&mut self, result: &SendResult) {
        let error = result.error_code.clone().zip(result.error.clone());
        self.acknowledge(result.status.as_str(), error, result.timestamp);
    }
}

/// Whether a message came in or went out.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Direction {
    In,
    Out,
}

/// An outgoing message's state, mirroring `ackLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MessageStatus {
    Pending,
    Sent,
    Delivered,
    Read,
    Failed,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReactionView {
    pub(crate) emoji: String,
    /// The reacting person; this account's own JID for its reactions (`""` while not known).
    pub(crate) sender_jid: String,
    pub(crate) timestamp: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct PollOptionView {
    pub(crate) name: String,
    /// Voters whose latest vote includes this option.
    pub(crate) votes: u32,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PollView {
    pub(crate) name: String,
    pub(crate) options: Vec<PollOptionView>,
    /// 0 = any number of options.
    pub(crate) selectable_count: u32,
}

/// A stored message (API.md §6.1).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageView {
    pub(crate) id: String,
    pub(crate) chat_jid: String,
    pub(crate) sender_jid: Option<String>,
    pub(crate) sender_lid: Option<String>,
    pub(crate) from_me: bool,
    pub(crate) direction: Direction,
    #[serde(rename = "type")]
    pub(crate) kind: MessageType,
    /// The text or caption (the latest edit); `""` if none.
    pub(crate) body: String,
    pub(crate) has_media: bool,
    pub(crate) media: Option<MediaInfo>,
    pub(crate) quoted_id: Option<String>,
    pub(crate) mentions: Vec<String>,
    pub(crate) location: Option<LocationInfo>,
    pub(crate) contact: Option<ContactInfo>,
    pub(crate) poll: Option<PollView>,
    pub(crate) reactions: Vec<ReactionView>,
    pub(crate) forwarded: bool,
    pub(crate) edited: bool,
    /// Revoked for everyone: `body` is `""` and `media` null.
    pub(crate) deleted: bool,
    /// Out: 0 pending/failed, 1 sent, 2 delivered, 3 read, 4 played; in: 1 received, 3
    /// read by this session.
    pub(crate) ack_level: u8,
    /// Mirrors `ackLevel` for outgoing messages (`played` reads as `read`); null for
    /// incoming ones.
    pub(crate) status: Option<MessageStatus>,
    pub(crate) error: Option<String>,
    pub(crate) error_code: Option<String>,
    pub(crate) outbox_id: Option<String>,
    pub(crate) push_name: Option<String>,
    pub(crate) created_at: u64,
    pub(crate) updated_at: u64,
}

/// This account's JIDs, as far as the session's own messages have shown them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Account {
    pub(crate) jid: Option<String>,
    pub(crate) lid: Option<String>,
}

impl Account {
    pub(crate) fn is(&self, jid: &str) -> bool {
        self.jid.as_deref() == Some(jid) || self.lid.as_deref() == Some(jid)
    }
}

impl StoredMessage {
    pub(crate) fn view(&self, me: &Account) -> MessageView {
        let status = self.from_me.then_some(match (self.failed, self.ack_level) {
            (true, _) => MessageStatus::Failed,
            (false, 0) => MessageStatus::Pending,
            (false, 1) => MessageStatus::Sent,
            (false, 2) => MessageStatus::Delivered,
            (false, _) => MessageStatus::Read,
        });
        let (sender_jid, sender_lid) = if self.from_me {
            (
                self.sender_jid.clone().or_else(|| me.jid.clone()),
                self.sender_lid.clone().or_else(|| me.lid.clone()),
            )
        } else {
            (self.sender_jid.clone(), self.sender_lid.clone())
        };
        let mut reactions: Vec<ReactionView> = self
            .reactions
            .iter()
            .map(|(who, r)| ReactionView {
                emoji: r.emoji.clone(),
                sender_jid: if who == ME {
                    me.jid
                        .clone()
                        .or_else(|| me.lid.clone())
                        .unwrap_or_default()
                } else {
                    who.clone()
                },
                timestamp: r.timestamp,
            })
            .collect();
        reactions.sort_by(|a, b| (a.timestamp, &a.sender_jid).cmp(&(b.timestamp, &b.sender_jid)));
        let poll = self.poll.as_ref().map(|p| PollView {
            name: p.name.clone(),
            options: p
                .options
                .iter()
                .map(|o| PollOptionView {
                    name: o.clone(),
                    votes: self
                        .votes
                        .values()
                        .filter(|v| v.options.contains(o))
                        .count() as u32,
                })
                .collect(),
            selectable_count: p.selectable_count,
        });
        MessageView {
            id: self.id.clone(),
            chat_jid: self.chat.clone(),
            sender_jid,
            sender_lid,
            from_me: self.from_me,
            direction: if self.from_me {
                Direction::Out
            } else {
                Direction::In
            },
            kind: self.kind,
            body: self.body.clone(),
            has_media: self.media.is_some(),
            media: self.media.clone(),
            quoted_id: self.quoted_id.clone(),
            mentions: self.mentions.clone(),
            location: self.location.clone(),
            contact: self.contact.clone(),
            poll,
            reactions,
            forwarded: self.forwarded,
            edited: self.edited,
            deleted: self.deleted,
            ack_level: self.ack_level,
            status,
            error: self.error.clone(),
            error_code: self.error_code.clone(),
            outbox_id: self.outbox_id.clone(),
            push_name: self.push_name.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// How a request was sent (`mode`).
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// Answered once sent or failed (or at the sync timeout, with 202).
    Sync,
    /// Answered at once with 202; the outcome comes as `message.status` events.
    Async,
}

/// An outbox item's state (API.md §6.1).
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ItemStatus {
    Pending,
    Sent,
    Delivered,
    Read,
    Failed,
}

/// The outcome of a message write (send, edit, revoke, forward, vote, react).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SendResultView {
    pub(crate) mode: Mode,
    pub(crate) outbox_id: String,
    /// True when answered from an earlier request with the same Idempotency-Key.
    pub(crate) replayed: bool,
    pub(crate) status: ItemStatus,
    /// When the current status was reached, epoch ms.
    pub(crate) timestamp: u64,
    /// The message put on the wire (for edits, revokes, reactions and votes, the
    /// protocol message), assigned at accept.
    pub(crate) wa_message_id: String,
    pub(crate) chat: String,
    /// `not_on_whatsapp`, `media_failed`, `rejected`, `expired` or `cancelled`.
    pub(crate) error_code: Option<String>,
    pub(crate) error: Option<String>,
}

impl SendResultView {
    pub(crate) fn new(r: &SendResult, replayed: bool) -> SendResultView {
        SendResultView {
            mode: match r.mode {
                SendMode::Synchronous => Mode::Sync,
                SendMode::Asynchronous => Mode::Async,
            },
            outbox_id: r.outbox_id.clone(),
            replayed,
            status: match r.status {
                SendStatus::Pending => ItemStatus::Pending,
                SendStatus::Sent => ItemStatus::Sent,
                SendStatus::Delivered => ItemStatus::Delivered,
                SendStatus::Read => ItemStatus::Read,
                SendStatus::Failed => ItemStatus::Failed,
            },
            timestamp: r.timestamp,
            wa_message_id: r.wa_message_id.clone(),
            chat: r.chat.clone(),
            error_code: r.error_code.clone(),
            error: r.error.clone(),
        }
    }

    pub(crate) fn of(s: &Submitted) -> SendResultView {
        SendResultView::new(&s.result, s.replayed)
    }
}
