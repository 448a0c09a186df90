//! A plugin written against `wa:gateway@0.1.0` as it was first published (its WIT is
//! frozen in `wit/` beside this crate), with the bindings alone and no SDK: the host must
//! keep loading and serving it as the contract grows (additive, semver-compatible).

#[allow(unsafe_code, unreachable_pub, clippy::all, missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "wa:gateway/plugin",
        generate_all,
    });
}

use bindings::exports::wa::gateway::endpoint::Guest;
use bindings::wa::gateway::storage;
use bindings::wa::gateway::types::{
    Capability, Error, ErrorCode, Event, Manifest, Request, Response, Route,
};

struct Legacy;

impl Guest for Legacy {
    fn describe() -> Manifest {
        Manifest {
            name: "legacy".into(),
            version: "0.1.0".into(),
            routes: vec![Route {
                method: "GET".into(),
                path: "/legacy/counter".into(),
                capability: Capability::Read,
                operation_id: "legacyCounter".into(),
                summary: "Counts calls, stored through the 0.1.0 storage interface".into(),
                description: None,
                request_schema: None,
                response_schema: Some(
                    r#"{"type":"object","properties":{"count":{"type":"integer"},"contract":{"type":"string"}}}"#
                        .into(),
                ),
                success_status: None,
                query_params: Vec::new(),
            }],
            events: Vec::new(),
        }
    }

    fn handle(_request: Request) -> Result<Response, Error> {
        let failed = |m: String| Error {
            code: ErrorCode::Internal,
            message: m,
            details: String::new(),
            status: None,
        };
        let count = match storage::get(b"count") {
            Ok(Some(v)) => String::from_utf8_lossy(&v).parse::<u64>().unwrap_or(0),
            Ok(None) => 0,
            Err(e) => return Err(failed(format!("{e:?}"))),
        } + 1;
        storage::put(b"count", count.to_string().as_bytes())
            .map_err(|e| failed(format!("{e:?}")))?;
        Ok(Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: format!(r#"{{"count":{count},"contract":"0.1.0"}}"#).into_bytes(),
        })
    }

    fn on_event(_event: Event) -> Result<(), Error> {
        Ok(())
    }
}

// The generated export glue is `unsafe` FFI, as every component's is.
#[allow(unsafe_code)]
mod export {
    use super::{Legacy, bindings};
    bindings::export!(Legacy with_types_in bindings);
}
