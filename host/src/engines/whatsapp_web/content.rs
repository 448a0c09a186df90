//! WhatsApp message bodies in the gateway's terms: what an inbound message is (content,
//! or an add-on acting on another message: reaction, edit, revoke, poll vote), the
//! description plugins get of its content (README "Events": `type`, `text`, `media`,
//! `quotedId`, `mentions`, `location`, `contact`, `poll`, `forwarded`), and the media
//! part a descriptor keeps.

use serde_json::{Map, Value, json};
use whatsapp_rust::buffa::MessageField;
use whatsapp_rust::wacore::proto_helpers::MessageExt;
use whatsapp_rust::waproto::whatsapp as wa;

/// The `type` of a `message` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
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

impl Kind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Image => "image",
            Kind::Video => "video",
            Kind::Audio => "audio",
            Kind::Document => "document",
            Kind::Sticker => "sticker",
            Kind::Location => "location",
            Kind::Contact => "contact",
            Kind::Poll => "poll",
            Kind::Unknown => "unknown",
        }
    }
}

/// What an inbound message is.
pub(super) enum Inbound<'a> {
    /// A message someone reads: text, media, location, contact, poll, or unknown.
    Content(&'a wa::Message),
    /// A reaction to `key` (`""` removes one).
    Reaction {
        key: &'a wa::MessageKey,
        emoji: &'a str,
    },
    /// The author changed the text of `key`.
    Edit {
        key: &'a wa::MessageKey,
        text: String,
    },
    /// `key` was deleted for everyone.
    Revoke { key: &'a wa::MessageKey },
    /// A vote (encrypted) on the poll `key` names.
    Vote(&'a wa::message::PollUpdateMessage),
    /// Protocol traffic with nothing for plugins (key shares, history notices, sender
    /// keys, pins, keep-in-chat…).
    Internal,
}

/// The poll creation body of a message, whichever version carries it.
pub(super) fn poll_of(base: &wa::Message) -> Option<&wa::message::PollCreationMessage> {
    base.poll_creation_message
        .as_option()
        .or_else(|| base.poll_creation_message_v2.as_option())
        .or_else(|| base.poll_creation_message_v3.as_option())
        .or_else(|| base.poll_creation_message_v5.as_option())
        .or_else(|| base.poll_creation_message_v6.as_option())
}

pub(super) fn kind_of(base: &wa::Message) -> Kind {
    if base.conversation.as_deref().is_some_and(|t| !t.is_empty())
        || base.extended_text_message.is_set()
    {
        Kind::Text
    } else if base.image_message.is_set() {
        Kind::Image
    } else if base.video_message.is_set() || base.ptv_message.is_set() {
        Kind::Video
    } else if base.audio_message.is_set() {
        Kind::Audio
    } else if base.document_message.is_set() {
        Kind::Document
    } else if base.sticker_message.is_set() {
        Kind::Sticker
    } else if base.location_message.is_set() || base.live_location_message.is_set() {
        Kind::Location
    } else if base.contact_message.is_set() || base.contacts_array_message.is_set() {
        Kind::Contact
    } else if poll_of(base).is_some() {
        Kind::Poll
    } else {
        Kind::Unknown
    }
}

/// Whether a message carries nothing but protocol plumbing (a sender key, the message
/// secret, an empty body): no event for it.
fn is_plumbing(base: &wa::Message) -> bool {
    let mut rest = base.clone();
    rest.message_context_info = MessageField::none();
    rest.sender_key_distribution_message = MessageField::none();
    rest.fast_ratchet_key_sender_key_distribution_message = MessageField::none();
    rest.conversation = rest.conversation.filter(|t| !t.is_empty());
    rest == wa::Message::default()
}

/// Classifies a decrypted inbound message (its wrappers already peeled by the caller).
pub(super) fn classify(base: &wa::Message) -> Inbound<'_> {
    use wa::message::protocol_message::Type;
    if let Some(r) = base.reaction_message.as_option()
        && let Some(key) = r.key.as_option()
    {
        return Inbound::Reaction {
            key,
            emoji: r.text.as_deref().unwrap_or_default(),
        };
    }
    if let Some(p) = base.protocol_message.as_option() {
        let Some(key) = p.key.as_option() else {
            return Inbound::Internal;
        };
        return match p.r#type {
            Some(Type::REVOKE) => Inbound::Revoke { key },
            Some(Type::MESSAGE_EDIT) => {
                let edited = p.edited_message.as_option();
                let text = edited
                    .and_then(|m| m.text_content().or_else(|| m.get_caption()))
                    .unwrap_or_default()
                    .to_owned();
                Inbound::Edit { key, text }
            }
            _ => Inbound::Internal,
        };
    }
    if let Some(vote) = base.poll_update_message.as_option() {
        return Inbound::Vote(vote);
    }
    let add_on = base.keep_in_chat_message.is_set()
        || base.pin_in_chat_message.is_set()
        || base.enc_reaction_message.is_set()
        || base.enc_comment_message.is_set()
        || base.secret_encrypted_message.is_set()
        || base.enc_event_response_message.is_set();
    if add_on || is_plumbing(base) {
        return Inbound::Internal;
    }
    Inbound::Content(base)
}

