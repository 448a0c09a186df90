//! The `groups` plugin (API.md §4): a per-session group store built from events (groups,
//! members with role and tag, the account's own role) and the twenty group operations.
//! Lists and reads are STORED (`?refresh=true` re-reads WhatsApp); every change is LIVE,
//! and after each one that succeeds the plugin writes its store and emits the matching
//! event (`groups.upsert`, `groups.update`, `group.participants`), since WhatsApp does not
//! reliably echo an account's own changes — so the contacts and chats stores follow too.
//! Admin refusals come from WhatsApp's answer (403), never from the stored role.

mod events;
mod store;
#[cfg(test)]
mod tests;

use base64::Engine as _;
use gateway_sdk::groups::{self as wa, GroupInfo, GroupSetting, ParticipantAction};
use gateway_sdk::store as kv;
use gateway_sdk::whatsapp::{self, WhatsappError};
use gateway_sdk::{
    ApiError, Capability, IntoResponse, Json, JsonSchema, Manifest, Page, Plugin, Request,
    Response, Route, jid, json,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use store::{Group, GroupPatch, GroupStore, Member, ORDER_PREFIX, Person};

/// The most participants one create or add call may name (a group holds 1024).
const MAX_PARTICIPANTS: usize = 1023;
const MAX_SUBJECT: usize = 100;
const MAX_DESCRIPTION: usize = 2048;
const INVITE_PREFIX: &str = "https://chat.whatsapp.com/";

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A field that may be left out but not sent as `null`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    /// The subject, 1-100 characters.
    name: String,
    /// User JIDs or LIDs (1-1023); the session's own number is implicit.
    participants: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateRequest {
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "String")]
    subject: Option<String>,
    /// `""` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "String")]
    description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "bool")]
    announce: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "bool")]
    locked: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "bool")]
    join_approval: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "bool")]
    members_can_add: Option<bool>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ParticipantsRequest {
    /// User JIDs or LIDs (1-1023).
    participants: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PictureRequest {
    /// The picture: base64 JPEG (square, at most 640×640, is what WhatsApp shows).
    data: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct JoinRequestBody {
    /// A bare invite code or a `https://chat.whatsapp.com/<code>` link.
    invite: String,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct MemberView {
    id: u64,
    session_id: String,
    group_jid: String,
    lid: Option<String>,
    phone_jid: Option<String>,
    role: String,
    tag: Option<String>,
    first_seen_at: u64,
    last_seen_at: u64,
}

#[derive(Serialize, JsonSchema)]
struct PictureView {
    id: String,
    url: String,
    r#type: String,
    #[serde(rename = "directPath")]
    direct_path: String,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct InviteView {
    invite: String,
    code: String,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct InviteInfoView {
    group_jid: String,
    subject: String,
    description: Option<String>,
    participant_count: u32,
    join_approval: bool,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct JoinedView {
    group_jid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_approval: Option<bool>,
}

#[derive(Serialize, JsonSchema)]
struct ParticipantCode {
    jid: String,
    code: u16,
}

#[derive(Serialize, JsonSchema)]
struct ResultsView {
    data: Vec<ParticipantCode>,
}

/// `{gid}`: a group JID; malformed → 400.
fn gid(req: &Request) -> Result<String, ApiError> {
    jid::parse_group(req.param("gid")?)
        .map(|j| j.to_string())
        .map_err(|e| ApiError::invalid_field("gid", e.to_string()))
}

/// `{jid}`: a member's user JID or LID; malformed → 400.
fn member_jid(req: &Request) -> Result<Person, ApiError> {
    let raw = req.param("jid")?;
    jid::parse_person(raw).map_err(|e| ApiError::invalid_field("jid", e.to_string()))?;
    Person::from_addresses(Some(raw), None, None, None)
        .ok_or_else(|| ApiError::invalid_field("jid", "not a user JID or LID"))
}

/// A boolean query value: `true` or `false`; absent or empty is false.
fn flag(req: &Request, name: &str) -> Result<bool, ApiError> {
    match req.query(name).map(str::trim).unwrap_or("") {
        "" | "false" => Ok(false),
        "true" => Ok(true),
        _ => Err(ApiError::invalid_field(
            name,
            format!("{name} must be true or false"),
        )),
    }
}

/// The people of a create/add/approve/reject body: parsed, duplicates dropped, the
/// account itself dropped, 1-1023 of them.
fn participants(raw: &[String], me: Option<&whatsapp::Identity>) -> Result<Vec<Person>, ApiError> {
    let mut out: Vec<Person> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let j = jid::parse_person(r.trim())
            .map_err(|e| ApiError::invalid_field(&format!("participants[{i}]"), e.to_string()))?;
        let p = Person::from_addresses(Some(&j.to_non_device().to_string()), None, None, None)
            .ok_or_else(|| ApiError::invalid_field(&format!("participants[{i}]"), "not a user"))?;
        if p.is_me(me) || out.contains(&p) {
            continue;
        }
        out.push(p);
    }
    if out.is_empty() || out.len() > MAX_PARTICIPANTS {
        return Err(ApiError::invalid_field(
            "participants",
            format!("give 1-{MAX_PARTICIPANTS} participants other than the session's own number"),
        ));
    }
    Ok(out)
}

fn addresses(people: &[Person]) -> Vec<String> {
    people.iter().map(Person::address).collect()
}

fn check_subject(subject: &str) -> Result<(), ApiError> {
    let n = subject.chars().count();
    if subject.trim().is_empty() || n > MAX_SUBJECT {
        return Err(ApiError::invalid_field(
            "subject",
            format!("the subject is 1-{MAX_SUBJECT} characters"),
        ));
    }
    Ok(())
}

/// The invite code in a bare code or a `https://chat.whatsapp.com/<code>` link.
fn invite_code(raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    let code = raw
        .strip_prefix(INVITE_PREFIX)
        .or_else(|| raw.strip_prefix("http://chat.whatsapp.com/"))
        .map(|c| c.trim_end_matches('/'))
        .unwrap_or(raw);
    if code.is_empty() || code.len() > 64 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::invalid_field(
            "invite",
            "expected an invite code or a https://chat.whatsapp.com/<code> link",
        ));
    }
    Ok(code.to_owned())
}

/// WhatsApp's refusal of an invite (unknown or revoked) is the caller's bad input.
fn invite_error(e: WhatsappError) -> ApiError {
    match e {
        WhatsappError::Invalid(m) | WhatsappError::NotFound(m) => {
            ApiError::invalid_field("invite", format!("the invite is not valid or expired: {m}"))
        }
        other => other.into(),
    }
}

/// Publishes a change that is stored already; a refusal answers 500 (the grant is the
/// operator's to fix) and a retry publishes it again.
fn publish(name: &str, payload: &Value) -> Result<(), ApiError> {
    gateway_sdk::events::emit(name, payload).map(|_| ())
}

/// The account's address for `author` fields.
fn author(store: &mut GroupStore) -> Option<String> {
    store.me().map(|m| m.jid)
}

/// Stores a group's full metadata as WhatsApp answered it and publishes it as
/// `groups.upsert`; answers the stored group.
fn store_info(info: &GroupInfo) -> Result<Group, ApiError> {
    let mut store = GroupStore::new(now_ms());
    store.upsert_group(
        &info.jid,
        &GroupPatch {
            subject: Some(info.subject.clone()),
            description: Some(info.description.clone()),
            owner: Some(info.owner.clone()),
            created_at: Some(info.created_at),
            announce: Some(info.announce),
            locked: Some(info.locked),
            join_approval: Some(info.join_approval),
            members_can_add: Some(info.members_can_add),
        },
    )?;
    let people: Vec<Person> = info
        .participants
        .iter()
        .filter_map(|p| {
            Person::from_addresses(
                p.lid.as_deref(),
                p.jid.as_deref(),
                Some(&p.role),
                p.tag.as_deref(),
            )
        })
        .collect();
    store.set_members(&info.jid, &people)?;
    let group = store
        .get(&info.jid)?
        .ok_or_else(|| ApiError::internal("the group was not stored"))?;
    store.commit()?;
    let participants: Vec<Value> = info
        .participants
        .iter()
        .map(|p| json!({"lid": p.lid, "jid": p.jid, "role": p.role, "tag": p.tag}))
        .collect();
    publish(
        "groups.upsert",
        &json!({"groups": [{
            "jid": info.jid, "subject": info.subject, "description": info.description,
            "owner": info.owner, "createdAt": info.created_at, "announce": info.announce,
            "locked": info.locked, "joinApproval": info.join_approval,
            "membersCanAdd": info.members_can_add, "participants": participants,
        }]}),
    )?;
    Ok(group)
}

fn list_groups(req: &Request) -> Result<Response, ApiError> {
    let q = req
        .query("q")
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_lowercase);
    if q.as_ref().is_some_and(|q| q.chars().count() > MAX_SUBJECT) {
        return Err(ApiError::invalid_field("q", "q is at most 100 characters"));
    }
    let page = req.page()?;
    let groups = kv::page_json::<Group>(ORDER_PREFIX, &page, |g| {
        q.as_deref()
            .is_none_or(|q| g.subject.to_lowercase().contains(q))
    })?;
    Ok(Json(groups).into_response(200))
}

fn stored(gid: &str) -> Result<Group, ApiError> {
    store::find(gid)?
        .ok_or_else(|| ApiError::not_found(format!("no group {gid} is stored for this session")))
}

fn get_group(req: &Request) -> Result<Response, ApiError> {
    let gid = gid(req)?;
    if flag(req, "refresh")? {
        let info = whatsapp::group_metadata(&gid)?;
        return Ok(Json(store_info(&info)?).into_response(200));
    }
    Ok(Json(stored(&gid)?).into_response(200))
}

fn create_group(req: &Request) -> Result<Response, ApiError> {
    let body: CreateRequest = req.json()?;
    check_subject(&body.name).map_err(|_| {
        ApiError::invalid_field("name", format!("the name is 1-{MAX_SUBJECT} characters"))
    })?;
    let me = whatsapp::self_identity()?;
    let people = participants(&body.participants, me.as_ref())?;
    let info = wa::create(&body.name, &addresses(&people))?;
    Ok(Json(store_info(&info)?).into_response(201))
}

fn update_group(req: &Request) -> Result<(), ApiError> {
    let gid = gid(req)?;
    let body: UpdateRequest = req.json()?;
    if let Some(s) = &body.subject {
        check_subject(s)?;
    }
    if body
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        return Err(ApiError::invalid_field(
            "description",
            format!("the description is at most {MAX_DESCRIPTION} characters"),
        ));
    }
    let settings = [
        ("announce", GroupSetting::Announce, body.announce),
        ("locked", GroupSetting::Locked, body.locked),
        (
            "joinApproval",
            GroupSetting::JoinApproval,
            body.join_approval,
        ),
        (
            "membersCanAdd",
            GroupSetting::MembersCanAdd,
            body.members_can_add,
        ),
    ];
    if body.subject.is_none()
        && body.description.is_none()
        && settings.iter().all(|(_, _, v)| v.is_none())
    {
        return Err(ApiError::validation(
            "nothing to change: give subject, description, announce, locked, joinApproval or membersCanAdd",
        ));
    }
    // One WhatsApp call per field, in order; the first failure stops the rest.
    let mut applied: Vec<&str> = Vec::new();
    let mut change = serde_json::Map::new();
    let mut failure: Option<ApiError> = None;
    if let Some(s) = &body.subject {
        match wa::set_subject(&gid, s) {
            Ok(()) => {
                applied.push("subject");
                change.insert("subject".into(), json!(s));
            }
            Err(e) => failure = Some(e.into()),
        }
    }
    if failure.is_none()
        && let Some(d) = &body.description
    {
        match wa::set_description(&gid, Some(d.as_str()).filter(|d| !d.is_empty())) {
            Ok(()) => {
                applied.push("description");
                change.insert("description".into(), json!(d));
            }
            Err(e) => failure = Some(e.into()),
        }
    }
    for (field, setting, value) in settings {
        let Some(on) = value else { continue };
        if failure.is_some() {
            break;
        }
        match wa::set_setting(&gid, setting, on) {
            Ok(()) => {
                applied.push(field);
                change.insert(field.into(), json!(on));
            }
            Err(e) => failure = Some(e.into()),
        }
    }
    if !applied.is_empty() {
        let mut store = GroupStore::new(now_ms());
        let by = author(&mut store);
        if store.get(&gid)?.is_some() {
            store.upsert_group(
                &gid,
                &GroupPatch {
                    subject: body
                        .subject
                        .clone()
                        .filter(|_| applied.contains(&"subject")),
                    description: body
                        .description
                        .clone()
                        .filter(|_| applied.contains(&"description"))
                        .map(|d| Some(d).filter(|d| !d.is_empty())),
                    announce: body.announce.filter(|_| applied.contains(&"announce")),
                    locked: body.locked.filter(|_| applied.contains(&"locked")),
                    join_approval: body
                        .join_approval
                        .filter(|_| applied.contains(&"joinApproval")),
                    members_can_add: body
                        .members_can_add
                        .filter(|_| applied.contains(&"membersCanAdd")),
                    ..GroupPatch::default()
                },
            )?;
            store.commit()?;
        }
        change.insert("group".into(), json!(gid));
        change.insert("author".into(), json!(by));
        publish("groups.update", &Value::Object(change))?;
    }
    match failure {
        None => Ok(()),
        Some(e) => Err(e.with_detail("applied", json!(applied))),
    }
}

fn get_group_picture(req: &Request) -> Result<Response, ApiError> {
    let gid = gid(req)?;
    let p = whatsapp::profile_picture(&gid)?
        .ok_or_else(|| ApiError::not_found(format!("group {gid} has no picture")))?;
    Ok(Json(PictureView {
        id: p.id,
        url: p.url,
        r#type: p.kind,
        direct_path: p.direct_path,
    })
    .into_response(200))
}

fn set_group_picture(req: &Request) -> Result<Response, ApiError> {
    let gid = gid(req)?;
    let body: PictureRequest = req.json()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body.data.trim())
        .map_err(|_| ApiError::invalid_field("data", "data is not base64"))?;
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(ApiError::invalid_field(
            "data",
            "the picture must be a JPEG",
        ));
    }
    let id = wa::set_picture(&gid, Some(&bytes))?
        .ok_or_else(|| ApiError::internal("WhatsApp answered no picture id"))?;
    Ok(Json(json!({"id": id})).into_response(200))
}

