//! The [`Engine`] implementation: lifecycle calls start and stop the simulation; live
//! calls answer from the world file and the session's stored block list.

use super::*;
use crate::engines::{
    ChatSettings, ChatSnapshot, ChatState, GroupInfo, GroupSetting, JoinRequest, Joined, MediaBlob,
    MessageRef, OutgoingMessage, ParticipantAction, ParticipantResult, SendError, SentAck,
};

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
        if jid.is_group() {
            return self.0.group_picture(session, jid);
        }
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

    async fn send_message(
        &self,
        session: &str,
        message: &OutgoingMessage,
    ) -> Result<SentAck, SendError> {
        self.0.send(session, message).await
    }

    async fn send_chat_state(
        &self,
        session: &str,
        _chat: &Jid,
        _state: ChatState,
    ) -> Result<(), EngineError> {
        self.0.live(session)
    }

    async fn mark_read(
        &self,
        session: &str,
        _chat: &Jid,
        _messages: &[MessageRef],
    ) -> Result<(), EngineError> {
        self.0.live(session)
    }

    async fn apply_chat_settings(
        &self,
        session: &str,
        chat: &Jid,
        settings: ChatSettings,
    ) -> Result<(), EngineError> {
        self.0.live(session)?;
        self.0.save_chat_settings(session, chat, settings).await
    }

    async fn delete_chat(&self, session: &str, chat: &Jid) -> Result<(), EngineError> {
        self.0.live(session)?;
        self.0.forget_chat(session, chat).await
    }

    async fn download_media(
        &self,
        session: &str,
        message: &MessageRef,
    ) -> Result<MediaBlob, EngineError> {
        self.0.live(session)?;
        self.0.media_blob(session, message)
    }

    async fn group_metadata(&self, session: &str, group: &Jid) -> Result<GroupInfo, EngineError> {
        self.0.group_metadata(session, group).await
    }

    async fn invite_info(&self, session: &str, code: &str) -> Result<GroupInfo, EngineError> {
        self.0.invite_info(session, code).await
    }

    async fn create_group(
        &self,
        session: &str,
        subject: &str,
        participants: &[Jid],
    ) -> Result<GroupInfo, EngineError> {
        self.0.create_group(session, subject, participants).await
    }

    async fn set_group_subject(
        &self,
        session: &str,
        group: &Jid,
        subject: &str,
    ) -> Result<(), EngineError> {
        self.0.set_group_subject(session, group, subject).await
    }

    async fn set_group_description(
        &self,
        session: &str,
        group: &Jid,
        description: Option<&str>,
    ) -> Result<(), EngineError> {
        self.0
            .set_group_description(session, group, description)
            .await
    }

    async fn set_group_setting(
        &self,
        session: &str,
        group: &Jid,
        setting: GroupSetting,
        on: bool,
    ) -> Result<(), EngineError> {
        self.0.set_group_setting(session, group, setting, on).await
    }

    async fn update_group_participants(
        &self,
        session: &str,
        group: &Jid,
        action: ParticipantAction,
        participants: &[Jid],
    ) -> Result<Vec<ParticipantResult>, EngineError> {
        self.0
            .update_group_participants(session, group, action, participants)
            .await
    }

    async fn group_join_requests(
        &self,
        session: &str,
        group: &Jid,
    ) -> Result<Vec<JoinRequest>, EngineError> {
        self.0.group_join_requests(session, group).await
    }

    async fn group_invite_code(
        &self,
        session: &str,
        group: &Jid,
        reset: bool,
    ) -> Result<String, EngineError> {
        self.0.group_invite_code(session, group, reset).await
    }

    async fn join_group(&self, session: &str, code: &str) -> Result<Joined, EngineError> {
        self.0.join_group(session, code).await
    }

    async fn leave_group(&self, session: &str, group: &Jid) -> Result<(), EngineError> {
        self.0.leave_group(session, group).await
    }

    async fn set_group_picture(
        &self,
        session: &str,
        group: &Jid,
        jpeg: Option<Vec<u8>>,
    ) -> Result<Option<String>, EngineError> {
        self.0.set_group_picture(session, group, jpeg).await
    }

    async fn backfill_contacts(&self, session: &str) -> Result<Vec<Value>, EngineError> {
        self.0.reread(session).await?;
        Ok(self.0.contact_entries())
    }

    async fn backfill_groups(&self, session: &str) -> Result<Vec<GroupInfo>, EngineError> {
        self.0.reread(session).await?;
        Ok(self
            .0
            .member_groups(session)?
            .iter()
            .map(|g| g.info())
            .collect())
    }

    async fn backfill_chats(&self, session: &str) -> Result<Vec<ChatSnapshot>, EngineError> {
        self.0.reread(session).await?;
        self.0.chat_snapshots(session)
    }

    async fn shutdown(&self) {
        let sessions: Vec<String> = self.0.sims.lock().expect("lock").keys().cloned().collect();
        for s in sessions {
            self.0.halt(&s);
        }
    }
}
