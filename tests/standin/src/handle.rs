//! The handle tests drive the stand-in with: start it, describe the world (contacts,
//! groups, address books, privacy), play the phone (scan a QR, type a pair code, save
//! contacts, send history), make contacts write (direct and group messages, reactions,
//! edits, revokes, polls, votes, media), act as other group admins, read what accounts
//! sent and uploaded, send receipts and notifications, and drop connections. Every call
//! works from sync test code; the ones that wait have `_async` twins for async tests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wacore_binary::Jid;
use waproto::whatsapp as wa;

use crate::compose::{self, MessageRef};
use crate::error::{Result, StandInError};
use crate::groups::{self, GroupChange, Notice, Refusal, Rules};
use crate::in_process::InProcessTransportFactory;
use crate::media::{CdnHttpClient, StoredMedia};
use crate::messages::{self, ReceiptKind};
use crate::noise::HandshakePattern;
use crate::notifications;
use crate::pairing;
use crate::registry::{
    About, Group, GroupAddPrivacy, GroupSetting, MembershipRequest, ParticipantRole,
    ProfilePicture, SavedContact, SentMessage, SentReceipt,
};
use crate::server::{AutoReceipts, Options, Shared, now};
use crate::wire::{Wire, WireEnd};

/// A simulated WhatsApp user the accounts under test can talk to.
#[derive(Clone, Debug, Default)]
pub struct Contact {
    /// Phone number, digits only (country code first).
    pub phone: String,
    /// LID user part; one is assigned when `None`.
    pub lid: Option<String>,
    /// The push name their messages carry (`notify`).
    pub push_name: String,
    /// Their About text.
    pub about: Option<String>,
    /// Their profile picture.
    pub picture: Option<ProfilePicture>,
}

impl Contact {
    /// A contact with a phone number and push name.
    pub fn new(phone: impl Into<String>, push_name: impl Into<String>) -> Self {
        Self {
            phone: phone.into(),
            push_name: push_name.into(),
            ..Self::default()
        }
    }

    /// Use this LID instead of an assigned one.
    pub fn with_lid(mut self, lid: impl Into<String>) -> Self {
        self.lid = Some(lid.into());
        self
    }

    /// Set the About text.
    pub fn with_about(mut self, about: impl Into<String>) -> Self {
        self.about = Some(about.into());
        self
    }

    /// Set a profile picture.
    pub fn with_picture(mut self, picture: ProfilePicture) -> Self {
        self.picture = Some(picture);
        self
    }
}

/// How the server knows a user: both JIDs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserJids {
    /// `phone@s.whatsapp.net`.
    pub pn: Jid,
    /// `lid@lid`.
    pub lid: Jid,
}

/// One linked device of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedDevice {
    /// `phone:device@s.whatsapp.net`.
    pub jid: Jid,
    /// `lid:device@lid`.
    pub lid: Jid,
    /// Whether it has a socket that left passive mode.
    pub connected: bool,
    /// Its ADV key index.
    pub key_index: u32,
    /// The OS it registered with.
    pub platform: String,
    /// The Noise pattern of its latest login.
    pub last_handshake: Option<HandshakePattern>,
    /// Stanza ids held for it until it acknowledges them.
    pub pending: Vec<String>,
}

/// An account: a user with at least one linked (companion) device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Phone number.
    pub phone: String,
    /// LID user part.
    pub lid: String,
    /// Push name.
    pub push_name: String,
    /// Linked devices.
    pub devices: Vec<LinkedDevice>,
}

