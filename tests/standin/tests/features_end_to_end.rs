//! End to end with the unmodified whatsapp-rust client: the phone's address book reaching
//! the client through app state, group administration through `client.groups()` under
//! WhatsApp's rules (with notices for the account's other device), and what contacts
//! write: group messages under sender keys, reactions, edits, revokes, polls and votes,
//! media over the loopback CDN including a re-upload.

mod support;

use support::{Dial, init_logging, link_by_qr, start_client, text_of};
use wa_standin::{
    Contact, GroupAddPrivacy, GroupSetting, Jid, MemberAddMode, MessageRef, ParticipantRole,
    ReceiptKind, StandIn,
};
use wacore::download::MediaType;
use wacore::stanza::groups::GroupNotificationAction;
use wacore::types::events::Event;
use wacore::types::presence::ReceiptType;
use whatsapp_rust::{
    ErrorChainExt as _, GroupCreateOptions, GroupDescription, GroupError, GroupParticipantOptions,
    GroupSubject, JoinGroupResult, MediaRetryResult, MediaReuploadRequest, MembershipApprovalMode,
    PreviousDescription, UploadOptions,
};

const ALICE: &str = "15550200001";
const BOB: &str = "15550200002";
const CAROL: &str = "15550200003";
const DAVE: &str = "15550200004";

fn world() -> StandIn {
    let standin = StandIn::start().expect("the stand-in starts");
    standin.add_contact(Contact::new(BOB, "Bob").with_lid("240000000000002"));
    standin.add_contact(Contact::new(CAROL, "Carol").with_lid("240000000000003"));
    standin.add_contact(Contact::new(DAVE, "Dave"));
    standin
}

/// A reaction, edit or revoke as `kind target detail`.
fn describe(message: &waproto::whatsapp::Message) -> Option<String> {
    use waproto::whatsapp::message::protocol_message::Type;
    if let Some(r) = message.reaction_message.as_option() {
        let key = r.key.as_option()?;
        assert_eq!(
            key.participant.as_deref(),
            Some(Jid::pn(CAROL).to_string().as_str())
        );
        return Some(format!(
            "reaction {} {}",
            key.id.as_deref()?,
            r.text.as_deref()?
        ));
    }
    let p = message.protocol_message.as_option()?;
    let target = p.key.as_option()?.id.clone()?;
    match p.r#type? {
        Type::MESSAGE_EDIT => Some(format!(
            "edit {target} {}",
            p.edited_message.as_option().and_then(text_of)?
        )),
        Type::REVOKE => Some(format!("revoke {target}")),
        _ => None,
    }
}

