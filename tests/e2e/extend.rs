//! Extensibility: a driver and an operation added to an installed host
//! without rebuilding it, and both directions of interface version skew.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use virt_hooks::Registry;
use virt_hooks_e2e::{
    HooksDir, PluginDir, binary, fixture, fixture_binary, network_plugin, plugin, sha256,
};

/// What libvirt writes on a network hook's stdin (no final newline).
const NET_DEFAULT: &str = "<hookData>\n  <network>\n    <name>default</name>\n    \
    <uuid>9a05da11-e96b-47f3-8253-a3a482e445f5</uuid>\n    <forward mode='nat'/>\n  \
    </network>\n</hookData>";

const VM1: &str = "<domain type='kvm'><name>vm1</name>\
    <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid></domain>";

fn virt_hook(exe: &Path, args: &[&str]) -> Output {
    Command::new(exe)
        .args(args)
        .env_remove("VIRT_HOOKS_PLUGIN_PATH")
        .env_remove("VIRT_HOOKS_DIR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A hooks directory with one script `name` that records its arguments
/// (one per line) and its stdin next to itself, in `<name>.argv` and
/// `<name>.stdin`.
fn recording_hooks(name: &str) -> HooksDir {
    let hooks = HooksDir::new();
    let dir = hooks.path().display().to_string();
    hooks.script(
        name,
        &format!("printf '%s\\n' \"$@\" > '{dir}/{name}.argv'\ncat > '{dir}/{name}.stdin'"),
    );
    hooks
}

fn recorded(hooks: &HooksDir, name: &str) -> (String, String) {
    (hooks.read(&format!("{name}.argv")), hooks.read(&format!("{name}.stdin")))
}

fn drivers(exe: &Path, dir: &Path) -> (Vec<String>, Output) {
    let out =
        virt_hook(exe, &["--plugin-dir", dir.to_str().unwrap(), "drivers", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    let names = doc["drivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect();
    (names, out)
}

#[test]
fn a_driver_built_after_the_host_runs_without_rebuilding_it() {
    let host = binary();
    let before = sha256(&host);
    // Built on its own, after the host.
    let network = network_plugin();
    assert_eq!(sha256(&host), before, "building the network plugin rebuilt the host");

    let dir = PluginDir::with_drivers();
    let exe = dir.add(&host);
    assert_eq!(sha256(&exe), before);
    let (names, out) = drivers(&exe, dir.path());
    assert_eq!(names, ["bhyve", "daemon", "libxl", "lxc", "qemu"], "{}", stderr(&out));
    dir.add(&network);
    let (names, out) = drivers(&exe, dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(names, ["bhyve", "daemon", "libxl", "lxc", "network", "qemu"]);

    let hooks = recording_hooks("network");
    let input = dir.write("hookdata.xml", NET_DEFAULT);
    let hooks_dir = hooks.path().to_str().unwrap();
    let args = ["--hooks-dir", hooks_dir, "run", "network", "default", "start", "begin", "-"];
    let out = virt_hook(&exe, &[&args[..], &["--input", input.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let (argv, stdin) = recorded(&hooks, "network");
    assert_eq!(argv, "default\nstart\nbegin\n-\n");
    assert_eq!(stdin, NET_DEFAULT);

    // The driver's checks run before any script: a port operation without a
    // <networkport> is refused with the driver's reason, exit 2.
    fs::remove_file(hooks.path().join("network.argv")).unwrap();
    let port = ["--hooks-dir", hooks_dir, "run", "network", "default", "port-created", "begin"];
    let out = virt_hook(&exe, &[&port[..], &["-", "--input", input.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(2), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("the hookData of a port operation has no <networkport> element"),
        "{}",
        stderr(&out)
    );
    assert!(!hooks.path().join("network.argv").exists());
    assert_eq!(sha256(&host), before);
}

#[test]
fn an_operation_added_by_a_newer_plugin_needs_no_host_rebuild() {
    let host = binary();
    let before = sha256(&host);
    let dir = PluginDir::new();
    dir.add(&plugin("daemon"));
    dir.add_as(&fixture("qemu-snapshot"), "libvirt_hooks_driver_qemu.so");
    let exe = dir.add(&host);
    let hooks = recording_hooks("qemu");
    let hooks_dir = hooks.path().to_str().unwrap();
    let input = dir.write("vm1.xml", VM1);
    let event = ["qemu", "vm1", "snapshot", "begin", "-", "--input", input.to_str().unwrap()];

    let out = virt_hook(&exe, &[&["--hooks-dir", hooks_dir, "plan"][..], &event].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}\n", hooks.path().join("qemu").display()));

    let out = virt_hook(&exe, &[&["--hooks-dir", hooks_dir, "run"][..], &event].concat());
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(recorded(&hooks, "qemu"), ("vm1\nsnapshot\nbegin\n-\n".to_owned(), VM1.to_owned()));

    // The shipped qemu driver does not know the operation.
    let shipped = PluginDir::new();
    shipped.add(&plugin("qemu"));
    let exe = shipped.add(&host);
    let out = virt_hook(&exe, &[&["--hooks-dir", hooks_dir, "plan"][..], &event].concat());
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("no operation 'snapshot'"), "{}", stderr(&out));
    assert_eq!(sha256(&host), before);
}

/// Runs the 1.1 fixture host on `plugin`: its exit code and output lines.
fn host_1_1(plugin: &Path) -> (Option<i32>, Vec<String>) {
    let out = Command::new(fixture_binary("virt-hooks-abi-host-1-1")).arg(plugin).output().unwrap();
    (out.status.code(), stdout(&out).lines().map(str::to_owned).collect())
}

fn every_method(version: &str, probe: u32) -> Vec<String> {
    [
        "host abi 1.1.0".to_owned(),
        format!("info: evolve abi-{version}"),
        "operations: poke shape".to_owned(),
        "validate good: Ok(())".to_owned(),
        "validate bad: Err(\"'bad-one' is a bad object\")".to_owned(),
        "check_output shape: Ok(())".to_owned(),
        "check_output square: Err(\"the output is not a <shape>\")".to_owned(),
        format!("next_minor_probe: {probe}"),
    ]
    .into()
}

#[test]
fn a_newer_host_loads_an_old_plugin_and_defaults_the_new_method() {
    // abi_stable alone refuses this ("too many fields"); the loader's
    // fallback accepts it because only trailing prefix fields are missing.
    let (code, lines) = host_1_1(&fixture("evolve-1.0"));
    assert_eq!(code, Some(0), "{lines:?}");
    assert_eq!(lines, every_method("1.0.0", 0));
}

#[test]
fn a_newer_host_loads_a_newer_plugin() {
    let (code, lines) = host_1_1(&fixture("evolve-1.1"));
    assert_eq!(code, Some(0), "{lines:?}");
    assert_eq!(lines, every_method("1.1.0", 1));
}

#[test]
fn an_old_host_loads_a_newer_plugin() {
    // The shipped host and library speak 1.0.
    assert_eq!(virt_hooks_abi_version(), "1.0.0");
    let newer = PluginDir::new();
    newer.add(&fixture("evolve-1.1"));
    let registry = load(newer.path());
    assert_eq!(registry.errors(), []);
    let driver = registry.get("evolve").unwrap();
    assert_eq!(driver.info().version, "abi-1.1.0");
    let bad = virt_hooks::Event::new("evolve", "bad-one", "poke", "begin", "-");
    assert!(driver.validate(&bad).unwrap_err().to_string().contains("'bad-one' is a bad object"));

    let exe = newer.add(&binary());
    let (names, out) = drivers(&exe, newer.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(names, ["evolve"]);
}

#[test]
fn another_major_is_refused_by_old_and_new_hosts_in_one_line() {
    let (code, lines) = host_1_1(&fixture("abi-v2"));
    assert_eq!(code, Some(1));
    assert_eq!(lines[1], "refused: built against virt-hooks-abi 2.0.0, this host speaks 1.1.0");

    let dir = PluginDir::new();
    let file = dir.add(&fixture("abi-v2"));
    let exe = dir.add(&binary());
    let out = virt_hook(&exe, &["--plugin-dir", dir.path().to_str().unwrap(), "drivers"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    // One line in all the output (text mode lists failures on stdout only).
    let all = format!("{}{}", stdout(&out), stderr(&out));
    let refusals: Vec<String> = all
        .lines()
        .filter(|l| l.contains("built against virt-hooks-abi 2.0.0, this host speaks 1.0.0"))
        .map(str::to_owned)
        .collect();
    assert_eq!(refusals.len(), 1, "{}{}", stdout(&out), stderr(&out));
    assert!(refusals[0].contains(file.file_name().unwrap().to_str().unwrap()), "{refusals:?}");
}

#[test]
fn a_newer_host_still_refuses_a_changed_layout() {
    let (code, lines) = host_1_1(&fixture("abi-layout"));
    assert_eq!(code, Some(1));
    assert!(
        lines[1].starts_with(
            "refused: built against an incompatible virt-hooks-abi 1.0.0+changed-layout \
             (this host speaks 1.1.0): mismatched type"
        ),
        "{lines:?}"
    );
}

fn virt_hooks_abi_version() -> String {
    let toml = fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates/abi/Cargo.toml"),
    )
    .unwrap();
    let line = toml.lines().find(|l| l.starts_with("version = ")).unwrap();
    line.trim_start_matches("version = ").trim_matches('"').to_owned()
}

fn load(dir: &Path) -> Registry {
    let mut builder = Registry::builder();
    builder.search().dir(dir).only_explicit();
    builder.build()
}