fn delete_group_picture(req: &Request) -> Result<(), ApiError> {
    let gid = gid(req)?;
    wa::set_picture(&gid, None)?;
    Ok(())
}

fn list_members(req: &Request) -> Result<Response, ApiError> {
    let gid = gid(req)?;
    let role = match req.query("role").map(str::trim).filter(|r| !r.is_empty()) {
        None => None,
        Some(r @ ("member" | "admin" | "superadmin")) => Some(r.to_owned()),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "role",
                "role must be member, admin or superadmin",
            ));
        }
    };
    let page = req.page()?;
    stored(&gid)?;
    let session = req.session_id()?.to_owned();
    let mut members: Vec<(Vec<u8>, Member)> = store::members(&gid)?
        .into_iter()
        .filter(|m| role.as_deref().is_none_or(|r| m.role == r))
        .map(|m| {
            let (rank, key) = m.order();
            let mut k = vec![rank];
            k.extend_from_slice(key.as_bytes());
            (k, m)
        })
        .collect();
    members.sort_by(|a, b| a.0.cmp(&b.0));
    let paged = gateway_sdk::page_sorted(&members, |(k, _)| k.as_slice(), &page);
    let data: Vec<MemberView> = paged
        .data
        .iter()
        .map(|(_, m)| MemberView {
            id: m.id,
            session_id: session.clone(),
            group_jid: gid.clone(),
            lid: m.lid.clone(),
            phone_jid: m.phone_jid.clone(),
            role: m.role.clone(),
            tag: m.tag.clone(),
            first_seen_at: m.first_seen_at,
            last_seen_at: m.last_seen_at,
        })
        .collect();
    Ok(Json(Page {
        data,
        next_cursor: paged.next_cursor,
    })
    .into_response(200))
}

