//! Project tasks that need more than one cargo invocation: building the plugin components
//! for `wasm32-wasip2`, then serving, testing or benchmarking with them.
//!
//! `cargo xtask plugins` · `cargo xtask serve` · `cargo xtask test` · `cargo xtask bench`

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Components served by `cargo xtask serve` (copied to `target/plugins/`).
const PRODUCT_PLUGINS: &[(&str, &str)] = &[
    ("plugin-sessions", "sessions"),
    ("plugin-contacts", "contacts"),
    ("plugin-chats", "chats"),
    ("plugin-groups", "groups"),
    ("plugin-messages", "messages"),
    ("plugin-webhooks", "webhooks"),
    ("plugin-admin", "admin"),
];
/// Components the end-to-end tests load besides the product ones (`target/test-plugins/`).
const TEST_PLUGINS: &[(&str, &str)] = &[
    ("plugin-notes", "notes"),
    ("plugin-chaos", "chaos"),
    ("plugin-legacy", "legacy"),
];

const TARGET: &str = "wasm32-wasip2";

/// A plugin written in JavaScript, built with the npm toolchain pinned in
/// [`JS_TOOLCHAIN`]'s lock file: bundled by esbuild, made a component by componentize-js.
struct JsPlugin {
    /// Its directory: `src/index.js` and `wit/world.wit`.
    dir: &'static str,
    /// The world in `wit/world.wit`: the interfaces it imports, and the endpoint export.
    world: &'static str,
    /// The component's name (`<name>.wasm`).
    name: &'static str,
    /// Served by `cargo xtask serve` (`target/plugins`), or only loaded by the tests.
    product: bool,
}

const JS_PLUGINS: &[JsPlugin] = &[
    JsPlugin {
        dir: "plugins/labels-js",
        world: "labels",
        name: "labels",
        product: true,
    },
    JsPlugin {
        dir: "tests/plugins/chaos-js",
        world: "chaos-js",
        name: "chaos-js",
        product: false,
    },
];

/// The npm project whose `package-lock.json` pins the JavaScript toolchain
/// (componentize-js, jco, esbuild) every JS plugin above is built with.
const JS_TOOLCHAIN: &str = "plugins/labels-js";

/// Packages whose tests run on the host target: the SDK, the gateway (unit and
/// end-to-end), the plugins' native tests against the SDK's in-memory host, and xtask.
const NATIVE_TEST_PACKAGES: &[&str] = &[
    "gateway-sdk",
    "gateway",
    "plugin-sessions",
    "plugin-admin",
    "plugin-contacts",
    "plugin-chats",
    "plugin-groups",
    "plugin-messages",
    "plugin-notes",
    "wa-standin",
    "xtask",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// Where cargo writes build output: `CARGO_TARGET_DIR` when set (relative to the
/// workspace), else `target/`. The components are copied from there into `target/plugins`
/// and `target/test-plugins`, where the gateway and the tests look for them.
fn build_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

/// A nested cargo in the environment a direct `cargo …` from a shell would have.
///
/// `cargo run` (how `cargo xtask` starts us) sets `CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`
/// and the like for this binary. Build scripts such as ring's declare
/// `rerun-if-env-changed` on exactly those names, and cargo compares them against its
/// *own* environment: left in place, they would make every build started from here look
/// different from one started by hand, and each would recompile ring, rustls,
/// whatsapp-rust and the gateway (about 8 minutes on 2 cores) undoing the other.
fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if is_set_by_cargo_run(name) {
            c.env_remove(name);
        }
    }
    c
}

/// The variables cargo sets for the crate it runs (not the user's `CARGO_*` settings).
fn is_set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || matches!(
            name,
            "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

fn run(mut cmd: Command) -> Result<(), String> {
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
    eprintln!(
        "xtask: {} {}",
        cmd.get_program().to_string_lossy(),
        args.join(" ")
    );
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}

/// Installs the wasm target when it is missing (rustup does not do it from
/// rust-toolchain.toml on these machines).
fn ensure_target() -> Result<(), String> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match out {
        Ok(o)
            if String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == TARGET) =>
        {
            Ok(())
        }
        Ok(_) => run({
            let mut c = Command::new("rustup");
            c.args(["target", "add", TARGET]);
            c
        }),
        Err(_) => {
            eprintln!("xtask: rustup not found; assuming the {TARGET} target is installed");
            Ok(())
        }
    }
}

