//! Issue 13: read-only commands stay read-only and work for an ordinary
//! user; one way to say things (`run` reads stdin, `--timeout` takes the
//! configuration's durations, `-q`, typed JSON).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use virt_hooks_e2e::{HooksDir, installed_binary, output_with_stdin};

const XML: &str = "<domain type='kvm'>\n  <name>vm1</name>\n  <uuid>c7a5fdbd-cdaf-9455-926a-d65c16db1809</uuid>\n  <memory>65536</memory>\n</domain>\n";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every path under `dir` with its length and modification time.
fn snapshot(dir: &Path) -> Vec<(String, u64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            out.push((path.display().to_string(), meta.len(), meta.mtime()));
        }
    }
    out.sort();
    out
}

#[test]
fn read_only_commands_work_for_an_ordinary_user_and_change_nothing() {
    let am_root = rustix_like_euid() == 0;
    let setpriv = Path::new("/usr/bin/setpriv");
    let hooks = HooksDir::new();
    fs::set_permissions(hooks.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(installed_binary())
        .arg("--hooks-dir")
        .arg(hooks.path())
        .args(["install", "--libvirt", "qemu"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    hooks.script("qemu.d/vm1/start/begin/10-ok", "exit 0");
    let before = snapshot(hooks.path());
    let commands: [&[&str]; 5] = [
        &["drivers"],
        &["config"],
        &["check"],
        &["check", "--format", "json"],
        &["plan", "qemu", "vm1", "start", "begin", "-"],
    ];
    for args in commands {
        let mut cmd = if am_root && setpriv.exists() {
            let mut c = Command::new(setpriv);
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(installed_binary());
            c
        } else {
            Command::new(installed_binary())
        };
        let out = cmd.arg("--hooks-dir").arg(hooks.path()).args(args).output().unwrap();
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            !all.contains("Permission denied") && !all.contains("os error 13"),
            "{args:?}: {all}"
        );
        assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?}: {all}");
        if args[0] == "plan" {
            assert_eq!(out.status.code(), Some(0), "{all}");
            assert!(text(&out.stdout).ends_with("qemu.d/vm1/start/begin/10-ok\n"), "{all}");
        }
    }
    assert_eq!(snapshot(hooks.path()), before, "nothing created or changed");
}

/// The effective uid, from /proc (no libc in the tests).
fn rustix_like_euid() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn run_reads_the_document_from_stdin_and_takes_the_configurations_durations() {
    let hooks = HooksDir::new();
    let got = hooks.path().join("got");
    hooks.script("qemu", &format!("cat > {}", got.display()));
    let run = |extra: &[&str], stdin: Option<&str>| {
        let mut cmd = Command::new(installed_binary());
        cmd.arg("--hooks-dir").arg(hooks.path()).arg("run").args(extra);
        cmd.args(["qemu", "vm1", "start", "begin", "-"]);
        output_with_stdin(&mut cmd, stdin.map(str::as_bytes))
    };
    let out = run(&[], Some(XML));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(fs::read_to_string(&got).unwrap(), XML, "stdin is the document");
    for good in ["5m", "90s", "1.5", "500ms", "0"] {
        let out = run(&["--timeout", good], Some(XML));
        assert_eq!(out.status.code(), Some(0), "{good}: {}", text(&out.stderr));
    }
    let out = run(&["--timeout", "soon"], Some(XML));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid duration 'soon'"), "{}", text(&out.stderr));
    // A daemon event takes no document: stdin is not read for it.
    hooks.script("daemon", "exit 0");
    let out = Command::new(installed_binary())
        .arg("--hooks-dir")
        .arg(hooks.path())
        .args(["run", "daemon", "-", "start", "-", "start"])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn quiet_silences_warnings_and_config_json_is_typed() {
    let hooks = HooksDir::new();
    hooks.file("qemu.d/10-plain", "#!/bin/sh\n", 0o644);
    let vh = |args: &[&str]| {
        Command::new(installed_binary())
            .arg("--hooks-dir")
            .arg(hooks.path())
            .args(args)
            .output()
            .unwrap()
    };
    let loud = vh(&["plan", "qemu", "vm1", "start", "begin", "-"]);
    assert!(
        text(&loud.stderr).contains("warning: Non-executable hook script"),
        "{}",
        text(&loud.stderr)
    );
    let quiet = vh(&["-q", "plan", "qemu", "vm1", "start", "begin", "-"]);
    assert_eq!(text(&quiet.stderr), "");

    let config = hooks.path().join("c.toml");
    fs::write(&config, "timeout = \"5m\"\npass_env = [\"A\", \"B\"]\naudit_log = false\n").unwrap();
    let out = vh(&["--config", config.to_str().unwrap(), "config", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["timeout"]["value"], 300.0);
    assert_eq!(doc["pass_env"]["value"], serde_json::json!(["A", "B"]));
    // Turned off: `null`, not the default path.
    assert_eq!(doc["audit_log"]["value"], serde_json::Value::Null);
    assert!(doc["max_input"]["value"].is_u64());
    let out = vh(&["plan", "qemu", "vm1", "start", "begin", "-", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(plan["timeout"].is_f64() && plan["scripts"].is_array(), "{plan}");
}
