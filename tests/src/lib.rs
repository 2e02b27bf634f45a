/*!
Support for the end-to-end tests: the built binary and plugins, the fixture
plugins, plugin directories to load them from, a logger that keeps what
it is given, and the journal's records as a test socket receives them.

`cargo test --workspace` does not put the plugin `.so` files where a test can
rely on finding them, so [`artifacts`] builds them itself, once per test
binary: it runs `$CARGO build -p virt-hooks-cli -p virt-hooks-driver-*` and takes
the files from `<target_directory>/<profile>/`, the directory cargo documents
for final artifacts. Set `VIRT_HOOKS_TEST_ARTIFACTS` to a directory holding
`virt-hook` and the plugins of [`DRIVERS`] to test prebuilt files instead (and
the network plugin, which [`network_plugin`] otherwise builds on its own,
after the host).

The fixture plugins live in the separate workspace `tests/fixtures/` and are
built by [`fixture`] into `<target_directory>/fixtures/`.
*/
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::print_stderr)] // test support: failing loudly is the point

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

pub use virt_hooks_testing::HooksDir;

mod journal;
pub use journal::{journal_field, journal_fields, receive_datagrams};

/// The environment variable naming a directory of prebuilt artifacts.
pub const ARTIFACTS_ENV: &str = "VIRT_HOOKS_TEST_ARTIFACTS";

/// The real plugins built with the host, by driver name (the network
/// plugin is built on its own: [`network_plugin`]).
pub const DRIVERS: [&str; 5] = ["daemon", "qemu", "lxc", "libxl", "bhyve"];

/// The fixture plugins in `tests/fixtures/<name>/`, each built to
/// `libvirt_hooks_driver_<name with _>.so`.
pub const FIXTURES: [&str; 8] = [
    "no-root-module",
    "init-panics",
    "validate-panics",
    "abi-v2",
    "abi-layout",
    "qemu-snapshot",
    "evolve-1.0",
    "evolve-1.1",
];

/// The fixture programs: `virt-hooks-abi-host-1-1`, a host built against
/// the next minor version of the interface.
pub const FIXTURE_BINARIES: [&str; 1] = ["virt-hooks-abi-host-1-1"];

fn profile() -> &'static str {
    if cfg!(debug_assertions) { "debug" } else { "release" }
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

fn run(mut cmd: Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The main workspace's root directory.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// cargo's `target_directory` for this workspace.
pub fn target_directory() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let mut cmd = cargo();
        cmd.args(["metadata", "--format-version", "1", "--no-deps"]);
        let meta: serde_json::Value = serde_json::from_slice(&run(cmd)).unwrap();
        PathBuf::from(meta["target_directory"].as_str().unwrap())
    })
}

/// The directory holding `virt-hook` and the plugins of [`DRIVERS`]: built
/// on first use (or `$VIRT_HOOKS_TEST_ARTIFACTS`).
pub fn artifacts() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os(ARTIFACTS_ENV) {
            return PathBuf::from(dir);
        }
        let mut cmd = cargo();
        cmd.args(["build", "--quiet", "-p", "virt-hooks-cli"]);
        for driver in DRIVERS {
            cmd.args(["-p", &format!("virt-hooks-driver-{driver}")]);
        }
        if profile() == "release" {
            cmd.arg("--release");
        }
        run(cmd);
        target_directory().join(profile())
    })
}

/// The `virt-hook` binary.
pub fn binary() -> PathBuf {
    artifacts().join("virt-hook")
}

/// A copy of `virt-hook` next to exactly the plugins of [`DRIVERS`], in
/// `<target>/e2e-installed/`, made once per test binary: the artifacts
/// directory itself may hold other plugins (`cargo build --workspace` puts
/// the network plugin there), which the binary would load from its own
/// directory.
pub fn installed_binary() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let dir = target_directory().join("e2e-installed");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        for file in DRIVERS.map(plugin).into_iter().chain([binary()]) {
            copy_file(&file, &dir.join(file.file_name().unwrap()));
        }
        dir.join("virt-hook")
    })
}

/// Runs `cmd` with `stdin` as its standard input (`/dev/null` when `None`)
/// and collects its output. A program that exits without reading its
/// input (a refused command line, a hook that ignores stdin) leaves the
/// write with a closed pipe, as libvirt's own write would: that is not an
/// error here, any other write error is.
pub fn output_with_stdin(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    let mut child = cmd
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(doc) = stdin {
        if let Err(e) = child.stdin.take().unwrap().write_all(doc) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing stdin: {e}");
        }
    }
    child.wait_with_output().unwrap()
}

