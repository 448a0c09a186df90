//! The `contacts` plugin (API.md §3): a per-session contact store built from the engine's
//! events, and the eight contact operations — STORED reads that work while disconnected,
//! and LIVE calls through the session's WhatsApp connection (501 when it is down).

mod events;
mod model;
mod store;

use gateway_sdk::store as kv;
use gateway_sdk::{
    ApiError, Capability, Event, Jid, Manifest, Page, PageRequest, Plugin, Request, RequestExt,
    Response, Route, jid, json, whatsapp_read, whatsapp_send,
};
use model::Identity;
use store::{
    IDENTITY_PREFIX, LIST_ITEM_PREFIX, Tx, decode, id_suffix, member_index_prefix, view_key,
};

fn identity_schema() -> serde_json::Value {
    let ns = json!({"type": ["string", "null"]});
    json!({
        "type": "object",
        "required": ["id", "firstSeenAt", "updatedAt"],
        "properties": {
            "id": {"type": "integer", "description": "stable per person and session"},
            "lid": ns, "name": ns, "businessName": ns, "phoneJid": ns, "phoneNumber": ns,
            "firstSeenAt": {"type": "integer"}, "updatedAt": {"type": "integer"}
        }
    })
}

fn page_schema(item: serde_json::Value) -> serde_json::Value {
    json!({"type": "object", "properties": {
        "data": {"type": "array", "items": item},
        "nextCursor": {"type": ["string", "null"]}}})
}

/// A person's JID from the path: raw or `%40`-encoded (the host decoded it).
fn person_param(req: &Request, name: &str) -> Result<Jid, ApiError> {
    jid::parse_person(req.param(name)?).map_err(|e| ApiError::invalid_field(name, e.to_string()))
}

struct Contacts;

impl Plugin for Contacts {
    fn manifest() -> Manifest {
        let base = "/sessions/{session}/contacts";
        let mut m = Manifest::new("contacts", env!("CARGO_PKG_VERSION"))
            .route(
                Route::get(base, Capability::Read, "listContacts")
                    .summary("List stored contact identities (STORED)")
                    .query("source", "`dm` (has a direct chat) or `group` (seen in a group)", false)
                    .query("group", "only members of this group JID", false)
                    .query("q", "case-insensitive substring of a name or the number", false)
                    .query("limit", "page size, 1-200 (default 50)", false)
                    .query("cursor", "nextCursor of the previous page", false)
                    .response_schema(page_schema(identity_schema())),
            )
            .route(
                Route::get(&format!("{base}/check"), Capability::Read, "checkContact")
                    .summary("Whether a phone number is on WhatsApp (LIVE)")
                    .query("phone", "digits with country code; a leading + is allowed", true)
                    .response_schema(json!({"type": "object", "properties": {
                        "query": {"type": "string"}, "isOnWhatsApp": {"type": "boolean"},
                        "jid": {"type": ["string", "null"]}, "lid": {"type": ["string", "null"]}}})),
            )
            .route(
                Route::get(&format!("{base}/blocked"), Capability::Read, "listBlocked")
                    .summary("The account's block list (LIVE)")
                    .response_schema(json!({"type": "object", "properties": {"data": {"type": "array", "items": {
                        "type": "object", "properties": {"jid": {"type": "string"},
                        "lid": {"type": ["string", "null"]}, "blockedAt": {"type": ["integer", "null"]}}}}}})),
            )
            .route(
                Route::get(&format!("{base}/{{lid}}"), Capability::Read, "getContact")
                    .summary("Everything stored about one person, by LID (STORED)")
                    .response_schema(json!({"type": "object", "properties": {
                        "identity": identity_schema(), "dm": {"type": "boolean"},
                        "groups": {"type": "array", "items": {"type": "object", "properties": {
                            "jid": {"type": "string"}, "name": {"type": ["string", "null"]},
                            "role": {"type": "string", "enum": ["member", "admin", "superadmin"]},
                            "tag": {"type": ["string", "null"]}, "lastSeen": {"type": "integer"}}}}}})),
            )
            .route(
                Route::get(&format!("{base}/{{jid}}/picture"), Capability::Read, "getContactPicture")
                    .summary("The contact's profile picture (LIVE; 404 when none or hidden)")
                    .response_schema(json!({"type": "object", "properties": {
                        "id": {"type": "string"}, "url": {"type": "string"},
                        "type": {"type": "string"}, "directPath": {"type": "string"}}})),
            )
            .route(
                Route::get(&format!("{base}/{{jid}}/about"), Capability::Read, "getContactAbout")
                    .summary("The contact's about text (LIVE; may be empty)")
                    .response_schema(json!({"type": "object", "properties": {"about": {"type": "string"}}})),
            )
            .route(
                Route::post(&format!("{base}/{{jid}}/block"), Capability::Send, "blockContact")
                    .summary("Block a contact (LIVE, idempotent)")
                    .status(204),
            )
            .route(
                Route::post(&format!("{base}/{{jid}}/unblock"), Capability::Send, "unblockContact")
                    .summary("Unblock a contact (LIVE, idempotent)")
                    .status(204),
            );
        for e in events::SUBSCRIPTIONS {
            m = m.event(e);
        }
        m
    }

