//! sendMessage (API.md §6.2): the body by `type`, every rule and limit, the outbound
//! message built from it, and the `pending` row written when the outbox accepts it.

use crate::mime;
use crate::model::{
    ContactInfo, LocationInfo, MediaInfo, MessageType, PollDefinition, StoredMessage,
};
use crate::queue;
use crate::store::{MessageStore, valid_id};
use gateway_sdk::outbox::{
    ContactCard, Content, Location, Media, MediaKind, MediaSource, MessageKey, Outbound, Poll,
    SendResult,
};
use gateway_sdk::{ApiError, Jid, JsonSchema, Request, Response, jid};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Text and captions: 1 to this many characters.
pub(crate) const MAX_TEXT_CHARS: usize = 65_536;
const MAX_POLL_NAME_CHARS: usize = 255;
const MAX_POLL_OPTION_CHARS: usize = 100;
const POLL_OPTIONS: std::ops::RangeInclusive<usize> = 2..=12;
const MAX_VCARD_BYTES: usize = 64 << 10;
const MAX_CONTACT_NAME_CHARS: usize = 255;
const MAX_FILE_NAME_CHARS: usize = 255;
/// A group holds 1024 people; nobody mentions more.
const MAX_MENTIONS: usize = 1024;

/// sendMessage's body: `type` says which fields it takes. `to` is a user JID, LID, group
/// JID or bare digits; `replyTo` is the id of a message stored in that chat.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub(crate) enum SendBody {
    /// Text, 1–65 536 characters.
    Text {
        to: String,
        text: String,
        /// User JIDs mentioned in the text.
        #[serde(default)]
        mentions: Vec<String>,
        reply_to: Option<String>,
    },
    /// A poll: 2–12 distinct options of at most 100 characters; a name of at most 255.
    Poll {
        to: String,
        name: String,
        options: Vec<String>,
        /// How many options a voter may pick: default 1; 0 = any.
        selectable_count: Option<u32>,
        reply_to: Option<String>,
    },
    Location {
        to: String,
        /// −90 to 90.
        latitude: f64,
        /// −180 to 180.
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
        reply_to: Option<String>,
    },
    Contact {
        to: String,
        contact: ContactBody,
        reply_to: Option<String>,
    },
    Image {
        to: String,
        media: CaptionedMedia,
        /// User JIDs mentioned in the caption.
        #[serde(default)]
        mentions: Vec<String>,
        reply_to: Option<String>,
    },
    Video {
        to: String,
        media: CaptionedMedia,
        #[serde(default)]
        mentions: Vec<String>,
        reply_to: Option<String>,
    },
    Audio {
        to: String,
        media: AudioMedia,
        reply_to: Option<String>,
    },
    Document {
        to: String,
        media: DocumentMedia,
        #[serde(default)]
        mentions: Vec<String>,
        reply_to: Option<String>,
    },
    Sticker {
        to: String,
        media: StickerMedia,
        reply_to: Option<String>,
    },
}

/// A contact card: a raw vCard (at most 64 KiB), or a name and phone number.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum ContactBody {
    VCard(String),
    Person(ContactPerson),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactPerson {
    name: String,
    /// Digits with country code; a leading + is allowed.
    phone: String,
}

/// Image or video: `data` (base64 or a `data:` URI, at most 16 MiB decoded) or `id` (an
/// upload, `med_…`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaptionedMedia {
    data: Option<String>,
    id: Option<String>,
    /// Else the `data:` URI's type, else sniffed from the bytes.
    mimetype: Option<String>,
    caption: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct AudioMedia {
    data: Option<String>,
    id: Option<String>,
    /// ogg (Opus), mpeg, mp4 or aac.
    mimetype: Option<String>,
    /// Send as a voice note (push-to-talk); needs Ogg Opus.
    voice_note: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocumentMedia {
    data: Option<String>,
    id: Option<String>,
    /// Any type; else the `data:` URI's, else sniffed, else application/octet-stream.
    mimetype: Option<String>,
    caption: Option<String>,
    filename: Option<String>,
}

/// A sticker: WebP.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StickerMedia {
    data: Option<String>,
    id: Option<String>,
    mimetype: Option<String>,
}

