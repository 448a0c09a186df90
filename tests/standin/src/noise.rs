//! The server half of WhatsApp's Noise handshakes (XX for a first connect, IK for a device
//! that cached our static key, XXfallback when that cache is stale), built on the library's
//! own `NoiseHandshake` so the transcript is byte-for-byte what the client computes.

use buffa::Message as _;
use wacore_binary::consts::{
    NOISE_PATTERN_IK, NOISE_PATTERN_XX, NOISE_PATTERN_XXFALLBACK, WA_CONN_HEADER,
};
use wacore_libsignal::protocol::KeyPair;
use wacore_noise::{NoiseCipher, NoiseHandshake};
use waproto::whatsapp::{self as wa, HandshakeMessage};

use crate::error::{Result, StandInError};

/// The server's long-lived Noise identity: its static key pair and the certificate chain
/// that vouches for it. The chain carries zero signatures (the stand-in cannot sign with
/// WhatsApp's root key), so clients must be built with `danger-skip-cert-chain-verify`.
pub(crate) struct ServerIdentity {
    static_key: KeyPair,
    cert_chain: Vec<u8>,
}

impl ServerIdentity {
    pub(crate) fn generate() -> Self {
        let static_key = KeyPair::generate(&mut rand::rng());
        let cert_chain =
            wacore_noise::test_util::build_cert_chain_bytes(&public_bytes(&static_key));
        Self {
            static_key,
            cert_chain,
        }
    }

    pub(crate) fn static_public(&self) -> [u8; 32] {
        public_bytes(&self.static_key)
    }
}

fn public_bytes(key: &KeyPair) -> [u8; 32] {
    key.public_key
        .public_key_bytes()
        .try_into()
        .expect("curve25519 public keys are 32 bytes")
}

fn handshake_error(context: &str, error: impl std::fmt::Display) -> StandInError {
    StandInError::Handshake(format!("{context}: {error}"))
}

/// Which pattern the connection ended up using; tests assert a paired client resumes
/// without a full XX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakePattern {
    /// Full handshake: first connect, or the client had no cached server key.
    Xx,
    /// Resumed with the cached server static key (one round trip).
    Ik,
    /// The client tried IK with a key we could not honour; fell back to XX.
    XxFallback,
}

/// A finished handshake: the transport ciphers (from the server's point of view) and what
/// the client proved about itself.
pub(crate) struct Established {
    pub(crate) read: NoiseCipher,
    pub(crate) write: NoiseCipher,
    pub(crate) client_static: [u8; 32],
    pub(crate) payload: wa::ClientPayload,
    pub(crate) pattern: HandshakePattern,
}

/// The client's opening message.
pub(crate) struct ClientHello {
    ephemeral: [u8; 32],
    encrypted_static: Option<Vec<u8>>,
    encrypted_payload: Option<Vec<u8>>,
}

impl ClientHello {
    pub(crate) fn decode(frame: &[u8]) -> Result<Self> {
        let message = HandshakeMessage::decode_from_slice(frame)?;
        let hello = message
            .client_hello
            .into_option()
            .ok_or_else(|| StandInError::Handshake("first frame is not a ClientHello".into()))?;
        let ephemeral: [u8; 32] = hello
            .ephemeral
            .ok_or_else(|| StandInError::Handshake("ClientHello without ephemeral".into()))?
            .try_into()
            .map_err(|_| StandInError::Handshake("client ephemeral is not 32 bytes".into()))?;
        Ok(Self {
            ephemeral,
            encrypted_static: hello.r#static,
            encrypted_payload: hello.payload,
        })
    }

    /// An IK hello carries the client's static key and login payload already.
    pub(crate) fn is_ik(&self) -> bool {
        self.encrypted_static.is_some()
    }
}

/// The responder state between our ServerHello and the client's ClientFinish (XX or
/// XXfallback: both end the same way).
pub(crate) struct AwaitingFinish {
    noise: NoiseHandshake,
    server_ephemeral: KeyPair,
    pattern: HandshakePattern,
}