/// Runs a participant action; stores and publishes what WhatsApp accepted (code 200).
/// Answers the per-participant codes.
fn act(
    gid: &str,
    action: ParticipantAction,
    people: &[Person],
) -> Result<Vec<(Person, u16)>, ApiError> {
    let results = wa::update_participants(gid, action, &addresses(people))?;
    let coded: Vec<(Person, u16)> = people
        .iter()
        .map(|p| {
            let a = p.address();
            let code = results.iter().find(|r| r.jid == a).map_or(200, |r| r.code);
            (p.clone(), code)
        })
        .collect();
    let done: Vec<Person> = coded
        .iter()
        .filter(|(_, c)| *c == 200)
        .map(|(p, _)| p.clone())
        .collect();
    let (name, role) = match action {
        ParticipantAction::Add | ParticipantAction::Approve => ("add", Some("member")),
        ParticipantAction::Remove => ("remove", None),
        ParticipantAction::Promote => ("promote", Some("admin")),
        ParticipantAction::Demote => ("demote", Some("member")),
        ParticipantAction::Reject => return Ok(coded),
    };
    if done.is_empty() {
        return Ok(coded);
    }
    let mut store = GroupStore::new(now_ms());
    let by = author(&mut store);
    if store.get(gid)?.is_some() {
        let with_roles: Vec<Person> = done
            .iter()
            .map(|p| Person {
                role: role.map(str::to_owned),
                ..p.clone()
            })
            .collect();
        store.change_members(gid, name, &with_roles)?;
        store.commit()?;
    }
    let list: Vec<Value> = done
        .iter()
        .map(|p| {
            let mut v = json!({"lid": p.lid, "jid": p.phone});
            if let Some(r) = role {
                v["role"] = json!(r);
            }
            v
        })
        .collect();
    publish(
        "group.participants",
        &json!({"group": gid, "action": name, "participants": list, "author": by}),
    )?;
    Ok(coded)
}

