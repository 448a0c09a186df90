//! The stand-in's view of the WhatsApp world: users (the accounts under test and the
//! contacts they talk to), their devices and published keys, groups, blocklists, queued
//! stanzas awaiting acknowledgement, and what the accounts sent.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::mpsc;
use wacore_binary::{Jid, Node, Server};

use crate::appstate::AccountAppState;
use crate::signal::{PublicBundle, SignalDevice};

/// Identifies one client connection.
pub(crate) type ConnectionId = u64;

/// What a connection's writer task is told to do.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Node(Box<Node>),
    /// Close the socket after everything queued before it was written.
    Close,
}

/// A live client connection.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) id: ConnectionId,
    pub(crate) out: mpsc::UnboundedSender<Outgoing>,
}

impl Connection {
    pub(crate) fn send(&self, node: Node) {
        let _ = self.out.send(Outgoing::Node(Box::new(node)));
    }

    pub(crate) fn close(&self) {
        let _ = self.out.send(Outgoing::Close);
    }
}

/// A user's "About" text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct About {
    /// The text.
    pub text: String,
    /// When it was set (unix seconds).
    pub set_at: i64,
}

/// A profile picture as the server describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfilePicture {
    /// The picture id (numeric string).
    pub id: String,
    /// Full download URL.
    pub url: String,
    /// CDN direct path.
    pub direct_path: String,
}

/// A contact saved in an account's phone address book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedContact {
    /// The contact's phone number.
    pub phone: String,
    /// The full name the account saved them under.
    pub full_name: String,
    /// The first (short) name, if the phone has one.
    pub first_name: Option<String>,
}

/// Who may add a user to groups (WhatsApp's "Groups" privacy setting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GroupAddPrivacy {
    /// Anyone may add them.
    #[default]
    Everyone,
    /// Only users in their address book may add them; others get an invite instead.
    MyContacts,
    /// Nobody may add them directly; admins get an invite to send instead.
    Nobody,
}

/// A companion device's keys as it uploaded them.
#[derive(Clone, Debug)]
pub(crate) struct CompanionKeys {
    pub(crate) bundle: PublicBundle,
}

/// One stanza the server holds for a device until the device acknowledges it.
#[derive(Clone, Debug)]
pub(crate) struct QueuedStanza {
    pub(crate) id: String,
    /// The `<ack class>` (or receipt) that releases it: "message", "receipt", "notification".
    pub(crate) class: &'static str,
    /// The stanza `type` where several share an id (a read receipt after a delivery one).
    pub(crate) kind: Option<String>,
    pub(crate) node: Node,
    /// For a message a stand-in phone encrypted: what to re-encrypt if the device asks
    /// for a retry.
    pub(crate) resend: Option<Box<Resend>>,
}

/// The plaintext side of a held message, kept so the sender can answer a retry receipt.
#[derive(Clone, Debug)]
pub(crate) struct Resend {
    pub(crate) sender_pn: String,
    pub(crate) message: waproto::whatsapp::Message,
    pub(crate) kind: String,
    /// The group it went to, for a member's group message.
    pub(crate) group: Option<Jid>,
}

/// A linked (companion) device of an account: the client under test.
pub(crate) struct Companion {
    pub(crate) device: u16,
    pub(crate) noise_key: [u8; 32],
    pub(crate) keys: CompanionKeys,
    pub(crate) key_index: u32,
    /// The `ADVSignedDeviceIdentity` the device counter-signed at pairing.
    pub(crate) signed_identity: Vec<u8>,
    pub(crate) platform: String,
    pub(crate) offline: VecDeque<QueuedStanza>,
    /// The device's socket, while it has one.
    pub(crate) connection: Option<Connection>,
    /// Whether the device left passive mode on that socket (offline delivery done; new
    /// stanzas go out immediately).
    pub(crate) active: bool,
    /// The Noise pattern of its latest connection.
    pub(crate) last_pattern: Option<crate::noise::HandshakePattern>,
}

