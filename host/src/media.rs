//! The media store: files uploaded with `POST /sessions/{session}/media` (and media sent
//! inline, written here at accept), streamed to disk by the host — never through plugin
//! memory — and kept for a day so a send can name them by `med_…` id. One directory per
//! session, so an id names nothing outside its session.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// How long an uploaded file can be sent by id.
const MEDIA_TTL_MS: u64 = 24 * 3600 * 1000;

/// What the store knows of one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMedia {
    /// `med_<ULID>`.
    pub id: String,
    pub mimetype: String,
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    pub file_name: Option<String>,
    pub created_at: u64,
    pub expires_at: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("media is larger than {0} bytes")]
    TooLarge(u64),
    #[error("{0}")]
    Invalid(String),
    #[error("media {0} not found (or expired)")]
    NotFound(String),
    #[error("media store: {0}")]
    Io(#[from] std::io::Error),
}

/// Files per session under one directory.
#[derive(Debug, Clone)]
pub struct MediaStore {
    dir: PathBuf,
    max_bytes: u64,
}

/// `type/subtype` (parameters dropped, lower-cased, aliases folded as the plugins fold
/// them); `None` when it is not a MIME type.
pub fn media_type(content_type: &str) -> Option<String> {
    use gateway_sdk::media_types::{essence, well_formed};
    (content_type.len() <= 255 && well_formed(content_type)).then(|| essence(content_type))
}

