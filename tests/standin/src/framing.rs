//! WhatsApp's transport framing over a [`Wire`]: the `WA` connection header, 3-byte length
//! prefixed frames, Noise transport encryption with per-direction counters, and binary
//! nodes encoded with wacore-binary's own codec.

use tokio::sync::mpsc;
use wacore_binary::Node;
use wacore_binary::consts::WA_CONN_HEADER;
use wacore_noise::NoiseCipher;
use wacore_noise::framing::{FrameDecoder, encode_frame};

use crate::error::{Result, StandInError};
use crate::wire::Wire;

/// Reads the client's frames, stripping the connection header (and an optional edge-routing
/// pre-intro) that precede the first one.
pub(crate) struct FrameReader {
    inbound: mpsc::Receiver<Vec<u8>>,
    decoder: FrameDecoder,
    prelude: Option<Vec<u8>>,
}

/// Writes frames to the client.
#[derive(Clone)]
pub(crate) struct FrameWriter {
    outbound: mpsc::Sender<Vec<u8>>,
}

pub(crate) fn split(wire: Wire) -> (FrameReader, FrameWriter) {
    (
        FrameReader {
            inbound: wire.inbound,
            decoder: FrameDecoder::new(),
            prelude: Some(Vec::new()),
        },
        FrameWriter {
            outbound: wire.outbound,
        },
    )
}

/// How many leading bytes of `buf` are connection prelude, once enough has arrived to know.
fn prelude_len(buf: &[u8]) -> Result<Option<usize>> {
    let header = WA_CONN_HEADER.len();
    if buf.len() < 2 {
        return Ok(None);
    }
    if &buf[..2] == b"ED" {
        // "ED\0\1" + 3-byte length + routing info, then the WA header.
        if buf.len() < 7 {
            return Ok(None);
        }
        let routing = ((buf[4] as usize) << 16) | ((buf[5] as usize) << 8) | buf[6] as usize;
        let total = 7 + routing + header;
        if buf.len() < total {
            return Ok(None);
        }
        if buf[7 + routing..total][..2] != *b"WA" {
            return Err(StandInError::protocol(
                "missing WA header after edge routing",
            ));
        }
        return Ok(Some(total));
    }
    if &buf[..2] != b"WA" {
        return Err(StandInError::protocol(
            "connection does not start with the WA header",
        ));
    }
    Ok((buf.len() >= header).then_some(header))
}

impl FrameReader {
    /// The next complete frame, or `ConnectionClosed` when the client is gone.
    pub(crate) async fn next_frame(&mut self) -> Result<Vec<u8>> {
        loop {
            if self.prelude.is_none()
                && let Some(frame) = self.decoder.decode_frame()
            {
                return Ok(frame.to_vec());
            }
            let chunk = self
                .inbound
                .recv()
                .await
                .ok_or(StandInError::ConnectionClosed)?;
            match self.prelude.as_mut() {
                Some(prelude) => {
                    prelude.extend_from_slice(&chunk);
                    if let Some(skip) = prelude_len(prelude)? {
                        let rest = prelude.split_off(skip);
                        self.prelude = None;
                        self.decoder.feed(&rest);
                    }
                }
                None => self.decoder.feed(&chunk),
            }
        }
    }
}

impl FrameWriter {
    pub(crate) async fn send_frame(&self, payload: &[u8]) -> Result<()> {
        let framed =
            encode_frame(payload, None).map_err(|e| StandInError::protocol(e.to_string()))?;
        self.outbound
            .send(framed)
            .await
            .map_err(|_| StandInError::ConnectionClosed)
    }
}

/// Decrypts the client's transport frames into nodes.
pub(crate) struct NodeReader {
    frames: FrameReader,
    cipher: NoiseCipher,
    counter: u32,
}

/// Encrypts nodes into transport frames for the client.
pub(crate) struct NodeWriter {
    frames: FrameWriter,
    cipher: NoiseCipher,
    counter: u32,
}

impl NodeReader {
    pub(crate) fn new(frames: FrameReader, cipher: NoiseCipher) -> Self {
        Self {
            frames,
            cipher,
            counter: 0,
        }
    }

    pub(crate) async fn next_node(&mut self) -> Result<Node> {
        let mut frame = self.frames.next_frame().await?;
        self.cipher
            .decrypt_in_place_with_counter(self.counter, &mut frame)?;
        self.counter += 1;
        decode_node(&frame)
    }
}

impl NodeWriter {
    pub(crate) fn new(frames: FrameWriter, cipher: NoiseCipher) -> Self {
        Self {
            frames,
            cipher,
            counter: 0,
        }
    }

    pub(crate) async fn send_node(&mut self, node: &Node) -> Result<()> {
        let plaintext = wacore_binary::marshal(node)?;
        let ciphertext = self.cipher.encrypt_with_counter(self.counter, &plaintext)?;
        self.counter += 1;
        self.frames.send_frame(&ciphertext).await
    }
}

/// Decodes one node as the client encoded it (flag byte, optional zlib, binary token form).
pub(crate) fn decode_node(plaintext: &[u8]) -> Result<Node> {
    let unpacked = wacore_binary::util::unpack(plaintext)?;
    let node = wacore_binary::marshal::unmarshal_ref(&unpacked)?;
    Ok(node.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wacore_binary::builder::NodeBuilder;

    #[test]
    fn prelude_is_the_wa_header_or_edge_routing_plus_header() {
        assert_eq!(prelude_len(&WA_CONN_HEADER).unwrap(), Some(4));
        assert_eq!(prelude_len(b"WA").unwrap(), None);
        let (header, used) = wacore_noise::build_handshake_header(Some(&[1, 2, 3]));
        assert!(used);
        assert_eq!(prelude_len(&header).unwrap(), Some(header.len()));
        assert!(prelude_len(b"GET / HTTP/1.1").is_err());
    }

    #[tokio::test]
    async fn frames_split_across_chunks_and_packed_together_are_read_whole() {
        let (wire, end) = Wire::pair();
        let (mut reader, _writer) = split(wire);
        let mut bytes = WA_CONN_HEADER.to_vec();
        bytes.extend(encode_frame(b"first", None).unwrap());
        bytes.extend(encode_frame(b"second", None).unwrap());
        let (a, b) = bytes.split_at(6);
        end.to_server.send(a.to_vec()).await.unwrap();
        end.to_server.send(b.to_vec()).await.unwrap();
        assert_eq!(reader.next_frame().await.unwrap(), b"first");
        assert_eq!(reader.next_frame().await.unwrap(), b"second");
    }

    #[test]
    fn nodes_round_trip_through_the_library_codec() {
        let node = NodeBuilder::new("iq")
            .attr("id", "1")
            .attr("type", "result")
            .children([NodeBuilder::new("ping").build()])
            .build();
        let bytes = wacore_binary::marshal(&node).unwrap();
        assert_eq!(decode_node(&bytes).unwrap(), node);
    }
}
