//! Soak: a minute (`SOAK_SECS`) of mixed API load while plugins are hot-reloaded, sessions
//! are created, started, stopped and deleted, and the sandbox drops and restores the
//! connection. No request may fail, and the gateway's memory and open files stay flat: a
//! leak per request, per reload, per session or per reconnect shows within a minute.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ALICE: &str = "205227043110953@lid";
/// How long the load runs unless `SOAK_SECS` says otherwise.
const DEFAULT_SECS: u64 = 60;
/// RSS and open files are measured against their level at the end of this warm-up.
const WARMUP: Duration = Duration::from_secs(10);
const LOAD_THREADS: usize = 4;

/// Time windows of something happening: sandbox outages (from just before the disconnect
/// call until the session was seen `working` again after the reconnect) or plugin reloads
/// (from writing the file until the reload answered).
#[derive(Default)]
struct Windows(Mutex<Vec<(Instant, Option<Instant>, String)>>);

impl Windows {
    fn begin(&self, what: &str) -> usize {
        let mut w = self.0.lock().unwrap();
        w.push((Instant::now(), None, what.to_owned()));
        w.len() - 1
    }

    fn end(&self, i: usize) {
        self.0.lock().unwrap()[i].1 = Some(Instant::now());
    }

    /// What overlapped a request sent at `from` and answered at `to`.
    fn during(&self, from: Instant, to: Instant) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(start, end, _)| *start <= to && end.is_none_or(|e| e >= from))
            .map(|(_, _, what)| what.clone())
            .collect()
    }
}

struct Tally {
    started: Instant,
    outages: Windows,
    reloads: Windows,
    answers: Mutex<BTreeMap<String, usize>>,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn ok(&self, what: &str) {
        *self
            .answers
            .lock()
            .unwrap()
            .entry(what.to_owned())
            .or_default() += 1;
    }

