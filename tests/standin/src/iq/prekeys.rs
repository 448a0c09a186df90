//! `xmlns="encrypt"`: the key server. Companions upload and rotate their pre-keys, ask how
//! many are left and for a digest of what the server holds; anyone fetches a device's
//! bundle (each one-time pre-key is handed out once).

use std::sync::Arc;

use wacore::iq::prekeys::PreKeyBundleUserNode;
use wacore::protocol::ProtocolNode as _;
use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node};

use crate::connection::Session;
use crate::registry::Registry;
use crate::server::Shared;
use crate::stanza::{self, attr, child_bytes, child_uint, jid_attr};

pub(super) fn handle(shared: &Arc<Shared>, session: &Session, node: &Node) -> Node {
    let kind = attr(node, "type").unwrap_or_default();
    if kind == "get" {
        if let Some(key) = node.get_optional_child("key") {
            let users: Vec<Node> = shared.update(|registry| {
                key.get_children_by_tag("user")
                    .filter_map(|user| jid_attr(user, "jid"))
                    .map(|jid| bundle_for(registry, &jid))
                    .collect()
            });
            return stanza::iq_result(node, vec![NodeBuilder::new("list").children(users).build()]);
        }
        let Some(address) = session.device() else {
            return stanza::iq_error(node, 401, "not-authorized");
        };
        let registry = shared.registry();
        let Some(companion) = registry.companion(address) else {
            return stanza::iq_error(node, 404, "item-not-found");
        };
        let bundle = &companion.keys.bundle;
        if node.get_optional_child("count").is_some() {
            return stanza::iq_result(
                node,
                vec![
                    NodeBuilder::new("count")
                        .attr("value", bundle.one_time_pre_keys.len().to_string())
                        .build(),
                ],
            );
        }
        if node.get_optional_child("digest").is_some() {
            return stanza::iq_result(node, vec![digest(bundle)]);
        }
        return stanza::iq_error(node, 400, "bad-request");
    }

    let Some(address) = session.device().cloned() else {
        return stanza::iq_error(node, 401, "not-authorized");
    };
    if let Some(rotate) = node.get_optional_child("rotate") {
        let Some(skey) = rotate.get_optional_child("skey") else {
            return stanza::iq_error(node, 400, "bad-request");
        };
        let updated = shared.update(|registry| {
            let bundle = &mut registry.companion_mut(&address)?.keys.bundle;
            apply_signed_pre_key(bundle, skey)
        });
        return match updated {
            Some(()) => stanza::iq_result(node, Vec::new()),
            None => stanza::iq_error(node, 400, "bad-request"),
        };
    }
    let uploaded = shared.update(|registry| {
        let bundle = &mut registry.companion_mut(&address)?.keys.bundle;
        if let Some(registration) = child_uint(node, "registration") {
            bundle.registration_id = registration;
        }
        if let Some(identity) =
            child_bytes(node, "identity").and_then(|b| <[u8; 32]>::try_from(b).ok())
        {
            bundle.identity = identity;
        }
        if let Some(skey) = node.get_optional_child("skey") {
            apply_signed_pre_key(bundle, skey)?;
        }
        if let Some(list) = node.get_optional_child("list") {
            for key in list.get_children_by_tag("key") {
                let (Some(id), Some(value)) = (
                    child_uint(key, "id"),
                    child_bytes(key, "value").and_then(|b| <[u8; 32]>::try_from(b).ok()),
                ) else {
                    continue;
                };
                bundle
                    .one_time_pre_keys
                    .retain(|(existing, _)| *existing != id);
                bundle.one_time_pre_keys.push((id, value));
            }
        }
        Some(())
    });
    match uploaded {
        Some(()) => stanza::iq_result(node, Vec::new()),
        None => stanza::iq_error(node, 400, "bad-request"),
    }
}

fn apply_signed_pre_key(bundle: &mut crate::signal::PublicBundle, skey: &Node) -> Option<()> {
    bundle.signed_pre_key_id = child_uint(skey, "id")?;
    bundle.signed_pre_key = child_bytes(skey, "value")?.try_into().ok()?;
    bundle.signed_pre_key_signature = child_bytes(skey, "signature")?.to_vec();
    Some(())
}

