//! Messages and receipts on the wire. Inbound: a simulated user's phone Signal-encrypts to
//! each companion of the recipient and the server holds the stanza until the device
//! acknowledges it (the offline queue). Outbound: the server acks what a companion sends,
//! decrypts the copies addressed to phones the stand-in holds, relays copies addressed to
//! other companions, and sends the recipients' receipts.

use std::sync::Arc;

use wacore::messages::{MessageUtils, decode_plaintext, unwrap_device_sent};
use wacore::types::jid::JidExt as _;
use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node, NodeContent, Server};
use wacore_libsignal::protocol::ProtocolAddress;
use waproto::whatsapp as wa;

use crate::connection::Session;
use crate::error::{Result, StandInError};
use crate::registry::{DeviceAddress, QueuedStanza, Registry, Resend, SentMessage, SentReceipt};
use crate::server::{AutoReceipts, Shared, now};
use crate::stanza::{attr, jid_attr};

/// Which receipt a recipient sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptKind {
    /// The message reached the recipient's phone.
    Delivered,
    /// The recipient read it.
    Read,
    /// The recipient played it (voice notes, videos).
    Played,
}

impl ReceiptKind {
    /// The receipt's `type`; a delivery receipt has none.
    fn wire(self) -> Option<&'static str> {
        match self {
            Self::Delivered => None,
            Self::Read => Some("read"),
            Self::Played => Some("played"),
        }
    }
}

/// The stand-in's Signal address for a companion device: its account LID and device id.
fn companion_address(lid: &str, device: u16) -> ProtocolAddress {
    Jid::lid_device(lid, device).to_protocol_address()
}

/// The stanza `edit` attribute a message needs: `1` for an edit, `7` for a sender's revoke.
fn edit_attr(message: &wa::Message) -> Option<&'static str> {
    use wa::message::protocol_message::Type;
    match message.protocol_message.as_option()?.r#type? {
        Type::MESSAGE_EDIT => Some("1"),
        Type::REVOKE => Some("7"),
        _ => None,
    }
}

/// Who a simulated phone is, as the stanzas it sends name it.
struct SenderIdentity {
    phone: Arc<tokio::sync::Mutex<crate::signal::SignalDevice>>,
    lid: String,
    push_name: String,
}

fn sender_identity(shared: &Shared, sender_pn: &str) -> Result<SenderIdentity> {
    let registry = shared.registry();
    let sender = registry
        .user(sender_pn)
        .ok_or_else(|| StandInError::UnknownContact(sender_pn.to_owned()))?;
    Ok(SenderIdentity {
        phone: sender.phone.clone(),
        lid: sender.lid.clone(),
        push_name: sender.push_name.clone(),
    })
}

/// The phone of `sender_pn` Signal-encrypts `plaintext` to one companion device, starting a
/// session from the device's published keys if it has none.
async fn encrypt_pairwise(
    shared: &Arc<Shared>,
    phone: &tokio::sync::Mutex<crate::signal::SignalDevice>,
    recipient: &DeviceAddress,
    plaintext: &[u8],
) -> Result<Node> {
    let recipient_lid = shared
        .registry()
        .user(&recipient.pn)
        .map(|u| u.lid.clone())
        .ok_or_else(|| StandInError::UnknownAccount(recipient.pn.clone()))?;
    let remote = companion_address(&recipient_lid, recipient.device);
    let mut phone = phone.lock().await;
    if !phone.has_session(&remote) {
        let bundle = shared.update(|registry| {
            registry
                .companion_mut(recipient)
                .map(|companion| companion.keys.bundle.claim(recipient.device))
                .ok_or_else(|| StandInError::NoRecipientDevice(recipient.pn.clone()))
        })??;
        phone.start_session(&remote, &bundle).await?;
    }
    let encrypted = phone.encrypt(&remote, plaintext).await?;
    Ok(NodeBuilder::new("enc")
        .attr("v", "2")
        .attr("type", encrypted.enc_type)
        .bytes(encrypted.ciphertext)
        .build())
}

