//! End to end: the unmodified whatsapp-rust client (its real WebSocket transport, an
//! in-memory store) against the stand-in server on loopback. Proves pairing (QR and code),
//! login to Connected, the IQs, notifications, and messages in both directions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use wa_standin::{
    Contact, GroupChange, HandshakePattern, Jid, ProfilePicture, ReceiptKind, StandIn,
};
use wacore::store::InMemoryBackend;
use wacore::store::traits::Backend;
use wacore::types::events::Event;
use wacore::types::presence::ReceiptType;
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::transport::TokioWebSocketTransportFactory;

const ALICE: &str = "15550100001";
const BOB: &str = "15550100002";
const CAROL: &str = "15550100003";
const DAVE: &str = "15550100004";
const WAIT: Duration = Duration::from_secs(20);

/// Logs to stderr when `STANDIN_LOG` names a level (e.g. `STANDIN_LOG=debug`).
struct StderrLog(log::LevelFilter);

impl log::Log for StderrLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.0
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!(
                "[{:5} {}] {}",
                record.level(),
                record.target(),
                record.args()
            );
        }
    }
    fn flush(&self) {}
}

fn init_logging() {
    let level = std::env::var("STANDIN_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(log::LevelFilter::Off);
    if log::set_logger(Box::leak(Box::new(StderrLog(level)))).is_ok() {
        log::set_max_level(level);
    }
}

/// A running client and the events it emitted.
struct Session {
    handle: BotHandle,
    client: Arc<whatsapp_rust::Client>,
    events: mpsc::UnboundedReceiver<Arc<Event>>,
}

async fn start_client(standin: &StandIn, backend: Arc<dyn Backend>) -> Session {
    let (tx, events) = mpsc::unbounded_channel();
    let bot = Bot::builder()
        .with_backend_arc(backend)
        .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(standin.url()))
        .with_version((2, 3000, 0))
        .on_event(move |event, _client| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event);
            }
        })
        .build()
        .await
        .expect("the bot builds");
    let client = bot.client();
    Session {
        handle: bot.spawn(),
        client,
        events,
    }
}

impl Session {
    /// The first event `pick` accepts, skipping others.
    async fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("event channel closed");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    }

    async fn stop(self) {
        self.client.disconnect().await;
        self.handle.shutdown().await;
    }
}

fn text_of(message: &waproto::whatsapp::Message) -> Option<String> {
    message.conversation.clone().or_else(|| {
        message
            .extended_text_message
            .as_option()
            .and_then(|m| m.text.clone())
    })
}

