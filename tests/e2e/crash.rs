//! Crash consistency: the gateway is `kill -9`ed 20 times (`CRASH_ROUNDS`) under concurrent
//! writes (notes, sessions, API keys, block/unblock) on one data directory. The database must
//! open every time, every write answered 2xx must be there after the restart, and nothing that
//! was in flight may be half-present: it is either wholly there or wholly absent.

use crate::support::*;
use rand::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Kills per run unless `CRASH_ROUNDS` says otherwise.
const DEFAULT_ROUNDS: usize = 20;
const ORG: &str = "org_crash";
const KEY_ORG: &str = "org_crash_keys";
/// LIDs the block writer toggles (unknown to the world, so only its writes decide them).
const BLOCK_POOL: usize = 8;

fn pool_jid(i: usize) -> String {
    format!("9{:014}@lid", 100 + i)
}

/// Where the writers of one round send their requests (one gateway process).
#[derive(Clone)]
struct Target {
    api: String,
    admin: String,
    key: String,
    session: String,
    round: usize,
}

impl Target {
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> Result<Resp, String> {
        let auth = format!("Bearer {}", self.key);
        let mut headers = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        try_request(
            &format!("{}/api/v1{path}", self.api),
            method,
            &headers,
            body.map(|b| b.to_string().into_bytes()),
        )
    }

    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Result<Resp, String> {
        let headers: &[(&str, &str)] = if body.is_some() {
            &[("content-type", "application/json")]
        } else {
            &[]
        };
        try_request(
            &format!("{}{path}", self.admin),
            method,
            headers,
            body.map(|b| b.to_string().into_bytes()),
        )
    }
}

/// What the clients were told, and what they sent without hearing back.
#[derive(Default)]
struct Ledger {
    /// Acknowledged notes (id → text), not deleted.
    notes: HashMap<String, String>,
    /// Every note text ever sent (each is unique).
    note_texts: HashSet<String>,
    /// Notes whose deletion was acknowledged.
    notes_deleted: HashSet<String>,
    /// Deletions sent without an answer.
    notes_deleting: HashSet<String>,
    /// Acknowledged sessions (id → label), not deleted.
    sessions: HashMap<String, String>,
    session_labels: HashSet<String>,
    /// The sessions and keys the writers made and still hold, oldest first.
    session_order: VecDeque<String>,
    key_order: VecDeque<String>,
    /// Sessions whose deletion was acknowledged, and deletions sent without an answer.
    sessions_deleted: HashSet<String>,
    sessions_deleting: HashSet<String>,
    /// Acknowledged API keys, not revoked: id → (name, secret; unknown for a key created
    /// in flight and found after the crash).
    keys: HashMap<String, (String, Option<String>)>,
    key_names: HashSet<String>,
    /// Keys acknowledged in the current round (all are authenticated after the crash).
    keys_this_round: Vec<String>,
    /// Keys whose revocation was acknowledged (id → secret), and revocations in flight.
    keys_revoked: HashMap<String, String>,
    keys_revoking: HashSet<String>,
    /// Revocations acknowledged in the current round (all are refused after the crash).
    revoked_this_round: Vec<String>,
    /// Acknowledged block state of each pool LID, and the state asked for without an answer.
    blocked: [bool; BLOCK_POOL],
    block_pending: [Option<bool>; BLOCK_POOL],
    /// Answers that were neither the expected success nor a lost connection.
    failures: Vec<String>,
    acked: [usize; 4],
}

impl Ledger {
    fn fail(&mut self, what: &str, r: &Resp) {
        self.failures
            .push(format!("{what}: {} {}", r.status, r.text()));
    }
}

type Shared = Arc<Mutex<Ledger>>;

/// When and how a writer's exchange failed (its request cut off by the kill), if it did.
type Cut = Option<(Instant, String)>;

