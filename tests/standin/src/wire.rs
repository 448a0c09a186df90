//! A byte duplex: everything a stand-in connection needs from its transport, so the one
//! protocol core serves the loopback WebSocket and an in-process transport alike.

use tokio::sync::mpsc;

/// How many unsent chunks either direction buffers before the sender waits.
const WIRE_CAPACITY: usize = 256;

/// The server side of one client connection: chunks the client sent (in order, framing
/// boundaries not preserved) and a sink for what the server sends. Dropping the sink closes
/// the connection; the inbound side ends when the client goes away.
pub struct Wire {
    pub(crate) inbound: mpsc::Receiver<Vec<u8>>,
    pub(crate) outbound: mpsc::Sender<Vec<u8>>,
}

/// The transport side of a [`Wire`]: feed it the client's bytes, drain what the server sends.
pub struct WireEnd {
    /// Bytes received from the client go here.
    pub to_server: mpsc::Sender<Vec<u8>>,
    /// Bytes the server sends come out here; `None` means the server closed the connection.
    pub from_server: mpsc::Receiver<Vec<u8>>,
}

impl Wire {
    /// A connected pair: the server's [`Wire`] and the transport's [`WireEnd`].
    pub fn pair() -> (Wire, WireEnd) {
        let (to_server, inbound) = mpsc::channel(WIRE_CAPACITY);
        let (outbound, from_server) = mpsc::channel(WIRE_CAPACITY);
        (
            Wire { inbound, outbound },
            WireEnd {
                to_server,
                from_server,
            },
        )
    }
}