/// Every media field, whichever kind carried them.
struct MediaFields {
    data: Option<String>,
    id: Option<String>,
    mimetype: Option<String>,
    caption: Option<String>,
    filename: Option<String>,
    voice_note: bool,
}

impl From<CaptionedMedia> for MediaFields {
    fn from(m: CaptionedMedia) -> Self {
        MediaFields {
            data: m.data,
            id: m.id,
            mimetype: m.mimetype,
            caption: m.caption,
            filename: None,
            voice_note: false,
        }
    }
}

impl From<AudioMedia> for MediaFields {
    fn from(m: AudioMedia) -> Self {
        MediaFields {
            data: m.data,
            id: m.id,
            mimetype: m.mimetype,
            caption: None,
            filename: None,
            voice_note: m.voice_note.unwrap_or(false),
        }
    }
}

impl From<DocumentMedia> for MediaFields {
    fn from(m: DocumentMedia) -> Self {
        MediaFields {
            data: m.data,
            id: m.id,
            mimetype: m.mimetype,
            caption: m.caption,
            filename: m.filename,
            voice_note: false,
        }
    }
}

impl From<StickerMedia> for MediaFields {
    fn from(m: StickerMedia) -> Self {
        MediaFields {
            data: m.data,
            id: m.id,
            mimetype: m.mimetype,
            caption: None,
            filename: None,
            voice_note: false,
        }
    }
}

/// A recipient: a user JID, LID or group JID (device parts dropped), or bare digits
/// with country code.
pub(crate) fn recipient(raw: &str, field: &str) -> Result<Jid, ApiError> {
    let raw = raw.trim();
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return Jid::from_phone(raw).map_err(|e| ApiError::invalid_field(field, e.to_string()));
    }
    let j = Jid::parse(raw).map_err(|e| ApiError::invalid_field(field, e.to_string()))?;
    if !(j.is_person() || j.is_group()) {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must be a user JID, LID, group JID or phone digits"),
        ));
    }
    Ok(j.to_non_device())
}

/// Text and captions: 1–65 536 characters, not only whitespace.
pub(crate) fn check_text(field: &str, text: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} is limited to {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(())
}

fn mentions(list: Vec<String>) -> Result<Vec<String>, ApiError> {
    if list.len() > MAX_MENTIONS {
        return Err(ApiError::invalid_field(
            "mentions",
            format!("at most {MAX_MENTIONS} mentions"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for raw in list {
        let j = jid::parse_person(&raw)
            .map_err(|e| ApiError::invalid_field("mentions", e.to_string()))?
            .to_string();
        if !out.contains(&j) {
            out.push(j);
        }
    }
    Ok(out)
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} is limited to {max} characters"),
        ));
    }
    Ok(())
}

fn optional_text(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => {
            check_text(field, &v)?;
            Ok(Some(v))
        }
        None => Ok(None),
    }
}

/// What a validated body sends, and what the stored message will say.
struct Prepared {
    content: Content,
    kind: MessageType,
    body: String,
    mentions: Vec<String>,
    media: Option<MediaInfo>,
    location: Option<LocationInfo>,
    contact: Option<ContactInfo>,
    poll: Option<PollDefinition>,
}

impl Prepared {
    fn new(content: Content, kind: MessageType) -> Prepared {
        Prepared {
            content,
            kind,
            body: String::new(),
            mentions: Vec::new(),
            media: None,
            location: None,
            contact: None,
            poll: None,
        }
    }
}

