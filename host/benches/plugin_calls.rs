//! The plugin call path and start-up, measured: per-call cost with a reused instance and
//! with a fresh one, the cost of one storage host call, and gateway start-up with an empty
//! and with a warm precompiled-component cache — for the Rust plugins and for the
//! JavaScript ones (a component carrying its JS engine), whose size, compile time and
//! instance memory are printed first (`js_vs_rust`). Run with `cargo bench -p gateway`
//! after `cargo xtask plugins`.

use criterion::{Criterion, criterion_group, criterion_main};
use gateway::app::App;
use gateway::auth::{Capability, CapabilitySet};
use gateway::config::Config;
use gateway::hostapi::CallContext;
use gateway::hostapi::incoming::ServedRequest;
use gateway::plugins::{LoadedPlugin, PluginAnswer};
use gateway::routing::RouteTemplate;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn built(path: &str) -> PathBuf {
    let p = root().join(path);
    assert!(p.exists(), "{path}: run `cargo xtask plugins` first");
    p
}

fn chaos() -> PathBuf {
    built("target/test-plugins/chaos.wasm")
}

fn chaos_js() -> PathBuf {
    built("target/test-plugins/chaos-js.wasm")
}

/// A gateway built in-process around one plugin, with `idle` instances kept per org and
/// its compiled components cached in `cache` (under `dir`).
fn plugin_in(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    cache: &str,
    component: &Path,
    idle: usize,
) -> (Arc<App>, Arc<LoadedPlugin>) {
    let mut config = Config::default();
    static APPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let tag = format!(
        "{}-{idle}-{}",
        component.file_stem().unwrap().to_string_lossy(),
        APPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    config.storage.data_dir = dir.join(format!("data-{tag}"));
    config.plugins.dir = dir.join("empty");
    config.plugins.cache_dir = Some(dir.join(cache));
    config.plugins.watch = false;
    config.limits.idle_instances_per_org = idle;
    // The JS test plugin gets what `labels` gets by default.
    let js = config.plugins.limits["labels"].clone();
    config.plugins.limits.insert("chaos-js".into(), js);
    std::fs::create_dir_all(&config.plugins.dir).unwrap();
    rt.block_on(async {
        let app = App::build(config).await.unwrap();
        let plugin = app.plugins.check(component).await.unwrap();
        (app, plugin)
    })
}

fn plugin(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    component: &Path,
    idle: usize,
) -> (Arc<App>, Arc<LoadedPlugin>) {
    plugin_in(rt, dir, "cache", component, idle)
}

/// Size, compile time (empty cache), load time (warm cache) and the memory one instance
/// holds after a call, Rust plugins next to JavaScript ones; printed, not sampled.
fn js_vs_rust(_c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    println!("plugin          language  size      compile  load(cached)  instance memory");
    for (path, language, op, route) in [
        (
            "target/test-plugins/chaos.wasm",
            "rust",
            "chaosOk",
            "/chaos/ok",
        ),
        ("target/plugins/contacts.wasm", "rust", "", ""),
        (
            "target/test-plugins/chaos-js.wasm",
            "js",
            "jsOk",
            "/chaos-js/ok",
        ),
        ("target/plugins/labels.wasm", "js", "listLabels", "/labels"),
    ] {
        let component = built(path);
        let size = std::fs::metadata(&component).unwrap().len();
        let started = Instant::now();
        let (_app, _) = plugin_in(&rt, dir.path(), "figures", &component, 4);
        let compile = started.elapsed();
        let started = Instant::now();
        let (_app2, loaded) = plugin_in(&rt, dir.path(), "figures", &component, 4);
        let load = started.elapsed();
        let memory = if op.is_empty() {
            "-".to_owned()
        } else {
            let r = rt.block_on(call(&loaded, &request(op, route, "")));
            assert_eq!(r.response.status, 200);
            let bytes = loaded.idle_instance_memory_bytes().unwrap_or(0);
            format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
        };
        println!(
            "{:<15} {language:<9} {:>5.1} MiB {:>6} ms {:>9} ms  {memory}",
            component.file_stem().unwrap().to_string_lossy(),
            size as f64 / (1 << 20) as f64,
            compile.as_millis(),
            load.as_millis(),
        );
    }
}

fn request(operation: &str, route: &str, query: &str) -> ServedRequest {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::ACCEPT, "application/json".parse().unwrap());
    ServedRequest {
        method: http::Method::GET,
        route: Arc::new(RouteTemplate::parse(route).unwrap()),
        operation_id: operation.into(),
        path: route.into(),
        params: Vec::new(),
        uri: format!("/api/v1{route}?{query}").parse().unwrap(),
        headers,
        body: Default::default(),
    }
}