    fn new() -> Tally {
        Tally {
            started: Instant::now(),
            outages: Windows::default(),
            reloads: Windows::default(),
            answers: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    /// Records a failure, with when it happened and what it overlapped.
    fn fail_during(&self, what: &str, detail: String, sent: Instant) {
        let now = Instant::now();
        let mut during = self.outages.during(sent, now);
        during.extend(self.reloads.during(sent, now));
        let mut f = self.failures.lock().unwrap();
        if f.len() < 50 {
            f.push(format!(
                "{what} sent at {:?}, answered after {:?}, during {during:?}: {detail}",
                sent - self.started,
                now - sent
            ));
        }
        *self
            .answers
            .lock()
            .unwrap()
            .entry(format!("{what} FAILED"))
            .or_default() += 1;
    }

    fn fail(&self, what: &str, detail: String) {
        self.fail_during(what, detail, Instant::now());
    }

    /// Checks one answer: `want` is the status expected; a LIVE call (`live`) may also
    /// answer 501 `not_implemented` when it overlapped a sandbox outage — and only then.
    fn check(
        &self,
        what: &str,
        sent: Instant,
        answer: Result<Resp, String>,
        want: u16,
        live: bool,
        body_ok: impl FnOnce(&Resp) -> bool,
    ) -> Option<Resp> {
        let r = match answer {
            Ok(r) => r,
            Err(e) => {
                self.fail_during(what, e, sent);
                return None;
            }
        };
        if r.status == want && body_ok(&r) {
            self.ok(what);
            return Some(r);
        }
        let code = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
        if live
            && r.status == 501
            && code.as_deref() == Some("not_implemented")
            && !self.outages.during(sent, Instant::now()).is_empty()
        {
            self.ok(&format!("{what} 501 while disconnected"));
            return None;
        }
        self.fail_during(what, format!("{} {}", r.status, r.text()), sent);
        None
    }
}

/// A JSON body with a field equal to a value.
fn has(r: &Resp, pointer: &str, want: &str) -> bool {
    serde_json::from_slice::<Value>(&r.body).is_ok_and(|v| v.pointer(pointer) == Some(&json!(want)))
}

/// One whole `/chaos/version` answer: one version throughout (see reload.rs).
fn whole_version(r: &Resp) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(&r.body) else {
        return false;
    };
    let digit = match v["version"].as_str() {
        Some("1.0.0") => '1',
        Some("2.0.0") => '2',
        _ => return false,
    };
    v["body"]
        .as_str()
        .is_some_and(|b| b.len() == 4096 && b.chars().all(|c| c == digit))
}

/// The mixed load one client thread sends until `stop`.
fn client(
    g: Arc<Gateway>,
    key: String,
    session: String,
    thread: usize,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let s = &session;
    let pool = format!("9{:014}@lid", 500 + thread);
    for n in 0usize.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let sent = Instant::now();
        match n % 9 {
            0 => {
                let r = g.try_call(
                    "GET",
                    &format!("/sessions/{s}/contacts/{ALICE}"),
                    &key,
                    None,
                );
                tally.check("getContact", sent, r, 200, false, |r| {
                    has(r, "/identity/lid", ALICE)
                });
            }
            1 => {
                let r = g.try_call(
                    "GET",
                    &format!("/sessions/{s}/contacts?limit=5"),
                    &key,
                    None,
                );
                tally.check("listContacts", sent, r, 200, false, |r| {
                    serde_json::from_slice::<Value>(&r.body)
                        .is_ok_and(|v| v["data"].as_array().is_some_and(|d| d.len() == 5))
                });
            }
            2 => {
                // A note written and deleted again: the load keeps the data set steady.
                let text = format!("soak {thread} {n}");
                let r = g.try_call(
                    "POST",
                    &format!("/sessions/{s}/notes"),
                    &key,
                    Some(json!({ "text": text })),
                );
                let created = tally.check("createNote", sent, r, 201, false, |r| {
                    has(r, "/text", &text)
                });
                if let Some(id) = created.and_then(|r| r.json()["id"].as_str().map(str::to_owned)) {
                    let sent = Instant::now();
                    let r = g.try_call("DELETE", &format!("/sessions/{s}/notes/{id}"), &key, None);
                    tally.check("deleteNote", sent, r, 204, false, |_| true);
                }
            }
            3 => {
                let r = g.try_call("GET", &format!("/sessions/{s}/notes?limit=10"), &key, None);
                tally.check("listNotes", sent, r, 200, false, |r| {
                    serde_json::from_slice::<Value>(&r.body).is_ok_and(|v| v["data"].is_array())
                });
            }
            4 => {
                let r = g.try_call("GET", "/sessions?limit=20", &key, None);
                tally.check("listSessions", sent, r, 200, false, |r| {
                    serde_json::from_slice::<Value>(&r.body).is_ok_and(|v| v["data"].is_array())
                });
            }
            5 => {
                let r = g.try_call(
                    "GET",
                    &format!("/sessions/{s}/contacts/{ALICE}/about"),
                    &key,
                    None,
                );
                tally.check("getContactAbout", sent, r, 200, true, |r| {
                    has(r, "/about", "Building things at Acme")
                });
            }
            6 => {
                let action = if n % 2 == 0 { "block" } else { "unblock" };
                let r = g.try_call(
                    "POST",
                    &format!("/sessions/{s}/contacts/{pool}/{action}"),
                    &key,
                    Some(json!({})),
                );
                tally.check(action, sent, r, 204, true, |_| true);
            }
            7 => {
                let r = g.try_call(
                    "GET",
                    &format!("/sessions/{s}/contacts/blocked"),
                    &key,
                    None,
                );
                tally.check("listBlocked", sent, r, 200, true, |r| {
                    serde_json::from_slice::<Value>(&r.body).is_ok_and(|v| v["data"].is_array())
                });
            }
            _ => {
                let r = g.try_call("GET", "/chaos/version", &key, None);
                tally.check("chaosVersion", sent, r, 200, false, whole_version);
            }
        }
    }
}

