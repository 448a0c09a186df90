//! One client connection from first byte to close: the Noise handshake, deciding whether
//! the client registers (pairing) or logs in, and routing each stanza to its handler.

use std::sync::Arc;

use tokio::sync::mpsc;
use wacore_binary::Node;

use crate::error::{Result, StandInError};
use crate::framing::{self, NodeReader, NodeWriter};
use crate::noise::{self, ClientHello, Response};
use crate::registry::{Connection, ConnectionId, DeviceAddress, Outgoing};
use crate::server::Shared;
use crate::wire::Wire;
use crate::{iq, login, messages, pairing};

/// What a connection is for, once the handshake told us.
pub(crate) enum Role {
    /// An unpaired device showing QR refs or a pair code.
    Registering,
    /// A paired companion device.
    LoggedIn(DeviceAddress),
    /// Login refused; the socket is closing.
    Rejected,
}

/// Per-connection state handlers work with.
pub(crate) struct Session {
    pub(crate) connection: Connection,
    pub(crate) role: Role,
}

impl Session {
    pub(crate) fn send(&self, node: Node) {
        self.connection.send(node);
    }

    pub(crate) fn device(&self) -> Option<&DeviceAddress> {
        match &self.role {
            Role::LoggedIn(address) => Some(address),
            _ => None,
        }
    }

    pub(crate) fn id(&self) -> ConnectionId {
        self.connection.id
    }
}

/// Serve one client connection until either side closes it.
pub(crate) async fn serve(shared: Arc<Shared>, wire: Wire) {
    let id = shared.connection_id();
    match run(&shared, wire, id).await {
        Ok(()) | Err(StandInError::ConnectionClosed) => log::debug!("connection {id} closed"),
        Err(e) => log::warn!("connection {id} failed: {e}"),
    }
    shared.update(|registry| registry.forget_connection(id));
}

async fn run(shared: &Arc<Shared>, wire: Wire, id: ConnectionId) -> Result<()> {
    let (mut frames, frame_writer) = framing::split(wire);
    let hello = ClientHello::decode(&frames.next_frame().await?)?;
    let established = match noise::respond(&shared.identity(), &hello)? {
        Response::Complete(server_hello, established) => {
            frame_writer.send_frame(&server_hello).await?;
            *established
        }
        Response::AwaitFinish(server_hello, state) => {
            frame_writer.send_frame(&server_hello).await?;
            state.finish(&frames.next_frame().await?)?
        }
    };
    log::debug!("connection {id}: {:?} handshake done", established.pattern);

    let (out, outgoing) = mpsc::unbounded_channel();
    let connection = Connection { id, out };
    // Whatever the role sends first waits in the channel until the writer runs.
    let role = if established.payload.username.is_some() {
        login::admit(shared, &connection, &established)
    } else {
        pairing::begin(shared, &connection, &established)?
    };
    let mut reader = NodeReader::new(frames, established.read);
    let writer = NodeWriter::new(frame_writer, established.write);
    tokio::spawn(write_loop(writer, outgoing));
    let session = Session { connection, role };
    loop {
        let node = reader.next_node().await?;
        dispatch(shared, &session, node).await;
    }
}

async fn write_loop(mut writer: NodeWriter, mut outgoing: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some(item) = outgoing.recv().await {
        match item {
            Outgoing::Node(node) => {
                if let Err(e) = writer.send_node(&node).await {
                    log::debug!("write failed: {e}");
                    break;
                }
            }
            Outgoing::Close => break,
        }
    }
    // Dropping the writer drops the wire's sink: the transport closes the socket.
}

/// Route one stanza from the client.
async fn dispatch(shared: &Arc<Shared>, session: &Session, node: Node) {
    log::trace!(
        "connection {} <- {}",
        session.id(),
        wacore::xml::DisplayableNode(&node)
    );
    let outcome = match node.tag.as_ref() {
        "iq" => iq::handle(shared, session, &node).await,
        "message" => messages::on_client_message(shared, session, &node).await,
        "receipt" => messages::on_client_receipt(shared, session, &node).await,
        "ack" => {
            messages::on_client_ack(shared, session, &node);
            Ok(())
        }
        // Presence, typing and ib announcements need no answer from a stand-in.
        "presence" | "chatstate" | "ib" => Ok(()),
        other => {
            log::debug!("connection {}: ignoring <{other}>", session.id());
            Ok(())
        }
    };
    if let Err(e) = outcome {
        log::warn!(
            "connection {}: handling <{}> failed: {e}",
            session.id(),
            node.tag
        );
    }
}
