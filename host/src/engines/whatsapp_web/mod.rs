//! The real engine: WhatsApp Web multi-device through `whatsapp-rust`, one client per
//! session on the gateway's tokio runtime, its state in redb ([`store::RedbBackend`]).
//!
//! The library reconnects by itself with a Fibonacci backoff; a supervisor per session
//! watches it, reports each failed attempt with the reason (a probe of the WhatsApp host
//! tells a DNS failure from an unreachable host from a refused handshake), and gives up
//! after `engine.whatsapp_rust.max_attempts` consecutive failures.
//!
//! The client's events reach the callback in arrival order (one mailbox per session), so
//! a message comes before its edit and a `delivered` before its `read`. Inbound messages
//! can be committed before WhatsApp is acknowledged through an [`InboundJournal`]
//! (the library's `InboundDurabilityHook`).

mod archive;
mod backfill;
mod content;
mod groups;
mod messaging;
mod store;
mod translate;

pub use store::RedbBackend;

use super::{
    Account, BlockedContact, ChatSettings, ChatState, Engine, EngineError, EngineEvent, EngineSink,
    GroupInfo, GroupSetting, JoinRequest, Joined, MediaBlob, MessageRef, OnWhatsapp,
    OutgoingMessage, PairingCode, ParticipantAction, ParticipantResult, Picture, SendError,
    SentAck,
};
use crate::clock::now_ms;
use crate::config::WhatsappRustConfig;
use crate::storage::Database;
use archive::Archive;
use async_trait::async_trait;
use futures::future::BoxFuture;
use gateway_sdk::Jid;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use whatsapp_rust::bot::{Bot, BotHandle, EventDelivery};
use whatsapp_rust::http::UreqHttpClient;
use whatsapp_rust::transport::TokioWebSocketTransportFactory;
use whatsapp_rust::types::events::{Event, InboundMessage};
use whatsapp_rust::{Client, ErrorChainExt, InboundDurabilityHook};

/// How often the supervisor looks at a session's connection.
const SUPERVISE_EVERY: Duration = Duration::from_millis(250);
/// The host the library connects to, probed to explain a failure.
const WHATSAPP_HOST: &str = "web.whatsapp.com:443";
/// How long a graceful stop may take before the client task is aborted.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// The client version stated to a server of our own (`engine.whatsapp_rust.server_url`).
const STANDIN_CLIENT_VERSION: (u32, u32, u32) = (2, 3000, 0);
/// How long a logout waits for a reconnecting session, to unlink on WhatsApp's side.
const LOGOUT_WAIT: Duration = Duration::from_secs(5);
/// Pair codes are valid for about three minutes.
const PAIR_CODE_TTL_MS: u64 = 180_000;
/// Events a session's client may queue for the callback while it waits on plugins; past
/// that the library drops (and counts) events rather than stall the connection.
const EVENT_MAILBOX: usize = 8192;

/// Commits a batch of a session's inbound messages — as the events the engine would
/// otherwise publish (`message`, `message.reaction`, `poll.vote`…), in order — before
/// WhatsApp is told they arrived. `Ok` acknowledges them and the engine does not publish
/// them itself: the journal owns their delivery. `Err` leaves them unacknowledged; WhatsApp
/// delivers them again on the next connection (the same batch may come again after a
/// crash, too: keep it idempotent by `(chat, id)`). Called on the receive path, so a slow
/// journal slows the session's inbound traffic.
pub type InboundJournal =
    Arc<dyn Fn(String, Vec<EngineEvent>) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

struct Run {
    generation: u64,
    client: Arc<Client>,
    outbound: Arc<messaging::Outbound>,
    handle: Option<BotHandle>,
    supervisor: tokio::task::JoinHandle<()>,
}

struct Inner {
    sink: EngineSink,
    db: Database,
    config: WhatsappRustConfig,
    journal: Option<InboundJournal>,
    runs: Mutex<HashMap<String, Run>>,
    generations: Mutex<u64>,
}

pub struct WhatsappWeb(Arc<Inner>);

impl WhatsappWeb {
    /// The engine, ready to start sessions.
    pub fn engine(sink: EngineSink, db: Database, config: WhatsappRustConfig) -> Arc<dyn Engine> {
        Arc::new(WhatsappWeb::new(sink, db, config, None))
    }