/// Sessions created, started, stopped, read and deleted, over and over.
fn churn(g: Arc<Gateway>, key: String, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let r = g.try_call(
            "POST",
            "/sessions",
            &key,
            Some(json!({"label": "churn", "start": true})),
        );
        let Some(created) = tally.check("createSession", sent, r, 201, false, |r| {
            has(r, "/label", "churn")
        }) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let id = created.json()["id"].as_str().unwrap().to_owned();
        std::thread::sleep(Duration::from_millis(30));
        for (what, method, path, want) in [
            ("stopSession", "POST", format!("/sessions/{id}:stop"), 200),
            ("startSession", "POST", format!("/sessions/{id}:start"), 200),
            ("getSession", "GET", format!("/sessions/{id}"), 200),
            ("deleteSession", "DELETE", format!("/sessions/{id}"), 204),
        ] {
            let sent = Instant::now();
            let body = (method == "POST").then(|| json!({}));
            let r = g.try_call(method, &path, &key, body);
            tally.check(what, sent, r, want, false, |_| true);
        }
    }
}

/// A built component with a custom section appended: the same code, another content
/// hash, so installing it is a real reload of that plugin (compiled, linked, swapped).
fn stamped(plugin: &str, stamp: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    let mut bytes = std::fs::read(plugin_path(plugin)).unwrap();
    let name = b"wa-gateway-soak";
    let mut payload = Vec::new();
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(stamp.as_bytes());
    bytes.push(0); // custom section
    leb(payload.len(), &mut bytes);
    bytes.extend_from_slice(&payload);
    bytes
}

/// The components the soak reloads, two variants each (so the shared compile cache holds
/// a fixed set of artifacts): chaos's two versions, and two stamps of contacts and notes.
struct Variants([(&'static str, [Vec<u8>; 2]); 3]);

/// Reloads a full cycle takes: every variant once.
const RELOAD_CYCLE: usize = 6;

impl Variants {
    fn new() -> Variants {
        let stamps = |name: &str| -> [Vec<u8>; 2] { [stamped(name, "a"), stamped(name, "b")] };
        let chaos = [
            std::fs::read(plugin_path("chaos-v2")).unwrap(),
            std::fs::read(plugin_path("chaos")).unwrap(),
        ];
        Variants([
            ("chaos", chaos),
            ("contacts", stamps("contacts")),
            ("notes", stamps("notes")),
        ])
    }

    /// Installs the `n`th variant of the round robin (operator style: write aside, then
    /// rename) and reloads; answers whether exactly that plugin was loaded anew.
    fn reload(&self, g: &Gateway, n: usize) -> Result<(), String> {
        let (name, files) = &self.0[n % self.0.len()];
        let tmp = g.dir.path().join(format!("{name}.wasm.tmp"));
        std::fs::write(&tmp, &files[(n / self.0.len()) % 2]).unwrap();
        std::fs::rename(&tmp, g.plugin_dir().join(format!("{name}.wasm"))).unwrap();
        let report = g.reload();
        if report["loaded"] == json!([name]) && report["refused"] == json!({}) {
            Ok(())
        } else {
            Err(format!("reloading {name}: {report}"))
        }
    }

    fn name(&self, n: usize) -> &'static str {
        self.0[n % self.0.len()].0
    }
}

/// Hot reloads of the plugins under load, one every ~1.5 s, round robin from the `first`.
fn reloads(g: Arc<Gateway>, tally: Arc<Tally>, stop: Arc<AtomicBool>, first: usize) {
    let variants = Variants::new();
    for n in first.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let window = tally
            .reloads
            .begin(&format!("reload of {}", variants.name(n)));
        let result = variants.reload(&g, n);
        tally.reloads.end(window);
        match result {
            Ok(()) => tally.ok("reload"),
            Err(e) => tally.fail("reload", e),
        }
        std::thread::sleep(Duration::from_millis(1500));
    }
}

/// The simulated phone loses and regains its connection every ~3 s.
fn outages(
    g: Arc<Gateway>,
    key: String,
    session: String,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let sandbox = |action: &str| {
        let r = try_request(
            &format!("{}/sandbox/sessions/{session}/{action}", g.admin),
            "POST",
            &[("content-type", "application/json")],
            Some(b"{}".to_vec()),
        );
        match r {
            Ok(r) if r.status == 200 => tally.ok(action),
            Ok(r) => tally.fail(action, format!("{} {}", r.status, r.text())),
            Err(e) => tally.fail(action, e),
        }
    };
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(2500));
        let outage = tally.outages.begin("sandbox outage");
        sandbox("disconnect");
        std::thread::sleep(Duration::from_millis(500));
        sandbox("reconnect");
        let back = wait_for(Duration::from_secs(10), || {
            g.try_call("GET", &format!("/sessions/{session}"), &key, None)
                .is_ok_and(|r| has(&r, "/status", "working"))
        });
        tally.outages.end(outage);
        if !back {
            tally.fail("reconnect", "the session never came back to working".into());
        }
    }
}

