//! The `contacts` plugin (API.md §3): a per-session contact store built from the engine's
//! events, and the eight contact operations — STORED reads that work while disconnected,
//! and LIVE calls through the session's WhatsApp connection (501 when it is down).

mod events;
mod model;
mod store;
#[cfg(test)]
mod tests;

use gateway_sdk::store as kv;
use gateway_sdk::{
    ApiError, Capability, IntoResponse, Jid, Json, JsonSchema, Manifest, Page, PageRequest, Plugin,
    Request, Response, Route, jid, whatsapp,
};
use model::{ContactView, Identity, IdentityView};
use serde::Serialize;
use store::{
    ContactStore, IDENTITY_PREFIX, LIST_ITEM_PREFIX, decode, id_suffix, member_index_prefix,
    view_by_lid_key, view_key,
};

/// checkContact's answer.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct CheckView {
    /// The number asked about, digits only.
    query: String,
    #[serde(rename = "isOnWhatsApp")]
    is_on_whatsapp: bool,
    jid: Option<String>,
    lid: Option<String>,
}

/// getContactPicture's answer: a time-limited CDN link.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct PictureView {
    id: String,
    url: String,
    /// `image` or `preview`.
    #[serde(rename = "type")]
    kind: String,
    direct_path: String,
}

/// getContactAbout's answer.
#[derive(Serialize, JsonSchema)]
struct AboutView {
    /// Empty when not set or hidden.
    about: String,
}

/// One blocked contact.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct BlockedView {
    jid: String,
    lid: Option<String>,
    /// Epoch ms when the gateway saw the block, if known.
    blocked_at: Option<u64>,
}

/// listBlocked's answer.
#[derive(Serialize, JsonSchema)]
struct BlockedList {
    data: Vec<BlockedView>,
}

/// A person's JID from the path: raw or `%40`-encoded (the host decoded it).
fn person_param(req: &Request, name: &str) -> Result<Jid, ApiError> {
    jid::parse_person(req.param(name)?).map_err(|e| ApiError::invalid_field(name, e.to_string()))
}

fn check_contact(req: &Request) -> Result<Json<CheckView>, ApiError> {
    let raw = req
        .query("phone")
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| ApiError::invalid_field("phone", "phone is required"))?;
    let phone =
        jid::parse_phone(raw, true).map_err(|e| ApiError::invalid_field("phone", e.to_string()))?;
    let r = whatsapp::check_phone(&phone)?;
    Ok(Json(CheckView {
        query: r.query,
        is_on_whatsapp: r.is_on_whatsapp,
        jid: r.jid,
        lid: r.lid,
    }))
}

fn get_contact_picture(req: &Request) -> Result<Json<PictureView>, ApiError> {
    let target = person_param(req, "jid")?;
    match whatsapp::profile_picture(&target.to_string())? {
        Some(p) => Ok(Json(PictureView {
            id: p.id,
            url: p.url,
            kind: p.kind,
            direct_path: p.direct_path,
        })),
        None => Err(ApiError::not_found(
            "no profile picture (none set, or hidden by the contact's privacy settings)",
        )),
    }
}

fn get_contact_about(req: &Request) -> Result<Json<AboutView>, ApiError> {
    let target = person_param(req, "jid")?;
    let about = whatsapp::about(&target.to_string())?;
    Ok(Json(AboutView { about }))
}

fn block_contact(req: &Request) -> Result<(), ApiError> {
    let target = person_param(req, "jid")?;
    Ok(whatsapp::block(&target.to_string())?)
}

fn unblock_contact(req: &Request) -> Result<(), ApiError> {
    let target = person_param(req, "jid")?;
    Ok(whatsapp::unblock(&target.to_string())?)
}

fn list_blocked(_req: &Request) -> Result<Json<BlockedList>, ApiError> {
    let data = whatsapp::blocklist()?
        .into_iter()
        .map(|b| BlockedView {
            jid: b.jid,
            lid: b.lid,
            blocked_at: b.blocked_at,
        })
        .collect();
    Ok(Json(BlockedList { data }))
}

struct Contacts;

