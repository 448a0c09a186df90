//! Linking a new companion device, with the stand-in playing the user's phone: pair-device
//! refs for the QR, the QR scan, the pair-code exchange (`companion_hello` /
//! `primary_hello` / `companion_finish`), the ADV device identity the phone signs, and the
//! 515 restart once the device counter-signed it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use buffa::Message as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use wacore::pair_code::PairCodeUtils;
use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node, SERVER_JID};
use wacore_libsignal::protocol::{IdentityKeyPair, KeyPair, PublicKey};
use waproto::whatsapp::{self as wa, ADVEncryptionType};

use crate::connection::{Role, Session};
use crate::error::{Result, StandInError};
use crate::noise::Established;
use crate::registry::{
    Companion, CompanionKeys, Connection, DeviceAddress, InFlightPairing, PairCodeRequest,
    PendingPairing,
};
use crate::server::{Shared, now};
use crate::signal::PublicBundle;
use crate::stanza::{self, attr, child_bytes};

/// How many QR refs a pairing connection gets (the client rotates through them).
const PAIRING_REFS: usize = 6;
/// How long the phone waits for the device to counter-sign its identity.
const PAIRING_TIMEOUT: Duration = Duration::from_secs(30);
/// ADV prefix of the account signature over a companion's identity.
const ADV_PREFIX_ACCOUNT_SIGNATURE: &[u8] = &[6, 0];
/// The primary's platform as pair-success reports it.
const PRIMARY_PLATFORM: &str = "android";

/// The four fields of a linking QR code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QrCode {
    pub(crate) pairing_ref: String,
    pub(crate) noise_key: [u8; 32],
    pub(crate) identity_key: [u8; 32],
    pub(crate) adv_secret: [u8; 32],
}

impl QrCode {
    /// Parse `ref,noise,identity,adv,client_type` (the client's `PairUtils::make_qr_data`).
    pub(crate) fn parse(qr: &str) -> Result<Self> {
        let parts: Vec<&str> = qr.split(',').collect();
        if parts.len() < 4 {
            return Err(StandInError::InvalidQrCode(format!(
                "{} fields",
                parts.len()
            )));
        }
        let key = |field: &str, name: &str| -> Result<[u8; 32]> {
            BASE64_STANDARD
                .decode(field)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| {
                    StandInError::InvalidQrCode(format!("{name} is not 32 base64 bytes"))
                })
        };
        Ok(Self {
            pairing_ref: parts[0].to_owned(),
            noise_key: key(parts[1], "noise key")?,
            identity_key: key(parts[2], "identity key")?,
            adv_secret: key(parts[3], "adv secret")?,
        })
    }
}

/// A registering connection: remember its keys and show it QR refs.
pub(crate) fn begin(
    shared: &Arc<Shared>,
    connection: &Connection,
    established: &Established,
) -> Result<Role> {
    let registration = established
        .payload
        .device_pairing_data
        .as_option()
        .ok_or_else(|| {
            StandInError::protocol("registration payload without device_pairing_data")
        })?;
    let bytes32 = |field: &Option<Vec<u8>>, name: &str| -> Result<[u8; 32]> {
        field
            .as_deref()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| StandInError::protocol(format!("registration {name} is not 32 bytes")))
    };
    let be_uint = |field: &Option<Vec<u8>>| -> u32 {
        field
            .as_deref()
            .unwrap_or_default()
            .iter()
            .fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
    };
    let keys = CompanionKeys {
        bundle: PublicBundle {
            registration_id: be_uint(&registration.e_regid),
            identity: bytes32(&registration.e_ident, "identity")?,
            signed_pre_key_id: be_uint(&registration.e_skey_id),
            signed_pre_key: bytes32(&registration.e_skey_val, "signed pre-key")?,
            signed_pre_key_signature: registration.e_skey_sig.clone().unwrap_or_default(),
            one_time_pre_keys: Vec::new(),
        },
    };
    let platform = registration
        .device_props
        .as_deref()
        .and_then(|bytes| wa::DeviceProps::decode_from_slice(bytes).ok())
        .and_then(|props| props.os)
        .unwrap_or_else(|| "unknown".to_owned());
    let refs: Vec<String> = (0..PAIRING_REFS)
        .map(|_| format!("2@{}", BASE64_STANDARD.encode(rand::random::<[u8; 24]>())))
        .collect();
    let iq_id = shared.stanza_id();
    let pair_device = stanza::server_iq(
        &iq_id,
        "set",
        Some("md"),
        vec![
            NodeBuilder::new("pair-device")
                .children(
                    refs.iter()
                        .map(|r| NodeBuilder::new("ref").bytes(r.as_bytes().to_vec()).build()),
                )
                .build(),
        ],
    );
    shared.update(|registry| {
        registry.pending_pairings.push(PendingPairing {
            connection: connection.clone(),
            refs,
            noise_key: established.client_static,
            registration: keys,
            platform,
            pair_code: None,
            in_flight: None,
            failure: None,
        });
    });
    connection.send(pair_device);
    Ok(Role::Registering)
}