/// A per-participant refusal that fails a one-member call.
fn refused(code: u16, jid: &str) -> Option<ApiError> {
    match code {
        403 => Some(ApiError::forbidden(format!(
            "WhatsApp refused the change for {jid}"
        ))),
        404 => Some(ApiError::not_found(format!(
            "{jid} is not a member of the group"
        ))),
        _ => None,
    }
}

fn add_members(req: &Request) -> Result<Response, ApiError> {
    let gid = gid(req)?;
    let results = flag(req, "results")?;
    let body: ParticipantsRequest = req.json()?;
    let me = whatsapp::self_identity()?;
    let people = participants(&body.participants, me.as_ref())?;
    let coded = act(&gid, ParticipantAction::Add, &people)?;
    if !results {
        return Ok(().into_response(204));
    }
    let data = coded
        .into_iter()
        .map(|(p, code)| ParticipantCode {
            jid: p.address(),
            code,
        })
        .collect();
    Ok(Json(ResultsView { data }).into_response(200))
}

fn one_member(req: &Request, action: ParticipantAction) -> Result<(), ApiError> {
    let gid = gid(req)?;
    let person = member_jid(req)?;
    let coded = act(&gid, action, std::slice::from_ref(&person))?;
    let code = coded.first().map_or(200, |(_, c)| *c);
    match (action, refused(code, &person.address())) {
        // Removing a non-member changes nothing.
        (ParticipantAction::Remove, Some(e)) if e.code == gateway_sdk::ErrorCode::NotFound => {
            Ok(())
        }
        (_, Some(e)) => Err(e),
        (_, None) => Ok(()),
    }
}

