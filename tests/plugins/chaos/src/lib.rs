//! A deliberately faulty plugin for the gateway's fault-isolation tests: one route traps,
//! one loops forever, one allocates without bound, one answers normally.

use gateway_sdk::store;
use gateway_sdk::{
    ApiError, Capability, Event, Manifest, Plugin, Request, RequestExt, Response, Route,
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

/// An answer that is all one version: a torn answer would mix digits.
fn versioned() -> gateway_sdk::serde_json::Value {
    let digit = if cfg!(feature = "v2") { "2" } else { "1" };
    gateway_sdk::json!({"version": VERSION, "body": digit.repeat(4096)})
}

impl Plugin for Chaos {
    fn manifest() -> Manifest {
        Manifest::new(NAME, VERSION)
            .route(Route::get("/chaos/ok", Capability::Read, "chaosOk").summary("Answers 200"))
            .route(Route::get("/chaos/trap", Capability::Read, "chaosTrap").summary("Traps"))
            .route(
                Route::get("/chaos/version", Capability::Read, "chaosVersion")
                    .summary("Which build answers"),
            )
            .route(
                Route::get("/chaos/kv-loop", Capability::Read, "chaosKvLoop")
                    .summary("Reads one key n times (storage call cost)")
                    .query("n", "how many reads (at most 100000)", false),
            )
            .route(
                Route::get("/chaos/slow-version", Capability::Read, "chaosSlowVersion")
                    .summary("Which build answers, after a pause")
                    .query("ms", "pause in milliseconds (at most 2000)", false),
            )
            .route(
                Route::get("/chaos/loop", Capability::Read, "chaosLoop").summary("Never returns"),
            )
            .route(
                Route::get("/chaos/oom", Capability::Read, "chaosOom")
                    .summary("Allocates without bound"),
            )
            .route(
                Route::get("/chaos/echo/{value}", Capability::Read, "chaosEcho")
                    .summary("Echoes a path parameter"),
            )
            .route(
                Route::get("/chaos/echo/static", Capability::Read, "chaosEchoStatic")
                    .summary("A static segment beside a parameter"),
            )
            .route(
                Route::post("/chaos/echo/{value}:shout", Capability::Read, "chaosShout")
                    .summary("A colon custom method"),
            )
            .route(
                Route::get(
                    "/sessions/{session}/chaos-events",
                    Capability::Read,
                    "chaosEvents",
                )
                .summary("Events this plugin received for a session, in order"),
            )
            .event("session.status")
            .event("auth.qr")
            .route(
                Route::put("/chaos/kv/{key}", Capability::Send, "chaosOrgPut")
                    .summary("Stores raw bytes for the organization"),
            )
            .route(
                Route::get("/chaos/kv/{key}", Capability::Read, "chaosOrgGet")
                    .summary("Reads raw bytes of the organization"),
            )
            .route(
                Route::put(
                    "/sessions/{session}/chaos-kv/{key}",
                    Capability::Send,
                    "chaosPut",
                )
                .summary("Stores raw bytes for a session"),
            )
            .route(
                Route::get(
                    "/sessions/{session}/chaos-kv/{key}",
                    Capability::Read,
                    "chaosGet",
                )
                .summary("Reads raw bytes of a session"),
            )
    }

    fn handle(request: Request) -> Result<Response, ApiError> {
        match request.operation_id.as_str() {
            "chaosOk" => Ok(gateway_sdk::ok(&gateway_sdk::json!({"ok": true}))),
            "chaosTrap" => {
                #[allow(clippy::diverging_sub_expression)]
                let v: Vec<u8> = Vec::new();
                // An out-of-bounds index panics, which aborts: a wasm trap.
                let i = request.path.len() + 10;
                Ok(gateway_sdk::ok(&v[i]))
            }
            "chaosLoop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "chaosOom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = vec![0u8; 1 << 20];
                    chunk[0] = hoard.len() as u8;
                    hoard.push(std::hint::black_box(chunk));
                }
            }
            "chaosEcho" => Ok(gateway_sdk::ok(&gateway_sdk::json!({
                "value": request.param("value")?,
                "route": request.route,
                "path": request.path,
                "query": request.query,
            }))),
            "chaosVersion" => Ok(gateway_sdk::ok(&versioned())),
            "chaosKvLoop" => {
                let n: u32 = request
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
                Ok(gateway_sdk::ok(
                    &gateway_sdk::json!({"reads": n, "found": found}),
                ))
            }
            "chaosSlowVersion" => {
                let ms: u64 = request
                    .query("ms")
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(300)
                    .min(2000);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                Ok(gateway_sdk::ok(&versioned()))
            }
            "chaosEchoStatic" => Ok(gateway_sdk::ok(&gateway_sdk::json!({"static": true}))),
            "chaosShout" => Ok(gateway_sdk::ok(&gateway_sdk::json!({
                "value": request.param("value")?.to_uppercase(),
            }))),
            "chaosOrgPut" | "chaosPut" => {
                store::put(request.param("key")?.as_bytes(), &request.body)?;
                Ok(gateway_sdk::no_content())
            }
            "chaosOrgGet" | "chaosGet" => match store::get(request.param("key")?.as_bytes())? {
                Some(v) => Ok(gateway_sdk::bytes(200, "application/octet-stream", v)),
                None => Err(ApiError::not_found("no such key")),
            },
            "chaosEvents" => {
                let events = store::scan_all_json::<gateway_sdk::serde_json::Value>(b"event/")?;
                let list: Vec<_> = events.into_iter().map(|(_, v)| v).collect();
                Ok(gateway_sdk::ok(&list))
            }
            other => Err(ApiError::not_found(format!("no operation {other}"))),
        }
    }

    /// Keeps every subscribed event, keyed by arrival order, in the session's storage.
    fn on_event(event: Event) -> Result<(), ApiError> {
        let n = store::get_json::<u64>(b"count")?.unwrap_or(0) + 1;
        let mut batch = store::Batch::new();
        batch.put_json(format!("event/{n:08}").as_bytes(), &gateway_sdk::json!({
            "id": event.id,
            "name": event.name,
            "session": event.session,
            "organization": event.organization,
            "timestamp": event.timestamp,
            "payload": gateway_sdk::serde_json::from_str::<gateway_sdk::serde_json::Value>(&event.payload).unwrap_or_default(),
        }))?;
        batch.put_json(b"count", &n)?;
        batch.commit()
    }
}

gateway_sdk::export!(Chaos);