/// A WhatsApp user: a phone number with a primary phone (device 0) whose keys the
/// stand-in holds, and zero or more linked companion devices.
pub(crate) struct User {
    pub(crate) pn: String,
    pub(crate) lid: String,
    pub(crate) push_name: String,
    pub(crate) about: Option<About>,
    pub(crate) picture: Option<ProfilePicture>,
    /// Blocked users, by user JID string, with the time they were blocked.
    pub(crate) blocklist: BTreeMap<String, i64>,
    pub(crate) phone: Arc<tokio::sync::Mutex<SignalDevice>>,
    pub(crate) phone_bundle: PublicBundle,
    /// The phone's identity key pair, which is also the account's ADV signing key.
    pub(crate) account_key: wacore_libsignal::protocol::IdentityKeyPair,
    pub(crate) companions: BTreeMap<u16, Companion>,
    pub(crate) next_device: u16,
    pub(crate) next_key_index: u32,
    pub(crate) app_state: AccountAppState,
    /// The phone's address book, by contact phone number.
    pub(crate) address_book: BTreeMap<String, SavedContact>,
    pub(crate) group_add_privacy: GroupAddPrivacy,
}

impl User {
    pub(crate) fn new(pn: &str, lid: &str, push_name: &str) -> Self {
        let (phone, phone_bundle) = SignalDevice::generate();
        let account_key = phone.identity().clone();
        Self {
            account_key,
            pn: pn.to_owned(),
            lid: lid.to_owned(),
            push_name: push_name.to_owned(),
            about: None,
            picture: None,
            blocklist: BTreeMap::new(),
            phone: Arc::new(tokio::sync::Mutex::new(phone)),
            phone_bundle,
            companions: BTreeMap::new(),
            next_device: 1,
            next_key_index: 1,
            app_state: AccountAppState::new(),
            address_book: BTreeMap::new(),
            group_add_privacy: GroupAddPrivacy::default(),
        }
    }

    pub(crate) fn pn_jid(&self) -> Jid {
        Jid::pn(self.pn.as_str())
    }

    pub(crate) fn lid_jid(&self) -> Jid {
        Jid::lid(self.lid.as_str())
    }

    pub(crate) fn is_account(&self) -> bool {
        !self.companions.is_empty()
    }

    /// Whether `other` may add this user to a group directly.
    pub(crate) fn accepts_group_add_from(&self, other: &User) -> bool {
        if self.blocklist.contains_key(&other.pn_jid().to_string())
            || self.blocklist.contains_key(&other.lid_jid().to_string())
        {
            return false;
        }
        match self.group_add_privacy {
            GroupAddPrivacy::Everyone => true,
            GroupAddPrivacy::MyContacts => self.address_book.contains_key(&other.pn),
            GroupAddPrivacy::Nobody => false,
        }
    }
}

/// The role a participant has in a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParticipantRole {
    /// A plain member.
    Member,
    /// An admin.
    Admin,
    /// The group's super admin (creator).
    SuperAdmin,
}

/// Who may add members to a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MemberAddMode {
    /// Only admins (`admin_add`).
    AdminAdd,
    /// Every member (`all_member_add`).
    #[default]
    AllMemberAdd,
}

impl MemberAddMode {
    pub(crate) fn wire(self) -> &'static str {
        match self {
            Self::AdminAdd => "admin_add",
            Self::AllMemberAdd => "all_member_add",
        }
    }

    pub(crate) fn from_wire(value: &str) -> Option<Self> {
        match value {
            "admin_add" => Some(Self::AdminAdd),
            "all_member_add" => Some(Self::AllMemberAdd),
            _ => None,
        }
    }
}

/// A group's settings, as admins set them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GroupSettings {
    /// Only admins may send messages (`announcement`).
    pub announcement: bool,
    /// Only admins may edit the group info: subject, description, picture (`locked`).
    pub locked: bool,
    /// Joining by invite link needs an admin's approval (`membership_approval_mode`).
    pub membership_approval: bool,
    /// Who may add members.
    pub member_add_mode: MemberAddMode,
    /// Whether every member (not only admins) may read the invite link
    /// (`member_link_mode` `all_member_link`).
    pub members_share_link: bool,
    /// Disappearing-messages timer in seconds; 0 is off.
    pub ephemeral_expiration: u32,
}

/// One setting an admin changes (what [`crate::StandIn::set_group_setting`] applies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupSetting {
    /// Announcement mode on (only admins send) or off.
    Announcement(bool),
    /// Group info locked to admins or not.
    Locked(bool),
    /// Membership approval mode on or off.
    MembershipApproval(bool),
    /// Who may add members.
    MemberAddMode(MemberAddMode),
    /// Disappearing messages after this many seconds; 0 turns them off.
    Ephemeral(u32),
}

