//! The sandbox engine's control API: what a simulated phone or network would do.
//! `POST /sandbox/sessions/{session}/…` on the admin listener.

use super::parse;
use crate::engines::sandbox::{GroupChange, SandboxEngine, SendFailure};
use crate::http::Response;
use crate::http::envelope::json_response;
use crate::routing::Method;
use crate::sessions::SessionRegistry;
use gateway_sdk::ApiError;
use serde::Deserialize;

#[derive(Debug, Clone, Copy)]
pub(super) enum Control {
    /// Scan the current QR code: `{phone?, pushName?}`.
    Scan,
    /// Enter the pair code on the phone: `{code}`.
    EnterPairCode,
    /// Drop the connection (live calls then answer 501).
    Disconnect,
    /// Restore a dropped connection.
    Reconnect,
    /// Unlink the device from the phone (pairing lost).
    Unlink,
    /// Inject an inbound event: `{event, payload}`.
    Inject,
    /// Make the simulated server fail sends: `{failure: "none"|"transient"|"permanent"}`.
    Sends,
    /// What the simulated server received from the session, in order: `GET`.
    Wire,
    /// Another admin changes a group (settings, members, join requests): `{group, …}`;
    /// published as WhatsApp's notifications.
    GroupChange,
}

impl Control {
    pub(super) fn routes() -> [(Method, &'static str, Control); 9] {
        [
            (
                Method::Post,
                "/sandbox/sessions/{session}/scan",
                Control::Scan,
            ),
            (
                Method::Post,
                "/sandbox/sessions/{session}/pair-code",
                Control::EnterPairCode,
            ),
            (
                Method::Post,
                "/sandbox/sessions/{session}/disconnect",
                Control::Disconnect,
            ),
            (
                Method::Post,
                "/sandbox/sessions/{session}/reconnect",
                Control::Reconnect,
            ),
            (
                Method::Post,
                "/sandbox/sessions/{session}/unlink",
                Control::Unlink,
            ),
            (
                Method::Post,
                "/sandbox/sessions/{session}/events",
                Control::Inject,
            ),
            (
                Method::Post,
                "/sandbox/sessions/{session}/sends",
                Control::Sends,
            ),
            (
                Method::Get,
                "/sandbox/sessions/{session}/wire",
                Control::Wire,
            ),
            (
                Method::Post,
                "/sandbox/sessions/{session}/group-change",
                Control::GroupChange,
            ),
        ]
    }
}

pub(super) fn handle(
    sandbox: &SandboxEngine,
    sessions: &SessionRegistry,
    control: Control,
    session: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    if sessions.get(session).is_none() {
        return Err(ApiError::not_found("session not found"));
    }
    let ok = |v: serde_json::Value| Ok(json_response(200, &v));
    let result = match control {
        Control::Scan => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields, rename_all = "camelCase")]
            struct Scan {
                phone: Option<String>,
                push_name: Option<String>,
            }
            let s: Scan = parse(body)?;
            sandbox
                .scan(session, s.phone.as_deref(), s.push_name.as_deref())
                .map(|a| serde_json::json!({"account": a}))
        }
        Control::EnterPairCode => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Code {
                code: String,
            }
            let c: Code = parse(body)?;
            sandbox
                .enter_pair_code(session, &c.code)
                .map(|a| serde_json::json!({"account": a}))
        }
        Control::Disconnect => sandbox
            .drop_connection(session)
            .map(|_| serde_json::json!({"connected": false})),
        Control::Reconnect => sandbox
            .restore_connection(session)
            .map(|_| serde_json::json!({"connected": true})),
        Control::Unlink => sandbox
            .unlink_from_phone(session)
            .map(|_| serde_json::json!({"paired": false})),
        Control::Inject => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Inject {
                event: String,
                payload: serde_json::Value,
            }
            let i: Inject = parse(body)?;
            sandbox
                .inject(session, &i.event, i.payload)
                .map(|_| serde_json::json!({"injected": i.event}))
        }
        Control::GroupChange => {
            let c: GroupChange = parse(body)?;
            sandbox.change_group(session, c)
        }
        Control::Wire => sandbox
            .wire(session)
            .map(|messages| serde_json::json!({"messages": messages})),
        Control::Sends => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Sends {
                failure: SendFailure,
            }
            let s: Sends = parse(body)?;
            sandbox
                .set_send_failure(session, s.failure)
                .map(|_| serde_json::json!({"failure": s.failure}))
        }
    };
    ok(result?)
}
