//! Hot reload: swapping plugin versions under load loses no request and never tears an
//! answer; in-flight requests finish on their version; broken, ungranted or conflicting
//! components are refused while the old version serves; every trigger works.

use crate::support::*;
use serde_json::Value;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Checks an answer of `/chaos/version` is whole: one version throughout.
fn version_of(r: &Resp) -> Result<&'static str, String> {
    if r.status != 200 {
        return Err(format!("status {}: {}", r.status, r.text()));
    }
    let v: Value = serde_json::from_slice(&r.body).map_err(|e| format!("torn body: {e}"))?;
    let (version, digit) = match v["version"].as_str() {
        Some("1.0.0") => ("1.0.0", '1'),
        Some("2.0.0") => ("2.0.0", '2'),
        other => return Err(format!("unknown version {other:?}")),
    };
    let body = v["body"].as_str().ok_or("no body")?;
    if body.len() != 4096 || !body.chars().all(|c| c == digit) {
        return Err(format!(
            "answer mixes versions: {version} with body {}…",
            &body[..16.min(body.len())]
        ));
    }
    Ok(version)
}

/// One plugin's entry in the admin listener's plugin list.
fn plugin_status(g: &Gateway, name: &str) -> Value {
    let list = g.admin_call("GET", "/admin/plugins", None).json();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {list}"))
        .clone()
}

fn serving(g: &Gateway, key: &str) -> &'static str {
    version_of(&g.get("/chaos/version", key)).unwrap()
}

