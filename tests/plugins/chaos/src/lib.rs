//! A deliberately faulty plugin for the gateway's fault-isolation tests: one route traps,
//! one loops forever, one allocates without bound, one answers normally.

use gateway_sdk::store::{self, Tx};
use gateway_sdk::{
    ApiError, Capability, Event, Json, Manifest, Plugin, Request, Response, Route, json,
    serde_json::Value,
};

struct Chaos;

const NAME: &str = if cfg!(feature = "imposter") {
    "imposter"
} else {
    "chaos"
};

/// Which build this is; the hot-reload tests swap between the two.
const VERSION: &str = if cfg!(feature = "v2") {
    "2.0.0"
} else {
    "1.0.0"
};

type JsonAnswer = Result<Json<Value>, ApiError>;

/// An answer that is all one version: a torn answer would mix digits.
fn versioned(_req: &Request) -> JsonAnswer {
    let digit = if cfg!(feature = "v2") { "2" } else { "1" };
    Ok(Json(
        json!({"version": VERSION, "body": digit.repeat(4096)}),
    ))
}

fn ok(_req: &Request) -> JsonAnswer {
    Ok(Json(json!({"ok": true})))
}

fn trap(req: &Request) -> JsonAnswer {
    let v: Vec<u8> = Vec::new();
    // An out-of-bounds index panics, which aborts: a wasm trap.
    let i = req.path().len() + 10;
    Ok(Json(json!(v[i])))
}

fn spin(_req: &Request) -> JsonAnswer {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn hoard(_req: &Request) -> JsonAnswer {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; 1 << 20];
        chunk[0] = hoard.len() as u8;
        hoard.push(std::hint::black_box(chunk));
    }
}

fn echo(req: &Request) -> JsonAnswer {
    Ok(Json(json!({
        "value": req.param("value")?,
        "route": req.route(),
        "path": req.path(),
        "query": req.query_pairs(),
    })))
}

fn echo_static(_req: &Request) -> JsonAnswer {
    Ok(Json(json!({"static": true})))
}

fn shout(req: &Request) -> JsonAnswer {
    Ok(Json(json!({"value": req.param("value")?.to_uppercase()})))
}

fn kv_loop(req: &Request) -> JsonAnswer {
    let n: u32 = req
        .query("n")
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
        .min(100_000);
    let mut found = 0u32;
    for _ in 0..n {
        if store::get(b"bench")?.is_some() {
            found += 1;
        }
    }
    Ok(Json(json!({"reads": n, "found": found})))
}

fn slow_version(req: &Request) -> JsonAnswer {
    let ms: u64 = req
        .query("ms")
        .and_then(|m| m.parse().ok())
        .unwrap_or(300)
        .min(2000);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    versioned(req)
}

fn kv_put(req: &Request) -> Result<(), ApiError> {
    store::put(req.param("key")?.as_bytes(), req.body())
}

fn kv_get(req: &Request) -> Result<Response, ApiError> {
    match store::get(req.param("key")?.as_bytes())? {
        Some(v) => Ok(gateway_sdk::bytes(200, "application/octet-stream", v)),
        None => Err(ApiError::not_found("no such key")),
    }
}

