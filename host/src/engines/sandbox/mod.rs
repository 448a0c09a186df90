//! The sandbox engine: a deterministic simulated WhatsApp for development, demos, plugin
//! authors and tests. A session pairs when a simulated phone scans its QR code or enters
//! its pair code (control calls on the admin listener), or at once with `auto_pair`; live
//! calls act on the world file; the control API can drop and restore a connection, unlink
//! the device from the "phone", and inject inbound events.

mod world;

pub use world::{IndexedWorld, World};

use super::{
    Account, BlockedContact, Engine, EngineError, EngineEvent, EngineSink, OnWhatsapp, PairingCode,
    Picture,
};
use crate::clock::now_ms;
use crate::config::SandboxConfig;
use crate::storage::{Database, ENGINE_KV, ScanRange, Scope, ScopedKv};
use async_trait::async_trait;
use gateway_sdk::Jid;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Sync events carry at most this many items, as WhatsApp's own syncs come in chunks.
const SYNC_CHUNK: usize = 200;

const ACCOUNT_KEY: &[u8] = b"account";
const BLOCKED_PREFIX: &[u8] = b"blocked/";
const BLOCKED_INIT_KEY: &[u8] = b"blocked-init";

#[derive(Default)]
struct Sim {
    /// Bumped on every start, stop and pairing so stale tasks notice and end.
    generation: u64,
    running: bool,
    connected: bool,
    dropped: bool,
    qr: Option<PairingCode>,
    pair_code: Option<(PairingCode, String)>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub struct SandboxEngine {
    world: Arc<IndexedWorld>,
    sink: EngineSink,
    kv: ScopedKv,
    config: SandboxConfig,
    sims: Mutex<HashMap<String, Sim>>,
}

/// A control call that could not apply.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
}

fn digest_number(parts: &[&str], digits: usize) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let bytes = h.finalize();
    let mut n = u128::from_be_bytes(bytes[..16].try_into().expect("16 bytes"));
    let mut s = String::with_capacity(digits);
    for _ in 0..digits {
        s.push(char::from(b'0' + (n % 10) as u8));
        n /= 10;
    }
    s
}

impl SandboxEngine {
    pub fn new(
        world: IndexedWorld,
        sink: EngineSink,
        db: Database,
        config: SandboxConfig,
    ) -> Arc<SandboxEngine> {
        Arc::new(SandboxEngine {
            world: Arc::new(world),
            sink,
            kv: ScopedKv::new(db, ENGINE_KV, "sandbox"),
            config,
            sims: Mutex::new(HashMap::new()),
        })
    }

    fn scope(session: &str) -> Scope {
        Scope::Session(session.to_owned())
    }

    fn account(&self, session: &str) -> Result<Option<Account>, EngineError> {
        let raw = self
            .kv
            .get(&Self::scope(session), ACCOUNT_KEY)
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        Ok(raw.and_then(|v| serde_json::from_slice(&v).ok()))
    }

    fn save_account(&self, session: &str, account: &Account) -> Result<(), EngineError> {
        let scope = Self::scope(session);
        let mut ops = vec![(
            ACCOUNT_KEY.to_vec(),
            Some(serde_json::to_vec(account).expect("account serialises")),
        )];
        // A fresh pairing starts from the world's block list.
        let initialised = self
            .kv
            .get(&scope, BLOCKED_INIT_KEY)
            .map_err(|e| EngineError::Failed(e.to_string()))?
            .is_some();
        if !initialised {
            ops.push((BLOCKED_INIT_KEY.to_vec(), Some(b"1".to_vec())));
            for b in &self.world.world.blocked {
                if let Ok(j) = gateway_sdk::jid::parse_person(b) {
                    ops.push((blocked_key(&j), Some(now_ms().to_string().into_bytes())));
                }
            }
        }
        self.kv
            .write(&scope, &ops)
            .map(|_| ())
            .map_err(|e| EngineError::Failed(e.to_string()))
    }