/// Encrypt `message` from the phone of `sender_pn` to one companion device and build the
/// `<message>` stanza the server delivers to that device.
async fn seal(
    shared: &Arc<Shared>,
    sender_pn: &str,
    recipient: &DeviceAddress,
    message: &wa::Message,
    id: &str,
    kind: &str,
) -> Result<Node> {
    let sender = sender_identity(shared, sender_pn)?;
    let plaintext = MessageUtils::encode_and_pad(message);
    let enc = encrypt_pairwise(shared, &sender.phone, recipient, &plaintext).await?;

    let is_self = sender_pn == recipient.pn;
    let mut builder = NodeBuilder::new("message")
        .attr("id", id.to_owned())
        .attr("type", kind.to_owned())
        .attr("t", now().to_string());
    if let Some(edit) = edit_attr(message) {
        builder = builder.attr("edit", edit);
    }
    builder = if is_self {
        // The account's own phone: from the account's own number.
        builder.attr("from", Jid::pn(sender_pn))
    } else {
        builder
            .attr("from", Jid::lid(sender.lid.as_str()))
            .attr("sender_pn", Jid::pn(sender_pn))
            .attr("notify", sender.push_name)
    };
    Ok(builder.children([enc]).build())
}

/// The group stanza a member's phone sends through the server, as one member device gets
/// it: from the group, naming the sender (PN addressing, with its LID alongside).
fn group_stanza(
    group: &Jid,
    sender_pn: &str,
    sender: &SenderIdentity,
    (id, kind, edit): (&str, &str, Option<&str>),
    encs: Vec<Node>,
) -> Node {
    let builder = NodeBuilder::new("message");
    let builder = match edit {
        Some(edit) => builder.attr("edit", edit.to_owned()),
        None => builder,
    };
    builder
        .attr("from", group.clone())
        .attr("participant", Jid::pn(sender_pn))
        .attr("participant_lid", Jid::lid(sender.lid.as_str()))
        .attr("addressing_mode", "pn")
        .attr("id", id.to_owned())
        .attr("type", kind.to_owned())
        .attr("t", now().to_string())
        .attr("notify", sender.push_name.clone())
        .children(encs)
        .build()
}

/// A group message a member's phone sends, before it is sealed for each device.
struct GroupCopy<'a> {
    group: &'a Jid,
    message: &'a wa::Message,
    id: &'a str,
    kind: &'a str,
    /// The shared `skmsg` and the sender key (SKDM) as it was before that message; `None`
    /// for a retry, which carries the whole message pairwise.
    skmsg: Option<(&'a Node, &'a [u8])>,
}

/// One member device's copy of a group message from the phone of `sender_pn`: its sender
/// key first (pairwise, `pkmsg`/`msg`) if the device lacks it, then the shared `skmsg`.
async fn seal_for_group(
    shared: &Arc<Shared>,
    sender_pn: &str,
    recipient: &DeviceAddress,
    copy: &GroupCopy<'_>,
) -> Result<Node> {
    let sender = sender_identity(shared, sender_pn)?;
    let own = Jid::lid(sender.lid.as_str()).to_protocol_address();
    let group_name = copy.group.to_string();
    let recipient_lid = shared
        .registry()
        .user(&recipient.pn)
        .map(|u| u.lid.clone())
        .ok_or_else(|| StandInError::UnknownAccount(recipient.pn.clone()))?;
    let remote = companion_address(&recipient_lid, recipient.device);
    let distribution = |skdm: Vec<u8>| wa::message::SenderKeyDistributionMessage {
        group_id: Some(group_name.clone()),
        axolotl_sender_key_distribution_message: Some(skdm),
    };
    let mut encs = Vec::new();
    match copy.skmsg {
        Some((skmsg, skdm)) => {
            let due = sender
                .phone
                .lock()
                .await
                .take_distribution_due(&group_name, &remote);
            if due {
                let carrier = wa::Message {
                    sender_key_distribution_message: buffa::MessageField::some(distribution(
                        skdm.to_vec(),
                    )),
                    ..Default::default()
                };
                let plaintext = MessageUtils::encode_and_pad(&carrier);
                encs.push(encrypt_pairwise(shared, &sender.phone, recipient, &plaintext).await?);
            }
            encs.push(skmsg.clone());
        }
        None => {
            let skdm = sender
                .phone
                .lock()
                .await
                .sender_key_distribution(&group_name, &own)
                .await?;
            let mut whole = copy.message.clone();
            whole.sender_key_distribution_message = buffa::MessageField::some(distribution(skdm));
            let plaintext = MessageUtils::encode_and_pad(&whole);
            encs.push(encrypt_pairwise(shared, &sender.phone, recipient, &plaintext).await?);
        }
    }
    Ok(group_stanza(
        copy.group,
        sender_pn,
        &sender,
        (copy.id, copy.kind, edit_attr(copy.message)),
        encs,
    ))
}