#[test]
fn swapping_versions_under_load_loses_no_request_and_tears_no_answer() {
    let g = Arc::new(Gateway::start());
    let key = Arc::new(g.key("org_reload", &["read"]));
    assert_eq!(serving(&g, &key), "1.0.0");
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<[AtomicUsize; 3]> = Arc::new([
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ]);
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (g, key, stop, counts, failures) = (
                g.clone(),
                key.clone(),
                stop.clone(),
                counts.clone(),
                failures.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match version_of(&g.get("/chaos/version", &key)) {
                        Ok("1.0.0") => counts[0].fetch_add(1, Ordering::Relaxed),
                        Ok(_) => counts[1].fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            failures.lock().unwrap().push(e);
                            counts[2].fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    let swaps = 30;
    for i in 0..swaps {
        let (file, expect) = if i % 2 == 0 {
            ("chaos-v2", "2.0.0")
        } else {
            ("chaos", "1.0.0")
        };
        g.install_plugin(file, "chaos");
        let report = g.reload();
        assert_eq!(report["loaded"], serde_json::json!(["chaos"]), "{report}");
        assert!(
            report["refused"].as_object().unwrap().is_empty(),
            "{report}"
        );
        assert_eq!(serving(&g, &key), expect, "swap {i}");
        std::thread::sleep(Duration::from_millis(30));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let (v1, v2, bad) = (
        counts[0].load(Ordering::Relaxed),
        counts[1].load(Ordering::Relaxed),
        counts[2].load(Ordering::Relaxed),
    );
    println!("{swaps} swaps under load: {v1} answers from 1.0.0, {v2} from 2.0.0, {bad} failed");
    assert_eq!(bad, 0, "failures: {:?}", failures.lock().unwrap());
    assert!(v1 > 0 && v2 > 0);
    let metrics = g.admin_call("GET", "/metrics", None).text();
    assert!(
        metrics.contains("gateway_plugin_reloads_total{result=\"ok\"}"),
        "{metrics}"
    );
}

#[test]
fn requests_in_flight_finish_on_the_version_they_started_with() {
    let g = Arc::new(Gateway::start());
    let key = g.key("org_reload", &["read"]);
    let (g2, k2) = (g.clone(), key.clone());
    let slow = std::thread::spawn(move || g2.get("/chaos/slow-version?ms=1500", &k2));
    std::thread::sleep(Duration::from_millis(400));
    g.install_plugin("chaos-v2", "chaos");
    g.reload();
    assert_eq!(serving(&g, &key), "2.0.0");
    let r = slow.join().unwrap();
    assert_eq!(
        version_of(&r).unwrap(),
        "1.0.0",
        "the slow request started on 1.0.0"
    );
}

#[test]
fn a_broken_component_is_refused_and_the_old_version_keeps_serving() {
    let g = Gateway::start();
    let key = g.key("org_reload", &["read"]);
    std::fs::write(
        g.plugin_dir().join("chaos.wasm"),
        b"\0asm this is not a component",
    )
    .unwrap();
    let report = g.reload();
    let reason = report["refused"]["chaos"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains("not a valid component"), "{report}");
    assert_eq!(serving(&g, &key), "1.0.0");
    let chaos = plugin_status(&g, "chaos");
    assert_eq!(chaos["version"], "1.0.0");
    assert!(
        chaos["lastError"]
            .as_str()
            .unwrap()
            .contains("not a valid component")
    );
    g.wait_log(|log| log.contains("plugin refused"));

    // A good version clears the error.
    g.install_plugin("chaos-v2", "chaos");
    g.reload();
    assert_eq!(serving(&g, &key), "2.0.0");
    let chaos = plugin_status(&g, "chaos");
    assert_eq!(chaos["lastError"], Value::Null);
}

#[test]
fn a_component_importing_an_ungranted_interface_is_refused_with_its_name() {
    let mut o = Options::default();
    o.grants.retain(|(n, _)| *n != "contacts");
    o.grants
        .push(("contacts", vec!["storage", "whatsapp-read", "log"]));
    let g = Gateway::with(o);
    let key = g.key("org_grants", &["read", "manage"]);
    let s = g.create_session(&key, serde_json::json!({}));
    g.get(&format!("/sessions/{s}/contacts"), &key)
        .assert_error(404, "not_found");
    let contacts = plugin_status(&g, "contacts");
    let err = contacts["lastError"].as_str().unwrap();
    assert!(
        err.contains("wa:gateway/whatsapp-send") && err.contains("not granted"),
        "{err}"
    );
    assert_eq!(contacts["version"], Value::Null);
    // Everything else loaded.
    assert_eq!(g.get("/chaos/ok", &key).status, 200);

    // The offline check says the same.
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("--config")
        .arg(g.config_path())
        .args(["plugins", "check"])
        .arg(plugin_path("contacts"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("whatsapp-send"), "{stderr}");
}

#[test]
fn plugins_check_prints_routes_and_catches_conflicts() {
    let g = Gateway::start();
    let check = |file: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
            .arg("--config")
            .arg(g.config_path())
            .args(["plugins", "check"])
            .arg(plugin_path(file))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = check("contacts");
    assert!(ok, "{err}");
    assert!(out.contains("contacts 0.1.0 — OK"), "{out}");
    assert!(
        out.contains("/api/v1/sessions/{session}/contacts/{lid}") && out.contains("getContact"),
        "{out}"
    );
    assert!(
        out.contains("imports: storage, whatsapp-read, whatsapp-send"),
        "{out}"
    );
    let (ok, _, err) = check("imposter");
    assert!(!ok);
    assert!(err.contains("chaos") && err.contains("imposter"), "{err}");
}

#[test]
fn two_plugins_declaring_the_same_route_refuse_the_newcomer_naming_both() {
    let g = Gateway::start();
    let key = g.key("org_conflict", &["read"]);
    g.install_plugin("imposter", "imposter");
    let report = g.reload();
    let reason = report["refused"]["imposter"].as_str().unwrap_or_default();
    assert!(
        reason.contains("chaos") && reason.contains("imposter"),
        "{report}"
    );
    assert_eq!(serving(&g, &key), "1.0.0");
    let names: Vec<String> = g.admin_call("GET", "/admin/plugins", None).json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["version"].is_string())
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!names.contains(&"imposter".to_owned()));
}

#[test]
fn removing_a_file_unloads_its_routes() {
    let g = Gateway::start();
    let key = g.key("org_remove", &["read", "send", "manage"]);
    let s = g.create_session(&key, serde_json::json!({}));
    assert_eq!(g.get(&format!("/sessions/{s}/notes"), &key).status, 200);
    std::fs::remove_file(g.plugin_dir().join("notes.wasm")).unwrap();
    let report = g.reload();
    assert_eq!(report["unloaded"], serde_json::json!(["notes"]), "{report}");
    g.get(&format!("/sessions/{s}/notes"), &key)
        .assert_error(404, "not_found");
    assert_eq!(g.get(&format!("/sessions/{s}"), &key).status, 200);
}

#[test]
fn every_reload_trigger_works() {
    let g = Gateway::with(Options {
        watch: true,
        ..Options::default()
    });
    let key = g.key("org_triggers", &["read"]);
    let wait_version = |v: &str| {
        assert!(
            wait_for(Duration::from_secs(15), || serving(&g, &key) == v),
            "still serving {} instead of {v}",
            serving(&g, &key)
        )
    };

    // A change in the plugin directory.
    g.install_plugin("chaos-v2", "chaos");
    wait_version("2.0.0");

    // SIGHUP (no watcher needed: the file changes back first, then the signal; the watcher
    // may get there first, which is fine — both are triggers).
    g.install_plugin("chaos", "chaos");
    let _ = Command::new("kill")
        .args(["-HUP", &g.pid().to_string()])
        .status();
    wait_version("1.0.0");

    // The CLI.
    g.install_plugin("chaos-v2", "chaos");
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("--config")
        .arg(g.config_path())
        .args(["plugins", "reload"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_version("2.0.0");
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("--config")
        .arg(g.config_path())
        .args(["plugins", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("chaos 2.0.0") && text.contains("sessions 0.1.0"),
        "{text}"
    );
}

#[test]
fn sighup_alone_reloads() {
    let g = Gateway::start();
    let key = g.key("org_hup", &["read"]);
    g.install_plugin("chaos-v2", "chaos");
    // Without a watcher nothing changes until asked.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(serving(&g, &key), "1.0.0");
    let _ = Command::new("kill")
        .args(["-HUP", &g.pid().to_string()])
        .status();
    assert!(wait_for(Duration::from_secs(15), || serving(&g, &key) == "2.0.0"));
}
