//! Profile IQs: profile pictures (`w:profile:picture`) and the account's About text
//! (`status`).

use std::sync::Arc;

use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Node, Server};

use crate::connection::Session;
use crate::registry::{About, ProfilePicture};
use crate::server::{Shared, now};
use crate::stanza::{self, attr, child_bytes, jid_attr};

/// `<iq xmlns="w:profile:picture">`: a get reads a user's or a group's picture
/// (`target`); a set with `<picture type="image">` bytes (or without, to remove) changes
/// the account's own picture, or with `target` a group's, under the group rules.
pub(super) fn picture(shared: &Arc<Shared>, session: &Session, node: &Node) -> Node {
    if attr(node, "type").as_deref() == Some("set") {
        return set_picture(shared, session, node);
    }
    let Some(target) = jid_attr(node, "target") else {
        return stanza::iq_error(node, 400, "bad-request");
    };
    let registry = shared.registry();
    let picture = if target.server == Server::Group {
        match registry.groups.get(target.user.as_str()) {
            Some(group) => group.picture.clone(),
            None => return stanza::iq_error(node, 404, "item-not-found"),
        }
    } else {
        registry
            .user_by_jid(&target)
            .and_then(|u| u.picture.clone())
    };
    stanza::iq_result(node, vec![picture_node(picture.as_ref())])
}

fn set_picture(shared: &Arc<Shared>, session: &Session, node: &Node) -> Node {
    let Some(address) = session.device().cloned() else {
        return stanza::iq_error(node, 401, "not-authorized");
    };
    let picture = child_bytes(node, "picture").map(|jpeg| {
        let (direct_path, url) = shared.cdn.store_picture(jpeg);
        ProfilePicture {
            id: format!("{}{:03}", now(), rand::random_range(0..1000u32)),
            url,
            direct_path,
        }
    });
    let id = picture.as_ref().map(|p| p.id.clone()).unwrap_or_default();
    let reply = || {
        let mut answer = NodeBuilder::new("picture");
        if !id.is_empty() {
            answer = answer.attr("id", id.clone());
        }
        stanza::iq_result(node, vec![answer.build()])
    };
    match jid_attr(node, "target").filter(|t| t.server == Server::Group) {
        Some(group) => {
            let outcome = shared.update(|registry| {
                let notices = crate::groups::set_picture(
                    registry,
                    group.user.as_str(),
                    &address.pn,
                    picture,
                    crate::groups::Rules::Enforced,
                )?;
                for notice in &notices {
                    crate::notifications::deliver_group_notice(
                        shared,
                        registry,
                        notice,
                        Some(&address),
                    );
                }
                Ok::<_, crate::groups::Refusal>(())
            });
            match outcome {
                Ok(()) => reply(),
                Err(refusal) => stanza::iq_error(node, refusal.code, refusal.text),
            }
        }
        None => {
            shared.update(|registry| {
                if let Some(user) = registry.user_mut(&address.pn) {
                    user.picture = picture;
                }
            });
            reply()
        }
    }
}

pub(crate) fn picture_node(picture: Option<&ProfilePicture>) -> Node {
    match picture {
        Some(picture) => NodeBuilder::new("picture")
            .attr("id", picture.id.clone())
            .attr("type", "image")
            .attr("url", picture.url.clone())
            .attr("direct_path", picture.direct_path.clone())
            .build(),
        None => NodeBuilder::new("picture")
            .children([NodeBuilder::new("error")
                .attr("code", "404")
                .attr("text", "item-not-found")
                .build()])
            .build(),
    }
}