/// The account signature a phone puts on a companion's identity, wrapped in the HMAC
/// container keyed by the ADV secret the companion shared (QR field or pair-code DH).
pub(crate) fn sign_device_identity(
    account: &IdentityKeyPair,
    companion_identity: &[u8; 32],
    key_index: u32,
    adv_secret: &[u8; 32],
) -> Result<Vec<u8>> {
    let details = wa::ADVDeviceIdentity {
        raw_id: Some(rand::random()),
        timestamp: Some(now() as u64),
        key_index: Some(key_index),
        account_type: Some(ADVEncryptionType::E2EE),
        device_type: Some(ADVEncryptionType::E2EE),
    }
    .encode_to_vec();
    let message = [ADV_PREFIX_ACCOUNT_SIGNATURE, &details, companion_identity].concat();
    let account_signature = account
        .private_key()
        .calculate_signature(&message, &mut rand::rng())
        .map_err(|e| StandInError::Pairing(format!("account signature: {e}")))?;
    let signed = wa::ADVSignedDeviceIdentity {
        details: Some(details),
        account_signature_key: Some(account.public_key().public_key_bytes().to_vec()),
        account_signature: Some(account_signature.to_vec()),
        device_signature: None,
    }
    .encode_to_vec();
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(adv_secret)
        .expect("HMAC accepts any key length");
    mac.update(&signed);
    Ok(wa::ADVSignedDeviceIdentityHMAC {
        details: Some(signed),
        hmac: Some(mac.finalize().into_bytes().to_vec()),
        account_type: Some(ADVEncryptionType::E2EE),
    }
    .encode_to_vec())
}

/// The phone approves the device on connection `connection_id`: allocate its device id,
/// sign its identity and send pair-success. Completion arrives as the device's answer.
fn approve(
    shared: &Arc<Shared>,
    connection_id: u64,
    pn: &str,
    push_name: &str,
    companion_identity: [u8; 32],
    adv_secret: [u8; 32],
) -> Result<DeviceAddress> {
    let (account, device, key_index, lid) = shared.update(|registry| {
        let user = registry.upsert_user(pn, None, push_name);
        let device = user.next_device;
        user.next_device += 1;
        let key_index = user.next_key_index;
        user.next_key_index += 1;
        (
            user.account_key.clone(),
            device,
            key_index,
            user.lid.clone(),
        )
    });
    let device_identity =
        sign_device_identity(&account, &companion_identity, key_index, &adv_secret)?;
    let iq_id = shared.stanza_id();
    let pair_success = stanza::server_iq(
        &iq_id,
        "set",
        Some("md"),
        vec![
            NodeBuilder::new("pair-success")
                .children([
                    NodeBuilder::new("device-identity")
                        .bytes(device_identity)
                        .build(),
                    NodeBuilder::new("device")
                        .attr("jid", Jid::pn_device(pn, device))
                        .attr("lid", Jid::lid_device(lid.as_str(), device))
                        .build(),
                    NodeBuilder::new("platform")
                        .attr("name", PRIMARY_PLATFORM)
                        .build(),
                ])
                .build(),
        ],
    );
    let connection = shared.update(|registry| {
        let pending = registry.pending_pairing_mut(connection_id)?;
        pending.in_flight = Some(InFlightPairing {
            iq_id,
            pn: pn.to_owned(),
            device,
            key_index,
            identity_key: companion_identity,
        });
        Some(pending.connection.clone())
    });
    let connection = connection.ok_or(StandInError::ConnectionClosed)?;
    connection.send(pair_success);
    Ok(DeviceAddress {
        pn: pn.to_owned(),
        device,
    })
}