fn prepare_poll(
    name: String,
    options: Vec<String>,
    selectable_count: Option<u32>,
) -> Result<Prepared, ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid_field("name", "a poll needs a name"));
    }
    check_len("name", &name, MAX_POLL_NAME_CHARS)?;
    if !POLL_OPTIONS.contains(&options.len()) {
        return Err(ApiError::invalid_field(
            "options",
            "a poll has 2 to 12 options",
        ));
    }
    for (i, o) in options.iter().enumerate() {
        if o.trim().is_empty() {
            return Err(ApiError::invalid_field(
                "options",
                "options must not be empty",
            ));
        }
        check_len("options", o, MAX_POLL_OPTION_CHARS)?;
        if options[..i].contains(o) {
            return Err(ApiError::invalid_field(
                "options",
                format!("option '{o}' appears twice"),
            ));
        }
    }
    let selectable_count = selectable_count.unwrap_or(1);
    if selectable_count as usize > options.len() {
        return Err(ApiError::invalid_field(
            "selectableCount",
            "selectableCount is at most the number of options (0 = any)",
        ));
    }
    let poll = PollDefinition {
        name: name.clone(),
        options: options.clone(),
        selectable_count,
    };
    let mut p = Prepared::new(
        Content::Poll(Poll {
            name: name.clone(),
            options,
            selectable_count,
        }),
        MessageType::Poll,
    );
    p.body = name;
    p.poll = Some(poll);
    Ok(p)
}

fn prepare_location(
    latitude: f64,
    longitude: f64,
    name: Option<String>,
    address: Option<String>,
) -> Result<Prepared, ApiError> {
    if !(latitude.is_finite() && (-90.0..=90.0).contains(&latitude)) {
        return Err(ApiError::invalid_field("latitude", "latitude is -90 to 90"));
    }
    if !(longitude.is_finite() && (-180.0..=180.0).contains(&longitude)) {
        return Err(ApiError::invalid_field(
            "longitude",
            "longitude is -180 to 180",
        ));
    }
    let name = optional_text("name", name)?;
    let address = optional_text("address", address)?;
    let info = LocationInfo {
        latitude,
        longitude,
        name: name.clone(),
        address: address.clone(),
    };
    let mut p = Prepared::new(
        Content::Location(Location {
            latitude,
            longitude,
            name,
            address,
        }),
        MessageType::Location,
    );
    p.location = Some(info);
    Ok(p)
}

/// The display name of a vCard (its `FN` line).
fn vcard_name(vcard: &str) -> Option<String> {
    vcard.lines().find_map(|line| {
        let (head, value) = line.split_once(':')?;
        let prop = head.split(';').next()?.trim();
        (prop.eq_ignore_ascii_case("FN") && !value.trim().is_empty())
            .then(|| value.trim().to_owned())
    })
}

fn prepare_contact(contact: ContactBody) -> Result<Prepared, ApiError> {
    let field = "contact";
    let card = match contact {
        ContactBody::VCard(vcard) => {
            if vcard.len() > MAX_VCARD_BYTES {
                return Err(ApiError::invalid_field(
                    field,
                    "a vCard is limited to 64 KiB",
                ));
            }
            let t = vcard.trim();
            let upper = t.to_ascii_uppercase();
            if !upper.starts_with("BEGIN:VCARD") || !upper.ends_with("END:VCARD") {
                return Err(ApiError::invalid_field(
                    field,
                    "contact must be a vCard (BEGIN:VCARD … END:VCARD) or {name, phone}",
                ));
            }
            let name = vcard_name(t)
                .ok_or_else(|| ApiError::invalid_field(field, "the vCard has no FN (name) line"))?;
            ContactCard {
                name,
                vcard: t.to_owned(),
            }
        }
        ContactBody::Person(p) => {
            let name = p.name.trim().to_owned();
            if name.is_empty() {
                return Err(ApiError::invalid_field(
                    "contact.name",
                    "a contact needs a name",
                ));
            }
            check_len("contact.name", &name, MAX_CONTACT_NAME_CHARS)?;
            if name.contains(['\r', '\n']) {
                return Err(ApiError::invalid_field(
                    "contact.name",
                    "a contact's name is one line",
                ));
            }
            let digits = jid::parse_phone(&p.phone, true)
                .map_err(|e| ApiError::invalid_field("contact.phone", e.to_string()))?;
            let vcard = format!(
                "BEGIN:VCARD\nVERSION:3.0\nFN:{name}\nTEL;type=CELL;waid={digits}:+{digits}\nEND:VCARD"
            );
            ContactCard { name, vcard }
        }
    };
    let info = ContactInfo {
        name: card.name.clone(),
        vcard: card.vcard.clone(),
    };
    let mut p = Prepared::new(Content::Contact(card), MessageType::Contact);
    p.body = info.name.clone();
    p.contact = Some(info);
    Ok(p)
}

