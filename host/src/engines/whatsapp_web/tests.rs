//! The engine against the wire-level stand-in WhatsApp server (tests/standin) on
//! loopback, driven below the outbox: every send kind with the outbox's id (checked in
//! the copy the recipient's phone decrypts), downloads of received and sent media with
//! the phone's re-upload when the CDN lost it, read receipts, app-state chat actions and
//! sends heard by the account's second device, refusals mapped to the outbox's codes,
//! and an inbound journal holding WhatsApp's ack until it commits.

use super::*;
use crate::engines::{MediaBytes, MediaKind, OutgoingContent, OutgoingMedia, ReceiptKind};
use crate::events::EventBus;
use crate::sessions::{CreateSession, SessionManager, SessionRegistry};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use wa_standin::{Contact, StandIn};
use whatsapp_rust::waproto::whatsapp as wa;

const ME: &str = "15550300001";
const BOB: &str = "15550300002";
const BOB_LID: &str = "240000000000012";
const CAROL: &str = "15550300003";
const WAIT: Duration = Duration::from_secs(20);

/// A stand-in world, a gateway's engine and session manager on one database, and every
/// event the manager published.
struct Harness {
    _dir: tempfile::TempDir,
    standin: StandIn,
    engine: Arc<WhatsappWeb>,
    manager: Arc<SessionManager>,
    published: Arc<Mutex<Vec<(String, String, Value)>>>,
}

impl Harness {
    async fn start(journal: Option<InboundJournal>) -> Harness {
        let standin = StandIn::start().expect("the stand-in starts");
        standin.add_contact(Contact::new(BOB, "Bobby").with_lid(BOB_LID));
        standin.add_contact(Contact::new(CAROL, "Carol"));
        standin.add_contact(Contact::new(ME, "Support"));
        standin
            .save_contact(ME, BOB, "Bob Builder", Some("Bob"))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("w.redb")).unwrap();
        let bus = EventBus::new(10_000);
        let mut events = bus.subscribe();
        let sink = EngineSink::new(bus.clone(), Arc::new(crate::metrics::Metrics::new()));
        let config = WhatsappRustConfig {
            server_url: Some(standin.url()),
            ..WhatsappRustConfig::default()
        };
        let engine = Arc::new(WhatsappWeb::new(sink.clone(), db.clone(), config, journal));
        let manager = SessionManager::new(
            SessionRegistry::load(db).unwrap(),
            engine.clone(),
            bus,
            "gw-test".into(),
            crate::sessions::SessionPolicy {
                engine_timeout: Duration::from_secs(30),
                ..Default::default()
            },
        );
        sink.attach(&manager);
        let published = Arc::new(Mutex::new(Vec::new()));
        let into = published.clone();
        tokio::spawn(async move {
            while let Ok(e) = events.recv().await {
                into.lock()
                    .unwrap()
                    .push((e.session.clone(), e.event.clone(), e.payload.clone()));
            }
        });
        Harness {
            _dir: dir,
            standin,
            engine,
            manager,
            published,
        }
    }

    /// A new session paired (by QR) with the account `ME`: a new linked device, synced.
    async fn pair(&self) -> String {
        let record = self
            .manager
            .create(
                "org_test",
                "tester",
                CreateSession {
                    label: None,
                    auto_read: None,
                    presence_typing: None,
                    start: true,
                },
            )
            .await
            .unwrap();
        let id = record.id.clone();
        let qr = self
            .event(&id, "auth.qr", |_| true)
            .await
            .get("code")
            .and_then(Value::as_str)
            .unwrap()
            .to_owned();
        self.standin
            .scan_qr_async(&qr, ME, "Support")
            .await
            .expect("the phone scans");
        until("the session to connect", || self.engine.0.live(&id).ok()).await;
        // Its first app-state sync is done (it has the account's keys) once the address
        // book's names arrive.
        self.event(&id, "contacts.upsert", |p| p["source"] == "contact_sync")
            .await;
        id
    }

    /// The first event `name` of `session` whose payload passes `test`, waiting for it.
    async fn event(&self, session: &str, name: &str, test: impl Fn(&Value) -> bool) -> Value {
        if let Some(p) = self.event_within(session, name, &test, WAIT).await {
            return p;
        }
        let seen: Vec<String> = self
            .published
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _, _)| s == session)
            .map(|(_, n, p)| format!("{n} {p}"))
            .collect();
        panic!("no matching {name} event for {session}; it got {seen:#?}");
    }

    async fn event_within(
        &self,
        session: &str,
        name: &str,
        test: &impl Fn(&Value) -> bool,
        limit: Duration,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let found = self
                .published
                .lock()
                .unwrap()
                .iter()
                .find(|(s, n, p)| s == session && n == name && test(p))
                .map(|(_, _, p)| p.clone());
            if found.is_some() || tokio::time::Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn published(&self, session: &str, name: &str, test: impl Fn(&Value) -> bool) -> bool {
        self.published
            .lock()
            .unwrap()
            .iter()
            .any(|(s, n, p)| s == session && n == name && test(p))
    }

    async fn send(&self, session: &str, message: OutgoingMessage) -> SentAck {
        let id = message.id.clone();
        self.engine
            .send_message(session, &message)
            .await
            .unwrap_or_else(|e| panic!("sending {id}: {e}"))
    }

    /// The message the account's device sent with `id`, as the recipient's phone read it.
    async fn sent(&self, id: &str) -> wa::Message {
        self.standin
            .wait_for_message_from_async(ME, id, WAIT)
            .await
            .unwrap_or_else(|e| panic!("message {id} never reached the server: {e}"))
            .decrypted
            .unwrap_or_else(|| panic!("no recipient could read {id}"))
    }
}