/// Wait until the device on `connection_id` finished pairing as `address`.
async fn await_paired(
    shared: &Arc<Shared>,
    connection_id: u64,
    address: &DeviceAddress,
) -> Result<Jid> {
    let outcome = shared
        .wait_for(
            "the device to counter-sign its identity",
            PAIRING_TIMEOUT,
            |registry| {
                if registry.companion(address).is_some() {
                    return Some(Ok(()));
                }
                match registry
                    .pending_pairings
                    .iter()
                    .find(|p| p.connection.id == connection_id)
                {
                    Some(pending) => pending
                        .failure
                        .clone()
                        .map(|f| Err(StandInError::Pairing(f))),
                    None => Some(Err(StandInError::ConnectionClosed)),
                }
            },
        )
        .await?;
    outcome.map(|()| address.pn_jid())
}

/// The test scanned `qr` with the phone of `pn`.
pub(crate) async fn scan_qr(
    shared: &Arc<Shared>,
    qr: &str,
    pn: &str,
    push_name: &str,
) -> Result<Jid> {
    let code = QrCode::parse(qr)?;
    let connection_id = {
        let registry = shared.registry();
        registry
            .pending_pairings
            .iter()
            .find(|p| {
                p.in_flight.is_none()
                    && p.noise_key == code.noise_key
                    && p.registration.bundle.identity == code.identity_key
                    && p.refs.contains(&code.pairing_ref)
            })
            .map(|p| p.connection.id)
            .ok_or_else(|| StandInError::NoPendingPairing(code.pairing_ref.clone()))?
    };
    let address = approve(
        shared,
        connection_id,
        pn,
        push_name,
        code.identity_key,
        code.adv_secret,
    )?;
    await_paired(shared, connection_id, &address).await
}

/// `<iq xmlns="md"><link_code_companion_reg stage="companion_hello">`: the device asked to
/// be linked by code to `jid`'s phone. Answer with a pairing ref.
pub(crate) fn on_companion_hello(
    shared: &Arc<Shared>,
    session: &Session,
    request: &Node,
    reg: &Node,
) -> Node {
    let phone = stanza::jid_attr(reg, "jid")
        .map(|j| j.user.to_string())
        .unwrap_or_default();
    let Some(wrapped) = child_bytes(reg, "link_code_pairing_wrapped_companion_ephemeral_pub")
    else {
        return stanza::iq_error(request, 400, "bad-request");
    };
    if wrapped.len() != 80 || phone.is_empty() {
        return stanza::iq_error(request, 400, "bad-request");
    }
    let pairing_ref = format!("{:032x}", rand::random::<u128>()).into_bytes();
    let stored = shared.update(|registry| {
        let pending = registry.pending_pairing_mut(session.id())?;
        pending.pair_code = Some(PairCodeRequest {
            phone: phone.clone(),
            wrapped_companion_ephemeral: wrapped.to_vec(),
            pairing_ref: pairing_ref.clone(),
            primary_ephemeral: None,
            companion_ephemeral: None,
        });
        Some(())
    });
    if stored.is_none() {
        return stanza::iq_error(request, 400, "bad-request");
    }
    stanza::iq_result(
        request,
        vec![
            NodeBuilder::new("link_code_companion_reg")
                .children([NodeBuilder::new("link_code_pairing_ref")
                    .bytes(pairing_ref)
                    .build()])
                .build(),
        ],
    )
}