/// The context (quote, mentions, forwarding) of a content message.
pub(super) fn context_of(base: &wa::Message) -> Option<&wa::ContextInfo> {
    let poll = poll_of(base).and_then(|p| p.context_info.as_option());
    base.extended_text_message
        .as_option()
        .and_then(|m| m.context_info.as_option())
        .or_else(|| {
            base.image_message
                .as_option()
                .and_then(|m| m.context_info.as_option())
        })
        .or_else(|| {
            base.video_message
                .as_option()
                .or_else(|| base.ptv_message.as_option())
                .and_then(|m| m.context_info.as_option())
        })
        .or_else(|| {
            base.audio_message
                .as_option()
                .and_then(|m| m.context_info.as_option())
        })
        .or_else(|| {
            base.document_message
                .as_option()
                .and_then(|m| m.context_info.as_option())
        })
        .or_else(|| {
            base.sticker_message
                .as_option()
                .and_then(|m| m.context_info.as_option())
        })
        .or_else(|| {
            base.location_message
                .as_option()
                .and_then(|m| m.context_info.as_option())
        })
        .or_else(|| {
            base.contact_message
                .as_option()
                .and_then(|m| m.context_info.as_option())
        })
        .or(poll)
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// `{mimetype, size, fileName?, seconds?, width?, height?}` of a media message.
fn media_description(base: &wa::Message) -> Option<Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            m.insert(k.to_owned(), v);
        }
    };
    if let Some(i) = base.image_message.as_option() {
        put("mimetype", json!(i.mimetype));
        put("size", json!(i.file_length));
        put("width", json!(i.width));
        put("height", json!(i.height));
    } else if let Some(v) = base
        .video_message
        .as_option()
        .or_else(|| base.ptv_message.as_option())
    {
        put("mimetype", json!(v.mimetype));
        put("size", json!(v.file_length));
        put("seconds", json!(v.seconds));
        put("width", json!(v.width));
        put("height", json!(v.height));
    } else if let Some(a) = base.audio_message.as_option() {
        put("mimetype", json!(a.mimetype));
        put("size", json!(a.file_length));
        put("seconds", json!(a.seconds));
    } else if let Some(d) = base.document_message.as_option() {
        put("mimetype", json!(d.mimetype));
        put("size", json!(d.file_length));
        put("fileName", json!(non_empty(d.file_name.as_deref())));
    } else if let Some(s) = base.sticker_message.as_option() {
        put("mimetype", json!(s.mimetype));
        put("size", json!(s.file_length));
        put("width", json!(s.width));
        put("height", json!(s.height));
    } else {
        return None;
    }
    Some(Value::Object(m))
}

fn location_description(base: &wa::Message) -> Option<Value> {
    if let Some(l) = base.location_message.as_option() {
        return Some(json!({
            "latitude": l.degrees_latitude.unwrap_or_default(),
            "longitude": l.degrees_longitude.unwrap_or_default(),
            "name": non_empty(l.name.as_deref()),
            "address": non_empty(l.address.as_deref()),
        }));
    }
    base.live_location_message.as_option().map(|l| {
        json!({
            "latitude": l.degrees_latitude.unwrap_or_default(),
            "longitude": l.degrees_longitude.unwrap_or_default(),
            "name": Value::Null,
            "address": Value::Null,
        })
    })
}

fn contact_description(base: &wa::Message) -> Option<Value> {
    if let Some(c) = base.contact_message.as_option() {
        return Some(json!({
            "name": c.display_name.clone().unwrap_or_default(),
            "vcard": c.vcard.clone().unwrap_or_default(),
        }));
    }
    let list = base.contacts_array_message.as_option()?;
    let first = list.contacts.first();
    Some(json!({
        "name": first
            .and_then(|c| c.display_name.clone())
            .or_else(|| list.display_name.clone())
            .unwrap_or_default(),
        "vcard": first.and_then(|c| c.vcard.clone()).unwrap_or_default(),
    }))
}

