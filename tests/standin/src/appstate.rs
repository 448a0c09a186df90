//! An account's app state (syncd) as its phone keeps it: the sync key the phone shares with
//! every newly linked device, and per-collection patch logs the phone signs with that key,
//! so a fresh companion reaches Connected with the account's push name and learns the
//! names in the phone's address book (`contact` actions).

use std::collections::BTreeMap;
use std::sync::Arc;

use buffa::Message as _;
use wacore::appstate::hash::{HashState, generate_patch_mac};
use wacore::appstate::keys::{ExpandedAppStateKeys, expand_app_state_keys};
use wacore::appstate::processor::process_patch;
use wacore_binary::Node;
use wacore_binary::builder::NodeBuilder;
use waproto::whatsapp::{self as wa, syncd_mutation::SyncdOperation};

use crate::error::{Result, StandInError};

/// The collections a companion syncs, in the order WhatsApp lists them.
pub(crate) const COLLECTIONS: [&str; 5] = [
    "critical_block",
    "critical_unblock_low",
    "regular_low",
    "regular_high",
    "regular",
];

struct CollectionLog {
    /// The ltHash after the last patch, exactly as a client that applied them holds it.
    state: HashState,
    patches: Vec<wa::SyncdPatch>,
}

impl CollectionLog {
    /// The latest value MAC of every index, from the patches in the log.
    fn value_macs(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut macs = BTreeMap::new();
        for mutation in self.patches.iter().flat_map(|p| p.mutations.iter()) {
            let Some(record) = mutation.record.as_option() else {
                continue;
            };
            let Some(index) = record.index.as_option().and_then(|i| i.blob.clone()) else {
                continue;
            };
            let removed = mutation
                .operation
                .is_some_and(|op| op == SyncdOperation::REMOVE);
            match record.value.as_option().and_then(|v| v.blob.as_deref()) {
                Some(value) if value.len() >= 32 && !removed => {
                    macs.insert(index, value[value.len() - 32..].to_vec());
                }
                _ => {
                    macs.remove(&index);
                }
            }
        }
        macs
    }

    fn patches_after(&self, version: u64) -> Vec<Node> {
        self.patches
            .iter()
            .filter(|p| p.version.version.unwrap_or(0) > version)
            .map(|p| NodeBuilder::new("patch").bytes(p.encode_to_vec()).build())
            .collect()
    }
}

/// Why a device's patch was not applied.
#[derive(Debug)]
pub(crate) enum PatchRejection {
    /// The device built it on an old version; it must apply the newer patches first.
    Conflict,
    /// It does not verify or names an unknown collection or key.
    Invalid(String),
}

/// One account's syncd key and collections.
pub(crate) struct AccountAppState {
    key_id: Vec<u8>,
    key_data: [u8; 32],
    key_created: i64,
    collections: BTreeMap<&'static str, CollectionLog>,
    /// The push name last written to `critical_block`.
    push_name: Option<String>,
}

impl AccountAppState {
    pub(crate) fn new() -> Self {
        let mut key_id = vec![0, 0];
        key_id.extend(rand::random::<[u8; 4]>());
        Self {
            key_id,
            key_data: rand::random(),
            key_created: crate::server::now() * 1000,
            collections: COLLECTIONS
                .iter()
                .map(|name| {
                    (
                        *name,
                        CollectionLog {
                            state: HashState::default(),
                            patches: Vec::new(),
                        },
                    )
                })
                .collect(),
            push_name: None,
        }
    }

    fn keys(&self) -> ExpandedAppStateKeys {
        expand_app_state_keys(&self.key_data)
    }

