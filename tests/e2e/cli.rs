use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use virt_hooks_e2e::{DRIVERS, PluginDir, binary, fixture, plugin};

/// A copy of the binary and the real plugins in one directory: the
/// binary finds the plugins next to itself.
fn installed() -> (PluginDir, std::path::PathBuf) {
    let dir = PluginDir::with_drivers();
    let exe = dir.add(&binary());
    (dir, exe)
}

fn virt_hook(exe: &Path, args: &[&str]) -> Output {
    Command::new(exe)
        .args(args)
        .env_remove("VIRT_HOOKS_PLUGIN_PATH")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn driver_names(doc: &Value) -> Vec<&str> {
    doc["drivers"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect()
}

#[test]
fn drivers_lists_the_real_plugins_as_json() {
    let (dir, exe) = installed();
    let out = virt_hook(&exe, &["drivers", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json(&out);
    assert_eq!(driver_names(&doc), ["bhyve", "daemon", "libxl", "lxc", "qemu"]);
    assert_eq!(doc["errors"], Value::Array(Vec::new()));

    let qemu = &doc["drivers"][4];
    let file = dir.path().join("libvirt_hooks_driver_qemu.so");
    assert_eq!(qemu["file"], file.to_str().unwrap());
    let ops = qemu["operations"].as_array().unwrap();
    let release = ops.iter().find(|op| op["name"] == "release").unwrap();
    assert_eq!(release["sub_operations"], serde_json::json!(["end"]));
    assert_eq!(release["extra"]["rule"], "one-of");
    assert_eq!(release["extra"]["values"][8], "from snapshot");
    assert_eq!(release["input"], serde_json::json!({"kind": "xml", "root": "domain"}));
    assert_eq!(release["on_failure"], "ignore");
    let migrate = ops.iter().find(|op| op["name"] == "migrate").unwrap();
    assert_eq!(migrate["filter"], true);
    assert_eq!(migrate["on_failure"], "abort");
    assert!(ops.iter().all(|op| !op["description"].as_str().unwrap().is_empty()));

    let daemon = &doc["drivers"][1];
    let reload = &daemon["operations"][2];
    assert_eq!(reload["extra"], serde_json::json!({"rule": "fixed", "values": ["SIGHUP"]}));
    assert_eq!(reload["input"], serde_json::json!({"kind": "none"}));
}

#[test]
fn removing_a_plugin_file_removes_its_driver() {
    let (dir, exe) = installed();
    let out = virt_hook(&exe, &["drivers", "--format", "json"]);
    assert_eq!(driver_names(&json(&out)), DRIVERS_SORTED);
    fs::remove_file(dir.path().join("libvirt_hooks_driver_lxc.so")).unwrap();
    let out = virt_hook(&exe, &["drivers", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(driver_names(&json(&out)), ["bhyve", "daemon", "libxl", "qemu"]);
}

const DRIVERS_SORTED: [&str; 5] = ["bhyve", "daemon", "libxl", "lxc", "qemu"];

#[test]
fn broken_plugins_are_reported_and_good_ones_still_listed() {
    assert_eq!(DRIVERS.len(), DRIVERS_SORTED.len());
    let (_dir, exe) = installed();
    let bad = PluginDir::new();
    for name in ["no-root-module", "init-panics", "abi-v2", "abi-layout", "validate-panics"] {
        bad.add(&fixture(name));
    }
    let text = bad.write("libvirt_hooks_driver_text.so", "text");
    let dup = bad.add_as(&plugin("qemu"), "libvirt_hooks_driver_qemu.so");
    let bad_dir = bad.path().to_str().unwrap();

    let out = virt_hook(&exe, &["--plugin-dir", bad_dir, "drivers", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json(&out);
    // The --plugin-dir comes first, so its qemu copy wins over the one next
    // to the binary, which is then the duplicate.
    assert_eq!(driver_names(&doc), ["qemu", "panicky", "bhyve", "daemon", "libxl", "lxc"]);
    assert_eq!(doc["drivers"][0]["file"], dup.to_str().unwrap());
    let errors: Vec<(String, String)> = doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let file = Path::new(e["file"].as_str().unwrap());
            (
                file.file_name().unwrap().to_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let reason = |name: &str| {
        errors
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, m)| m.as_str())
            .unwrap_or_else(|| panic!("{name}: {errors:?}"))
    };
    assert_eq!(errors.len(), 6, "{errors:?}");
    assert_eq!(
        reason("libvirt_hooks_driver_no_root_module.so"),
        "a shared library, but not a virt-hooks plugin (it exports no root module)"
    );
    assert_eq!(
        reason("libvirt_hooks_driver_init_panics.so"),
        "its init panicked: fixture init-panics: the constructor gives up"
    );
    assert_eq!(
        reason("libvirt_hooks_driver_abi_v2.so"),
        "built against virt-hooks-abi 2.0.0, this host speaks 1.0.0"
    );
    assert!(
        reason("libvirt_hooks_driver_abi_layout.so").starts_with("built against an incompatible")
    );
    assert!(reason("libvirt_hooks_driver_text.so").starts_with("not a shared library ("));
    assert_eq!(
        reason("libvirt_hooks_driver_qemu.so"),
        format!("a second 'qemu' driver, ignored; the first came from {}", dup.display())
    );
    assert!(errors.iter().all(|(_, m)| !m.contains('\n')));
    assert!(text.exists());

    // The text listing names each failed file with its reason on one line.
    let out = virt_hook(&exe, &["--plugin-dir", bad_dir, "drivers"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("plugins that failed to load:"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{}: built against virt-hooks-abi 2.0.0, this host speaks 1.0.0",
            bad.path().join("libvirt_hooks_driver_abi_v2.so").display()
        )),
        "{stdout}"
    );
}

#[test]
fn a_missing_plugin_dir_is_an_error_but_the_rest_loads() {
    let (dir, exe) = installed();
    let missing = dir.path().join("no-such-dir");
    let out = virt_hook(
        &exe,
        &["--plugin-dir", missing.to_str().unwrap(), "drivers", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out);
    assert_eq!(driver_names(&doc), DRIVERS_SORTED);
    assert_eq!(doc["errors"][0]["file"], missing.to_str().unwrap());
    assert_eq!(doc["errors"][0]["message"], "the plugin directory does not exist");
}

#[test]
fn plugin_log_records_reach_the_binarys_logger() {
    let (_dir, exe) = installed();
    let extra = PluginDir::new();
    extra.add(&fixture("validate-panics"));
    extra.add(&fixture("init-panics"));
    let extra_dir = extra.path().to_str().unwrap();

    // A warning from a plugin shows at the default level; an info record
    // only with -v, as for the host's own records.
    let quiet = virt_hook(&exe, &["--plugin-dir", extra_dir, "drivers"]);
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(stderr.contains("fixture init-panics: about to panic in the constructor"), "{stderr}");
    assert!(!stderr.contains("describing the panicky driver"), "{stderr}");
    // A plugin's panic message goes to the log, not raw to stderr.
    assert!(!stderr.contains("panicked at"), "{stderr}");

    let verbose = virt_hook(&exe, &["-v", "--plugin-dir", extra_dir, "drivers"]);
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(stderr.contains("fixture validate-panics: describing the panicky driver"), "{stderr}");

    let debug = Command::new(&exe)
        .args(["--plugin-dir", extra_dir, "drivers"])
        .env_remove("VIRT_HOOKS_PLUGIN_PATH")
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&debug.stderr);
    assert!(stderr.contains("plugin panicked at "), "{stderr}");
    assert!(stderr.contains("loaded driver 'qemu'"), "{stderr}");
}