/// A simulated member writes `message` to group `group_id`: one `skmsg` under its sender
/// key for every member device, each device's copy held until acknowledged.
pub(crate) async fn send_to_group_from_contact(
    shared: &Arc<Shared>,
    contact_pn: &str,
    group_id: &str,
    message: &wa::Message,
    id: &str,
) -> Result<usize> {
    let (group, devices) = {
        let registry = shared.registry();
        let group = registry
            .groups
            .get(group_id)
            .ok_or_else(|| StandInError::UnknownGroup(group_id.to_owned()))?;
        if !group.is_member(contact_pn) {
            return Err(StandInError::GroupRefused {
                code: 403,
                text: format!("{contact_pn} is not a member of {group_id}"),
            });
        }
        if group.settings.announcement && !group.is_admin(contact_pn) {
            return Err(StandInError::GroupRefused {
                code: 403,
                text: format!("only admins may write to {group_id}"),
            });
        }
        let devices: Vec<DeviceAddress> = group
            .member_pns()
            .iter()
            .filter_map(|pn| registry.user(pn))
            .flat_map(|user| {
                user.companions.keys().map(|device| DeviceAddress {
                    pn: user.pn.clone(),
                    device: *device,
                })
            })
            .collect();
        (group.jid(), devices)
    };
    let sender = sender_identity(shared, contact_pn)?;
    let own = Jid::lid(sender.lid.as_str()).to_protocol_address();
    let kind = wacore::send::stanza_type_from_message(message);
    let plaintext = MessageUtils::encode_and_pad(message);
    let (skdm, skmsg_bytes) = {
        let mut phone = sender.phone.lock().await;
        // The key as members must receive it: before this message advanced it.
        let skdm = phone
            .sender_key_distribution(&group.to_string(), &own)
            .await?;
        let skmsg = phone
            .encrypt_group(&group.to_string(), &own, &plaintext)
            .await?;
        (skdm, skmsg)
    };
    let skmsg = NodeBuilder::new("enc")
        .attr("v", "2")
        .attr("type", "skmsg")
        .bytes(skmsg_bytes)
        .build();
    remember_message(shared, contact_pn, id, message);
    let count = devices.len();
    for recipient in devices {
        let copy = GroupCopy {
            group: &group,
            message,
            id,
            kind,
            skmsg: Some((&skmsg, &skdm)),
        };
        let node = seal_for_group(shared, contact_pn, &recipient, &copy).await?;
        shared.update(|registry| {
            registry.enqueue(
                &recipient,
                QueuedStanza {
                    id: id.to_owned(),
                    class: "message",
                    kind: None,
                    node,
                    resend: Some(Box::new(Resend {
                        sender_pn: contact_pn.to_owned(),
                        message: message.clone(),
                        kind: kind.to_owned(),
                        group: Some(group.clone()),
                    })),
                },
            )
        });
    }
    Ok(count)
}

/// What the stand-in keeps about a message a simulated phone sent: its media key (for a
/// media retry) and its message secret (for poll votes).
fn remember_message(shared: &Shared, sender_pn: &str, id: &str, message: &wa::Message) {
    if let Some(media) = crate::media::media_of(message) {
        shared.cdn.remember_key(id, media);
    }
    if let Some(secret) = message
        .message_context_info
        .as_option()
        .and_then(|c| c.message_secret.clone())
    {
        shared.update(|registry| {
            registry
                .message_secrets
                .insert(id.to_owned(), (secret, sender_pn.to_owned()))
        });
    }
}

/// The phone of `sender_pn` sends `message` to one companion; held until acknowledged.
pub(crate) async fn send_from_phone(
    shared: &Arc<Shared>,
    sender_pn: &str,
    recipient: &DeviceAddress,
    message: &wa::Message,
    kind: &str,
) -> Result<String> {
    let id = format!("3EB0{:016X}", rand::random::<u64>());
    let node = seal(shared, sender_pn, recipient, message, &id, kind).await?;
    shared.update(|registry| {
        registry.enqueue(
            recipient,
            QueuedStanza {
                id: id.clone(),
                class: "message",
                kind: None,
                node,
                resend: Some(Box::new(Resend {
                    sender_pn: sender_pn.to_owned(),
                    message: message.clone(),
                    kind: kind.to_owned(),
                    group: None,
                })),
            },
        )
    });
    Ok(id)
}