/// Installs a PyPI package the end-to-end tests use unless `check` (Python code that exits
/// 0 when a suitable version is importable) says it is there.
fn ensure_python(check: &str, requirement: &str) -> Result<(), String> {
    let present = Command::new("python3")
        .args(["-c", check])
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if present {
        return Ok(());
    }
    run({
        let mut c = Command::new("python3");
        c.args(["-m", "pip", "install", "--quiet", requirement]);
        c
    })
}

/// The PyPI packages the end-to-end tests drive: the OpenAPI validator; the API fuzzer
/// run against `/openapi.json` (schemathesis 4.32 or later in 4.x: `tests/e2e/fuzz.rs`
/// uses its configuration dictionaries and custom checks); and the reference Standard
/// Webhooks library every webhook delivery is verified with (`tests/e2e/webhooks.rs`),
/// not the gateway's own signer.
fn ensure_test_tools() -> Result<(), String> {
    ensure_python("import openapi_spec_validator", "openapi-spec-validator")?;
    ensure_python(
        "import sys, schemathesis.cli; from importlib.metadata import version; \
         v = tuple(int(p) for p in version('schemathesis').split('.')[:2]); \
         sys.exit(0 if (4, 32) <= v < (5, 0) else 1)",
        "schemathesis>=4.32,<5",
    )?;
    ensure_python("import standardwebhooks", "standardwebhooks>=1.0,<2")?;
    // The third-party WebSocket client of the realtime tests (`tests/e2e/realtime.rs`).
    ensure_python("import websocket", "websocket-client>=1.8,<2")
}

/// Builds the plugin components and copies them into `target/plugins` and
/// `target/test-plugins`. Without node and npm the JavaScript plugins are skipped with a
/// warning, unless `require_js` (the tests load them).
fn plugins(require_js: bool) -> Result<(), String> {
    ensure_target()?;
    let packages: Vec<&str> = PRODUCT_PLUGINS
        .iter()
        .chain(TEST_PLUGINS)
        .map(|(p, _)| *p)
        .collect();
    build_plugins(&packages, None)?;
    let built = build_dir().join(TARGET).join("plugin");
    for (dir, list) in [("plugins", PRODUCT_PLUGINS), ("test-plugins", TEST_PLUGINS)] {
        let out = root().join("target").join(dir);
        std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
        for (_, name) in list {
            copy_if_changed(
                &built.join(format!("{name}.wasm")),
                &out.join(format!("{name}.wasm")),
            )?;
        }
    }
    // Other builds of the test plugin: a second version (hot-reload tests and benchmark)
    // and an imposter declaring the same routes (route-conflict test).
    chaos_variant(&built, "v2", "chaos-v2")?;
    chaos_variant(&built, "imposter", "imposter")?;
    // Leave the default build in place for later incremental builds.
    build_plugins(&["plugin-chaos"], None)?;
    match js_tools_missing() {
        None => js_plugins()?,
        Some(missing) if require_js => return Err(missing),
        Some(missing) => eprintln!("xtask: warning: {missing}"),
    }
    eprintln!("xtask: plugins ready in target/plugins and target/test-plugins");
    Ok(())
}

/// Why the JavaScript plugins cannot be built here, if they cannot.
fn js_tools_missing() -> Option<String> {
    let names: Vec<&str> = JS_PLUGINS.iter().map(|p| p.name).collect();
    for tool in ["node", "npm"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!(
                "the JavaScript plugins ({}) are not built: `{tool}` is not on PATH. \
                 Install Node.js 18 or later with npm (https://nodejs.org), then run \
                 `cargo xtask plugins` again",
                names.join(", ")
            ));
        }
    }
    None
}

