//! What one real WhatsApp session costs: N sessions of the `whatsapp-rust` engine paired
//! to the wire-level stand-in over loopback (as many accounts, each its own device), then
//! left idle — resident memory per session, time from start to `working`, and CPU while
//! only keepalives flow. Prints the figures; `cargo bench -p gateway --bench sessions`
//! (after `cargo xtask plugins`). `SESSIONS` (default 100) and `IDLE_SECS` (30) tune it.

#[path = "../../tests/e2e/support.rs"]
#[allow(unreachable_pub)]
mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{Gateway, Options, wait_for};
use wa_standin::{Contact, StandIn};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident set size of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    fields
        .get(11)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
}

fn main() {
    let sessions = env_or("SESSIONS", 100) as usize;
    let idle = Duration::from_secs(env_or("IDLE_SECS", 30));
    let standin = StandIn::start().expect("the stand-in starts");
    let phones: Vec<String> = (0..sessions).map(|i| format!("1555031{i:04}")).collect();
    for p in &phones {
        standin.add_contact(Contact::new(p.clone(), format!("Account {p}")));
    }
    let g = Gateway::with(Options {
        engine: "whatsapp-rust",
        plugins: vec!["sessions".into(), "contacts".into()],
        whatsapp_toml: format!("server_url = {:?}", standin.url()),
        ..Options::default()
    });
    let pid = g.pid();
    let key = g.key("org_bench", &["read", "send", "manage"]);
    std::thread::sleep(Duration::from_secs(2));
    let base_rss = rss_kib(pid);

    let started = Instant::now();
    let ids: Vec<(String, Instant)> = (0..sessions)
        .map(|_| {
            let at = Instant::now();
            (g.create_session(&key, json!({"start": true})), at)
        })
        .collect();
    let mut connect_ms = Vec::with_capacity(sessions);
    for ((id, at), phone) in ids.iter().zip(&phones) {
        let mut code = String::new();
        let shown = wait_for(Duration::from_secs(60), || {
            let r = g.get(&format!("/sessions/{id}/qr"), &key);
            if r.status == 200 {
                code = r.json()["code"].as_str().unwrap().to_owned();
                true
            } else {
                false
            }
        });
        assert!(shown, "no QR code for {id}");
        standin.scan_qr(&code, phone, "Bench").expect("scan");
        g.wait_status(id, &key, "working");
        connect_ms.push(at.elapsed().as_millis() as u64);
    }
    let all_working = started.elapsed();
    // Let the post-login work (pre-key upload, app-state sync, group sync) settle.
    std::thread::sleep(Duration::from_secs(10));
    let loaded_rss = rss_kib(pid);
    let cpu_before = cpu_ticks(pid);
    std::thread::sleep(idle);
    let cpu_after = cpu_ticks(pid);
    let idle_rss = rss_kib(pid);
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    let idle_cpu_pct = (cpu_after - cpu_before) as f64 / ticks_per_sec / idle.as_secs_f64() * 100.0;
    connect_ms.sort_unstable();
    let pct = |p: f64| connect_ms[((connect_ms.len() - 1) as f64 * p) as usize];
    let per_session_mb = (idle_rss.saturating_sub(base_rss)) as f64 / 1024.0 / sessions as f64;
    println!("sessions: {sessions} whatsapp-rust sessions paired to the stand-in");
    println!(
        "rss: {:.1} MB before, {:.1} MB loaded, {:.1} MB after {} s idle",
        base_rss as f64 / 1024.0,
        loaded_rss as f64 / 1024.0,
        idle_rss as f64 / 1024.0,
        idle.as_secs()
    );
    println!("memory per session: {per_session_mb:.2} MB");
    println!(
        "connect (create → working, incl. QR scan): p50 {} ms, p90 {} ms, max {} ms; all {sessions} in {:.1} s",
        pct(0.5),
        pct(0.9),
        connect_ms.last().unwrap(),
        all_working.as_secs_f64()
    );
    println!(
        "idle CPU: {idle_cpu_pct:.2}% of one core for {sessions} sessions ({:.3}% per session)",
        idle_cpu_pct / sessions as f64
    );
}
