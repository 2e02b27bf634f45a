//! docs/writing-a-driver.md, kept honest: its ```toml and ```rust blocks
//! become a crate outside the workspace, which is built as a plugin, loaded
//! by the real `virt-hook` and unit-tested; its shell blocks may only name
//! commands that exist.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use virt_hooks_e2e::{PluginDir, binary, target_directory, workspace_root};

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
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(args)
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        // Shared with the fixtures: abi_stable is compiled once.
        .arg("--target-dir")
        .arg(target_directory().join("fixtures"))
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
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
    let hooks = PluginDir::new();
    let script = hooks.write("backup", "#!/bin/sh\nexit 0\n");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
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