/// The user typed `code` on the phone of `pn`: the phone sends `primary_hello` and, once the
/// device answers with `companion_finish`, links it. Returns the new device's JID.
pub(crate) async fn enter_pair_code(
    shared: &Arc<Shared>,
    pn: &str,
    code: &str,
    push_name: &str,
) -> Result<Jid> {
    let code = code.replace('-', "").to_uppercase();
    let (connection, request) = {
        let registry = shared.registry();
        registry
            .pending_pairings
            .iter()
            .find_map(|p| {
                let request = p.pair_code.as_ref()?;
                (request.phone == pn && p.in_flight.is_none())
                    .then(|| (p.connection.clone(), request.clone()))
            })
            .ok_or_else(|| StandInError::NoPendingPairing(format!("pair code for {pn}")))?
    };
    let primary_identity = shared.update(|registry| {
        registry
            .upsert_user(pn, None, push_name)
            .phone_bundle
            .identity
    });
    let (companion_ephemeral, primary_ephemeral, wrapped_primary) = {
        let code = code.clone();
        let wrapped = request.wrapped_companion_ephemeral.clone();
        tokio::task::spawn_blocking(move || -> Result<_> {
            // AES-CTR keyed by PBKDF2(code): the same transform unwraps the companion's key.
            let companion = PairCodeUtils::decrypt_primary_ephemeral_pub(&wrapped, &code)
                .map_err(|e| StandInError::Pairing(e.to_string()))?;
            let primary = KeyPair::generate(&mut rand::rng());
            let wrapped_primary = PairCodeUtils::encrypt_ephemeral_pub(
                &crate::signal::key_bytes(&primary.public_key),
                &code,
            );
            Ok((companion, primary, wrapped_primary))
        })
        .await
        .map_err(|e| StandInError::Pairing(e.to_string()))??
    };
    shared.update(|registry| {
        if let Some(pending) = registry.pending_pairing_mut(connection.id)
            && let Some(request) = pending.pair_code.as_mut()
        {
            request.primary_ephemeral = Some(primary_ephemeral);
            request.companion_ephemeral = Some(companion_ephemeral);
        }
    });
    connection.send(
        NodeBuilder::new("notification")
            .attr("from", SERVER_JID)
            .attr("type", "link_code_companion_reg")
            .attr("id", shared.stanza_id())
            .attr("t", now().to_string())
            .children([NodeBuilder::new("link_code_companion_reg")
                .attr("stage", "primary_hello")
                .children([
                    NodeBuilder::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                        .bytes(wrapped_primary.to_vec())
                        .build(),
                    NodeBuilder::new("primary_identity_pub")
                        .bytes(primary_identity.to_vec())
                        .build(),
                    NodeBuilder::new("link_code_pairing_ref")
                        .bytes(request.pairing_ref.clone())
                        .build(),
                ])
                .build()])
            .build(),
    );
    let address = shared
        .wait_for(
            "the device's companion_finish",
            PAIRING_TIMEOUT,
            |registry| match registry
                .pending_pairings
                .iter()
                .find(|p| p.connection.id == connection.id)
            {
                Some(p) => match (&p.in_flight, &p.failure) {
                    (Some(in_flight), _) => Some(Ok(DeviceAddress {
                        pn: in_flight.pn.clone(),
                        device: in_flight.device,
                    })),
                    (None, Some(failure)) => Some(Err(StandInError::Pairing(failure.clone()))),
                    (None, None) => None,
                },
                None => Some(Err(StandInError::ConnectionClosed)),
            },
        )
        .await??;
    await_paired(shared, connection.id, &address).await
}