fn poll_description(base: &wa::Message) -> Option<Value> {
    let p = poll_of(base)?;
    Some(json!({
        "name": p.name.clone().unwrap_or_default(),
        "options": p
            .options
            .iter()
            .filter_map(|o| o.option_name.clone())
            .collect::<Vec<_>>(),
        "selectableCount": p.selectable_options_count.unwrap_or(0),
    }))
}

/// The content fields of a `message` payload: `type`, `text` and whichever of `media`,
/// `quotedId`, `mentions`, `location`, `contact`, `poll`, `forwarded` apply.
pub(super) fn describe(base: &wa::Message) -> Map<String, Value> {
    let kind = kind_of(base);
    let mut out = Map::new();
    out.insert("type".into(), json!(kind.as_str()));
    let text = base.text_content().or_else(|| base.get_caption());
    out.insert("text".into(), json!(non_empty(text)));
    if let Some(m) = media_description(base) {
        out.insert("media".into(), m);
    }
    if let Some(l) = location_description(base) {
        out.insert("location".into(), l);
    }
    if let Some(c) = contact_description(base) {
        out.insert("contact".into(), c);
    }
    if let Some(p) = poll_description(base) {
        out.insert("poll".into(), p);
    }
    if let Some(ctx) = context_of(base) {
        if let Some(q) = non_empty(ctx.stanza_id.as_deref()) {
            out.insert("quotedId".into(), json!(q));
        }
        if !ctx.mentioned_jid.is_empty() {
            out.insert("mentions".into(), json!(ctx.mentioned_jid));
        }
        if ctx.is_forwarded == Some(true) {
            out.insert("forwarded".into(), json!(true));
        }
    }
    out
}

/// The media part of a message, without its context and preview: what a descriptor
/// keeps to download the media again or forward it by reference.
pub(super) fn media_only(message: &wa::Message) -> Option<wa::Message> {
    let base = message.get_base_message();
    let mut out = wa::Message::default();
    if let Some(m) = base.image_message.as_option() {
        let mut m = m.clone();
        m.context_info = MessageField::none();
        m.jpeg_thumbnail = None;
        out.image_message = MessageField::some(m);
    } else if let Some(m) = base
        .video_message
        .as_option()
        .or_else(|| base.ptv_message.as_option())
    {
        let mut m = m.clone();
        m.context_info = MessageField::none();
        m.jpeg_thumbnail = None;
        out.video_message = MessageField::some(m);
    } else if let Some(m) = base.audio_message.as_option() {
        let mut m = m.clone();
        m.context_info = MessageField::none();
        out.audio_message = MessageField::some(m);
    } else if let Some(m) = base.document_message.as_option() {
        let mut m = m.clone();
        m.context_info = MessageField::none();
        m.jpeg_thumbnail = None;
        out.document_message = MessageField::some(m);
    } else if let Some(m) = base.sticker_message.as_option() {
        let mut m = m.clone();
        m.context_info = MessageField::none();
        m.png_thumbnail = None;
        out.sticker_message = MessageField::some(m);
    } else {
        return None;
    }
    Some(out)
}

