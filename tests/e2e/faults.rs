//! Fault isolation: a plugin that traps, loops forever or allocates without bound fails
//! only its own request — with 500 `internal` within the configured deadline — while
//! concurrent ordinary requests keep getting 200.

use crate::support::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn fault_under_load(path: &str) {
    let g = Arc::new(Gateway::start());
    let key = Arc::new(g.key("org_fault", &["read"]));
    let timeout = Duration::from_millis(g.options.plugin_timeout_ms);
    let load = BackgroundLoad::start(&g, &key, "/chaos/ok", 4, |r| {
        r.status == 200 && r.json()["ok"] == true
    });
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..3 {
        let started = Instant::now();
        let r = g.get(path, &key);
        let took = started.elapsed();
        r.assert_error(500, "internal");
        assert_eq!(r.json()["error"]["details"]["plugin"], "chaos");
        // Within the deadline, plus slack for a busy 2-core machine.
        assert!(
            took < timeout + Duration::from_secs(3),
            "{path} took {took:?}"
        );
    }
    let before = load.ok();
    std::thread::sleep(Duration::from_millis(300));
    let (ok, bad) = load.finish();
    assert_eq!(bad, 0, "ordinary requests failed during {path}");
    assert!(ok > before, "ordinary requests stalled during {path}");
    // The fault is logged with the plugin's name.
    g.wait_log(|log| {
        log.lines()
            .any(|l| l.contains("plugin call failed") && l.contains("chaos"))
    });
    // And the plugin still serves.
    assert_eq!(g.get("/chaos/ok", &key).status, 200);
}

#[test]
fn a_trap_fails_only_its_request() {
    fault_under_load("/chaos/trap");
}

#[test]
fn a_runaway_loop_is_interrupted_at_the_deadline() {
    fault_under_load("/chaos/loop");
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    fault_under_load("/chaos/oom");
}

#[test]
fn faults_are_classified_in_the_log() {
    let g = Gateway::start();
    let key = g.key("org_fault", &["read"]);
    g.get("/chaos/trap", &key).assert_error(500, "internal");
    g.get("/chaos/loop", &key).assert_error(500, "internal");
    g.get("/chaos/oom", &key).assert_error(500, "internal");
    let log = g.wait_log(|log| log.contains("kind=\"out_of_memory\""));
    for kind in [
        "kind=\"trap\"",
        "kind=\"timeout\"",
        "kind=\"out_of_memory\"",
    ] {
        assert!(log.contains(kind), "no {kind} in log");
    }
}