/// A request to join a group that waits for an admin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipRequest {
    /// The requester's phone number.
    pub phone: String,
    /// When they asked (unix seconds).
    pub requested_at: i64,
}

/// An invitation a privacy setting turned a direct add into (`<add_request>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AddRequest {
    pub(crate) phone: String,
    pub(crate) code: String,
    pub(crate) expiration: i64,
}

/// A group chat.
#[derive(Clone, Debug)]
pub struct Group {
    /// The group id (the user part of `id@g.us`).
    pub id: String,
    /// The subject (name).
    pub subject: String,
    /// The creator's phone number.
    pub creator: String,
    /// When it was created (unix seconds).
    pub created_at: i64,
    /// Members, by phone number, in join order.
    pub participants: Vec<(String, ParticipantRole)>,
    /// Group description, if any.
    pub description: Option<String>,
    /// Who last set the subject (phone number) and when (unix seconds).
    pub subject_owner: Option<String>,
    /// When the subject was last set (unix seconds).
    pub subject_time: i64,
    /// The id of the current description; a client replacing it names it as `prev`.
    pub description_id: Option<String>,
    /// Who set the description (phone number).
    pub description_owner: Option<String>,
    /// When the description was set (unix seconds).
    pub description_time: i64,
    /// Admin-controlled settings.
    pub settings: GroupSettings,
    /// The current invite-link code (`https://chat.whatsapp.com/<code>`).
    pub invite_code: String,
    /// Join requests waiting for an admin.
    pub pending_requests: Vec<MembershipRequest>,
    /// The group's picture, if set.
    pub picture: Option<ProfilePicture>,
    /// Invite codes an admin reset: joining with one is refused as gone (410).
    pub(crate) revoked_invite_codes: Vec<String>,
    /// Members who left on their own, with when: re-adding them directly is refused (408).
    pub(crate) left: BTreeMap<String, i64>,
    /// Invitations handed out instead of direct adds.
    pub(crate) add_requests: Vec<AddRequest>,
}

impl Group {
    /// A group with default settings and a fresh invite code.
    pub(crate) fn new(
        id: String,
        subject: &str,
        creator: &str,
        created_at: i64,
        participants: Vec<(String, ParticipantRole)>,
        description: Option<&str>,
    ) -> Self {
        Self {
            id,
            subject: subject.to_owned(),
            creator: creator.to_owned(),
            created_at,
            participants,
            description: description.map(str::to_owned),
            subject_owner: Some(creator.to_owned()),
            subject_time: created_at,
            description_id: description.map(|_| fresh_token(8).to_uppercase()),
            description_owner: description.map(|_| creator.to_owned()),
            description_time: if description.is_some() { created_at } else { 0 },
            settings: GroupSettings::default(),
            invite_code: fresh_token(22),
            pending_requests: Vec::new(),
            picture: None,
            revoked_invite_codes: Vec::new(),
            left: BTreeMap::new(),
            add_requests: Vec::new(),
        }
    }

    pub(crate) fn jid(&self) -> Jid {
        Jid::group(self.id.as_str())
    }

    /// The role of `pn`, if it is a member.
    pub fn role_of(&self, pn: &str) -> Option<ParticipantRole> {
        self.participants
            .iter()
            .find(|(p, _)| p == pn)
            .map(|(_, role)| *role)
    }

    /// Whether `pn` is a member.
    pub fn is_member(&self, pn: &str) -> bool {
        self.role_of(pn).is_some()
    }

    /// Whether `pn` is an admin or the super admin.
    pub fn is_admin(&self, pn: &str) -> bool {
        matches!(
            self.role_of(pn),
            Some(ParticipantRole::Admin | ParticipantRole::SuperAdmin)
        )
    }

    /// The members' phone numbers.
    pub(crate) fn member_pns(&self) -> Vec<String> {
        self.participants.iter().map(|(pn, _)| pn.clone()).collect()
    }

    /// The admins' phone numbers.
    pub(crate) fn admin_pns(&self) -> Vec<String> {
        self.participants
            .iter()
            .filter(|(_, role)| *role != ParticipantRole::Member)
            .map(|(pn, _)| pn.clone())
            .collect()
    }
}

/// A random alphanumeric token (invite codes, description ids).
pub(crate) fn fresh_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}