fn prepare_media(kind: MediaKind, m: MediaFields) -> Result<Prepared, ApiError> {
    let declared = m.mimetype.as_deref();
    let (source, mimetype, size) = match (m.data, m.id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_field(
                "media",
                "give media.data or media.id, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid_field(
                "media",
                "media.data or media.id is required",
            ));
        }
        (Some(d), None) => {
            let inline = mime::decode_data(&d)?;
            let mimetype = mime::resolve(kind, declared, Some(&inline))?;
            let size = inline.bytes.len() as u64;
            (MediaSource::Inline(inline.bytes), mimetype, Some(size))
        }
        (None, Some(id)) => {
            let id = id.trim().to_owned();
            if !id.starts_with("med_") || !valid_id(&id) {
                return Err(ApiError::invalid_field(
                    "media.id",
                    "media.id is an uploaded file's id (med_…)",
                ));
            }
            (
                MediaSource::Upload(id),
                mime::resolve(kind, declared, None)?,
                None,
            )
        }
    };
    if m.voice_note && !mimetype.as_deref().is_none_or(mime::is_ogg) {
        return Err(ApiError::invalid_field(
            "media.voiceNote",
            "a voice note must be Ogg Opus (audio/ogg)",
        ));
    }
    let caption = optional_text("media.caption", m.caption)?;
    let file_name = match m
        .filename
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
    {
        Some(f) => {
            check_len("media.filename", &f, MAX_FILE_NAME_CHARS)?;
            if f.contains(['/', '\\']) || f.chars().any(char::is_control) {
                return Err(ApiError::invalid_field(
                    "media.filename",
                    "a file name has no path or control characters",
                ));
            }
            Some(f)
        }
        None => None,
    };
    let info = MediaInfo {
        mimetype: mimetype.clone(),
        size,
        file_name: file_name.clone(),
        seconds: None,
        width: None,
        height: None,
    };
    let message_type = match kind {
        MediaKind::Image => MessageType::Image,
        MediaKind::Video => MessageType::Video,
        MediaKind::Audio => MessageType::Audio,
        MediaKind::Document => MessageType::Document,
        MediaKind::Sticker => MessageType::Sticker,
    };
    let mut p = Prepared::new(
        Content::Media(Media {
            kind,
            source,
            mimetype,
            caption: caption.clone(),
            file_name,
            voice_note: m.voice_note,
        }),
        message_type,
    );
    p.body = caption.unwrap_or_default();
    p.media = Some(info);
    Ok(p)
}

/// Validates a body: the recipient, the content, the mentions and the message replied to.
fn prepare(body: SendBody) -> Result<(Jid, Prepared, Option<String>), ApiError> {
    let (to, reply_to, prepared, mention_list) = match body {
        SendBody::Text {
            to,
            text,
            mentions,
            reply_to,
        } => {
            check_text("text", &text)?;
            let mut p = Prepared::new(Content::Text(text.clone()), MessageType::Text);
            p.body = text;
            (to, reply_to, p, mentions)
        }
        SendBody::Poll {
            to,
            name,
            options,
            selectable_count,
            reply_to,
        } => (
            to,
            reply_to,
            prepare_poll(name, options, selectable_count)?,
            Vec::new(),
        ),
        SendBody::Location {
            to,
            latitude,
            longitude,
            name,
            address,
            reply_to,
        } => {
            let p = prepare_location(latitude, longitude, name, address)?;
            (to, reply_to, p, Vec::new())
        }
        SendBody::Contact {
            to,
            contact,
            reply_to,
        } => (to, reply_to, prepare_contact(contact)?, Vec::new()),
        SendBody::Image {
            to,
            media,
            mentions,
            reply_to,
        } => (
            to,
            reply_to,
            prepare_media(MediaKind::Image, media.into())?,
            mentions,
        ),
        SendBody::Video {
            to,
            media,
            mentions,
            reply_to,
        } => (
            to,
            reply_to,
            prepare_media(MediaKind::Video, media.into())?,
            mentions,
        ),
        SendBody::Audio {
            to,
            media,
            reply_to,
        } => (
            to,
            reply_to,
            prepare_media(MediaKind::Audio, media.into())?,
            Vec::new(),
        ),
        SendBody::Document {
            to,
            media,
            mentions,
            reply_to,
        } => (
            to,
            reply_to,
            prepare_media(MediaKind::Document, media.into())?,
            mentions,
        ),
        SendBody::Sticker {
            to,
            media,
            reply_to,
        } => (
            to,
            reply_to,
            prepare_media(MediaKind::Sticker, media.into())?,
            Vec::new(),
        ),
    };
    let to = recipient(&to, "to")?;
    let mut prepared = prepared;
    if !mention_list.is_empty() && prepared.body.is_empty() {
        return Err(ApiError::invalid_field(
            "mentions",
            "mentions need a text or caption to appear in",
        ));
    }
    prepared.mentions = mentions(mention_list)?;
    let reply_to = match reply_to
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
    {
        Some(id) if valid_id(&id) => Some(id),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "replyTo",
                "replyTo is a message id",
            ));
        }
        None => None,
    };
    Ok((to, prepared, reply_to))
}