/// Polls `f` until it answers, for at most [`WAIT`].
async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited in vain for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn outgoing(to: &str, id: &str, content: OutgoingContent) -> OutgoingMessage {
    OutgoingMessage {
        to: to.to_owned(),
        id: id.to_owned(),
        content,
        reply_to: None,
        mentions: Vec::new(),
        forwarded: false,
    }
}

fn image(bytes: Vec<u8>, caption: &str) -> OutgoingContent {
    OutgoingContent::Media(OutgoingMedia {
        kind: MediaKind::Image,
        bytes: MediaBytes::Data(Arc::new(bytes)),
        mimetype: "image/jpeg".into(),
        caption: Some(caption.into()),
        file_name: None,
        voice_note: false,
    })
}

fn received(p: &Value) -> MessageRef {
    MessageRef {
        chat: p["chat"].as_str().unwrap().to_owned(),
        id: p["id"].as_str().unwrap().to_owned(),
        sender: p["sender"].as_str().map(str::to_owned),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_every_kind_with_the_outbox_id_and_answers_the_server_time() {
    let h = Harness::start(None).await;
    let s = h.pair().await;
    let bob = format!("{BOB}@s.whatsapp.net");
    let carol = format!("{CAROL}@s.whatsapp.net");

    // A reply quotes Bob's message (kept by the engine) and mentions Carol.
    h.standin
        .send_text_from_async(BOB, ME, "Lunch at noon?", "3EB0BOB0000Q01")
        .await
        .unwrap();
    let question = received(
        &h.event(&s, "message", |p| p["id"] == "3EB0BOB0000Q01")
            .await,
    );
    let mut reply = outgoing(&bob, "3EB0GW00000T01", OutgoingContent::Text("Sure".into()));
    reply.reply_to = Some(question.clone());
    reply.mentions = vec![carol.clone()];
    let before = crate::clock::now_ms();
    let ack = h.send(&s, reply).await;
    assert!(ack.timestamp / 1000 >= before / 1000 - 1, "{ack:?}");
    let text = h.sent("3EB0GW00000T01").await;
    let ext = text.extended_text_message.as_option().unwrap();
    assert_eq!(ext.text.as_deref(), Some("Sure"));
    let ctx = ext.context_info.as_option().unwrap();
    assert_eq!(ctx.stanza_id.as_deref(), Some("3EB0BOB0000Q01"));
    assert_eq!(
        ctx.quoted_message
            .as_option()
            .and_then(|q| q.conversation.as_deref()),
        Some("Lunch at noon?")
    );
    assert_eq!(ctx.mentioned_jid, vec![carol.clone()]);

    // Location, contact card and poll.
    h.send(
        &s,
        outgoing(
            &bob,
            "3EB0GW00000L01",
            OutgoingContent::Location {
                latitude: -6.2,
                longitude: 106.8,
                name: Some("Office".into()),
                address: None,
            },
        ),
    )
    .await;
    let loc = h.sent("3EB0GW00000L01").await;
    let loc = loc.location_message.as_option().unwrap();
    assert_eq!(
        (loc.degrees_latitude, loc.name.as_deref()),
        (Some(-6.2), Some("Office"))
    );
    let vcard = "BEGIN:VCARD\nVERSION:3.0\nFN:Carol\nEND:VCARD";
    h.send(
        &s,
        outgoing(
            &bob,
            "3EB0GW00000C01",
            OutgoingContent::Contact {
                name: "Carol".into(),
                vcard: vcard.into(),
            },
        ),
    )
    .await;
    let card = h.sent("3EB0GW00000C01").await;
    assert_eq!(
        card.contact_message.as_option().unwrap().vcard.as_deref(),
        Some(vcard)
    );
    h.send(
        &s,
        outgoing(
            &bob,
            "3EB0GW00000P01",
            OutgoingContent::Poll {
                name: "Where?".into(),
                options: vec!["Pizza".into(), "Sushi".into()],
                selectable_count: 1,
            },
        ),
    )
    .await;
    let poll = h.sent("3EB0GW00000P01").await;
    let p = poll.poll_creation_message_v3.as_option().unwrap();
    assert_eq!(p.name.as_deref(), Some("Where?"));
    assert_eq!(
        poll.message_context_info
            .as_option()
            .and_then(|c| c.message_secret.as_ref())
            .map(Vec::len),
        Some(32)
    );

    // A reaction to Bob's message; an edit, then a revoke, of our own text.
    h.send(
        &s,
        outgoing(
            &bob,
            "3EB0GW00000R01",
            OutgoingContent::Reaction {
                target: question.clone(),
                emoji: "👍".into(),
            },
        ),
    )
    .await;
    let reaction = h.sent("3EB0GW00000R01").await;
    let r = reaction.reaction_message.as_option().unwrap();
    assert_eq!(r.text.as_deref(), Some("👍"));
    let key = r.key.as_option().unwrap();
    assert_eq!(key.id.as_deref(), Some("3EB0BOB0000Q01"));
    assert_eq!(key.from_me, Some(false));
    let own = MessageRef {
        chat: bob.clone(),
        id: "3EB0GW00000T01".into(),
        sender: None,
    };
    h.send(
        &s,
        outgoing(
            &bob,
            "3EB0GW00000E01",
            OutgoingContent::Edit {
                target: own.clone(),
                text: "Sure, see you".into(),
            },
        ),
    )
    .await;
    let edit = h.sent("3EB0GW00000E01").await;
    let pm = edit.protocol_message.as_option().unwrap();
    assert_eq!(
        pm.r#type,
        Some(wa::message::protocol_message::Type::MESSAGE_EDIT)
    );
    assert_eq!(
        pm.edited_message
            .as_option()
            .and_then(|m| m.conversation.as_deref()),
        Some("Sure, see you")
    );
    h.send(
        &s,
        outgoing(
            &bob,
            "3EB0GW00000D01",
            OutgoingContent::Revoke {
                target: own.clone(),
            },
        ),
    )
    .await;
    let revoke = h.sent("3EB0GW00000D01").await;
    let pm = revoke.protocol_message.as_option().unwrap();
    assert_eq!(pm.r#type, Some(wa::message::protocol_message::Type::REVOKE));
    assert_eq!(
        pm.key.as_option().and_then(|k| k.id.as_deref()),
        Some("3EB0GW00000T01")
    );

    // A vote on Bob's poll, encrypted with its secret for Bob (creator) and us (voter).
    let bobs_poll = h.standin.poll("Dessert?", &["Cake", "Fruit"], 1);
    let secret = bobs_poll
        .message_context_info
        .as_option()
        .and_then(|c| c.message_secret.clone())
        .unwrap();
    h.standin
        .send_message_from_async(BOB, ME, bobs_poll, "3EB0BOB0000P01")
        .await
        .unwrap();
    let bobs_poll = received(
        &h.event(&s, "message", |p| p["id"] == "3EB0BOB0000P01")
            .await,
    );
    h.send(
        &s,
        outgoing(
            &bob,
            "3EB0GW00000V01",
            OutgoingContent::Vote {
                target: bobs_poll.clone(),
                options: vec!["Fruit".into()],
            },
        ),
    )
    .await;
    let vote = h.sent("3EB0GW00000V01").await;
    let v = vote.poll_update_message.as_option().unwrap();
    let enc = v.vote.as_option().unwrap();
    let (client, _) = h.engine.0.live(&s).unwrap();
    let voter = client.lid().unwrap().to_non_ad().to_string();
    let chosen = whatsapp_rust::wacore::poll::decrypt_poll_vote_with_secret(
        whatsapp_rust::features::PollVoteCiphertext {
            enc_payload: enc.enc_payload.as_deref().unwrap(),
            enc_iv: enc.enc_iv.as_deref().unwrap(),
        },
        &secret,
        "3EB0BOB0000P01",
        bobs_poll.sender.as_deref().unwrap(),
        &voter,
    )
    .expect("the vote opens with the poll's secret");
    assert_eq!(
        chosen,
        vec![whatsapp_rust::wacore::poll::compute_option_hash("Fruit").to_vec()]
    );
    let unknown_option = h
        .engine
        .send_message(
            &s,
            &outgoing(
                &bob,
                "3EB0GW00000V02",
                OutgoingContent::Vote {
                    target: bobs_poll,
                    options: vec!["Soup".into()],
                },
            ),
        )
        .await;
    assert!(
        matches!(
            unknown_option,
            Err(SendError::Permanent {
                code: "rejected",
                ..
            })
        ),
        "{unknown_option:?}"
    );

    // Read receipts reach Bob; typing is accepted.
    h.engine
        .mark_read(&s, &Jid::parse(&question.chat).unwrap(), &[question])
        .await
        .unwrap();
    until("the read receipt", || {
        h.standin
            .receipts_from(ME)
            .into_iter()
            .find(|r| r.kind.as_deref() == Some("read") && r.ids == ["3EB0BOB0000Q01"])
    })
    .await;
    h.engine
        .send_chat_state(&s, &Jid::parse(&bob).unwrap(), ChatState::Composing)
        .await
        .unwrap();

    // Refusals: a number WhatsApp does not know; a session that is not connected.
    let nobody = h
        .engine
        .send_message(
            &s,
            &outgoing(
                "15559999999@s.whatsapp.net",
                "3EB0GW00000N01",
                OutgoingContent::Text("hello?".into()),
            ),
        )
        .await;
    assert!(
        matches!(
            nobody,
            Err(SendError::Permanent {
                code: "not_on_whatsapp",
                ..
            })
        ),
        "{nobody:?}"
    );
    let offline = h
        .engine
        .send_message(
            "no-such-session",
            &outgoing(&bob, "3EB0GW00000N02", OutgoingContent::Text("hi".into())),
        )
        .await;
    assert!(
        matches!(offline, Err(SendError::NotConnected(_))),
        "{offline:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_goes_up_comes_back_survives_expiry_and_forwards_by_reference() {
    let h = Harness::start(None).await;
    let s = h.pair().await;
    let bob = format!("{BOB}@s.whatsapp.net");
    let carol = format!("{CAROL}@s.whatsapp.net");

    // Sent media: uploaded to the CDN, and downloadable again by the message's key.
    let chart: Vec<u8> = (0..50_000u32).map(|i| (i * 31 % 253) as u8).collect();
    h.send(
        &s,
        outgoing(&bob, "3EB0GW00000M01", image(chart.clone(), "the chart")),
    )
    .await;
    let sent = h.sent("3EB0GW00000M01").await;
    let img = sent.image_message.as_option().unwrap();
    assert_eq!(img.caption.as_deref(), Some("the chart"));
    assert_eq!(img.file_length, Some(chart.len() as u64));
    let path = img.direct_path.clone().unwrap();
    assert!(h.standin.media_bytes(&path).is_some());
    let mine = MessageRef {
        chat: bob.clone(),
        id: "3EB0GW00000M01".into(),
        sender: None,
    };
    let blob = h.engine.download_media(&s, &mine).await.unwrap();
    assert_eq!(*blob.bytes, chart);
    assert_eq!(blob.mimetype, "image/jpeg");

    // Received media: downloaded from its descriptor; once the CDN lost it, the phone
    // that sent it uploads it again.
    let photo: Vec<u8> = (0..20_000u32).map(|i| (i * 17 % 241) as u8).collect();
    let message = h
        .standin
        .image_message(&photo, "image/jpeg", Some("the whiteboard"))
        .unwrap();
    let first_path = message
        .image_message
        .as_option()
        .and_then(|m| m.direct_path.clone())
        .unwrap();
    h.standin
        .send_message_from_async(BOB, ME, message, "3EB0BOB0000M01")
        .await
        .unwrap();
    let theirs = received(
        &h.event(&s, "message", |p| p["id"] == "3EB0BOB0000M01")
            .await,
    );
    let blob = h.engine.download_media(&s, &theirs).await.unwrap();
    assert_eq!(*blob.bytes, photo);
    assert!(h.standin.expire_media(&first_path));
    let again = h.engine.download_media(&s, &theirs).await.unwrap();
    assert_eq!(*again.bytes, photo);

    // Forwarded by reference: the same CDN blob, no upload, marked forwarded.
    let uploads = h.standin.stored_media().len();
    let mut forward = outgoing(
        &carol,
        "3EB0GW00000F01",
        OutgoingContent::Media(OutgoingMedia {
            kind: MediaKind::Image,
            bytes: MediaBytes::Message(theirs.clone()),
            mimetype: "image/jpeg".into(),
            caption: None,
            file_name: None,
            voice_note: false,
        }),
    );
    forward.forwarded = true;
    h.send(&s, forward).await;
    let forwarded = h.sent("3EB0GW00000F01").await;
    let img = forwarded.image_message.as_option().unwrap();
    assert_ne!(img.direct_path.as_deref(), Some(first_path.as_str()));
    assert_eq!(img.caption.as_deref(), Some("the whiteboard"));
    assert_eq!(
        img.context_info.as_option().and_then(|c| c.is_forwarded),
        Some(true)
    );
    assert_eq!(
        h.standin.stored_media().len(),
        uploads,
        "forwarding uploaded again"
    );

    // No media, or media never seen: NotFound.
    h.standin
        .send_text_from_async(BOB, ME, "just text", "3EB0BOB0000X01")
        .await
        .unwrap();
    let text = received(
        &h.event(&s, "message", |p| p["id"] == "3EB0BOB0000X01")
            .await,
    );
    assert!(matches!(
        h.engine.download_media(&s, &text).await,
        Err(EngineError::NotFound(_))
    ));
    let unknown = h
        .engine
        .send_message(
            &s,
            &outgoing(
                &carol,
                "3EB0GW00000F02",
                OutgoingContent::Media(OutgoingMedia {
                    kind: MediaKind::Image,
                    bytes: MediaBytes::Message(text),
                    mimetype: "image/jpeg".into(),
                    caption: None,
                    file_name: None,
                    voice_note: false,
                }),
            ),
        )
        .await;
    assert!(
        matches!(
            unknown,
            Err(SendError::Permanent {
                code: "media_failed",
                ..
            })
        ),
        "{unknown:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accounts_other_device_hears_chat_actions_and_sends() {
    let h = Harness::start(None).await;
    let first = h.pair().await;
    let second = h.pair().await;
    assert_eq!(h.standin.account(ME).unwrap().devices.len(), 2);
    let bob = format!("{BOB}@s.whatsapp.net");
    let chat = Jid::parse(&bob).unwrap();

    // The library drops a server's sync request while an equivalent sync of the same
    // collection is in flight (right after linking, or while the previous change is
    // still being fetched), and hears the change with the next request instead. So each
    // change — all idempotent — is made again until the other device has heard it.
    async fn heard<F: std::future::Future<Output = Result<(), EngineError>>>(
        h: &Harness,
        device: &str,
        name: &str,
        test: impl Fn(&Value) -> bool,
        change: impl Fn() -> F,
    ) -> Value {
        for _ in 0..5 {
            change().await.unwrap();
            if let Some(p) = h
                .event_within(device, name, &test, Duration::from_secs(3))
                .await
            {
                return p;
            }
        }
        panic!("the other device never heard the change ({name})");
    }
    let settings = |archived, pinned, muted_until| ChatSettings {
        archived,
        pinned,
        muted_until,
    };
    let archived = heard(
        &h,
        &second,
        "chats.update",
        |p| p["archived"] == true,
        || {
            h.engine
                .apply_chat_settings(&first, &chat, settings(Some(true), None, None))
        },
    )
    .await;
    assert_eq!(archived["jid"], bob);
    assert_eq!(archived["source"], "phone");
    heard(
        &h,
        &second,
        "chats.update",
        |p| p["pinned"] == true,
        || {
            h.engine
                .apply_chat_settings(&first, &chat, settings(None, Some(true), None))
        },
    )
    .await;
    heard(
        &h,
        &second,
        "chats.update",
        |p| p["mutedUntil"] == -1,
        || {
            h.engine
                .apply_chat_settings(&first, &chat, settings(None, None, Some(-1)))
        },
    )
    .await;
    let deleted = heard(
        &h,
        &second,
        "chats.delete",
        |p| p["jid"] == bob,
        || h.engine.delete_chat(&first, &chat),
    )
    .await;
    assert_eq!(deleted["source"], "phone");

    // A message sent by one device is this account's on the other (the device linked
    // last knows the first one already).
    h.send(
        &second,
        outgoing(
            &bob,
            "3EB0GW00000S01",
            OutgoingContent::Text("from B".into()),
        ),
    )
    .await;
    let echo = h
        .event(&first, "message", |p| p["id"] == "3EB0GW00000S01")
        .await;
    assert_eq!(echo["fromMe"], true);
    assert_eq!(echo["text"], "from B");
    assert_eq!(echo["chat"], bob);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_fails_leaves_the_message_with_whatsapp_until_it_commits() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let accepting = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let committed: Arc<Mutex<Vec<EngineEvent>>> = Arc::default();
    let (tries, open, kept) = (attempts.clone(), accepting.clone(), committed.clone());
    let journal: InboundJournal = Arc::new(move |_session, events| {
        tries.fetch_add(1, Ordering::SeqCst);
        let (open, kept) = (open.load(Ordering::SeqCst), kept.clone());
        Box::pin(async move {
            if !open {
                return Err("the disk is full".to_owned());
            }
            kept.lock().unwrap().extend(events);
            Ok(())
        })
    });
    let h = Harness::start(Some(journal)).await;
    let s = h.pair().await;
    let device = h.standin.account(ME).unwrap().devices[0].jid.clone();
    let id = "3EB0BOB0000J01".to_owned();

    h.standin
        .send_text_from_async(BOB, ME, "keep this", &id)
        .await
        .unwrap();
    until("the journal's first try", || {
        (attempts.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    // Refused: no receipt, and WhatsApp still holds the message for the device.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(h.standin.pending_for(&device).contains(&id));
    assert!(
        !h.standin
            .receipts_from(ME)
            .iter()
            .any(|r| r.ids.contains(&id)),
        "the message was acknowledged although the journal refused it"
    );
    assert!(committed.lock().unwrap().is_empty());

    // WhatsApp delivers it again; committed this time, it is acknowledged.
    accepting.store(true, Ordering::SeqCst);
    assert!(h.standin.drop_connections(ME) > 0);
    h.standin
        .wait_acknowledged_async(&device, &id, WAIT)
        .await
        .expect("acknowledged once committed");
    let message = until("the committed message", || {
        committed.lock().unwrap().iter().find_map(|e| match e {
            EngineEvent::Domain { name, payload, .. }
                if name == "message" && payload["id"] == id.as_str() =>
            {
                Some(payload.clone())
            }
            _ => None,
        })
    })
    .await;
    assert_eq!(message["text"], "keep this");
    // The journal owns its delivery: the engine does not publish it a second time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!h.published(&s, "message", |p| p["id"] == id.as_str()));
}

#[test]
fn receipts_from_recipients_reach_the_outbox_and_the_accounts_own_do_not() {
    use whatsapp_rust::types::events::Receipt as WaReceipt;
    use whatsapp_rust::types::message::MessageSource;
    use whatsapp_rust::types::presence::ReceiptType;
    let bob: whatsapp_rust::Jid = format!("{BOB}@s.whatsapp.net").parse().unwrap();
    let wa_receipt = |from_me: bool, kind: ReceiptType| {
        WaReceipt::builder()
            .source(MessageSource {
                chat: bob.clone(),
                sender: bob.clone(),
                is_from_me: from_me,
                ..Default::default()
            })
            .message_ids(vec!["3EB0GW00000T01".to_owned()])
            .timestamp(whatsapp_rust::chrono::DateTime::from_timestamp(1_719_662_400, 0).unwrap())
            .r#type(kind)
            .offline(false)
            .build()
    };
    let read = translate::receipt("S1", &wa_receipt(false, ReceiptType::Read));
    let [EngineEvent::Receipt { session, receipt }] = read.as_slice() else {
        panic!("{read:?}");
    };
    assert_eq!(session, "S1");
    assert_eq!(receipt.kind, ReceiptKind::Read);
    assert_eq!(receipt.ids, vec!["3EB0GW00000T01".to_owned()]);
    assert_eq!(receipt.recipient.as_deref(), Some(bob.to_string().as_str()));
    assert_eq!(receipt.timestamp, 1_719_662_400_000);
    let played = translate::receipt("S1", &wa_receipt(false, ReceiptType::Played));
    assert!(matches!(
        played.as_slice(),
        [EngineEvent::Receipt { receipt, .. }] if receipt.kind == ReceiptKind::Played
    ));
    assert!(translate::receipt("S1", &wa_receipt(true, ReceiptType::Read)).is_empty());
    assert!(translate::receipt("S1", &wa_receipt(false, ReceiptType::Retry)).is_empty());
}

mod groups;
