//! `MsgSecretStore`: message secrets (polls, reactions, edits need them to decrypt).
use super::*;

#[async_trait]
impl MsgSecretStore for RedbBackend {
    async fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> Result<usize> {
        let stored = entries.len();
        let mut ops = Vec::with_capacity(stored);
        for e in entries {
            let k = key(
                MSG_SECRET,
                &[e.chat.as_bytes(), e.sender.as_bytes(), e.msg_id.as_bytes()],
            );
            let row = match self.get_json::<SecretRow>(&k)? {
                Some(old) => SecretRow {
                    secret: e.secret.to_vec(),
                    expires_at: merge_msg_secret_expiry(old.expires_at, e.expires_at),
                    message_ts: merge_msg_secret_message_ts(old.message_ts, e.message_ts),
                },
                None => SecretRow {
                    secret: e.secret.to_vec(),
                    expires_at: e.expires_at,
                    message_ts: e.message_ts,
                },
            };
            ops.push((k, Some(json(&row)?)));
        }
        self.write(ops).await?;
        Ok(stored)
    }

    async fn get_msg_secret(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .get_msg_secret_with_ts(chat, sender, msg_id)
            .await?
            .map(|(s, _)| s))
    }

    async fn get_msg_secret_with_ts(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<(Vec<u8>, i64)>> {
        Ok(self
            .get_json::<SecretRow>(&key(
                MSG_SECRET,
                &[chat.as_bytes(), sender.as_bytes(), msg_id.as_bytes()],
            ))?
            .map(|r| (r.secret, r.message_ts)))
    }

    async fn delete_expired_msg_secrets(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.sweep::<SecretRow>(MSG_SECRET, |r| {
            r.expires_at != 0 && r.expires_at <= cutoff_timestamp
        })
        .await
    }
}