/// `companion_finish`: the device sent its identity and a key bundle sealed with the
/// ephemeral DH; the phone opens it, derives the ADV secret the device now holds, and
/// approves the device.
pub(crate) async fn on_companion_finish(
    shared: &Arc<Shared>,
    session: &Session,
    request: &Node,
    reg: &Node,
) -> Result<()> {
    let fail = |reason: String| {
        shared.update(|registry| {
            if let Some(pending) = registry.pending_pairing_mut(session.id()) {
                pending.failure = Some(reason.clone());
            }
        });
        StandInError::Pairing(reason)
    };
    let Some(pending) = ({
        let registry = shared.registry();
        registry
            .pending_pairings
            .iter()
            .find(|p| p.connection.id == session.id())
            .and_then(|p| p.pair_code.clone())
    }) else {
        session.send(stanza::iq_error(request, 400, "bad-request"));
        return Err(StandInError::protocol(
            "companion_finish without companion_hello",
        ));
    };
    let (Some(primary_ephemeral), Some(companion_ephemeral)) =
        (pending.primary_ephemeral, pending.companion_ephemeral)
    else {
        session.send(stanza::iq_error(request, 400, "bad-request"));
        return Err(fail("companion_finish before the code was entered".into()));
    };
    if child_bytes(reg, "link_code_pairing_ref") != Some(pending.pairing_ref.as_slice()) {
        session.send(stanza::iq_error(request, 400, "bad-request"));
        return Err(fail("companion_finish for another pairing ref".into()));
    }
    let (Some(wrapped_bundle), Some(companion_identity)) = (
        child_bytes(reg, "link_code_pairing_wrapped_key_bundle"),
        child_bytes(reg, "companion_identity_public").and_then(|b| <[u8; 32]>::try_from(b).ok()),
    ) else {
        session.send(stanza::iq_error(request, 400, "bad-request"));
        return Err(fail("companion_finish without bundle or identity".into()));
    };
    session.send(stanza::iq_result(request, Vec::new()));

    let account = {
        let registry = shared.registry();
        registry
            .user(&pending.phone)
            .map(|u| u.account_key.clone())
            .ok_or_else(|| StandInError::UnknownAccount(pending.phone.clone()))?
    };
    let adv_secret = open_key_bundle(
        &primary_ephemeral,
        &companion_ephemeral,
        &account,
        &companion_identity,
        wrapped_bundle,
    )
    .map_err(|e| fail(e.to_string()))?;
    let push_name = shared
        .registry()
        .user(&pending.phone)
        .map(|u| u.push_name.clone())
        .unwrap_or_default();
    approve(
        shared,
        session.id(),
        &pending.phone,
        &push_name,
        companion_identity,
        adv_secret,
    )?;
    Ok(())
}