/// One `<user>` of a key fetch: the device's bundle, claiming a one-time pre-key.
fn bundle_for(registry: &mut Registry, jid: &Jid) -> Node {
    let not_found = || {
        NodeBuilder::new("user")
            .attr("jid", jid.clone())
            .children([NodeBuilder::new("error")
                .attr("code", "404")
                .attr("text", "item-not-found")
                .build()])
            .build()
    };
    let Some(pn) = registry.resolve_pn(jid) else {
        return not_found();
    };
    let Some(user) = registry.user_mut(&pn) else {
        return not_found();
    };
    let (bundle, identity) = if jid.device == 0 {
        (user.phone_bundle.claim(0), None)
    } else {
        match user.companions.get_mut(&jid.device) {
            Some(companion) => (
                companion.keys.bundle.claim(jid.device),
                Some(companion.signed_identity.clone()),
            ),
            None => return not_found(),
        }
    };
    match bundle.and_then(|bundle| {
        PreKeyBundleUserNode::from_bundle(jid.clone(), &bundle, identity)
            .map_err(|e| crate::error::StandInError::protocol(e.to_string()))
    }) {
        Ok(user) => user.into_node(),
        Err(e) => {
            log::warn!("cannot serve a bundle for {jid}: {e}");
            not_found()
        }
    }
}