/// Resident memory (KiB) and open file descriptors of a process.
fn usage(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (rss, fds)
}

#[test]
fn a_minute_of_mixed_load_reloads_churn_and_outages_fails_nothing_and_leaks_nothing() {
    let total = Duration::from_secs(env_or("SOAK_SECS", DEFAULT_SECS));
    // Short developer runs keep a proportionate warm-up.
    let warmup = WARMUP.min(total / 3);
    // `SOAK_SKIP=churn,reloads,outages` leaves parts out, to tell which one moves a trend.
    let skip = std::env::var("SOAK_SKIP").unwrap_or_default();
    let runs = |part: &str| !skip.split(',').any(|s| s.trim() == part);
    let g = Arc::new(Gateway::start());
    let key = g.key("org_soak", &["read", "send", "manage"]);
    let session = g.working_session(&key);
    // `working` comes before the contact sync is stored (events are delivered to plugins
    // asynchronously): start once the store has what the load reads.
    let synced = wait_for(Duration::from_secs(30), || {
        g.get(&format!("/sessions/{session}/contacts/{ALICE}"), &key)
            .status
            == 200
            && g.get(&format!("/sessions/{session}/contacts?limit=5"), &key)
                .json()["data"]
                .as_array()
                .is_some_and(|d| d.len() == 5)
    });
    assert!(synced, "the contact store was never synced");
    // Memory settles only once every reloaded variant has been loaded twice (artifacts
    // cached, earlier catalogs dropped): that is start-up, not a trend, so it happens before
    // the clock starts.
    if runs("reloads") {
        let variants = Variants::new();
        for n in 0..2 * RELOAD_CYCLE {
            variants.reload(&g, n).unwrap();
        }
    }
    let pid = g.pid();
    let tally = Arc::new(Tally::new());
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..LOAD_THREADS {
        let (g, key, s, tally, stop) = (
            g.clone(),
            key.clone(),
            session.clone(),
            tally.clone(),
            stop.clone(),
        );
        threads.push(std::thread::spawn(move || {
            client(g, key, s, t, tally, stop)
        }));
    }
    if runs("churn") {
        let (g, key, tally, stop) = (g.clone(), key.clone(), tally.clone(), stop.clone());
        threads.push(std::thread::spawn(move || churn(g, key, tally, stop)));
    }
    if runs("reloads") {
        let (g, tally, stop) = (g.clone(), tally.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            reloads(g, tally, stop, 2 * RELOAD_CYCLE)
        }));
    }
    if runs("outages") {
        let (g, key, s, tally, stop) = (
            g.clone(),
            key.clone(),
            session.clone(),
            tally.clone(),
            stop.clone(),
        );
        threads.push(std::thread::spawn(move || outages(g, key, s, tally, stop)));
    }

    // Samples every 500 ms: (time since start, RSS KiB, open fds).
    let started = Instant::now();
    let mut samples: Vec<(Duration, u64, usize)> = Vec::new();
    while started.elapsed() < total {
        std::thread::sleep(Duration::from_millis(500));
        let (rss, fds) = usage(pid);
        samples.push((started.elapsed(), rss, fds));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("soak thread");
    }

    let answers = tally.answers.lock().unwrap().clone();
    println!(
        "soak {total:?}: {} answers: {answers:#?}",
        answers.values().sum::<usize>()
    );
    let failures = tally.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} failed requests, first ones: {failures:#?}",
        answers
            .iter()
            .filter(|(k, _)| k.ends_with("FAILED"))
            .map(|(_, n)| n)
            .sum::<usize>()
    );
    // Every part of the soak really ran, and repeatedly.
    for (part, what) in [
        ("load", "getContact"),
        ("load", "listContacts"),
        ("load", "createNote"),
        ("load", "deleteNote"),
        ("load", "listNotes"),
        ("load", "listSessions"),
        ("load", "getContactAbout"),
        ("load", "block"),
        ("load", "unblock"),
        ("load", "listBlocked"),
        ("load", "chaosVersion"),
        ("churn", "createSession"),
        ("churn", "deleteSession"),
        ("reloads", "reload"),
        ("outages", "disconnect"),
        ("outages", "reconnect"),
    ] {
        if !runs(part) {
            continue;
        }
        let n = answers.get(what).copied().unwrap_or(0);
        assert!(n >= 2, "{what} ran {n} times");
    }

    // Flat. Samples are taken every 500 ms and smoothed as the median of each run of 5
    // consecutive samples (2.5 s), so a descriptor open for a moment (a component file being
    // read, a client connection being replaced) or one allocation burst is not a trend. The
    // level is the median of the 5 samples ending at the warm-up (`WARMUP`, 10 s); every
    // smoothed value after the warm-up, of RSS and of open file descriptors alike, must stay
    // within 10% above its level. A fall is printed, not failed: memory handed back to the
    // system (idle instances dropped, the allocator purging) is not a leak, and one CI run
    // saw RSS settle 12% under its warm-up level.
    const RUN: usize = 5;
    let median = |values: &[u64]| -> u64 {
        let mut v = values.to_vec();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let warm = samples
        .iter()
        .rposition(|s| s.0 <= warmup)
        .expect("samples in the warm-up");
    assert!(warm + 1 >= RUN, "too few samples in the warm-up");
    assert!(
        samples.len() > warm + RUN,
        "too few samples after the warm-up"
    );
    for (name, unit, pick) in [
        (
            "RSS",
            "KiB",
            (|s: &(Duration, u64, usize)| s.1) as fn(&_) -> u64,
        ),
        ("open files", "", |s| s.2 as u64),
    ] {
        let values: Vec<u64> = samples.iter().map(pick).collect();
        let level = median(&values[warm + 1 - RUN..=warm]) as f64;
        let smoothed: Vec<(Duration, u64)> = (warm + RUN..values.len())
            .map(|end| (samples[end].0, median(&values[end + 1 - RUN..=end])))
            .collect();
        let (lo, hi) = (
            smoothed.iter().map(|s| s.1).min().unwrap(),
            smoothed.iter().map(|s| s.1).max().unwrap(),
        );
        println!(
            "{name}: warm-up level {level} {unit}, after it {lo}..{hi} {unit} ({:+.1}%..{:+.1}%)",
            (lo as f64 / level - 1.0) * 100.0,
            (hi as f64 / level - 1.0) * 100.0
        );
        for (at, v) in &smoothed {
            assert!(
                *v as f64 <= level * 1.10,
                "{name} {v} {unit} at {at:?} is above the warm-up level {level} {unit} by more \
                 than 10%; samples (time, RSS KiB, open files): {samples:?}"
            );
        }
    }
}
