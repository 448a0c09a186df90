//! WhatsApp media on loopback: the `w:m` media_conn IQ that hands devices an upload/download
//! auth token and the CDN host, a small HTTPS/1.1 CDN ("mmg") that takes encrypted uploads
//! and serves them back by direct path, and the phone's side of a media retry (a device's
//! `server-error` receipt for an expired download is answered with a fresh direct path).
//! The client builds `https://` URLs itself, so the CDN speaks TLS; its self-signed
//! certificate is accepted only by clients that skip verification (whatsapp-rust's ureq
//! client with `danger-skip-tls-verify`), or the in-process [`CdnHttpClient`] is used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use base64::Engine as _;
use base64::prelude::{BASE64_STANDARD, BASE64_URL_SAFE_NO_PAD};
use buffa::Message as _;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wacore::download::MediaType;
use wacore::net::{HttpClient, HttpRequest, HttpResponse};
use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node};
use waproto::whatsapp as wa;

use crate::connection::Session;
use crate::error::{Result, StandInError};
use crate::registry::{DeviceAddress, QueuedStanza};
use crate::server::{Shared, now};
use crate::stanza::{self, attr, child_bytes};

/// How long a media_conn answer is good for (seconds), as WhatsApp hands it out.
const MEDIA_CONN_TTL: u64 = 300;
/// The HKDF info of the media-retry key (WAWebCryptoMediaRetry).
const MEDIA_RETRY_INFO: &[u8] = b"WhatsApp Media Retry Notification";
/// The largest request head the CDN reads.
const MAX_HEAD: usize = 64 * 1024;
/// The largest upload the CDN takes.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// The CDN's self-signed certificate (P-256, `IP:127.0.0.1`, `DNS:localhost`), DER.
const CERTIFICATE: &str = "MIIB4TCCAYigAwIBAgIUBKepbANcwwjFdHZ2uZc4oDm8xj4wCgYIKoZIzj0EAwIwHDEaMBgGA1UE\
AwwRbW1nLnN0YW5kaW4ubG9jYWwwIBcNMjYxMTI2MTE0MzI2WhgPMjEyNjExMDIxMTQzMjZaMBwx\
GjAYBgNVBAMMEW1tZy5zdGFuZGluLmxvY2FsMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEbduX\
u0Pohl2xAMilRaK/8yUwltQ1nkIa9efxt+YSEpArwRfG4at+H6uiUPUYlerVwrHqQLLNNPBXW+p1\
2a3UxqOBpTCBojAdBgNVHQ4EFgQU8vtGhTzJZJKOo8oySfq0IY7cqMgwHwYDVR0jBBgwFoAU8vtG\
hTzJZJKOo8oySfq0IY7cqMgwLQYDVR0RBCYwJIcEfwAAAYIJbG9jYWxob3N0ghFtbWcuc3RhbmRp\
bi5sb2NhbDAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcD\
ATAKBggqhkjOPQQDAgNHADBEAiBUZbR3Vy7HbDCCBQ79Uag4mulv2eVJL1vNEkEvb4O+MwIgX4sy\
RCu/z3Z2lQZnvm8R5Cricr5dzFx99ziQe0LSOrw=";
/// Its PKCS#8 private key, DER. A test fixture: it protects nothing.
const PRIVATE_KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgRcyf6XucWDVsKCYopmY+DEpWAyr4\
ekRjop2utLuRUquhRANCAARt25e7Q+iGXbEAyKVFor/zJTCW1DWeQhr15/G35hISkCvBF8bhq34f\
q6JQ9RiV6tXCsepAss008Fdb6nXZrdTG";

/// A blob the CDN holds.
#[derive(Clone, Debug)]
struct Blob {
    bytes: Arc<Vec<u8>>,
    enc_sha256: [u8; 32],
    media_type: String,
    expired: bool,
}

/// Media the stand-in's phones know the key of, by message id: what a retry re-uploads.
#[derive(Clone, Debug)]
pub(crate) struct MediaKeyRecord {
    pub(crate) media_key: Vec<u8>,
    pub(crate) direct_path: String,
}

