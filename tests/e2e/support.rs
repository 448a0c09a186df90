//! The end-to-end harness: starts the real `gateway` binary on loopback ports with its own
//! redb data directory and real plugin components, and talks to it over HTTP.

#![allow(dead_code)]

use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host is in the workspace")
        .to_owned()
}

/// A setting for a deeper local run (`SOAK_SECS`, `CRASH_ROUNDS`, `FUZZ_MAX_EXAMPLES`):
/// the environment variable `name` parsed, or `default` when it is unset or unreadable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A built plugin component (`cargo xtask plugins` builds them).
pub fn plugin_path(name: &str) -> PathBuf {
    for dir in ["target/plugins", "target/test-plugins"] {
        let p = root().join(dir).join(format!("{name}.wasm"));
        if p.exists() {
            return p;
        }
    }
    panic!(
        "plugin component {name}.wasm is not built: run `cargo xtask plugins` (or `cargo xtask test`)"
    );
}

/// Compiled components are cached across test gateways, like across restarts in production.
fn shared_cache() -> PathBuf {
    root().join("target").join("e2e-plugin-cache")
}

/// How to start a gateway.
#[derive(Clone)]
pub struct Options {
    pub plugins: Vec<String>,
    /// Extra TOML appended to the generated configuration.
    pub extra_toml: String,
    pub world: Option<PathBuf>,
    pub auto_pair: bool,
    pub engine: &'static str,
    pub plugin_timeout_ms: u64,
    pub plugin_memory_bytes: u64,
    pub max_body_bytes: u64,
    pub header_read_timeout_ms: u64,
    pub body_read_timeout_ms: u64,
    /// Reload when the plugin directory changes.
    pub watch: bool,
    /// `log.format`: `text` or `json`.
    pub log_format: &'static str,
    /// `plugins.grants`: plugin name → host interfaces.
    pub grants: Vec<(&'static str, Vec<&'static str>)>,
    /// More `[limits]` keys, as TOML lines.
    pub limits_toml: String,
    /// More `[engine.whatsapp_rust]` keys, as TOML lines.
    pub whatsapp_toml: String,
    /// More `[engine.sandbox]` keys, as TOML lines.
    pub sandbox_toml: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            plugins: ["sessions", "admin", "contacts", "notes", "chaos"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            extra_toml: String::new(),
            world: Some(root().join("examples/sandbox-world.json")),
            auto_pair: false,
            engine: "sandbox",
            plugin_timeout_ms: 2_000,
            plugin_memory_bytes: 32 << 20,
            max_body_bytes: 64 * 1024,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            watch: false,
            log_format: "text",
            limits_toml: String::new(),
            whatsapp_toml: String::new(),
            sandbox_toml: String::new(),
            grants: vec![
                ("*", vec!["storage", "log"]),
                ("sessions", vec!["session-control", "log"]),
                ("admin", vec!["session-control", "platform-admin", "log"]),
                (
                    "contacts",
                    vec!["storage", "whatsapp-read", "whatsapp-send", "log"],
                ),
                ("messages", vec!["storage", "outbox", "media", "log"]),
                (
                    "chats",
                    vec!["storage", "whatsapp-chats", "event-bus", "log"],
                ),
            ],
        }
    }
}

impl Options {
    /// The groups plugin's grants and emit names (the plugin itself is not added).
    pub fn grant_groups(mut self) -> Options {
        self.grants.push((
            "groups",
            vec![
                "storage",
                "whatsapp-read",
                "whatsapp-groups",
                "event-bus",
                "log",
            ],
        ));
        self.extra_toml = "[plugins.emits]\ngroups = [\"groups.*\", \"group.*\"]\n".into();
        self
    }
}

/// A running gateway process.
pub struct Gateway {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub api: String,
    pub admin: String,
    pub options: Options,
}

impl Gateway {
    pub fn start() -> Gateway {
        Gateway::with(Options::default())
    }

