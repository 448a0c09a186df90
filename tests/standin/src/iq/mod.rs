//! Answers to the client's `<iq>` requests, routed by namespace, and the client's answers
//! to the few IQs the server itself sends (pairing).

mod blocklist;
mod groups;
mod prekeys;
mod profile;
mod usync;

use std::sync::Arc;

use wacore_binary::Node;
use wacore_binary::builder::NodeBuilder;

use crate::connection::Session;
use crate::error::Result;
use crate::server::Shared;
use crate::stanza::{self, attr};
use crate::{login, pairing};

/// Handle one `<iq>` from the client.
pub(crate) async fn handle(shared: &Arc<Shared>, session: &Session, node: &Node) -> Result<()> {
    let kind = attr(node, "type").unwrap_or_default();
    if kind == "result" || kind == "error" {
        // An answer to one of our IQs: only pairing waits for one.
        pairing::on_pair_success_answer(shared, session, node).await?;
        return Ok(());
    }
    let xmlns = attr(node, "xmlns").unwrap_or_default();
    let reply = match xmlns.as_str() {
        "w:p" => Some(stanza::iq_result(node, Vec::new())),
        "passive" => {
            if node.get_optional_child("active").is_some() {
                login::go_active(shared, session, node);
                None
            } else {
                Some(stanza::iq_result(node, Vec::new()))
            }
        }
        "md" => md(shared, session, node).await?,
        "encrypt" => Some(prekeys::handle(shared, session, node)),
        "usync" => Some(usync::handle(shared, session, node)),
        "w:sync:app:state" => Some(login::app_state_sync(shared, session, node)),
        "blocklist" => Some(blocklist::handle(shared, session, node)),
        "w:profile:picture" => Some(profile::picture(shared, session, node)),
        "status" => Some(profile::set_about(shared, session, node)),
        "w:g2" => Some(groups::handle(shared, session, node)),
        "w:m" => Some(crate::media::media_conn(shared, node)),
        "abt" => Some(props(node)),
        "privacy" => Some(privacy(node)),
        _ => {
            log::debug!(
                "no handler for <iq xmlns={xmlns:?}>: {}",
                wacore::xml::DisplayableNode(node)
            );
            Some(stanza::iq_error(node, 501, "feature-not-implemented"))
        }
    };
    if let Some(reply) = reply {
        session.send(reply);
    }
    Ok(())
}

/// Send the notices of a change no device made (a test playing another user).
pub(crate) fn deliver_group_notices(
    shared: &Arc<Shared>,
    notices: &[crate::groups::Notice],
) -> usize {
    groups::deliver(shared, notices)
}

/// `xmlns="md"`: device linking by code, and a device unlinking itself (logout).
async fn md(shared: &Arc<Shared>, session: &Session, node: &Node) -> Result<Option<Node>> {
    if let Some(remove) = node.get_optional_child("remove-companion-device") {
        return Ok(Some(remove_companion(shared, session, node, remove)));
    }
    let Some(reg) = node.get_optional_child("link_code_companion_reg") else {
        return Ok(Some(stanza::iq_error(node, 501, "feature-not-implemented")));
    };
    match attr(reg, "stage").as_deref() {
        Some("companion_hello") => Ok(Some(pairing::on_companion_hello(
            shared, session, node, reg,
        ))),
        Some("companion_finish") => {
            pairing::on_companion_finish(shared, session, node, reg).await?;
            Ok(None)
        }
        _ => Ok(Some(stanza::iq_error(node, 400, "bad-request"))),
    }
}

/// `<remove-companion-device jid>`: a device of the account logs out (itself or another
/// linked device of the same account).
fn remove_companion(
    shared: &Arc<Shared>,
    session: &Session,
    request: &Node,
    remove: &Node,
) -> Node {
    let (Some(address), Some(jid)) = (session.device(), stanza::jid_attr(remove, "jid")) else {
        return stanza::iq_error(request, 400, "bad-request");
    };
    let removed = shared.update(|registry| {
        if registry.resolve_pn(&jid.to_non_ad()).as_deref() != Some(address.pn.as_str()) {
            return false;
        }
        registry
            .user_mut(&address.pn)
            .and_then(|user| user.companions.remove(&jid.device))
            .is_some()
    });
    if removed {
        stanza::iq_result(request, Vec::new())
    } else {
        stanza::iq_error(request, 404, "item-not-found")
    }
}

