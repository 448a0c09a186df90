//! The stand-in's one error type, so handle callers and connection tasks speak the same
//! failure vocabulary.

use thiserror::Error;

/// Everything that can go wrong inside the stand-in server or when a test drives it.
#[derive(Debug, Error)]
pub enum StandInError {
    /// Binding or serving the loopback listener failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The Noise handshake with a client failed.
    #[error("noise handshake failed: {0}")]
    Handshake(String),
    /// Encrypting or decrypting a transport frame failed.
    #[error("noise transport failed: {0}")]
    Noise(#[from] wacore_noise::NoiseError),
    /// A binary node could not be encoded or decoded.
    #[error("binary node codec failed: {0}")]
    Binary(#[from] wacore_binary::BinaryError),
    /// A protobuf payload could not be decoded.
    #[error("protobuf decoding failed: {0}")]
    Protobuf(#[from] buffa::DecodeError),
    /// A Signal protocol operation failed.
    #[error("signal protocol failed: {0}")]
    Signal(#[from] wacore_libsignal::protocol::SignalProtocolError),
    /// A Curve25519 key was malformed.
    #[error("bad curve25519 key: {0}")]
    Curve(#[from] wacore_libsignal::protocol::CurveError),
    /// The connection to the client is gone.
    #[error("the connection is closed")]
    ConnectionClosed,
    /// A QR string did not have the `ref,noise,identity,adv,type` shape.
    #[error("malformed QR code: {0}")]
    InvalidQrCode(String),
    /// No client connection is currently showing the given pairing reference or code.
    #[error("no client is waiting to pair with {0}")]
    NoPendingPairing(String),
    /// No account (paired phone number) with that number or LID is known.
    #[error("unknown account {0}")]
    UnknownAccount(String),
    /// No simulated contact with that number or LID is known.
    #[error("unknown contact {0}")]
    UnknownContact(String),
    /// No group with that id is known.
    #[error("unknown group {0}")]
    UnknownGroup(String),
    /// The server refused a group change (e.g. 409 conflict, 410 gone, 304 already a
    /// member).
    #[error("group change refused: {code} {text}")]
    GroupRefused {
        /// The IQ error code WhatsApp answers with.
        code: u16,
        /// Its text.
        text: String,
    },
    /// The recipient has no device the stand-in could encrypt to.
    #[error("{0} has no device that uploaded pre-keys")]
    NoRecipientDevice(String),
    /// The client rejected or never completed pairing.
    #[error("pairing failed: {0}")]
    Pairing(String),
    /// Media could not be encrypted, stored or served.
    #[error("media failed: {0}")]
    Media(String),
    /// Something the test waited for did not happen in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The client sent something the stand-in could not make sense of.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The stand-in server has been shut down.
    #[error("the stand-in server has stopped")]
    Stopped,
}

impl StandInError {
    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Self::Protocol(message.into())
    }
}

/// Shorthand used across the crate.
pub type Result<T, E = StandInError> = std::result::Result<T, E>;