    /// A durable write, off the async workers (a commit waits on the disk).
    async fn write(
        &self,
        scope: Scope,
        ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), EngineError> {
        let kv = self.kv.clone();
        tokio::task::spawn_blocking(move || kv.write(&scope, &ops))
            .await
            .map_err(|e| EngineError::Failed(e.to_string()))?
            .map(|_| ())
            .map_err(|e| EngineError::Failed(e.to_string()))
    }

    fn forget(&self, session: &str) -> Result<(), EngineError> {
        let scope = Self::scope(session);
        let rows = self
            .kv
            .scan(
                &scope,
                &ScanRange {
                    limit: 1000,
                    ..Default::default()
                },
            )
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        let ops: Vec<_> = rows.into_iter().map(|(k, _)| (k, None)).collect();
        if !ops.is_empty() {
            self.kv
                .write(&scope, &ops)
                .map_err(|e| EngineError::Failed(e.to_string()))?;
        }
        Ok(())
    }

    /// The account a simulated phone pairs as: the given phone, or one derived from the
    /// session id so runs are repeatable.
    fn make_account(&self, session: &str, phone: Option<&str>, push_name: Option<&str>) -> Account {
        let phone = phone
            .map(str::to_owned)
            .unwrap_or_else(|| format!("1555{}", digest_number(&["phone", session], 7)));
        let lid = format!(
            "{}@lid",
            digest_number(&["lid", &phone], 15).trim_start_matches('0')
        );
        Account {
            jid: format!("{phone}@s.whatsapp.net"),
            lid: Some(lid),
            push_name: Some(
                push_name
                    .map(str::to_owned)
                    .or_else(|| self.world.world.push_name.clone())
                    .unwrap_or_else(|| "Sandbox".into()),
            ),
            phone_number: phone,
        }
    }

    fn is_current(&self, session: &str, generation: u64) -> bool {
        self.sims
            .lock()
            .expect("lock")
            .get(session)
            .is_some_and(|s| s.running && s.generation == generation)
    }