    /// The engine with inbound messages committed to `journal` before WhatsApp is
    /// acknowledged (at-least-once instead of at-most-once; see [`InboundJournal`]).
    pub fn engine_with_journal(
        sink: EngineSink,
        db: Database,
        config: WhatsappRustConfig,
        journal: InboundJournal,
    ) -> Arc<dyn Engine> {
        Arc::new(WhatsappWeb::new(sink, db, config, Some(journal)))
    }

    fn new(
        sink: EngineSink,
        db: Database,
        config: WhatsappRustConfig,
        journal: Option<InboundJournal>,
    ) -> WhatsappWeb {
        WhatsappWeb(Arc::new(Inner {
            sink,
            db,
            config,
            journal,
            runs: Mutex::new(HashMap::new()),
            generations: Mutex::new(0),
        }))
    }
}

/// The library's durability hook, handing each batch to the [`InboundJournal`].
struct JournalHook {
    session: Arc<str>,
    archive: Archive,
    journal: InboundJournal,
}

#[whatsapp_rust::async_trait]
impl InboundDurabilityHook for JournalHook {
    async fn on_messages(
        &self,
        client: Arc<Client>,
        batch: &[InboundMessage],
    ) -> whatsapp_rust::anyhow::Result<()> {
        let events = translate::messages(&self.session, &self.archive, &client, batch).await;
        (self.journal)(self.session.to_string(), events)
            .await
            .map_err(|e| whatsapp_rust::anyhow::anyhow!("the inbound journal refused: {e}"))
    }
}

/// The HTTP client for media and version look-ups. Against a server of our own (test
/// builds only) its CDN's self-signed certificate is accepted.
fn http_client(server_url: Option<&str>) -> UreqHttpClient {
    #[cfg(feature = "test-server")]
    if server_url.is_some() {
        let tls = ureq::tls::TlsConfig::builder()
            .disable_verification(true)
            .build();
        let agent: ureq::Agent = ureq::config::Config::builder()
            .tls_config(tls)
            .build()
            .into();
        return UreqHttpClient::with_agent(agent);
    }
    #[cfg(not(feature = "test-server"))]
    let _ = server_url;
    UreqHttpClient::new()
}

impl Inner {
    fn client(&self, session: &str) -> Result<Arc<Client>, EngineError> {
        self.live(session).map(|(c, _)| c)
    }

    /// A connected session's client and its sending state.
    fn live(&self, session: &str) -> Result<(Arc<Client>, Arc<messaging::Outbound>), EngineError> {
        let runs = self.runs.lock().expect("lock");
        match runs.get(session) {
            Some(r) if r.client.is_connected() && r.client.is_logged_in() => {
                Ok((r.client.clone(), r.outbound.clone()))
            }
            Some(_) => Err(EngineError::NotConnected(
                "the session is not connected to WhatsApp".into(),
            )),
            None => Err(EngineError::NotConnected(
                "the session is not started".into(),
            )),
        }
    }

    /// The session's remembered messages.
    fn archive(&self, session: &str) -> Archive {
        Archive::new(self.db.clone(), session)
    }

    fn is_current(&self, session: &str, generation: u64) -> bool {
        self.runs
            .lock()
            .expect("lock")
            .get(session)
            .is_some_and(|r| r.generation == generation)
    }

    /// Stops and forgets a session's client, gracefully when it can.
    async fn halt(&self, session: &str) -> Option<Arc<Client>> {
        let run = self.runs.lock().expect("lock").remove(session)?;
        run.supervisor.abort();
        if let Some(handle) = run.handle {
            let abort = handle.client();
            if tokio::time::timeout(STOP_GRACE, handle.shutdown())
                .await
                .is_err()
            {
                tracing::warn!(session, "client did not stop in time; aborting it");
                abort.signal_shutdown_sync();
            }
        }
        Some(run.client)
    }