/// Copies `from` to `to`, mode 0755. A copied `virt-hook` is executed once
/// before it is handed out: while the copy is being written, a process that
/// another test thread is spawning can inherit the write descriptor until it
/// execs, and executing the file then fails with "text file busy" (ETXTBSY).
/// The probe retries until that window has passed.
pub fn copy_file(from: &Path, to: &Path) {
    fs::copy(from, to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
    fs::set_permissions(to, fs::Permissions::from_mode(0o755)).unwrap();
    if to.file_name().is_some_and(|n| n == "virt-hook") {
        for _ in 0..200 {
            match Command::new(to).arg("--version").output() {
                Err(e) if e.raw_os_error() == Some(26) => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                _ => return,
            }
        }
        panic!("{} stayed busy (ETXTBSY) for 2 s", to.display());
    }
}

/// The plugin file name of a driver library named `virt_hooks_driver_<name>`.
pub fn plugin_file_name(name: &str) -> String {
    format!("libvirt_hooks_driver_{}.so", name.replace('-', "_"))
}

/// The real plugin of `driver` (one of [`DRIVERS`]).
pub fn plugin(driver: &str) -> PathBuf {
    artifacts().join(plugin_file_name(driver))
}

/// The fixture plugin `name` (one of [`FIXTURES`]), built on first use.
pub fn fixture(name: &str) -> PathBuf {
    assert!(FIXTURES.contains(&name), "no fixture named {name}");
    fixtures_dir().join(plugin_file_name(&name.replace('.', "_")))
}

/// The fixture program `name` (one of [`FIXTURE_BINARIES`]), built on first
/// use.
pub fn fixture_binary(name: &str) -> PathBuf {
    assert!(FIXTURE_BINARIES.contains(&name), "no fixture program named {name}");
    fixtures_dir().join(name)
}

/// `<target>/fixtures/<profile>`, after building the fixture workspace.
fn fixtures_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = target_directory().join("fixtures");
        let mut cmd = cargo();
        cmd.arg("build").arg("--quiet").arg("--manifest-path");
        cmd.arg(workspace_root().join("tests/fixtures/Cargo.toml"));
        cmd.arg("--target-dir").arg(&target);
        // The fixture workspace's members are exactly the fixtures (one of
        // them is a fake `virt-hooks-abi`, so `-p` by name is ambiguous).
        cmd.arg("--workspace");
        if profile() == "release" {
            cmd.arg("--release");
        }
        run(cmd);
        target.join(profile())
    })
}

/// The network driver plugin, built on its own with
/// `cargo build -p virt-hooks-driver-network` (after [`artifacts`], so the
/// host binary is already there): it is not part of the artifacts build, to
/// show that a driver can be added without rebuilding the host.
pub fn network_plugin() -> PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        if let Some(dir) = std::env::var_os(ARTIFACTS_ENV) {
            return PathBuf::from(dir).join(plugin_file_name("network"));
        }
        artifacts();
        let mut cmd = cargo();
        cmd.args(["build", "--quiet", "-p", "virt-hooks-driver-network"]);
        if profile() == "release" {
            cmd.arg("--release");
        }
        run(cmd);
        target_directory().join(profile()).join(plugin_file_name("network"))
    })
    .clone()
}

/// The SHA-256 of a file, in hex (from `sha256sum`).
pub fn sha256(file: &Path) -> String {
    let mut cmd = Command::new("sha256sum");
    cmd.arg(file);
    let out = String::from_utf8(run(cmd)).unwrap();
    out.split_whitespace().next().unwrap().to_owned()
}

/// A temporary directory with owner-only write permissions, to load plugins
/// from (or run a copied binary in): the kit's [`HooksDir`], plus copies of
/// built artifacts.
#[derive(Debug, Default)]
pub struct PluginDir {
    dir: HooksDir,
}

impl PluginDir {
    /// An empty directory, mode 0755.
    pub fn new() -> PluginDir {
        PluginDir { dir: HooksDir::new() }
    }

    /// A directory holding the plugins of [`DRIVERS`].
    pub fn with_drivers() -> PluginDir {
        let dir = PluginDir::new();
        for driver in DRIVERS {
            dir.add(&plugin(driver));
        }
        dir
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies `file` in under its own name, mode 0755; returns the copy.
    pub fn add(&self, file: &Path) -> PathBuf {
        self.add_as(file, file.file_name().unwrap().to_str().unwrap())
    }

    /// Copies `file` in as `name`, mode 0755; returns the copy.
    pub fn add_as(&self, file: &Path, name: &str) -> PathBuf {
        let to = self.path().join(name);
        copy_file(file, &to);
        to
    }

    /// Writes `contents` as `name`, mode 0644; returns the path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        self.dir.file(name, contents, 0o644)
    }
}

/// Runs `cargo ARGS` on the crate in `dir`, outside this workspace, with
/// the fixtures' target directory (abi_stable is compiled once for all of
/// them); returns what it printed, whatever its status.
pub fn cargo_outside(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(args)
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_directory().join("fixtures"))
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo {args:?}: {e}"))
}

/// One log record kept by [`logs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// Its level.
    pub level: log::Level,
    /// Its target (the plugin's module path for plugin records).
    pub target: String,
    /// Its message.
    pub message: String,
}

struct Keeper(Mutex<Vec<Logged>>);

impl log::Log for Keeper {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let logged = Logged {
            level: record.level(),
            target: record.target().to_owned(),
            message: record.args().to_string(),
        };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(logged);
    }

    fn flush(&self) {}
}

static KEEPER: Keeper = Keeper(Mutex::new(Vec::new()));

/// Installs (once) a logger that keeps every record at every level, and
/// returns the records logged so far whose message contains `needle`. Call it
/// before loading plugins: a plugin learns the host's level when it loads.
pub fn logs(needle: &str) -> Vec<Logged> {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        if log::set_logger(&KEEPER).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
    });
    let kept = KEEPER.0.lock().unwrap_or_else(|e| e.into_inner());
    kept.iter().filter(|l| l.message.contains(needle)).cloned().collect()
}
