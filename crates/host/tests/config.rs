//! The configuration file wired into the runner, the audit log and the
//! `check` report.

use std::{
    fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::Path,
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use virt_hooks::{Config, FailurePolicy, RegistryBuilder, RunError, RunnerBuilder, SkipReason};

use crate::util::{Daemon, Hooks, Qemu, daemon_start, qemu};

fn config(hooks: &Hooks, text: &str) -> Config {
    let mut c = Config::from_toml(text, Path::new("test.toml")).expect("valid config");
    c.set_hooks_dir(hooks.path(), virt_hooks::Source::Default);
    c
}

#[test]
fn operation_timeout_beats_driver_beats_global() {
    let hooks = Hooks::new();
    let c = config(
        &hooks,
        r#"
timeout = "20s"
grace = "100ms"
[drivers.qemu]
timeout = "10s"
[drivers.qemu.operations.start]
timeout = "300ms"
"#,
    );
    let runner = runner_with(&c);
    assert_eq!(runner.timeout_for("qemu", "start"), Some(Duration::from_millis(300)));
    assert_eq!(runner.timeout_for("qemu", "prepare"), Some(Duration::from_secs(10)));
    assert_eq!(runner.timeout_for("daemon", "start"), Some(Duration::from_secs(20)));
    let plan = runner.plan(&qemu("vm1", "prepare", "begin", "-")).expect("plan");
    assert_eq!(plan.timeout, Some(Duration::from_secs(10)));

    hooks.script("qemu", "cat >/dev/null; sleep 30");
    let started = Instant::now();
    let err = runner.run(&qemu("vm1", "start", "begin", "-")).expect_err("timed out");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.to_string().contains("timed out after 0.3s"), "{err}");
}

#[test]
fn a_policy_override_turns_an_abort_into_ignore() {
    let hooks = Hooks::new();
    hooks.script("qemu", "cat >/dev/null; exit 1");
    let c = config(&hooks, "[drivers.qemu.operations.start]\non_failure = \"ignore\"\n");
    let runner = runner_with(&c);
    let outcome = runner.run(&qemu("vm1", "start", "begin", "-")).expect("ignored");
    assert_eq!(outcome.on_failure, FailurePolicy::Ignore);
    assert_eq!(outcome.warnings.len(), 1);
    let plan = runner.plan(&qemu("vm1", "start", "begin", "-")).expect("plan");
    assert_eq!(plan.on_failure, FailurePolicy::Ignore);
    // prepare keeps the driver's policy.
    let err = runner.run(&qemu("vm1", "prepare", "begin", "-")).expect_err("aborts");
    assert!(matches!(err, RunError::Refused { .. }));
}

#[test]
fn pass_env_comes_after_libvirts_list() {
    let hooks = Hooks::new();
    hooks.script("daemon", "tr '\\0' '\\n' < /proc/$$/environ");
    // Cargo sets CARGO_MANIFEST_DIR for test processes; NOT_SET_ANYWHERE is
    // not set, so it is not passed.
    let c =
        config(&hooks, "pass_env = [\"CARGO_MANIFEST_DIR\", \"VH_NOT_SET_ANYWHERE\", \"PATH\"]\n");
    let outcome = runner_with(&c).run(&daemon_start()).expect("run");
    let env = String::from_utf8(outcome.scripts[0].stdout.clone()).expect("utf-8");
    let lines: Vec<&str> = env.lines().collect();
    assert_eq!(lines[0], "LC_ALL=C");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it");
    assert_eq!(lines.last().copied(), Some(&*format!("CARGO_MANIFEST_DIR={dir}")));
    assert_eq!(lines.iter().filter(|l| l.starts_with("PATH=")).count(), 1);
    assert!(!env.contains("VH_NOT_SET_ANYWHERE"));
}