    fn run(self: Arc<Self>, session: String, generation: u64) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            self.sink.send(EngineEvent::Connecting {
                session: session.clone(),
                reason: None,
            });
            tokio::time::sleep(Duration::from_millis(self.config.connect_delay_ms)).await;
            if !self.is_current(&session, generation) {
                return;
            }
            let account = match self.account(&session) {
                Ok(a) => a,
                Err(e) => {
                    self.sink.send(EngineEvent::Failed {
                        session: session.clone(),
                        reason: e.to_string(),
                    });
                    return;
                }
            };
            if let Some(account) = account {
                self.connect(&session, account);
                return;
            }
            if self.config.auto_pair {
                let account = self.make_account(&session, None, None);
                if self.pair(&session, generation, account).is_err() {
                    tracing::warn!(session, "sandbox auto-pair failed");
                }
                return;
            }
            // Show a fresh QR code each time the previous one expires, like a phone's
            // "Link a device" screen, until pairing or stop.
            let mut n = 0u64;
            loop {
                n += 1;
                let code = PairingCode {
                    code: format!(
                        "2@sandbox-{}-{}-{}",
                        &session,
                        generation,
                        digest_number(
                            &["qr", &session, &generation.to_string(), &n.to_string()],
                            12
                        )
                    ),
                    expires_at: now_ms() + self.config.code_ttl_ms,
                };
                {
                    let mut sims = self.sims.lock().expect("lock");
                    match sims.get_mut(&session) {
                        Some(s) if s.running && s.generation == generation => {
                            s.qr = Some(code.clone());
                        }
                        _ => return,
                    }
                }
                self.sink.send(EngineEvent::Qr {
                    session: session.clone(),
                    code,
                });
                tokio::time::sleep(Duration::from_millis(self.config.code_ttl_ms)).await;
                if !self.is_current(&session, generation) {
                    return;
                }
            }
        })
    }

    /// Completes pairing for the running generation: stores the account, ends the QR loop
    /// and connects.
    fn pair(
        &self,
        session: &str,
        generation: u64,
        account: Account,
    ) -> Result<Account, EngineError> {
        {
            let mut sims = self.sims.lock().expect("lock");
            let Some(s) = sims
                .get_mut(session)
                .filter(|s| s.running && s.generation == generation)
            else {
                return Err(EngineError::NotConnected("session is not running".into()));
            };
            s.generation += 1;
            s.qr = None;
            s.pair_code = None;
        }
        self.save_account(session, &account)?;
        self.sink.send(EngineEvent::Paired {
            session: session.to_owned(),
            account: account.clone(),
        });
        self.connect(session, account.clone());
        Ok(account)
    }

    fn connect(&self, session: &str, account: Account) {
        {
            let mut sims = self.sims.lock().expect("lock");
            let Some(s) = sims.get_mut(session).filter(|s| s.running) else {
                return;
            };
            s.connected = true;
            s.dropped = false;
        }
        self.sink.send(EngineEvent::Connected {
            session: session.to_owned(),
            account: Some(account),
        });
        self.sync_world(session);
    }

    /// Delivers the world as WhatsApp would on connect: contacts (with LID ↔ phone
    /// mappings), direct chats and group metadata, in chunks.
    fn sync_world(&self, session: &str) {
        let w = &self.world.world;
        let contacts: Vec<Value> = w
            .contacts
            .iter()
            .map(|c| {
                json!({
                    "lid": c.lid,
                    "jid": c.phone_jid(),
                    "phoneNumber": c.phone,
                    "name": c.name,
                    "pushName": c.push_name,
                    "businessName": c.business_name,
                })
            })
            .collect();
        for chunk in contacts.chunks(SYNC_CHUNK) {
            self.domain(
                session,
                "contacts.upsert",
                json!({"source": "sync", "contacts": chunk}),
            );
        }
        let chats: Vec<Value> = w
            .contacts
            .iter()
            .filter(|c| c.dm)
            .map(|c| json!({"jid": c.phone_jid().unwrap_or_else(|| c.lid.clone()), "lid": c.lid}))
            .collect();
        for chunk in chats.chunks(SYNC_CHUNK) {
            self.domain(session, "chats.upsert", json!({"chats": chunk}));
        }
        for g in &w.groups {
            let participants: Vec<Value> = g
                .participants
                .iter()
                .map(|p| {
                    let phone = self
                        .world
                        .contact(&Jid::parse(&p.lid).expect("validated at load"))
                        .and_then(|c| c.phone_jid());
                    json!({"lid": p.lid, "jid": phone, "role": p.role, "tag": p.tag})
                })
                .collect();
            self.domain(
                session,
                "groups.upsert",
                json!({"groups": [{"jid": g.jid, "subject": g.subject, "participants": participants}]}),
            );
        }
    }

    fn domain(&self, session: &str, name: &str, payload: Value) {
        self.sink.send(EngineEvent::Domain {
            session: session.to_owned(),
            name: name.to_owned(),
            payload,
        });
    }

    fn live(&self, session: &str) -> Result<(), EngineError> {
        let sims = self.sims.lock().expect("lock");
        match sims.get(session) {
            Some(s) if s.connected && !s.dropped => Ok(()),
            Some(s) if s.dropped => Err(EngineError::NotConnected(
                "the sandbox connection was dropped".into(),
            )),
            _ => Err(EngineError::NotConnected("session is not connected".into())),
        }
    }

    fn running_generation(&self, session: &str) -> Option<u64> {
        self.sims
            .lock()
            .expect("lock")
            .get(session)
            .filter(|s| s.running)
            .map(|s| s.generation)
    }

    // ---- control API (admin listener) ----

    /// A simulated phone scans the session's current QR code.
    pub fn scan(
        &self,
        session: &str,
        phone: Option<&str>,
        push_name: Option<&str>,
    ) -> Result<Account, ControlError> {
        let phone = phone
            .map(|p| gateway_sdk::jid::parse_phone(p, true))
            .transpose()
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        let generation = {
            let sims = self.sims.lock().expect("lock");
            let s = sims
                .get(session)
                .filter(|s| s.running)
                .ok_or_else(|| ControlError::Conflict("session is not running".into()))?;
            match &s.qr {
                Some(q) if q.expires_at > now_ms() => s.generation,
                _ => {
                    return Err(ControlError::Conflict(
                        "no QR code is waiting to be scanned".into(),
                    ));
                }
            }
        };
        let account = self.make_account(session, phone.as_deref(), push_name);
        self.pair(session, generation, account)
            .map_err(|e| ControlError::Conflict(e.to_string()))
    }

    /// A simulated phone enters the pair code the session asked for.
    pub fn enter_pair_code(&self, session: &str, code: &str) -> Result<Account, ControlError> {
        let (generation, phone) = {
            let sims = self.sims.lock().expect("lock");
            let s = sims
                .get(session)
                .filter(|s| s.running)
                .ok_or_else(|| ControlError::Conflict("session is not running".into()))?;
            match &s.pair_code {
                Some((c, phone)) if c.expires_at > now_ms() => {
                    if !c.code.eq_ignore_ascii_case(code.trim()) {
                        return Err(ControlError::Invalid("wrong pair code".into()));
                    }
                    (s.generation, phone.clone())
                }
                _ => return Err(ControlError::Conflict("no pair code is pending".into())),
            }
        };
        let account = self.make_account(session, Some(&phone), None);
        self.pair(session, generation, account)
            .map_err(|e| ControlError::Conflict(e.to_string()))
    }

    /// Drops the connection as a network failure would; the engine "keeps retrying".
    pub fn drop_connection(&self, session: &str) -> Result<(), ControlError> {
        {
            let mut sims = self.sims.lock().expect("lock");
            let s = sims
                .get_mut(session)
                .filter(|s| s.connected && !s.dropped)
                .ok_or_else(|| ControlError::Conflict("session is not connected".into()))?;
            s.dropped = true;
        }
        self.sink.send(EngineEvent::Disconnected {
            session: session.to_owned(),
            reason: "connection lost (sandbox); reconnecting".into(),
            retrying: true,
        });
        Ok(())
    }

    /// Restores a dropped connection.
    pub fn restore_connection(&self, session: &str) -> Result<(), ControlError> {
        {
            let mut sims = self.sims.lock().expect("lock");
            let s = sims
                .get_mut(session)
                .filter(|s| s.connected && s.dropped)
                .ok_or_else(|| {
                    ControlError::Conflict("session connection is not dropped".into())
                })?;
            s.dropped = false;
        }
        let account = self
            .account(session)
            .map_err(|e| ControlError::Conflict(e.to_string()))?;
        self.sink.send(EngineEvent::Connected {
            session: session.to_owned(),
            account,
        });
        Ok(())
    }

    /// The device is unlinked from the phone: the pairing is gone.
    pub fn unlink_from_phone(&self, session: &str) -> Result<(), ControlError> {
        let paired = self
            .account(session)
            .map_err(|e| ControlError::Conflict(e.to_string()))?
            .is_some();
        if !paired {
            return Err(ControlError::Conflict("session is not paired".into()));
        }
        self.halt(session);
        self.forget(session)
            .map_err(|e| ControlError::Conflict(e.to_string()))?;
        self.sink.send(EngineEvent::LoggedOut {
            session: session.to_owned(),
            reason: "device unlinked from the phone".into(),
        });
        Ok(())
    }

    /// Injects an inbound WhatsApp event (`message`, `group.participants`…).
    pub fn inject(&self, session: &str, event: &str, payload: Value) -> Result<(), ControlError> {
        let valid = (1..=64).contains(&event.len())
            && event
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
        if !valid {
            return Err(ControlError::Invalid(format!(
                "event name '{event}' is not valid"
            )));
        }
        if !payload.is_object() {
            return Err(ControlError::Invalid(
                "payload must be a JSON object".into(),
            ));
        }
        if self.running_generation(session).is_none() {
            return Err(ControlError::Conflict("session is not running".into()));
        }
        self.domain(session, event, payload);
        Ok(())
    }

    /// Stops the simulation for a session (no events after this).
    fn halt(&self, session: &str) {
        let mut sims = self.sims.lock().expect("lock");
        if let Some(s) = sims.get_mut(session) {
            s.generation += 1;
            s.running = false;
            s.connected = false;
            s.dropped = false;
            s.qr = None;
            s.pair_code = None;
            if let Some(t) = s.task.take() {
                t.abort();
            }
        }
    }

    fn blocked(&self, session: &str) -> Result<Vec<(String, u64)>, EngineError> {
        let rows = self
            .kv
            .scan(
                &Self::scope(session),
                &ScanRange {
                    prefix: BLOCKED_PREFIX.to_vec(),
                    limit: 1000,
                    ..Default::default()
                },
            )
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        Ok(rows
            .into_iter()
            .map(|(k, v)| {
                let jid = String::from_utf8_lossy(&k[BLOCKED_PREFIX.len()..]).into_owned();
                let at = String::from_utf8_lossy(&v).parse().unwrap_or(0);
                (jid, at)
            })
            .collect())
    }

    /// The world's contact for a JID, or not found.
    fn known(&self, jid: &Jid) -> Result<&world::WorldContact, EngineError> {
        self.world
            .contact(jid)
            .ok_or_else(|| EngineError::NotFound(format!("{jid} is not on WhatsApp")))
    }

    /// Block entries are keyed by LID when the world knows the person.
    fn block_key(&self, jid: &Jid) -> Jid {
        match self.world.contact(jid) {
            Some(c) => Jid::parse(&c.lid).unwrap_or_else(|_| jid.clone()),
            None => jid.to_non_device(),
        }
    }
}