/// Open `salt(32) ‖ iv(12) ‖ AES-GCM(bundle)` and derive the ADV secret from
/// `ephemeral DH ‖ identity DH ‖ bundle randomness`, mirroring the device's
/// `PairCodeUtils::prepare_key_bundle`.
fn open_key_bundle(
    primary_ephemeral: &KeyPair,
    companion_ephemeral: &[u8; 32],
    primary_identity: &IdentityKeyPair,
    companion_identity: &[u8; 32],
    wrapped: &[u8],
) -> Result<[u8; 32]> {
    if wrapped.len() < 32 + 12 + 16 {
        return Err(StandInError::Pairing("key bundle too short".into()));
    }
    let agree =
        |private: &wacore_libsignal::protocol::PrivateKey, public: &[u8; 32]| -> Result<Vec<u8>> {
            let public = PublicKey::from_djb_public_key_bytes(public)?;
            Ok(private
                .calculate_agreement(&public)
                .map_err(|e| StandInError::Pairing(e.to_string()))?
                .to_vec())
        };
    let ephemeral_shared = agree(&primary_ephemeral.private_key, companion_ephemeral)?;
    let identity_shared = agree(primary_identity.private_key(), companion_identity)?;
    let (salt, rest) = wrapped.split_at(32);
    let (iv, sealed) = rest.split_at(12);
    let mut key = [0u8; 32];
    wacore::crypto::hkdf_sha256_into(
        &ephemeral_shared,
        Some(salt),
        b"link_code_pairing_key_bundle_encryption_key",
        &mut key,
    )
    .map_err(|e| StandInError::Pairing(e.to_string()))?;
    let iv: [u8; 12] = iv.try_into().expect("split at 12");
    let mut bundle = Vec::new();
    wacore_libsignal::crypto::aes_256_gcm_decrypt(&key, &iv, b"", sealed, &mut bundle)
        .map_err(|e| StandInError::Pairing(format!("key bundle does not open: {e}")))?;
    if bundle.len() != 96
        || bundle[..32] != companion_identity[..]
        || bundle[32..64] != *primary_identity.public_key().public_key_bytes()
    {
        return Err(StandInError::Pairing(
            "key bundle names other identities".into(),
        ));
    }
    let combined = [&ephemeral_shared[..], &identity_shared[..], &bundle[64..]].concat();
    let mut adv_secret = [0u8; 32];
    wacore::crypto::hkdf_sha256_into(&combined, None, b"adv_secret", &mut adv_secret)
        .map_err(|e| StandInError::Pairing(e.to_string()))?;
    Ok(adv_secret)
}

