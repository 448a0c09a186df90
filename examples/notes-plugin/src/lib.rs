//! An example third-party plugin: per-session notes (create, list with a cursor, get,
//! delete). Copy this crate to start your own; see README.md "Writing a plugin".

use gateway_sdk::store::{self, Tx};
use gateway_sdk::{ApiError, Capability, Json, JsonSchema, Manifest, Page, Plugin, Request, Route};
use serde::{Deserialize, Serialize};

/// A note on a session, stored under `note/<id>`.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Note {
    /// A ULID: notes list in creation order.
    id: String,
    text: String,
    /// Epoch ms.
    created_at: u64,
    /// Who wrote it (`user:<sub>` or `apikey:<id>`).
    created_by: String,
}

/// The body of createNote.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewNote {
    #[schemars(length(min = 1, max = 4096))]
    text: String,
}

const PREFIX: &[u8] = b"note/";
const MAX_TEXT: usize = 4096;

fn key(id: &str) -> Vec<u8> {
    [PREFIX, id.as_bytes()].concat()
}

/// A ULID: unique and sorted by creation time, so a prefix scan lists notes in order. The
/// generator keeps ids created in the same millisecond in order too. (WASI gives plugins a
/// clock and randomness, so `ulid` just works.)
fn new_id() -> Result<String, ApiError> {
    static IDS: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());
    let mut ids = IDS.lock().unwrap_or_else(|e| e.into_inner());
    ids.generate()
        .map(|id| id.to_string())
        .map_err(|_| ApiError::internal("note ids exhausted for this millisecond"))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn create_note(req: &Request) -> Result<Json<Note>, ApiError> {
    let new: NewNote = req.json()?;
    let text = new.text.trim();
    if text.is_empty() || text.len() > MAX_TEXT {
        return Err(ApiError::invalid_field(
            "text",
            format!("text must be 1 to {MAX_TEXT} bytes"),
        ));
    }
    let note = Note {
        id: new_id()?,
        text: text.to_owned(),
        created_at: now_ms(),
        created_by: req.caller().principal.clone(),
    };
    let mut tx = Tx::new();
    tx.put_json(&key(&note.id), &note)?;
    tx.commit()?;
    Ok(Json(note))
}

fn list_notes(req: &Request) -> Result<Json<Page<Note>>, ApiError> {
    Ok(Json(store::page_json(PREFIX, &req.page()?, |_: &Note| {
        true
    })?))
}

fn get_note(req: &Request) -> Result<Json<Note>, ApiError> {
    store::get_json(&key(req.param("id")?))?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("note not found"))
}

fn delete_note(req: &Request) -> Result<(), ApiError> {
    if store::delete(&key(req.param("id")?))? {
        Ok(())
    } else {
        Err(ApiError::not_found("note not found"))
    }
}

struct Notes;

impl Plugin for Notes {
    fn manifest() -> Manifest {
        let list = "/sessions/{session}/notes";
        let one = "/sessions/{session}/notes/{id}";
        Manifest::new("notes", env!("CARGO_PKG_VERSION"))
            .route(
                Route::post(list, Capability::Send, "createNote")
                    .summary("Create a note on a session")
                    .request::<NewNote>()
                    .response::<Note>()
                    .status(201),
                create_note,
            )
            .route(
                Route::get(list, Capability::Read, "listNotes")
                    .summary("List a session's notes, oldest first")
                    .paged()
                    .response::<Page<Note>>(),
                list_notes,
            )
            .route(
                Route::get(one, Capability::Read, "getNote")
                    .summary("Get one note")
                    .response::<Note>(),
                get_note,
            )
            .route(
                Route::delete(one, Capability::Send, "deleteNote")
                    .summary("Delete a note")
                    .status(204),
                delete_note,
            )
    }
}

gateway_sdk::export!(Notes);

#[cfg(test)]
mod tests {
    //! The notes operations on the SDK's in-memory host.

    use super::Notes;
    use gateway_sdk::json;
    use gateway_sdk::testing::TestHost;

    #[test]
    fn create_list_get_delete() {
        let host = TestHost::new::<Notes>();
        let s = host.add_session();
        let path = format!("/sessions/{s}/notes");
        let created = host.post(&path, json!({"text": "  hello  "}));
        assert_eq!(created.status, 201);
        let note = created.json();
        assert_eq!(note["text"], "hello");
        assert_eq!(note["createdBy"], "user:test");
        for i in 0..4 {
            host.post(&path, json!({"text": format!("n{i}")}));
        }
        let page = host.get(&format!("{path}?limit=3")).json();
        assert_eq!(page["data"].as_array().unwrap().len(), 3);
        assert_eq!(page["data"][0]["text"], "hello");
        let id = note["id"].as_str().unwrap();
        assert_eq!(host.get(&format!("{path}/{id}")).json(), note);
        assert_eq!(host.delete(&format!("{path}/{id}")).status, 204);
        let gone = host.get(&format!("{path}/{id}"));
        assert_eq!(gone.status, 404);
        assert_eq!(gone.error_code().as_deref(), Some("not_found"));
        let empty = host.post(&path, json!({"text": "   "}));
        assert_eq!(empty.status, 400);
        assert_eq!(empty.json()["error"]["details"]["field"], "text");
    }
}