/// One blob on the CDN, as tests see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMedia {
    /// Its direct path (`/v/t62.…/….enc?…`), as messages carry it.
    pub direct_path: String,
    /// The upload path kind (`image`, `document`, …).
    pub media_type: String,
    /// The encrypted size in bytes.
    pub length: usize,
    /// SHA-256 of the encrypted bytes (the upload token).
    pub enc_sha256: [u8; 32],
    /// Whether it was expired: downloads answer 410 until a retry re-uploads it.
    pub expired: bool,
}

/// What a phone's upload produced: the fields a media message carries.
#[derive(Clone, Debug)]
pub(crate) struct UploadedMedia {
    pub(crate) url: String,
    pub(crate) direct_path: String,
    pub(crate) media_key: [u8; 32],
    pub(crate) file_sha256: [u8; 32],
    pub(crate) file_enc_sha256: [u8; 32],
    pub(crate) file_length: u64,
}

/// The CDN: blobs by path, the media auth token, and the host devices are told to use.
pub(crate) struct Cdn {
    host: Mutex<String>,
    auth: String,
    blobs: Mutex<HashMap<String, Blob>>,
    keys: Mutex<HashMap<String, MediaKeyRecord>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An HTTP answer: status and body (JSON or bytes).
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    fn status(status: u16) -> Self {
        Self {
            status,
            body: Vec::new(),
        }
    }
}

