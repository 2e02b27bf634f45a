//! The CLI side of "never hang, never leak": signals, `--timeout`, the
//! configuration file and its errors, `config` and `check`.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use virt_hooks_e2e::{HooksDir, binary};

fn virt_hook(args: &[&str]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env_remove("VIRT_HOOKS_PLUGIN_PATH")
        .env_remove("VIRT_HOOKS_CONFIG")
        .env_remove("VIRT_HOOKS_DIR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

fn output(mut cmd: impl std::borrow::BorrowMut<Command>) -> Output {
    cmd.borrow_mut().output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Waits until `path` exists (the hook started), at most 10 s.
fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
}

fn interrupt(signal: &str, expected: i32) {
    let dir = HooksDir::new();
    let pidfile = dir.path().join("pid");
    dir.script(
        "daemon",
        &format!("sleep 300 & echo $! > {p}.tmp; mv {p}.tmp {p}; wait", p = pidfile.display()),
    );
    let child = virt_hook(&["--hooks-dir", dir.path().to_str().unwrap()])
        .args(["run", "daemon", "-", "start", "-", "start"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&pidfile);
    let sleeper: i32 = fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let started = Instant::now();
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(expected), "{}", text(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(30), "the kill took the grace period at most");
    assert!(!alive(sleeper), "the hook's background child {sleeper} must be gone");
}

#[test]
fn sigint_kills_the_hooks_process_group_and_exits_130() {
    interrupt("-INT", 130);
}

#[test]
fn sigterm_kills_the_hooks_process_group_and_exits_143() {
    interrupt("-TERM", 143);
}

#[test]
fn run_timeout_kills_a_hanging_hook_with_the_timeout_message() {
    let dir = HooksDir::new();
    dir.script("daemon", "exec sleep 300");
    let start = Instant::now();
    let out = output(virt_hook(&["--hooks-dir", dir.path().to_str().unwrap()]).args([
        "run",
        "--timeout",
        "1",
        "daemon",
        "-",
        "start",
        "-",
        "start",
    ]));
    assert!(start.elapsed() < Duration::from_secs(60));
    // daemon start ignores failures: exit 0, the timeout is a warning.
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "warning: Hook script execution failed: hook script {}/daemon timed out after 1s; killed ",
            dir.path().display()
        )),
        "{err}"
    );
}

#[test]
fn a_bad_config_file_names_the_file_the_line_and_the_key() {
    let dir = HooksDir::new();
    let config = dir.path().join("virt-hooks.toml");
    fs::write(&config, "timeout = 5\n\n[drivers.qemu]\ntimout = 3\n").unwrap();
    let out = output(virt_hook(&["--config", config.to_str().unwrap(), "config"]));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("config file {}, line 4", config.display())), "{err}");
    assert!(err.contains("unknown field `timout`"), "{err}");

    let missing = dir.path().join("missing.toml");
    let out = output(virt_hook(&["--config", missing.to_str().unwrap(), "config"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read config file"), "{}", text(&out.stderr));
}

#[test]
fn config_shows_where_each_value_came_from_flags_over_env_over_file() {
    let dir = HooksDir::new();
    let config = dir.path().join("virt-hooks.toml");
    fs::write(&config, "hooks_dir = \"/from/file\"\ntimeout = \"2s\"\n").unwrap();
    let show = |cmd: &mut Command| text(&output(cmd).stdout);
    let file_only = show(virt_hook(&["config"]).env("VIRT_HOOKS_CONFIG", &config));
    assert!(
        file_only.contains(&format!("hooks_dir         = /from/file  (file {})", config.display())),
        "{file_only}"
    );
    assert!(file_only.contains("timeout           = 2s"), "{file_only}");
    let env = show(
        virt_hook(&["config"]).env("VIRT_HOOKS_CONFIG", &config).env("VIRT_HOOKS_DIR", "/from/env"),
    );
    assert!(env.contains("hooks_dir         = /from/env  (environment VIRT_HOOKS_DIR)"), "{env}");
    let flag = show(
        virt_hook(&["config", "--hooks-dir", "/from/flag"])
            .env("VIRT_HOOKS_CONFIG", &config)
            .env("VIRT_HOOKS_DIR", "/from/env"),
    );
    assert!(flag.contains("hooks_dir         = /from/flag  (flag --hooks-dir)"), "{flag}");
}

#[test]
fn the_config_files_timeout_applies_to_run() {
    let dir = HooksDir::new();
    dir.script("daemon", "exec sleep 300");
    let config = dir.path().join("virt-hooks.toml");
    fs::write(
        &config,
        "[drivers.daemon.operations.start]\ntimeout = \"500ms\"\non_failure = \"abort\"\n",
    )
    .unwrap();
    let out = output(
        virt_hook(&[
            "--config",
            config.to_str().unwrap(),
            "--hooks-dir",
            dir.path().to_str().unwrap(),
        ])
        .args(["run", "daemon", "-", "start", "-", "start"]),
    );
    // The override turned the ignore policy into abort: refused.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("timed out after 0.5s"), "{}", text(&out.stderr));
}

#[test]
fn check_is_clean_for_a_good_tree_and_names_every_problem() {
    let dir = HooksDir::new();
    dir.script("qemu", "exit 0");
    dir.script("qemu.d/10-ok", "exit 0");
    let out = output(virt_hook(&["--hooks-dir", dir.path().to_str().unwrap(), "check"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("no problems found"));

    dir.file("qemu.d/20-writable", "#!/bin/sh\nexit 0\n", 0o775);
    dir.script("qemu.d/30-old~", "exit 0");
    dir.file("qemu.d/40-noexec", "#!/bin/sh\n", 0o644);
    let config = dir.path().join("bad.toml");
    fs::write(&config, "leftovers = \"keep\"\n").unwrap();
    let out = output(virt_hook(&[
        "--hooks-dir",
        dir.path().to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "check",
    ]));
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    for needle in [
        "20-writable is writable by its group (mode 0775)",
        "30-old~",
        "40-noexec",
        &format!("config file {}, line 1", config.display()),
    ] {
        assert!(report.contains(needle), "missing {needle:?} in:\n{report}");
    }
    let marker_free = !dir.path().join("ran").exists();
    assert!(marker_free);
}

#[test]
fn check_reports_plugins_that_fail_to_load() {
    let dir = HooksDir::new();
    let plugins = HooksDir::new();
    let bogus = plugins.file("libvirt_hooks_driver_bogus.so", "not a library", 0o644);
    let out = output(virt_hook(&[
        "--hooks-dir",
        dir.path().to_str().unwrap(),
        "--plugin-dir",
        plugins.path().to_str().unwrap(),
        "check",
        "--format",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["clean"], false);
    assert_eq!(doc["plugins"]["errors"][0]["file"], bogus.to_str().unwrap());
}
