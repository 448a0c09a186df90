//! `xmlns="blocklist"`: an account's blocked users, read and changed by its devices.

use std::sync::Arc;

use wacore::iq::blocklist::{
    BlocklistAction, BlocklistEntry, BlocklistItemRequest, BlocklistResponse,
};
use wacore::protocol::ProtocolNode as _;
use wacore_binary::{Jid, Node};

use crate::connection::Session;
use crate::registry::User;
use crate::server::{Shared, now};
use crate::stanza;

pub(super) fn handle(shared: &Arc<Shared>, session: &Session, node: &Node) -> Node {
    let Some(address) = session.device().cloned() else {
        return stanza::iq_error(node, 401, "not-authorized");
    };
    if stanza::attr(node, "type").as_deref() == Some("get") {
        let registry = shared.registry();
        let Some(user) = registry.user(&address.pn) else {
            return stanza::iq_error(node, 404, "item-not-found");
        };
        return stanza::iq_result(node, vec![list(user).into_node()]);
    }
    let requests: Vec<BlocklistItemRequest> = node
        .get_children_by_tag("item")
        .filter_map(|item| BlocklistItemRequest::try_from_node_ref(&item.as_node_ref()).ok())
        .collect();
    if requests.is_empty() {
        return stanza::iq_error(node, 400, "bad-request");
    }
    shared.update(|registry| {
        if let Some(user) = registry.user_mut(&address.pn) {
            for request in requests {
                let key = request.jid.to_non_ad().to_string();
                match request.action {
                    BlocklistAction::Block => {
                        user.blocklist.insert(key, now());
                    }
                    BlocklistAction::Unblock => {
                        user.blocklist.remove(&key);
                        if let Some(pn) = request.pn_jid {
                            user.blocklist.remove(&pn.to_non_ad().to_string());
                        }
                    }
                }
            }
        }
    });
    stanza::iq_result(node, Vec::new())
}

/// The account's blocklist as the server returns it.
pub(crate) fn list(user: &User) -> BlocklistResponse {
    BlocklistResponse {
        entries: user
            .blocklist
            .iter()
            .filter_map(|(jid, t)| {
                Some(BlocklistEntry {
                    jid: jid.parse::<Jid>().ok()?,
                    timestamp: Some(*t as u64),
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wacore::iq::spec::IqSpec as _;
    use wacore_binary::builder::NodeBuilder;

    #[test]
    fn blocklist_reply_parses_with_the_clients_spec() {
        let mut user = User::new("15550003333", "200000000000003", "Carol");
        user.blocklist
            .insert("200000000000009@lid".to_owned(), 1_700_000_000);
        let reply = NodeBuilder::new("iq")
            .attr("type", "result")
            .children([list(&user).into_node()])
            .build();
        let entries = wacore::iq::blocklist::GetBlocklistSpec
            .parse_response(&reply.as_node_ref())
            .unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].jid, Jid::lid("200000000000009"));
    }

    #[test]
    fn the_clients_block_request_is_read_with_the_library_type() {
        let spec = wacore::iq::blocklist::UpdateBlocklistSpec::block_with_pn(
            &Jid::lid("200000000000009"),
            &Jid::pn("15550009999"),
        );
        let Some(wacore_binary::NodeContent::Nodes(items)) = spec.build_iq().content else {
            panic!("no item");
        };
        let request = BlocklistItemRequest::try_from_node_ref(&items[0].as_node_ref()).unwrap();
        assert_eq!(request.action, BlocklistAction::Block);
        assert_eq!(request.pn_jid, Some(Jid::pn("15550009999")));
    }
}