fn notes_writer(t: Target, id: usize, ledger: Shared, stop: Arc<AtomicBool>) -> Cut {
    let mut rng = rand::rng();
    let mut mine: Vec<String> = Vec::new();
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        if n % 5 == 4 && !mine.is_empty() {
            let note = mine.swap_remove(rng.random_range(0..mine.len()));
            ledger.lock().unwrap().notes_deleting.insert(note.clone());
            let path = format!("/sessions/{}/notes/{note}", t.session);
            let r = match t.api("DELETE", &path, None) {
                Ok(r) => r,
                Err(e) => return Some((Instant::now(), e)),
            };
            let mut l = ledger.lock().unwrap();
            if r.status == 204 {
                l.notes_deleting.remove(&note);
                l.notes.remove(&note);
                l.notes_deleted.insert(note);
                l.acked[0] += 1;
            } else {
                l.fail("deleteNote", &r);
            }
            continue;
        }
        let text = format!("round {} writer {id} note {n}", t.round);
        ledger.lock().unwrap().note_texts.insert(text.clone());
        let path = format!("/sessions/{}/notes", t.session);
        let r = match t.api("POST", &path, Some(json!({ "text": text }))) {
            Ok(r) => r,
            Err(e) => return Some((Instant::now(), e)),
        };
        let mut l = ledger.lock().unwrap();
        match (r.status, serde_json::from_slice::<Value>(&r.body)) {
            (201, Ok(v)) if v["text"] == text.as_str() && v["id"].is_string() => {
                let note = v["id"].as_str().unwrap().to_owned();
                l.notes.insert(note.clone(), text);
                mine.push(note);
                l.acked[0] += 1;
            }
            _ => l.fail("createNote", &r),
        }
    }
    None
}

/// Live sessions or keys a writer keeps at most, deleting the oldest beyond (the
/// organization quotas allow 100; deletions are writes to check too).
const KEEP: usize = 40;

fn sessions_writer(t: Target, ledger: Shared, stop: Arc<AtomicBool>) -> Cut {
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let oldest = {
            let mut l = ledger.lock().unwrap();
            let oldest = (l.session_order.len() >= KEEP)
                .then(|| l.session_order.pop_front())
                .flatten();
            if let Some(id) = &oldest {
                l.sessions_deleting.insert(id.clone());
            }
            oldest
        };
        if let Some(id) = oldest {
            let r = match t.api("DELETE", &format!("/sessions/{id}"), None) {
                Ok(r) => r,
                Err(e) => return Some((Instant::now(), e)),
            };
            let mut l = ledger.lock().unwrap();
            if r.status == 204 {
                l.sessions_deleting.remove(&id);
                l.sessions.remove(&id);
                l.sessions_deleted.insert(id);
                l.acked[1] += 1;
            } else {
                l.fail("deleteSession", &r);
            }
            continue;
        }
        let label = format!("crash round {} session {n}", t.round);
        ledger.lock().unwrap().session_labels.insert(label.clone());
        let r = match t.api("POST", "/sessions", Some(json!({ "label": label }))) {
            Ok(r) => r,
            Err(e) => return Some((Instant::now(), e)),
        };
        let mut l = ledger.lock().unwrap();
        match (r.status, serde_json::from_slice::<Value>(&r.body)) {
            (201, Ok(v)) if v["label"] == label.as_str() && v["id"].is_string() => {
                let id = v["id"].as_str().unwrap().to_owned();
                l.sessions.insert(id.clone(), label);
                l.session_order.push_back(id);
                l.acked[1] += 1;
            }
            _ => l.fail("createSession", &r),
        }
    }
    None
}

fn keys_writer(t: Target, ledger: Shared, stop: Arc<AtomicBool>) -> Cut {
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let oldest = {
            let mut l = ledger.lock().unwrap();
            let oldest = (l.key_order.len() >= KEEP)
                .then(|| l.key_order.pop_front())
                .flatten();
            if let Some(id) = &oldest {
                l.keys_revoking.insert(id.clone());
            }
            oldest
        };
        if let Some(id) = oldest {
            let r = match t.admin("DELETE", &format!("/admin/api-keys/{id}"), None) {
                Ok(r) => r,
                Err(e) => return Some((Instant::now(), e)),
            };
            let mut l = ledger.lock().unwrap();
            if r.status == 204 {
                l.keys_revoking.remove(&id);
                if let Some((_, Some(secret))) = l.keys.remove(&id) {
                    l.keys_revoked.insert(id.clone(), secret);
                    l.revoked_this_round.push(id);
                }
                l.acked[2] += 1;
            } else {
                l.fail("revokeKey (admin)", &r);
            }
            continue;
        }
        let name = format!("crash round {} key {n}", t.round);
        ledger.lock().unwrap().key_names.insert(name.clone());
        let body = json!({"organization": KEY_ORG, "name": name, "permissions": ["read"]});
        let r = match t.admin("POST", "/admin/api-keys", Some(body)) {
            Ok(r) => r,
            Err(e) => return Some((Instant::now(), e)),
        };
        let mut l = ledger.lock().unwrap();
        match (r.status, serde_json::from_slice::<Value>(&r.body)) {
            (201, Ok(v)) if v["secret"].is_string() && v["key"]["id"].is_string() => {
                let id = v["key"]["id"].as_str().unwrap().to_owned();
                let secret = v["secret"].as_str().unwrap().to_owned();
                l.keys.insert(id.clone(), (name, Some(secret)));
                l.keys_this_round.push(id.clone());
                l.key_order.push_back(id);
                l.acked[2] += 1;
            }
            _ => l.fail("createKey (admin)", &r),
        }
    }
    None
}