/// `xmlns="abt"`: A/B props. The stand-in runs no experiments: an empty, full set.
fn props(node: &Node) -> Node {
    use wacore::protocol::ProtocolNode as _;
    let props = wacore::iq::props::PropsResponse {
        hash: Some("standin".to_owned()),
        refresh: Some(86_400),
        ..Default::default()
    };
    stanza::iq_result(node, vec![props.into_node()])
}

/// `xmlns="privacy"`: the defaults of a fresh account for a get; a set (settings or
/// trusted-contact tokens) is accepted as is.
fn privacy(node: &Node) -> Node {
    if attr(node, "type").as_deref() != Some("get") {
        return stanza::iq_result(node, Vec::new());
    }
    let categories = [
        ("last", "all"),
        ("online", "all"),
        ("profile", "all"),
        ("status", "all"),
        ("readreceipts", "all"),
        ("groupadd", "all"),
        ("calladd", "all"),
    ]
    .into_iter()
    .map(|(name, value)| {
        NodeBuilder::new("category")
            .attr("name", name)
            .attr("value", value)
            .build()
    });
    stanza::iq_result(
        node,
        vec![NodeBuilder::new("privacy").children(categories).build()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use wacore::iq::spec::IqSpec as _;

    fn request(xmlns: &str, kind: &str) -> Node {
        NodeBuilder::new("iq")
            .attr("id", "q1")
            .attr("xmlns", xmlns.to_owned())
            .attr("type", kind.to_owned())
            .attr("to", "s.whatsapp.net")
            .build()
    }

    fn session() -> (
        Session,
        tokio::sync::mpsc::UnboundedReceiver<crate::registry::Outgoing>,
    ) {
        let (out, sent) = tokio::sync::mpsc::unbounded_channel();
        let session = Session {
            connection: crate::registry::Connection { id: 1, out },
            role: crate::connection::Role::Registering,
        };
        (session, sent)
    }

    fn reply(sent: &mut tokio::sync::mpsc::UnboundedReceiver<crate::registry::Outgoing>) -> Node {
        match sent.try_recv() {
            Ok(crate::registry::Outgoing::Node(node)) => *node,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn pings_are_answered_and_unknown_namespaces_refused() {
        let shared = Arc::new(Shared::new(crate::server::Options::default()));
        let (session, mut sent) = session();
        handle(&shared, &session, &request("w:p", "get"))
            .await
            .unwrap();
        let pong = reply(&mut sent);
        assert_eq!(attr(&pong, "type").as_deref(), Some("result"));
        assert_eq!(attr(&pong, "id").as_deref(), Some("q1"));
        handle(&shared, &session, &request("w:nonexistent", "get"))
            .await
            .unwrap();
        let refused = reply(&mut sent);
        assert_eq!(attr(&refused, "type").as_deref(), Some("error"));
        assert_eq!(
            refused
                .get_optional_child("error")
                .and_then(|e| attr(e, "code"))
                .as_deref(),
            Some("501")
        );
    }

    #[test]
    fn props_reply_parses_with_the_clients_props_spec() {
        let reply = props(&request("abt", "get"));
        let parsed = wacore::iq::props::PropsSpec::new()
            .parse_response(&reply.as_node_ref())
            .unwrap();
        assert_eq!(parsed.hash.as_deref(), Some("standin"));
    }

    #[test]
    fn privacy_reply_parses_with_the_clients_privacy_spec() {
        let reply = privacy(&request("privacy", "get"));
        let parsed = wacore::iq::privacy::PrivacySettingsSpec::new()
            .parse_response(&reply.as_node_ref())
            .unwrap();
        assert_eq!(parsed.settings.len(), 7);
    }
}