fn remove_member(req: &Request) -> Result<(), ApiError> {
    one_member(req, ParticipantAction::Remove)
}

fn promote_member(req: &Request) -> Result<(), ApiError> {
    one_member(req, ParticipantAction::Promote)
}

fn demote_member(req: &Request) -> Result<(), ApiError> {
    one_member(req, ParticipantAction::Demote)
}

fn list_requests(req: &Request) -> Result<Response, ApiError> {
    let gid = gid(req)?;
    let list = wa::join_requests(&gid)?;
    let data: Vec<Value> = list
        .into_iter()
        .map(|r| json!({"jid": r.jid, "lid": r.lid, "requestedAt": r.requested_at}))
        .collect();
    Ok(Json(json!({"data": data, "nextCursor": null})).into_response(200))
}

fn decide_requests(req: &Request, action: ParticipantAction) -> Result<(), ApiError> {
    let gid = gid(req)?;
    let body: ParticipantsRequest = req.json()?;
    let me = whatsapp::self_identity()?;
    let people = participants(&body.participants, me.as_ref())?;
    // Requests already handled (404) or people already in (409) change nothing.
    act(&gid, action, &people)?;
    Ok(())
}

fn approve_requests(req: &Request) -> Result<(), ApiError> {
    decide_requests(req, ParticipantAction::Approve)
}

fn reject_requests(req: &Request) -> Result<(), ApiError> {
    decide_requests(req, ParticipantAction::Reject)
}

fn invite_answer(code: String) -> Response {
    Json(InviteView {
        invite: format!("{INVITE_PREFIX}{code}"),
        code,
    })
    .into_response(200)
}

