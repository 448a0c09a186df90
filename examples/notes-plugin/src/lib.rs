//! An example third-party plugin: per-session notes (create, list with a cursor, get,
//! delete). Copy this crate to start your own; see README.md "Writing a plugin".

use gateway_sdk::store::{self, Batch};
use gateway_sdk::{
    ApiError, Capability, Manifest, Plugin, Request, RequestExt, Response, Route, json,
};
use serde::{Deserialize, Serialize};

/// A stored note, under `note/<id>`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Note {
    id: String,
    text: String,
    created_at: u64,
    created_by: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewNote {
    text: String,
}

const PREFIX: &[u8] = b"note/";
const MAX_TEXT: usize = 4096;

fn key(id: &str) -> Vec<u8> {
    [PREFIX, id.as_bytes()].concat()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A ULID: unique, and sorted by creation time, so a prefix scan lists notes in order.
/// (WASI gives plugins a clock and randomness, so std-based crates like `ulid` just work.)
fn new_id() -> String {
    ulid::Ulid::generate().to_string()
}

fn note_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "required": ["id", "text", "createdAt", "createdBy"],
        "properties": {
            "id": {"type": "string"},
            "text": {"type": "string"},
            "createdAt": {"type": "integer", "description": "epoch ms"},
            "createdBy": {"type": "string"}
        }
    })
}

struct Notes;

impl Plugin for Notes {
    fn manifest() -> Manifest {
        Manifest::new("notes", env!("CARGO_PKG_VERSION"))
            .route(
                Route::post("/sessions/{session}/notes", Capability::Send, "createNote")
                    .summary("Create a note on a session")
                    .request_schema(json!({
                        "type": "object",
                        "required": ["text"],
                        "properties": {"text": {"type": "string", "maxLength": MAX_TEXT}}
                    }))
                    .response_schema(note_schema())
                    .status(201),
            )
            .route(
                Route::get("/sessions/{session}/notes", Capability::Read, "listNotes")
                    .summary("List a session's notes, oldest first")
                    .query("limit", "Page size, 1-200 (default 50)", false)
                    .query("cursor", "nextCursor of the previous page", false)
                    .response_schema(json!({
                        "type": "object",
                        "properties": {
                            "data": {"type": "array", "items": note_schema()},
                            "nextCursor": {"type": ["string", "null"]}
                        }
                    })),
            )
            .route(
                Route::get(
                    "/sessions/{session}/notes/{id}",
                    Capability::Read,
                    "getNote",
                )
                .summary("Get one note")
                .response_schema(note_schema()),
            )
            .route(
                Route::delete(
                    "/sessions/{session}/notes/{id}",
                    Capability::Send,
                    "deleteNote",
                )
                .summary("Delete a note")
                .status(204),
            )
    }

    fn handle(req: Request) -> Result<Response, ApiError> {
        match req.operation_id.as_str() {
            "createNote" => {
                let new: NewNote = req.json()?;
                let text = new.text.trim();
                if text.is_empty() || text.len() > MAX_TEXT {
                    return Err(ApiError::invalid_field(
                        "text",
                        format!("text must be 1 to {MAX_TEXT} bytes"),
                    ));
                }
                let note = Note {
                    id: new_id(),
                    text: text.to_owned(),
                    created_at: now_ms(),
                    created_by: req.caller.principal.clone(),
                };
                let mut batch = Batch::new();
                batch.put_json(&key(&note.id), &note)?;
                batch.commit()?;
                Ok(gateway_sdk::created(&note))
            }
            "listNotes" => {
                let page = req.page()?;
                let (data, next_cursor) = store::page_json::<Note>(PREFIX, &page, |_| true)?;
                Ok(gateway_sdk::ok(&gateway_sdk::Page { data, next_cursor }))
            }
            "getNote" => {
                let id = req.param("id")?;
                match store::get_json::<Note>(&key(id))? {
                    Some(n) => Ok(gateway_sdk::ok(&n)),
                    None => Err(ApiError::not_found("note not found")),
                }
            }
            "deleteNote" => {
                if store::delete(&key(req.param("id")?))? {
                    Ok(gateway_sdk::no_content())
                } else {
                    Err(ApiError::not_found("note not found"))
                }
            }
            other => Err(ApiError::not_found(format!("unknown operation {other}"))),
        }
    }
}

gateway_sdk::export!(Notes);
