//! Signal devices whose keys the stand-in holds: the phone (device 0) of every simulated
//! user. They run the library's own libsignal (X3DH, double ratchet) so contacts can write
//! to a session and the stand-in can read what the session sends them.

use std::collections::HashMap;

use async_trait::async_trait;
use wacore_libsignal::protocol::{
    CiphertextMessage, CiphertextMessageType, Direction, GenericSignedPreKey, IdentityChange,
    IdentityKey, IdentityKeyPair, IdentityKeyStore, KeyPair, PreKeyBundle, PreKeyId, PreKeyRecord,
    PreKeySignalMessage, PreKeyStore, ProtocolAddress, PublicKey, SenderKeyDistributionMessage,
    SenderKeyName, SenderKeyRecord, SenderKeyStore, SessionRecord, SessionStore, SignalMessage,
    SignalProtocolError, SignedPreKeyId, SignedPreKeyRecord, SignedPreKeyStore, Timestamp,
    UsePQRatchet, create_sender_key_distribution_message, group_decrypt, group_encrypt,
    message_decrypt, message_encrypt, process_prekey_bundle,
    process_sender_key_distribution_message,
};

use crate::error::Result;

type SignalResult<T> = std::result::Result<T, SignalProtocolError>;

/// How many one-time pre-keys a simulated phone publishes.
const PHONE_ONE_TIME_PRE_KEYS: u32 = 20;

/// The public half of a device's key bundle, as the server hands it out.
#[derive(Clone, Debug)]
pub(crate) struct PublicBundle {
    pub(crate) registration_id: u32,
    pub(crate) identity: [u8; 32],
    pub(crate) signed_pre_key_id: u32,
    pub(crate) signed_pre_key: [u8; 32],
    pub(crate) signed_pre_key_signature: Vec<u8>,
    /// Unclaimed one-time pre-keys: the server hands out each at most once.
    pub(crate) one_time_pre_keys: Vec<(u32, [u8; 32])>,
}

impl PublicBundle {
    /// A libsignal bundle for `device`, claiming one one-time pre-key if any is left.
    pub(crate) fn claim(&mut self, device: u16) -> Result<PreKeyBundle> {
        let one_time = if self.one_time_pre_keys.is_empty() {
            None
        } else {
            Some(self.one_time_pre_keys.remove(0))
        };
        self.to_bundle(device, one_time)
    }

    pub(crate) fn to_bundle(
        &self,
        device: u16,
        one_time: Option<(u32, [u8; 32])>,
    ) -> Result<PreKeyBundle> {
        let pre_key = match one_time {
            Some((id, key)) => Some((
                PreKeyId::from(id),
                PublicKey::from_djb_public_key_bytes(&key)?,
            )),
            None => None,
        };
        Ok(PreKeyBundle::new(
            self.registration_id,
            u32::from(device).into(),
            pre_key,
            SignedPreKeyId::from(self.signed_pre_key_id),
            PublicKey::from_djb_public_key_bytes(&self.signed_pre_key)?,
            self.signed_pre_key_signature.clone(),
            IdentityKey::new(PublicKey::from_djb_public_key_bytes(&self.identity)?),
        )?)
    }
}

/// A whole Signal device: identity, pre-keys and sessions, in memory.
pub(crate) struct SignalDevice {
    identities: Identities,
    sessions: Sessions,
    pre_keys: PreKeys,
    signed_pre_keys: SignedPreKeys,
    sender_keys: SenderKeys,
    /// (group, device address) pairs this device already sent its sender key to.
    distributed: std::collections::HashSet<(String, String)>,
}

/// A message this device encrypted: the wire `type` of its `<enc>` and the bytes.
pub(crate) struct Encrypted {
    pub(crate) enc_type: &'static str,
    pub(crate) ciphertext: Vec<u8>,
}