fn get_invite(req: &Request) -> Result<Response, ApiError> {
    let gid = gid(req)?;
    Ok(invite_answer(wa::invite_link(&gid, false)?))
}

fn revoke_invite(req: &Request) -> Result<Response, ApiError> {
    let gid = gid(req)?;
    Ok(invite_answer(wa::invite_link(&gid, true)?))
}

fn invite_info(req: &Request) -> Result<Response, ApiError> {
    let raw = req
        .query("invite")
        .ok_or_else(|| ApiError::invalid_field("invite", "invite is required"))?;
    let code = invite_code(raw)?;
    let info = whatsapp::invite_info(&code).map_err(invite_error)?;
    Ok(Json(InviteInfoView {
        group_jid: info.jid,
        subject: info.subject,
        description: info.description,
        participant_count: info.size,
        join_approval: info.join_approval,
    })
    .into_response(200))
}

fn join_group(req: &Request) -> Result<Response, ApiError> {
    let body: JoinRequestBody = req.json()?;
    let code = invite_code(&body.invite)?;
    let joined = wa::join(&code).map_err(invite_error)?;
    if joined.pending_approval {
        return Ok(Json(JoinedView {
            group_jid: joined.group,
            pending_approval: Some(true),
        })
        .into_response(202));
    }
    // The group's metadata, so the store (and every subscriber) knows it at once.
    if let Ok(info) = whatsapp::group_metadata(&joined.group) {
        store_info(&info)?;
    }
    Ok(Json(JoinedView {
        group_jid: joined.group,
        pending_approval: None,
    })
    .into_response(200))
}

fn leave_group(req: &Request) -> Result<(), ApiError> {
    let gid = gid(req)?;
    let left = match wa::leave(&gid) {
        Ok(()) => true,
        // Not in it (any more): fine when the store knows the group (already left).
        Err(WhatsappError::NotFound(m)) => {
            if store::find(&gid)?.is_none() {
                return Err(ApiError::not_found(m));
            }
            false
        }
        Err(e) => return Err(e.into()),
    };
    let mut store = GroupStore::new(now_ms());
    let Some(me) = store.me() else {
        return Ok(());
    };
    let mine = Person::from_addresses(Some(&me.jid), me.lid.as_deref(), None, None);
    let was_member = store.get(&gid)?.is_some_and(|g| g.my_role.is_some());
    if let Some(p) = mine.filter(|_| left || was_member) {
        if store.get(&gid)?.is_some() {
            store.change_members(&gid, "remove", std::slice::from_ref(&p))?;
            store.commit()?;
        }
        publish(
            "group.participants",
            &json!({"group": gid, "action": "remove",
                    "participants": [{"lid": p.lid, "jid": p.phone}], "author": me.jid}),
        )?;
    }
    Ok(())
}

struct Groups;

