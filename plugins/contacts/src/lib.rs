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
use model::{ContactView, Group, GroupView, Identity, Membership};
use store::{
    IDENTITY_PREFIX, Tx, dm_key, group_key, id_suffix, member_index_prefix,
    membership_prefix,
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
    fn keep(&self, tx: &Tx, ident: &Identity) -> Result<bool, ApiError> {
        if let Some(q) = &self.q
            && !ident.matches(q)
        {
            return Ok(false);
        }
        if self.dm_only && !tx.has_dm(ident.id)? {
            return Ok(false);
        }
        if self.group_only && kv::scan(&membership_prefix(ident.id), None, 1, false)?.is_empty() {
            return Ok(false);
        }
        Ok(true)
    }
}

fn list_contacts(req: &Request) -> Result<Response, ApiError> {
    let page = req.page()?;
    let (dm_only, group_only) = match req.query("source").filter(|s| !s.is_empty()) {
        None => (false, false),
        Some("dm") => (true, false),
        Some("group") => (false, true),
        Some(_) => return Err(ApiError::invalid_field("source", "source must be dm or group")),
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
    // Members of one group come from its index; everyone else from the identity list.
    // Both are in id order, and the cursor is the last id served.
    let prefix = match &group {
        Some(g) => member_index_prefix(g),
        None => IDENTITY_PREFIX.to_vec(),
    };
    let (data, next) = page_ids(&prefix, &page, &filter)?;
    let views: Vec<_> = data.iter().map(Identity::view).collect();
    Ok(gateway_sdk::ok(&Page {
        data: views,
        next_cursor: next,
    }))
}

/// One page of identities whose id key lies under `prefix`, filtered, resuming after the
/// cursor's id. Every matching identity appears exactly once across pages.
fn page_ids(
    prefix: &[u8],
    page: &PageRequest,
    filter: &Filter,
) -> Result<(Vec<Identity>, Option<String>), ApiError> {
    const CHUNK: u32 = 256;
    let tx = Tx::new(0);
    let after_id = match &page.after {
        Some(c) => Some(
            std::str::from_utf8(c)
                .ok()
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or_else(|| ApiError::invalid_field("cursor", "cursor is not one this gateway issued"))?,
        ),
        None => None,
    };
    let mut after_key = after_id.map(|id| [prefix, format!("{id:016x}").as_bytes()].concat());
    let mut out: Vec<Identity> = Vec::new();
    loop {
        let chunk = kv::scan(prefix, after_key.as_deref(), CHUNK, false)?;
        let exhausted = chunk.len() < CHUNK as usize;
        for e in chunk {
            after_key = Some(e.key.clone());
            let Some(id) = id_suffix(&e.key) else { continue };
            let Some(ident) = tx.identity(id)? else { continue };
            if !filter.keep(&tx, &ident)? {
                continue;
            }
            if out.len() == page.limit as usize {
                let last = out.last().map(|i| i.id).unwrap_or(0);
                return Ok((out, Some(gateway_sdk::encode_cursor(format!("{last:016x}").as_bytes()))));
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
    let tx = Tx::new(0);
    let not_found = || ApiError::not_found(format!("no contact {who} is stored for this session"));
    let id = tx.find(&who)?.ok_or_else(not_found)?;
    let ident = tx.identity(id)?.ok_or_else(not_found)?;
    let dm = kv::get(&dm_key(id))?.is_some();
    let memberships: Vec<Membership> = kv::scan_all_json(&membership_prefix(id))?
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    let groups: Vec<Option<Group>> = memberships
        .iter()
        .map(|m| kv::get_json::<Group>(&group_key(&m.group)))
        .collect::<Result<_, _>>()?;
    let views: Vec<GroupView<'_>> = memberships
        .iter()
        .zip(&groups)
        .map(|(m, g)| GroupView {
            jid: &m.group,
            name: g.as_ref().and_then(|g| g.name.as_deref()),
            role: &m.role,
            tag: m.tag.as_deref(),
            last_seen: m.last_seen,
        })
        .collect();
    Ok(gateway_sdk::ok(&ContactView {
        identity: ident.view(),
        dm,
        groups: views,
    }))
}

gateway_sdk::export!(Contacts);
