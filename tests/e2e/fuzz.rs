//! OpenAPI fuzzing: schemathesis (PyPI; `cargo xtask test` installs it) generates requests
//! from the gateway's own `/openapi.json`, valid and invalid, and sends them to a running
//! gateway with a real API key, the `{session}` parameter set to a real session so requests
//! get past tenancy. No answer may be a 5xx, every answer must have a documented status,
//! content type, headers and schema, and every error must be the envelope (API.md §1.3).

use crate::support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Test cases per operation and run; `FUZZ_MAX_EXAMPLES` to dig deeper locally.
const MAX_EXAMPLES: u32 = 25;
/// A run of `MAX_EXAMPLES` taking longer than this is killed and fails the test; a deeper
/// local run (`FUZZ_MAX_EXAMPLES`) gets a limit that grows with it.
const RUN_LIMIT: Duration = Duration::from_secs(240);

/// schemathesis' own checks, and the two below.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,missing_required_header,\
unsupported_method,allow_header_conformance,ignored_auth,use_after_free,\
ensure_resource_availability,error_envelope,record_answer";

/// `error_envelope` holds every 4xx/5xx to the envelope, even at a status the document does
/// not list for the operation; `record_answer` writes `METHOD /template status` lines, so the
/// test can tell the requests reached the plugins (and not only the 404 of tenancy).
const HOOKS: &str = r#"
import json
import os

import schemathesis

ANSWERS = os.environ["WA_FUZZ_ANSWERS"]


@schemathesis.check
def error_envelope(ctx, response, case):
    """Every 4xx/5xx answer is the gateway's error envelope (API.md 1.3)."""
    if response.status_code < 400:
        return None
    ctype = ",".join(response.headers.get("content-type", []))
    assert ctype == "application/json", f"error answer with content-type {ctype!r}"
    try:
        body = json.loads(response.content)
    except ValueError as e:
        raise AssertionError(f"error answer is not JSON: {e}")
    err = body.get("error") if isinstance(body, dict) else None
    assert isinstance(err, dict), f"no error object: {body!r}"
    assert isinstance(err.get("code"), str) and err["code"], f"no error.code: {body!r}"
    assert isinstance(err.get("message"), str) and err["message"], f"no error.message: {body!r}"
    assert isinstance(err.get("details"), dict), f"error.details is not an object: {body!r}"
    return None


@schemathesis.check
def record_answer(ctx, response, case):
    """Records every answer as `METHOD /template status`."""
    with open(ANSWERS, "a", encoding="utf-8") as f:
        f.write(f"{case.operation.method.upper()} {case.operation.path} {response.status_code}\n")
    return None
"#;

/// People of the example world (and some that are not), in the spellings clients use: the
/// generator draws `{jid}`/`{lid}` from these most of the time, so LIVE calls get past
/// JID validation and reach the sandbox.
const PEOPLE: &[&str] = &[
    "205227043110953@lid",
    "205227043110953%40lid",
    "6281234567890@s.whatsapp.net",
    "118364913572043@lid",
    "14155550123@s.whatsapp.net",
    "14155550123:12@s.whatsapp.net",
    "300991234567004@lid",
    "300991234567008@lid",
    "999999999999999@lid",
    "120363021234567890@g.us",
];
const PHONES: &[&str] = &[
    "+6281234567890",
    "6281234567890",
    "14155550123",
    "+1 (415) 555-0123",
    "4915123456789",
    "19999999999",
    "0812345678",
];

fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// A schemathesis configuration pinning `{session}` to `session`.
fn config(dir: &Path, name: &str, session: &str) -> std::path::PathBuf {
    let text = format!(
        r#"[dictionaries.people]
values = {people}
[dictionaries.phones]
values = {phones}

[parameters]
"path.session" = "{session}"
"body.sessionId" = "{session}"
"path.jid" = {{ dictionary = "people", probability = 0.7 }}
"path.lid" = {{ dictionary = "people", probability = 0.7 }}
"query.phone" = {{ dictionary = "phones", probability = 0.7 }}
"body.phone" = {{ dictionary = "phones", probability = 0.7 }}
"#,
        people = toml_list(PEOPLE),
        phones = toml_list(PHONES),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Answers seen: `METHOD /template` → statuses.
type Answers = BTreeMap<String, BTreeSet<u16>>;

/// Runs `schemathesis run` over the operations `select` picks; panics with its report
/// (every failing request as a curl command, and the seed) when any check failed.
fn run_schemathesis(
    g: &Gateway,
    dir: &Path,
    name: &str,
    session: &str,
    key: &str,
    select: &[&str],
) -> Answers {
    let hooks = dir.join("hooks.py");
    std::fs::write(&hooks, HOOKS).unwrap();
    let answers_file = dir.join(format!("{name}.answers"));
    let examples = env_or("FUZZ_MAX_EXAMPLES", MAX_EXAMPLES);
    let limit = RUN_LIMIT * examples.div_ceil(MAX_EXAMPLES).max(1);
    let mut cmd = Command::new("python3");
    cmd.current_dir(dir)
        .env("SCHEMATHESIS_HOOKS", &hooks)
        .env("WA_FUZZ_ANSWERS", &answers_file)
        .args(["-m", "schemathesis.cli", "--config-file"])
        .arg(config(dir, name, session))
        .arg("run")
        .arg(format!("{}/openapi.json", g.api))
        .args(["--header", &format!("Authorization: Bearer {key}")])
        // The key above is the credential; generated ones would only test 401 again.
        .args(["--generation-with-security-parameters", "false"])
        .args(["--checks", CHECKS])
        .args(["--max-examples", &examples.to_string()])
        .args(["--request-timeout", "20", "--workers", "2"])
        .args(["--generation-database", "none", "--no-color"])
        .args(select);
    if let Ok(seed) = std::env::var("FUZZ_SEED") {
        cmd.args(["--seed", &seed]);
    }
    let out_path = dir.join(format!("{name}.out"));
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("python3 -m schemathesis.cli (cargo xtask test installs schemathesis)");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "schemathesis run {name} took over {limit:?}:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let report = std::fs::read_to_string(&out_path).unwrap_or_default();
    // A failing run prints its failures (each as a curl command) before the summary; a
    // passing one only the summary.
    let heading = if status.success() {
        "SUMMARY"
    } else {
        "FAILURES"
    };
    let shown = report
        .find(heading)
        .or_else(|| report.find("SUMMARY"))
        .map_or(&report[..], |at| &report[at..]);
    println!(
        "schemathesis {name}: {status} in {:?}\n{shown}",
        started.elapsed()
    );
    if !status.success() {
        // What the gateway said about it: its warnings, errors and 5xx answers, first (CI
        // shows the head of a failing test's output), then the tail of its log.
        let log = g.log();
        let complaints: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR ") || l.contains("status=5"))
            .collect();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "schemathesis found problems (run {name})\n--- gateway warnings, errors and 5xx ---\n{}\n--- gateway log (last 40 lines) ---\n{}\n--- schemathesis report ---\n{report}",
            complaints.join("\n"),
            tail.join("\n")
        );
    }
    let mut answers = Answers::new();
    for line in std::fs::read_to_string(&answers_file)
        .unwrap_or_default()
        .lines()
    {
        let (op, status) = line.rsplit_once(' ').expect("METHOD /path status");
        let status: u16 = status.parse().unwrap();
        assert!(status < 500, "{line}");
        answers.entry(op.to_owned()).or_default().insert(status);
    }
    assert!(
        !answers.is_empty(),
        "the custom checks never ran (run {name}):\n{report}"
    );
    answers
}

/// Asserts each operation answered a success at least once: the requests really reached
/// the plugin with the pinned session (tenancy let them through).
fn reached(answers: &Answers, ops: &[&str]) {
    for op in ops {
        let statuses = answers.get(*op).cloned().unwrap_or_default();
        assert!(
            statuses.iter().any(|s| (200..300).contains(s)),
            "{op} never succeeded; statuses seen: {statuses:?}; all: {answers:#?}"
        );
    }
}

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    // The product's plugins and the example one; not the deliberately faulty test plugin.
    let g = Gateway::with(Options {
        plugins: ["sessions", "contacts", "notes", "webhooks", "labels"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        // Generated webhook URLs lead nowhere: testWebhook gives up on them quickly.
        extra_toml: "[webhooks]\ntimeout_ms = 1000\n".into(),
        ..Options::default()
    });
    let key = g.key("org_fuzz", &["read", "send", "manage"]);
    let paired = g.working_session(&key);
    let spare = g.create_session(&key, serde_json::json!({"label": "lifecycle"}));
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();

    // 1. Everything on the paired session, except what would end it: stop, restart and
    //    logout disconnect it (LIVE calls would then rightly answer 501), delete removes it.
    let answers = run_schemathesis(
        &g,
        dir.path(),
        "api",
        &paired,
        &key,
        &[
            "--exclude-operation-id",
            "stopSession",
            "--exclude-operation-id",
            "restartSession",
            "--exclude-operation-id",
            "logoutSession",
            "--exclude-operation-id",
            "deleteSession",
        ],
    );
    reached(
        &answers,
        &[
            "GET /sessions",
            "POST /sessions",
            "GET /sessions/{session}",
            "GET /sessions/{session}/me",
            "GET /sessions/{session}/contacts",
            "GET /sessions/{session}/contacts/{lid}",
            "GET /sessions/{session}/contacts/check",
            "GET /sessions/{session}/contacts/{jid}/about",
            "GET /sessions/{session}/contacts/{jid}/picture",
            "POST /sessions/{session}/contacts/{jid}/block",
            "POST /sessions/{session}/contacts/{jid}/unblock",
            "GET /sessions/{session}/contacts/blocked",
            "GET /sessions/{session}/notes",
            "POST /sessions/{session}/notes",
            "GET /webhooks",
            "POST /webhooks",
            "GET /labels",
            "POST /labels",
        ],
    );
    // The paired session is still whole after all that.
    let s = g.get(&format!("/sessions/{paired}"), &key);
    assert_eq!(s.status, 200, "{}", s.text());
    assert_eq!(s.json()["status"], "working");

    // 2. The session lifecycle on a second session, then deleting it.
    let lifecycle = [
        "startSession",
        "stopSession",
        "restartSession",
        "logoutSession",
        "sessionQR",
        "sessionPairingCode",
        "sessionMe",
        "getSession",
    ];
    let select: Vec<&str> = lifecycle
        .iter()
        .flat_map(|op| ["--include-operation-id", op])
        .collect();
    let answers = run_schemathesis(&g, dir.path(), "lifecycle", &spare, &key, &select);
    reached(
        &answers,
        &[
            "POST /sessions/{session}:start",
            "POST /sessions/{session}:stop",
            "POST /sessions/{session}:restart",
            "POST /sessions/{session}:logout",
            "GET /sessions/{session}",
        ],
    );
    let answers = run_schemathesis(
        &g,
        dir.path(),
        "delete",
        &spare,
        &key,
        &["--include-operation-id", "deleteSession"],
    );
    reached(&answers, &["DELETE /sessions/{session}"]);
    g.get(&format!("/sessions/{spare}"), &key)
        .assert_error(404, "not_found");

    // 3. An organization at its session quota: creating one more is refused, and that
    //    answer too must be one the document lists.
    let full = g.key("org_fuzz_full", &["read", "send", "manage"]);
    let mut made = 0;
    while made < 300 {
        let r = g.post("/sessions", &full, serde_json::json!({"label": "fill"}));
        if r.status != 201 {
            r.assert_error(409, "conflict");
            break;
        }
        made += 1;
    }
    println!("org_fuzz_full holds {made} sessions");
    run_schemathesis(
        &g,
        dir.path(),
        "quota",
        &spare,
        &full,
        &[
            "--include-operation-id",
            "createSession",
            "--include-operation-id",
            "listSessions",
        ],
    );
    println!("schemathesis: four runs in {:?}", started.elapsed());
}