    fn handle(req: Request) -> Result<Response, ApiError> {
        match req.operation_id.as_str() {
            "listContacts" => list_contacts(&req),
            "getContact" => get_contact(&req),
            "checkContact" => {
                let raw = req
                    .query("phone")
                    .filter(|p| !p.trim().is_empty())
                    .ok_or_else(|| ApiError::invalid_field("phone", "phone is required"))?;
                let phone = jid::parse_phone(raw, true)
                    .map_err(|e| ApiError::invalid_field("phone", e.to_string()))?;
                let r = whatsapp_read::check_phone(&phone)?;
                Ok(gateway_sdk::ok(&json!({
                    "query": r.query, "isOnWhatsApp": r.is_on_whatsapp, "jid": r.jid, "lid": r.lid,
                })))
            }
            "getContactPicture" => {
                let target = person_param(&req, "jid")?;
                match whatsapp_read::profile_picture(&target.to_string())? {
                    Some(p) => Ok(gateway_sdk::ok(&json!({
                        "id": p.id, "url": p.url, "type": p.kind, "directPath": p.direct_path,
                    }))),
                    None => Err(ApiError::not_found(
                        "no profile picture (none set, or hidden by the contact's privacy settings)",
                    )),
                }
            }
            "getContactAbout" => {
                let target = person_param(&req, "jid")?;
                let about = whatsapp_read::about(&target.to_string())?;
                Ok(gateway_sdk::ok(&json!({"about": about})))
            }
            "blockContact" => {
                let target = person_param(&req, "jid")?;
                whatsapp_send::block(&target.to_string())?;
                Ok(gateway_sdk::no_content())
            }
            "unblockContact" => {
                let target = person_param(&req, "jid")?;
                whatsapp_send::unblock(&target.to_string())?;
                Ok(gateway_sdk::no_content())
            }
            "listBlocked" => {
                let list = whatsapp_read::blocklist()?;
                let data: Vec<_> = list
                    .into_iter()
                    .map(|b| json!({"jid": b.jid, "lid": b.lid, "blockedAt": b.blocked_at}))
                    .collect();
                Ok(gateway_sdk::ok(&json!({"data": data})))
            }
            other => Err(ApiError::not_found(format!("unknown operation {other}"))),
        }
    }

    fn on_event(event: Event) -> Result<(), ApiError> {
        events::apply(&event)
    }
}

/// Which contacts a list asks for.
struct Filter {
    dm_only: bool,
    group_only: bool,
    q: Option<String>,
}

impl Filter {
    fn keep(&self, ident: &Identity) -> bool {
        self.q.as_deref().is_none_or(|q| ident.matches(q))
            && (!self.dm_only || ident.dm)
            && (!self.group_only || !ident.groups.is_empty())
    }
}

fn list_contacts(req: &Request) -> Result<Response, ApiError> {
    let page = req.page()?;
    let (dm_only, group_only) = match req.query("source").filter(|s| !s.is_empty()) {
        None => (false, false),
        Some("dm") => (true, false),
        Some("group") => (false, true),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "source",
                "source must be dm or group",
            ));
        }
    };
    let group = match req.query("group").filter(|g| !g.is_empty()) {
        Some(g) => Some(
            jid::parse_group(g)
                .map_err(|e| ApiError::invalid_field("group", e.to_string()))?
                .to_string(),
        ),
        None => None,
    };
    let q = req.query("q").map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > 100) {
        return Err(ApiError::invalid_field("q", "q is at most 100 characters"));
    }
    let filter = Filter {
        dm_only,
        group_only,
        q: q.map(str::to_owned),
    };
    if group.is_none() && !dm_only && !group_only && q.is_none() {
        return page_rendered(&page);
    }
    // Members of one group come from its index; everyone else from the identity records.
    // Both are in id order, and the cursor is the last id served.
    let (prefix, indexed) = match &group {
        Some(g) => (member_index_prefix(g), true),
        None => (IDENTITY_PREFIX.to_vec(), false),
    };
    let (data, next) = page_ids(&prefix, indexed, &page, &filter)?;
    let views: Vec<_> = data.iter().map(Identity::view).collect();
    Ok(gateway_sdk::ok(&Page {
        data: views,
        next_cursor: next,
    }))
}