/// One call of the request's route; the request is cloned per call, as the gateway
/// builds one per HTTP request.
async fn call(plugin: &LoadedPlugin, request: &ServedRequest) -> PluginAnswer {
    let route = plugin
        .manifest
        .routes
        .iter()
        .position(|r| r.operation_id == request.operation_id)
        .expect("the plugin declares the operation");
    plugin
        .handle(context(), route, request.clone())
        .await
        .unwrap()
        .unwrap()
}

fn context() -> CallContext {
    CallContext {
        organization: Arc::from("org_bench"),
        principal: "apikey:key_bench".into(),
        created_by: "apikey:key_bench".into(),
        capabilities: CapabilitySet::default().with(Capability::Read),
        session: None,
        request_id: "req_bench".into(),
        event_depth: 0,
    }
}

fn calls(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_app, reused) = plugin(&rt, dir.path(), &chaos(), 4);
    let (_app2, fresh) = plugin(&rt, dir.path(), &chaos(), 0);
    let ok = request("chaosOk", "/chaos/ok", "");
    let (_app3, js_reused) = plugin(&rt, dir.path(), &chaos_js(), 4);
    let (_app4, js_fresh) = plugin(&rt, dir.path(), &chaos_js(), 0);
    let js_ok = request("jsOk", "/chaos-js/ok", "");

    let mut g = c.benchmark_group("plugin_call");
    g.bench_function("reused_instance", |b| {
        b.to_async(&rt).iter(|| async {
            let r = call(&reused, &ok).await;
            assert_eq!(r.response.status, 200);
        })
    });
    g.bench_function("fresh_instance", |b| {
        b.to_async(&rt).iter(|| async {
            let r = call(&fresh, &ok).await;
            assert_eq!(r.response.status, 200);
        })
    });
    // One storage read = (cost of 1000 reads − cost of none) / 1000.
    let loop_of = |n: u32| request("chaosKvLoop", "/chaos/kv-loop", &format!("n={n}"));
    let (none, thousand) = (loop_of(0), loop_of(1000));
    g.bench_function("storage_get_x0", |b| {
        b.to_async(&rt)
            .iter(|| async { call(&reused, &none).await })
    });
    g.bench_function("storage_get_x1000", |b| {
        b.to_async(&rt)
            .iter(|| async { call(&reused, &thousand).await })
    });
    g.finish();

    // The same empty call into a JavaScript component.
    let mut g = c.benchmark_group("js_plugin_call");
    g.bench_function("reused_instance", |b| {
        b.to_async(&rt).iter(|| async {
            let r = call(&js_reused, &js_ok).await;
            assert_eq!(r.response.status, 200);
        })
    });
    g.sample_size(20);
    g.bench_function("fresh_instance", |b| {
        b.to_async(&rt).iter(|| async {
            let r = call(&js_fresh, &js_ok).await;
            assert_eq!(r.response.status, 200);
        })
    });
    g.finish();
}

/// Starts the release binary and returns the time until both listeners are up.
fn start_once(config: &Path) -> Duration {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut up = 0;
    while up < 2 {
        let line = lines.next().expect("gateway exited").unwrap();
        if line.starts_with("listening ") {
            up += 1;
        }
    }
    let took = started.elapsed();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    took
}

fn startup(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for (from, name) in [
        ("target/plugins/sessions.wasm", "sessions"),
        ("target/plugins/contacts.wasm", "contacts"),
        ("target/test-plugins/chaos.wasm", "chaos"),
    ] {
        std::fs::copy(root().join(from), plugins.join(format!("{name}.wasm"))).unwrap();
    }
    let write_config = |name: &str, cache: &Path| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = {:?}\n[plugins]\ndir = {:?}\ncache_dir = {:?}\nwatch = false\n[log]\nlevel = \"warn\"\n",
                dir.path().join(format!("data-{name}")).display().to_string(),
                plugins.display().to_string(),
                cache.display().to_string()
            ),
        )
        .unwrap();
        path
    };
    let warm_cache = dir.path().join("warm-cache");
    let warm = write_config("warm", &warm_cache);
    start_once(&warm); // fills the cache

    let mut g = c.benchmark_group("startup");
    g.sample_size(10);
    g.bench_function("warm_cache", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| start_once(&warm)).sum())
    });
    g.bench_function("empty_cache", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|i| {
                    let cache = dir.path().join(format!("cold-{i}-{}", std::process::id()));
                    let _ = std::fs::remove_dir_all(&cache);
                    let cfg = write_config("cold", &cache);
                    start_once(&cfg)
                })
                .sum()
        })
    });
    g.finish();
}

criterion_group!(benches, js_vs_rust, calls, startup);
criterion_main!(benches);