/// A simulated contact writes `message` to every linked device of `account_pn`.
pub(crate) async fn send_from_contact(
    shared: &Arc<Shared>,
    contact_pn: &str,
    account_pn: &str,
    message: &wa::Message,
    id: &str,
) -> Result<()> {
    let devices: Vec<u16> = {
        let registry = shared.registry();
        registry
            .user(contact_pn)
            .ok_or_else(|| StandInError::UnknownContact(contact_pn.to_owned()))?;
        let account = registry
            .user(account_pn)
            .ok_or_else(|| StandInError::UnknownAccount(account_pn.to_owned()))?;
        account.companions.keys().copied().collect()
    };
    if devices.is_empty() {
        return Err(StandInError::NoRecipientDevice(account_pn.to_owned()));
    }
    remember_message(shared, contact_pn, id, message);
    for device in devices {
        let recipient = DeviceAddress {
            pn: account_pn.to_owned(),
            device,
        };
        let kind = wacore::send::stanza_type_from_message(message);
        let node = seal(shared, contact_pn, &recipient, message, id, kind).await?;
        shared.update(|registry| {
            registry.enqueue(
                &recipient,
                QueuedStanza {
                    id: id.to_owned(),
                    class: "message",
                    kind: None,
                    node,
                    resend: Some(Box::new(Resend {
                        sender_pn: contact_pn.to_owned(),
                        message: message.clone(),
                        kind: kind.to_owned(),
                        group: None,
                    })),
                },
            )
        });
    }
    Ok(())
}

/// A simulated contact writes to `to`: an account's phone number, or a group JID.
pub(crate) async fn send_from_contact_to(
    shared: &Arc<Shared>,
    contact_pn: &str,
    to: &str,
    message: &wa::Message,
    id: &str,
) -> Result<()> {
    match to.parse::<Jid>() {
        Ok(group) if group.server == Server::Group => {
            send_to_group_from_contact(shared, contact_pn, group.user.as_str(), message, id)
                .await
                .map(|_| ())
        }
        _ => send_from_contact(shared, contact_pn, to, message, id).await,
    }
}

/// A plain text message.
pub(crate) fn text_message(text: &str) -> wa::Message {
    wa::Message {
        conversation: Some(text.to_owned()),
        ..Default::default()
    }
}