/// The server's refusal code behind a failed group call.
fn code_of(error: &GroupError) -> Option<u16> {
    error.server_rejection().map(|r| r.code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phones_address_book_reaches_the_client_as_contact_updates() {
    init_logging();
    let standin = world();
    // Saved on the phone before the device is linked: part of its first app-state sync.
    assert_eq!(
        standin
            .save_contact(ALICE, BOB, "Bob Builder", Some("Bob"))
            .unwrap(),
        0
    );
    let mut alice = start_client(&standin, Dial::WebSocket).await;
    link_by_qr(&standin, &mut alice, ALICE, "Alice").await;
    let bob = standin.user_jids(BOB).unwrap();
    let (full, first, lid) = alice
        .seen_or_wait("Bob's contact entry", |e| match e {
            Event::ContactUpdate(c) if c.jid == bob.pn => Some((
                c.action.full_name.clone(),
                c.action.first_name.clone(),
                c.action.lid_jid.clone(),
            )),
            _ => None,
        })
        .await;
    assert_eq!(full.as_deref(), Some("Bob Builder"));
    assert_eq!(first.as_deref(), Some("Bob"));
    assert_eq!(lid, Some(bob.lid.to_string()));

    // Saved while the device is online: `server_sync`, the device syncs and hears it.
    assert_eq!(
        standin
            .save_contact(ALICE, CAROL, "Carol Singer", None)
            .unwrap(),
        1
    );
    let carol_name = alice
        .wait_for("Carol's contact entry", |e| match e {
            Event::ContactUpdate(c) if c.jid.user == CAROL => c.action.full_name.clone(),
            _ => None,
        })
        .await;
    assert_eq!(carol_name, "Carol Singer");
    assert_eq!(standin.address_book(ALICE).len(), 2);

    // Push names travel with messages (`notify`).
    standin
        .send_text_from_async(DAVE, ALICE, "hi, it's Dave", "3EB0BOOK0001")
        .await
        .unwrap();
    let push_name = alice
        .wait_for("Dave's message", |e| match e {
            Event::Messages(batch) => batch
                .messages
                .iter()
                .find(|m| m.info.id == "3EB0BOOK0001")
                .map(|m| m.info.push_name.clone()),
            _ => None,
        })
        .await;
    assert_eq!(push_name, "Dave");

    // History sync: the phone's chats, push names and LID mappings.
    let group = standin.add_group("Book club", &[CAROL, ALICE], None);
    assert_eq!(standin.send_history_sync_async(ALICE).await.unwrap(), 1);
    let (chats, names, mappings) = alice
        .wait_for("the history sync", |e| match e {
            Event::HistorySync(h) => h.get().map(|sync| {
                (
                    sync.conversations
                        .iter()
                        .map(|c| (c.id.clone(), c.name.clone().unwrap_or_default()))
                        .collect::<Vec<_>>(),
                    sync.pushnames
                        .iter()
                        .filter_map(|p| p.pushname.clone())
                        .collect::<Vec<_>>(),
                    sync.phone_number_to_lid_mappings.len(),
                )
            }),
            _ => None,
        })
        .await;
    assert!(chats.contains(&(bob.pn.to_string(), "Bob Builder".to_owned())));
    assert!(chats.contains(&(group.to_string(), "Book club".to_owned())));
    assert!(names.contains(&"Bob".to_owned()) && names.contains(&"Carol".to_owned()));
    assert_eq!(mappings, 2);
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_administered_under_whatsapps_rules() {
    init_logging();
    let standin = world();
    standin
        .set_group_add_privacy(CAROL, GroupAddPrivacy::MyContacts)
        .unwrap();
    // Two linked devices of one account: the second hears what the first does.
    let mut alice = start_client(&standin, Dial::WebSocket).await;
    link_by_qr(&standin, &mut alice, ALICE, "Alice").await;
    let mut other = start_client(&standin, Dial::InProcess).await;
    link_by_qr(&standin, &mut other, ALICE, "Alice").await;
    let client = alice.client.clone();
    let groups = client.groups();

    // --- create: Carol's privacy turns her add into an invitation ----------------------
    let created = groups
        .create_group(
            GroupCreateOptions::builder()
                .subject("Launch")
                .participants(vec![
                    GroupParticipantOptions::from_phone(Jid::pn(BOB)),
                    GroupParticipantOptions::from_phone(Jid::pn(CAROL)),
                ])
                .build(),
        )
        .await
        .expect("create");
    let group = created.metadata.id.clone();
    assert_eq!(created.metadata.participants.len(), 2);
    other
        .wait_for("the create notice", |e| match e {
            Event::GroupUpdate(u)
                if u.group_jid == group
                    && matches!(u.action, GroupNotificationAction::Create { .. }) =>
            {
                Some(())
            }
            _ => None,
        })
        .await;

    // --- per-participant codes ----------------------------------------------------------
    let added = groups
        .add_participants(&group, &[Jid::pn(CAROL), Jid::pn(BOB), Jid::pn(DAVE)])
        .await
        .expect("add");
    assert_eq!(added[0].error.as_deref(), Some("403"));
    assert!(added[0].add_request.is_some());
    assert_eq!(added[1].error.as_deref(), Some("409"));
    assert!(added[2].is_ok());
    let (added_jid, display_name) = other
        .wait_for("the add notice", |e| match e {
            Event::GroupUpdate(u) if u.group_jid == group => match &u.action {
                GroupNotificationAction::Add { participants, .. } => Some((
                    participants[0].jid.clone(),
                    participants[0].display_name.clone(),
                )),
                _ => None,
            },
            _ => None,
        })
        .await;
    assert_eq!(added_jid, Jid::pn(DAVE));
    assert_eq!(display_name.as_deref(), Some("Dave"));
    assert!(
        groups
            .promote_participants(&group, &[Jid::pn(BOB)])
            .await
            .unwrap()[0]
            .is_ok()
    );
    assert_eq!(
        standin.group(&group).unwrap().role_of(BOB),
        Some(ParticipantRole::Admin)
    );

    // --- subject, description (with its conflict token), settings ---------------------
    groups
        .set_subject(&group, GroupSubject::new("Launch day").unwrap())
        .await
        .unwrap();
    groups
        .set_description(
            &group,
            Some(GroupDescription::new("Ship it").unwrap()),
            PreviousDescription::Resolve,
        )
        .await
        .unwrap();
    let stale = groups
        .set_description(
            &group,
            Some(GroupDescription::new("v2").unwrap()),
            PreviousDescription::Id("STALE000"),
        )
        .await
        .unwrap_err();
    assert!(matches!(stale, GroupError::DescriptionConflict), "{stale}");
    groups.set_locked(&group, true).await.unwrap();
    groups.set_announce(&group, true).await.unwrap();
    groups
        .set_member_add_mode(&group, whatsapp_rust::MemberAddMode::AdminAdd)
        .await
        .unwrap();
    groups
        .set_membership_approval(&group, MembershipApprovalMode::On)
        .await
        .unwrap();
    let held = standin.group(&group).unwrap();
    assert_eq!(held.subject, "Launch day");
    assert_eq!(held.description.as_deref(), Some("Ship it"));
    assert!(held.settings.locked && held.settings.announcement);
    assert!(held.settings.membership_approval);
    assert_eq!(held.settings.member_add_mode, MemberAddMode::AdminAdd);
    other
        .wait_for("the approval-mode notice", |e| match e {
            Event::GroupUpdate(u) if u.group_jid == group => match u.action {
                GroupNotificationAction::MembershipApprovalMode { enabled } => Some(enabled),
                _ => None,
            },
            _ => None,
        })
        .await;

    // --- invite link, join request, approval -------------------------------------------
    let link = groups.get_invite_link(&group, false).await.unwrap();
    let code = link.rsplit('/').next().unwrap().to_owned();
    assert_eq!(standin.group_invite_code(&group), Some(code.clone()));
    assert!(!standin.join_group_by_invite(CAROL, &code).unwrap());
    let requester = alice
        .wait_for("Carol's join request", |e| match e {
            Event::GroupUpdate(u) if u.group_jid == group => match &u.action {
                GroupNotificationAction::CreatedMembershipRequests { requests, .. } => {
                    Some(requests[0].jid.clone())
                }
                _ => None,
            },
            _ => None,
        })
        .await;
    assert_eq!(requester, Jid::pn(CAROL));
    let requests = groups.get_membership_requests(&group).await.unwrap();
    assert_eq!(requests[0].jid, Jid::pn(CAROL));
    assert!(
        groups
            .approve_membership_requests(&group, &[Jid::pn(CAROL)])
            .await
            .unwrap()[0]
            .is_ok()
    );
    assert!(standin.group(&group).unwrap().is_member(CAROL));
    let new_link = groups.get_invite_link(&group, true).await.unwrap();
    assert_ne!(new_link, link);
    let gone = groups.get_invite_info(&code).await.unwrap_err();
    assert_eq!(code_of(&gone), Some(410));
    let info = groups.get_invite_info(&new_link).await.unwrap();
    assert_eq!(info.subject, "Launch day");

    // --- another admin acts, the picture changes, a member goes ------------------------
    standin.set_group_subject(&group, "Launched", BOB).unwrap();
    let subject = alice
        .wait_for("Bob's rename", |e| match e {
            Event::GroupUpdate(u) if u.group_jid == group => match &u.action {
                GroupNotificationAction::Subject { subject, .. } => Some(subject.clone()),
                _ => None,
            },
            _ => None,
        })
        .await;
    assert_eq!(subject, "Launched");
    let picture = groups
        .set_profile_picture(&group, b"\xff\xd8\xff\xe0 a tiny jpeg".to_vec())
        .await
        .unwrap();
    let announced = other
        .wait_for("the group picture notice", |e| match e {
            Event::PictureUpdate(u) if u.jid == group => u.picture_id.clone(),
            _ => None,
        })
        .await;
    assert_eq!(announced, picture.id);
    assert!(
        groups
            .remove_participants(&group, &[Jid::pn(DAVE)])
            .await
            .unwrap()[0]
            .is_ok()
    );
    assert!(!standin.group(&group).unwrap().is_member(DAVE));

    // --- a group where Alice is a plain member: the rules bite -------------------------
    let bobs = standin.add_group("Bob's", &[BOB, ALICE, CAROL], None);
    let refused = groups.set_locked(&bobs, true).await.unwrap_err();
    assert_eq!(code_of(&refused), Some(403));
    groups
        .set_subject(&bobs, GroupSubject::new("Ours").unwrap())
        .await
        .expect("unlocked: any member may rename");
    standin
        .set_group_setting(&bobs, GroupSetting::Locked(true), BOB)
        .unwrap();
    alice
        .wait_for("Bob locking his group", |e| match e {
            Event::GroupUpdate(u)
                if u.group_jid == bobs
                    && matches!(u.action, GroupNotificationAction::Locked { .. }) =>
            {
                Some(())
            }
            _ => None,
        })
        .await;
    let refused = groups
        .set_subject(&bobs, GroupSubject::new("Mine").unwrap())
        .await
        .unwrap_err();
    assert_eq!(code_of(&refused), Some(403));
    groups.leave(&bobs).await.unwrap();
    let refused = groups
        .set_subject(&bobs, GroupSubject::new("Back").unwrap())
        .await
        .unwrap_err();
    assert_eq!(code_of(&refused), Some(404));

    // --- joining by link into a group that wants approval ------------------------------
    let closed = standin.add_group("Closed", &[BOB, CAROL], None);
    standin
        .set_group_setting(&closed, GroupSetting::MembershipApproval(true), BOB)
        .unwrap();
    let closed_code = standin.group_invite_code(&closed).unwrap();
    let joined = groups.join_with_invite_code(&closed_code).await.unwrap();
    assert_eq!(joined, JoinGroupResult::PendingApproval(closed.clone()));
    assert_eq!(standin.membership_requests(&closed)[0].phone, ALICE);
    standin
        .answer_membership_requests(&closed, &[ALICE], true, BOB)
        .unwrap();
    let admitted = alice
        .wait_for("the approval", |e| match e {
            Event::GroupUpdate(u) if u.group_jid == closed => match &u.action {
                GroupNotificationAction::Add { participants, .. } => {
                    Some(participants[0].jid.clone())
                }
                _ => None,
            },
            _ => None,
        })
        .await;
    assert_eq!(admitted, Jid::pn(ALICE));
    alice.stop().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_write_to_groups_react_edit_vote_and_send_media() {
    init_logging();
    let standin = world();
    let mut alice = start_client(&standin, Dial::WebSocket).await;
    link_by_qr(&standin, &mut alice, ALICE, "Alice").await;
    let group = standin.add_group("Crew", &[BOB, ALICE, CAROL], None);
    let chat = group.to_string();

    // --- contacts write into the group: sender keys, push names --------------------------
    for (from, id, text) in [
        (BOB, "3EB0CREW0001", "hello crew"),
        (CAROL, "3EB0CREW0002", "hi Bob"),
        (BOB, "3EB0CREW0003", "second, key already there"),
    ] {
        standin
            .send_text_from_async(from, &chat, text, id)
            .await
            .unwrap();
        let (got, in_chat, sender, push_name) = alice
            .wait_for(id, |e| match e {
                Event::Messages(batch) => {
                    batch.messages.iter().find(|m| m.info.id == id).map(|m| {
                        (
                            text_of(&m.message),
                            m.info.source.chat.clone(),
                            m.info.source.sender.user.to_string(),
                            m.info.push_name.clone(),
                        )
                    })
                }
                _ => None,
            })
            .await;
        assert_eq!(got.as_deref(), Some(text));
        assert_eq!(in_chat, group);
        assert_eq!(sender, from);
        assert_eq!(push_name, if from == BOB { "Bob" } else { "Carol" });
    }

    // --- a reaction, an edit, a revoke ---------------------------------------------------
    let reaction = standin.reaction(BOB, &chat, &MessageRef::new("3EB0CREW0002", CAROL), "👍");
    standin
        .send_message_from_async(BOB, &chat, reaction, "3EB0CREW0004")
        .await
        .unwrap();
    let edit = standin.edit(BOB, &chat, "3EB0CREW0001", "hello crew!");
    standin
        .send_message_from_async(BOB, &chat, edit, "3EB0CREW0005")
        .await
        .unwrap();
    let revoke = standin.revoke(BOB, &chat, "3EB0CREW0003");
    standin
        .send_message_from_async(BOB, &chat, revoke, "3EB0CREW0006")
        .await
        .unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let found = alice
            .wait_for("the reaction, edit and revoke", |e| match e {
                Event::Messages(batch) => {
                    let found: Vec<String> = batch
                        .messages
                        .iter()
                        .filter_map(|m| describe(&m.message))
                        .collect();
                    (!found.is_empty()).then_some(found)
                }
                _ => None,
            })
            .await;
        kinds.extend(found);
    }
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            "edit 3EB0CREW0001 hello crew!",
            "reaction 3EB0CREW0002 👍",
            "revoke 3EB0CREW0003"
        ]
    );

    // --- a contact's poll, another contact's vote, decrypted by the client ---------------
    let poll = standin.poll("Pizza or sushi?", &["Pizza", "Sushi"], 1);
    standin
        .send_message_from_async(BOB, &chat, poll, "3EB0POLL0001")
        .await
        .unwrap();
    let secret = alice
        .wait_for("Bob's poll", |e| match e {
            Event::Messages(batch) => batch
                .messages
                .iter()
                .find(|m| m.info.id == "3EB0POLL0001")
                .and_then(|m| {
                    m.message
                        .message_context_info
                        .as_option()?
                        .message_secret
                        .clone()
                }),
            _ => None,
        })
        .await;
    let vote = standin
        .poll_vote(
            CAROL,
            &chat,
            &MessageRef::new("3EB0POLL0001", BOB),
            &["Sushi"],
        )
        .unwrap();
    standin
        .send_message_from_async(CAROL, &chat, vote, "3EB0POLL0002")
        .await
        .unwrap();
    let update = alice
        .wait_for("Carol's vote", |e| match e {
            Event::Messages(batch) => batch
                .messages
                .iter()
                .find(|m| m.info.id == "3EB0POLL0002")
                .and_then(|m| m.message.poll_update_message.as_option().cloned()),
            _ => None,
        })
        .await;
    let enc = update.vote.as_option().unwrap();
    let chosen = alice
        .client
        .polls()
        .decrypt_vote(
            whatsapp_rust::PollVoteCiphertext {
                enc_payload: enc.enc_payload.as_deref().unwrap(),
                enc_iv: enc.enc_iv.as_deref().unwrap(),
            },
            &secret,
            "3EB0POLL0001",
            &Jid::pn(BOB),
            &Jid::pn(CAROL),
        )
        .await
        .unwrap();
    assert_eq!(
        chosen,
        vec![wacore::poll::compute_option_hash("Sushi").to_vec()]
    );

    // --- Alice's own poll: Bob's phone read its secret and votes --------------------------
    let bob = standin.user_jids(BOB).unwrap();
    let (sent, alice_secret) = alice
        .client
        .polls()
        .create(bob.pn.clone(), "Lunch?", &["Now".into(), "Later".into()], 1)
        .await
        .unwrap();
    standin
        .wait_for_message_from_async(ALICE, &sent.message_id, support::WAIT)
        .await
        .unwrap();
    let vote = standin
        .poll_vote(
            BOB,
            ALICE,
            &MessageRef::new(sent.message_id.clone(), ALICE),
            &["Later"],
        )
        .unwrap();
    standin
        .send_message_from_async(BOB, ALICE, vote, "3EB0POLL0003")
        .await
        .unwrap();
    let update = alice
        .wait_for("Bob's vote", |e| match e {
            Event::Messages(batch) => batch
                .messages
                .iter()
                .find(|m| m.info.id == "3EB0POLL0003")
                .and_then(|m| m.message.poll_update_message.as_option().cloned()),
            _ => None,
        })
        .await;
    let enc = update.vote.as_option().unwrap();
    let chosen = alice
        .client
        .polls()
        .decrypt_vote(
            whatsapp_rust::PollVoteCiphertext {
                enc_payload: enc.enc_payload.as_deref().unwrap(),
                enc_iv: enc.enc_iv.as_deref().unwrap(),
            },
            &alice_secret,
            &sent.message_id,
            &Jid::pn(ALICE),
            &Jid::pn(BOB),
        )
        .await
        .unwrap();
    assert_eq!(
        chosen,
        vec![wacore::poll::compute_option_hash("Later").to_vec()]
    );
    standin
        .send_receipt(BOB, ALICE, &sent.message_id, ReceiptKind::Played)
        .unwrap();
    alice
        .wait_for("the played receipt", |e| match e {
            Event::Receipt(r) if r.message_ids.contains(&sent.message_id) => {
                (r.r#type == ReceiptType::Played).then_some(())
            }
            _ => None,
        })
        .await;

    // --- media: a contact's image, downloaded, expired, re-uploaded ----------------------
    let jpeg = b"\xff\xd8\xff\xe0 pretend this is a photo".repeat(40);
    let image = standin
        .image_message(&jpeg, "image/jpeg", Some("look"))
        .unwrap();
    standin
        .send_message_from_async(BOB, ALICE, image, "3EB0MEDIA001")
        .await
        .unwrap();
    let (received, chat_of_image) = alice
        .wait_for("Bob's image", |e| match e {
            Event::Messages(batch) => batch
                .messages
                .iter()
                .find(|m| m.info.id == "3EB0MEDIA001")
                .and_then(|m| {
                    Some((
                        m.message.image_message.as_option()?.clone(),
                        m.info.source.chat.clone(),
                    ))
                }),
            _ => None,
        })
        .await;
    assert_eq!(received.caption.as_deref(), Some("look"));
    let downloaded = alice.client.download(&received).await.expect("download");
    assert_eq!(downloaded, jpeg);
    assert!(standin.expire_media(received.direct_path.as_deref().unwrap()));
    assert!(alice.client.download(&received).await.is_err());
    let retried = alice
        .client
        .media_reupload()
        .request(&MediaReuploadRequest {
            msg_id: "3EB0MEDIA001",
            chat_jid: &chat_of_image,
            media_key: received.media_key.as_deref().unwrap(),
            is_from_me: false,
            participant: None,
        })
        .await
        .expect("media retry");
    let MediaRetryResult::Success { direct_path } = retried else {
        panic!("expected a fresh direct path, got {retried:?}");
    };
    let mut fresh = received.clone();
    fresh.direct_path = Some(direct_path);
    assert_eq!(alice.client.download(&fresh).await.unwrap(), jpeg);

    // --- media: the client uploads and sends a document; Bob's phone can read it ---------
    let pdf = b"%PDF-1.4 not really".repeat(100);
    let upload = alice
        .client
        .upload(pdf.clone(), MediaType::Document, UploadOptions::default())
        .await
        .expect("upload to the loopback CDN");
    assert!(
        standin
            .stored_media()
            .iter()
            .any(|m| upload.direct_path.starts_with(&m.direct_path))
    );
    let document = waproto::whatsapp::message::DocumentMessage {
        url: Some(upload.url.clone()),
        direct_path: Some(upload.direct_path.clone()),
        media_key: Some(upload.media_key.to_vec()),
        file_sha256: Some(upload.file_sha256.to_vec()),
        file_enc_sha256: Some(upload.file_enc_sha256.to_vec()),
        file_length: Some(upload.file_length),
        mimetype: Some("application/pdf".into()),
        file_name: Some("plan.pdf".into()),
        ..Default::default()
    };
    let sent = alice
        .client
        .send_message(
            bob.pn.clone(),
            waproto::whatsapp::Message {
                document_message: buffa::MessageField::some(document.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let seen_by_bob = standin
        .wait_for_message_from_async(ALICE, &sent.message_id, support::WAIT)
        .await
        .unwrap();
    let seen = seen_by_bob
        .decrypted
        .as_ref()
        .and_then(|m| m.document_message.as_option().cloned())
        .expect("Bob's phone reads the document message");
    assert_eq!(seen.direct_path, document.direct_path);
    assert_eq!(alice.client.download(&seen).await.unwrap(), pdf);
    alice.stop().await;
}
