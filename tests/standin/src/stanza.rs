//! Small builders for the stanzas every part of the server answers with: IQ results and
//! errors, acks, stream errors.

use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node, SERVER_JID};

/// Attribute as a string, if present.
pub(crate) fn attr(node: &Node, name: &str) -> Option<String> {
    node.attrs
        .get(name)
        .map(|value| value.as_str().into_owned())
}

/// Attribute parsed as a JID, if present and well-formed.
pub(crate) fn jid_attr(node: &Node, name: &str) -> Option<Jid> {
    node.attrs().optional_jid(name)
}

/// `<iq type="result" id from>` answering `request`, with optional children.
pub(crate) fn iq_result(request: &Node, children: Vec<Node>) -> Node {
    let from = attr(request, "to").unwrap_or_else(|| SERVER_JID.to_owned());
    let builder = NodeBuilder::new("iq")
        .attr("type", "result")
        .attr("id", attr(request, "id").unwrap_or_default())
        .attr("from", from);
    if children.is_empty() {
        builder.build()
    } else {
        builder.children(children).build()
    }
}

/// `<iq type="error"><error code text/></iq>` answering `request`.
pub(crate) fn iq_error(request: &Node, code: u16, text: &str) -> Node {
    let from = attr(request, "to").unwrap_or_else(|| SERVER_JID.to_owned());
    NodeBuilder::new("iq")
        .attr("type", "error")
        .attr("id", attr(request, "id").unwrap_or_default())
        .attr("from", from)
        .children([NodeBuilder::new("error")
            .attr("code", code.to_string())
            .attr("text", text.to_owned())
            .build()])
        .build()
}

/// A server-initiated `<iq>` to the client.
pub(crate) fn server_iq(id: &str, kind: &str, xmlns: Option<&str>, children: Vec<Node>) -> Node {
    let mut builder = NodeBuilder::new("iq")
        .attr("from", SERVER_JID)
        .attr("type", kind.to_owned())
        .attr("id", id.to_owned());
    if let Some(xmlns) = xmlns {
        builder = builder.attr("xmlns", xmlns.to_owned());
    }
    builder.children(children).build()
}

/// `<stream:error code="..."/>`, e.g. 515 (restart after pairing).
pub(crate) fn stream_error(code: &str) -> Node {
    NodeBuilder::new("stream:error")
        .attr("code", code.to_owned())
        .build()
}

/// The child nodes of `node`, or none.
pub(crate) fn children(node: &Node) -> &[Node] {
    node.children().unwrap_or_default()
}

/// Binary content of a child, if present.
pub(crate) fn child_bytes<'a>(node: &'a Node, tag: &str) -> Option<&'a [u8]> {
    match node.get_optional_child(tag)?.content.as_ref()? {
        wacore_binary::NodeContent::Bytes(bytes) => Some(bytes),
        _ => None,
    }
}

/// A big-endian unsigned integer held in a child's bytes (`<registration>`, `<id>`).
pub(crate) fn child_uint(node: &Node, tag: &str) -> Option<u32> {
    let bytes = child_bytes(node, tag)?;
    if bytes.is_empty() || bytes.len() > 4 {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0u32, |acc, byte| (acc << 8) | u32::from(*byte)),
    )
}