fn world() -> StandIn {
    let standin = StandIn::start().expect("the stand-in starts");
    standin.add_contact(
        Contact::new(BOB, "Bob")
            .with_lid("230000000000002")
            .with_about("Available")
            .with_picture(ProfilePicture {
                id: "1700000123".to_owned(),
                url: "https://pps.whatsapp.net/v/t61/bob.jpg".to_owned(),
                direct_path: "/v/t61/bob.jpg".to_owned(),
            }),
    );
    standin.add_contact(Contact::new(CAROL, "Carol").with_lid("230000000000003"));
    standin.add_contact(Contact::new(DAVE, "Dave"));
    standin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_pairing_connects_and_the_session_works_end_to_end() {
    init_logging();
    let started = Instant::now();
    let standin = world();
    let group = standin.add_group("Standup", &[ALICE, BOB, CAROL], Some("Daily sync"));
    let backend: Arc<dyn Backend> = Arc::new(InMemoryBackend::new());
    let mut session = start_client(&standin, backend.clone()).await;

    // --- QR pairing: the test plays the phone ------------------------------------
    let qr = session
        .wait_for("a QR code", |e| match e {
            Event::PairingQrCode(qr) => Some(qr.code.clone()),
            _ => None,
        })
        .await;
    let device = standin
        .scan_qr_async(&qr, ALICE, "Alice")
        .await
        .expect("the phone links the device");
    assert_eq!(device.user, ALICE);
    assert!(device.device > 0);
    let alice = standin.user_jids(ALICE).unwrap();
    let (paired_id, paired_lid) = session
        .wait_for("PairSuccess", |e| match e {
            Event::PairSuccess(p) => Some((p.id.clone(), p.lid.clone())),
            _ => None,
        })
        .await;
    assert_eq!(paired_id, device);
    assert_eq!(
        paired_lid,
        Jid::lid_device(alice.lid.user.as_str(), device.device)
    );

    // 515, log in again, critical app state (push name), Connected.
    session
        .wait_for("Connected", |e| {
            matches!(e, Event::Connected(_)).then_some(())
        })
        .await;
    assert_eq!(session.client.pn(), Some(device.clone()));
    assert_eq!(
        session.client.lid().map(|l| l.user),
        Some(alice.lid.user.clone())
    );
    assert_eq!(session.client.push_name(), "Alice");
    standin.wait_connected_async(&device, WAIT).await.unwrap();
    let account = standin.account(ALICE).unwrap();
    assert_eq!(account.push_name, "Alice");
    assert!(account.devices[0].connected);
    eprintln!("paired and connected after {:?}", started.elapsed());

    // --- usync: is_on_whatsapp with LIDs, user info ------------------------------
    let bob = standin.user_jids(BOB).unwrap();
    let stranger = Jid::pn("15559999999");
    let found = session
        .client
        .contacts()
        .is_on_whatsapp(&[bob.pn.clone(), stranger.clone()])
        .await
        .expect("is_on_whatsapp");
    let bob_found = found
        .iter()
        .find(|r| r.jid == bob.pn)
        .expect("bob in the answer");
    assert!(bob_found.is_registered);
    assert_eq!(bob_found.lid, Some(bob.lid.clone()));
    assert!(found.iter().any(|r| r.jid == stranger && !r.is_registered));
    let info = session
        .client
        .contacts()
        .get_user_info(std::slice::from_ref(&bob.pn))
        .await
        .expect("user info");
    assert_eq!(info[&bob.pn].status.as_deref(), Some("Available"));

    // --- profile pictures ---------------------------------------------------------
    let picture = session
        .client
        .contacts()
        .get_profile_picture(&bob.pn, true)
        .await
        .expect("profile picture")
        .expect("bob has one");
    assert_eq!(picture.id, "1700000123");
    let carol = standin.user_jids(CAROL).unwrap();
    assert!(
        session
            .client
            .contacts()
            .get_profile_picture(&carol.pn, true)
            .await
            .unwrap()
            .is_none()
    );

    // --- blocklist ------------------------------------------------------------------
    session
        .client
        .blocking()
        .block(&bob.pn)
        .await
        .expect("block");
    assert!(standin.is_blocked(ALICE, BOB));
    let blocked = session
        .client
        .blocking()
        .get_blocklist()
        .await
        .expect("blocklist");
    assert!(blocked.iter().any(|e| e.jid.user == bob.lid.user));
    session
        .client
        .blocking()
        .unblock(&bob.pn)
        .await
        .expect("unblock");
    assert!(!standin.is_blocked(ALICE, BOB));
    standin.set_blocklist(ALICE, std::slice::from_ref(&carol.lid));
    let blocked = session
        .client
        .blocking()
        .get_blocklist()
        .await
        .expect("blocklist");
    assert_eq!(
        blocked.iter().map(|e| e.jid.clone()).collect::<Vec<_>>(),
        vec![carol.lid.clone()]
    );

    // --- groups ---------------------------------------------------------------------
    let metadata = session
        .client
        .groups()
        .get_metadata(&group)
        .await
        .expect("group metadata");
    assert_eq!(metadata.subject, "Standup");
    assert_eq!(metadata.participants.len(), 3);
    let participating = session
        .client
        .groups()
        .get_participating()
        .await
        .expect("participating");
    assert!(participating.contains_key(&group));

    // --- the account's own app state: a device's patch the phone verifies and keeps --
    session
        .client
        .profile()
        .set_push_name("Alice Liddell")
        .await
        .expect("set push name");
    assert_eq!(standin.account(ALICE).unwrap().push_name, "Alice Liddell");

    // --- a contact writes: Signal-encrypted by Bob's phone, push name in notify ------
    standin
        .send_text_from_async(BOB, ALICE, "hi Alice", "3EB0STANDIN0001")
        .await
        .expect("bob writes");
    let (text, push_name, from) = session
        .wait_for("Bob's message", |e| match e {
            Event::Messages(batch) => batch
                .messages
                .iter()
                .find(|m| m.info.id == "3EB0STANDIN0001")
                .map(|m| {
                    (
                        text_of(&m.message),
                        m.info.push_name.clone(),
                        m.info.source.sender.clone(),
                    )
                }),
            _ => None,
        })
        .await;
    assert_eq!(text.as_deref(), Some("hi Alice"));
    assert_eq!(push_name, "Bob");
    assert_eq!(from.user, bob.lid.user);
    standin
        .wait_acknowledged_async(&device, "3EB0STANDIN0001", WAIT)
        .await
        .expect("the client acknowledges the message");

    // --- the session writes: server ack, Bob's phone decrypts, receipts come back ---
    let sent = session
        .client
        .send_text(bob.pn.clone(), "hello Bob")
        .await
        .expect("send");
    session
        .wait_for("the server ack", |e| match e {
            Event::ServerAck(ack) if ack.id == sent.message_id => Some(()),
            _ => None,
        })
        .await;
    let received = standin
        .wait_for_message_from_async(ALICE, &sent.message_id, WAIT)
        .await
        .expect("the stand-in got the message");
    assert_eq!(received.text(), Some("hello Bob"));
    standin
        .send_receipt(BOB, ALICE, &sent.message_id, ReceiptKind::Delivered)
        .unwrap();
    standin
        .send_receipt(BOB, ALICE, &sent.message_id, ReceiptKind::Read)
        .unwrap();
    // The client hands receipts to handlers concurrently: either may surface first.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let kind = session
            .wait_for("a receipt", |e| match e {
                Event::Receipt(r) if r.message_ids.contains(&sent.message_id) => {
                    Some(r.r#type.clone())
                }
                _ => None,
            })
            .await;
        seen.push(kind);
    }
    assert!(seen.contains(&ReceiptType::Delivered) && seen.contains(&ReceiptType::Read));

    // --- a group message: sender keys to the members' phones, one skmsg for all -----
    let to_group = session
        .client
        .send_text(group.clone(), "hello team")
        .await
        .expect("group send");
    let received = standin
        .wait_for_message_from_async(ALICE, &to_group.message_id, WAIT)
        .await
        .expect("the stand-in got the group message");
    assert_eq!(received.text(), Some("hello team"));
    assert_eq!(received.to, group);
    standin
        .send_receipt(CAROL, ALICE, &to_group.message_id, ReceiptKind::Read)
        .unwrap();
    let reader = session
        .wait_for("the group read receipt", |e| match e {
            Event::Receipt(r) if r.message_ids.contains(&to_group.message_id) => {
                Some(r.source.sender.user.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(reader, CAROL);

    // --- notifications --------------------------------------------------------------
    standin
        .change_group_participants(&group, GroupChange::Add, &[DAVE], BOB)
        .unwrap();
    session
        .wait_for("the group update", |e| match e {
            Event::GroupUpdate(u) if u.group_jid == group => Some(()),
            _ => None,
        })
        .await;
    standin.set_about(BOB, "On holiday").unwrap();
    let about = session
        .wait_for("the about update", |e| match e {
            Event::UserAboutUpdate(u) => Some(u.status.clone()),
            _ => None,
        })
        .await;
    assert_eq!(about, "On holiday");
    standin.notify_contact_updated(BOB);
    session
        .wait_for("the contact update", |e| match e {
            Event::ContactUpdated(u) if u.jid.user == BOB => Some(()),
            _ => None,
        })
        .await;
    standin
        .set_picture(
            BOB,
            ProfilePicture {
                id: "1700000999".to_owned(),
                url: "https://pps.whatsapp.net/v/t61/bob2.jpg".to_owned(),
                direct_path: "/v/t61/bob2.jpg".to_owned(),
            },
        )
        .unwrap();
    let picture_id = session
        .wait_for("the picture update", |e| match e {
            Event::PictureUpdate(u) if u.jid.user == BOB => Some(u.picture_id.clone()),
            _ => None,
        })
        .await;
    assert_eq!(picture_id.as_deref(), Some("1700000999"));
    standin.change_number(CAROL, "15550100033").unwrap();
    let (old, new) = session
        .wait_for("the number change", |e| match e {
            Event::ContactNumberChanged(c) => Some((c.old_jid.clone(), c.new_jid.clone())),
            _ => None,
        })
        .await;
    assert_eq!(
        (old.user.as_str(), new.user.as_str()),
        (CAROL, "15550100033")
    );

    // --- the server drops the socket: the client reconnects, resuming with IK -------
    assert_eq!(standin.drop_connections(ALICE), 1);
    session
        .wait_for("Connected after the drop", |e| {
            matches!(e, Event::Connected(_)).then_some(())
        })
        .await;
    standin.wait_connected_async(&device, WAIT).await.unwrap();
    assert_eq!(
        standin.account(ALICE).unwrap().devices[0].last_handshake,
        Some(HandshakePattern::Ik)
    );

    // --- the server rotates its static key: the cached one fails, XXfallback ---------
    standin.rotate_server_key();
    assert_eq!(standin.drop_connections(ALICE), 1);
    session
        .wait_for("Connected after the key rotation", |e| {
            matches!(e, Event::Connected(_)).then_some(())
        })
        .await;
    standin.wait_connected_async(&device, WAIT).await.unwrap();
    assert_eq!(
        standin.account(ALICE).unwrap().devices[0].last_handshake,
        Some(HandshakePattern::XxFallback)
    );

    // --- undelivered messages wait for the next connection --------------------------
    session.stop().await;
    standin
        .send_text_from_async(BOB, ALICE, "while you were away", "3EB0STANDIN0002")
        .await
        .expect("bob writes while alice is offline");
    assert!(
        standin
            .pending_for(&device)
            .contains(&"3EB0STANDIN0002".to_owned())
    );

    // A second client run on the same store logs in without pairing.
    let mut second = start_client(&standin, backend).await;
    let offline = second
        .wait_for("the held message", |e| match e {
            Event::Messages(batch) => batch
                .messages
                .iter()
                .find(|m| m.info.id == "3EB0STANDIN0002")
                .map(|m| (text_of(&m.message), m.info.is_offline)),
            Event::PairingQrCode(_) => panic!("the stored session must not pair again"),
            _ => None,
        })
        .await;
    assert_eq!(offline, (Some("while you were away".to_owned()), true));
    standin.wait_connected_async(&device, WAIT).await.unwrap();
    assert_eq!(
        standin.account(ALICE).unwrap().devices[0].last_handshake,
        Some(HandshakePattern::Ik)
    );
    standin
        .wait_acknowledged_async(&device, "3EB0STANDIN0002", WAIT)
        .await
        .expect("the redelivered message is acknowledged");
    second.stop().await;
    eprintln!("QR scenario took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_code_pairing_links_the_device() {
    init_logging();
    let started = Instant::now();
    let standin = world();
    let mut session = start_client(&standin, Arc::new(InMemoryBackend::new())).await;
    session
        .wait_for("the pairing socket", |e| {
            matches!(e, Event::PairingQrCode(_)).then_some(())
        })
        .await;
    let code = session
        .client
        .pair_with_code(whatsapp_rust::pair_code::PairCodeOptions {
            phone_number: DAVE.to_owned(),
            ..Default::default()
        })
        .await
        .expect("stage one of pair-code pairing");
    let device = standin
        .enter_pair_code_async(DAVE, "Dave", &code)
        .await
        .expect("the phone accepts the code");
    assert_eq!(device.user, DAVE);
    let paired = session
        .wait_for("PairSuccess", |e| match e {
            Event::PairSuccess(p) => Some(p.id.clone()),
            _ => None,
        })
        .await;
    assert_eq!(paired, device);
    session
        .wait_for("Connected", |e| {
            matches!(e, Event::Connected(_)).then_some(())
        })
        .await;
    assert_eq!(session.client.push_name(), "Dave");
    standin.wait_connected_async(&device, WAIT).await.unwrap();

    // The phone unlinks the device: the client is told and logs out.
    assert!(standin.unlink_device(&device));
    session
        .wait_for("LoggedOut", |e| {
            matches!(e, Event::LoggedOut(_)).then_some(())
        })
        .await;
    assert!(standin.account(DAVE).is_none());
    session.stop().await;
    eprintln!("pair-code scenario took {:?}", started.elapsed());
}

/// Link `phone` by QR on a fresh store; returns the running client and its device JID.
async fn link_by_qr(standin: &StandIn, session: &mut Session, phone: &str, name: &str) -> Jid {
    let qr = session
        .wait_for("a QR code", |e| match e {
            Event::PairingQrCode(qr) => Some(qr.code.clone()),
            _ => None,
        })
        .await;
    let device = standin
        .scan_qr_async(&qr, phone, name)
        .await
        .expect("the phone links the device");
    session
        .wait_for("Connected", |e| {
            matches!(e, Event::Connected(_)).then_some(())
        })
        .await;
    device
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_linked_sessions_talk_through_the_server() {
    init_logging();
    let standin = world();
    // Alice over the real WebSocket transport, Eve over the in-process one.
    let mut alice = start_client(&standin, Arc::new(InMemoryBackend::new())).await;
    let alice_device = link_by_qr(&standin, &mut alice, ALICE, "Alice").await;
    let (tx, events) = mpsc::unbounded_channel();
    let bot = Bot::builder()
        .with_backend(InMemoryBackend::new())
        .with_transport_factory(standin.in_process_transport())
        .with_version((2, 3000, 0))
        .on_event(move |event, _client| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event);
            }
        })
        .build()
        .await
        .expect("the bot builds");
    let client = bot.client();
    let mut eve = Session {
        handle: bot.spawn(),
        client,
        events,
    };
    let eve_device = link_by_qr(&standin, &mut eve, "15550100005", "Eve").await;

    // Alice writes to Eve's number: the server relays Alice's per-device copy to Eve's
    // linked device, and Eve's delivery receipt back to Alice.
    let sent = alice
        .client
        .send_text(Jid::pn("15550100005"), "hi Eve")
        .await
        .expect("send");
    let (text, push_name) = eve
        .wait_for("Alice's message", |e| match e {
            Event::Messages(batch) => batch
                .messages
                .iter()
                .find(|m| m.info.id == sent.message_id)
                .map(|m| (text_of(&m.message), m.info.push_name.clone())),
            _ => None,
        })
        .await;
    assert_eq!(text.as_deref(), Some("hi Eve"));
    assert_eq!(push_name, "Alice");
    alice
        .wait_for("Eve's delivery receipt", |e| match e {
            Event::Receipt(r) if r.message_ids.contains(&sent.message_id) => Some(()),
            _ => None,
        })
        .await;
    // In a group with both: one skmsg fans out, with Alice's sender key for Eve's device.
    let group = standin.add_group("Pair", &[ALICE, "15550100005", BOB], None);
    let sent_to_group = alice
        .client
        .send_text(group.clone(), "hi all")
        .await
        .expect("group send");
    let (text, from_group, participant) = eve
        .wait_for("Alice's group message", |e| match e {
            Event::Messages(batch) => batch
                .messages
                .iter()
                .find(|m| m.info.id == sent_to_group.message_id)
                .map(|m| {
                    (
                        text_of(&m.message),
                        m.info.source.chat.clone(),
                        m.info.source.sender.user.clone(),
                    )
                }),
            _ => None,
        })
        .await;
    assert_eq!(text.as_deref(), Some("hi all"));
    assert_eq!(from_group, group);
    assert_eq!(participant, ALICE);
    let logged = standin.messages_from(ALICE);
    assert!(
        logged
            .iter()
            .any(|m| m.id == sent.message_id && m.text() == Some("hi Eve"))
    );
    assert!(standin.is_connected(&alice_device) && standin.is_connected(&eve_device));

    // Eve logs out from the client: the server forgets the linked device.
    eve.client.logout().await;
    assert!(standin.account("15550100005").is_none());
    alice.stop().await;
    eve.handle.shutdown().await;
}
