//! `xmlns="usync"`: user sync. Answers the subprotocols the client asks for (contact, lid,
//! devices with the phone-signed key-index list, status, picture) for every user it lists,
//! by phone number or by JID.

use std::sync::Arc;

use buffa::Message as _;
use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node, Server};
use waproto::whatsapp::{self as wa, ADVEncryptionType};

use crate::connection::Session;
use crate::registry::{Registry, User};
use crate::server::{Shared, now};
use crate::stanza::{self, attr, children, jid_attr};

/// ADV prefix of the account signature over a key-index list.
const ADV_PREFIX_KEY_INDEX_LIST: &[u8] = &[6, 2];

pub(super) fn handle(shared: &Arc<Shared>, _session: &Session, node: &Node) -> Node {
    let Some(usync) = node.get_optional_child("usync") else {
        return stanza::iq_error(node, 400, "bad-request");
    };
    let protocols: Vec<String> = usync
        .get_optional_child("query")
        .map(|query| children(query).iter().map(|p| p.tag.to_string()).collect())
        .unwrap_or_default();
    let registry = shared.registry();
    let users: Vec<Node> = usync
        .get_optional_child("list")
        .map(|list| {
            list.get_children_by_tag("user")
                .map(|user| answer_user(&registry, user, &protocols))
                .collect()
        })
        .unwrap_or_default();
    let mut reply = NodeBuilder::new("usync");
    for name in ["sid", "mode", "context", "index", "last"] {
        if let Some(value) = attr(usync, name) {
            reply = reply.attr(name, value);
        }
    }
    let result = NodeBuilder::new("result")
        .children(
            protocols
                .iter()
                .map(|p| NodeBuilder::new_dynamic(p.clone()).build()),
        )
        .build();
    stanza::iq_result(
        node,
        vec![
            reply
                .children([result, NodeBuilder::new("list").children(users).build()])
                .build(),
        ],
    )
}

/// Who a `<user>` names: its `jid`, or the phone number in its `<contact>`.
fn queried_jid(user: &Node) -> Option<Jid> {
    if let Some(jid) = jid_attr(user, "jid") {
        return Some(jid.to_non_ad());
    }
    let phone = user.get_optional_child("contact")?.content_as_string()?;
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| Jid::pn(digits))
}

fn answer_user(registry: &Registry, request: &Node, protocols: &[String]) -> Node {
    let Some(queried) = queried_jid(request) else {
        return NodeBuilder::new("user")
            .children([NodeBuilder::new("contact").attr("type", "out").build()])
            .build();
    };
    let Some(user) = registry.user_by_jid(&queried) else {
        let mut unknown = NodeBuilder::new("user").attr("jid", queried.clone());
        if protocols.iter().any(|p| p == "contact") {
            unknown = unknown.children([NodeBuilder::new("contact").attr("type", "out").build()]);
        }
        return unknown.build();
    };
    let mut builder = NodeBuilder::new("user").attr("jid", queried.clone());
    if queried.server == Server::Lid {
        builder = builder.attr("pn_jid", user.pn_jid());
    }
    let results: Vec<Node> = protocols
        .iter()
        .filter_map(|protocol| match protocol.as_str() {
            "contact" => Some(NodeBuilder::new("contact").attr("type", "in").build()),
            "lid" => Some(NodeBuilder::new("lid").attr("val", user.lid_jid()).build()),
            "devices" => Some(devices(user)),
            "status" => Some(status(user)),
            "picture" => user.picture.as_ref().map(|picture| {
                NodeBuilder::new("picture")
                    .attr("id", picture.id.clone())
                    .build()
            }),
            _ => None,
        })
        .collect();
    builder.children(results).build()
}

fn status(user: &User) -> Node {
    match &user.about {
        Some(about) => NodeBuilder::new("status")
            .attr("t", about.set_at.to_string())
            .string_content(about.text.as_str())
            .build(),
        None => NodeBuilder::new("status").build(),
    }
}

/// `<devices>`: the phone and every linked device, with the key-index list the phone signs.
pub(crate) fn devices(user: &User) -> Node {
    let list = NodeBuilder::new("device-list")
        .children(
            std::iter::once(NodeBuilder::new("device").attr("id", "0").build()).chain(
                user.companions.values().map(|companion| {
                    NodeBuilder::new("device")
                        .attr("id", companion.device.to_string())
                        .attr("key-index", companion.key_index.to_string())
                        .build()
                }),
            ),
        )
        .build();
    let mut children = vec![list];
    if !user.companions.is_empty() {
        children.push(
            NodeBuilder::new("key-index-list")
                .attr("ts", now().to_string())
                .bytes(signed_key_index_list(user))
                .build(),
        );
    }
    NodeBuilder::new("devices").children(children).build()
}