/// The device answered pair-success (or refused it). On `<pair-device-sign>` with a valid
/// device signature, the device becomes a companion of the account; the phone shares the
/// app-state key with it, and the server restarts the stream (515).
pub(crate) async fn on_pair_success_answer(
    shared: &Arc<Shared>,
    session: &Session,
    answer: &Node,
) -> Result<bool> {
    let id = attr(answer, "id").unwrap_or_default();
    let in_flight = {
        let registry = shared.registry();
        registry
            .pending_pairings
            .iter()
            .find(|p| p.connection.id == session.id())
            .and_then(|p| p.in_flight.clone())
            .filter(|f| f.iq_id == id)
    };
    let Some(in_flight) = in_flight else {
        return Ok(false);
    };
    let fail = |reason: String| {
        shared.update(|registry| {
            if let Some(pending) = registry.pending_pairing_mut(session.id()) {
                pending.failure = Some(reason.clone());
            }
        });
        StandInError::Pairing(reason)
    };
    if attr(answer, "type").as_deref() != Some("result") {
        return Err(fail(format!(
            "device refused pair-success: {}",
            wacore::xml::DisplayableNode(answer)
        )));
    }
    let Some(signed) = answer
        .get_optional_child_by_tag(&["pair-device-sign", "device-identity"])
        .and_then(|n| match n.content.as_ref() {
            Some(wacore_binary::NodeContent::Bytes(b)) => Some(b.clone()),
            _ => None,
        })
    else {
        return Err(fail("pair-device-sign without device-identity".into()));
    };
    let account_key: [u8; 32] = {
        let registry = shared.registry();
        registry
            .user(&in_flight.pn)
            .map(|u| u.phone_bundle.identity)
            .ok_or_else(|| StandInError::UnknownAccount(in_flight.pn.clone()))?
    };
    let validation = wacore::adv::validate_adv_with_identity_key(
        &signed,
        &in_flight.identity_key,
        Some(&account_key),
    );
    if validation != wacore::adv::AdvValidation::Valid {
        return Err(fail(format!("device signature check: {validation:?}")));
    }
    let address = DeviceAddress {
        pn: in_flight.pn.clone(),
        device: in_flight.device,
    };
    shared.update(|registry| -> Result<()> {
        let index = registry
            .pending_pairings
            .iter()
            .position(|p| p.connection.id == session.id())
            .ok_or(StandInError::ConnectionClosed)?;
        let pending = registry.pending_pairings.remove(index);
        let user = registry
            .user_mut(&in_flight.pn)
            .ok_or_else(|| StandInError::UnknownAccount(in_flight.pn.clone()))?;
        let push_name = user.push_name.clone();
        if !push_name.is_empty() {
            user.app_state.set_push_name(&push_name)?;
        }
        user.companions.insert(
            in_flight.device,
            Companion {
                device: in_flight.device,
                noise_key: pending.noise_key,
                keys: pending.registration,
                key_index: in_flight.key_index,
                signed_identity: signed.clone(),
                platform: pending.platform,
                offline: Default::default(),
                connection: None,
                active: false,
                last_pattern: None,
            },
        );
        Ok(())
    })?;
    // The primary's first message to a new companion: the app-state sync key.
    let share = shared
        .registry()
        .user(&address.pn)
        .map(|u| u.app_state.key_share());
    if let Some(share) = share {
        crate::messages::send_from_phone(shared, &address.pn, &address, &share, "protocol").await?;
    }
    session.send(stanza::stream_error("515"));
    session.connection.close();
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wacore::pair::{DeviceState, PairUtils};

    fn device_state() -> DeviceState {
        DeviceState {
            identity_key: KeyPair::generate(&mut rand::rng()),
            noise_key: KeyPair::generate(&mut rand::rng()),
            adv_secret_key: rand::random(),
        }
    }

    #[test]
    fn qr_codes_made_by_the_client_parse() {
        let state = device_state();
        let qr = PairUtils::make_qr_data(
            &state,
            "2@ref",
            wacore::companion_reg::CompanionWebClientType::Chrome,
        );
        let parsed = QrCode::parse(&qr).unwrap();
        assert_eq!(parsed.pairing_ref, "2@ref");
        assert_eq!(parsed.adv_secret, state.adv_secret_key);
        assert_eq!(
            &parsed.identity_key[..],
            state.identity_key.public_key.public_key_bytes()
        );
        assert_eq!(
            &parsed.noise_key[..],
            state.noise_key.public_key.public_key_bytes()
        );
        assert!(QrCode::parse("a,b").is_err());
    }

    #[test]
    fn signed_identity_passes_the_clients_pair_crypto_and_counter_signature_validates() {
        let state = device_state();
        let account = IdentityKeyPair::generate(&mut rand::rng());
        let companion: [u8; 32] = state
            .identity_key
            .public_key
            .public_key_bytes()
            .try_into()
            .unwrap();
        let container =
            sign_device_identity(&account, &companion, 7, &state.adv_secret_key).unwrap();
        let (self_signed, key_index) = PairUtils::do_pair_crypto(&state, &container).unwrap();
        assert_eq!(key_index, 7);
        let account_key: [u8; 32] = account.public_key().public_key_bytes().try_into().unwrap();
        assert_eq!(
            wacore::adv::validate_adv_with_identity_key(
                &self_signed,
                &companion,
                Some(&account_key)
            ),
            wacore::adv::AdvValidation::Valid
        );
        let wrong_secret = rand::random();
        let forged = sign_device_identity(&account, &companion, 7, &wrong_secret).unwrap();
        assert_eq!(
            PairUtils::do_pair_crypto(&state, &forged).unwrap_err().code,
            401
        );
    }

    #[test]
    fn phone_opens_the_companions_pair_code_bundle_and_derives_its_adv_secret() {
        let companion_identity = KeyPair::generate(&mut rand::rng());
        let companion_ephemeral = KeyPair::generate(&mut rand::rng());
        let primary_identity = IdentityKeyPair::generate(&mut rand::rng());
        let primary_ephemeral = KeyPair::generate(&mut rand::rng());
        let primary_eph_pub = crate::signal::key_bytes(&primary_ephemeral.public_key);
        let primary_id_pub = crate::signal::key_bytes(primary_identity.public_key());
        let (bundle, companion_secret) = PairCodeUtils::prepare_key_bundle(
            &companion_ephemeral,
            &primary_eph_pub,
            &primary_id_pub,
            &companion_identity,
        )
        .unwrap();
        let phone_secret = open_key_bundle(
            &primary_ephemeral,
            &crate::signal::key_bytes(&companion_ephemeral.public_key),
            &primary_identity,
            &crate::signal::key_bytes(&companion_identity.public_key),
            &bundle,
        )
        .unwrap();
        assert_eq!(phone_secret, companion_secret);
    }

    /// A registering connection as the handshake leaves it.
    fn registering(
        shared: &Arc<Shared>,
    ) -> (
        Session,
        tokio::sync::mpsc::UnboundedReceiver<crate::registry::Outgoing>,
    ) {
        let (out, sent) = tokio::sync::mpsc::unbounded_channel();
        let connection = Connection { id: 3, out };
        let device = wacore::store::Device::new();
        let payload = device.get_client_payload();
        let established = Established {
            read: wacore_noise::NoiseCipher::new(&[1; 32]).unwrap(),
            write: wacore_noise::NoiseCipher::new(&[2; 32]).unwrap(),
            client_static: crate::signal::key_bytes(&device.noise_key.public_key),
            payload,
            pattern: crate::noise::HandshakePattern::Xx,
        };
        let role = begin(shared, &connection, &established).unwrap();
        (Session { connection, role }, sent)
    }

    fn sent_node(
        sent: &mut tokio::sync::mpsc::UnboundedReceiver<crate::registry::Outgoing>,
    ) -> Node {
        match sent.try_recv() {
            Ok(crate::registry::Outgoing::Node(node)) => *node,
            other => panic!("expected a node, got {other:?}"),
        }
    }

    #[test]
    fn registering_devices_get_refs_and_a_pairing_ref_for_their_code() {
        let shared = Arc::new(Shared::new(crate::server::Options::default()));
        let (session, mut sent) = registering(&shared);
        let pair_device = sent_node(&mut sent);
        assert_eq!(attr(&pair_device, "from").as_deref(), Some(SERVER_JID));
        let refs: Vec<_> = pair_device
            .get_optional_child("pair-device")
            .unwrap()
            .get_children_by_tag("ref")
            .collect();
        assert_eq!(refs.len(), PAIRING_REFS);

        let ephemeral = KeyPair::generate(&mut rand::rng());
        let wrapped = PairCodeUtils::encrypt_ephemeral_pub(
            &crate::signal::key_bytes(&ephemeral.public_key),
            "ABCD2345",
        );
        let hello = PairCodeUtils::build_companion_hello_iq(
            "15550101010",
            &[7; 32],
            &wrapped,
            "1",
            "Chrome (Linux)",
            true,
            "h1".to_owned(),
        );
        let reg = hello.get_optional_child("link_code_companion_reg").unwrap();
        let reply = on_companion_hello(&shared, &session, &hello, reg);
        let pairing_ref =
            PairCodeUtils::parse_companion_hello_response(&reply.as_node_ref()).unwrap();
        let stored = shared.registry().pending_pairings[0]
            .pair_code
            .clone()
            .unwrap();
        assert_eq!(stored.pairing_ref, pairing_ref);
        assert_eq!(stored.phone, "15550101010");
    }

    #[test]
    fn code_wrapped_ephemerals_unwrap_with_the_same_code() {
        let key = KeyPair::generate(&mut rand::rng());
        let public = crate::signal::key_bytes(&key.public_key);
        let wrapped = PairCodeUtils::encrypt_ephemeral_pub(&public, "ABCD2345");
        assert_eq!(
            PairCodeUtils::decrypt_primary_ephemeral_pub(&wrapped, "ABCD2345").unwrap(),
            public
        );
    }
}