/// A fresh group id, in the shape WhatsApp hands out (`1203630…`).
pub(crate) fn fresh_group_id() -> String {
    format!("1203630{:011}", rand::random_range(0..100_000_000_000u64))
}

/// A message an account's device sent through the server.
#[derive(Clone, Debug)]
pub struct SentMessage {
    /// Stanza id (the message id).
    pub id: String,
    /// The sending device.
    pub from: Jid,
    /// The chat it was addressed to (user or group JID, as the client wrote it).
    pub to: Jid,
    /// The stanza `type` (text, media, reaction, ...).
    pub kind: String,
    /// The message as the recipient reads it, when the stand-in holds a recipient's keys
    /// (a simulated contact's phone, or the account's own phone for the self copy).
    pub decrypted: Option<waproto::whatsapp::Message>,
}

impl SentMessage {
    /// The text body, for plain and extended text messages.
    pub fn text(&self) -> Option<&str> {
        let message = self.decrypted.as_ref()?;
        message.conversation.as_deref().or_else(|| {
            message
                .extended_text_message
                .as_option()
                .and_then(|m| m.text.as_deref())
        })
    }
}

/// A receipt an account's device sent (delivered/read/played for a message it received).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentReceipt {
    /// The receipted message ids.
    pub ids: Vec<String>,
    /// The sending device.
    pub from: Jid,
    /// Whom the receipt is for.
    pub to: Jid,
    /// The receipt type; `None` is a delivery receipt.
    pub kind: Option<String>,
}

/// A device waiting to be linked: it connected without credentials and is showing refs.
pub(crate) struct PendingPairing {
    pub(crate) connection: Connection,
    pub(crate) refs: Vec<String>,
    pub(crate) noise_key: [u8; 32],
    pub(crate) registration: CompanionKeys,
    pub(crate) platform: String,
    /// Pair-code flow: the code-wrapped companion ephemeral and the number it was for.
    pub(crate) pair_code: Option<PairCodeRequest>,
    /// Set once a phone approved this device and pair-success went out.
    pub(crate) in_flight: Option<InFlightPairing>,
    /// Why linking failed, if it did.
    pub(crate) failure: Option<String>,
}

/// What a `companion_hello` asked for, and the phone's side once the code was entered.
#[derive(Clone)]
pub(crate) struct PairCodeRequest {
    pub(crate) phone: String,
    pub(crate) wrapped_companion_ephemeral: Vec<u8>,
    pub(crate) pairing_ref: Vec<u8>,
    pub(crate) primary_ephemeral: Option<wacore_libsignal::protocol::KeyPair>,
    pub(crate) companion_ephemeral: Option<[u8; 32]>,
}

/// A pair-success that went out and awaits the device's counter-signature.
#[derive(Clone, Debug)]
pub(crate) struct InFlightPairing {
    pub(crate) iq_id: String,
    pub(crate) pn: String,
    pub(crate) device: u16,
    pub(crate) key_index: u32,
    pub(crate) identity_key: [u8; 32],
}

/// The whole simulated world.
#[derive(Default)]
pub(crate) struct Registry {
    users: BTreeMap<String, User>,
    lid_to_pn: HashMap<String, String>,
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) pending_pairings: Vec<PendingPairing>,
    pub(crate) sent_messages: Vec<SentMessage>,
    pub(crate) sent_receipts: Vec<SentReceipt>,
    /// Message secrets (polls, events) by message id, with the sender's phone number.
    pub(crate) message_secrets: HashMap<String, (Vec<u8>, String)>,
    next_lid: u64,
}

/// A device address in the stand-in's terms.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DeviceAddress {
    pub(crate) pn: String,
    pub(crate) device: u16,
}

impl DeviceAddress {
    pub(crate) fn pn_jid(&self) -> Jid {
        Jid::pn_device(self.pn.as_str(), self.device)
    }
}

impl Registry {
    pub(crate) fn user(&self, pn: &str) -> Option<&User> {
        self.users.get(pn)
    }

    pub(crate) fn user_mut(&mut self, pn: &str) -> Option<&mut User> {
        self.users.get_mut(pn)
    }