    pub fn with(options: Options) -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        for p in &options.plugins {
            std::fs::copy(plugin_path(p), plugins.join(format!("{p}.wasm"))).unwrap();
        }
        let mut g = Gateway {
            child: None,
            dir,
            api: String::new(),
            admin: String::new(),
            options,
        };
        g.write_config();
        g.spawn();
        g
    }

    pub fn plugin_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("gateway.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("gateway.log")
    }

    fn write_config(&self) {
        let o = &self.options;
        let world = match &o.world {
            Some(w) => format!("world = {:?}\n", w.display().to_string()),
            None => String::new(),
        };
        let text = format!(
            r#"[server]
listen = "127.0.0.1:0"
shutdown_grace_ms = 10000
worker_threads = 2
[admin]
listen = "127.0.0.1:0"
[storage]
data_dir = {data:?}
[plugins]
dir = {plugins:?}
cache_dir = {cache:?}
watch = {watch}
watch_debounce_ms = 100
[plugins.grants]
{grants}
[limits]
plugin_timeout_ms = {timeout}
plugin_memory_bytes = {memory}
max_body_bytes = {body}
header_read_timeout_ms = {header_timeout}
body_read_timeout_ms = {body_timeout}
{limits_extra}
[engine]
kind = "{engine}"
[engine.sandbox]
{world}auto_pair = {auto_pair}
connect_delay_ms = 20
{sandbox_extra}
[engine.whatsapp_rust]
max_attempts = 3
{whatsapp_extra}
[log]
level = "info,gateway=debug"
format = "{log_format}"
{extra}
"#,
            data = self.dir.path().join("data").display().to_string(),
            plugins = self.plugin_dir().display().to_string(),
            cache = shared_cache().display().to_string(),
            timeout = o.plugin_timeout_ms,
            memory = o.plugin_memory_bytes,
            body = o.max_body_bytes,
            header_timeout = o.header_read_timeout_ms,
            body_timeout = o.body_read_timeout_ms,
            engine = o.engine,
            auto_pair = o.auto_pair,
            extra = o.extra_toml,
            limits_extra = o.limits_toml,
            whatsapp_extra = o.whatsapp_toml,
            sandbox_extra = o.sandbox_toml,
            watch = o.watch,
            log_format = o.log_format,
            grants = o
                .grants
                .iter()
                .map(|(name, list)| format!("{name:?} = {list:?}"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        std::fs::write(self.config_path(), text).unwrap();
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
            .arg("--config")
            .arg(self.config_path())
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(log)
            .env_remove("RUST_LOG")
            .spawn()
            .expect("spawn gateway");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let (mut api, mut admin) = (None, None);
        while api.is_none() || admin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("listening api ") {
                        api = Some(a.to_owned());
                    } else if let Some(a) = line.strip_prefix("listening admin ") {
                        admin = Some(a.to_owned());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("gateway did not start; log:\n{}", self.log());
                }
            }
        }
        self.api = api.unwrap();
        self.admin = admin.unwrap();
        fresh_connections(&self.api);
        fresh_connections(&self.admin);
        self.child = Some(child);
    }

    /// The gateway's log so far (for failure messages).
    /// Replaces a plugin file the way an operator should: write aside, then rename.
    pub fn install_plugin(&self, built: &str, as_name: &str) {
        let tmp = self.dir.path().join(format!("{as_name}.wasm.tmp"));
        std::fs::copy(plugin_path(built), &tmp).unwrap();
        std::fs::rename(&tmp, self.plugin_dir().join(format!("{as_name}.wasm"))).unwrap();
    }

    /// Asks the gateway to reload its plugins; returns the report.
    pub fn reload(&self) -> Value {
        let r = self.admin_call("POST", "/admin/plugins:reload", None);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    /// Waits until the log satisfies `f` (log lines are written by a background thread),
    /// and returns it.
    pub fn wait_log(&self, f: impl Fn(&str) -> bool) -> String {
        let mut log = String::new();
        let ok = wait_for(Duration::from_secs(10), || {
            log = self.log();
            f(&log)
        });
        assert!(ok, "log never showed what was expected:\n{log}");
        log
    }

    /// The gateway's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// SIGTERM and wait; returns the exit status success.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (`kill -9`): the process dies at once, mid-write, with no shutdown of any
    /// kind; waits until it is gone. [`Gateway::restart_stopped`] starts it again on the
    /// same data directory and configuration.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("gateway is running");
        if let Some(status) = child.try_wait().expect("gateway status") {
            panic!(
                "the gateway exited by itself ({status}) before it was killed; log:\n{}",
                self.log()
            );
        }
        child.kill().expect("SIGKILL the gateway");
        let status = child.wait().expect("reap the gateway");
        assert!(!status.success(), "a killed gateway cannot exit cleanly");
    }

    /// `kill -9`, then start again on the same data directory and configuration (the
    /// database must open).
    pub fn crash_restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Stops and starts the binary again on the same data directory.
    pub fn restart(&mut self) {
        assert!(
            self.stop(),
            "gateway did not stop cleanly; log:\n{}",
            self.log()
        );
        self.spawn();
    }

    /// Starts the binary again after [`Gateway::stop`].
    pub fn restart_stopped(&mut self) {
        assert!(self.child.is_none(), "gateway is running");
        self.spawn();
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Mints an API key through the admin listener.
    pub fn key(&self, org: &str, permissions: &[&str]) -> String {
        let r = self.admin_call(
            "POST",
            "/admin/api-keys",
            Some(serde_json::json!({"organization": org, "name": "test", "permissions": permissions})),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["secret"].as_str().unwrap().to_owned()
    }

    pub fn admin_call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let json: &[(&str, &str)] = if body.is_some() {
            &[("content-type", "application/json")]
        } else {
            &[]
        };
        request(
            &format!("{}{path}", self.admin),
            method,
            json,
            body.map(|b| b.to_string().into_bytes()),
        )
    }

    /// A request to `/api/v1{path}` with an API key or JWT as Bearer.
    pub fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
        let auth = format!("Bearer {token}");
        request(
            &format!("{}/api/v1{path}", self.api),
            method,
            &[("authorization", auth.as_str())],
            body.map(|b| b.to_string().into_bytes()),
        )
    }

    /// [`Gateway::call`] that reports a failed exchange (connection refused or reset: the
    /// process is gone) instead of panicking.
    pub fn try_call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Result<Resp, String> {
        let auth = format!("Bearer {token}");
        try_request(
            &format!("{}/api/v1{path}", self.api),
            method,
            &[("authorization", auth.as_str())],
            body.map(|b| b.to_string().into_bytes()),
        )
    }

    pub fn get(&self, path: &str, token: &str) -> Resp {
        self.call("GET", path, token, None)
    }

    pub fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call("POST", path, token, Some(body))
    }

    pub fn delete(&self, path: &str, token: &str) -> Resp {
        self.call("DELETE", path, token, None)
    }

    /// A request with explicit headers and raw body to any path of the API listener.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        request(&format!("{}{path}", self.api), method, headers, body)
    }

    /// Creates a session and returns its id.
    pub fn create_session(&self, token: &str, body: Value) -> String {
        let r = self.post("/sessions", token, body);
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_owned()
    }

    /// Creates, starts and pairs a sandbox session (simulated QR scan); returns its id once
    /// it is `working`.
    pub fn working_session(&self, token: &str) -> String {
        let id = self.create_session(token, serde_json::json!({"start": true}));
        wait_until(Duration::from_secs(20), || {
            self.get(&format!("/sessions/{id}"), token).json()["status"] == "scan_qr_code"
        });
        let scan = self.admin_call(
            "POST",
            &format!("/sandbox/sessions/{id}/scan"),
            Some(serde_json::json!({})),
        );
        assert_eq!(scan.status, 200, "{}", scan.text());
        self.wait_status(&id, token, "working");
        id
    }

    pub fn wait_status(&self, id: &str, token: &str, status: &str) -> Value {
        let mut last = Value::Null;
        let ok = wait_for(Duration::from_secs(30), || {
            last = self.get(&format!("/sessions/{id}"), token).json();
            last["status"] == status
        });
        assert!(ok, "session {id} never reached {status}; last: {last}");
        last
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts an error envelope: status, code, a message, an object `details`, JSON type.
    pub fn assert_error(&self, status: u16, code: &str) -> &Resp {
        assert_eq!(
            self.status,
            status,
            "expected {status} {code}, got {}: {}",
            self.status,
            self.text()
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        let v = self.json();
        assert_eq!(v["error"]["code"], code, "{}", self.text());
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            self.text()
        );
        assert!(v["error"]["details"].is_object(), "{}", self.text());
        assert!(
            self.header("x-request-id").is_some(),
            "no x-request-id: {self:?}"
        );
        self
    }
}

