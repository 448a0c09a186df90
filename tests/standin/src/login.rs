//! Logging a paired companion in: checking the credentials it presents in the handshake,
//! `<success>`, leaving passive mode (offline delivery, then `<ib><offline>`), and the
//! app-state sync it awaits before reporting Connected.

use std::sync::Arc;

use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node};

use buffa::Message as _;

use crate::appstate::PatchRejection;
use crate::connection::{Role, Session};
use crate::messages::as_offline;
use crate::noise::Established;
use crate::registry::{Connection, DeviceAddress};
use crate::server::{Shared, now};
use crate::stanza::{self, attr};

/// Admit a login: the payload names a companion we linked and the Noise static key is the
/// one it registered with. Answers `<success>` or `<failure reason="401">`.
pub(crate) fn admit(
    shared: &Arc<Shared>,
    connection: &Connection,
    established: &Established,
) -> Role {
    let payload = &established.payload;
    let address = DeviceAddress {
        pn: payload.username.unwrap_or_default().to_string(),
        device: payload.device.unwrap_or_default() as u16,
    };
    let admitted = shared.update(|registry| {
        let lid = registry.user(&address.pn)?.lid.clone();
        let companion = registry.companion_mut(&address)?;
        if companion.noise_key != established.client_static {
            return None;
        }
        if let Some(previous) = companion.connection.replace(connection.clone())
            && previous.id != connection.id
        {
            // Another socket of the same device: the newer one wins.
            previous.send(
                NodeBuilder::new("stream:error")
                    .children([NodeBuilder::new("conflict")
                        .attr("type", "replaced")
                        .build()])
                    .build(),
            );
            previous.close();
        }
        companion.active = false;
        companion.last_pattern = Some(established.pattern);
        Some(lid)
    });
    match admitted {
        Some(lid) => {
            connection.send(
                NodeBuilder::new("success")
                    .attr("t", now().to_string())
                    .attr("lid", Jid::lid_device(lid.as_str(), address.device))
                    .attr("props", "1")
                    .attr("creation", now().to_string())
                    .build(),
            );
            Role::LoggedIn(address)
        }
        None => {
            log::info!("refusing login of {}:{}", address.pn, address.device);
            connection.send(
                NodeBuilder::new("failure")
                    .attr("reason", "401")
                    .attr("location", "standin")
                    .build(),
            );
            connection.close();
            Role::Rejected
        }
    }
}

/// `<iq xmlns="passive"><active/>`: the device is ready. Deliver everything held for it,
/// then mark the end of offline delivery.
pub(crate) fn go_active(shared: &Arc<Shared>, session: &Session, request: &Node) {
    session.send(stanza::iq_result(request, Vec::new()));
    let Some(address) = session.device() else {
        return;
    };
    let held = shared.update(|registry| {
        let companion = registry.companion_mut(address)?;
        if companion.connection.as_ref().map(|c| c.id) != Some(session.id()) {
            return None;
        }
        companion.active = true;
        Some(
            companion
                .offline
                .iter()
                .map(|q| q.node.clone())
                .collect::<Vec<_>>(),
        )
    });
    let Some(held) = held else {
        return;
    };
    let count = held.len();
    for node in held {
        session.send(as_offline(node));
    }
    session.send(
        NodeBuilder::new("ib")
            .children([NodeBuilder::new("offline")
                .attr("count", count.to_string())
                .build()])
            .build(),
    );
}

/// `<iq xmlns="w:sync:app:state"><sync><collection name version?>`: a fetch answers every
/// requested collection from the account's patch log; a collection carrying `<patch>` is a
/// device writing (chat actions, its push name), which the log takes if it verifies and the
/// account's other devices then hear about (`server_sync`).
pub(crate) fn app_state_sync(shared: &Arc<Shared>, session: &Session, request: &Node) -> Node {
    let Some(address) = session.device().cloned() else {
        return stanza::iq_error(request, 401, "not-authorized");
    };
    let Some(sync) = request.get_optional_child("sync") else {
        return stanza::iq_error(request, 400, "bad-request");
    };
    let mut changed = Vec::new();
    let answer = shared.update(|registry| {
        let user = registry.user_mut(&address.pn)?;
        let collections: Vec<Node> = sync
            .get_children_by_tag("collection")
            .map(|collection| {
                let name = attr(collection, "name").unwrap_or_default();
                let version = attr(collection, "version")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let patches: Vec<&Node> = collection.get_children_by_tag("patch").collect();
                if patches.is_empty() {
                    return user.app_state.collection_node(&name, version);
                }
                let mut rejection = None;
                for (offset, patch) in patches.into_iter().enumerate() {
                    let decoded = match patch.content.as_ref() {
                        Some(wacore_binary::NodeContent::Bytes(bytes)) => {
                            waproto::whatsapp::SyncdPatch::decode_from_slice(bytes).ok()
                        }
                        _ => None,
                    };
                    let Some(decoded) = decoded else {
                        rejection = Some(PatchRejection::Invalid("undecodable patch".into()));
                        break;
                    };
                    match user
                        .app_state
                        .accept_patch(&name, version + offset as u64, decoded)
                    {
                        Ok(mutations) => {
                            for mutation in mutations {
                                learn_push_name(user, &mutation);
                            }
                            if !changed.contains(&name) {
                                changed.push(name.clone());
                            }
                        }
                        Err(e) => {
                            rejection = Some(e);
                            break;
                        }
                    }
                }
                user.app_state.patch_answer(&name, rejection.as_ref())
            })
            .collect();
        Some(collections)
    });
    let Some(collections) = answer else {
        return stanza::iq_error(request, 404, "item-not-found");
    };
    shared.update(|registry| {
        for name in &changed {
            crate::notifications::server_sync(
                shared,
                registry,
                &address.pn,
                name,
                Some(address.device),
            );
        }
    });
    stanza::iq_result(
        request,
        vec![NodeBuilder::new("sync").children(collections).build()],
    )
}

/// The phone reads the mutations it can decrypt: a new push name becomes the account's.
fn learn_push_name(user: &mut crate::registry::User, mutation: &wacore::appstate::Mutation) {
    if mutation.index.first().map(String::as_str) == Some("setting_pushName")
        && let Some(name) = mutation
            .action_value
            .as_ref()
            .and_then(|v| v.push_name_setting.as_option())
            .and_then(|s| s.name.clone())
    {
        user.push_name = name;
    }
}