/// What to do after reading a ClientHello.
pub(crate) enum Response {
    /// Send the ServerHello, then wait for ClientFinish.
    AwaitFinish(Vec<u8>, Box<AwaitingFinish>),
    /// IK accepted: send the ServerHello; the handshake is already complete.
    Complete(Vec<u8>, Box<Established>),
}

/// Answer a ClientHello: IK when the client encrypted to our static key, XX otherwise, and
/// XXfallback when an IK hello does not decrypt under our key (the client cached another
/// server's key).
pub(crate) fn respond(identity: &ServerIdentity, hello: &ClientHello) -> Result<Response> {
    if hello.is_ik() {
        match accept_ik(identity, hello) {
            Ok((server_hello, established)) => {
                return Ok(Response::Complete(server_hello, Box::new(established)));
            }
            Err(e) => log::debug!("IK hello rejected ({e}); answering with XXfallback"),
        }
        let (server_hello, state) =
            serve_full(identity, hello.ephemeral, HandshakePattern::XxFallback)?;
        return Ok(Response::AwaitFinish(server_hello, Box::new(state)));
    }
    let (server_hello, state) = serve_full(identity, hello.ephemeral, HandshakePattern::Xx)?;
    Ok(Response::AwaitFinish(server_hello, Box::new(state)))
}

/// `<- e, ee, s, es` with our static key and certificate chain.
fn serve_full(
    identity: &ServerIdentity,
    client_ephemeral: [u8; 32],
    pattern: HandshakePattern,
) -> Result<(Vec<u8>, AwaitingFinish)> {
    let protocol = match pattern {
        HandshakePattern::XxFallback => NOISE_PATTERN_XXFALLBACK,
        _ => NOISE_PATTERN_XX,
    };
    let mut noise =
        NoiseHandshake::new(protocol, &WA_CONN_HEADER).map_err(|e| handshake_error("init", e))?;
    noise.authenticate(&client_ephemeral);

    let server_ephemeral = KeyPair::generate(&mut rand::rng());
    noise.authenticate(&public_bytes(&server_ephemeral));
    noise
        .mix_shared_secret(server_ephemeral.private_key.serialize(), &client_ephemeral)
        .map_err(|e| handshake_error("ee", e))?;
    let encrypted_static = noise
        .encrypt(&identity.static_public())
        .map_err(|e| handshake_error("encrypt static", e))?;
    noise
        .mix_shared_secret(
            identity.static_key.private_key.serialize(),
            &client_ephemeral,
        )
        .map_err(|e| handshake_error("es", e))?;
    let encrypted_cert = noise
        .encrypt(&identity.cert_chain)
        .map_err(|e| handshake_error("encrypt certificate", e))?;

    let server_hello = server_hello(
        public_bytes(&server_ephemeral),
        Some(encrypted_static),
        encrypted_cert,
    );
    Ok((
        server_hello,
        AwaitingFinish {
            noise,
            server_ephemeral,
            pattern,
        },
    ))
}

impl AwaitingFinish {
    /// `-> s, se` plus the client's payload.
    pub(crate) fn finish(mut self, client_finish: &[u8]) -> Result<Established> {
        let message = HandshakeMessage::decode_from_slice(client_finish)?;
        let finish = message
            .client_finish
            .into_option()
            .ok_or_else(|| StandInError::Handshake("expected a ClientFinish".into()))?;
        let encrypted_static = finish
            .r#static
            .ok_or_else(|| StandInError::Handshake("ClientFinish without static".into()))?;
        let encrypted_payload = finish
            .payload
            .ok_or_else(|| StandInError::Handshake("ClientFinish without payload".into()))?;

        let client_static: [u8; 32] = self
            .noise
            .decrypt(&encrypted_static)
            .map_err(|e| handshake_error("decrypt client static", e))?
            .try_into()
            .map_err(|_| StandInError::Handshake("client static is not 32 bytes".into()))?;
        self.noise
            .mix_shared_secret(
                self.server_ephemeral.private_key.serialize(),
                &client_static,
            )
            .map_err(|e| handshake_error("se", e))?;
        let payload_bytes = self
            .noise
            .decrypt(&encrypted_payload)
            .map_err(|e| handshake_error("decrypt client payload", e))?;
        let payload = wa::ClientPayload::decode_from_slice(&payload_bytes)?;
        let (client_write, client_read) = self
            .noise
            .finish()
            .map_err(|e| handshake_error("split", e))?;
        Ok(Established {
            read: client_write,
            write: client_read,
            client_static,
            payload,
            pattern: self.pattern,
        })
    }
}