/// A companion sent a `<message>`: ack it, read the copies the stand-in can read (a
/// contact's phone, or the account's own phone for the self copy), fan the copies for
/// other companions out, and let recipients send receipts. Group messages carry one
/// sender-key `skmsg` for every member device plus pairwise sender-key distributions.
pub(crate) async fn on_client_message(
    shared: &Arc<Shared>,
    session: &Session,
    node: &Node,
) -> Result<()> {
    let Some(sender) = session.device().cloned() else {
        return Err(StandInError::protocol(
            "message from a connection that is not logged in",
        ));
    };
    let id = attr(node, "id").ok_or_else(|| StandInError::protocol("message without id"))?;
    let to = jid_attr(node, "to").ok_or_else(|| StandInError::protocol("message without to"))?;
    let kind = attr(node, "type").unwrap_or_else(|| "text".to_owned());
    session.send(
        NodeBuilder::new("ack")
            .attr("class", "message")
            .attr("id", id.clone())
            .attr("from", to.clone())
            .attr("t", now().to_string())
            .build(),
    );

    let (sender_lid, sender_push_name) = {
        let registry = shared.registry();
        let user = registry
            .user(&sender.pn)
            .ok_or_else(|| StandInError::UnknownAccount(sender.pn.clone()))?;
        (user.lid.clone(), user.push_name.clone())
    };
    let origin = Origin {
        sender: sender.clone(),
        remote: companion_address(&sender_lid, sender.device),
        sender_lid,
        push_name: sender_push_name,
        device_identity: node.get_optional_child("device-identity").cloned(),
    };
    let group = (to.server == Server::Group).then(|| to.to_non_ad());
    let skmsg = node
        .get_children_by_tag("enc")
        .find(|enc| attr(enc, "type").as_deref() == Some("skmsg"))
        .cloned();

    let mut decrypted_for_recipient = None;
    let mut decrypted_self_copy = None;
    let mut recipient_users = Vec::new();
    let mut reached = Vec::new();
    for to_node in node
        .get_optional_child("participants")
        .map(|p| p.get_children_by_tag("to").cloned().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let Some(device_jid) = jid_attr(&to_node, "jid") else {
            continue;
        };
        let Some(enc) = to_node.get_optional_child("enc") else {
            continue;
        };
        let Some(pn) = shared.registry().resolve_pn(&device_jid) else {
            log::debug!("message {id}: no such user {device_jid}");
            continue;
        };
        let is_self = pn == sender.pn;
        if !is_self && !recipient_users.contains(&pn) {
            recipient_users.push(pn.clone());
        }
        if device_jid.device == 0 {
            match open(shared, &pn, &origin.remote, enc).await {
                Ok(message) => {
                    if let (Some(group), Some(skdm)) = (
                        &group,
                        message
                            .sender_key_distribution_message
                            .as_option()
                            .and_then(|d| d.axolotl_sender_key_distribution_message.as_deref()),
                    ) {
                        take_sender_key(shared, &pn, group, &origin.remote, skdm).await;
                    } else if is_self {
                        decrypted_self_copy = Some(unwrap_device_sent(message));
                    } else {
                        decrypted_for_recipient = Some(message);
                    }
                }
                Err(e) => log::warn!("message {id}: {device_jid} cannot decrypt: {e}"),
            }
        } else {
            let recipient = DeviceAddress {
                pn,
                device: device_jid.device,
            };
            let mut encs = vec![enc.clone()];
            encs.extend(skmsg.clone());
            relay(
                shared,
                &origin,
                node,
                &recipient,
                &device_jid,
                group.as_ref(),
                encs,
            );
            reached.push(recipient);
        }
    }

    if let (Some(group), Some(skmsg)) = (&group, &skmsg) {
        let members: Vec<String> = shared
            .registry()
            .groups
            .get(group.user.as_str())
            .map(|g| g.participants.iter().map(|(pn, _)| pn.clone()).collect())
            .unwrap_or_default();
        // Members' companions that already hold the sender key get the skmsg alone.
        let devices: Vec<DeviceAddress> = {
            let registry = shared.registry();
            members
                .iter()
                .filter_map(|pn| registry.user(pn))
                .flat_map(|user| {
                    user.companions.keys().map(|device| DeviceAddress {
                        pn: user.pn.clone(),
                        device: *device,
                    })
                })
                .filter(|address| *address != sender && !reached.contains(address))
                .collect()
        };
        for recipient in devices {
            let jid = recipient.pn_jid();
            relay(
                shared,
                &origin,
                node,
                &recipient,
                &jid,
                Some(group),
                vec![skmsg.clone()],
            );
        }
        for pn in members.iter().filter(|pn| **pn != sender.pn) {
            if let Ok(message) = open_group(shared, pn, group, &origin.remote, skmsg).await {
                decrypted_for_recipient = Some(message);
                break;
            }
        }
        recipient_users = members.into_iter().filter(|pn| *pn != sender.pn).collect();
    }

    if let Some(media) = decrypted_for_recipient
        .as_ref()
        .or(decrypted_self_copy.as_ref())
        .and_then(crate::media::media_of)
    {
        // The recipient's phone (or the account's own) holds the key: it can re-upload.
        shared.cdn.remember_key(&id, media);
    }
    if let Some(secret) = decrypted_for_recipient
        .as_ref()
        .or(decrypted_self_copy.as_ref())
        .and_then(|m| m.message_context_info.as_option())
        .and_then(|c| c.message_secret.clone())
    {
        shared.update(|registry| {
            registry
                .message_secrets
                .insert(id.clone(), (secret, sender.pn.clone()))
        });
    }
    shared.update(|registry| {
        registry.sent_messages.push(SentMessage {
            id: id.clone(),
            from: sender.pn_jid(),
            to: to.clone(),
            kind,
            decrypted: decrypted_for_recipient.or(decrypted_self_copy),
        });
    });

    let auto = shared.auto_receipts();
    if auto != AutoReceipts::Off {
        for pn in recipient_users {
            send_receipt(shared, &pn, &sender.pn, &id, ReceiptKind::Delivered)?;
            if auto == AutoReceipts::DeliveredAndRead {
                send_receipt(shared, &pn, &sender.pn, &id, ReceiptKind::Read)?;
            }
        }
    }
    Ok(())
}

