//! Server notifications that need no end-to-end encryption: group changes (`w:gp2`),
//! contact changes (`contacts`: update, number change), About changes (`status`),
//! profile-picture changes (`picture`) and app-state moves (`server_sync`). Held for each
//! device until it acks them.

use std::sync::Arc;

use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node};

use crate::groups::Notice;
use crate::registry::{DeviceAddress, QueuedStanza, Registry};
use crate::server::{Shared, now};

/// A `<notification>` from `from` of `kind`.
fn notification(
    shared: &Shared,
    from: Jid,
    kind: &str,
    participant: Option<Jid>,
    children: Vec<Node>,
) -> Node {
    let mut builder = NodeBuilder::new("notification")
        .attr("from", from)
        .attr("type", kind.to_owned())
        .attr("id", shared.stanza_id())
        .attr("t", now().to_string());
    if let Some(participant) = participant {
        builder = builder.attr("participant", participant);
    }
    builder.children(children).build()
}

/// Hold `node` for every linked device of the accounts `pns`.
pub(crate) fn deliver_to_accounts(registry: &mut Registry, pns: &[String], node: &Node) -> usize {
    let id = crate::stanza::attr(node, "id").unwrap_or_default();
    let mut delivered = 0;
    for pn in pns {
        let devices: Vec<u16> = registry
            .user(pn)
            .map(|u| u.companions.keys().copied().collect())
            .unwrap_or_default();
        for device in devices {
            delivered += usize::from(registry.enqueue(
                &DeviceAddress {
                    pn: pn.clone(),
                    device,
                },
                QueuedStanza {
                    id: id.clone(),
                    class: "notification",
                    kind: None,
                    node: node.clone(),
                    resend: None,
                },
            ));
        }
    }
    delivered
}

/// Every account (a user with linked devices) except `except`.
fn accounts(registry: &Registry, except: &str) -> Vec<String> {
    registry
        .users()
        .filter(|u| u.is_account() && u.pn != except)
        .map(|u| u.pn.clone())
        .collect()
}

/// Hold a group notice for the linked devices of its audience's accounts, except the
/// device that made the change (its own request's answer told it). Returns how many
/// devices it was queued for.
pub(crate) fn deliver_group_notice(
    shared: &Shared,
    registry: &mut Registry,
    notice: &Notice,
    except: Option<&DeviceAddress>,
) -> usize {
    let node = notification(
        shared,
        Jid::group(notice.group.as_str()),
        notice.kind,
        notice.author.as_deref().map(Jid::pn),
        notice.children.clone(),
    );
    let id = crate::stanza::attr(&node, "id").unwrap_or_default();
    let mut delivered = 0;
    for pn in notice.recipients(registry) {
        let devices: Vec<u16> = registry
            .user(&pn)
            .map(|u| u.companions.keys().copied().collect())
            .unwrap_or_default();
        for device in devices {
            let address = DeviceAddress {
                pn: pn.clone(),
                device,
            };
            if except == Some(&address) {
                continue;
            }
            delivered += usize::from(registry.enqueue(
                &address,
                QueuedStanza {
                    id: id.clone(),
                    class: "notification",
                    kind: None,
                    node: node.clone(),
                    resend: None,
                },
            ));
        }
    }
    delivered
}

/// [`deliver_group_notice`] for several notices, taking the registry lock.
pub(crate) fn deliver_group_notices(
    shared: &Shared,
    notices: &[Notice],
    except: Option<&DeviceAddress>,
) -> usize {
    shared.update(|registry| {
        notices
            .iter()
            .map(|notice| deliver_group_notice(shared, registry, notice, except))
            .sum()
    })
}

