//! docs/writing-a-driver.md, kept honest: its ```toml and ```rust blocks
//! become a crate outside the workspace, which is built as a plugin, loaded
//! by the real `virt-hook` and unit-tested; its shell blocks may only name
//! commands that exist.

use std::fs;
use std::path::Path;
use std::process::Command;

use virt_hooks_e2e::{
    HooksDir, PluginDir, binary, cargo_outside, target_directory, workspace_root,
};

/// The guide's fenced blocks, as (info string, contents), in order.
fn blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) => current = Some((info.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => blocks.extend(current.take()),
            (Some((_, text)), None) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "an unclosed code block");
    blocks
}

fn cargo(dir: &Path, args: &[&str]) {
    let out = cargo_outside(dir, args);
    assert!(
        out.status.success(),
        "cargo {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_driver_guide_builds_loads_and_tests() {
    let guide = fs::read_to_string(workspace_root().join("docs/writing-a-driver.md")).unwrap();
    let blocks = blocks(&guide);
    let of = |kind: &str| -> String {
        blocks.iter().filter(|(k, _)| k == kind).map(|(_, t)| t.as_str()).collect()
    };
    let (toml, rust, sh) = (of("toml"), of("rust"), of("sh"));
    assert!(blocks.iter().all(|(k, _)| ["toml", "rust", "sh"].contains(&k.as_str())), "{blocks:?}");
    assert!(toml.contains("/path/to/virt-hooks/"), "the guide's path dependencies changed");

    // A crate outside the workspace (the system temp dir).
    let krate = tempfile::Builder::new().prefix("virt-hooks-guide").tempdir().unwrap();
    let root = workspace_root().to_str().unwrap();
    fs::write(krate.path().join("Cargo.toml"), toml.replace("/path/to/virt-hooks", root)).unwrap();
    // The workspace's lockfile pins the same dependency versions.
    fs::copy(workspace_root().join("Cargo.lock"), krate.path().join("Cargo.lock")).unwrap();
    fs::create_dir(krate.path().join("src")).unwrap();
    fs::write(krate.path().join("src/lib.rs"), rust).unwrap();

    cargo(krate.path(), &["build", "--quiet", "--lib"]);
    cargo(krate.path(), &["test", "--quiet", "--lib"]);

    let built = target_directory().join("fixtures/debug/libvirt_hooks_driver_backup.so");
    let dir = PluginDir::new();
    dir.add(&built);
    let exe = dir.add(&binary());
    let hooks = HooksDir::new();
    let script = hooks.script("backup", "exit 0");
    let input = dir.write("backup.xml", "<domainbackup><name>vm1</name></domainbackup>");
    let virt_hook = |args: &[&str]| {
        let out = Command::new(&exe)
            .arg("--hooks-dir")
            .arg(hooks.path())
            .args(args)
            .env_remove("VIRT_HOOKS_PLUGIN_PATH")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), text)
    };

    let (code, stdout, all) = virt_hook(&["drivers", "--format", "json"]);
    assert_eq!(code, Some(0), "{all}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["drivers"][0]["name"], "backup", "{all}");
    assert_eq!(doc["drivers"][0]["operations"].as_array().unwrap().len(), 3);

    // The shell blocks' virt-hook lines, run against the built plugin.
    let input = input.to_str().unwrap();
    let mut ran = 0;
    for line in sh.lines().filter(|l| l.starts_with("virt-hook ")) {
        let args: Vec<&str> = line
            .split_whitespace()
            .skip(1)
            .map(|a| if a == "backup.xml" { input } else { a })
            .filter(|a| *a != "--plugin-dir" && *a != "target/release")
            .collect();
        let (code, stdout, all) = virt_hook(&args);
        assert_eq!(code, Some(0), "{line}: {all}");
        if args[0] == "plan" {
            assert_eq!(stdout, format!("{}\n", script.display()));
        }
        ran += 1;
    }
    assert_eq!(ran, 4);
    let (code, _, all) =
        virt_hook(&["run", "backup", "vm2", "run", "begin", "full", "--input", input]);
    assert_eq!(code, Some(2), "{all}");
    assert!(all.contains("the backup XML does not name the domain 'vm2'"), "{all}");

    // The other shell lines name the commands the guide relies on.
    for line in sh.lines().filter(|l| !l.is_empty() && !l.starts_with("virt-hook ")) {
        let ok = ["cargo new --lib ", "cd ", "cargo test", "cargo build --release", "install -D "]
            .iter()
            .any(|p| line.starts_with(p));
        assert!(ok, "an unchecked shell line in the guide: {line}");
        if line.starts_with("install ") {
            assert!(line.contains("/usr/lib/virt-hooks/plugins/libvirt_hooks_driver_backup.so"));
        }
    }
}

/// `export_driver!` adds a unit test that fails when the library name
/// (`virt_hooks_driver_<name>`) and the driver's `info().name` disagree, so
/// `cargo test` catches a plugin the host would load under one name while it
/// serves the hooks of another; with the names agreeing the test passes.
#[test]
fn a_plugin_named_unlike_its_driver_fails_its_own_tests() {
    let krate = tempfile::Builder::new().prefix("virt-hooks-misnamed").tempdir().unwrap();
    let abi = workspace_root().join("crates/abi");
    let manifest = format!(
        "[package]\nname = \"virt-hooks-driver-misnamed\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [lib]\nname = \"virt_hooks_driver_misnamed\"\n\n\
         [dependencies]\nvirt-hooks-abi = {{ path = \"{}\" }}\n",
        abi.display()
    );
    fs::write(krate.path().join("Cargo.toml"), manifest).unwrap();
    fs::copy(workspace_root().join("Cargo.lock"), krate.path().join("Cargo.lock")).unwrap();
    fs::create_dir(krate.path().join("src")).unwrap();
    let source = |name: &str| {
        format!(
            "use virt_hooks_abi::{{DriverInfo, ExtraRule, HookDriver, OperationSpec}};\n\
             #[derive(Default)]\npub struct Driver;\n\
             impl HookDriver for Driver {{\n\
                 fn info(&self) -> DriverInfo {{ DriverInfo::new(\"{name}\", \"0.1.0\", \"a test\") }}\n\
                 fn operations(&self) -> Vec<OperationSpec> {{\n\
                     vec![OperationSpec::new(\"run\", [\"begin\"], ExtraRule::Dash)]\n\
                 }}\n\
             }}\n\
             virt_hooks_abi::export_driver!(Driver);\n"
        )
    };
    let test = || {
        let out = cargo_outside(krate.path(), &["test", "--lib"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };

    fs::write(krate.path().join("src/lib.rs"), source("backup")).unwrap();
    let (passed, text) = test();
    assert!(!passed, "{text}");
    assert!(
        text.contains("virt_hooks_export_driver::library_name_matches_driver_name ... FAILED"),
        "{text}"
    );
    assert!(
        text.contains(
            "library 'virt_hooks_driver_misnamed' exports driver 'backup': name the library \
             'virt_hooks_driver_backup' ([lib] name in Cargo.toml) or the driver 'misnamed'"
        ),
        "{text}"
    );

    fs::write(krate.path().join("src/lib.rs"), source("misnamed")).unwrap();
    let (passed, text) = test();
    assert!(passed, "{text}");
    assert!(
        text.contains("virt_hooks_export_driver::library_name_matches_driver_name ... ok"),
        "{text}"
    );
}