/// Who sent a message being fanned out, as recipients see it.
struct Origin {
    sender: DeviceAddress,
    sender_lid: String,
    push_name: String,
    /// The stand-in's Signal address for the sending companion.
    remote: ProtocolAddress,
    device_identity: Option<Node>,
}

/// Decrypt an `<enc>` addressed to the phone of `pn`.
async fn open(
    shared: &Arc<Shared>,
    pn: &str,
    sender: &ProtocolAddress,
    enc: &Node,
) -> Result<wa::Message> {
    let enc_type = attr(enc, "type").unwrap_or_default();
    let padding = attr(enc, "v").and_then(|v| v.parse().ok()).unwrap_or(2u8);
    let Some(NodeContent::Bytes(ciphertext)) = enc.content.as_ref() else {
        return Err(StandInError::protocol("enc without bytes"));
    };
    let phone = shared
        .registry()
        .user(pn)
        .map(|u| u.phone.clone())
        .ok_or_else(|| StandInError::UnknownContact(pn.to_owned()))?;
    let plaintext = phone
        .lock()
        .await
        .decrypt(sender, &enc_type, ciphertext)
        .await?;
    decode_plaintext(&plaintext, padding).map_err(|e| StandInError::protocol(e.to_string()))
}

/// The phone of `pn` stores the sender key a group member distributed to it.
async fn take_sender_key(
    shared: &Arc<Shared>,
    pn: &str,
    group: &Jid,
    sender: &ProtocolAddress,
    skdm: &[u8],
) {
    let Some(phone) = shared.registry().user(pn).map(|u| u.phone.clone()) else {
        return;
    };
    if let Err(e) = phone
        .lock()
        .await
        .accept_sender_key(&group.to_string(), sender, skdm)
        .await
    {
        log::warn!("{pn} cannot take the sender key for {group}: {e}");
    }
}

/// Decrypt a group `skmsg` with the phone of member `pn`.
async fn open_group(
    shared: &Arc<Shared>,
    pn: &str,
    group: &Jid,
    sender: &ProtocolAddress,
    skmsg: &Node,
) -> Result<wa::Message> {
    let padding = attr(skmsg, "v").and_then(|v| v.parse().ok()).unwrap_or(2u8);
    let Some(NodeContent::Bytes(ciphertext)) = skmsg.content.as_ref() else {
        return Err(StandInError::protocol("skmsg without bytes"));
    };
    let phone = shared
        .registry()
        .user(pn)
        .map(|u| u.phone.clone())
        .ok_or_else(|| StandInError::UnknownContact(pn.to_owned()))?;
    let plaintext = phone
        .lock()
        .await
        .decrypt_group(&group.to_string(), sender, ciphertext)
        .await?;
    decode_plaintext(&plaintext, padding).map_err(|e| StandInError::protocol(e.to_string()))
}

/// Forward a device's copy to that companion, as the server fans messages out: from the
/// sending device (a DM) or from the group with the sender as participant.
fn relay(
    shared: &Arc<Shared>,
    origin: &Origin,
    original: &Node,
    recipient: &DeviceAddress,
    addressed_as: &Jid,
    group: Option<&Jid>,
    mut children: Vec<Node>,
) {
    let id = attr(original, "id").unwrap_or_default();
    let sender_device = if addressed_as.server == Server::Lid {
        Jid::lid_device(origin.sender_lid.as_str(), origin.sender.device)
    } else {
        origin.sender.pn_jid()
    };
    if let Some(identity) = &origin.device_identity {
        children.push(identity.clone());
    }
    let mut builder = NodeBuilder::new("message")
        .attr("id", id.clone())
        .attr(
            "type",
            attr(original, "type").unwrap_or_else(|| "text".to_owned()),
        )
        .attr("t", now().to_string())
        .attr("notify", origin.push_name.clone());
    builder = match group {
        Some(group) => builder
            .attr("from", group.clone())
            .attr("participant", sender_device)
            .attr("addressing_mode", "pn"),
        None => {
            let mut builder = builder.attr("from", sender_device);
            if recipient.pn == origin.sender.pn
                && let Some(to) = jid_attr(original, "to")
            {
                builder = builder.attr("recipient", to);
            }
            builder
        }
    };
    let node = builder.children(children).build();
    shared.update(|registry| {
        registry.enqueue(
            recipient,
            QueuedStanza {
                id,
                class: "message",
                kind: None,
                node,
                resend: None,
            },
        )
    });
}