fn block_writer(t: Target, ledger: Shared, stop: Arc<AtomicBool>) -> Cut {
    let mut rng = rand::rng();
    while !stop.load(Ordering::Relaxed) {
        let i = rng.random_range(0..BLOCK_POOL);
        let want = {
            let mut l = ledger.lock().unwrap();
            let want = !l.blocked[i];
            l.block_pending[i] = Some(want);
            want
        };
        let action = if want { "block" } else { "unblock" };
        let path = format!("/sessions/{}/contacts/{}/{action}", t.session, pool_jid(i));
        let r = match t.api("POST", &path, Some(json!({}))) {
            Ok(r) => r,
            Err(e) => return Some((Instant::now(), e)),
        };
        let mut l = ledger.lock().unwrap();
        if r.status == 204 {
            l.blocked[i] = want;
            l.block_pending[i] = None;
            l.acked[3] += 1;
        } else {
            l.block_pending[i] = None;
            l.fail(action, &r);
        }
    }
    None
}

/// Every item of a cursor list.
fn list_all(g: &Gateway, path: &str, token: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=200&cursor={c}"),
            None => format!("{path}{sep}limit=200"),
        };
        let r = g.get(&url, token);
        assert_eq!(r.status, 200, "GET {url}: {}", r.text());
        let page = r.json();
        items.extend(page["data"].as_array().expect("data is a list").clone());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

fn verify_notes(g: &Gateway, key: &str, session: &str, l: &mut Ledger) {
    let listed = list_all(g, &format!("/sessions/{session}/notes"), key);
    let mut present: HashMap<String, String> = HashMap::new();
    let mut texts = HashSet::new();
    for n in &listed {
        // Whole notes only: every field, of its type, with a text some client sent.
        let (Some(id), Some(text), Some(_), Some(by)) = (
            n["id"].as_str(),
            n["text"].as_str(),
            n["createdAt"].as_u64(),
            n["createdBy"].as_str(),
        ) else {
            panic!("a broken note is listed: {n}");
        };
        assert!(by.starts_with("apikey:"), "{n}");
        assert!(l.note_texts.contains(text), "a note nobody sent: {n}");
        assert!(texts.insert(text.to_owned()), "a note stored twice: {n}");
        assert!(
            !l.notes_deleted.contains(id),
            "a note deleted with 204 is back: {n}"
        );
        present.insert(id.to_owned(), text.to_owned());
    }
    for (id, text) in &l.notes {
        if l.notes_deleting.contains(id) {
            continue;
        }
        assert_eq!(
            present.get(id),
            Some(text),
            "acknowledged note {id} ({text:?}) is lost"
        );
    }
    // A deletion in flight either happened or did not; a note created in flight and
    // present is as durable as any other from now on.
    for id in std::mem::take(&mut l.notes_deleting) {
        if !present.contains_key(&id) {
            l.notes.remove(&id);
            l.notes_deleted.insert(id);
        }
    }
    for (id, text) in present {
        if let std::collections::hash_map::Entry::Vacant(e) = l.notes.entry(id) {
            let r = g.get(&format!("/sessions/{session}/notes/{}", e.key()), key);
            assert_eq!(r.status, 200, "listed but not readable: {}", r.text());
            assert_eq!(r.json()["text"], text.as_str());
            e.insert(text);
        }
    }
    // Deleted notes are gone one by one too, not only from the list.
    for id in l.notes_deleted.iter().take(5) {
        g.get(&format!("/sessions/{session}/notes/{id}"), key)
            .assert_error(404, "not_found");
    }
}

