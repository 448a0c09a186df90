//! A deliberately faulty plugin for the gateway's fault-isolation tests: one route traps,
//! one loops forever, one allocates without bound, one answers normally.

use gateway_sdk::{ApiError, Capability, Manifest, Plugin, Request, RequestExt, Response, Route};

struct Chaos;

impl Plugin for Chaos {
    fn manifest() -> Manifest {
        Manifest::new("chaos", env!("CARGO_PKG_VERSION"))
            .route(Route::get("/chaos/ok", Capability::Read, "chaosOk").summary("Answers 200"))
            .route(Route::get("/chaos/trap", Capability::Read, "chaosTrap").summary("Traps"))
            .route(Route::get("/chaos/loop", Capability::Read, "chaosLoop").summary("Never returns"))
            .route(Route::get("/chaos/oom", Capability::Read, "chaosOom").summary("Allocates without bound"))
            .route(
                Route::get("/chaos/echo/{value}", Capability::Read, "chaosEcho")
                    .summary("Echoes a path parameter"),
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
            other => Err(ApiError::not_found(format!("no operation {other}"))),
        }
    }
}

gateway_sdk::export!(Chaos);