/// Noise IK responder (`<- s` pre-message; `-> e, es, s, ss`; `<- e, ee, se`).
fn accept_ik(identity: &ServerIdentity, hello: &ClientHello) -> Result<(Vec<u8>, Established)> {
    let (Some(encrypted_static), Some(encrypted_payload)) =
        (&hello.encrypted_static, &hello.encrypted_payload)
    else {
        return Err(StandInError::Handshake("IK hello incomplete".into()));
    };
    let server_static = identity.static_key.private_key.serialize();
    let mut noise = NoiseHandshake::new(NOISE_PATTERN_IK, &WA_CONN_HEADER)
        .map_err(|e| handshake_error("init", e))?;
    noise.authenticate(&identity.static_public());
    noise.authenticate(&hello.ephemeral);
    noise
        .mix_shared_secret(server_static, &hello.ephemeral)
        .map_err(|e| handshake_error("es", e))?;
    let client_static: [u8; 32] = noise
        .decrypt(encrypted_static)
        .map_err(|e| handshake_error("decrypt client static", e))?
        .try_into()
        .map_err(|_| StandInError::Handshake("client static is not 32 bytes".into()))?;
    noise
        .mix_shared_secret(server_static, &client_static)
        .map_err(|e| handshake_error("ss", e))?;
    let payload_bytes = noise
        .decrypt(encrypted_payload)
        .map_err(|e| handshake_error("decrypt 0-RTT payload", e))?;
    let payload = wa::ClientPayload::decode_from_slice(&payload_bytes)?;

    let server_ephemeral = KeyPair::generate(&mut rand::rng());
    noise.authenticate(&public_bytes(&server_ephemeral));
    noise
        .mix_shared_secret(server_ephemeral.private_key.serialize(), &hello.ephemeral)
        .map_err(|e| handshake_error("ee", e))?;
    noise
        .mix_shared_secret(server_ephemeral.private_key.serialize(), &client_static)
        .map_err(|e| handshake_error("se", e))?;
    let encrypted_cert = noise
        .encrypt(&identity.cert_chain)
        .map_err(|e| handshake_error("encrypt certificate", e))?;
    let (client_write, client_read) = noise.finish().map_err(|e| handshake_error("split", e))?;
    Ok((
        server_hello(public_bytes(&server_ephemeral), None, encrypted_cert),
        Established {
            read: client_write,
            write: client_read,
            client_static,
            payload,
            pattern: HandshakePattern::Ik,
        },
    ))
}