impl SignalDevice {
    /// A fresh device with a signed pre-key and a batch of one-time pre-keys; returns the
    /// public bundle the server publishes for it.
    pub(crate) fn generate() -> (Self, PublicBundle) {
        let mut rng = rand::rng();
        let identity = IdentityKeyPair::generate(&mut rng);
        let registration_id = rand::random_range(1..16_380u32);
        let signed_key = KeyPair::generate(&mut rng);
        let signature = identity
            .private_key()
            .calculate_signature(&signed_key.public_key.serialize(), &mut rng)
            .expect("signing with a fresh identity key cannot fail");
        let signed_pre_key_id = 1;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let signed_record = SignedPreKeyRecord::new(
            signed_pre_key_id.into(),
            Timestamp::from_epoch_millis(now),
            &signed_key,
            &signature,
        );
        let mut pre_keys = HashMap::new();
        let mut one_time = Vec::new();
        for id in 1..=PHONE_ONE_TIME_PRE_KEYS {
            let key = KeyPair::generate(&mut rng);
            one_time.push((id, key_bytes(&key.public_key)));
            pre_keys.insert(id, PreKeyRecord::new(id.into(), &key));
        }
        let bundle = PublicBundle {
            registration_id,
            identity: key_bytes(identity.public_key()),
            signed_pre_key_id,
            signed_pre_key: key_bytes(&signed_key.public_key),
            signed_pre_key_signature: signature.to_vec(),
            one_time_pre_keys: one_time,
        };
        let device = Self {
            identities: Identities {
                key_pair: identity,
                registration_id,
                known: HashMap::new(),
            },
            sessions: Sessions::default(),
            pre_keys: PreKeys(pre_keys),
            signed_pre_keys: SignedPreKeys(HashMap::from([(signed_pre_key_id, signed_record)])),
            sender_keys: SenderKeys::default(),
            distributed: Default::default(),
        };
        (device, bundle)
    }

    /// The identity key pair; a phone's identity doubles as its account's ADV signing key.
    pub(crate) fn identity(&self) -> &IdentityKeyPair {
        &self.identities.key_pair
    }

    pub(crate) fn has_session(&self, remote: &ProtocolAddress) -> bool {
        self.sessions.0.contains_key(remote.as_str())
    }

    /// Forget the session with `remote` (the peer reported it could not decrypt).
    pub(crate) fn drop_session(&mut self, remote: &ProtocolAddress) {
        self.sessions.0.remove(remote.as_str());
    }