/// The mimetype and file name a descriptor's media has.
pub(super) fn media_file(media: &wa::Message) -> (Option<String>, Option<String>) {
    if let Some(m) = media.image_message.as_option() {
        (m.mimetype.clone(), None)
    } else if let Some(m) = media.video_message.as_option() {
        (m.mimetype.clone(), None)
    } else if let Some(m) = media.audio_message.as_option() {
        (m.mimetype.clone(), None)
    } else if let Some(m) = media.document_message.as_option() {
        (m.mimetype.clone(), m.file_name.clone())
    } else if let Some(m) = media.sticker_message.as_option() {
        (m.mimetype.clone(), None)
    } else {
        (None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> wa::Message {
        wa::Message {
            conversation: Some(t.into()),
            ..Default::default()
        }
    }

    #[test]
    fn describes_a_reply_with_mentions_as_text() {
        let m = wa::Message {
            extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
                text: Some("hi @1".into()),
                context_info: MessageField::some(wa::ContextInfo {
                    stanza_id: Some("3EB0Q".into()),
                    mentioned_jid: vec!["1@s.whatsapp.net".into()],
                    is_forwarded: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let d = describe(&m);
        assert_eq!(d["type"], "text");
        assert_eq!(d["text"], "hi @1");
        assert_eq!(d["quotedId"], "3EB0Q");
        assert_eq!(d["mentions"], json!(["1@s.whatsapp.net"]));
        assert_eq!(d["forwarded"], true);
        assert!(matches!(classify(&m), Inbound::Content(_)));
    }

    #[test]
    fn describes_media_location_contact_and_poll() {
        let doc = wa::Message {
            document_message: MessageField::some(wa::message::DocumentMessage {
                mimetype: Some("application/pdf".into()),
                file_length: Some(1234),
                file_name: Some("a.pdf".into()),
                caption: Some("the plan".into()),
                direct_path: Some("/v/t62/x".into()),
                media_key: Some(vec![1; 32]),
                jpeg_thumbnail: Some(vec![9; 100]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let d = describe(&doc);
        assert_eq!(d["type"], "document");
        assert_eq!(d["text"], "the plan");
        assert_eq!(
            d["media"],
            json!({"mimetype": "application/pdf", "size": 1234, "fileName": "a.pdf"})
        );
        let kept = media_only(&doc).unwrap();
        let kept_doc = kept.document_message.as_option().unwrap();
        assert_eq!(kept_doc.direct_path.as_deref(), Some("/v/t62/x"));
        assert!(kept_doc.jpeg_thumbnail.is_none());
        assert_eq!(
            media_file(&kept),
            (Some("application/pdf".into()), Some("a.pdf".into()))
        );

        let loc = wa::Message {
            location_message: MessageField::some(wa::message::LocationMessage {
                degrees_latitude: Some(-6.2),
                degrees_longitude: Some(106.8),
                name: Some("Office".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let d = describe(&loc);
        assert_eq!(d["type"], "location");
        assert_eq!(d["location"]["latitude"], -6.2);
        assert_eq!(d["location"]["name"], "Office");
        assert!(d["location"]["address"].is_null());
        assert!(media_only(&loc).is_none());

        let card = wa::Message {
            contact_message: MessageField::some(wa::message::ContactMessage {
                display_name: Some("Bob".into()),
                vcard: Some("BEGIN:VCARD\nEND:VCARD".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(describe(&card)["contact"]["name"], "Bob");

        let poll = wa::Message {
            poll_creation_message_v3: MessageField::some(wa::message::PollCreationMessage {
                name: Some("Lunch?".into()),
                options: ["Yes", "No"]
                    .iter()
                    .map(|o| wa::message::poll_creation_message::Option {
                        option_name: Some((*o).into()),
                        option_hash: None,
                    })
                    .collect(),
                selectable_options_count: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        let d = describe(&poll);
        assert_eq!(d["type"], "poll");
        assert_eq!(
            d["poll"],
            json!({"name": "Lunch?", "options": ["Yes", "No"], "selectableCount": 1})
        );
    }

    #[test]
    fn tells_add_ons_from_content() {
        use wa::message::protocol_message::Type;
        let key = wa::MessageKey {
            remote_jid: Some("1@s.whatsapp.net".into()),
            from_me: Some(false),
            id: Some("3EB0A".into()),
            participant: None,
        };
        let react =
            whatsapp_rust::wacore::proto_helpers::build_reaction_message(key.clone(), "👍", 1);
        assert!(matches!(
            classify(&react),
            Inbound::Reaction { emoji: "👍", .. }
        ));
        let edit = wa::Message {
            protocol_message: MessageField::some(wa::message::ProtocolMessage {
                key: MessageField::some(key.clone()),
                r#type: Some(Type::MESSAGE_EDIT),
                edited_message: MessageField::some(text("fixed")),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(matches!(classify(&edit), Inbound::Edit { text, .. } if text == "fixed"));
        let revoke = wa::Message {
            protocol_message: MessageField::some(wa::message::ProtocolMessage {
                key: MessageField::some(key.clone()),
                r#type: Some(Type::REVOKE),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(matches!(classify(&revoke), Inbound::Revoke { .. }));
        let skdm_only = wa::Message {
            sender_key_distribution_message: MessageField::some(
                wa::message::SenderKeyDistributionMessage::default(),
            ),
            ..Default::default()
        };
        assert!(matches!(classify(&skdm_only), Inbound::Internal));
        let buttons = wa::Message {
            buttons_message: MessageField::some(wa::message::ButtonsMessage {
                content_text: Some("Pick one".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(matches!(classify(&buttons), Inbound::Content(_)));
        assert_eq!(kind_of(&buttons), Kind::Unknown);
    }
}