/// `ADVSignedKeyIndexList` over the account's valid key indexes.
pub(crate) fn signed_key_index_list(user: &User) -> Vec<u8> {
    let valid: Vec<u32> = user.companions.values().map(|c| c.key_index).collect();
    let details = wa::ADVKeyIndexList {
        raw_id: Some(u32::from_be_bytes(
            user.phone_bundle.identity[..4].try_into().expect("4 bytes"),
        )),
        timestamp: Some(now() as u64),
        current_index: valid.iter().copied().max(),
        valid_indexes: valid,
        account_type: Some(ADVEncryptionType::E2EE),
    }
    .encode_to_vec();
    let message = [ADV_PREFIX_KEY_INDEX_LIST, &details].concat();
    let signature = user
        .account_key
        .private_key()
        .calculate_signature(&message, &mut rand::rng())
        .map(|s| s.to_vec())
        .unwrap_or_default();
    wa::ADVSignedKeyIndexList {
        details: Some(details),
        account_signature: Some(signature),
        account_signature_key: None,
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::About;
    use wacore::iq::usync::{
        DeviceListSpec, IsOnWhatsAppQueryType, IsOnWhatsAppSpec, IsOnWhatsAppUser, UserInfoSpec,
    };

    fn registry() -> Registry {
        let mut registry = Registry::default();
        let bob = registry.upsert_user("15550002222", Some("200000000000002"), "Bob");
        bob.about = Some(About {
            text: "Hey there".to_owned(),
            set_at: 1_700_000_000,
        });
        registry
    }

    /// Run a spec's own request through the handler and parse the reply with the spec.
    fn round_trip<S: wacore::iq::spec::IqSpec>(registry: &Registry, spec: &S) -> S::Response {
        let iq = spec.build_iq();
        let Some(wacore_binary::NodeContent::Nodes(content)) = iq.content else {
            panic!("usync request without children");
        };
        let usync = &content[0];
        let protocols: Vec<String> = usync
            .get_optional_child("query")
            .map(|q| children(q).iter().map(|p| p.tag.to_string()).collect())
            .unwrap();
        let users: Vec<Node> = usync
            .get_optional_child("list")
            .unwrap()
            .get_children_by_tag("user")
            .map(|u| answer_user(registry, u, &protocols))
            .collect();
        let reply = NodeBuilder::new("iq")
            .attr("type", "result")
            .children([NodeBuilder::new("usync")
                .children([NodeBuilder::new("list").children(users).build()])
                .build()])
            .build();
        spec.parse_response(&reply.as_node_ref()).unwrap()
    }

    #[test]
    fn is_on_whatsapp_answers_with_jid_and_lid() {
        let registry = registry();
        let spec = IsOnWhatsAppSpec::new(
            vec![
                IsOnWhatsAppUser {
                    jid: Jid::pn("15550002222"),
                    known_lid: None,
                },
                IsOnWhatsAppUser {
                    jid: Jid::pn("15559999999"),
                    known_lid: None,
                },
            ],
            "sid",
            IsOnWhatsAppQueryType::Pn,
        );
        let results = round_trip(&registry, &spec);
        let bob = results
            .iter()
            .find(|r| r.jid == Jid::pn("15550002222"))
            .unwrap();
        assert!(bob.is_registered);
        assert_eq!(bob.lid, Some(Jid::lid("200000000000002")));
        let stranger = results
            .iter()
            .find(|r| r.jid == Jid::pn("15559999999"))
            .unwrap();
        assert!(!stranger.is_registered);
    }

    #[test]
    fn user_info_carries_about_lid_and_devices() {
        let registry = registry();
        let jid = Jid::pn("15550002222");
        let info = round_trip(&registry, &UserInfoSpec::new(vec![jid.clone()], "sid"));
        let bob = &info[&jid];
        assert_eq!(bob.status.as_deref(), Some("Hey there"));
        assert_eq!(bob.lid, Some(Jid::lid("200000000000002")));
        assert_eq!(bob.devices, vec![0]);
    }

    #[test]
    fn device_lists_with_companions_carry_a_decodable_key_index_list() {
        let mut registry = registry();
        let (_, bundle) = crate::signal::SignalDevice::generate();
        registry.user_mut("15550002222").unwrap().companions.insert(
            3,
            crate::registry::Companion {
                device: 3,
                noise_key: [0; 32],
                keys: crate::registry::CompanionKeys { bundle },
                key_index: 4,
                signed_identity: Vec::new(),
                platform: "test".to_owned(),
                offline: Default::default(),
                connection: None,
                active: false,
                last_pattern: None,
            },
        );
        let jid = Jid::pn("15550002222");
        let response = round_trip(&registry, &DeviceListSpec::new(vec![jid.clone()], "sid"));
        let list = &response.device_lists[0];
        let ids: Vec<u16> = list.devices.iter().map(|d| d.device).collect();
        assert_eq!(ids, vec![0, 3]);
        let decoded =
            wacore::adv::decode_key_index_list(list.key_index_bytes.as_ref().unwrap()).unwrap();
        assert_eq!(decoded.valid_indexes, vec![4]);
    }
}