    pub(crate) fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// The phone number behind a user JID of either namespace.
    pub(crate) fn resolve_pn(&self, jid: &Jid) -> Option<String> {
        match jid.server {
            Server::Pn => self
                .users
                .contains_key(jid.user.as_str())
                .then(|| jid.user.to_string()),
            Server::Lid => self.lid_to_pn.get(jid.user.as_str()).cloned(),
            _ => None,
        }
    }

    pub(crate) fn user_by_jid(&self, jid: &Jid) -> Option<&User> {
        self.resolve_pn(jid).and_then(|pn| self.users.get(&pn))
    }

    /// A LID the server has not handed out yet.
    pub(crate) fn fresh_lid(&mut self) -> String {
        loop {
            self.next_lid += 1;
            let candidate = format!("{}", 100_000_000_000_000u64 + self.next_lid * 7919);
            if !self.lid_to_pn.contains_key(&candidate) {
                return candidate;
            }
        }
    }

    /// Add a user, or update the profile of an existing one.
    pub(crate) fn upsert_user(
        &mut self,
        pn: &str,
        lid: Option<&str>,
        push_name: &str,
    ) -> &mut User {
        if !self.users.contains_key(pn) {
            let lid = match lid {
                Some(lid) => lid.to_owned(),
                None => self.fresh_lid(),
            };
            self.lid_to_pn.insert(lid.clone(), pn.to_owned());
            self.users
                .insert(pn.to_owned(), User::new(pn, &lid, push_name));
        }
        let user = self.users.get_mut(pn).expect("inserted above");
        if let Some(lid) = lid
            && user.lid != lid
        {
            self.lid_to_pn.remove(&user.lid);
            self.lid_to_pn.insert(lid.to_owned(), pn.to_owned());
            user.lid = lid.to_owned();
        }
        if !push_name.is_empty() {
            user.push_name = push_name.to_owned();
        }
        user
    }

    /// Move a user to a new phone number (a "change number"), keeping LID, keys and devices.
    pub(crate) fn change_number(&mut self, old_pn: &str, new_pn: &str) -> Option<&User> {
        let mut user = self.users.remove(old_pn)?;
        user.pn = new_pn.to_owned();
        self.lid_to_pn.insert(user.lid.clone(), new_pn.to_owned());
        self.users.insert(new_pn.to_owned(), user);
        self.users.get(new_pn)
    }

    pub(crate) fn companion(&self, address: &DeviceAddress) -> Option<&Companion> {
        self.users.get(&address.pn)?.companions.get(&address.device)
    }

    pub(crate) fn companion_mut(&mut self, address: &DeviceAddress) -> Option<&mut Companion> {
        self.users
            .get_mut(&address.pn)?
            .companions
            .get_mut(&address.device)
    }

    /// Hold a stanza for a companion until it acknowledges it; send it now if the companion
    /// is online.
    pub(crate) fn enqueue(&mut self, address: &DeviceAddress, stanza: QueuedStanza) -> bool {
        let Some(companion) = self.companion_mut(address) else {
            return false;
        };
        if companion.active
            && let Some(connection) = &companion.connection
        {
            connection.send(stanza.node.clone());
        }
        companion.offline.push_back(stanza);
        true
    }

    /// The device acknowledged stanza `id` of `class`: stop holding it.
    pub(crate) fn release(
        &mut self,
        address: &DeviceAddress,
        id: &str,
        class: &str,
        kind: Option<&str>,
    ) -> bool {
        let Some(companion) = self.companion_mut(address) else {
            return false;
        };
        let before = companion.offline.len();
        companion.offline.retain(|queued| {
            // Receipts of one message share its id; their type tells them apart.
            let same_kind = class != "receipt" || queued.kind.as_deref() == kind;
            !(queued.id == id && queued.class == class && same_kind)
        });
        before != companion.offline.len()
    }

    /// Drop the connection record of `id` wherever it is registered.
    pub(crate) fn forget_connection(&mut self, id: ConnectionId) {
        for user in self.users.values_mut() {
            for companion in user.companions.values_mut() {
                if companion.connection.as_ref().is_some_and(|c| c.id == id) {
                    companion.connection = None;
                    companion.active = false;
                }
            }
        }
        self.pending_pairings.retain(|p| p.connection.id != id);
    }

    pub(crate) fn pending_pairing_mut(&mut self, id: ConnectionId) -> Option<&mut PendingPairing> {
        self.pending_pairings
            .iter_mut()
            .find(|p| p.connection.id == id)
    }
}