/// A running stand-in server on its own runtime.
pub struct StandIn {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    shared: Arc<Shared>,
    address: SocketAddr,
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn")
            .field("address", &self.address)
            .finish()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl StandIn {
    /// Start a stand-in on `127.0.0.1` with an ephemeral port.
    pub fn start() -> Result<Self> {
        Self::start_with(Options::default())
    }

    /// Start with options.
    pub fn start_with(options: Options) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wa-standin")
            .enable_all()
            .build()?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared::new(options));
        let cdn_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        cdn_listener.set_nonblocking(true)?;
        shared.cdn.set_host(cdn_listener.local_addr()?.to_string());
        let serving = shared.clone();
        runtime.spawn(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => crate::websocket::serve(listener, serving).await,
                Err(e) => log::error!("stand-in listener failed: {e}"),
            }
        });
        let serving = shared.clone();
        runtime.spawn(async move {
            match tokio::net::TcpListener::from_std(cdn_listener) {
                Ok(listener) => crate::media::serve(listener, serving).await,
                Err(e) => log::error!("stand-in CDN listener failed: {e}"),
            }
        });
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            shared,
            address,
        })
    }

    /// The WebSocket URL clients dial: `ws://127.0.0.1:P/ws/chat`.
    pub fn url(&self) -> String {
        format!("ws://{}/ws/chat", self.address)
    }

    /// The listening address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A whatsapp-rust `TransportFactory` that connects in process, without sockets.
    pub fn in_process_transport(&self) -> InProcessTransportFactory {
        InProcessTransportFactory {
            shared: self.shared.clone(),
            runtime: self.handle.clone(),
        }
    }

    /// Open a raw connection for a transport of your own: feed the client's bytes into
    /// `to_server`, send what comes out of `from_server` to the client (`None` = closed).
    pub fn connect_wire(&self) -> WireEnd {
        let (wire, end) = Wire::pair();
        self.handle
            .spawn(crate::connection::serve(self.shared.clone(), wire));
        end
    }

    /// Change when simulated recipients send receipts on their own.
    pub fn set_auto_receipts(&self, receipts: AutoReceipts) {
        self.shared
            .options
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .auto_receipts = receipts;
    }

    fn block<F, T>(&self, future: F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = std::sync::mpsc::channel();
        self.handle.spawn(async move {
            let _ = done.send(future.await);
        });
        result.recv().expect("the stand-in runtime stopped")
    }

    async fn on_runtime<F, T>(&self, future: F) -> Result<T>
    where
        F: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.handle
            .spawn(future)
            .await
            .map_err(|_| StandInError::Stopped)?
    }

    // --- the world -------------------------------------------------------------------

    /// Add (or update) a simulated user. Returns both of its JIDs.
    pub fn add_contact(&self, contact: Contact) -> UserJids {
        self.shared.update(|registry| {
            let user =
                registry.upsert_user(&contact.phone, contact.lid.as_deref(), &contact.push_name);
            if let Some(text) = contact.about {
                user.about = Some(About {
                    text,
                    set_at: now(),
                });
            }
            if contact.picture.is_some() {
                user.picture = contact.picture;
            }
            UserJids {
                pn: user.pn_jid(),
                lid: user.lid_jid(),
            }
        })
    }

    /// Both JIDs of a known user.
    pub fn user_jids(&self, phone: &str) -> Option<UserJids> {
        self.shared.registry().user(phone).map(|u| UserJids {
            pn: u.pn_jid(),
            lid: u.lid_jid(),
        })
    }

    /// Add a group; `participants` are phone numbers, the first one is its creator and
    /// super admin. Returns the group JID.
    pub fn add_group(
        &self,
        subject: &str,
        participants: &[&str],
        description: Option<&str>,
    ) -> Jid {
        let creator = participants
            .first()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let group = Group::new(
            crate::registry::fresh_group_id(),
            subject,
            &creator,
            now(),
            participants
                .iter()
                .map(|pn| {
                    let role = if *pn == creator {
                        ParticipantRole::SuperAdmin
                    } else {
                        ParticipantRole::Member
                    };
                    (pn.to_string(), role)
                })
                .collect(),
            description,
        );
        let jid = group.jid();
        self.shared
            .update(|registry| registry.groups.insert(group.id.clone(), group));
        jid
    }

    /// A group as the server holds it.
    pub fn group(&self, group: &Jid) -> Option<Group> {
        self.shared
            .registry()
            .groups
            .get(group.user.as_str())
            .cloned()
    }

    /// The accounts (users with linked devices) and their devices.
    pub fn accounts(&self) -> Vec<Account> {
        let registry = self.shared.registry();
        registry
            .users()
            .filter(|u| u.is_account())
            .map(|u| Account {
                phone: u.pn.clone(),
                lid: u.lid.clone(),
                push_name: u.push_name.clone(),
                devices: u
                    .companions
                    .values()
                    .map(|c| LinkedDevice {
                        jid: Jid::pn_device(u.pn.as_str(), c.device),
                        lid: Jid::lid_device(u.lid.as_str(), c.device),
                        connected: c.connection.is_some() && c.active,
                        key_index: c.key_index,
                        platform: c.platform.clone(),
                        last_handshake: c.last_pattern,
                        pending: c.offline.iter().map(|q| q.id.clone()).collect(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The account with this phone number.
    pub fn account(&self, phone: &str) -> Option<Account> {
        self.accounts().into_iter().find(|a| a.phone == phone)
    }

    /// Whether the linked device `device` (`phone:device@s.whatsapp.net`) is online.
    pub fn is_connected(&self, device: &Jid) -> bool {
        companion_of(&self.shared.registry(), device)
            .is_some_and(|c| c.connection.is_some() && c.active)
    }

    /// Wait until `device` is online (logged in and out of passive mode).
    pub async fn wait_connected_async(&self, device: &Jid, timeout: Duration) -> Result<()> {
        let (shared, device) = (self.shared.clone(), device.clone());
        self.on_runtime(async move { wait_connected(&shared, &device, timeout).await })
            .await
    }

    /// Sync form of [`Self::wait_connected_async`].
    pub fn wait_connected(&self, device: &Jid, timeout: Duration) -> Result<()> {
        let (shared, device) = (self.shared.clone(), device.clone());
        self.block(async move { wait_connected(&shared, &device, timeout).await })
    }

    /// The phone removes linked device `device`: it is told so if online
    /// (`<stream:error code="401"><conflict type="device_removed"/>`) and can no longer log
    /// in. Returns whether such a device existed.
    pub fn unlink_device(&self, device: &Jid) -> bool {
        let removed = self.shared.update(|registry| {
            let pn = registry.resolve_pn(&device.to_non_ad())?;
            registry.user_mut(&pn)?.companions.remove(&device.device)
        });
        let Some(companion) = removed else {
            return false;
        };
        if let Some(connection) = companion.connection {
            connection.send(
                wacore_binary::builder::NodeBuilder::new("stream:error")
                    .attr("code", "401")
                    .children([wacore_binary::builder::NodeBuilder::new("conflict")
                        .attr("type", "device_removed")
                        .build()])
                    .build(),
            );
            connection.close();
        }
        true
    }

    /// Rotate the server's Noise static key. Connected devices keep their sessions; on the
    /// next connect a device that cached the old key is answered with XXfallback.
    pub fn rotate_server_key(&self) {
        self.shared.rotate_identity();
    }

    /// Close the sockets of every linked device of `phone`; returns how many were open.
    pub fn drop_connections(&self, phone: &str) -> usize {
        let connections: Vec<_> = self.shared.update(|registry| {
            registry
                .user_mut(phone)
                .map(|u| {
                    u.companions
                        .values_mut()
                        .filter_map(|c| {
                            c.active = false;
                            c.connection.take()
                        })
                        .collect()
                })
                .unwrap_or_default()
        });
        for connection in &connections {
            connection.close();
        }
        connections.len()
    }

    // --- blocklists ------------------------------------------------------------------

    /// The account's blocklist as JIDs (LID or phone-number form, as they were blocked).
    pub fn blocklist(&self, phone: &str) -> Vec<Jid> {
        self.shared
            .registry()
            .user(phone)
            .map(|u| u.blocklist.keys().filter_map(|j| j.parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Whether `phone` has blocked `other` (in either JID form).
    pub fn is_blocked(&self, phone: &str, other: &str) -> bool {
        let registry = self.shared.registry();
        let (Some(user), Some(other)) = (registry.user(phone), registry.user(other)) else {
            return false;
        };
        user.blocklist.contains_key(&other.pn_jid().to_string())
            || user.blocklist.contains_key(&other.lid_jid().to_string())
    }

    /// Replace the account's blocklist.
    pub fn set_blocklist(&self, phone: &str, blocked: &[Jid]) {
        self.shared.update(|registry| {
            if let Some(user) = registry.user_mut(phone) {
                user.blocklist = blocked
                    .iter()
                    .map(|j| (j.to_non_ad().to_string(), now()))
                    .collect();
            }
        });
    }

    // --- playing the phone -----------------------------------------------------------

    /// Scan `qr` (the client's `PairingQrCode`) with the phone of `phone`: the account is
    /// created if needed with `push_name`, the device is linked, and the client restarts
    /// its stream to log in. Returns the new device's JID.
    pub async fn scan_qr_async(&self, qr: &str, phone: &str, push_name: &str) -> Result<Jid> {
        let (shared, qr, phone, push_name) = (
            self.shared.clone(),
            qr.to_owned(),
            phone.to_owned(),
            push_name.to_owned(),
        );
        self.on_runtime(async move { pairing::scan_qr(&shared, &qr, &phone, &push_name).await })
            .await
    }

    /// Sync form of [`Self::scan_qr_async`].
    pub fn scan_qr(&self, qr: &str, phone: &str, push_name: &str) -> Result<Jid> {
        let (shared, qr, phone, push_name) = (
            self.shared.clone(),
            qr.to_owned(),
            phone.to_owned(),
            push_name.to_owned(),
        );
        self.block(async move { pairing::scan_qr(&shared, &qr, &phone, &push_name).await })
    }

    /// Type `code` (the client's `PairingCode`) on the phone of `phone`, which must be the
    /// number the client asked to link with. Returns the new device's JID.
    pub async fn enter_pair_code_async(
        &self,
        phone: &str,
        push_name: &str,
        code: &str,
    ) -> Result<Jid> {
        let (shared, phone, push_name, code) = (
            self.shared.clone(),
            phone.to_owned(),
            push_name.to_owned(),
            code.to_owned(),
        );
        self.on_runtime(async move {
            pairing::enter_pair_code(&shared, &phone, &code, &push_name).await
        })
        .await
    }

    /// Sync form of [`Self::enter_pair_code_async`].
    pub fn enter_pair_code(&self, phone: &str, push_name: &str, code: &str) -> Result<Jid> {
        let (shared, phone, push_name, code) = (
            self.shared.clone(),
            phone.to_owned(),
            push_name.to_owned(),
            code.to_owned(),
        );
        self.block(
            async move { pairing::enter_pair_code(&shared, &phone, &code, &push_name).await },
        )
    }

    // --- messages --------------------------------------------------------------------

    /// Contact `from` writes `message` to every linked device of account `to`, Signal
    /// encrypted by the contact's phone. Held for each device until it acknowledges it.
    ///
    /// `to` may also be a group JID (`…@g.us`) `from` is a member of: the contact's phone
    /// then sends one `skmsg` under its sender key, distributing the key pairwise to each
    /// member device that lacks it, and the stanza names the contact as participant with
    /// its push name (`notify`).
    pub async fn send_message_from_async(
        &self,
        from: &str,
        to: &str,
        message: wa::Message,
        id: &str,
    ) -> Result<()> {
        let (shared, from, to, id) = (
            self.shared.clone(),
            from.to_owned(),
            to.to_owned(),
            id.to_owned(),
        );
        self.on_runtime(async move {
            messages::send_from_contact_to(&shared, &from, &to, &message, &id).await
        })
        .await
    }

    /// Sync form of [`Self::send_message_from_async`].
    pub fn send_message_from(
        &self,
        from: &str,
        to: &str,
        message: wa::Message,
        id: &str,
    ) -> Result<()> {
        let (shared, from, to, id) = (
            self.shared.clone(),
            from.to_owned(),
            to.to_owned(),
            id.to_owned(),
        );
        self.block(async move {
            messages::send_from_contact_to(&shared, &from, &to, &message, &id).await
        })
    }

    /// Contact `from` writes `text` to account `to` as message `id`.
    pub async fn send_text_from_async(
        &self,
        from: &str,
        to: &str,
        text: &str,
        id: &str,
    ) -> Result<()> {
        self.send_message_from_async(from, to, messages::text_message(text), id)
            .await
    }

    /// Sync form of [`Self::send_text_from_async`].
    pub fn send_text_from(&self, from: &str, to: &str, text: &str, id: &str) -> Result<()> {
        self.send_message_from(from, to, messages::text_message(text), id)
    }

    /// Contact `from` reacts with `emoji` (`""` withdraws a reaction) to `target` in its
    /// chat with `to` (an account's phone number or a group JID). Send it with
    /// [`Self::send_message_from`].
    pub fn reaction(&self, from: &str, to: &str, target: &MessageRef, emoji: &str) -> wa::Message {
        compose::reaction(compose::key_for(from, &chat_jid(to), target), emoji)
    }

    /// Contact `from` edits its own message `target_id` in its chat with `to` to read
    /// `text` (`ProtocolMessage` `MESSAGE_EDIT`).
    pub fn edit(&self, from: &str, to: &str, target_id: &str, text: &str) -> wa::Message {
        let target = MessageRef::new(target_id, from);
        compose::edit(compose::key_for(from, &chat_jid(to), &target), text)
    }

    /// Contact `from` deletes its own message `target_id` for everyone
    /// (`ProtocolMessage` `REVOKE`).
    pub fn revoke(&self, from: &str, to: &str, target_id: &str) -> wa::Message {
        let target = MessageRef::new(target_id, from);
        compose::revoke(compose::key_for(from, &chat_jid(to), &target))
    }

    /// A poll with a fresh message secret (`pollCreationMessageV3` when `selectable` is 1).
    /// Once a simulated contact sent it, votes on it can be made with
    /// [`Self::poll_vote`].
    pub fn poll(&self, name: &str, options: &[&str], selectable: u32) -> wa::Message {
        compose::poll(name, options, selectable)
    }

    /// Contact `from` votes for `options` on `poll` in its chat with `to`. The poll must
    /// have gone through the stand-in (sent by a simulated contact, or by an account, whose
    /// phone read it), which knows its message secret. The vote is encrypted for the PN
    /// addressing: creator and voter as `phone@s.whatsapp.net`.
    pub fn poll_vote(
        &self,
        from: &str,
        to: &str,
        poll: &MessageRef,
        options: &[&str],
    ) -> Result<wa::Message> {
        let (secret, creator) = self
            .shared
            .registry()
            .message_secrets
            .get(&poll.id)
            .cloned()
            .ok_or_else(|| StandInError::protocol(format!("no known poll {}", poll.id)))?;
        let key = compose::key_for(
            from,
            &chat_jid(to),
            &MessageRef::new(poll.id.clone(), creator.clone()),
        );
        compose::poll_vote(key, &secret, &creator, from, options)
    }

    /// An image message whose picture the phone encrypted and uploaded to the loopback
    /// CDN (a fresh media key; `url`, `directPath`, hashes and length filled in).
    pub fn image_message(
        &self,
        bytes: &[u8],
        mimetype: &str,
        caption: Option<&str>,
    ) -> Result<wa::Message> {
        let media = self
            .shared
            .cdn
            .upload_plaintext(bytes, wacore::download::MediaType::Image)?;
        Ok(compose::image(&media, mimetype, caption))
    }

    /// A document message whose file the phone encrypted and uploaded to the CDN.
    pub fn document_message(
        &self,
        bytes: &[u8],
        mimetype: &str,
        file_name: &str,
    ) -> Result<wa::Message> {
        let media = self
            .shared
            .cdn
            .upload_plaintext(bytes, wacore::download::MediaType::Document)?;
        Ok(compose::document(&media, mimetype, file_name))
    }

    // --- media ---------------------------------------------------------------------

    /// The CDN host (`127.0.0.1:P`) the `w:m` media_conn IQ hands out. The CDN speaks
    /// HTTPS with a self-signed certificate: whatsapp-rust's ureq client reaches it only
    /// when built with `danger-skip-tls-verify`; otherwise use [`Self::media_http_client`].
    pub fn cdn_host(&self) -> String {
        self.shared.cdn.host()
    }

    /// A whatsapp-rust `HttpClient` (for `Bot::builder().with_http_client`) that reaches
    /// the CDN in process, without TLS.
    pub fn media_http_client(&self) -> CdnHttpClient {
        CdnHttpClient {
            shared: self.shared.clone(),
        }
    }

    /// Every blob on the CDN (uploads by devices and by simulated phones).
    pub fn stored_media(&self) -> Vec<StoredMedia> {
        self.shared.cdn.stored()
    }

    /// The encrypted bytes stored under `direct_path`.
    pub fn media_bytes(&self, direct_path: &str) -> Option<Vec<u8>> {
        self.shared.cdn.blob(direct_path)
    }

    /// Let the media under `direct_path` expire: downloads answer 410 until a device asks
    /// for a re-upload (a `server-error` receipt, `client.media_reupload()`), which the
    /// sending phone answers with a fresh direct path. Returns whether it existed.
    pub fn expire_media(&self, direct_path: &str) -> bool {
        self.shared.cdn.expire(direct_path)
    }

    /// Messages the linked devices of `phone` sent, oldest first.
    pub fn messages_from(&self, phone: &str) -> Vec<SentMessage> {
        self.shared
            .registry()
            .sent_messages
            .iter()
            .filter(|m| m.from.user == phone)
            .cloned()
            .collect()
    }

    /// Wait for account `phone` to send message `id`.
    pub async fn wait_for_message_from_async(
        &self,
        phone: &str,
        id: &str,
        timeout: Duration,
    ) -> Result<SentMessage> {
        let (shared, phone, id) = (self.shared.clone(), phone.to_owned(), id.to_owned());
        self.on_runtime(async move { wait_for_message(&shared, &phone, &id, timeout).await })
            .await
    }

    /// Sync form of [`Self::wait_for_message_from_async`].
    pub fn wait_for_message_from(
        &self,
        phone: &str,
        id: &str,
        timeout: Duration,
    ) -> Result<SentMessage> {
        let (shared, phone, id) = (self.shared.clone(), phone.to_owned(), id.to_owned());
        self.block(async move { wait_for_message(&shared, &phone, &id, timeout).await })
    }

    /// Receipts the linked devices of `phone` sent, oldest first.
    pub fn receipts_from(&self, phone: &str) -> Vec<SentReceipt> {
        self.shared
            .registry()
            .sent_receipts
            .iter()
            .filter(|r| r.from.user == phone)
            .cloned()
            .collect()
    }

    /// Contact `from` acknowledges message `id` that account `to` sent it.
    pub fn send_receipt(&self, from: &str, to: &str, id: &str, kind: ReceiptKind) -> Result<()> {
        messages::send_receipt(&self.shared, from, to, id, kind)
    }

    /// Stanza ids held for `device` until it acknowledges them.
    pub fn pending_for(&self, device: &Jid) -> Vec<String> {
        companion_of(&self.shared.registry(), device)
            .map(|c| c.offline.iter().map(|q| q.id.clone()).collect())
            .unwrap_or_default()
    }

    /// Wait until nothing with id `id` is held for `device` any more (it acknowledged it).
    pub async fn wait_acknowledged_async(
        &self,
        device: &Jid,
        id: &str,
        timeout: Duration,
    ) -> Result<()> {
        let (shared, device, id) = (self.shared.clone(), device.clone(), id.to_owned());
        self.on_runtime(async move { wait_acknowledged(&shared, &device, &id, timeout).await })
            .await
    }

    /// Sync form of [`Self::wait_acknowledged_async`].
    pub fn wait_acknowledged(&self, device: &Jid, id: &str, timeout: Duration) -> Result<()> {
        let (shared, device, id) = (self.shared.clone(), device.clone(), id.to_owned());
        self.block(async move { wait_acknowledged(&shared, &device, &id, timeout).await })
    }

    // --- notifications ---------------------------------------------------------------

    /// `author` changes the membership of `group`; members' devices get a `w:gp2`
    /// notification (participants with their LIDs and display names). The test plays
    /// `author`, so the group rules are not checked. Returns how many devices it was
    /// queued for.
    pub fn change_group_participants(
        &self,
        group: &Jid,
        change: GroupChange,
        participants: &[&str],
        author: &str,
    ) -> Result<usize> {
        let targets: Vec<Jid> = participants.iter().map(|p| Jid::pn(*p)).collect();
        self.act_on_group(group, |registry, id| {
            groups::change_participants(registry, id, author, change, &targets, Rules::Waived)
                .map(|(_, notices)| notices)
        })
    }

    /// `author` renames `group`.
    pub fn set_group_subject(&self, group: &Jid, subject: &str, author: &str) -> Result<usize> {
        self.act_on_group(group, |registry, id| {
            groups::set_subject(registry, id, author, subject, Rules::Waived)
        })
    }

    /// `author` sets (`Some`) or removes (`None`) the description of `group`; members get
    /// `w:gp2` `<description>`. Unchecked, like every simulated admin's change.
    pub fn set_group_description(
        &self,
        group: &Jid,
        description: Option<&str>,
        author: &str,
    ) -> Result<usize> {
        self.act_on_group(group, |registry, id| {
            groups::set_description(registry, id, author, description, None, None, Rules::Waived)
        })
    }

    /// `author` changes a setting of `group` (announcement, locked, membership approval,
    /// who may add, disappearing timer); members get the matching `w:gp2` notification.
    pub fn set_group_setting(
        &self,
        group: &Jid,
        setting: GroupSetting,
        author: &str,
    ) -> Result<usize> {
        self.act_on_group(group, |registry, id| {
            groups::set_setting(registry, id, author, setting, Rules::Waived)
        })
    }

    /// `author` resets the invite link of `group`: the old code stops working (410) and
    /// admins get `w:gp2` `<invite code>`. Returns the new code.
    pub fn reset_group_invite(&self, group: &Jid, author: &str) -> Result<String> {
        let id = group.user.to_string();
        let (code, notices) = self
            .shared
            .update(|registry| groups::invite_code(registry, &id, author, true, Rules::Waived))
            .map_err(|refusal| group_refusal(&id, refusal))?;
        crate::iq::deliver_group_notices(&self.shared, &notices);
        Ok(code)
    }

    /// The invite-link code of `group` (`https://chat.whatsapp.com/<code>`).
    pub fn group_invite_code(&self, group: &Jid) -> Option<String> {
        self.group(group).map(|g| g.invite_code)
    }

    /// Simulated user `phone` opens the invite link `code`: they join at once (members
    /// hear `<add reason="invite">`), or, when the group wants approval, their request
    /// waits and the admins hear `<created_membership_requests>`. Returns whether they
    /// joined (`false` = pending).
    pub fn join_group_by_invite(&self, phone: &str, code: &str) -> Result<bool> {
        let (joined, notices) = self
            .shared
            .update(|registry| groups::join_by_invite(registry, code, phone))
            .map_err(|refusal| group_refusal(code, refusal))?;
        crate::iq::deliver_group_notices(&self.shared, &notices);
        Ok(matches!(joined, groups::Joined::Member(_)))
    }

    /// Admin `author` approves (`true`) or rejects the pending join requests of `phones`.
    pub fn answer_membership_requests(
        &self,
        group: &Jid,
        phones: &[&str],
        approve: bool,
        author: &str,
    ) -> Result<usize> {
        let targets: Vec<Jid> = phones.iter().map(|p| Jid::pn(*p)).collect();
        self.act_on_group(group, |registry, id| {
            groups::answer_requests(registry, id, author, approve, &targets, Rules::Waived)
                .map(|(_, notices)| notices)
        })
    }

    /// The join requests of `group` waiting for an admin.
    pub fn membership_requests(&self, group: &Jid) -> Vec<MembershipRequest> {
        self.group(group)
            .map(|g| g.pending_requests)
            .unwrap_or_default()
    }

    /// Member `phone` leaves `group`; the others hear `<remove>`.
    pub fn leave_group(&self, group: &Jid, phone: &str) -> Result<usize> {
        self.act_on_group(group, |registry, id| groups::leave(registry, id, phone))
    }

    /// `author` sets (`Some`) or removes the picture of `group`; members get a `picture`
    /// notification.
    pub fn set_group_picture(
        &self,
        group: &Jid,
        picture: Option<ProfilePicture>,
        author: &str,
    ) -> Result<usize> {
        self.act_on_group(group, |registry, id| {
            groups::set_picture(registry, id, author, picture, Rules::Waived)
        })
    }

    /// Who may add `phone` to groups (its "Groups" privacy setting). A device's direct add
    /// that the setting forbids is answered per participant with 403 and an invitation.
    pub fn set_group_add_privacy(&self, phone: &str, privacy: GroupAddPrivacy) -> Result<()> {
        self.shared
            .update(|registry| {
                registry
                    .user_mut(phone)
                    .map(|u| u.group_add_privacy = privacy)
            })
            .ok_or_else(|| StandInError::UnknownContact(phone.to_owned()))
    }

    /// Apply a simulated user's group change and send its notices to every member device.
    fn act_on_group(
        &self,
        group: &Jid,
        change: impl FnOnce(
            &mut crate::registry::Registry,
            &str,
        ) -> std::result::Result<Vec<Notice>, Refusal>,
    ) -> Result<usize> {
        let id = group.user.to_string();
        let notices = self
            .shared
            .update(|registry| change(registry, &id))
            .map_err(|refusal| group_refusal(&id, refusal))?;
        Ok(crate::iq::deliver_group_notices(&self.shared, &notices))
    }

    // --- the phone's address book ------------------------------------------------------

    /// The phone of account `account` saves `contact` in its address book as `full_name`
    /// (`first_name` is the short name). The phone writes a `contact` mutation into the
    /// account's `critical_unblock_low` app-state collection (indexed by the contact's
    /// phone-number JID, with its LID), so a linked device emits `ContactUpdate` when it
    /// syncs: on its first sync after pairing, or right away when it is online (it is told
    /// with `server_sync`). The account need not be linked yet. Returns how many devices
    /// were told to sync.
    pub fn save_contact(
        &self,
        account: &str,
        contact: &str,
        full_name: &str,
        first_name: Option<&str>,
    ) -> Result<usize> {
        self.shared.update(|registry| {
            let lid = registry.user(contact).map(|u| u.lid.clone());
            if registry.user(account).is_none() {
                registry.upsert_user(account, None, "");
            }
            let user = registry
                .user_mut(account)
                .ok_or_else(|| StandInError::UnknownAccount(account.to_owned()))?;
            user.app_state
                .save_contact(contact, lid.as_deref(), full_name, first_name)?;
            user.address_book.insert(
                contact.to_owned(),
                SavedContact {
                    phone: contact.to_owned(),
                    full_name: full_name.to_owned(),
                    first_name: first_name.map(str::to_owned),
                },
            );
            Ok(notifications::server_sync(
                &self.shared,
                registry,
                account,
                "critical_unblock_low",
                None,
            ))
        })
    }

    /// The phone of `account` sends its history to every linked device, as it does right
    /// after a device is linked (`HISTORY_SYNC_NOTIFICATION`, `INITIAL_BOOTSTRAP`): a
    /// zlib-compressed `HistorySync` on the loopback CDN with its saved contacts' chats
    /// (named as saved), its groups, the push names in them and their PN ↔ LID mappings.
    /// Returns how many devices it was sent to.
    pub async fn send_history_sync_async(&self, account: &str) -> Result<usize> {
        let (shared, account) = (self.shared.clone(), account.to_owned());
        self.on_runtime(async move { crate::history::send(&shared, &account).await })
            .await
    }

    /// Sync form of [`Self::send_history_sync_async`].
    pub fn send_history_sync(&self, account: &str) -> Result<usize> {
        let (shared, account) = (self.shared.clone(), account.to_owned());
        self.block(async move { crate::history::send(&shared, &account).await })
    }

    /// The address book of `account`'s phone.
    pub fn address_book(&self, account: &str) -> Vec<SavedContact> {
        self.shared
            .registry()
            .user(account)
            .map(|u| u.address_book.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Tell every account that `phone`'s profile changed (`contacts` `<update>`).
    pub fn notify_contact_updated(&self, phone: &str) -> usize {
        notifications::contact_updated(&self.shared, phone)
    }

    /// `old` changes number to `new` (keeping its LID); accounts get `contacts`
    /// `<modify>`.
    pub fn change_number(&self, old: &str, new: &str) -> Result<usize> {
        let lid = self
            .shared
            .update(|registry| registry.change_number(old, new).map(|u| u.lid.clone()))
            .ok_or_else(|| StandInError::UnknownContact(old.to_owned()))?;
        Ok(notifications::number_changed(&self.shared, old, new, &lid))
    }

    /// `phone` sets its About; accounts get a `status` notification.
    pub fn set_about(&self, phone: &str, text: &str) -> Result<usize> {
        self.shared
            .update(|registry| {
                registry.user_mut(phone).map(|u| {
                    u.about = Some(About {
                        text: text.to_owned(),
                        set_at: now(),
                    })
                })
            })
            .ok_or_else(|| StandInError::UnknownContact(phone.to_owned()))?;
        Ok(notifications::about_changed(&self.shared, phone, text))
    }

    /// `phone` sets a new profile picture; accounts get a `picture` notification.
    pub fn set_picture(&self, phone: &str, picture: ProfilePicture) -> Result<usize> {
        let id = picture.id.clone();
        self.shared
            .update(|registry| registry.user_mut(phone).map(|u| u.picture = Some(picture)))
            .ok_or_else(|| StandInError::UnknownContact(phone.to_owned()))?;
        Ok(notifications::picture_changed(&self.shared, phone, &id))
    }
}

/// The chat a test names: a phone number, or a full JID (`…@g.us`, `…@lid`).
fn chat_jid(to: &str) -> Jid {
    if to.contains('@') {
        to.parse().unwrap_or_else(|_| Jid::pn(to))
    } else {
        Jid::pn(to)
    }
}

/// A refused simulated change, as the test sees it.
fn group_refusal(group: &str, refusal: Refusal) -> StandInError {
    match refusal.code {
        404 => StandInError::UnknownGroup(group.to_owned()),
        code => StandInError::GroupRefused {
            code,
            text: refusal.text.to_owned(),
        },
    }
}

/// The linked device `device`, if the server knows it.
fn companion_of<'r>(
    registry: &'r crate::registry::Registry,
    device: &Jid,
) -> Option<&'r crate::registry::Companion> {
    let pn = registry.resolve_pn(&device.to_non_ad())?;
    registry.user(&pn)?.companions.get(&device.device)
}

async fn wait_connected(shared: &Shared, device: &Jid, timeout: Duration) -> Result<()> {
    shared
        .wait_for(&format!("{device} to connect"), timeout, |registry| {
            companion_of(registry, device)
                .filter(|c| c.connection.is_some() && c.active)
                .map(|_| ())
        })
        .await
}

async fn wait_for_message(
    shared: &Shared,
    phone: &str,
    id: &str,
    timeout: Duration,
) -> Result<SentMessage> {
    shared
        .wait_for(&format!("message {id} from {phone}"), timeout, |registry| {
            registry
                .sent_messages
                .iter()
                .find(|m| m.from.user == phone && m.id == id)
                .cloned()
        })
        .await
}

async fn wait_acknowledged(
    shared: &Shared,
    device: &Jid,
    id: &str,
    timeout: Duration,
) -> Result<()> {
    shared
        .wait_for(
            &format!("{device} to acknowledge {id}"),
            timeout,
            |registry| {
                companion_of(registry, device)
                    .filter(|c| !c.offline.iter().any(|q| q.id == id))
                    .map(|_| ())
            },
        )
        .await
}
