//! What the chat store keeps, and the JSON shapes of API.md §5.

use gateway_sdk::JsonSchema;
use serde::{Deserialize, Serialize};

/// Longest `lastMessage.preview`, in characters.
pub(crate) const PREVIEW_CHARS: usize = 100;

/// A direct chat with a person, or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Dm,
    Group,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Dm => "dm",
            Kind::Group => "group",
        }
    }
}

/// A person or a group as one session knows them: their addresses and names, and the
/// chat the account has with them, if any. A person known by LID and by phone number is
/// one party (one chat), however the events address them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Party {
    /// Stable per party and session: the chat's `id`.
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    pub(crate) lid: Option<String>,
    pub(crate) phone_jid: Option<String>,
    pub(crate) group_jid: Option<String>,
    #[serde(default)]
    pub(crate) names: Names,
    /// The chat, while the account has one with this party.
    pub(crate) chat: Option<Chat>,
    /// When the chat was last deleted (by the API or the phone): older news does not
    /// bring it back, new activity does.
    pub(crate) deleted_at: Option<u64>,
}

/// The names events give a party.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Names {
    /// The account's address book (contact sync).
    pub(crate) contact: Option<String>,
    /// The name the chat has on the phone (chat and history sync).
    pub(crate) chat: Option<String>,
    /// The name the person chose for themselves.
    pub(crate) push: Option<String>,
    /// A group's subject.
    pub(crate) subject: Option<String>,
}

/// The state of one chat. Each setting remembers when it was last set, so that of two
/// changes (phone and API) the later wins whatever order they arrive in; 0 means only
/// history sync has set it, which any change overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Chat {
    pub(crate) archived: bool,
    pub(crate) pinned: bool,
    /// Epoch ms; `None` not muted, -1 forever.
    pub(crate) muted_until: Option<i64>,
    pub(crate) unread_count: u32,
    /// Epoch ms of the latest message (WhatsApp's timestamp).
    pub(crate) last_message_at: Option<u64>,
    pub(crate) last_message: Option<LastMessage>,
    pub(crate) stamps: Stamps,
    /// Incoming messages kept for read receipts (`r/` keys).
    pub(crate) receipts: u32,
    /// When the gateway's view of the chat last changed (epoch ms).
    pub(crate) updated_at: u64,
}

/// When each setting was last set (epoch ms of the change's event, or of the API call).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stamps {
    pub(crate) archived: u64,
    pub(crate) pinned: u64,
    pub(crate) muted: u64,
    /// The last reset (or set) of the unread count; messages published before it are
    /// already read.
    pub(crate) read: u64,
}

/// The chat's latest message, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LastMessage {
    /// The WhatsApp message id.
    pub(crate) id: String,
    pub(crate) from_me: bool,
    /// As in Message: `text`, `image`, `video`, `audio`, `document`, `sticker`,
    /// `location`, `contact`, `poll` or `unknown`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// The text, caption or title, at most 100 characters; may be empty.
    pub(crate) preview: String,
}

/// A message preview: whitespace collapsed, at most [`PREVIEW_CHARS`] characters (the
/// last one an ellipsis when cut).
pub(crate) fn preview(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= PREVIEW_CHARS {
        return flat;
    }
    let mut cut: String = flat.chars().take(PREVIEW_CHARS - 1).collect();
    cut.push('…');
    cut
}

impl Party {
    /// The address the chat is known by: the group JID, else the phone JID when known,
    /// else the LID.
    pub(crate) fn jid(&self) -> &str {
        self.group_jid
            .as_deref()
            .or(self.phone_jid.as_deref())
            .or(self.lid.as_deref())
            .unwrap_or_default()
    }

    /// The LID of a direct chat addressed by phone JID (events carry it beside `jid`).
    pub(crate) fn other_lid(&self) -> Option<&str> {
        self.lid.as_deref().filter(|l| *l != self.jid())
    }

