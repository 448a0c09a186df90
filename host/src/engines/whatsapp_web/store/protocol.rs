//! `ProtocolStore`: the protocol's bookkeeping — LID↔phone mappings, device lists,
//! group metadata, trusted-contact tokens, sent messages kept for retries, pending inbound
//! messages — and the time-based sweeps over them.
use super::*;

#[async_trait]
impl ProtocolStore for RedbBackend {
    async fn get_sender_key_devices(&self, group_jid: &str) -> Result<Vec<(String, bool)>> {
        Ok(self
            .scan(&prefix_of(SKD, group_jid.as_bytes()))?
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into_owned(),
                    v.first() == Some(&1),
                )
            })
            .collect())
    }

    async fn set_sender_key_status(&self, group_jid: &str, entries: &[(&str, bool)]) -> Result<()> {
        self.write(
            entries
                .iter()
                .map(|(d, has)| {
                    (
                        key(SKD, &[group_jid.as_bytes(), d.as_bytes()]),
                        Some(vec![u8::from(*has)]),
                    )
                })
                .collect(),
        )
        .await
    }

    async fn clear_sender_key_devices(&self, group_jid: &str) -> Result<()> {
        self.delete_prefix(&prefix_of(SKD, group_jid.as_bytes()))
            .await
    }

    async fn delete_sender_key_device_rows(&self, device_jids: &[&str]) -> Result<()> {
        if device_jids.is_empty() {
            return Ok(());
        }
        let p = prefix(SKD);
        let ops = self
            .scan(&p)?
            .into_iter()
            .filter(|(k, _)| {
                k.split(|b| *b == 0)
                    .nth(1)
                    .is_some_and(|d| device_jids.iter().any(|j| j.as_bytes() == d))
            })
            .map(|(k, _)| ([p.as_slice(), &k].concat(), None))
            .collect();
        self.write(ops).await
    }

    async fn clear_all_sender_key_devices(&self) -> Result<()> {
        self.delete_prefix(&prefix(SKD)).await
    }

    async fn get_lid_mapping(&self, lid: &str) -> Result<Option<LidPnMappingEntry>> {
        self.get_json(&key(LID, &[lid.as_bytes()]))
    }

    async fn get_pn_mapping(&self, phone: &str) -> Result<Option<LidPnMappingEntry>> {
        match self.get(&key(PN, &[phone.as_bytes()]))? {
            Some(lid) => self.get_json(&key(LID, &[&lid])),
            None => Ok(None),
        }
    }

    async fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> Result<()> {
        self.put_lid_mappings(std::slice::from_ref(entry)).await
    }

    async fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> Result<()> {
        let mut ops = Vec::with_capacity(entries.len() * 3);
        for e in entries {
            // Drop the stale reverse entry when the LID moved to another number.
            if let Some(old) = self.get_json::<LidPnMappingEntry>(&key(LID, &[e.lid.as_bytes()]))?
                && old.phone_number != e.phone_number
            {
                ops.push((key(PN, &[old.phone_number.as_bytes()]), None));
            }
            ops.push((
                key(PN, &[e.phone_number.as_bytes()]),
                Some(e.lid.as_bytes().to_vec()),
            ));
            ops.push((key(LID, &[e.lid.as_bytes()]), Some(json(e)?)));
        }
        self.write(ops).await
    }

    async fn get_all_lid_mappings(&self) -> Result<Vec<LidPnMappingEntry>> {
        self.scan(&prefix(LID))?
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(ser_err))
            .collect()
    }

    async fn save_base_key(&self, address: &str, message_id: &str, base_key: &[u8]) -> Result<()> {
        self.put(
            key(BASE_KEY, &[address.as_bytes(), message_id.as_bytes()]),
            base_key.to_vec(),
        )
        .await
    }

    async fn has_same_base_key(
        &self,
        address: &str,
        message_id: &str,
        current_base_key: &[u8],
    ) -> Result<bool> {
        Ok(self
            .get(&key(BASE_KEY, &[address.as_bytes(), message_id.as_bytes()]))?
            .is_some_and(|stored| stored == current_base_key))
    }

    async fn delete_base_key(&self, address: &str, message_id: &str) -> Result<()> {
        self.del(key(BASE_KEY, &[address.as_bytes(), message_id.as_bytes()]))
            .await
    }

    async fn update_device_list(&self, record: DeviceListRecord) -> Result<()> {
        self.put(key(DEVICES, &[record.user.as_bytes()]), json(&record)?)
            .await
    }

    async fn get_devices(&self, user: &str) -> Result<Option<DeviceListRecord>> {
        self.get_json(&key(DEVICES, &[user.as_bytes()]))
    }

    async fn delete_devices(&self, user: &str) -> Result<()> {
        self.del(key(DEVICES, &[user.as_bytes()])).await
    }

    async fn get_group_metadata(&self, group_jid: &str) -> Result<Option<Vec<u8>>> {
        self.get(&key(GROUP_META, &[group_jid.as_bytes()]))
    }

    async fn put_group_metadata(&self, group_jid: &str, blob: &[u8]) -> Result<()> {
        self.put(key(GROUP_META, &[group_jid.as_bytes()]), blob.to_vec())
            .await
    }

    async fn delete_group_metadata(&self, group_jid: &str) -> Result<()> {
        self.del(key(GROUP_META, &[group_jid.as_bytes()])).await
    }

    async fn get_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>> {
        self.get_json(&key(TC_TOKEN, &[jid.as_bytes()]))
    }

    async fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        self.put(key(TC_TOKEN, &[jid.as_bytes()]), json(entry)?)
            .await
    }

    async fn delete_tc_token(&self, jid: &str) -> Result<()> {
        self.del(key(TC_TOKEN, &[jid.as_bytes()])).await
    }

    async fn get_all_tc_token_jids(&self) -> Result<Vec<String>> {
        Ok(self
            .scan(&prefix(TC_TOKEN))?
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
            .collect())
    }

    async fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> Result<u32> {
        let p = prefix(TC_TOKEN);
        let mut ops = Vec::new();
        for (k, v) in self.scan(&p)? {
            let entry: TcTokenEntry = serde_json::from_slice(&v).map_err(ser_err)?;
            let token_live = !entry.token.is_empty() && entry.token_timestamp >= token_cutoff;
            let sender_live = entry.sender_timestamp.is_some_and(|ts| ts >= sender_cutoff);
            if !(token_live || sender_live) {
                ops.push(([p.as_slice(), &k].concat(), None));
            }
        }
        let n = ops.len() as u32;
        self.write(ops).await?;
        Ok(n)
    }

    async fn touch_tc_token_sender_timestamp(
        &self,
        jid: &str,
        sender_timestamp: i64,
    ) -> Result<()> {
        let entry = match self.get_tc_token(jid).await? {
            Some(mut e) => {
                e.sender_timestamp = Some(
                    e.sender_timestamp
                        .map_or(sender_timestamp, |t| t.max(sender_timestamp)),
                );
                e
            }
            None => TcTokenEntry {
                token: Vec::new(),
                token_timestamp: sender_timestamp,
                sender_timestamp: Some(sender_timestamp),
            },
        };
        self.put_tc_token(jid, &entry).await
    }

    async fn store_received_tc_token(
        &self,
        jid: &str,
        token: &[u8],
        token_timestamp: i64,
    ) -> Result<()> {
        let entry = match self.get_tc_token(jid).await? {
            Some(mut e) => {
                // Newer wins: a stale write must not clobber a fresher token.
                if e.token.is_empty() || token_timestamp >= e.token_timestamp {
                    e.token = token.to_vec();
                    e.token_timestamp = token_timestamp;
                }
                e
            }
            None => TcTokenEntry {
                token: token.to_vec(),
                token_timestamp,
                sender_timestamp: None,
            },
        };
        self.put_tc_token(jid, &entry).await
    }

    async fn store_sent_message(
        &self,
        chat_jid: &str,
        message_id: &str,
        payload: &[u8],
    ) -> Result<()> {
        let row = Stamped {
            at: now(),
            data: payload.to_vec(),
        };
        self.put(
            key(SENT, &[chat_jid.as_bytes(), message_id.as_bytes()]),
            json(&row)?,
        )
        .await
    }

    async fn take_sent_message(&self, chat_jid: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
        let k = key(SENT, &[chat_jid.as_bytes(), message_id.as_bytes()]);
        let Some(row) = self.get_json::<Stamped>(&k)? else {
            return Ok(None);
        };
        self.del(k).await?;
        Ok(Some(row.data))
    }

    async fn delete_expired_sent_messages(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.sweep::<Stamped>(SENT, |r| r.at < cutoff_timestamp)
            .await
    }

    async fn store_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
        message: &[u8],
    ) -> Result<()> {
        let row = Stamped {
            at: now(),
            data: message.to_vec(),
        };
        self.put(
            key(
                PENDING,
                &[chat.as_bytes(), sender.as_bytes(), id.as_bytes()],
            ),
            json(&row)?,
        )
        .await
    }

    async fn get_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .get_json::<Stamped>(&key(
                PENDING,
                &[chat.as_bytes(), sender.as_bytes(), id.as_bytes()],
            ))?
            .map(|r| r.data))
    }

    async fn delete_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<()> {
        self.del(key(
            PENDING,
            &[chat.as_bytes(), sender.as_bytes(), id.as_bytes()],
        ))
        .await
    }

    async fn delete_expired_pending_inbound(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.sweep::<Stamped>(PENDING, |r| r.at < cutoff_timestamp)
            .await
    }
}

impl RedbBackend {
    /// Deletes the rows of a namespace whose decoded value matches `expired`.
    pub(super) async fn sweep<T: serde::de::DeserializeOwned>(
        &self,
        ns: &str,
        expired: impl Fn(&T) -> bool,
    ) -> Result<u32> {
        let p = prefix(ns);
        let mut ops = Vec::new();
        for (k, v) in self.scan(&p)? {
            let row: T = serde_json::from_slice(&v).map_err(ser_err)?;
            if expired(&row) {
                ops.push(([p.as_slice(), &k].concat(), None));
            }
        }
        let n = ops.len() as u32;
        self.write(ops).await?;
        Ok(n)
    }
}