fn verify_sessions(g: &Gateway, key: &str, l: &mut Ledger) {
    let listed = list_all(g, "/sessions", key);
    let mut present: HashMap<String, String> = HashMap::new();
    for s in &listed {
        // The paired session has no label (null); the writers' have one.
        let label = if s["label"].is_null() {
            Some("")
        } else {
            s["label"].as_str()
        };
        let (Some(id), Some(label), Some(status)) = (s["id"].as_str(), label, s["status"].as_str())
        else {
            panic!("a broken session is listed: {s}");
        };
        assert_eq!(s["organizationId"], ORG, "{s}");
        assert!(s["createdAt"].as_u64().is_some(), "{s}");
        assert!(
            l.session_labels.contains(label),
            "a session nobody made: {s}"
        );
        assert!(
            !l.sessions_deleted.contains(id),
            "a session deleted with 204 is back: {s}"
        );
        assert!(
            present.insert(id.to_owned(), label.to_owned()).is_none(),
            "{s}"
        );
        if !l.sessions.contains_key(id) {
            // Created in flight: whole, readable, and stopped like every new session.
            assert_eq!(status, "stopped", "{s}");
            let r = g.get(&format!("/sessions/{id}"), key);
            assert_eq!(r.status, 200, "listed but not readable: {}", r.text());
            assert_eq!(r.json()["label"], label);
        }
    }
    let labels: HashSet<&String> = present.values().collect();
    assert_eq!(labels.len(), present.len(), "a session was stored twice");
    for (id, label) in &l.sessions {
        if l.sessions_deleting.contains(id) {
            continue;
        }
        assert_eq!(
            present.get(id),
            Some(label),
            "acknowledged session {id} ({label:?}) is lost"
        );
    }
    // A deletion in flight happened or did not; a creation in flight that is there is
    // as durable as any other from now on.
    for id in std::mem::take(&mut l.sessions_deleting) {
        if present.contains_key(&id) {
            l.session_order.push_front(id);
        } else {
            l.sessions.remove(&id);
            l.sessions_deleted.insert(id);
        }
    }
    for (id, label) in present {
        if !l.sessions.contains_key(&id) {
            l.sessions.insert(id.clone(), label);
            l.session_order.push_back(id);
        }
    }
    // Deleted sessions are gone one by one too, not only from the list.
    for id in l.sessions_deleted.iter().take(5) {
        g.get(&format!("/sessions/{id}"), key)
            .assert_error(404, "not_found");
    }
}