/// The key of a stored message, as an action or reply names it on WhatsApp.
pub(crate) fn key_of(m: &StoredMessage) -> MessageKey {
    MessageKey {
        chat: m.chat.clone(),
        id: m.id.clone(),
        sender: if m.from_me {
            None
        } else {
            m.sender
                .clone()
                .or_else(|| m.sender_lid.clone())
                .or_else(|| m.sender_jid.clone())
        },
    }
}

/// The stored row of a message this account sends, as the outbox accepted it.
pub(crate) fn pending_row(
    result: &SendResult,
    chat: &str,
    kind: MessageType,
    body: String,
) -> StoredMessage {
    let mut m = StoredMessage {
        id: result.wa_message_id.clone(),
        chat: chat.to_owned(),
        sender: None,
        sender_jid: None,
        sender_lid: None,
        from_me: true,
        kind,
        body,
        media: None,
        quoted_id: None,
        mentions: Vec::new(),
        location: None,
        contact: None,
        poll: None,
        reactions: BTreeMap::new(),
        votes: BTreeMap::new(),
        forwarded: false,
        edited: false,
        edited_at: None,
        deleted: false,
        ack_level: 0,
        failed: false,
        error: None,
        error_code: None,
        outbox_id: Some(result.outbox_id.clone()),
        push_name: None,
        created_at: result.timestamp,
        updated_at: result.timestamp,
        seq: 0,
    };
    m.acknowledge_send(result);
    m
}

pub(crate) fn send_message(req: &Request) -> Result<Response, ApiError> {
    queue::check_headers(req)?;
    let body: SendBody = req.json()?;
    let input: Value = req.json()?;
    let (to, prepared, reply_to) = prepare(body)?;
    let to = to.to_string();
    let store = MessageStore::new();
    let quoted = match &reply_to {
        Some(id) => Some(store.find(&to, id)?.ok_or_else(|| {
            ApiError::not_found(format!("no message {id} is stored in {to}"))
                .with_detail("field", "replyTo")
        })?),
        None => None,
    };
    let message = Outbound {
        to: to.clone(),
        content: prepared.content,
        reply_to: quoted.as_ref().map(key_of),
        mentions: prepared.mentions.clone(),
        forwarded: false,
    };
    let submitted = queue::submit(req, &message, &input)?;
    if !submitted.replayed {
        let mut row = pending_row(&submitted.result, &to, prepared.kind, prepared.body);
        row.quoted_id = reply_to;
        row.mentions = prepared.mentions;
        row.media = prepared.media;
        row.location = prepared.location;
        row.contact = prepared.contact;
        row.poll = prepared.poll;
        let mut store = store;
        store.save(&mut row)?;
        store.commit()?;
    }
    Ok(queue::answer(&submitted))
}