    /// Watches the library's reconnect loop and reports what it will not.
    async fn supervise(self: Arc<Self>, session: String, generation: u64, client: Arc<Client>) {
        let max = self.config.max_attempts;
        let mut reported = 0u32;
        loop {
            tokio::time::sleep(SUPERVISE_EVERY).await;
            if !self.is_current(&session, generation) {
                return;
            }
            if client.is_connected() {
                reported = 0;
                continue;
            }
            let failures = client.stats().reconnect_errors;
            if failures <= reported {
                continue;
            }
            reported = failures;
            let why = probe(self.config.server_url.as_deref()).await;
            if max > 0 && failures >= max {
                tracing::warn!(session, failures, reason = %why, "giving up on the connection");
                self.sink.send(EngineEvent::Failed {
                    session: session.clone(),
                    reason: format!("not connected: {why}; gave up after {failures} attempts"),
                });
                if self.is_current(&session, generation) {
                    self.halt(&session).await;
                }
                return;
            }
            let of = if max > 0 {
                format!(" of {max}")
            } else {
                String::new()
            };
            self.sink.send(EngineEvent::Connecting {
                session: session.clone(),
                reason: Some(format!(
                    "not connected: {why}; retrying (attempt {failures}{of})"
                )),
            });
        }
    }
}

/// Explains why WhatsApp (or the configured server) is unreachable: name resolution, TCP
/// reachability, or the protocol handshake itself.
async fn probe(server_url: Option<&str>) -> String {
    let target = server_url
        .and_then(|u| u.split_once("://"))
        .map(|(scheme, rest)| {
            let authority = rest.split('/').next().unwrap_or(rest);
            if authority.contains(':') {
                authority.to_owned()
            } else if scheme == "wss" {
                format!("{authority}:443")
            } else {
                format!("{authority}:80")
            }
        })
        .unwrap_or_else(|| WHATSAPP_HOST.to_owned());
    let name = target
        .rsplit_once(':')
        .map_or(target.as_str(), |(h, _)| h)
        .to_owned();
    let lookup =
        tokio::time::timeout(Duration::from_secs(3), tokio::net::lookup_host(&target)).await;
    let addrs: Vec<std::net::SocketAddr> = match lookup {
        Err(_) => return format!("cannot resolve {name} (DNS timed out)"),
        Ok(Err(e)) => return format!("cannot resolve {name} ({e})"),
        Ok(Ok(a)) => a.collect(),
    };
    let Some(addr) = addrs.first() else {
        return format!("cannot resolve {name} (no addresses)");
    };
    match tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr)).await {
        Err(_) => format!("cannot reach {addr} (timed out)"),
        Ok(Err(e)) => format!("cannot reach {addr} ({e})"),
        Ok(Ok(_)) => "WhatsApp refused the connection handshake".into(),
    }
}

fn wa_jid(jid: &Jid) -> Result<whatsapp_rust::Jid, EngineError> {
    jid.to_string()
        .parse()
        .map_err(|e| EngineError::Invalid(format!("{jid}: {e}")))
}

/// A failed live call: "not connected" is 501 to the caller, everything else 500.
fn live_error<E: std::error::Error + 'static>(e: E) -> EngineError {
    if e.is_transport_unavailable() {
        EngineError::NotConnected(e.to_string())
    } else if e.is_timeout() {
        EngineError::Failed(format!("WhatsApp did not answer in time: {e}"))
    } else {
        EngineError::Failed(e.to_string())
    }
}

