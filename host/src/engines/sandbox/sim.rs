//! The simulated connection of each session: its state (running, connected, dropped,
//! the QR or pair code on show) and the task that drives it — connecting, showing QR
//! codes until a "phone" pairs, then delivering the world as WhatsApp's syncs would.

use super::*;

/// One session's simulated connection.
#[derive(Default)]
pub(super) struct Sim {
    /// Bumped on every start, stop and pairing so stale tasks notice and end.
    pub(super) generation: u64,
    pub(super) running: bool,
    pub(super) connected: bool,
    pub(super) dropped: bool,
    pub(super) qr: Option<PairingCode>,
    pub(super) pair_code: Option<(PairingCode, String)>,
    pub(super) task: Option<tokio::task::JoinHandle<()>>,
}

impl SandboxEngine {
    pub(super) fn is_current(&self, session: &str, generation: u64) -> bool {
        self.sims
            .lock()
            .expect("lock")
            .get(session)
            .is_some_and(|s| s.running && s.generation == generation)
    }

    pub(super) fn run(
        self: Arc<Self>,
        session: String,
        generation: u64,
    ) -> tokio::task::JoinHandle<()> {
        crate::background::spawn(async move {
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
    pub(super) fn pair(
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

    pub(super) fn connect(&self, session: &str, account: Account) {
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
    pub(super) fn sync_world(&self, session: &str) {
        for chunk in self.contact_entries().chunks(SYNC_CHUNK) {
            self.domain(
                session,
                "contacts.upsert",
                json!({"source": "sync", "contacts": chunk}),
            );
        }
        for chunk in self.chat_entries().chunks(SYNC_CHUNK) {
            self.domain(session, "chats.upsert", json!({"chats": chunk}));
        }
        // Group metadata: the session's own copy of the world's groups, as changed
        // since, with the account among the members.
        match self.member_groups(session) {
            Ok(groups) => {
                for g in groups {
                    self.domain(
                        session,
                        "groups.upsert",
                        json!({"groups": [g.upsert_payload()]}),
                    );
                }
            }
            Err(e) => tracing::warn!(session, error = %e, "sandbox groups unavailable"),
        }
    }

    /// The world's contacts as `contacts.upsert` entries.
    pub(super) fn contact_entries(&self) -> Vec<Value> {
        self.world
            .world
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
            .collect()
    }

    /// The account's direct chats as `chats.upsert` entries.
    pub(super) fn chat_entries(&self) -> Vec<Value> {
        self.world
            .world
            .contacts
            .iter()
            .filter(|c| c.dm)
            .map(|c| json!({"jid": c.phone_jid().unwrap_or_else(|| c.lid.clone()), "lid": c.lid}))
            .collect()
    }

    pub(super) fn domain(&self, session: &str, name: &str, payload: Value) {
        self.sink.send(EngineEvent::Domain {
            session: session.to_owned(),
            name: name.to_owned(),
            payload,
        });
    }

    /// One backfill read: takes `backfill_delay_ms`, like a round trip to WhatsApp, and
    /// needs the connection before and after.
    pub(super) async fn reread(&self, session: &str) -> Result<(), EngineError> {
        self.live(session)?;
        tokio::time::sleep(Duration::from_millis(self.config.backfill_delay_ms)).await;
        self.live(session)
    }

    pub(super) fn live(&self, session: &str) -> Result<(), EngineError> {
        let sims = self.sims.lock().expect("lock");
        match sims.get(session) {
            Some(s) if s.connected && !s.dropped => Ok(()),
            Some(s) if s.dropped => Err(EngineError::NotConnected(
                "the sandbox connection was dropped".into(),
            )),
            _ => Err(EngineError::NotConnected("session is not connected".into())),
        }
    }

    pub(super) fn running_generation(&self, session: &str) -> Option<u64> {
        self.sims
            .lock()
            .expect("lock")
            .get(session)
            .filter(|s| s.running)
            .map(|s| s.generation)
    }

    /// Stops the simulation for a session (no events after this).
    pub(super) fn halt(&self, session: &str) {
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
}