/// `server_sync`: tell the linked devices of `account` (but `except`) that `collection`
/// moved to a new version, so they fetch its patches.
pub(crate) fn server_sync(
    shared: &Shared,
    registry: &mut Registry,
    account: &str,
    collection: &str,
    except: Option<u16>,
) -> usize {
    let Some(user) = registry.user(account) else {
        return 0;
    };
    let version = user.app_state.version(collection);
    let devices: Vec<u16> = user
        .companions
        .keys()
        .copied()
        .filter(|d| Some(*d) != except)
        .collect();
    let node = NodeBuilder::new("notification")
        .attr("from", Jid::new("", wacore_binary::Server::Pn))
        .attr("type", "server_sync")
        .attr("id", shared.stanza_id())
        .attr("t", now().to_string())
        .children([NodeBuilder::new("collection")
            .attr("name", collection.to_owned())
            .attr("version", version.to_string())
            .build()])
        .build();
    let id = crate::stanza::attr(&node, "id").unwrap_or_default();
    devices
        .into_iter()
        .map(|device| {
            usize::from(registry.enqueue(
                &DeviceAddress {
                    pn: account.to_owned(),
                    device,
                },
                QueuedStanza {
                    id: id.clone(),
                    class: "notification",
                    kind: None,
                    node: node.clone(),
                    resend: None,
                },
            ))
        })
        .sum()
}

/// `contacts` `<update jid>`: a contact's profile changed.
pub(crate) fn contact_updated(shared: &Arc<Shared>, contact_pn: &str) -> usize {
    let node = notification(
        shared,
        Jid::new("", wacore_binary::Server::Pn),
        "contacts",
        None,
        vec![
            NodeBuilder::new("update")
                .attr("jid", Jid::pn(contact_pn))
                .build(),
        ],
    );
    shared.update(|registry| {
        let targets = accounts(registry, contact_pn);
        deliver_to_accounts(registry, &targets, &node)
    })
}

/// `contacts` `<modify old new old_lid new_lid>`: a contact changed number.
pub(crate) fn number_changed(shared: &Arc<Shared>, old_pn: &str, new_pn: &str, lid: &str) -> usize {
    let node = notification(
        shared,
        Jid::new("", wacore_binary::Server::Pn),
        "contacts",
        None,
        vec![
            NodeBuilder::new("modify")
                .attr("old", Jid::pn(old_pn))
                .attr("new", Jid::pn(new_pn))
                .attr("old_lid", Jid::lid(lid))
                .attr("new_lid", Jid::lid(lid))
                .build(),
        ],
    );
    shared.update(|registry| {
        let targets = accounts(registry, new_pn);
        deliver_to_accounts(registry, &targets, &node)
    })
}

/// `status` `<set>`: a contact changed its About text.
pub(crate) fn about_changed(shared: &Arc<Shared>, contact_pn: &str, text: &str) -> usize {
    let node = notification(
        shared,
        Jid::pn(contact_pn),
        "status",
        None,
        vec![NodeBuilder::new("set").string_content(text).build()],
    );
    shared.update(|registry| {
        let targets = accounts(registry, contact_pn);
        deliver_to_accounts(registry, &targets, &node)
    })
}

/// `picture` `<set jid id>`: a contact changed its profile picture.
pub(crate) fn picture_changed(shared: &Arc<Shared>, contact_pn: &str, picture_id: &str) -> usize {
    let node = notification(
        shared,
        Jid::pn(contact_pn),
        "picture",
        None,
        vec![
            NodeBuilder::new("set")
                .attr("jid", Jid::pn(contact_pn))
                .attr("id", picture_id.to_owned())
                .build(),
        ],
    );
    shared.update(|registry| {
        let targets = accounts(registry, contact_pn);
        deliver_to_accounts(registry, &targets, &node)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Options;
    use wacore::stanza::groups::{GroupNotification, GroupNotificationAction};

    #[test]
    fn group_notifications_parse_with_the_clients_parser() {
        let shared = Shared::new(Options::default());
        let node = notification(
            &shared,
            Jid::group("120363000000000002"),
            "w:gp2",
            Some(Jid::pn("15550007777")),
            vec![
                NodeBuilder::new("add")
                    .children([NodeBuilder::new("participant")
                        .attr("jid", Jid::pn("15550008888"))
                        .build()])
                    .build(),
            ],
        );
        let parsed = GroupNotification::try_from_node_ref(&node.as_node_ref()).unwrap();
        assert_eq!(parsed.group_jid, Jid::group("120363000000000002"));
        assert_eq!(parsed.participant, Some(Jid::pn("15550007777")));
        let GroupNotificationAction::Add { participants, .. } = &parsed.actions[0] else {
            panic!("expected add");
        };
        assert_eq!(participants[0].jid, Jid::pn("15550008888"));
    }
}
