//! `wa-standin`: a test-only stand-in WhatsApp server. It speaks the real WhatsApp Web
//! multi-device protocol (Noise XX/IK/XXfallback, binary nodes, pairing, Signal) to an
//! unmodified whatsapp-rust client over a loopback WebSocket, so the gateway's engine can
//! be tested end to end without a network. It answers the protocol; it does not special-
//! case any client.
//!
//! Start one with [`StandIn::start`], point the client's transport at [`StandIn::url`]
//! (the client must be built with whatsapp-rust's `danger-skip-cert-chain-verify`: the
//! stand-in's certificate chain is not signed by WhatsApp), and play the phone from the
//! test through the handle:
//!
//! ```ignore
//! let standin = StandIn::start()?;
//! standin.add_contact(Contact::new("15550100002", "Bob").with_about("Available"));
//! let bot = Bot::builder()
//!     .with_backend(InMemoryBackend::new())
//!     .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(standin.url()))
//!     .with_version((2, 3000, 0)) // never fetch the version over HTTP
//!     .on_event(/* forward Event::PairingQrCode(qr) to the test */)
//!     .build()
//!     .await?;
//! // ... once the client shows a QR code:
//! let device = standin.scan_qr_async(&qr, "15550100001", "Alice").await?;
//! standin.wait_connected_async(&device, Duration::from_secs(20)).await?;
//! standin.send_text_from_async("15550100002", "15550100001", "hi", "3EB0TEST01").await?;
//! ```
//!
//! Module map: `wire`/`websocket`/`in_process` (transports), `framing` and `noise` (the
//! secure channel), `connection` (per-socket routing), `pairing` and `login`, `iq/*` (the
//! request handlers), `groups` (the group rules both devices' IQs and simulated admins go
//! through), `messages` and `signal` (end-to-end encrypted traffic, sender keys for
//! groups), `compose` (reactions, edits, revokes, polls, media messages), `media` (the
//! `w:m` IQ, the loopback HTTPS CDN and media retry), `history` (history sync), `appstate`
//! (syncd: push name, address book), `notifications`, `registry` (the simulated world) and
//! `handle` (the test API).

mod appstate;
mod compose;
mod connection;
mod error;
mod framing;
mod groups;
mod handle;
mod history;
mod in_process;
mod iq;
mod login;
mod media;
mod messages;
mod noise;
mod notifications;
mod pairing;
mod registry;
mod server;
mod signal;
mod stanza;
mod websocket;
mod wire;

pub use compose::MessageRef;
pub use error::{Result, StandInError};
pub use groups::GroupChange;
pub use handle::{Account, Contact, LinkedDevice, StandIn, UserJids};
pub use in_process::InProcessTransportFactory;
pub use media::{CdnHttpClient, StoredMedia};
pub use messages::ReceiptKind;
pub use noise::HandshakePattern;
pub use registry::{
    About, Group, GroupAddPrivacy, GroupSetting, GroupSettings, MemberAddMode, MembershipRequest,
    ParticipantRole, ProfilePicture, SavedContact, SentMessage, SentReceipt,
};
pub use server::{AutoReceipts, Options};
pub use wire::{Wire, WireEnd};

/// Re-exported so tests can name JIDs and messages without extra dependencies.
pub use wacore_binary::Jid;
pub use waproto::whatsapp as proto;