/// Pooled HTTP clients, one per server address. Ports are reused by later gateway processes
/// (tests run in parallel and restart gateways), so a process's address gets a fresh pool
/// when it starts: a connection pooled to an earlier process on that port is dead.
fn agents() -> &'static Mutex<HashMap<String, ureq::Agent>> {
    static AGENTS: OnceLock<Mutex<HashMap<String, ureq::Agent>>> = OnceLock::new();
    AGENTS.get_or_init(Default::default)
}

fn new_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .max_idle_connections_per_host(64)
        .build()
        .new_agent()
}

fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// Forgets connections pooled to whatever listened on `base` before.
fn fresh_connections(base: &str) {
    agents()
        .lock()
        .unwrap()
        .insert(authority(base).to_owned(), new_agent());
}

fn agent(url: &str) -> ureq::Agent {
    agents()
        .lock()
        .unwrap()
        .entry(authority(url).to_owned())
        .or_insert_with(new_agent)
        .clone()
}

/// One HTTP request; any status is an answer.
pub fn request(url: &str, method: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Resp {
    exchange(url, method, headers, body, false).unwrap_or_else(|e| panic!("{e}"))
}

/// One HTTP request; any status is an answer, a failed exchange (no connection, connection
/// lost before the whole answer arrived) an error.
pub fn try_request(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Result<Resp, String> {
    exchange(url, method, headers, body, true)
}

/// One exchange; with `whole_body`, an answer whose body breaks off is an error, else the
/// body read so far is dropped and the answer kept (what [`request`] always did).
fn exchange(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
    whole_body: bool,
) -> Result<Resp, String> {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let has_body = body.is_some();
    let req = req.body(body.unwrap_or_default()).unwrap();
    let result = if has_body || !matches!(method, "GET" | "DELETE" | "HEAD") {
        agent(url).run(req)
    } else {
        let (parts, _) = req.into_parts();
        agent(url).run(http::Request::from_parts(parts, ()))
    };
    let mut resp = result.map_err(|e| format!("{method} {url} failed: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = match resp.body_mut().with_config().limit(64 << 20).read_to_vec() {
        Ok(body) => body,
        Err(e) if whole_body => {
            return Err(format!("{method} {url}: reading the answer failed: {e}"));
        }
        Err(_) => Vec::new(),
    };
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// Polls until `f` holds or the time is up; returns whether it held.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub fn wait_until(limit: Duration, f: impl FnMut() -> bool) {
    assert!(wait_for(limit, f), "condition not met within {limit:?}");
}

/// Ordinary requests sent from a few threads while a test does something disruptive
/// (faults, reloads): `GET path` again and again until [`BackgroundLoad::finish`],
/// counting the answers `good` accepts and the rest.
pub struct BackgroundLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ok: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    bad: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl BackgroundLoad {
    pub fn start(
        g: &std::sync::Arc<Gateway>,
        key: &str,
        path: &str,
        threads: usize,
        good: fn(&Resp) -> bool,
    ) -> BackgroundLoad {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let bad = Arc::new(AtomicUsize::new(0));
        let workers = (0..threads)
            .map(|_| {
                let (g, key, path) = (g.clone(), key.to_owned(), path.to_owned());
                let (stop, ok, bad) = (stop.clone(), ok.clone(), bad.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let counter = if good(&g.get(&path, &key)) { &ok } else { &bad };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        BackgroundLoad {
            stop,
            ok,
            bad,
            workers,
        }
    }

    /// Good answers so far.
    pub fn ok(&self) -> usize {
        self.ok.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the threads; the good and the other answers.
    pub fn finish(self) -> (usize, usize) {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.join().unwrap();
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.bad.load(Ordering::Relaxed),
        )
    }
}