fn blocked_key(jid: &Jid) -> Vec<u8> {
    let mut k = BLOCKED_PREFIX.to_vec();
    k.extend_from_slice(jid.to_non_device().to_string().as_bytes());
    k
}

/// The handle the engine trait needs: `start` spawns tasks holding an `Arc` of the engine.
pub struct Sandbox(pub Arc<SandboxEngine>);

#[async_trait]
impl Engine for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn start(&self, session: &str) -> Result<(), EngineError> {
        let generation = {
            let mut sims = self.0.sims.lock().expect("lock");
            let s = sims.entry(session.to_owned()).or_default();
            if s.running {
                return Ok(());
            }
            s.generation += 1;
            s.running = true;
            s.connected = false;
            s.dropped = false;
            s.generation
        };
        let task = self.0.clone().run(session.to_owned(), generation);
        if let Some(s) = self.0.sims.lock().expect("lock").get_mut(session) {
            s.task = Some(task);
        }
        Ok(())
    }

    async fn stop(&self, session: &str) -> Result<(), EngineError> {
        self.0.halt(session);
        Ok(())
    }

    async fn logout(&self, session: &str) -> Result<(), EngineError> {
        self.0.halt(session);
        self.0.forget(session)?;
        self.0.sims.lock().expect("lock").remove(session);
        Ok(())
    }

    async fn request_pairing_code(
        &self,
        session: &str,
        phone: &str,
    ) -> Result<PairingCode, EngineError> {
        if self.0.account(session)?.is_some() {
            return Err(EngineError::Invalid("session is already paired".into()));
        }
        let mut sims = self.0.sims.lock().expect("lock");
        let s = sims
            .get_mut(session)
            .filter(|s| s.running)
            .ok_or_else(|| EngineError::NotConnected("session is not running".into()))?;
        let digits = digest_number(&["pair", session, phone, &s.generation.to_string()], 8);
        const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTVWXYZ";
        let letters: String = digits
            .bytes()
            .take(4)
            .map(|d| char::from(LETTERS[(d - b'0') as usize * 2 % LETTERS.len()]))
            .collect();
        let code = PairingCode {
            code: format!("{letters}-{}", &digits[4..8]),
            expires_at: now_ms() + self.0.config.code_ttl_ms,
        };
        s.pair_code = Some((code.clone(), phone.to_owned()));
        Ok(code)
    }

    async fn check_phone(&self, session: &str, phone: &str) -> Result<OnWhatsapp, EngineError> {
        self.0.live(session)?;
        let digits = gateway_sdk::jid::parse_phone(phone, true)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        Ok(match self.0.world.by_phone(&digits) {
            Some(c) => OnWhatsapp {
                query: digits,
                is_on_whatsapp: true,
                jid: c.phone_jid(),
                lid: Some(c.lid.clone()),
            },
            None => OnWhatsapp::absent(digits),
        })
    }

    async fn profile_picture(
        &self,
        session: &str,
        jid: &Jid,
    ) -> Result<Option<Picture>, EngineError> {
        self.0.live(session)?;
        let c = self.0.known(jid)?;
        if c.picture_hidden {
            return Ok(None);
        }
        Ok(c.picture.as_ref().map(|p| {
            // Time-limited like WhatsApp's CDN links.
            let expires = now_ms() / 1000 + 3600;
            Picture {
                id: p.id.clone(),
                url: format!("{}?oe={expires:x}", p.url),
                kind: "image".into(),
                direct_path: format!("/v/t61.24694-24/{}", p.id),
            }
        }))
    }

    async fn about(&self, session: &str, jid: &Jid) -> Result<String, EngineError> {
        self.0.live(session)?;
        Ok(self.0.known(jid)?.about.clone())
    }

    async fn block(&self, session: &str, jid: &Jid) -> Result<(), EngineError> {
        self.0.live(session)?;
        let key_jid = self.0.block_key(jid);
        let key = blocked_key(&key_jid);
        let scope = SandboxEngine::scope(session);
        let already = self
            .0
            .kv
            .get(&scope, &key)
            .map_err(|e| EngineError::Failed(e.to_string()))?
            .is_some();
        if !already {
            let at = now_ms().to_string().into_bytes();
            self.0.write(scope, vec![(key, Some(at))]).await?;
            self.0.domain(
                session,
                "blocklist.update",
                json!({"action": "block", "jid": key_jid.to_string()}),
            );
        }
        Ok(())
    }

    async fn unblock(&self, session: &str, jid: &Jid) -> Result<(), EngineError> {
        self.0.live(session)?;
        let key_jid = self.0.block_key(jid);
        let scope = SandboxEngine::scope(session);
        let key = blocked_key(&key_jid);
        // Unblocking someone not blocked changes nothing: no write, no event.
        let blocked = self
            .0
            .kv
            .get(&scope, &key)
            .map_err(|e| EngineError::Failed(e.to_string()))?
            .is_some();
        if blocked {
            self.0.write(scope, vec![(key, None)]).await?;
            self.0.domain(
                session,
                "blocklist.update",
                json!({"action": "unblock", "jid": key_jid.to_string()}),
            );
        }
        Ok(())
    }

    async fn blocklist(&self, session: &str) -> Result<Vec<BlockedContact>, EngineError> {
        self.0.live(session)?;
        Ok(self
            .0
            .blocked(session)?
            .into_iter()
            .map(|(jid, at)| {
                let parsed = Jid::parse(&jid).ok();
                let contact = parsed.as_ref().and_then(|j| self.0.world.contact(j));
                let (jid, lid) = match contact {
                    Some(c) => (
                        c.phone_jid().unwrap_or_else(|| c.lid.clone()),
                        Some(c.lid.clone()),
                    ),
                    None => (
                        jid.clone(),
                        parsed.filter(|j| j.is_lid()).map(|j| j.to_string()),
                    ),
                };
                BlockedContact {
                    jid,
                    lid,
                    blocked_at: (at > 0).then_some(at),
                }
            })
            .collect())
    }

    async fn shutdown(&self) {
        let sessions: Vec<String> = self.0.sims.lock().expect("lock").keys().cloned().collect();
        for s in sessions {
            self.0.halt(&s);
        }
    }
}