fn server_hello(
    ephemeral: [u8; 32],
    encrypted_static: Option<Vec<u8>>,
    payload: Vec<u8>,
) -> Vec<u8> {
    HandshakeMessage {
        server_hello: buffa::MessageField::some(wa::handshake_message::ServerHello {
            ephemeral: Some(ephemeral.to_vec()),
            r#static: encrypted_static,
            payload: Some(payload),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wacore_noise::{
        IkHandshakeState, IkServerHelloOutcome, XxFallbackHandshakeState, XxHandshakeState,
    };

    fn login_payload() -> (wa::ClientPayload, Vec<u8>) {
        let payload = wa::ClientPayload {
            username: Some(15551230001),
            device: Some(3),
            ..Default::default()
        };
        let bytes = payload.encode_to_vec();
        (payload, bytes)
    }

    fn assert_transport_works(
        client_write: &NoiseCipher,
        client_read: &NoiseCipher,
        server: &Established,
    ) {
        let mut up = client_write
            .encrypt_with_counter(0, b"client to server")
            .unwrap();
        server
            .read
            .decrypt_in_place_with_counter(0, &mut up)
            .unwrap();
        assert_eq!(up, b"client to server");
        let mut down = server
            .write
            .encrypt_with_counter(0, b"server to client")
            .unwrap();
        client_read
            .decrypt_in_place_with_counter(0, &mut down)
            .unwrap();
        assert_eq!(down, b"server to client");
    }

    #[test]
    fn xx_responder_completes_the_clients_xx_handshake() {
        let identity = ServerIdentity::generate();
        let client_static = KeyPair::generate(&mut rand::rng());
        let (payload, bytes) = login_payload();
        let mut client =
            XxHandshakeState::new(client_static.clone(), bytes, &WA_CONN_HEADER).unwrap();
        let hello = ClientHello::decode(&client.build_client_hello().unwrap()).unwrap();
        assert!(!hello.is_ik());
        let Response::AwaitFinish(server_hello, state) = respond(&identity, &hello).unwrap() else {
            panic!("XX must wait for ClientFinish");
        };
        let finish = client
            .read_server_hello_and_build_client_finish(&server_hello)
            .unwrap();
        let outcome = client.finish().unwrap();
        assert_eq!(outcome.server_cert_chain.leaf_key, identity.static_public());
        let established = state.finish(&finish).unwrap();
        assert_eq!(established.pattern, HandshakePattern::Xx);
        assert_eq!(established.payload, payload);
        assert_eq!(established.client_static, public_bytes(&client_static));
        assert_transport_works(&outcome.write_cipher, &outcome.read_cipher, &established);
    }

    #[test]
    fn ik_responder_accepts_a_client_that_cached_our_key() {
        let identity = ServerIdentity::generate();
        let client_static = KeyPair::generate(&mut rand::rng());
        let (payload, bytes) = login_payload();
        let mut client = IkHandshakeState::new(
            client_static.clone(),
            identity.static_public(),
            bytes,
            &WA_CONN_HEADER,
        )
        .unwrap();
        let hello = ClientHello::decode(&client.build_client_hello().unwrap()).unwrap();
        assert!(hello.is_ik());
        let Response::Complete(server_hello, established) = respond(&identity, &hello).unwrap()
        else {
            panic!("IK with our key must complete in one round trip");
        };
        let IkServerHelloOutcome::Continue(outcome) =
            client.read_server_hello(&server_hello).unwrap()
        else {
            panic!("client must accept the IK answer");
        };
        assert_eq!(established.pattern, HandshakePattern::Ik);
        assert_eq!(established.payload, payload);
        assert_eq!(established.client_static, public_bytes(&client_static));
        assert_transport_works(&outcome.write_cipher, &outcome.read_cipher, &established);
    }

    #[test]
    fn ik_with_a_stale_key_falls_back_to_xx() {
        let identity = ServerIdentity::generate();
        let stale = ServerIdentity::generate();
        let client_static = KeyPair::generate(&mut rand::rng());
        let (payload, bytes) = login_payload();
        let mut client =
            IkHandshakeState::new(client_static, stale.static_public(), bytes, &WA_CONN_HEADER)
                .unwrap();
        let hello = ClientHello::decode(&client.build_client_hello().unwrap()).unwrap();
        let Response::AwaitFinish(server_hello, state) = respond(&identity, &hello).unwrap() else {
            panic!("a stale IK must fall back");
        };
        let IkServerHelloOutcome::Fallback(inputs) =
            client.read_server_hello(&server_hello).unwrap()
        else {
            panic!("client must see the fallback");
        };
        let mut fallback =
            XxFallbackHandshakeState::from_ik_failure(*inputs, &WA_CONN_HEADER).unwrap();
        let finish = fallback.build_client_finish().unwrap();
        let outcome = fallback.finish().unwrap();
        let established = state.finish(&finish).unwrap();
        assert_eq!(established.pattern, HandshakePattern::XxFallback);
        assert_eq!(established.payload, payload);
        assert_transport_works(&outcome.write_cipher, &outcome.read_cipher, &established);
    }
}