/// Installs the pinned npm packages (`npm ci`) when the lock file changed since the last
/// install, then builds each JavaScript plugin whose sources are newer than its component.
fn js_plugins() -> Result<(), String> {
    let toolchain = root().join(JS_TOOLCHAIN);
    let lock = std::fs::read(toolchain.join("package-lock.json"))
        .map_err(|e| format!("{JS_TOOLCHAIN}/package-lock.json: {e}"))?;
    let stamp = toolchain.join("node_modules/.xtask-package-lock.json");
    if std::fs::read(&stamp).ok().as_deref() != Some(lock.as_slice()) {
        run({
            let mut c = Command::new("npm");
            c.current_dir(&toolchain)
                .args(["ci", "--no-audit", "--no-fund"]);
            c
        })?;
        std::fs::write(&stamp, &lock).map_err(|e| format!("{}: {e}", stamp.display()))?;
    }
    let bin = toolchain.join("node_modules/.bin");
    let out = build_dir().join("js-plugins");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    // What every JS component is built from besides its own directory.
    let shared = [
        root().join("plugins/sdk-js"),
        root().join("wit"),
        toolchain.join("package-lock.json"),
    ];
    let mut checked = false;
    for p in JS_PLUGINS {
        let dir = root().join(p.dir);
        let component = out.join(format!("{}.wasm", p.name));
        let built_at = std::fs::metadata(&component)
            .and_then(|m| m.modified())
            .ok();
        let sources = [dir.join("src"), dir.join("wit/world.wit")];
        let newest = sources
            .iter()
            .chain(&shared)
            .filter_map(|s| newest_mtime(s))
            .max();
        let stale = match (built_at, newest) {
            (Some(b), Some(n)) => n > b,
            _ => true,
        };
        if stale && !checked {
            js_types_current(&bin, &out)?;
            // Type errors against the types jco generated from the WIT fail the build.
            run({
                let mut c = Command::new(bin.join("tsc"));
                c.current_dir(&toolchain)
                    .args(["--project", "jsconfig.json"]);
                c
            })?;
            checked = true;
        }
        if stale {
            let bundle = out.join(format!("{}.js", p.name));
            run({
                let mut c = Command::new(bin.join("esbuild"));
                c.current_dir(&dir)
                    .args(["src/index.js", "--bundle", "--format=esm"])
                    .args([
                        "--platform=neutral",
                        "--external:wa:*",
                        "--log-level=warning",
                    ])
                    .arg(format!("--outfile={}", bundle.display()));
                c
            })?;
            run({
                let mut c = Command::new(bin.join("componentize-js"));
                c.current_dir(&dir)
                    .arg(&bundle)
                    .args(["--wit", "wit", "--world-name", p.world])
                    .args(["--disable", "http", "fetch-event", "--out"])
                    .arg(&component);
                c
            })?;
        }
        let dest = root()
            .join("target")
            .join(if p.product { "plugins" } else { "test-plugins" });
        std::fs::create_dir_all(&dest).map_err(|e| e.to_string())?;
        copy_if_changed(&component, &dest.join(format!("{}.wasm", p.name)))?;
    }
    Ok(())
}

/// Fails when `plugins/sdk-js/types` is not what jco generates from `wit/gateway.wit`
/// today, so a WIT change cannot leave JavaScript authors on stale types.
fn js_types_current(bin: &Path, out: &Path) -> Result<(), String> {
    let fresh = out.join("types-check");
    let _ = std::fs::remove_dir_all(&fresh);
    run({
        let mut c = Command::new(bin.join("jco"));
        c.current_dir(root())
            .args([
                "guest-types",
                "wit/gateway.wit",
                "--world-name",
                "plugin",
                "--quiet",
            ])
            .arg("--out-dir")
            .arg(&fresh);
        c
    })?;
    let committed = root().join("plugins/sdk-js/types");
    if files_under(&fresh)? != files_under(&committed)? {
        return Err(format!(
            "plugins/sdk-js/types is out of date with wit/gateway.wit: run `npm run types` \
             in {JS_TOOLCHAIN} and commit the result"
        ));
    }
    Ok(())
}

/// Every file under `dir` by its path relative to `dir`, with its bytes.
fn files_under(dir: &Path) -> Result<std::collections::BTreeMap<PathBuf, Vec<u8>>, String> {
    let mut files = std::collections::BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let rel = path
                    .strip_prefix(dir)
                    .map_err(|e| e.to_string())?
                    .to_path_buf();
                files.insert(rel, bytes);
            }
        }
    }
    Ok(files)
}