impl Plugin for Groups {
    fn manifest() -> Manifest {
        let base = "/sessions/{session}/groups";
        let at = |p: &str| format!("{base}{p}");
        Manifest::new("groups", env!("CARGO_PKG_VERSION"))
            .route(
                Route::get(&at(""), Capability::Read, "listGroups")
                    .summary("List stored groups by subject (STORED)")
                    .query("q", "case-insensitive substring of the subject", false)
                    .paged()
                    .response::<Page<Group>>(),
                list_groups,
            )
            .route(
                Route::post(&at(""), Capability::Send, "createGroup")
                    .summary("Create a group with this account as superadmin (LIVE)")
                    .request::<CreateRequest>()
                    .response::<Group>()
                    .status(201),
                create_group,
            )
            .route(
                Route::get(&at(":inviteInfo"), Capability::Read, "getInviteInfo")
                    .summary("What an invite leads to, without joining (LIVE)")
                    .query(
                        "invite",
                        "an invite code or https://chat.whatsapp.com/<code> link",
                        true,
                    )
                    .response::<InviteInfoView>(),
                invite_info,
            )
            .route(
                Route::post(&at(":join"), Capability::Send, "joinGroup")
                    .summary("Join a group by invite (LIVE); 202 when admins must approve")
                    .request::<JoinRequestBody>()
                    .response::<JoinedView>(),
                join_group,
            )
            .route(
                Route::get(&at("/{gid}"), Capability::Read, "getGroup")
                    .summary("One stored group (STORED; LIVE with refresh=true)")
                    .query(
                        "refresh",
                        "`true`: re-read WhatsApp into the store first",
                        false,
                    )
                    .response::<Group>(),
                get_group,
            )
            .route(
                Route::patch(&at("/{gid}"), Capability::Send, "updateGroup")
                    .summary("Change subject, description or settings (LIVE)")
                    .description(
                        "One WhatsApp call per field, in the order subject, description, \
                         announce, locked, joinApproval, membersCanAdd; the first failure stops \
                         the rest and its error's `details.applied` lists the fields applied.",
                    )
                    .request::<UpdateRequest>()
                    .status(204),
                update_group,
            )
            .route(
                Route::post(&at("/{gid}:leave"), Capability::Send, "leaveGroup")
                    .summary("Leave a group (LIVE); it stays readable with myRole null")
                    .status(204),
                leave_group,
            )
            .route(
                Route::get(&at("/{gid}/picture"), Capability::Read, "getGroupPicture")
                    .summary("The group's picture (LIVE)")
                    .response::<PictureView>(),
                get_group_picture,
            )
            .route(
                Route::put(&at("/{gid}/picture"), Capability::Send, "setGroupPicture")
                    .summary("Set the group's picture: base64 JPEG (LIVE)")
                    .request::<PictureRequest>(),
                set_group_picture,
            )
            .route(
                Route::delete(
                    &at("/{gid}/picture"),
                    Capability::Send,
                    "deleteGroupPicture",
                )
                .summary("Remove the group's picture (LIVE); idempotent")
                .status(204),
                delete_group_picture,
            )
            .route(
                Route::get(&at("/{gid}/members"), Capability::Read, "listGroupMembers")
                    .summary("Stored members: superadmin, admin, member, then address (STORED)")
                    .query("role", "`member`, `admin` or `superadmin`", false)
                    .paged()
                    .response::<Page<MemberView>>(),
                list_members,
            )
            .route(
                Route::post(&at("/{gid}/members"), Capability::Send, "addGroupMembers")
                    .summary("Add members (LIVE)")
                    .query(
                        "results",
                        "`true`: answer 200 with WhatsApp's code per participant",
                        false,
                    )
                    .request::<ParticipantsRequest>()
                    .status(204),
                add_members,
            )
            .route(
                Route::post(
                    &at("/{gid}/members:approve"),
                    Capability::Send,
                    "approveGroupMembers",
                )
                .summary("Approve pending join requests (LIVE); idempotent")
                .request::<ParticipantsRequest>()
                .status(204),
                approve_requests,
            )
            .route(
                Route::post(
                    &at("/{gid}/members:reject"),
                    Capability::Send,
                    "rejectGroupMembers",
                )
                .summary("Reject pending join requests (LIVE); idempotent")
                .request::<ParticipantsRequest>()
                .status(204),
                reject_requests,
            )
            .route(
                Route::delete(
                    &at("/{gid}/members/{jid}"),
                    Capability::Send,
                    "removeGroupMember",
                )
                .summary("Remove a member (LIVE); idempotent")
                .status(204),
                remove_member,
            )
            .route(
                Route::post(
                    &at("/{gid}/members/{jid}/promote"),
                    Capability::Send,
                    "promoteGroupMember",
                )
                .summary("Make a member admin (LIVE)")
                .status(204),
                promote_member,
            )
            .route(
                Route::post(
                    &at("/{gid}/members/{jid}/demote"),
                    Capability::Send,
                    "demoteGroupMember",
                )
                .summary("Make an admin a plain member (LIVE)")
                .status(204),
                demote_member,
            )
            .route(
                Route::get(&at("/{gid}/requests"), Capability::Read, "listJoinRequests")
                    .summary("Pending join requests (LIVE)"),
                list_requests,
            )
            .route(
                Route::get(&at("/{gid}/invite"), Capability::Read, "getGroupInvite")
                    .summary("The group's invite link (LIVE)")
                    .response::<InviteView>(),
                get_invite,
            )
            .route(
                Route::delete(&at("/{gid}/invite"), Capability::Send, "revokeGroupInvite")
                    .summary("Revoke the invite link; answers the new one (LIVE)")
                    .response::<InviteView>(),
                revoke_invite,
            )
            .on("groups.upsert", events::groups_upsert)
            .on("groups.update", events::groups_update)
            .on("group.participants", events::group_participants)
    }
}

gateway_sdk::export!(Groups);
