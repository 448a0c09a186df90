//! The control API of the sandbox (`/sandbox/sessions/{id}/…` on the admin listener):
//! what a simulated phone or network does — scan, enter a pair code, drop and restore the
//! connection, unlink the device, inject inbound events.

use super::*;

impl SandboxEngine {
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
    pub fn inject(
        &self,
        session: &str,
        event: &str,
        mut payload: Value,
    ) -> Result<(), ControlError> {
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
        if event == "message" {
            self.keep_injected_media(session, &mut payload)?;
        }
        self.sink
            .try_send(EngineEvent::Domain {
                session: session.to_owned(),
                name: event.to_owned(),
                payload,
            })
            .map_err(|_| {
                ControlError::Busy("the session's event queue is full; retry shortly".into())
            })
    }
}