/// `recipient_pn`'s phone acknowledges message `id` that `account_pn` sent it: a receipt
/// to every linked device of the account.
pub(crate) fn send_receipt(
    shared: &Arc<Shared>,
    recipient_pn: &str,
    account_pn: &str,
    id: &str,
    kind: ReceiptKind,
) -> Result<()> {
    shared.update(|registry| {
        let recipient = registry
            .user(recipient_pn)
            .ok_or_else(|| StandInError::UnknownContact(recipient_pn.to_owned()))?;
        // Answer in the namespace the sender addressed the chat in; a group receipt comes
        // from the group, naming the member.
        let chat = registry
            .sent_messages
            .iter()
            .rev()
            .find(|m| m.id == id)
            .map(|m| m.to.clone());
        let member = match &chat {
            Some(chat) if chat.server == Server::Lid => recipient.lid_jid(),
            _ => recipient.pn_jid(),
        };
        let (from, participant) = match chat {
            Some(chat) if chat.server == Server::Group => (chat, Some(member)),
            _ => (member, None),
        };
        let devices: Vec<u16> = registry
            .user(account_pn)
            .ok_or_else(|| StandInError::UnknownAccount(account_pn.to_owned()))?
            .companions
            .keys()
            .copied()
            .collect();
        for device in devices {
            let mut builder = NodeBuilder::new("receipt")
                .attr("from", from.clone())
                .attr("id", id.to_owned())
                .attr("t", now().to_string());
            if let Some(participant) = &participant {
                builder = builder.attr("participant", participant.clone());
            }
            if let Some(kind) = kind.wire() {
                builder = builder.attr("type", kind);
            }
            registry.enqueue(
                &DeviceAddress {
                    pn: account_pn.to_owned(),
                    device,
                },
                QueuedStanza {
                    id: id.to_owned(),
                    class: "receipt",
                    kind: kind.wire().map(str::to_owned),
                    node: builder.build(),
                    resend: None,
                },
            );
        }
        Ok(())
    })
}

/// A companion sent a receipt for messages it received: the server acks it, stops holding
/// those messages for the device, and records it.
pub(crate) async fn on_client_receipt(
    shared: &Arc<Shared>,
    session: &Session,
    node: &Node,
) -> Result<()> {
    let Some(device) = session.device().cloned() else {
        return Ok(());
    };
    let id = attr(node, "id").unwrap_or_default();
    let to = jid_attr(node, "to").unwrap_or_default();
    let kind = attr(node, "type");
    let mut ids = vec![id.clone()];
    if let Some(list) = node.get_optional_child("list") {
        ids.extend(
            list.get_children_by_tag("item")
                .filter_map(|item| attr(item, "id")),
        );
    }
    let mut ack = NodeBuilder::new("ack")
        .attr("class", "receipt")
        .attr("id", id)
        .attr("from", to.clone());
    if let Some(kind) = &kind {
        ack = ack.attr("type", kind.clone());
    }
    session.send(ack.build());
    if kind.as_deref() == Some("server-error") {
        // A media download failed: the sending phone re-uploads (media retry).
        return crate::media::on_server_error_receipt(shared, session, &device, node);
    }
    if kind.as_deref() == Some("retry") {
        // The device could not decrypt: its sender starts a fresh session and resends.
        for id in &ids {
            if let Err(e) = resend(shared, &device, id).await {
                log::warn!("cannot resend {id} to {}: {e}", device.pn_jid());
            }
        }
        return Ok(());
    }
    shared.update(|registry| {
        for id in &ids {
            registry.release(&device, id, "message", None);
        }
        // A history-sync receipt is for the account's phone alone.
        if kind.as_deref() != Some("hist_sync") {
            forward_receipt(registry, &device, &to, node);
        }
        registry.sent_receipts.push(SentReceipt {
            ids,
            from: device.pn_jid(),
            to,
            kind,
        });
    });
    Ok(())
}