#[test]
fn the_audit_log_gets_one_line_per_script_under_concurrency() {
    let hooks = Hooks::new();
    hooks.script("qemu", "cat >/dev/null; echo out; echo err >&2");
    hooks.script("qemu.d/fail", "exit 2");
    let log = hooks.path().join("audit.jsonl");
    fs::write(&log, "{\"earlier\":true}\n").expect("write");
    let mut c = config(&hooks, "");
    c.audit_log = Some(log.clone());
    let runner = Arc::new(runner_with(&c));
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let runner = Arc::clone(&runner);
            thread::spawn(move || {
                for i in 0..10 {
                    let name = format!("vm{t}-{i}");
                    runner.run(&qemu(&name, "release", "end", "-")).expect("ignored");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let text = fs::read_to_string(&log).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 16 * 10 * 2, "never truncated, one line per script");
    assert_eq!(lines[0], "{\"earlier\":true}");
    for line in &lines[1..] {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
        assert_eq!(v["driver"], "qemu");
        assert_eq!(v["operation"], "release");
        assert_eq!(v["sub_operation"], "end");
        assert!(v["pid"].as_u64().is_some());
        let main = v["script"].as_str().expect("script").ends_with("/qemu");
        if main {
            assert_eq!((v["exit_code"].as_i64(), v["bytes_out"].as_u64()), (Some(0), Some(8)));
            assert_eq!(v["bytes_in"].as_u64(), Some(crate::util::DOMAIN.len() as u64));
        } else {
            assert_eq!((v["exit_code"].as_i64(), v["failed"].as_bool()), (Some(2), Some(true)));
        }
    }
    let mode = fs::metadata(&log).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o644, "an existing file keeps its mode");
    let fresh = hooks.path().join("fresh.jsonl");
    c.audit_log = Some(fresh.clone());
    runner_with(&c).run(&qemu("vm1", "release", "end", "-")).expect("run");
    let mode = fs::metadata(&fresh).expect("meta").permissions().mode();
    assert_eq!(mode & 0o137, 0, "created 0640 (minus the umask): {mode:o}");
}

fn runner_with(c: &Config) -> virt_hooks::Runner {
    let mut b = RunnerBuilder::new(crate::util::registry());
    b.config(c);
    b.build().expect("build")
}

#[test]
fn an_audit_log_that_cannot_be_opened_never_refuses_an_event() {
    let hooks = Hooks::new();
    hooks.script("qemu", "cat >/dev/null; exit 0");
    // Under a regular file: no one, root included, can create it.
    fs::write(hooks.path().join("blocker"), "").expect("write");
    let mut b = hooks.builder();
    b.audit_log(Some(hooks.path().join("blocker/audit.jsonl")));
    let runner = b.build().expect("building opens nothing");
    let outcome = runner.run(&qemu("vm1", "start", "begin", "-")).expect("the event goes on");
    assert_eq!(outcome.scripts.len(), 1);
    let problem = runner.audit_problem().expect("check reports it");
    assert!(problem.contains("blocker") && problem.contains("not a directory"), "{problem}");
}

#[test]
fn a_runner_that_only_plans_or_checks_opens_no_audit_log() {
    let hooks = Hooks::new();
    hooks.script("qemu", "exit 0");
    let log = hooks.path().join("audit.jsonl");
    let mut b = hooks.builder();
    b.audit_log(Some(log.clone()));
    let runner = b.build().expect("build");
    runner.plan(&qemu("vm1", "start", "begin", "-")).expect("plan");
    let _ = runner.check();
    assert!(!log.exists(), "plan and check created the audit log");
    runner.run(&qemu("vm1", "start", "begin", "-")).expect("run");
    let text = fs::read_to_string(&log).expect("a run writes it");
    let v: serde_json::Value = serde_json::from_str(text.trim()).expect("json");
    assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z') && t.contains('T')), "{v}");
    assert!(v["event_id"].as_str().is_some_and(|id| !id.is_empty()), "{v}");
    assert_eq!(v["status"], "exit status 0");
}

#[test]
fn audit_records_carry_the_event_id_status_and_stderr_tail() {
    let hooks = Hooks::new();
    hooks.script("qemu", "cat >/dev/null; echo main-out; exit 0");
    let long = "x".repeat(10_000);
    hooks.script("qemu.d/fail", &format!("echo {long} >&2; echo 'the real reason' >&2; exit 3"));
    let log = hooks.path().join("audit.jsonl");
    let mut b = hooks.builder();
    b.audit_log(Some(log.clone()));
    let runner = b.build().expect("build");
    runner.run(&qemu("vm1", "release", "end", "-")).expect("ignored policy");
    runner.run(&qemu("vm2", "release", "end", "-")).expect("ignored policy");
    let text = fs::read_to_string(&log).expect("read");
    let records: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(records.len(), 4);
    assert_eq!(records[0]["event_id"], records[1]["event_id"], "one id per event");
    assert_ne!(records[1]["event_id"], records[2]["event_id"], "another event, another id");
    assert_eq!(records[0]["stdout_tail"], "main-out");
    let fail = &records[1];
    assert_eq!(
        (fail["status"].as_str(), fail["failed"].as_bool()),
        (Some("exit status 3"), Some(true))
    );
    let tail = fail["stderr_tail"].as_str().expect("tail");
    assert!(tail.ends_with("the real reason"), "{tail}");
    assert!(tail.len() <= virt_hooks::TAIL_BYTES, "bounded: {}", tail.len());
    assert!(
        fail["error"].as_str().is_some_and(|e| e.contains("unexpected exit status 3")),
        "{fail}"
    );
    assert_eq!(fail["object"], "vm1");
    assert_eq!(fail["extra"], "-");
}

#[test]
fn check_reports_what_runs_and_what_does_not() {
    let hooks = Hooks::new();
    hooks.script("qemu", "exit 0");
    hooks.script("qemu.d/10-ok", "exit 0");
    hooks.file("qemu.d/20-plain", b"#!/bin/sh\n", 0o644);
    symlink(hooks.path().join("nowhere"), hooks.path().join("qemu.d/30-dangling")).expect("ln");
    hooks.script("qemu.d/40-gw", "exit 0");
    hooks.set_mode("qemu.d/40-gw", 0o775);
    hooks.script("qemu.d/50-x.rpmnew", "exit 0");
    hooks.script("qemu.d/vm1/prepare", "exit 0");
    hooks.file("daemon.d", b"not a directory", 0o644);
    hooks.script("network", "exit 0");
    hooks.file("README", b"notes", 0o644);

    let report = hooks.runner().check();
    assert!(!report.is_clean());
    let qemu = report.drivers.iter().find(|d| d.driver == "qemu").expect("qemu");
    assert!(qemu.main.as_ref().is_some_and(|m| m.runs && m.warnings.is_empty()));
    let verdicts: Vec<(String, bool, Option<SkipReason>, usize)> = qemu
        .drop_ins
        .iter()
        .map(|f| {
            let name = f.path.file_name().expect("name").to_string_lossy().into_owned();
            (name, f.runs, f.skipped.clone(), f.warnings.len())
        })
        .collect();
    assert_eq!(verdicts.len(), 6, "{verdicts:?}");
    assert_eq!(verdicts[0], ("10-ok".to_owned(), true, None, 0));
    assert_eq!(verdicts[1], ("20-plain".to_owned(), false, Some(SkipReason::NotExecutable), 0));
    assert_eq!(
        verdicts[2],
        ("30-dangling".to_owned(), false, Some(SkipReason::DanglingSymlink), 0)
    );
    assert!(matches!(verdicts[3].2, Some(SkipReason::Refused(_))) && !verdicts[3].1);
    assert_eq!(verdicts[4], ("50-x.rpmnew".to_owned(), true, None, 1));
    assert_eq!(verdicts[5], ("vm1".to_owned(), false, Some(SkipReason::Directory), 0));
    let daemon = report.drivers.iter().find(|d| d.driver == "daemon").expect("daemon");
    assert!(
        daemon.drop_in_error.as_deref().is_some_and(|e| e.starts_with("cannot open directory"))
    );
    assert_eq!(report.stray.len(), 1, "{:?}", report.stray);
    assert!(report.stray[0].warnings[0].contains("'network', which no loaded plugin provides"));
    let problems = report.problems();
    assert_eq!(problems.len(), 6, "{problems:#?}");
    let json = serde_json::to_value(&report).expect("serialize");
    assert_eq!(json["drivers"][0]["driver"], "qemu");

    let clean = Hooks::new();
    clean.script("qemu", "exit 0");
    clean.script("qemu.d/vm1/prepare", "exit 0");
    let report = clean.runner().check();
    assert!(report.is_clean(), "{:?}", report.problems());
}

#[test]
fn disabled_drivers_are_not_in_the_registry() {
    let hooks = Hooks::new();
    hooks.script("daemon", "exit 0");
    let mut c = config(&hooks, "disabled_drivers = [\"daemon\"]\n");
    c.disabled_drivers.push("nonexistent".to_owned());
    let mut rb = RegistryBuilder::new();
    rb.driver(Qemu).driver(Daemon).config(&c).search().only_explicit();
    let registry = Arc::new(rb.build());
    assert!(registry.get("daemon").is_none() && registry.get("qemu").is_some());
    assert!(registry.errors().is_empty());
    let mut b = RunnerBuilder::new(registry);
    b.config(&c);
    let runner = b.build().expect("build");
    let err = runner.run(&daemon_start()).expect_err("unknown driver");
    assert!(matches!(err, RunError::InvalidEvent(_)), "{err}");
    let report = runner.check();
    assert!(report.stray[0].warnings[0].contains("'daemon', which is disabled"));
}