    /// Contact name, the phone's chat name or push name; a group's subject.
    pub(crate) fn display_name(&self) -> Option<&str> {
        let n = &self.names;
        match self.kind {
            Kind::Dm => n
                .contact
                .as_deref()
                .or(n.chat.as_deref())
                .or(n.push.as_deref()),
            Kind::Group => n.subject.as_deref().or(n.chat.as_deref()),
        }
    }

    /// Where the chat sorts in lists: pinned first, then the latest message first (chats
    /// without messages last), then by JID. Unique, since the JID is.
    pub(crate) fn order_key(&self) -> Option<Vec<u8>> {
        let chat = self.chat.as_ref()?;
        let pin = if chat.pinned { '0' } else { '1' };
        let newest_first = u64::MAX - chat.last_message_at.unwrap_or(0);
        Some(format!("o/{pin}{newest_first:016x}/{}", self.jid()).into_bytes())
    }

    /// `q`: case-insensitive substring of a name, or digits of an address.
    pub(crate) fn matches(&self, q: &str) -> bool {
        let q = q.trim().to_lowercase();
        let n = &self.names;
        let by_name = [&n.contact, &n.chat, &n.push, &n.subject]
            .into_iter()
            .flatten()
            .any(|name| name.to_lowercase().contains(&q));
        let digits: String = q
            .trim_start_matches('+')
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        let by_address = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && [&self.phone_jid, &self.lid, &self.group_jid]
                .into_iter()
                .flatten()
                .any(|a| a.split('@').next().is_some_and(|u| u.contains(&digits)));
        by_name || by_address
    }

    /// The Chat object of the API, as of `now` (a mute that has run out reads as none).
    pub(crate) fn view<'a>(&'a self, session: &'a str, now: u64) -> Option<ChatView<'a>> {
        let chat = self.chat.as_ref()?;
        let muted_until = chat
            .muted_until
            .filter(|&m| m == -1 || u64::try_from(m).is_ok_and(|m| m > now));
        let dm = self.kind == Kind::Dm;
        Some(ChatView {
            id: self.id,
            session_id: session,
            jid: self.jid(),
            kind: self.kind.as_str(),
            name: self.display_name(),
            lid: self.lid.as_deref().filter(|_| dm),
            phone_jid: self.phone_jid.as_deref().filter(|_| dm),
            archived: chat.archived,
            pinned: chat.pinned,
            muted_until,
            unread_count: chat.unread_count,
            last_message_at: chat.last_message_at,
            last_message: chat.last_message.as_ref(),
            updated_at: chat.updated_at,
        })
    }
}

/// A chat of the session (API.md §5).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChatView<'a> {
    /// Stable per chat and session.
    pub(crate) id: u64,
    pub(crate) session_id: &'a str,
    /// A group JID; for a direct chat the phone JID when known, else the LID.
    pub(crate) jid: &'a str,
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["dm", "group"]))]
    pub(crate) kind: &'static str,
    /// Contact name, push name or group subject; null if unknown.
    pub(crate) name: Option<&'a str>,
    /// A direct chat's LID, when known; null for groups.
    pub(crate) lid: Option<&'a str>,
    /// A direct chat's phone JID, when known; null for groups.
    pub(crate) phone_jid: Option<&'a str>,
    pub(crate) archived: bool,
    pub(crate) pinned: bool,
    /// Epoch ms; null = not muted, -1 = forever.
    pub(crate) muted_until: Option<i64>,
    pub(crate) unread_count: u32,
    /// Epoch ms of the latest message; null if none is known.
    pub(crate) last_message_at: Option<u64>,
    pub(crate) last_message: Option<&'a LastMessage>,
    /// Epoch ms of the last change to the chat.
    pub(crate) updated_at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_flat_and_at_most_100_characters() {
        assert_eq!(preview("  Hello\n\nthere  "), "Hello there");
        let long = "é".repeat(150);
        let p = preview(&long);
        assert_eq!(p.chars().count(), 100);
        assert!(p.ends_with('…'));
        assert_eq!(preview(&"a".repeat(100)), "a".repeat(100));
    }
}