/// The newest modification time of a file, or of any file under a directory.
fn newest_mtime(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "node_modules")
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}

/// Copies only when the bytes differ, so a watching gateway does not reload for nothing.
fn copy_if_changed(from: &Path, to: &Path) -> Result<(), String> {
    let same = std::fs::read(from)
        .ok()
        .zip(std::fs::read(to).ok())
        .is_some_and(|(a, b)| a == b);
    if !same {
        std::fs::copy(from, to).map_err(|e| format!("copy {}: {e}", from.display()))?;
    }
    Ok(())
}

/// `cargo build` of plugin packages for the wasm target, with an optional feature.
fn build_plugins(packages: &[&str], feature: Option<&str>) -> Result<(), String> {
    let mut c = cargo();
    c.args(["build", "--target", TARGET, "--profile", "plugin"]);
    for p in packages {
        c.args(["-p", p]);
    }
    if let Some(f) = feature {
        c.args(["--features", f]);
    }
    run(c)
}

/// Builds the chaos test plugin with `feature` and keeps it as `target/test-plugins/<name>.wasm`.
fn chaos_variant(built: &Path, feature: &str, name: &str) -> Result<(), String> {
    build_plugins(&["plugin-chaos"], Some(feature))?;
    let to = root()
        .join("target/test-plugins")
        .join(format!("{name}.wasm"));
    std::fs::copy(built.join("chaos.wasm"), &to).map_err(|e| format!("copy {name}: {e}"))?;
    Ok(())
}

/// Builds the release binary and runs it on the embedded default configuration. On a
/// fresh install it first mints an API key, so there is a credential to call with.
fn serve(extra: &[String]) -> Result<(), String> {
    let mut c = cargo();
    c.args(["build", "--release", "-p", "gateway"]);
    run(c)?;
    let bin = build_dir().join("release/gateway");
    let config = "examples/gateway.toml";
    if !root().join("data/gateway.redb").exists() {
        eprintln!("xtask: fresh install: minting a first API key for organization org_demo");
        let mut c = Command::new(&bin);
        c.current_dir(root()).args([
            "--config",
            config,
            "apikey",
            "create",
            "--org",
            "org_demo",
            "--name",
            "first-run",
            "--permissions",
            "read,send,manage",
        ]);
        run(c)?;
    }
    let mut c = Command::new(&bin);
    c.current_dir(root())
        .args(["--config", config])
        .args(extra)
        .arg("serve");
    run(c)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = args
        .split_first()
        .map(|(t, r)| (t.as_str(), r.to_vec()))
        .unwrap_or(("help", Vec::new()));
    let result = match task {
        "plugins" => plugins(false),
        "serve" => plugins(false).and_then(|_| serve(&rest)),
        "test" => plugins(true)
            .and_then(|_| ensure_test_tools())
            .and_then(|_| {
                let mut c = cargo();
                c.arg("test");
                for p in NATIVE_TEST_PACKAGES {
                    c.args(["-p", p]);
                }
                c.args(&rest);
                run(c)
            }),
        "bench" => plugins(false).and_then(|_| {
            let mut c = Command::new("bash");
            c.current_dir(root()).arg("benches/run.sh").args(&rest);
            run(c)
        }),
        _ => {
            eprintln!("usage: cargo xtask <plugins|serve|test|bench> [args…]");
            eprintln!(
                "  plugins  build the plugin components (wasm32-wasip2; JavaScript ones with node/npm) into target/plugins"
            );
            eprintln!("  serve    build plugins, then run the gateway with examples/gateway.toml");
            eprintln!("  test     build plugins, then run every test");
            eprintln!("  bench    build plugins, then run the load benchmark (benches/run.sh)");
            return if task == "help" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_set_by_cargo_run;

    #[test]
    fn only_the_variables_cargo_run_sets_are_dropped() {
        for v in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "OUT_DIR",
        ] {
            assert!(is_set_by_cargo_run(v), "{v}");
        }
        for v in [
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_JOBS",
            "CARGO",
            "PATH",
        ] {
            assert!(!is_set_by_cargo_run(v), "{v}");
        }
    }
}