#[async_trait]
impl Engine for WhatsappWeb {
    fn name(&self) -> &'static str {
        "whatsapp-rust"
    }

    async fn start(&self, session: &str) -> Result<(), EngineError> {
        if self.0.runs.lock().expect("lock").contains_key(session) {
            return Ok(());
        }
        let backend = Arc::new(RedbBackend::new(self.0.db.clone(), session));
        let sink = self.0.sink.clone();
        let sid: Arc<str> = Arc::from(session);
        let archive = self.0.archive(session);
        let outbound = Arc::new(messaging::Outbound::default());
        let server_url = self.0.config.server_url.as_deref();
        let mut transport = TokioWebSocketTransportFactory::new();
        let mut builder = Bot::builder().with_backend_arc(backend);
        if let Some(url) = server_url {
            // A server of our own (test builds only, see the config check): it does not
            // publish WhatsApp Web's current version, so the client states a fixed one.
            transport = transport.with_url(url.to_owned());
            builder = builder.with_version(STANDIN_CLIENT_VERSION);
        }
        if let Some(journal) = &self.0.journal {
            builder = builder.with_inbound_durability_hook(JournalHook {
                session: sid.clone(),
                archive: archive.clone(),
                journal: journal.clone(),
            });
        }
        let bot = builder
            .with_transport_factory(transport)
            .with_http_client(http_client(server_url))
            .with_event_handler(messaging::AckListener(outbound.clone()))
            .with_event_delivery(EventDelivery::Ordered {
                capacity: EVENT_MAILBOX,
            })
            .on_event(move |event, client| {
                let sink = sink.clone();
                let sid = sid.clone();
                let archive = archive.clone();
                async move {
                    let events = translate::translate(&sid, &archive, &event, &client).await;
                    for e in events {
                        sink.send_waiting(e).await;
                    }
                    if matches!(&*event, Event::Connected(_)) {
                        // Like WhatsApp's own clients, read the groups the account is in
                        // on connect: their members and roles feed the stores. Off the
                        // event path, so the connection's other events keep flowing.
                        crate::background::spawn(translate::sync_groups(sid, client, sink));
                        tokio::task::spawn_blocking(move || {
                            let cutoff = crate::clock::now_ms() as i64 - archive::RECENT_KEEP_MS;
                            if let Err(e) = archive.sweep(cutoff) {
                                tracing::warn!(error = %e, "cannot sweep old message copies");
                            }
                        });
                    }
                }
            })
            .build()
            .await
            .map_err(|e| EngineError::Failed(format!("cannot create the WhatsApp client: {e}")))?;
        let client = bot.client();
        let generation = {
            let mut g = self.0.generations.lock().expect("lock");
            *g += 1;
            *g
        };
        let handle = bot.spawn();
        let supervisor = crate::background::spawn(self.0.clone().supervise(
            session.to_owned(),
            generation,
            client.clone(),
        ));
        self.0.runs.lock().expect("lock").insert(
            session.to_owned(),
            Run {
                generation,
                client,
                outbound,
                handle: Some(handle),
                supervisor,
            },
        );
        self.0.sink.send(EngineEvent::Connecting {
            session: session.to_owned(),
            reason: None,
        });
        Ok(())
    }

    async fn stop(&self, session: &str) -> Result<(), EngineError> {
        self.0.halt(session).await;
        Ok(())
    }

    async fn logout(&self, session: &str) -> Result<(), EngineError> {
        // A session that is reconnecting gets a moment to come back: the unlink must reach
        // WhatsApp, or the phone keeps listing a device that no longer exists.
        let mut connected = self.0.client(session).ok();
        let until = tokio::time::Instant::now() + LOGOUT_WAIT;
        while connected.is_none()
            && self.0.runs.lock().expect("lock").contains_key(session)
            && tokio::time::Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
            connected = self.0.client(session).ok();
        }
        if let Some(client) = connected {
            // Deregisters the companion device on WhatsApp's side.
            client.logout().await;
        }
        self.0.halt(session).await;
        let db = self.0.db.clone();
        let sid = session.to_owned();
        tokio::task::spawn_blocking(move || RedbBackend::wipe(&db, &sid))
            .await
            .map_err(|e| EngineError::Failed(e.to_string()))?
            .map(|_| ())
            .map_err(|e| EngineError::Failed(e.to_string()))
    }

    async fn request_pairing_code(
        &self,
        session: &str,
        phone: &str,
    ) -> Result<PairingCode, EngineError> {
        let client = {
            let runs = self.0.runs.lock().expect("lock");
            runs.get(session)
                .map(|r| r.client.clone())
                .ok_or_else(|| EngineError::NotConnected("the session is not started".into()))?
        };
        if client.is_logged_in() {
            return Err(EngineError::Invalid("session is already paired".into()));
        }
        // A pair code needs the pre-login socket to WhatsApp.
        if !client.is_connected() {
            return Err(EngineError::NotConnected(
                "the session has not reached WhatsApp yet; see its statusReason".into(),
            ));
        }
        let code = client
            .pair_with_code(whatsapp_rust::pair_code::PairCodeOptions {
                phone_number: phone.to_owned(),
                ..Default::default()
            })
            .await
            .map_err(live_error)?;
        let pretty = if code.len() == 8 {
            format!("{}-{}", &code[..4], &code[4..])
        } else {
            code
        };
        Ok(PairingCode {
            code: pretty,
            expires_at: now_ms() + PAIR_CODE_TTL_MS,
        })
    }

    async fn check_phone(&self, session: &str, phone: &str) -> Result<OnWhatsapp, EngineError> {
        let client = self.0.client(session)?;
        let digits = gateway_sdk::jid::parse_phone(phone, true)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let results = client
            .contacts()
            .is_on_whatsapp(&[whatsapp_rust::Jid::pn(&digits)])
            .await
            .map_err(live_error)?;
        let r = results.into_iter().next();
        Ok(match r {
            Some(r) if r.is_registered => OnWhatsapp {
                query: digits,
                is_on_whatsapp: true,
                jid: Some(
                    if r.jid.is_lid() {
                        r.pn_jid.unwrap_or(r.jid.clone())
                    } else {
                        r.jid.clone()
                    }
                    .to_non_ad()
                    .to_string(),
                ),
                lid: r
                    .lid
                    .map(|l| l.to_non_ad().to_string())
                    .or_else(|| r.jid.is_lid().then(|| r.jid.to_non_ad().to_string())),
            },
            _ => OnWhatsapp::absent(digits),
        })
    }

    async fn profile_picture(
        &self,
        session: &str,
        jid: &Jid,
    ) -> Result<Option<Picture>, EngineError> {
        let client = self.0.client(session)?;
        let pic = client
            .contacts()
            .get_profile_picture(&wa_jid(jid)?, false)
            .await
            .map_err(live_error)?;
        Ok(pic.map(|p| Picture {
            id: p.id,
            url: p.url,
            kind: "image".into(),
            direct_path: p.direct_path.unwrap_or_default(),
        }))
    }

    async fn about(&self, session: &str, jid: &Jid) -> Result<String, EngineError> {
        let client = self.0.client(session)?;
        let target = wa_jid(jid)?;
        let info = client
            .contacts()
            .get_user_info(std::slice::from_ref(&target))
            .await
            .map_err(live_error)?;
        match info.into_values().next() {
            Some(u) => Ok(u.status.unwrap_or_default()),
            None => Err(EngineError::NotFound(format!("{jid} is not on WhatsApp"))),
        }
    }

    async fn block(&self, session: &str, jid: &Jid) -> Result<(), EngineError> {
        let client = self.0.client(session)?;
        let target = wa_jid(jid)?;
        // Idempotent: blocking someone already blocked changes nothing.
        if client
            .blocking()
            .is_blocked(&target)
            .await
            .map_err(live_error)?
        {
            return Ok(());
        }
        client.blocking().block(&target).await.map_err(live_error)
    }

    async fn unblock(&self, session: &str, jid: &Jid) -> Result<(), EngineError> {
        let client = self.0.client(session)?;
        let target = wa_jid(jid)?;
        if !client
            .blocking()
            .is_blocked(&target)
            .await
            .map_err(live_error)?
        {
            return Ok(());
        }
        client.blocking().unblock(&target).await.map_err(live_error)
    }

    async fn blocklist(&self, session: &str) -> Result<Vec<BlockedContact>, EngineError> {
        let client = self.0.client(session)?;
        let entries = client
            .blocking()
            .get_blocklist()
            .await
            .map_err(live_error)?;
        Ok(entries
            .into_iter()
            .map(|e| {
                let jid = e.jid.to_non_ad();
                BlockedContact {
                    lid: jid.is_lid().then(|| jid.to_string()),
                    jid: jid.to_string(),
                    blocked_at: e.timestamp.map(|t| t * 1000),
                }
            })
            .collect())
    }

    async fn send_message(
        &self,
        session: &str,
        message: &OutgoingMessage,
    ) -> Result<SentAck, SendError> {
        messaging::send(&self.0, session, message).await
    }

    async fn send_chat_state(
        &self,
        session: &str,
        chat: &Jid,
        state: ChatState,
    ) -> Result<(), EngineError> {
        messaging::chat_state(&self.0.client(session)?, chat, state).await
    }

    async fn mark_read(
        &self,
        session: &str,
        chat: &Jid,
        messages: &[MessageRef],
    ) -> Result<(), EngineError> {
        messaging::mark_read(&self.0.client(session)?, chat, messages).await
    }

    async fn apply_chat_settings(
        &self,
        session: &str,
        chat: &Jid,
        settings: ChatSettings,
    ) -> Result<(), EngineError> {
        messaging::apply_chat_settings(&self.0.client(session)?, chat, settings).await
    }

    async fn delete_chat(&self, session: &str, chat: &Jid) -> Result<(), EngineError> {
        messaging::delete_chat(&self.0.client(session)?, chat).await
    }

    async fn download_media(
        &self,
        session: &str,
        message: &MessageRef,
    ) -> Result<MediaBlob, EngineError> {
        messaging::download(&self.0, session, message).await
    }

    async fn group_metadata(&self, session: &str, group: &Jid) -> Result<GroupInfo, EngineError> {
        groups::group_metadata(&self.0, session, group).await
    }

    async fn invite_info(&self, session: &str, code: &str) -> Result<GroupInfo, EngineError> {
        groups::invite_info(&self.0, session, code).await
    }

    async fn create_group(
        &self,
        session: &str,
        subject: &str,
        participants: &[Jid],
    ) -> Result<GroupInfo, EngineError> {
        groups::create_group(&self.0, session, subject, participants).await
    }

    async fn set_group_subject(
        &self,
        session: &str,
        group: &Jid,
        subject: &str,
    ) -> Result<(), EngineError> {
        groups::set_group_subject(&self.0, session, group, subject).await
    }

    async fn set_group_description(
        &self,
        session: &str,
        group: &Jid,
        description: Option<&str>,
    ) -> Result<(), EngineError> {
        groups::set_group_description(&self.0, session, group, description).await
    }

    async fn set_group_setting(
        &self,
        session: &str,
        group: &Jid,
        setting: GroupSetting,
        on: bool,
    ) -> Result<(), EngineError> {
        groups::set_group_setting(&self.0, session, group, setting, on).await
    }

    async fn update_group_participants(
        &self,
        session: &str,
        group: &Jid,
        action: ParticipantAction,
        participants: &[Jid],
    ) -> Result<Vec<ParticipantResult>, EngineError> {
        groups::update_group_participants(&self.0, session, group, action, participants).await
    }

    async fn group_join_requests(
        &self,
        session: &str,
        group: &Jid,
    ) -> Result<Vec<JoinRequest>, EngineError> {
        groups::group_join_requests(&self.0, session, group).await
    }

    async fn group_invite_code(
        &self,
        session: &str,
        group: &Jid,
        reset: bool,
    ) -> Result<String, EngineError> {
        groups::group_invite_code(&self.0, session, group, reset).await
    }

    async fn join_group(&self, session: &str, code: &str) -> Result<Joined, EngineError> {
        groups::join_group(&self.0, session, code).await
    }

    async fn leave_group(&self, session: &str, group: &Jid) -> Result<(), EngineError> {
        groups::leave_group(&self.0, session, group).await
    }

    async fn set_group_picture(
        &self,
        session: &str,
        group: &Jid,
        jpeg: Option<Vec<u8>>,
    ) -> Result<Option<String>, EngineError> {
        groups::set_group_picture(&self.0, session, group, jpeg).await
    }

    async fn backfill_contacts(
        &self,
        session: &str,
    ) -> Result<Vec<serde_json::Value>, EngineError> {
        self.0.client(session)?;
        backfill::known_contacts(&RedbBackend::new(self.0.db.clone(), session)).await
    }

    async fn backfill_groups(&self, session: &str) -> Result<Vec<super::GroupInfo>, EngineError> {
        let client = self.0.client(session)?;
        backfill::joined_groups(&client).await
    }

    async fn shutdown(&self) {
        let sessions: Vec<String> = self.0.runs.lock().expect("lock").keys().cloned().collect();
        for s in sessions {
            self.0.halt(&s).await;
        }
    }
}

/// The account a client is paired as.
fn account_of(client: &Client) -> Option<Account> {
    let pn = client.pn()?.to_non_ad();
    let push = client.push_name();
    Some(Account {
        phone_number: pn.user.to_string(),
        jid: pn.to_string(),
        lid: client.lid().map(|l| l.to_non_ad().to_string()),
        push_name: (!push.is_empty()).then_some(push),
    })
}

#[cfg(test)]
mod tests;