fn verify_keys(g: &Gateway, l: &mut Ledger) {
    let r = g.admin_call(
        "GET",
        &format!("/admin/api-keys?organization={KEY_ORG}"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = r.json()["data"].as_array().unwrap().clone();
    let mut present: HashMap<String, Value> = HashMap::new();
    for k in listed {
        let (Some(id), Some(name), Some(hash)) = (
            k["id"].as_str(),
            k["name"].as_str(),
            k["secretHash"].as_str(),
        ) else {
            panic!("a broken key is listed: {k}");
        };
        assert_eq!(k["organizationId"], KEY_ORG, "{k}");
        assert_eq!(k["permissions"], json!(["read"]), "{k}");
        assert_eq!(hash.len(), 64, "{k}");
        assert!(l.key_names.contains(name), "a key nobody made: {k}");
        assert!(
            !l.keys_revoked.contains_key(id),
            "a key revoked with 204 is back: {k}"
        );
        present.insert(id.to_owned(), k.clone());
    }
    for (id, (name, secret)) in &l.keys {
        if l.keys_revoking.contains(id) {
            continue;
        }
        let k = present
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged key {id} ({name:?}) is lost"));
        assert_eq!(k["name"], name.as_str());
        if let Some(secret) = secret {
            assert_eq!(
                k["secretHash"],
                hex::encode(Sha256::digest(secret.as_bytes())),
                "key {id} is stored with another secret"
            );
        }
    }
    for id in std::mem::take(&mut l.keys_revoking) {
        if present.contains_key(&id) {
            l.key_order.push_front(id);
        } else if let Some((_, secret)) = l.keys.remove(&id) {
            l.keys_revoked
                .insert(id, secret.expect("the writer knows its keys"));
        }
    }
    // Created in flight and there: its secret was never heard, but it is a key like any.
    for (id, k) in present {
        if !l.keys.contains_key(&id) {
            let name = k["name"].as_str().unwrap().to_owned();
            l.keys.insert(id.clone(), (name, None));
            l.key_order.push_back(id);
        }
    }
    // Every key acknowledged this round, and a few older ones, still authenticate; every
    // key revoked this round, and a few older ones, no longer does.
    let mut rng = rand::rng();
    let mut live: Vec<String> = std::mem::take(&mut l.keys_this_round);
    let known: Vec<&String> = l
        .keys
        .iter()
        .filter(|(_, (_, s))| s.is_some())
        .map(|(id, _)| id)
        .collect();
    for _ in 0..5.min(known.len()) {
        live.push(known[rng.random_range(0..known.len())].clone());
    }
    for id in live {
        let Some((_, Some(secret))) = l.keys.get(&id) else {
            continue; // revoked since
        };
        let r = g.get("/chaos/ok", secret);
        assert_eq!(
            r.status,
            200,
            "key {id} no longer authenticates: {}",
            r.text()
        );
    }
    let mut revoked: Vec<String> = std::mem::take(&mut l.revoked_this_round);
    revoked.extend(l.keys_revoked.keys().take(5).cloned());
    for id in revoked {
        g.get("/chaos/ok", &l.keys_revoked[&id])
            .assert_error(401, "unauthorized");
    }
}

fn verify_blocks(g: &Gateway, key: &str, session: &str, l: &mut Ledger) {
    let r = g.get(&format!("/sessions/{session}/contacts/blocked"), key);
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = r.json()["data"].as_array().unwrap().clone();
    for b in &listed {
        assert!(b["jid"].is_string(), "a broken block entry: {b}");
        assert!(b["blockedAt"].is_u64() || b["blockedAt"].is_null(), "{b}");
    }
    for i in 0..BLOCK_POOL {
        let jid = pool_jid(i);
        let now = listed.iter().any(|b| b["jid"] == jid || b["lid"] == jid);
        let pending = l.block_pending[i].take();
        assert!(
            now == l.blocked[i] || pending == Some(now),
            "{jid}: blocked={now}, but the last acknowledged state is {} (in flight: {pending:?})",
            l.blocked[i]
        );
        l.blocked[i] = now;
    }
}

#[test]
fn kill_9_under_concurrent_writes_loses_no_acknowledged_write() {
    let mut g = Gateway::start();
    let key = g.key(ORG, &["read", "send", "manage"]);
    let session = g.working_session(&key);
    let ledger: Shared = Arc::default();
    {
        let label = g.get(&format!("/sessions/{session}"), &key).json()["label"]
            .as_str()
            .map(str::to_owned);
        let mut l = ledger.lock().unwrap();
        let label = label.unwrap_or_default();
        l.session_labels.insert(label.clone());
        l.sessions.insert(session.clone(), label);
    }
    let rounds = env_or("CRASH_ROUNDS", DEFAULT_ROUNDS);
    let mut rng = rand::rng();
    // Writers whose request the kill cut off (sent, never answered).
    let mut cut = 0;
    let started = Instant::now();
    for round in 0..rounds {
        let target = Target {
            api: g.api.clone(),
            admin: g.admin.clone(),
            key: key.clone(),
            session: session.clone(),
            round,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for id in 0..2 {
            let (t, l, s) = (target.clone(), ledger.clone(), stop.clone());
            writers.push(std::thread::spawn(move || notes_writer(t, id, l, s)));
        }
        let (t, l, s) = (target.clone(), ledger.clone(), stop.clone());
        writers.push(std::thread::spawn(move || sessions_writer(t, l, s)));
        let (t, l, s) = (target.clone(), ledger.clone(), stop.clone());
        writers.push(std::thread::spawn(move || keys_writer(t, l, s)));
        let (t, l, s) = (target.clone(), ledger.clone(), stop.clone());
        writers.push(std::thread::spawn(move || block_writer(t, l, s)));

        let writes_for = Duration::from_millis(rng.random_range(300..=800));
        std::thread::sleep(writes_for);
        let killed = Instant::now();
        g.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            if let Some((at, error)) = w.join().expect("writer thread") {
                // Only the kill may break an exchange.
                assert!(at >= killed, "round {round}: before the kill, {error}");
                cut += 1;
            }
        }
        {
            let l = ledger.lock().unwrap();
            assert!(
                l.failures.is_empty(),
                "round {round}: unexpected answers: {:#?}",
                l.failures
            );
        }

        let restarting = Instant::now();
        g.restart_stopped();
        let restart_ms = restarting.elapsed().as_millis();
        g.wait_status(&session, &key, "working");

        let mut l = ledger.lock().unwrap();
        verify_notes(&g, &key, &session, &mut l);
        verify_sessions(&g, &key, &mut l);
        verify_keys(&g, &mut l);
        verify_blocks(&g, &key, &session, &mut l);
        println!(
            "round {round}: killed after {writes_for:?}, restarted in {restart_ms} ms; \
             acknowledged so far: notes {} sessions {} keys {} blocks {}",
            l.acked[0], l.acked[1], l.acked[2], l.acked[3]
        );
    }
    let l = ledger.lock().unwrap();
    println!(
        "{rounds} crashes in {:?}; {} notes, {} sessions, {} keys stored; {cut} writes cut off by a kill",
        started.elapsed(),
        l.notes.len(),
        l.sessions.len(),
        l.keys.len(),
    );
    // The battery tested something: kills landed mid-request, and every kind of write was
    // acknowledged many times.
    assert!(
        cut >= rounds,
        "only {cut} requests were cut off by {rounds} kills"
    );
    for (kind, n) in ["notes", "sessions", "keys", "blocks"].iter().zip(l.acked) {
        assert!(n >= rounds, "only {n} {kind} writes were acknowledged");
    }
}