/// What the server holds for a device, and the SHA-1 the device checks it against.
fn digest(bundle: &crate::signal::PublicBundle) -> Node {
    let pre_keys: Vec<&[u8]> = bundle
        .one_time_pre_keys
        .iter()
        .map(|(_, key)| key.as_slice())
        .collect();
    let hash = wacore::prekeys::compute_key_bundle_digest(
        &bundle.identity,
        &bundle.signed_pre_key,
        &bundle.signed_pre_key_signature,
        &pre_keys,
    );
    let id3 = |id: u32| id.to_be_bytes()[1..].to_vec();
    NodeBuilder::new("digest")
        .children([
            NodeBuilder::new("registration")
                .bytes(bundle.registration_id.to_be_bytes().to_vec())
                .build(),
            NodeBuilder::new("type").bytes(vec![5]).build(),
            NodeBuilder::new("identity")
                .bytes(bundle.identity.to_vec())
                .build(),
            NodeBuilder::new("skey")
                .children([
                    NodeBuilder::new("id")
                        .bytes(id3(bundle.signed_pre_key_id))
                        .build(),
                    NodeBuilder::new("value")
                        .bytes(bundle.signed_pre_key.to_vec())
                        .build(),
                    NodeBuilder::new("signature")
                        .bytes(bundle.signed_pre_key_signature.clone())
                        .build(),
                ])
                .build(),
            NodeBuilder::new("list")
                .children(
                    bundle
                        .one_time_pre_keys
                        .iter()
                        .map(|(id, _)| NodeBuilder::new("id").bytes(id3(*id)).build()),
                )
                .build(),
            NodeBuilder::new("hash").bytes(hash).build(),
        ])
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wacore::iq::spec::IqSpec as _;

    #[test]
    fn served_bundles_parse_with_the_clients_fetch_spec_and_claim_one_time_keys() {
        let mut registry = Registry::default();
        registry.upsert_user("15550001111", Some("200000000000001"), "Bob");
        let jid = Jid::pn_device("15550001111", 0);
        let first = bundle_for(&mut registry, &jid);
        let second = bundle_for(&mut registry, &jid);
        let reply = |user: Node| {
            NodeBuilder::new("iq")
                .attr("type", "result")
                .children([NodeBuilder::new("list").children([user]).build()])
                .build()
        };
        let spec = wacore::iq::prekeys::PreKeyFetchSpec::new(vec![jid.clone()]);
        let a = spec.parse_response(&reply(first).as_node_ref()).unwrap();
        let b = spec.parse_response(&reply(second).as_node_ref()).unwrap();
        let (a, b) = (&a.bundles[&jid], &b.bundles[&jid]);
        assert_ne!(a.pre_key_id().unwrap(), b.pre_key_id().unwrap());
        let unknown = bundle_for(&mut registry, &Jid::pn_device("19999999999", 0));
        let outcome = spec.parse_response(&reply(unknown).as_node_ref()).unwrap();
        assert_eq!(outcome.rejected.len(), 1);
    }

    /// A logged-in session of a freshly linked companion `pn:1`.
    fn linked_session(shared: &Arc<Shared>, pn: &str) -> (Session, crate::signal::PublicBundle) {
        let (device, bundle) = crate::signal::SignalDevice::generate();
        let mut registration = bundle.clone();
        registration.one_time_pre_keys.clear();
        shared.update(|registry| {
            let user = registry.upsert_user(pn, None, "Test");
            // The identity the device counter-signed at pairing, as the client does it.
            let state = wacore::pair::DeviceState {
                identity_key: wacore_libsignal::protocol::KeyPair::new(
                    *device.identity().public_key(),
                    device.identity().private_key().clone(),
                ),
                noise_key: wacore_libsignal::protocol::KeyPair::generate(&mut rand::rng()),
                adv_secret_key: [9; 32],
            };
            let container = crate::pairing::sign_device_identity(
                &user.account_key,
                &bundle.identity,
                1,
                &state.adv_secret_key,
            )
            .unwrap();
            let (signed_identity, _) =
                wacore::pair::PairUtils::do_pair_crypto(&state, &container).unwrap();
            user.companions.insert(
                1,
                crate::registry::Companion {
                    device: 1,
                    noise_key: [0; 32],
                    keys: crate::registry::CompanionKeys {
                        bundle: registration,
                    },
                    key_index: 1,
                    signed_identity,
                    platform: "test".to_owned(),
                    offline: Default::default(),
                    connection: None,
                    active: false,
                    last_pattern: None,
                },
            );
        });
        let (out, _) = tokio::sync::mpsc::unbounded_channel();
        let session = Session {
            connection: crate::registry::Connection { id: 7, out },
            role: crate::connection::Role::LoggedIn(crate::registry::DeviceAddress {
                pn: pn.to_owned(),
                device: 1,
            }),
        };
        (session, bundle)
    }

    fn iq(kind: &str, children: Vec<Node>) -> Node {
        NodeBuilder::new("iq")
            .attr("id", "k1")
            .attr("xmlns", "encrypt")
            .attr("type", kind.to_owned())
            .children(children)
            .build()
    }

    #[test]
    fn uploaded_pre_keys_are_counted_and_served_once_each() {
        let shared = Arc::new(Shared::new(crate::server::Options::default()));
        let (session, bundle) = linked_session(&shared, "15550001212");
        let keys: Vec<(u32, &[u8])> = bundle
            .one_time_pre_keys
            .iter()
            .map(|(id, key)| (*id, key.as_slice()))
            .collect();
        let upload = wacore::prekeys::PreKeyUtils::build_upload_prekeys_request(
            bundle.registration_id,
            &bundle.identity,
            bundle.signed_pre_key_id,
            &bundle.signed_pre_key,
            &bundle.signed_pre_key_signature,
            keys,
        );
        let stored = handle(&shared, &session, &iq("set", upload));
        assert_eq!(attr(&stored, "type").as_deref(), Some("result"));
        let count_request = iq("get", vec![NodeBuilder::new("count").build()]);
        let count = wacore::iq::prekeys::PreKeyCountSpec::new()
            .parse_response(&handle(&shared, &session, &count_request).as_node_ref())
            .unwrap();
        assert_eq!(count.count, bundle.one_time_pre_keys.len());
        let jid = Jid::pn_device("15550001212", 1);
        let fetch = iq(
            "get",
            vec![wacore::prekeys::PreKeyUtils::build_fetch_prekeys_request(
                std::slice::from_ref(&jid),
                None,
            )],
        );
        let outcome = wacore::iq::prekeys::PreKeyFetchSpec::new(vec![jid.clone()])
            .parse_response(&handle(&shared, &session, &fetch).as_node_ref())
            .unwrap();
        assert!(outcome.bundles[&jid].pre_key_id().unwrap().is_some());
        let count = wacore::iq::prekeys::PreKeyCountSpec::new()
            .parse_response(&handle(&shared, &session, &count_request).as_node_ref())
            .unwrap();
        assert_eq!(count.count, bundle.one_time_pre_keys.len() - 1);
    }

    #[test]
    fn digest_parses_and_matches_the_clients_hash() {
        let (_, bundle) = crate::signal::SignalDevice::generate();
        let reply = NodeBuilder::new("iq")
            .attr("type", "result")
            .children([digest(&bundle)])
            .build();
        let parsed = wacore::iq::prekeys::DigestKeyBundleSpec::new()
            .parse_response(&reply.as_node_ref())
            .unwrap();
        assert_eq!(parsed.reg_id, bundle.registration_id);
        assert_eq!(parsed.prekey_ids.len(), bundle.one_time_pre_keys.len());
        let keys: Vec<&[u8]> = bundle
            .one_time_pre_keys
            .iter()
            .map(|(_, k)| k.as_slice())
            .collect();
        assert_eq!(
            parsed.hash,
            wacore::prekeys::compute_key_bundle_digest(
                &parsed.identity,
                &parsed.skey_pubkey,
                &parsed.skey_signature,
                &keys
            )
        );
    }
}