impl Cdn {
    pub(crate) fn new() -> Self {
        Self {
            host: Mutex::new("mmg.whatsapp.net".to_owned()),
            auth: BASE64_URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
            blobs: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The `host[:port]` devices upload to and download from.
    pub(crate) fn host(&self) -> String {
        lock(&self.host).clone()
    }

    pub(crate) fn set_host(&self, host: String) {
        *lock(&self.host) = host;
    }

    /// Store `bytes` (already encrypted) under a fresh direct path.
    fn store(&self, bytes: Vec<u8>, media_type: &str) -> String {
        let enc_sha256: [u8; 32] = Sha256::digest(&bytes).into();
        let direct_path = fresh_direct_path(media_type);
        lock(&self.blobs).insert(
            path_of(&direct_path).to_owned(),
            Blob {
                bytes: Arc::new(bytes),
                enc_sha256,
                media_type: media_type.to_owned(),
                expired: false,
            },
        );
        direct_path
    }

    /// Encrypt `plaintext` the way a phone does before uploading, and upload it.
    pub(crate) fn upload_plaintext(
        &self,
        plaintext: &[u8],
        media_type: MediaType,
    ) -> Result<UploadedMedia> {
        let encrypted = wacore::upload::encrypt_media(plaintext, media_type)
            .map_err(|e| StandInError::Media(e.to_string()))?;
        let kind = media_type
            .upload_path()
            .rsplit('/')
            .next()
            .unwrap_or("image");
        let direct_path = self.store(encrypted.data_to_upload, kind);
        Ok(UploadedMedia {
            url: format!("https://{}{direct_path}&mms3=true", self.host()),
            direct_path,
            media_key: encrypted.media_key,
            file_sha256: encrypted.file_sha256,
            file_enc_sha256: encrypted.file_enc_sha256,
            file_length: plaintext.len() as u64,
        })
    }

    /// Store a profile picture (not end-to-end encrypted): its direct path and URL.
    pub(crate) fn store_picture(&self, jpeg: &[u8]) -> (String, String) {
        let enc_sha256: [u8; 32] = Sha256::digest(jpeg).into();
        let direct_path = format!(
            "/v/t61.24694-24/{}_{}_n.jpg?ccb=11-4&oh=01_{}&oe={:X}&_nc_sid=5e03e0",
            rand::random_range(100_000_000..999_999_999u64),
            rand::random_range(1_000_000_000_000_000..9_999_999_999_999_999u64),
            hex(&rand::random::<[u8; 16]>()),
            now() + 30 * 24 * 3600,
        );
        lock(&self.blobs).insert(
            path_of(&direct_path).to_owned(),
            Blob {
                bytes: Arc::new(jpeg.to_vec()),
                enc_sha256,
                media_type: "profile".to_owned(),
                expired: false,
            },
        );
        let url = format!("https://{}{direct_path}", self.host());
        (direct_path, url)
    }

    /// Remember the key of a message's media, for a later retry.
    pub(crate) fn remember_key(&self, message_id: &str, record: MediaKeyRecord) {
        lock(&self.keys).insert(message_id.to_owned(), record);
    }

    fn key_of(&self, message_id: &str) -> Option<MediaKeyRecord> {
        lock(&self.keys).get(message_id).cloned()
    }

    /// Every blob, for tests.
    pub(crate) fn stored(&self) -> Vec<StoredMedia> {
        let mut stored: Vec<StoredMedia> = lock(&self.blobs)
            .iter()
            .map(|(path, blob)| StoredMedia {
                direct_path: path.clone(),
                media_type: blob.media_type.clone(),
                length: blob.bytes.len(),
                enc_sha256: blob.enc_sha256,
                expired: blob.expired,
            })
            .collect();
        stored.sort_by(|a, b| a.direct_path.cmp(&b.direct_path));
        stored
    }

    /// The encrypted bytes behind a direct path.
    pub(crate) fn blob(&self, direct_path: &str) -> Option<Vec<u8>> {
        lock(&self.blobs)
            .get(path_of(direct_path))
            .map(|b| b.bytes.as_ref().clone())
    }

    /// Let a blob expire: downloads answer 410 from now on.
    pub(crate) fn expire(&self, direct_path: &str) -> bool {
        lock(&self.blobs)
            .get_mut(path_of(direct_path))
            .map(|b| b.expired = true)
            .is_some()
    }

    /// The phone uploads the media again: the same bytes under a fresh path.
    fn reupload(&self, direct_path: &str) -> Option<String> {
        let blob = lock(&self.blobs).get(path_of(direct_path)).cloned()?;
        let fresh = fresh_direct_path(&blob.media_type);
        lock(&self.blobs).insert(
            path_of(&fresh).to_owned(),
            Blob {
                expired: false,
                ..blob
            },
        );
        Some(fresh)
    }

    /// Answer one HTTP request: `POST /mms/<type>/<token>?auth&token` uploads, `GET
    /// <direct path>` downloads.
    pub(crate) fn answer(&self, method: &str, target: &str, body: &[u8]) -> Answer {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let params: HashMap<&str, &str> = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .collect();
        match method {
            "POST" if path.starts_with("/mms/") => self.answer_upload(path, &params, body),
            "GET" | "HEAD" => match lock(&self.blobs).get(path) {
                Some(blob) if blob.expired => Answer::status(410),
                Some(blob) => Answer {
                    status: 200,
                    body: if method == "GET" {
                        blob.bytes.as_ref().clone()
                    } else {
                        Vec::new()
                    },
                },
                None => Answer::status(404),
            },
            _ => Answer::status(405),
        }
    }

    fn answer_upload(&self, path: &str, params: &HashMap<&str, &str>, body: &[u8]) -> Answer {
        if params.get("auth").copied() != Some(self.auth.as_str()) {
            return Answer::status(401);
        }
        let mut segments = path.trim_start_matches("/mms/").split('/');
        let (Some(kind), Some(token)) = (segments.next(), segments.next()) else {
            return Answer::status(400);
        };
        let Ok(expected) = BASE64_URL_SAFE_NO_PAD.decode(token) else {
            return Answer::status(400);
        };
        let existing = lock(&self.blobs)
            .iter()
            .find(|(_, blob)| blob.enc_sha256.as_slice() == expected && !blob.expired)
            .map(|(path, _)| path.clone());
        if params.get("resume").copied() == Some("1") {
            return match existing {
                Some(path) => json(&[
                    ("resume", "complete"),
                    ("url", &format!("https://{}{path}", self.host())),
                    ("direct_path", &path),
                ]),
                None => json(&[("resume", "0")]),
            };
        }
        if Sha256::digest(body).as_slice() != expected {
            // The token names the encrypted file's hash; anything else is a broken upload.
            return Answer::status(400);
        }
        let direct_path = self.store(body.to_vec(), kind);
        json(&[
            (
                "url",
                &format!("https://{}{direct_path}&mms3=true", self.host()),
            ),
            ("direct_path", &direct_path),
        ])
    }
}

/// A flat JSON object of strings (the CDN's answers need nothing more).
fn json(fields: &[(&str, &str)]) -> Answer {
    let body = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "\"{k}\":\"{}\"",
                v.replace('\\', "\\\\").replace('"', "\\\"")
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    Answer {
        status: 200,
        body: format!("{{{body}}}").into_bytes(),
    }
}

/// The path part of a direct path (what blobs are stored under).
fn path_of(direct_path: &str) -> &str {
    direct_path.split('?').next().unwrap_or(direct_path)
}

/// A direct path in WhatsApp's shape: `/v/t62.<kind>-24/<ids>_n.enc?ccb=…&oh=…&oe=…`.
fn fresh_direct_path(media_type: &str) -> String {
    let kind = match media_type {
        "image" => "7118",
        "video" => "7161",
        "audio" => "7114",
        "document" => "7119",
        "md-msg-hist" => "36145",
        "md-app-state" => "7117",
        _ => "15575",
    };
    format!(
        "/v/t62.{kind}-24/{}_{}_{}_n.enc?ccb=11-4&oh=01_{}&oe={:X}&_nc_sid=5e03e0",
        rand::random_range(10_000_000..99_999_999u64),
        rand::random_range(1_000_000_000_000_000..9_999_999_999_999_999u64),
        rand::random_range(1_000_000_000_000_000..9_999_999_999_999_999u64),
        hex(&rand::random::<[u8; 16]>()),
        now() + 30 * 24 * 3600,
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `<iq xmlns="w:m"><media_conn/>`: the auth token and the loopback CDN host.
pub(crate) fn media_conn(shared: &Arc<Shared>, request: &Node) -> Node {
    use wacore::iq::mediaconn::{HostType, MediaConnHostExtended, MediaConnResponseExtended};
    use wacore::protocol::ProtocolNode as _;
    if request.get_optional_child("media_conn").is_none() {
        return stanza::iq_error(request, 400, "bad-request");
    }
    let mut host = MediaConnHostExtended::simple(shared.cdn.host(), HostType::Primary);
    host.upload = true;
    host.download = true;
    host.download_categories = vec!["image".into(), "video".into(), "document".into()];
    let answer =
        MediaConnResponseExtended::mock(shared.cdn.auth.clone(), MEDIA_CONN_TTL, vec![host]);
    stanza::iq_result(request, vec![answer.into_node()])
}

/// The CDN's TLS settings: its fixed certificate, TLS 1.2 and 1.3, HTTP/1.1.
fn tls_acceptor() -> Result<tokio_rustls::TlsAcceptor> {
    use tokio_rustls::rustls::{self, pki_types};
    let decode = |b64: &str| {
        BASE64_STANDARD
            .decode(b64)
            .map_err(|e| StandInError::Media(format!("embedded certificate: {e}")))
    };
    let certificate = pki_types::CertificateDer::from(decode(CERTIFICATE)?);
    let key =
        pki_types::PrivateKeyDer::Pkcs8(pki_types::PrivatePkcs8KeyDer::from(decode(PRIVATE_KEY)?));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StandInError::Media(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(vec![certificate], key)
    .map_err(|e| StandInError::Media(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serve the CDN over TLS until the runtime shuts down.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let acceptor = match tls_acceptor() {
        Ok(acceptor) => acceptor,
        Err(e) => {
            log::error!("the media CDN cannot start: {e}");
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let (acceptor, shared) = (acceptor.clone(), shared.clone());
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    match acceptor.accept(stream).await {
                        Ok(tls) => {
                            if let Err(e) = exchange(tls, &shared).await {
                                log::debug!("CDN exchange failed: {e}");
                            }
                        }
                        Err(e) => log::debug!("CDN TLS handshake failed: {e}"),
                    }
                });
            }
            Err(e) => {
                log::warn!("CDN accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// One HTTP/1.1 request and its answer, then the connection closes.
async fn exchange<S>(mut stream: S, shared: &Shared) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > MAX_HEAD {
            return respond(&mut stream, &Answer::status(431)).await;
        }
        let mut chunk = [0u8; 8192];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (
        request_line.next().unwrap_or_default().to_owned(),
        request_line.next().unwrap_or_default().to_owned(),
    );
    let mut length = 0usize;
    let mut expects_continue = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().unwrap_or(0),
            "expect" => expects_continue = value.eq_ignore_ascii_case("100-continue"),
            "transfer-encoding" if value.eq_ignore_ascii_case("chunked") => {
                // WhatsApp's CDN wants a Content-Length; so does this one.
                return respond(&mut stream, &Answer::status(411)).await;
            }
            _ => {}
        }
    }
    if length > MAX_BODY {
        return respond(&mut stream, &Answer::status(413)).await;
    }
    if expects_continue {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    let mut body = buffer.split_off(head_end + 4);
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(64 * 1024)];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(());
        }
        body.extend_from_slice(&chunk[..read]);
    }
    body.truncate(length);
    let answer = shared.cdn.answer(&method, &target, &body);
    respond(&mut stream, &answer).await
}

async fn respond<S>(stream: &mut S, answer: &Answer) -> std::io::Result<()>
where
    S: tokio::io::AsyncWrite + Unpin,
{
    let reason = match answer.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        411 => "Length Required",
        413 => "Payload Too Large",
        _ => "Error",
    };
    let content_type = if answer.body.first() == Some(&b'{') {
        "application/json"
    } else {
        "application/octet-stream"
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.status,
        answer.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&answer.body).await?;
    stream.flush().await?;
    stream.shutdown().await
}

/// A whatsapp-rust `HttpClient` that talks to the stand-in's CDN in process (no TLS), for
/// clients that cannot skip certificate verification. Requests for other hosts fail.
#[derive(Clone)]
pub struct CdnHttpClient {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for CdnHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdnHttpClient")
            .field("host", &self.shared.cdn.host())
            .finish()
    }
}

#[async_trait]
impl HttpClient for CdnHttpClient {
    async fn execute(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        let rest = request
            .url
            .strip_prefix("https://")
            .ok_or_else(|| anyhow::anyhow!("not an https URL: {}", request.url))?;
        let (host, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if host != self.shared.cdn.host() {
            anyhow::bail!("{host} is not the stand-in's CDN");
        }
        let body = request.body.as_deref().unwrap_or_default();
        let answer = self.shared.cdn.answer(&request.method, target, body);
        Ok(HttpResponse {
            status_code: answer.status,
            body: answer.body,
        })
    }
}

/// The media key and direct path a message's media carries, if it has media.
pub(crate) fn media_of(message: &wa::Message) -> Option<MediaKeyRecord> {
    macro_rules! pick {
        ($($field:ident),+) => {
            $(
                if let Some(m) = message.$field.as_option()
                    && let (Some(key), Some(path)) = (m.media_key.as_ref(), m.direct_path.as_ref())
                {
                    return Some(MediaKeyRecord {
                        media_key: key.clone(),
                        direct_path: path.clone(),
                    });
                }
            )+
        };
    }
    pick!(
        image_message,
        video_message,
        audio_message,
        document_message,
        sticker_message
    );
    None
}

/// A device could not download a message's media (`<receipt type="server-error">`): the
/// phone that sent it decrypts the request with the media key, uploads the media again and
/// answers with `<notification type="mediaretry">` carrying the new direct path, encrypted
/// with the same key.
pub(crate) fn on_server_error_receipt(
    shared: &Arc<Shared>,
    session: &Session,
    device: &DeviceAddress,
    receipt: &Node,
) -> Result<()> {
    let id = attr(receipt, "id").unwrap_or_default();
    let encrypt = receipt
        .get_optional_child("encrypt")
        .ok_or_else(|| StandInError::protocol("server-error receipt without <encrypt>"))?;
    let (Some(ciphertext), Some(iv)) = (
        child_bytes(encrypt, "enc_p"),
        child_bytes(encrypt, "enc_iv"),
    ) else {
        return Err(StandInError::protocol(
            "server-error receipt without enc_p/enc_iv",
        ));
    };
    let rmr = receipt.get_optional_child("rmr").cloned();
    let result = match shared.cdn.key_of(&id) {
        None => Err(2),
        Some(record) => {
            let request = wacore::media_retry::decrypt_media_retry_notification(
                &record.media_key,
                &id,
                iv,
                ciphertext,
            )
            .ok()
            .and_then(|plain| wa::ServerErrorReceipt::decode_from_slice(&plain).ok());
            match request {
                Some(request) if request.stanza_id.as_deref() == Some(id.as_str()) => {
                    match shared.cdn.reupload(&record.direct_path) {
                        Some(fresh) => {
                            shared.cdn.remember_key(
                                &id,
                                MediaKeyRecord {
                                    media_key: record.media_key.clone(),
                                    direct_path: fresh.clone(),
                                },
                            );
                            Ok((record.media_key, fresh))
                        }
                        None => Err(2),
                    }
                }
                _ => Err(3),
            }
        }
    };
    let mut children = match result {
        Ok((media_key, direct_path)) => vec![retry_answer(&media_key, &id, &direct_path)?],
        Err(code) => vec![
            NodeBuilder::new("error")
                .attr("code", code.to_string())
                .build(),
        ],
    };
    children.extend(rmr);
    let own = Jid::pn(device.pn.as_str());
    let node = NodeBuilder::new("notification")
        .attr("from", own)
        .attr("type", "mediaretry")
        .attr("id", id.clone())
        .attr("t", now().to_string())
        .children(children)
        .build();
    let _ = session;
    shared.update(|registry| {
        registry.enqueue(
            device,
            QueuedStanza {
                id,
                class: "notification",
                kind: None,
                node,
                resend: None,
            },
        )
    });
    Ok(())
}

/// `<encrypt><enc_p/><enc_iv/></encrypt>` holding a successful `MediaRetryNotification`.
fn retry_answer(media_key: &[u8], id: &str, direct_path: &str) -> Result<Node> {
    let mut key = [0u8; 32];
    wacore::crypto::hkdf_sha256_into(media_key, None, MEDIA_RETRY_INFO, &mut key)
        .map_err(|e| StandInError::Media(format!("media retry key: {e}")))?;
    let plaintext = wa::MediaRetryNotification {
        stanza_id: Some(id.to_owned()),
        direct_path: Some(direct_path.to_owned()),
        result: Some(wa::media_retry_notification::ResultType::SUCCESS),
        ..Default::default()
    }
    .encode_to_vec();
    let iv: [u8; 12] = rand::random();
    let mut ciphertext = Vec::new();
    wacore_libsignal::crypto::aes_256_gcm_encrypt(
        &key,
        &iv,
        id.as_bytes(),
        &plaintext,
        &mut ciphertext,
    )
    .map_err(|e| StandInError::Media(format!("media retry encryption: {e:?}")))?;
    Ok(NodeBuilder::new("encrypt")
        .children([
            NodeBuilder::new("enc_p").bytes(ciphertext).build(),
            NodeBuilder::new("enc_iv").bytes(iv.to_vec()).build(),
        ])
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wacore::iq::spec::IqSpec as _;

    #[test]
    fn media_conn_parses_with_the_clients_spec() {
        let shared = Arc::new(Shared::new(crate::server::Options::default()));
        shared.cdn.set_host("127.0.0.1:4443".to_owned());
        let request = NodeBuilder::new("iq")
            .attr("id", "m1")
            .attr("type", "set")
            .attr("xmlns", "w:m")
            .children([NodeBuilder::new("media_conn").build()])
            .build();
        let reply = media_conn(&shared, &request);
        let parsed = wacore::iq::mediaconn::MediaConnSpec::new()
            .parse_response(&reply.as_node_ref())
            .unwrap();
        assert_eq!(parsed.hosts[0].hostname, "127.0.0.1:4443");
        assert_eq!(parsed.auth, shared.cdn.auth);
        assert!(parsed.ttl > 0);
    }

    #[test]
    fn uploads_are_checked_against_their_token_and_served_by_direct_path() {
        let cdn = Cdn::new();
        let encrypted = wacore::upload::encrypt_media(b"a picture", MediaType::Image).unwrap();
        let token = BASE64_URL_SAFE_NO_PAD.encode(encrypted.file_enc_sha256);
        let target = format!("/mms/image/{token}?auth={}&token={token}", cdn.auth);
        assert_eq!(cdn.answer("POST", &target, b"tampered").status, 400);
        let wrong_auth = format!("/mms/image/{token}?auth=nope&token={token}");
        assert_eq!(
            cdn.answer("POST", &wrong_auth, &encrypted.data_to_upload)
                .status,
            401
        );
        let uploaded = cdn.answer("POST", &target, &encrypted.data_to_upload);
        assert_eq!(uploaded.status, 200);
        let body = String::from_utf8(uploaded.body).unwrap();
        let direct_path = body
            .split("\"direct_path\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        assert!(direct_path.starts_with("/v/t62.7118-24/"));
        let download = format!("{direct_path}?auth={}&token={token}", cdn.auth);
        let fetched = cdn.answer("GET", &download, &[]);
        assert_eq!(fetched.status, 200);
        assert_eq!(fetched.body, encrypted.data_to_upload);
        let resumed = cdn.answer("POST", &format!("{target}&resume=1"), &[]);
        assert!(
            String::from_utf8(resumed.body)
                .unwrap()
                .contains("complete")
        );
        assert!(cdn.expire(&direct_path));
        assert_eq!(cdn.answer("GET", &download, &[]).status, 410);
        let fresh = cdn.reupload(&direct_path).unwrap();
        assert_eq!(cdn.answer("GET", &fresh, &[]).status, 200);
    }

    #[test]
    fn retry_answers_decrypt_with_the_clients_media_retry_parser() {
        let media_key = [7u8; 32];
        let node = NodeBuilder::new("notification")
            .attr("id", "3EB0RETRY")
            .attr("type", "mediaretry")
            .children([
                retry_answer(&media_key, "3EB0RETRY", "/v/t62.7118-24/1_2_3_n.enc").unwrap(),
            ])
            .build();
        let parsed =
            wacore::media_retry::parse_media_retry_notification(&node.as_node_ref(), &media_key)
                .unwrap();
        assert!(matches!(
            parsed,
            wacore::media_retry::MediaRetryResult::Success { direct_path }
                if direct_path == "/v/t62.7118-24/1_2_3_n.enc"
        ));
        // And the stand-in reads the client's request with the same key.
        let (ciphertext, iv) =
            wacore::media_retry::encrypt_media_retry_receipt(&media_key, "3EB0RETRY").unwrap();
        let plain = wacore::media_retry::decrypt_media_retry_notification(
            &media_key,
            "3EB0RETRY",
            &iv,
            &ciphertext,
        )
        .unwrap();
        let request = wa::ServerErrorReceipt::decode_from_slice(&plain).unwrap();
        assert_eq!(request.stanza_id.as_deref(), Some("3EB0RETRY"));
    }

    #[tokio::test]
    async fn the_cdn_speaks_http_over_tls() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::new(crate::server::Options::default()));
        shared.cdn.set_host(address.to_string());
        let uploaded = shared
            .cdn
            .upload_plaintext(b"hello", MediaType::Document)
            .unwrap();
        tokio::spawn(serve(listener, shared.clone()));
        // A TLS client that trusts the CDN's own certificate.
        use tokio_rustls::rustls::{self, pki_types};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(pki_types::CertificateDer::from(
                BASE64_STANDARD.decode(CERTIFICATE).unwrap(),
            ))
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let name = pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        tls.write_all(
            format!(
                "GET {}&token=x HTTP/1.1\r\nHost: {address}\r\n\r\n",
                uploaded.direct_path
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response).await;
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        let body_at = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert_eq!(
            response[body_at..],
            shared.cdn.blob(&uploaded.direct_path).unwrap()[..]
        );
    }
}