    /// X3DH with a bundle the server handed out for `remote`.
    pub(crate) async fn start_session(
        &mut self,
        remote: &ProtocolAddress,
        bundle: &PreKeyBundle,
    ) -> Result<()> {
        process_prekey_bundle(
            remote,
            &mut self.sessions,
            &mut self.identities,
            bundle,
            &mut rand::make_rng::<rand::rngs::StdRng>(),
            UsePQRatchet::No,
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn encrypt(
        &mut self,
        remote: &ProtocolAddress,
        plaintext: &[u8],
    ) -> Result<Encrypted> {
        let message =
            message_encrypt(plaintext, remote, &mut self.sessions, &mut self.identities).await?;
        let enc_type = match message.message_type() {
            CiphertextMessageType::PreKey => "pkmsg",
            CiphertextMessageType::Whisper => "msg",
            other => {
                return Err(crate::error::StandInError::protocol(format!(
                    "unexpected pairwise ciphertext type {other:?}"
                )));
            }
        };
        Ok(Encrypted {
            enc_type,
            ciphertext: message.serialize().to_vec(),
        })
    }

    /// Decrypt an `<enc type="pkmsg|msg">` payload from `remote`.
    pub(crate) async fn decrypt(
        &mut self,
        remote: &ProtocolAddress,
        enc_type: &str,
        ciphertext: &[u8],
    ) -> Result<Vec<u8>> {
        let message = match enc_type {
            "pkmsg" => {
                CiphertextMessage::PreKeySignalMessage(PreKeySignalMessage::try_from(ciphertext)?)
            }
            "msg" => CiphertextMessage::SignalMessage(SignalMessage::try_from(ciphertext)?),
            other => {
                return Err(crate::error::StandInError::protocol(format!(
                    "cannot decrypt <enc type={other:?}> pairwise"
                )));
            }
        };
        let result = message_decrypt(
            &message,
            remote,
            &mut self.sessions,
            &mut self.identities,
            &mut self.pre_keys,
            &self.signed_pre_keys,
            &mut rand::make_rng::<rand::rngs::StdRng>(),
            UsePQRatchet::No,
        )
        .await?;
        Ok(result.plaintext)
    }
}

impl SignalDevice {
    /// Take in a group member's sender key (the SKDM it sent this device pairwise).
    pub(crate) async fn accept_sender_key(
        &mut self,
        group: &str,
        sender: &ProtocolAddress,
        skdm: &[u8],
    ) -> Result<()> {
        let name = SenderKeyName::new(group.to_owned(), sender.as_str().to_owned());
        let message = SenderKeyDistributionMessage::try_from(skdm)?;
        process_sender_key_distribution_message(&name, &message, &mut self.sender_keys).await?;
        Ok(())
    }

    /// This device's sender key for `group` (created on first use), as the serialized
    /// `SenderKeyDistributionMessage` members need before they can read its `skmsg`.
    pub(crate) async fn sender_key_distribution(
        &mut self,
        group: &str,
        own: &ProtocolAddress,
    ) -> Result<Vec<u8>> {
        let name = SenderKeyName::new(group.to_owned(), own.as_str().to_owned());
        let message = create_sender_key_distribution_message(
            &name,
            &mut self.sender_keys,
            &mut rand::make_rng::<rand::rngs::StdRng>(),
        )
        .await?;
        Ok(message.serialized().to_vec())
    }

    /// Encrypt for every member of `group` at once with this device's sender key.
    pub(crate) async fn encrypt_group(
        &mut self,
        group: &str,
        own: &ProtocolAddress,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        // The key exists once it was (or could have been) distributed.
        self.sender_key_distribution(group, own).await?;
        let name = SenderKeyName::new(group.to_owned(), own.as_str().to_owned());
        let message = group_encrypt(
            &mut self.sender_keys,
            &name,
            plaintext,
            &mut rand::make_rng::<rand::rngs::StdRng>(),
        )
        .await?;
        Ok(message.serialized().to_vec())
    }

    /// Whether `remote` still needs this device's sender key for `group`; marks it sent.
    pub(crate) fn take_distribution_due(&mut self, group: &str, remote: &ProtocolAddress) -> bool {
        self.distributed
            .insert((group.to_owned(), remote.as_str().to_owned()))
    }

    /// Forget that `remote` has the sender key (it asked for a retry).
    pub(crate) fn forget_distribution(&mut self, group: &str, remote: &ProtocolAddress) {
        self.distributed
            .remove(&(group.to_owned(), remote.as_str().to_owned()));
    }

    /// Decrypt a group `<enc type="skmsg">` from `sender`.
    pub(crate) async fn decrypt_group(
        &mut self,
        group: &str,
        sender: &ProtocolAddress,
        skmsg: &[u8],
    ) -> Result<Vec<u8>> {
        let name = SenderKeyName::new(group.to_owned(), sender.as_str().to_owned());
        Ok(group_decrypt(skmsg, &mut self.sender_keys, &name).await?)
    }
}

pub(crate) fn key_bytes(key: &PublicKey) -> [u8; 32] {
    key.public_key_bytes()
        .try_into()
        .expect("curve25519 public keys are 32 bytes")
}

struct Identities {
    key_pair: IdentityKeyPair,
    registration_id: u32,
    known: HashMap<String, IdentityKey>,
}

#[async_trait]
impl IdentityKeyStore for Identities {
    async fn get_identity_key_pair(&self) -> SignalResult<IdentityKeyPair> {
        Ok(self.key_pair.clone())
    }

    async fn get_local_registration_id(&self) -> SignalResult<u32> {
        Ok(self.registration_id)
    }

    async fn save_identity(
        &mut self,
        address: &ProtocolAddress,
        identity: &IdentityKey,
    ) -> SignalResult<IdentityChange> {
        let previous = self.known.insert(address.as_str().to_owned(), *identity);
        Ok(IdentityChange::from_changed(
            previous.is_some_and(|p| p != *identity),
        ))
    }

    async fn is_trusted_identity(
        &self,
        _address: &ProtocolAddress,
        _identity: &IdentityKey,
        _direction: Direction,
    ) -> SignalResult<bool> {
        // A phone trusts on first use and accepts re-registered peers, as WhatsApp does.
        Ok(true)
    }

    async fn get_identity(&self, address: &ProtocolAddress) -> SignalResult<Option<IdentityKey>> {
        Ok(self.known.get(address.as_str()).copied())
    }
}

#[derive(Default)]
struct Sessions(HashMap<String, SessionRecord>);

#[async_trait]
impl SessionStore for Sessions {
    async fn load_session(&self, address: &ProtocolAddress) -> SignalResult<Option<SessionRecord>> {
        Ok(self.0.get(address.as_str()).cloned())
    }

    async fn has_session(&self, address: &ProtocolAddress) -> SignalResult<bool> {
        Ok(self.0.contains_key(address.as_str()))
    }

    async fn store_session(
        &mut self,
        address: &ProtocolAddress,
        record: SessionRecord,
    ) -> SignalResult<()> {
        self.0.insert(address.as_str().to_owned(), record);
        Ok(())
    }
}

struct PreKeys(HashMap<u32, PreKeyRecord>);

#[async_trait]
impl PreKeyStore for PreKeys {
    async fn get_pre_key(&self, prekey_id: PreKeyId) -> SignalResult<PreKeyRecord> {
        self.0
            .get(&u32::from(prekey_id))
            .cloned()
            .ok_or(SignalProtocolError::InvalidPreKeyId)
    }

    async fn save_pre_key(
        &mut self,
        prekey_id: PreKeyId,
        record: &PreKeyRecord,
    ) -> SignalResult<()> {
        self.0.insert(prekey_id.into(), record.clone());
        Ok(())
    }

    async fn remove_pre_key(&mut self, prekey_id: PreKeyId) -> SignalResult<()> {
        self.0.remove(&u32::from(prekey_id));
        Ok(())
    }
}

#[derive(Default)]
struct SenderKeys(HashMap<String, SenderKeyRecord>);

#[async_trait]
impl SenderKeyStore for SenderKeys {
    async fn store_sender_key(
        &mut self,
        name: &SenderKeyName,
        record: SenderKeyRecord,
    ) -> SignalResult<()> {
        self.0.insert(name.cache_key().to_owned(), record);
        Ok(())
    }

    async fn load_sender_key(&self, name: &SenderKeyName) -> SignalResult<Option<SenderKeyRecord>> {
        Ok(self.0.get(name.cache_key()).cloned())
    }
}

struct SignedPreKeys(HashMap<u32, SignedPreKeyRecord>);

#[async_trait]
impl SignedPreKeyStore for SignedPreKeys {
    async fn get_signed_pre_key(&self, id: SignedPreKeyId) -> SignalResult<SignedPreKeyRecord> {
        self.0
            .get(&u32::from(id))
            .cloned()
            .ok_or(SignalProtocolError::InvalidSignedPreKeyId)
    }

    async fn save_signed_pre_key(
        &mut self,
        id: SignedPreKeyId,
        record: &SignedPreKeyRecord,
    ) -> SignalResult<()> {
        self.0.insert(id.into(), record.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_stand_in_devices_talk_through_the_library_ratchet() {
        let (mut alice, _) = SignalDevice::generate();
        let (mut bob, mut bob_bundle) = SignalDevice::generate();
        let bob_address = ProtocolAddress::new("bob.0", 0.into());
        let alice_address = ProtocolAddress::new("alice.0", 0.into());
        alice
            .start_session(&bob_address, &bob_bundle.claim(0).unwrap())
            .await
            .unwrap();
        let first = alice.encrypt(&bob_address, b"hello").await.unwrap();
        assert_eq!(first.enc_type, "pkmsg");
        let plain = bob
            .decrypt(&alice_address, first.enc_type, &first.ciphertext)
            .await
            .unwrap();
        assert_eq!(plain, b"hello");
        let reply = bob.encrypt(&alice_address, b"hi").await.unwrap();
        assert_eq!(reply.enc_type, "msg");
        let plain = alice
            .decrypt(&bob_address, reply.enc_type, &reply.ciphertext)
            .await
            .unwrap();
        assert_eq!(plain, b"hi");
    }

    #[tokio::test]
    async fn a_phones_sender_key_opens_its_group_messages_once_distributed() {
        let (mut bob, _) = SignalDevice::generate();
        let (mut alice, _) = SignalDevice::generate();
        let bob_address = ProtocolAddress::new("bob", 0.into());
        let group = "120363000000000001@g.us";
        let skdm = bob
            .sender_key_distribution(group, &bob_address)
            .await
            .unwrap();
        assert_eq!(
            skdm,
            bob.sender_key_distribution(group, &bob_address)
                .await
                .unwrap(),
            "the same key until it is rotated"
        );
        let first = bob
            .encrypt_group(group, &bob_address, b"hello all")
            .await
            .unwrap();
        alice
            .accept_sender_key(group, &bob_address, &skdm)
            .await
            .unwrap();
        assert_eq!(
            alice
                .decrypt_group(group, &bob_address, &first)
                .await
                .unwrap(),
            b"hello all"
        );
        let alice_device = ProtocolAddress::new("alice", 1.into());
        assert!(bob.take_distribution_due(group, &alice_device));
        assert!(!bob.take_distribution_due(group, &alice_device));
        bob.forget_distribution(group, &alice_device);
        assert!(bob.take_distribution_due(group, &alice_device));
    }
}