/// The cursor of a page that ended at `id`.
fn id_cursor(id: u64) -> String {
    gateway_sdk::encode_cursor(format!("{id:016x}").as_bytes())
}

/// The id a cursor resumes after.
fn cursor_id(page: &PageRequest) -> Result<Option<u64>, ApiError> {
    page.after
        .as_ref()
        .map(|c| {
            std::str::from_utf8(c)
                .ok()
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or_else(|| {
                    ApiError::invalid_field("cursor", "cursor is not one this gateway issued")
                })
        })
        .transpose()
}

/// An unfiltered page, spliced from the list items rendered at write time: one scan, no
/// decoding or encoding of the identities.
fn page_rendered(page: &PageRequest) -> Result<Response, ApiError> {
    let after =
        cursor_id(page)?.map(|id| [LIST_ITEM_PREFIX, format!("{id:016x}").as_bytes()].concat());
    let rows = kv::scan(LIST_ITEM_PREFIX, after.as_deref(), page.limit + 1, false)?;
    let more = rows.len() > page.limit as usize;
    let served = &rows[..rows.len().min(page.limit as usize)];
    let mut body = Vec::with_capacity(served.iter().map(|r| r.value.len() + 1).sum::<usize>() + 64);
    body.extend_from_slice(b"{\"data\":[");
    for (i, r) in served.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&r.value);
    }
    body.extend_from_slice(b"],\"nextCursor\":");
    match served
        .last()
        .and_then(|r| id_suffix(&r.key))
        .filter(|_| more)
    {
        Some(id) => body.extend_from_slice(
            serde_json::to_string(&id_cursor(id))
                .unwrap_or_default()
                .as_bytes(),
        ),
        None => body.extend_from_slice(b"null"),
    }
    body.push(b'}');
    Ok(gateway_sdk::bytes(200, "application/json", body))
}

/// One page of identities whose id key lies under `prefix`, filtered, resuming after the
/// cursor's id. Every matching identity appears exactly once across pages. `indexed`
/// prefixes hold ids only (a group's member index); the identity prefix holds the records.
fn page_ids(
    prefix: &[u8],
    indexed: bool,
    page: &PageRequest,
    filter: &Filter,
) -> Result<(Vec<Identity>, Option<String>), ApiError> {
    // Without filters a page needs exactly one entry past its end; with them, read ahead.
    let unfiltered = !filter.dm_only && !filter.group_only && filter.q.is_none();
    let chunk_size: u32 = if unfiltered { page.limit + 1 } else { 256 };
    let tx = Tx::new(0);
    let after_id = cursor_id(page)?;
    let mut after_key = after_id.map(|id| [prefix, format!("{id:016x}").as_bytes()].concat());
    let mut out: Vec<Identity> = Vec::new();
    loop {
        let chunk = kv::scan(prefix, after_key.as_deref(), chunk_size, false)?;
        let exhausted = chunk.len() < chunk_size as usize;
        for e in chunk {
            after_key = Some(e.key.clone());
            let ident = if indexed {
                let Some(id) = id_suffix(&e.key) else {
                    continue;
                };
                let Some(ident) = tx.identity(id)? else {
                    continue;
                };
                ident
            } else {
                decode::<Identity>(&e.value)?
            };
            if !filter.keep(&ident) {
                continue;
            }
            if out.len() == page.limit as usize {
                let last = out.last().map(|i| i.id).unwrap_or(0);
                return Ok((out, Some(id_cursor(last))));
            }
            out.push(ident);
        }
        if exhausted {
            return Ok((out, None));
        }
    }
}

fn get_contact(req: &Request) -> Result<Response, ApiError> {
    let raw = req.param("lid")?;
    let who = jid::parse_person(raw).map_err(|e| ApiError::invalid_field("lid", e.to_string()))?;
    let not_found = || ApiError::not_found(format!("no contact {who} is stored for this session"));
    let id = Tx::new(0).find(&who)?.ok_or_else(not_found)?;
    // The answer was rendered when the identity was last written (records stored by an
    // older plugin version have no rendering yet: render them now).
    match kv::get(&view_key(id))? {
        Some(body) => Ok(gateway_sdk::bytes(200, "application/json", body)),
        None => {
            let ident = Tx::new(0).identity(id)?.ok_or_else(not_found)?;
            Ok(gateway_sdk::ok(&ident.contact()))
        }
    }
}

gateway_sdk::export!(Contacts);
