//! `whatsapp-read` and `whatsapp-send` against a small fake world: contacts with phone,
//! LID, about text and picture, a block list, and a connection that can be dropped (every
//! call then answers `not-connected`, which plugins turn into 501).

use super::current_call;
use crate::guest::bindings::wa::gateway::whatsapp_read::{BlockedContact, OnWhatsapp, Picture};
use crate::guest::bindings::wa::gateway::whatsapp_types::WhatsappError;
use crate::jid::{Jid, parse_person, parse_phone};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// A person the fake WhatsApp knows.
#[derive(Debug, Clone, Default)]
pub struct FakeContact {
    /// Digits with country code.
    pub phone: String,
    /// `…@lid`.
    pub lid: String,
    pub about: String,
    /// The picture id, when one is set.
    pub picture: Option<String>,
    /// Privacy hides the picture.
    pub picture_hidden: bool,
}

#[derive(Default)]
struct World {
    disconnected: bool,
    contacts: Vec<FakeContact>,
    /// Blocked JIDs (by LID when the contact is known) → when.
    blocked: BTreeMap<String, u64>,
}

thread_local! {
    static WORLD: RefCell<World> = RefCell::new(World::default());
}

pub(crate) fn reset() {
    WORLD.with_borrow_mut(|w| *w = World::default());
}

/// The handle tests set the fake WhatsApp up with.
#[derive(Debug, Clone, Copy)]
pub struct WhatsappWorld;

impl WhatsappWorld {
    pub fn add_contact(&self, contact: FakeContact) {
        WORLD.with_borrow_mut(|w| w.contacts.push(contact));
    }

    /// Drops (false) or restores (true) the session's connection.
    pub fn set_connected(&self, connected: bool) {
        WORLD.with_borrow_mut(|w| w.disconnected = !connected);
    }

    /// The JIDs blocked right now.
    pub fn blocked(&self) -> Vec<String> {
        WORLD.with_borrow(|w| w.blocked.keys().cloned().collect())
    }
}

fn live<T>(f: impl FnOnce(&mut World) -> Result<T, WhatsappError>) -> Result<T, WhatsappError> {
    if current_call().and_then(|c| c.session).is_none() {
        return Err(WhatsappError::Failed(
            "live calls need a session route".into(),
        ));
    }
    WORLD.with_borrow_mut(|w| {
        if w.disconnected {
            return Err(WhatsappError::NotConnected(
                "session is not connected".into(),
            ));
        }
        f(w)
    })
}

fn person(raw: &str) -> Result<Jid, WhatsappError> {
    parse_person(raw).map_err(|e| WhatsappError::Invalid(e.to_string()))
}

impl World {
    fn find(&self, jid: &Jid) -> Option<&FakeContact> {
        self.contacts.iter().find(|c| {
            if jid.is_lid() {
                c.lid == jid.to_non_device().to_string()
            } else {
                jid.phone_number() == Some(c.phone.as_str())
            }
        })
    }

    fn known(&self, jid: &Jid) -> Result<&FakeContact, WhatsappError> {
        self.find(jid)
            .ok_or_else(|| WhatsappError::NotFound(format!("{jid} is not on WhatsApp")))
    }

    /// Blocks are kept by LID when the person is known, as WhatsApp does.
    fn block_key(&self, jid: &Jid) -> String {
        self.find(jid)
            .map(|c| c.lid.clone())
            .unwrap_or_else(|| jid.to_non_device().to_string())
    }
}

pub(crate) fn check_phone(phone: &str) -> Result<OnWhatsapp, WhatsappError> {
    live(|w| {
        let digits = parse_phone(phone, true).map_err(|e| WhatsappError::Invalid(e.to_string()))?;
        Ok(match w.contacts.iter().find(|c| c.phone == digits) {
            Some(c) => OnWhatsapp {
                query: digits,
                is_on_whatsapp: true,
                jid: Some(format!("{}@s.whatsapp.net", c.phone)),
                lid: Some(c.lid.clone()),
            },
            None => OnWhatsapp {
                query: digits,
                is_on_whatsapp: false,
                jid: None,
                lid: None,
            },
        })
    })
}

pub(crate) fn profile_picture(jid: &str) -> Result<Option<Picture>, WhatsappError> {
    if crate::jid::parse_group(jid).is_ok() {
        let picture = super::groups::group_metadata(jid)
            .map(|_| super::groups::GroupsWorld.get(jid).and_then(|g| g.picture))?;
        return Ok(picture.map(|id| Picture {
            url: format!("https://pps.example/{id}.jpg"),
            kind: "image".into(),
            direct_path: format!("/v/{id}"),
            id,
        }));
    }
    live(|w| {
        let c = w.known(&person(jid)?)?;
        if c.picture_hidden {
            return Ok(None);
        }
        Ok(c.picture.as_ref().map(|id| Picture {
            id: id.clone(),
            url: format!("https://pps.example/{id}.jpg"),
            kind: "image".into(),
            direct_path: format!("/v/{id}"),
        }))
    })
}

pub(crate) fn about(jid: &str) -> Result<String, WhatsappError> {
    live(|w| Ok(w.known(&person(jid)?)?.about.clone()))
}

pub(crate) fn blocklist() -> Result<Vec<BlockedContact>, WhatsappError> {
    live(|w| {
        Ok(w.blocked
            .iter()
            .map(|(jid, at)| BlockedContact {
                jid: jid.clone(),
                lid: jid.ends_with("@lid").then(|| jid.clone()),
                blocked_at: Some(*at),
            })
            .collect())
    })
}

pub(crate) use super::groups::{group_metadata, invite_info, self_identity};

pub(crate) fn block(jid: &str) -> Result<(), WhatsappError> {
    live(|w| {
        let key = w.block_key(&person(jid)?);
        w.blocked.entry(key).or_insert(1_719_662_400_000);
        Ok(())
    })
}

pub(crate) fn unblock(jid: &str) -> Result<(), WhatsappError> {
    live(|w| {
        let key = w.block_key(&person(jid)?);
        w.blocked.remove(&key);
        Ok(())
    })
}