    /// The protocol message a primary sends a new companion: `APP_STATE_SYNC_KEY_SHARE`.
    pub(crate) fn key_share(&self) -> wa::Message {
        let key = wa::message::AppStateSyncKey {
            key_id: buffa::MessageField::some(wa::message::AppStateSyncKeyId {
                key_id: Some(self.key_id.clone()),
            }),
            key_data: buffa::MessageField::some(wa::message::AppStateSyncKeyData {
                key_data: Some(self.key_data.to_vec()),
                fingerprint: buffa::MessageField::some(wa::message::AppStateSyncKeyFingerprint {
                    raw_id: Some(u32::from_be_bytes(
                        self.key_id[2..6].try_into().expect("key ids are 6 bytes"),
                    )),
                    current_index: Some(0),
                    device_indexes: vec![0],
                }),
                timestamp: Some(self.key_created),
            }),
        };
        wa::Message {
            protocol_message: buffa::MessageField::some(wa::message::ProtocolMessage {
                r#type: Some(wa::message::protocol_message::Type::APP_STATE_SYNC_KEY_SHARE),
                app_state_sync_key_share: buffa::MessageField::some(
                    wa::message::AppStateSyncKeyShare { keys: vec![key] },
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Record the account's push name (`setting_pushName` in `critical_block`).
    pub(crate) fn set_push_name(&mut self, name: &str) -> Result<()> {
        if self.push_name.as_deref() == Some(name) {
            return Ok(());
        }
        let value = wa::SyncActionValue {
            push_name_setting: buffa::MessageField::some(wa::sync_action_value::PushNameSetting {
                name: Some(name.to_owned()),
            }),
            timestamp: Some(crate::server::now() * 1000),
            ..Default::default()
        };
        let schema = wacore::appstate::schemas::SETTING_PUSH_NAME;
        let index = format!("[\"{}\"]", schema.name);
        self.append_patch(
            "critical_block",
            SyncdOperation::SET,
            index.as_bytes(),
            &value,
            schema.version as i32,
        )?;
        self.push_name = Some(name.to_owned());
        Ok(())
    }

    /// Record a contact saved in the phone's address book: a `contact` action (schema
    /// `Contact`, collection `critical_unblock_low`) indexed by the contact's phone-number
    /// JID, carrying the names and the contact's LID as WhatsApp's primary writes it.
    pub(crate) fn save_contact(
        &mut self,
        pn: &str,
        lid: Option<&str>,
        full_name: &str,
        first_name: Option<&str>,
    ) -> Result<()> {
        let schema = wacore::appstate::schemas::CONTACT;
        let value = wa::SyncActionValue {
            contact_action: buffa::MessageField::some(wa::sync_action_value::ContactAction {
                full_name: Some(full_name.to_owned()),
                first_name: first_name.map(str::to_owned),
                lid_jid: lid.map(|lid| wacore_binary::Jid::lid(lid).to_string()),
                save_on_primary_addressbook: Some(true),
                ..Default::default()
            }),
            timestamp: Some(crate::server::now() * 1000),
            ..Default::default()
        };
        let index = format!("[\"{}\",\"{}\"]", schema.name, wacore_binary::Jid::pn(pn));
        self.append_patch(
            "critical_unblock_low",
            SyncdOperation::SET,
            index.as_bytes(),
            &value,
            schema.version as i32,
        )
    }

    /// The version the phone's log of `collection` is at.
    pub(crate) fn version(&self, collection: &str) -> u64 {
        self.collections
            .get(collection)
            .map(|log| log.state.version)
            .unwrap_or_default()
    }

    /// Encrypt one mutation, then sign a patch over it the way the primary does: the
    /// ltHash moves exactly as the client's `process_patch` will move it, and the
    /// snapshot and patch MACs are taken over the result.
    fn append_patch(
        &mut self,
        collection: &'static str,
        operation: SyncdOperation,
        index: &[u8],
        value: &wa::SyncActionValue,
        action_version: i32,
    ) -> Result<()> {
        let keys = Arc::new(self.keys());
        let key_id = self.key_id.clone();
        let iv: [u8; 16] = rand::random();
        let (mutation, _value_mac) = wacore::appstate::encode::encode_record(
            operation,
            index,
            value,
            &keys,
            &key_id,
            &iv,
            action_version,
        );
        let log = self
            .collections
            .get_mut(collection)
            .ok_or_else(|| StandInError::protocol(format!("unknown collection {collection}")))?;
        let version = log.state.version + 1;
        let mut patch = wa::SyncdPatch {
            version: buffa::MessageField::some(wa::SyncdVersion {
                version: Some(version),
            }),
            mutations: vec![mutation],
            key_id: buffa::MessageField::some(wa::KeyId {
                id: Some(key_id.clone()),
            }),
            ..Default::default()
        };
        let previous = log.value_macs();
        let mut next_state = log.state.clone();
        let keys_for_patch = keys.clone();
        process_patch(
            &patch,
            &mut next_state,
            move |_| Ok(keys_for_patch.clone()),
            |index_mac| Ok(previous.get(index_mac).cloned()),
            false,
            collection,
        )
        .map_err(|e| StandInError::protocol(format!("signing {collection} patch: {e}")))?;
        patch.snapshot_mac = Some(next_state.generate_snapshot_mac(collection, &keys.snapshot_mac));
        patch.patch_mac = Some(generate_patch_mac(
            &patch,
            collection,
            &keys.patch_mac,
            version,
        ));
        log.state = next_state;
        log.patches.push(patch);
        Ok(())
    }

    /// A device sent a patch built on `base_version`. The phone holds the key, so it checks
    /// the patch like any device would (MACs, ltHash) before it is stored for the others.
    /// Returns the decoded mutations.
    pub(crate) fn accept_patch(
        &mut self,
        collection: &str,
        base_version: u64,
        patch: wa::SyncdPatch,
    ) -> std::result::Result<Vec<wacore::appstate::Mutation>, PatchRejection> {
        let keys = Arc::new(self.keys());
        if patch.key_id.id.as_deref() != Some(self.key_id.as_slice()) {
            return Err(PatchRejection::Invalid("patch uses an unknown key".into()));
        }
        let log = self
            .collections
            .get_mut(collection)
            .ok_or_else(|| PatchRejection::Invalid(format!("unknown collection {collection}")))?;
        if base_version != log.state.version {
            return Err(PatchRejection::Conflict);
        }
        // Devices leave the version out; the server stamps it (base + 1), which is also
        // what the device's patch MAC covers.
        let version = patch.version.version.unwrap_or(base_version + 1);
        if version != base_version + 1 {
            return Err(PatchRejection::Invalid(
                "patch version is not base + 1".into(),
            ));
        }
        let mut patch = patch;
        patch.version = buffa::MessageField::some(wa::SyncdVersion {
            version: Some(version),
        });
        let previous = log.value_macs();
        let mut next_state = log.state.clone();
        let result = process_patch(
            &patch,
            &mut next_state,
            move |_| Ok(keys.clone()),
            |index_mac| Ok(previous.get(index_mac).cloned()),
            true,
            collection,
        )
        .map_err(|e| PatchRejection::Invalid(e.to_string()))?;
        log.state = next_state;
        log.patches.push(patch);
        Ok(result.mutations)
    }

    /// The answer to a patch: the new version, or the error and what the device missed.
    pub(crate) fn patch_answer(
        &self,
        collection: &str,
        rejection: Option<&PatchRejection>,
    ) -> Node {
        let Some(log) = self.collections.get(collection) else {
            return Self::collection_error(collection, "404", "item-not-found", Vec::new());
        };
        match rejection {
            None => NodeBuilder::new("collection")
                .attr("name", collection.to_owned())
                .attr("version", log.state.version.to_string())
                .build(),
            Some(PatchRejection::Conflict) => Self::collection_error(
                collection,
                "409",
                "conflict",
                vec![
                    NodeBuilder::new("patches")
                        .children(log.patches_after(0))
                        .build(),
                ],
            ),
            Some(PatchRejection::Invalid(reason)) => {
                log::warn!("rejecting a {collection} patch: {reason}");
                Self::collection_error(collection, "400", "bad-request", Vec::new())
            }
        }
    }

    fn collection_error(collection: &str, code: &str, text: &str, mut children: Vec<Node>) -> Node {
        children.insert(
            0,
            NodeBuilder::new("error")
                .attr("code", code.to_owned())
                .attr("text", text.to_owned())
                .build(),
        );
        NodeBuilder::new("collection")
            .attr("name", collection.to_owned())
            .attr("type", "error")
            .children(children)
            .build()
    }

    /// The `<collection>` answer for a client at `version` (0 = nothing yet): every patch
    /// after it, inline.
    pub(crate) fn collection_node(&self, name: &str, client_version: u64) -> Node {
        let Some(log) = self.collections.get(name) else {
            return Self::collection_error(name, "404", "item-not-found", Vec::new());
        };
        let patches = log.patches_after(client_version);
        let mut collection = NodeBuilder::new("collection")
            .attr("name", name.to_owned())
            .attr("version", log.state.version.to_string());
        if !patches.is_empty() {
            collection =
                collection.children([NodeBuilder::new("patches").children(patches).build()]);
        }
        collection.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_apply(share: &wa::Message, name: &str, node: &Node) -> Vec<String> {
        let key = &share
            .protocol_message
            .as_option()
            .unwrap()
            .app_state_sync_key_share
            .as_option()
            .unwrap()
            .keys[0];
        let key_data = key.key_data.as_option().unwrap().key_data.clone().unwrap();
        let keys = Arc::new(expand_app_state_keys(&key_data));
        let sync = NodeBuilder::new("sync").children([node.clone()]).build();
        let lists = wacore::appstate::patch_decode::parse_patch_lists(&sync).unwrap();
        assert_eq!(lists.len(), 1);
        let mut state = HashState::default();
        let mut names = Vec::new();
        for patch in &lists[0].patches {
            let keys = keys.clone();
            let result = process_patch(
                patch,
                &mut state,
                move |_| Ok(keys.clone()),
                |_| Ok(None),
                true,
                name,
            )
            .expect("the client's validating patch processor accepts the patch");
            for mutation in result.mutations {
                let setting = mutation.action_value.unwrap();
                names.push(
                    setting
                        .push_name_setting
                        .as_option()
                        .unwrap()
                        .name
                        .clone()
                        .unwrap(),
                );
            }
        }
        names
    }

    #[test]
    fn a_patch_on_a_stale_base_is_answered_with_a_conflict_and_the_missed_patches() {
        let mut app_state = AccountAppState::new();
        app_state.set_push_name("Alice").unwrap();
        let stale = wa::SyncdPatch {
            key_id: buffa::MessageField::some(wa::KeyId {
                id: Some(app_state.key_id.clone()),
            }),
            ..Default::default()
        };
        let rejection = app_state
            .accept_patch("critical_block", 0, stale)
            .unwrap_err();
        assert!(matches!(rejection, PatchRejection::Conflict));
        let answer = app_state.patch_answer("critical_block", Some(&rejection));
        let sync = NodeBuilder::new("sync").children([answer]).build();
        let lists = wacore::appstate::patch_decode::parse_patch_lists(&sync).unwrap();
        assert!(matches!(
            lists[0].error,
            Some(wacore::appstate::patch_decode::CollectionSyncError::Conflict { .. })
        ));
        assert_eq!(lists[0].patches.len(), 1);
        let foreign_key = wa::SyncdPatch::default();
        assert!(matches!(
            app_state.accept_patch("critical_block", 1, foreign_key),
            Err(PatchRejection::Invalid(_))
        ));
    }

    #[test]
    fn saved_contacts_reach_a_syncing_client_as_contact_actions() {
        let mut app_state = AccountAppState::new();
        app_state
            .save_contact(
                "15550001111",
                Some("200000000000001"),
                "Bob Builder",
                Some("Bob"),
            )
            .unwrap();
        app_state
            .save_contact(
                "15550001111",
                Some("200000000000001"),
                "Robert Builder",
                None,
            )
            .unwrap();
        app_state
            .save_contact("15550003333", None, "Carol", None)
            .unwrap();
        assert_eq!(app_state.version("critical_unblock_low"), 3);
        let share = app_state.key_share();
        let key = &share
            .protocol_message
            .as_option()
            .unwrap()
            .app_state_sync_key_share
            .as_option()
            .unwrap()
            .keys[0];
        let keys = Arc::new(expand_app_state_keys(
            key.key_data
                .as_option()
                .unwrap()
                .key_data
                .as_deref()
                .unwrap(),
        ));
        let node = app_state.collection_node("critical_unblock_low", 0);
        let sync = NodeBuilder::new("sync").children([node]).build();
        let lists = wacore::appstate::patch_decode::parse_patch_lists(&sync).unwrap();
        let mut state = HashState::default();
        let mut macs: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut seen = Vec::new();
        for patch in &lists[0].patches {
            let keys = keys.clone();
            let known = macs.clone();
            let result = process_patch(
                patch,
                &mut state,
                move |_| Ok(keys.clone()),
                |index_mac| Ok(known.get(index_mac).cloned()),
                true,
                "critical_unblock_low",
            )
            .expect("the client's validating patch processor accepts contact patches");
            for added in result.added_macs {
                macs.insert(added.index_mac, added.value_mac);
            }
            for mutation in result.mutations {
                let action = mutation
                    .action_value
                    .unwrap()
                    .contact_action
                    .as_option()
                    .cloned()
                    .unwrap();
                seen.push((
                    mutation.index.clone(),
                    action.full_name,
                    action.first_name,
                    action.lid_jid,
                ));
            }
        }
        assert_eq!(
            seen[0],
            (
                vec![
                    "contact".to_owned(),
                    "15550001111@s.whatsapp.net".to_owned()
                ],
                Some("Bob Builder".to_owned()),
                Some("Bob".to_owned()),
                Some("200000000000001@lid".to_owned()),
            )
        );
        assert_eq!(seen[1].1.as_deref(), Some("Robert Builder"));
        assert_eq!(seen[2].3, None);
        assert_eq!(state.version, 3);
    }

    #[test]
    fn push_name_patch_passes_the_clients_mac_validation() {
        let mut app_state = AccountAppState::new();
        app_state.set_push_name("Alice Phone").unwrap();
        let share = app_state.key_share();
        let node = app_state.collection_node("critical_block", 0);
        assert_eq!(
            client_apply(&share, "critical_block", &node),
            vec!["Alice Phone"]
        );
        let empty = app_state.collection_node("critical_unblock_low", 0);
        assert!(empty.get_optional_child("patches").is_none());
        let up_to_date = app_state.collection_node("critical_block", 1);
        assert!(up_to_date.get_optional_child("patches").is_none());
    }
}