fn valid_id(id: &str) -> bool {
    id.strip_prefix("med_")
        .is_some_and(|u| u.len() == 26 && u.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.contains(['/', '\\', '\0'])
        && name != "."
        && name != ".."
}

impl MediaStore {
    pub fn new(dir: PathBuf, max_bytes: u64) -> MediaStore {
        MediaStore { dir, max_bytes }
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn session_dir(&self, session: &str) -> PathBuf {
        self.dir.join(session)
    }

    fn paths(&self, session: &str, id: &str) -> (PathBuf, PathBuf) {
        let d = self.session_dir(session);
        (d.join(format!("{id}.bin")), d.join(format!("{id}.json")))
    }

    fn describe(
        mimetype: &str,
        file_name: Option<&str>,
        size: u64,
        sha256: String,
    ) -> Result<StoredMedia, MediaError> {
        if let Some(n) = file_name
            && !valid_file_name(n)
        {
            return Err(MediaError::Invalid(
                "filename must be 1-255 characters without path separators".into(),
            ));
        }
        let now = crate::clock::now_ms();
        Ok(StoredMedia {
            id: format!("med_{}", ulid::Ulid::generate()),
            mimetype: mimetype.to_owned(),
            size,
            sha256,
            file_name: file_name.map(str::to_owned),
            created_at: now,
            expires_at: now + MEDIA_TTL_MS,
        })
    }

    /// Streams chunks to a file of the session, refusing more than the limit (the partial
    /// file is removed) — the caller's body never sits in memory whole.
    pub async fn save_stream<S, E>(
        &self,
        session: &str,
        mimetype: &str,
        file_name: Option<&str>,
        mut chunks: S,
    ) -> Result<StoredMedia, MediaError>
    where
        S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures::StreamExt;
        let mut meta = Self::describe(mimetype, file_name, 0, String::new())?;
        let dir = self.session_dir(session);
        crate::storage::create_private_dir(&dir)?;
        let (bin, json) = self.paths(session, &meta.id);
        let tmp = bin.with_extension("part");
        let mut file = tokio::fs::File::create(&tmp).await?;
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let outcome: Result<(), MediaError> = async {
            while let Some(chunk) = chunks.next().await {
                let chunk =
                    chunk.map_err(|e| MediaError::Invalid(format!("the upload broke off: {e}")))?;
                size += chunk.len() as u64;
                if size > self.max_bytes {
                    return Err(MediaError::TooLarge(self.max_bytes));
                }
                hash.update(&chunk);
                file.write_all(&chunk).await?;
            }
            file.sync_all().await?;
            Ok(())
        }
        .await;
        drop(file);
        if let Err(e) = outcome {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        if size == 0 {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(MediaError::Invalid("the upload is empty".into()));
        }
        meta.size = size;
        meta.sha256 = hex::encode(hash.finalize());
        tokio::fs::rename(&tmp, &bin).await?;
        tokio::fs::write(&json, serde_json::to_vec(&meta).expect("serialises")).await?;
        Ok(meta)
    }

    /// Stores bytes already in memory (media sent inline in a request).
    pub async fn save_bytes(
        &self,
        session: &str,
        mimetype: &str,
        file_name: Option<&str>,
        bytes: Vec<u8>,
    ) -> Result<StoredMedia, MediaError> {
        let chunks = futures::stream::iter([Ok::<_, std::convert::Infallible>(Bytes::from(bytes))]);
        self.save_stream(session, mimetype, file_name, chunks).await
    }

    /// A file's description, if it exists in the session and has not expired.
    pub async fn meta(&self, session: &str, id: &str) -> Result<StoredMedia, MediaError> {
        if !valid_id(id) {
            return Err(MediaError::NotFound(id.to_owned()));
        }
        let (_, json) = self.paths(session, id);
        let raw = match tokio::fs::read(&json).await {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(MediaError::NotFound(id.to_owned()));
            }
            Err(e) => return Err(e.into()),
        };
        let meta: StoredMedia = serde_json::from_slice(&raw)
            .map_err(|e| MediaError::Invalid(format!("media record {id}: {e}")))?;
        if meta.expires_at <= crate::clock::now_ms() {
            return Err(MediaError::NotFound(id.to_owned()));
        }
        Ok(meta)
    }

    /// A file's description and bytes.
    pub async fn load(
        &self,
        session: &str,
        id: &str,
    ) -> Result<(StoredMedia, Vec<u8>), MediaError> {
        let meta = self.meta(session, id).await?;
        let (bin, _) = self.paths(session, id);
        Ok((meta, tokio::fs::read(bin).await?))
    }

    /// Removes expired files; returns how many.
    pub fn sweep(&self) -> usize {
        let now = crate::clock::now_ms();
        let mut removed = 0;
        let Ok(sessions) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        for s in sessions.flatten() {
            let Ok(files) = std::fs::read_dir(s.path()) else {
                continue;
            };
            for f in files.flatten() {
                let p = f.path();
                if p.extension().is_some_and(|e| e == "json")
                    && let Ok(raw) = std::fs::read(&p)
                    && let Ok(meta) = serde_json::from_slice::<StoredMedia>(&raw)
                    && meta.expires_at <= now
                {
                    let _ = std::fs::remove_file(p.with_extension("bin"));
                    let _ = std::fs::remove_file(&p);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Removes every file of a session (deleting it).
    pub fn purge_session(&self, session: &str) {
        let dir = self.session_dir(session);
        if dir.starts_with(&self.dir) && dir != self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn uploads_stream_to_disk_within_the_limit_and_stay_in_their_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::new(dir.path().to_owned(), 1000);
        let m = store
            .save_bytes("S1", "image/jpeg", Some("a.jpg"), vec![7; 600])
            .await
            .unwrap();
        assert_eq!(m.size, 600);
        assert_eq!(m.sha256, hex::encode(Sha256::digest([7u8; 600])));
        let (meta, bytes) = store.load("S1", &m.id).await.unwrap();
        assert_eq!((meta, bytes.len()), (m.clone(), 600));
        assert!(matches!(
            store.load("S2", &m.id).await,
            Err(MediaError::NotFound(_))
        ));
        assert!(matches!(
            store
                .save_bytes("S1", "image/jpeg", None, vec![1; 1001])
                .await,
            Err(MediaError::TooLarge(1000))
        ));
        assert!(matches!(
            store
                .save_bytes("S1", "x/y", Some("../etc/passwd"), vec![1])
                .await,
            Err(MediaError::Invalid(_))
        ));
        assert!(matches!(
            store.meta("S1", "../../secret").await,
            Err(MediaError::NotFound(_))
        ));
        store.purge_session("S1");
        assert!(store.load("S1", &m.id).await.is_err());
    }

    #[test]
    fn media_types_are_read_strictly() {
        assert_eq!(media_type("image/JPEG; q=1").as_deref(), Some("image/jpeg"));
        assert_eq!(
            media_type("application/vnd.ms-excel").as_deref(),
            Some("application/vnd.ms-excel")
        );
        assert!(media_type("jpeg").is_none());
        assert!(media_type("image/").is_none());
        assert!(media_type("a b/c").is_none());
    }
}