/// Stores `n` values of `size` bytes under `fill/` (organization scope), one write each.
fn kv_fill(req: &Request) -> JsonAnswer {
    let n: usize = req
        .query("n")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .min(64);
    let size: usize = req
        .query("size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
        .min(1 << 20);
    for i in 0..n {
        store::put(format!("fill/{i:04}").as_bytes(), &vec![b'x'; size])?;
    }
    Ok(Json(json!({"stored": n, "size": size})))
}

/// Reads every value under `fill/` in one SDK scan, however large they are together; with
/// `raw=true`, in one host call as the WIT interface offers it (the host's byte cap).
fn kv_scan(req: &Request) -> JsonAnswer {
    if req.query("raw") == Some("true") {
        use gateway_sdk::guest::bindings::wa::gateway::storage as wit;
        let entries = wit::scan(&wit::ScanRequest {
            prefix: b"fill/".to_vec(),
            start: None,
            end: None,
            limit: 1000,
            reverse: false,
        })?;
        return Ok(Json(json!({"entries": entries.len()})));
    }
    let entries = store::scan(b"fill/", None, 1000, false)?;
    let bytes: usize = entries.iter().map(|e| e.value.len()).sum();
    Ok(Json(json!({"entries": entries.len(), "bytes": bytes})))
}

/// Fails with an internal error whose text must not reach the caller.
fn internal(_req: &Request) -> JsonAnswer {
    Err(ApiError::internal(
        "database at /var/lib/secret/gateway.redb failed: page 7",
    ))
}

fn received_events(_req: &Request) -> JsonAnswer {
    let events = store::scan_all_json::<Value>(b"event/")?;
    Ok(Json(Value::Array(
        events.into_iter().map(|(_, v)| v).collect(),
    )))
}

/// Keeps every subscribed event, keyed by arrival order, in the session's storage.
fn record_event(event: &Event) -> Result<(), ApiError> {
    let n = store::get_json::<u64>(b"count")?.unwrap_or(0) + 1;
    let payload: Value = event.payload().unwrap_or_default();
    let mut tx = Tx::new();
    tx.put_json(
        format!("event/{n:08}").as_bytes(),
        &json!({
            "id": event.id(),
            "name": event.name(),
            "session": event.session(),
            "organization": event.organization(),
            "timestamp": event.timestamp(),
            "payload": payload,
        }),
    )?;
    tx.put_json(b"count", &n)?;
    tx.commit()
}

impl Plugin for Chaos {
    fn manifest() -> Manifest {
        let read = |path: &str, id: &str, summary: &str| {
            Route::get(path, Capability::Read, id).summary(summary)
        };
        Manifest::new(NAME, VERSION)
            .route(read("/chaos/ok", "chaosOk", "Answers 200"), ok)
            .route(read("/chaos/trap", "chaosTrap", "Traps"), trap)
            .route(
                read("/chaos/version", "chaosVersion", "Which build answers"),
                versioned,
            )
            .route(
                read(
                    "/chaos/kv-loop",
                    "chaosKvLoop",
                    "Reads one key n times (storage call cost)",
                )
                .query("n", "how many reads (at most 100000)", false),
                kv_loop,
            )
            .route(
                read(
                    "/chaos/slow-version",
                    "chaosSlowVersion",
                    "Which build answers, after a pause",
                )
                .query("ms", "pause in milliseconds (at most 2000)", false),
                slow_version,
            )
            .route(read("/chaos/loop", "chaosLoop", "Never returns"), spin)
            .route(
                read(
                    "/chaos/internal",
                    "chaosInternal",
                    "Fails with an internal error",
                ),
                internal,
            )
            .route(
                read("/chaos/oom", "chaosOom", "Allocates without bound"),
                hoard,
            )
            .route(
                read(
                    "/chaos/echo/{value}",
                    "chaosEcho",
                    "Echoes a path parameter",
                ),
                echo,
            )
            .route(
                read(
                    "/chaos/echo/static",
                    "chaosEchoStatic",
                    "A static segment beside a parameter",
                ),
                echo_static,
            )
            .route(
                Route::post("/chaos/echo/{value}:shout", Capability::Read, "chaosShout")
                    .summary("A colon custom method"),
                shout,
            )
            .route(
                read(
                    "/sessions/{session}/chaos-events",
                    "chaosEvents",
                    "Events this plugin received for a session, in order",
                ),
                received_events,
            )
            .route(
                Route::put("/chaos/kv-fill", Capability::Send, "chaosKvFill")
                    .summary("Stores n values of size bytes (organization scope)")
                    .query("n", "how many values (at most 64)", false)
                    .query("size", "bytes per value (at most 1 MiB)", false),
                kv_fill,
            )
            .route(
                read(
                    "/chaos/kv-scan",
                    "chaosKvScan",
                    "Scans every stored fill value",
                ),
                kv_scan,
            )
            .route(
                Route::put("/chaos/kv/{key}", Capability::Send, "chaosOrgPut")
                    .summary("Stores raw bytes for the organization")
                    .status(204),
                kv_put,
            )
            .route(
                read(
                    "/chaos/kv/{key}",
                    "chaosOrgGet",
                    "Reads raw bytes of the organization",
                ),
                kv_get,
            )
            .route(
                Route::put(
                    "/sessions/{session}/chaos-kv/{key}",
                    Capability::Send,
                    "chaosPut",
                )
                .summary("Stores raw bytes for a session")
                .status(204),
                kv_put,
            )
            .route(
                read(
                    "/sessions/{session}/chaos-kv/{key}",
                    "chaosGet",
                    "Reads raw bytes of a session",
                ),
                kv_get,
            )
            .on("session.status", record_event)
            .on("auth.qr", record_event)
            .on("message", record_event)
            .on("message.status", record_event)
            .on("message.reaction", record_event)
            .on("message.edit", record_event)
            .on("message.revoke", record_event)
            .on("poll.vote", record_event)
            .on("presence.update", record_event)
            .on("chats.update", record_event)
            .on("chats.delete", record_event)
            .on("history.sync", record_event)
            .on("groups.upsert", record_event)
            .on("groups.update", record_event)
            .on("group.participants", record_event)
            .on("group.join_request", record_event)
    }
}

gateway_sdk::export!(Chaos);