/// The server passes a device's receipt on to the linked devices of the user it is for
/// (the sender's companions; for a receipt to oneself, the account's other companions).
fn forward_receipt(registry: &mut Registry, device: &DeviceAddress, to: &Jid, receipt: &Node) {
    let Some(target) = registry.resolve_pn(&to.to_non_ad()) else {
        return;
    };
    let Some(lid) = registry.user(&device.pn).map(|u| u.lid.clone()) else {
        return;
    };
    let from = if to.server == Server::Lid {
        Jid::lid_device(lid.as_str(), device.device)
    } else {
        device.pn_jid()
    };
    let id = attr(receipt, "id").unwrap_or_default();
    let kind = attr(receipt, "type");
    let mut builder = NodeBuilder::new("receipt")
        .attr("from", from)
        .attr("id", id.clone())
        .attr("t", now().to_string());
    if let Some(kind) = &kind {
        builder = builder.attr("type", kind.clone());
    }
    if let Some(list) = receipt.get_optional_child("list") {
        builder = builder.children([list.clone()]);
    }
    let node = builder.build();
    let devices: Vec<u16> = registry
        .user(&target)
        .map(|u| u.companions.keys().copied().collect())
        .unwrap_or_default();
    for target_device in devices {
        if target == device.pn && target_device == device.device {
            continue;
        }
        registry.enqueue(
            &DeviceAddress {
                pn: target.clone(),
                device: target_device,
            },
            QueuedStanza {
                id: id.clone(),
                class: "receipt",
                kind: kind.clone(),
                node: node.clone(),
                resend: None,
            },
        );
    }
}

/// Answer a retry receipt for held message `id`: the sending phone drops its session with
/// the device, starts a new one from the device's published keys, and re-encrypts.
async fn resend(shared: &Arc<Shared>, device: &DeviceAddress, id: &str) -> Result<()> {
    let (plain, phone, recipient_lid) = {
        let registry = shared.registry();
        let held = registry
            .companion(device)
            .and_then(|c| {
                c.offline
                    .iter()
                    .find(|q| q.id == id && q.class == "message")
            })
            .and_then(|q| q.resend.clone())
            .ok_or_else(|| StandInError::protocol(format!("no held message {id}")))?;
        let phone = registry
            .user(&held.sender_pn)
            .map(|u| u.phone.clone())
            .ok_or_else(|| StandInError::UnknownContact(held.sender_pn.clone()))?;
        let lid = registry
            .user(&device.pn)
            .map(|u| u.lid.clone())
            .ok_or_else(|| StandInError::UnknownAccount(device.pn.clone()))?;
        (held, phone, lid)
    };
    let remote = companion_address(&recipient_lid, device.device);
    {
        let mut phone = phone.lock().await;
        phone.drop_session(&remote);
        if let Some(group) = &plain.group {
            phone.forget_distribution(&group.to_string(), &remote);
        }
    }
    let node = match &plain.group {
        // A group retry: the whole message pairwise, with the sender key again.
        Some(group) => {
            let copy = GroupCopy {
                group,
                message: &plain.message,
                id,
                kind: &plain.kind,
                skmsg: None,
            };
            seal_for_group(shared, &plain.sender_pn, device, &copy).await?
        }
        None => {
            seal(
                shared,
                &plain.sender_pn,
                device,
                &plain.message,
                id,
                &plain.kind,
            )
            .await?
        }
    };
    shared.update(|registry| {
        if let Some(companion) = registry.companion_mut(device) {
            if let Some(held) = companion
                .offline
                .iter_mut()
                .find(|q| q.id == id && q.class == "message")
            {
                held.node = node.clone();
            }
            if companion.active
                && let Some(connection) = &companion.connection
            {
                connection.send(node);
            }
        }
    });
    Ok(())
}

/// `<ack class id [type]>`: the device processed a stanza; stop holding it.
pub(crate) fn on_client_ack(shared: &Arc<Shared>, session: &Session, node: &Node) {
    let Some(device) = session.device().cloned() else {
        return;
    };
    let (Some(id), Some(class)) = (attr(node, "id"), attr(node, "class")) else {
        return;
    };
    let kind = attr(node, "type");
    shared.update(|registry| registry.release(&device, &id, &class, kind.as_deref()));
}

/// Mark re-delivered stanzas the way the server marks offline delivery.
pub(crate) fn as_offline(mut node: Node) -> Node {
    if node.tag == "message" || node.tag == "receipt" || node.tag == "notification" {
        node.attrs.insert("offline", "1");
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_marker_is_added_to_held_stanzas_only() {
        let message = as_offline(NodeBuilder::new("message").build());
        assert_eq!(
            crate::stanza::attr(&message, "offline").as_deref(),
            Some("1")
        );
        let iq = as_offline(NodeBuilder::new("iq").build());
        assert!(crate::stanza::attr(&iq, "offline").is_none());
    }
}