impl Plugin for Contacts {
    fn manifest() -> Manifest {
        let base = "/sessions/{session}/contacts";
        let route = |method: fn(&str, Capability, &str) -> Route, path: &str, cap, id: &str| {
            method(&format!("{base}{path}"), cap, id)
        };
        Manifest::new("contacts", env!("CARGO_PKG_VERSION"))
            .route(
                route(Route::get, "", Capability::Read, "listContacts")
                    .summary("List stored contact identities (STORED)")
                    .query(
                        "source",
                        "`dm` (has a direct chat) or `group` (seen in a group)",
                        false,
                    )
                    .query("group", "only members of this group JID", false)
                    .query(
                        "q",
                        "case-insensitive substring of a name or the number",
                        false,
                    )
                    .paged()
                    .response::<Page<IdentityView<'static>>>(),
                list_contacts,
            )
            .route(
                route(Route::get, "/check", Capability::Read, "checkContact")
                    .summary("Whether a phone number is on WhatsApp (LIVE)")
                    .query(
                        "phone",
                        "digits with country code; a leading + is allowed",
                        true,
                    )
                    .response::<CheckView>(),
                check_contact,
            )
            .route(
                route(Route::get, "/blocked", Capability::Read, "listBlocked")
                    .summary("The account's block list (LIVE)")
                    .response::<BlockedList>(),
                list_blocked,
            )
            .route(
                route(Route::get, "/{lid}", Capability::Read, "getContact")
                    .summary("Everything stored about one person, by LID (STORED)")
                    .response::<ContactView<'static>>(),
                get_contact,
            )
            .route(
                route(
                    Route::get,
                    "/{jid}/picture",
                    Capability::Read,
                    "getContactPicture",
                )
                .summary("The contact's profile picture (LIVE; 404 when none or hidden)")
                .response::<PictureView>(),
                get_contact_picture,
            )
            .route(
                route(
                    Route::get,
                    "/{jid}/about",
                    Capability::Read,
                    "getContactAbout",
                )
                .summary("The contact's about text (LIVE; may be empty)")
                .response::<AboutView>(),
                get_contact_about,
            )
            .route(
                route(
                    Route::post,
                    "/{jid}/block",
                    Capability::Send,
                    "blockContact",
                )
                .summary("Block a contact (LIVE, idempotent)")
                .status(204),
                block_contact,
            )
            .route(
                route(
                    Route::post,
                    "/{jid}/unblock",
                    Capability::Send,
                    "unblockContact",
                )
                .summary("Unblock a contact (LIVE, idempotent)")
                .status(204),
                unblock_contact,
            )
            .on("contacts.upsert", events::contacts_upsert)
            .on("chats.upsert", events::chats_upsert)
            .on("groups.upsert", events::groups_upsert)
            .on("group.participants", events::group_participants)
            .on("lid.mapping", events::lid_mapping)
            .on("message", events::message)
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
    Ok(Json(Page {
        data: views,
        next_cursor: next,
    })
    .into_response(200))
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
    let rows = kv::scan_page(LIST_ITEM_PREFIX, after.as_deref(), page.limit + 1, false)?;
    let more = rows.len() > page.limit as usize;
    let served = || rows.iter().take(page.limit as usize);
    let mut body = Vec::with_capacity(served().map(|(_, v)| v.len() + 1).sum::<usize>() + 64);
    body.extend_from_slice(b"{\"data\":[");
    for (i, (_, value)) in served().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(value);
    }
    body.extend_from_slice(b"],\"nextCursor\":");
    match served()
        .last()
        .and_then(|(key, _)| id_suffix(key))
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
    let store = ContactStore::new(0);
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
                let Some(ident) = store.identity(id)? else {
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
    // By LID, the answer is stored under the LID itself: one read.
    if who.is_lid()
        && let Some(body) = kv::get(&view_by_lid_key(&who))?
    {
        return Ok(gateway_sdk::bytes(200, "application/json", body));
    }
    let store = ContactStore::new(0);
    let id = store.find(&who)?.ok_or_else(not_found)?;
    // The answer was rendered when the identity was last written (records stored by an
    // older plugin version have no rendering yet: render them now).
    match kv::get(&view_key(id))? {
        Some(body) => Ok(gateway_sdk::bytes(200, "application/json", body)),
        None => {
            let ident = store.identity(id)?.ok_or_else(not_found)?;
            Ok(Json(ident.contact()).into_response(200))
        }
    }
}

gateway_sdk::export!(Contacts);