/// `<iq xmlns="status" type="set"><status>text</status>`: the account's About.
pub(super) fn set_about(shared: &Arc<Shared>, session: &Session, node: &Node) -> Node {
    let Some(address) = session.device().cloned() else {
        return stanza::iq_error(node, 401, "not-authorized");
    };
    let Some(text) = node
        .get_optional_child("status")
        .and_then(|s| s.content_as_string())
    else {
        return stanza::iq_error(node, 400, "bad-request");
    };
    shared.update(|registry| {
        if let Some(user) = registry.user_mut(&address.pn) {
            user.about = Some(About {
                text: text.to_string(),
                set_at: now(),
            });
        }
    });
    stanza::iq_result(node, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wacore::iq::contacts::ProfilePictureSpec;
    use wacore::iq::spec::IqSpec as _;
    use wacore_binary::Jid;

    fn parse(picture: Option<&ProfilePicture>) -> Option<wacore::iq::contacts::ProfilePicture> {
        let reply = NodeBuilder::new("iq")
            .attr("type", "result")
            .children([picture_node(picture)])
            .build();
        ProfilePictureSpec::preview(&Jid::pn("15550004444"))
            .parse_response(&reply.as_node_ref())
            .unwrap()
    }

    #[test]
    fn group_pictures_are_set_by_members_and_read_back_with_the_clients_specs() {
        use wacore::iq::contacts::SetProfilePictureSpec;
        let shared = Arc::new(Shared::new(crate::server::Options::default()));
        let group = Jid::group("120363000000000042");
        shared.update(|registry| {
            registry.upsert_user("15550004001", None, "Ann");
            registry.groups.insert(
                group.user.to_string(),
                crate::registry::Group::new(
                    group.user.to_string(),
                    "Pics",
                    "15550004001",
                    1_700_000_000,
                    vec![(
                        "15550004001".to_owned(),
                        crate::registry::ParticipantRole::SuperAdmin,
                    )],
                    None,
                ),
            );
        });
        let (out, _sent) = tokio::sync::mpsc::unbounded_channel();
        let session = Session {
            connection: crate::registry::Connection { id: 1, out },
            role: crate::connection::Role::LoggedIn(crate::registry::DeviceAddress {
                pn: "15550004001".to_owned(),
                device: 1,
            }),
        };
        let spec = SetProfilePictureSpec::for_group(&group, b"jpeg bytes".to_vec());
        let iq = spec.build_iq();
        let request = NodeBuilder::new("iq")
            .attr("id", "p1")
            .attr("xmlns", iq.namespace.to_owned())
            .attr("type", iq.query_type.as_str())
            .attr("to", iq.to.clone())
            .attr("target", iq.target.clone().unwrap())
            .children(match iq.content {
                Some(wacore_binary::NodeContent::Nodes(nodes)) => nodes,
                _ => Vec::new(),
            })
            .build();
        let reply = picture(&shared, &session, &request);
        let set = spec.parse_response(&reply.as_node_ref()).unwrap();
        let held = shared.registry().groups[group.user.as_str()]
            .picture
            .clone()
            .unwrap();
        assert_eq!(set.id, held.id);
        assert_eq!(shared.cdn.blob(&held.direct_path).unwrap(), b"jpeg bytes");
        let get = NodeBuilder::new("iq")
            .attr("id", "p2")
            .attr("type", "get")
            .attr("target", group.clone())
            .build();
        let read = ProfilePictureSpec::preview(&group)
            .parse_response(&picture(&shared, &session, &get).as_node_ref())
            .unwrap()
            .unwrap();
        assert_eq!(read.id, held.id);
    }

    #[test]
    fn picture_replies_parse_with_the_clients_spec() {
        let picture = ProfilePicture {
            id: "1700000000".to_owned(),
            url: "https://pps.whatsapp.net/v/t61/x.jpg".to_owned(),
            direct_path: "/v/t61/x.jpg".to_owned(),
        };
        let parsed = parse(Some(&picture)).unwrap();
        assert_eq!(parsed.id, picture.id);
        assert_eq!(parsed.url, picture.url);
        assert_eq!(parsed.direct_path.as_deref(), Some("/v/t61/x.jpg"));
        assert!(parse(None).is_none());
    }
}
