//! Never a silent success (issue 11): an event the runner refuses before
//! any script ran is recorded in the audit log, and an operation the driver
//! does not list runs exactly the per-object scripts made for it.

use std::fs;

use virt_hooks::{Event, Layout, RunError, ScriptStatus};

use crate::util::{DOMAIN, Hooks, qemu};

/// The audit log's records, one JSON value per line.
fn records(log: &std::path::Path) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).expect("json")).collect()
}

fn audited(hooks: &Hooks, layout: Layout) -> (virt_hooks::Runner, std::path::PathBuf) {
    let log = hooks.path().join("audit.jsonl");
    let mut b = hooks.builder();
    b.layout(layout).audit_log(Some(log.clone()));
    (b.build().expect("build"), log)
}

#[test]
fn an_unlisted_operation_runs_only_the_scripts_made_for_it_and_passes_their_status() {
    let hooks = Hooks::new();
    let marker = hooks.path().join("others-ran");
    for other in
        ["qemu", "qemu.d/10-plain", "qemu.d/vm1/start/begin", "qemu.d/vm2/checkpoint/begin"]
    {
        hooks.script(other, &format!("touch '{}'", marker.display()));
    }
    hooks.script("qemu.d/vm1/checkpoint/begin/10-deny", "cat > \"$0.in\"; echo no >&2; exit 3");
    let (runner, log) = audited(&hooks, Layout::Both);
    let event = Event::new("qemu", "vm1", "checkpoint", "begin", "-").with_input(DOMAIN);
    assert!(matches!(runner.run(&event), Err(RunError::InvalidEvent(_))));
    let err = runner.run_unlisted(&event).expect_err("refused by its script");
    let RunError::Refused { outcome, .. } = err else { panic!("{err}") };
    assert_eq!(outcome.scripts.len(), 1);
    assert_eq!(outcome.scripts[0].status, ScriptStatus::Exited { code: 3 });
    assert_eq!(outcome.scripts[0].stderr, b"no\n");
    assert!(!marker.exists(), "only the scripts of exactly that event run");
    assert_eq!(hooks.read("qemu.d/vm1/checkpoint/begin/10-deny.in").as_bytes(), DOMAIN);
    let records = records(&log);
    let decisions: Vec<&str> =
        records.iter().map(|r| r["decision"].as_str().unwrap_or("script")).collect();
    assert_eq!(decisions, ["refused", "unlisted", "script"]);
    assert!(records[1]["reason"].as_str().is_some_and(|r| r.contains("no operation 'checkpoint'")));
    assert_eq!(records[2]["exit_code"], 3);
    assert_eq!(records[2]["on_failure"], "abort");
}

#[test]
fn an_unlisted_operation_without_scripts_succeeds_on_the_record() {
    let hooks = Hooks::new();
    let (runner, log) = audited(&hooks, Layout::PerObject);
    let outcome = runner
        .run_unlisted(&Event::new("qemu", "vm1", "checkpoint", "begin", "-"))
        .expect("nothing to run");
    assert!(outcome.scripts.is_empty());
    assert_eq!(records(&log)[0]["decision"], "unlisted");
    // The arguments are still checked: no NUL byte reaches an argv.
    let err = runner.run_unlisted(&Event::new("qemu", "vm\0x", "checkpoint", "begin", "-"));
    assert!(matches!(err, Err(RunError::NulByte { .. })), "{err:?}");
    assert_eq!(records(&log)[1]["decision"], "refused");
}

#[test]
fn a_listed_operation_through_run_unlisted_is_checked_as_usual() {
    let hooks = Hooks::new();
    let marker = hooks.path().join("ran");
    hooks.script("qemu.d/forbidden/start/begin", &format!("touch '{}'", marker.display()));
    let (runner, log) = audited(&hooks, Layout::PerObject);
    let err = runner.run_unlisted(&qemu("forbidden", "start", "begin", "-")).expect_err("refused");
    assert!(matches!(err, RunError::InvalidEvent(_)), "{err}");
    assert!(!marker.exists());
    let records = records(&log);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["decision"], "refused");
    assert_eq!(records[0]["object"], "forbidden");
    assert!(
        records[0]["reason"].as_str().is_some_and(|r| r.contains("'forbidden' is not allowed"))
    );
}

#[test]
fn an_unknown_driver_is_refused_by_run_on_the_record() {
    let hooks = Hooks::new();
    let (runner, log) = audited(&hooks, Layout::PerObject);
    let event = Event::new("libxl", "vm1", "start", "begin", "-");
    assert!(matches!(runner.run(&event), Err(RunError::InvalidEvent(_))));
    let records = records(&log);
    assert_eq!(records.len(), 1);
    assert!(records.iter().all(|r| r["decision"] == "refused" && r["driver"] == "libxl"));
    runner.record_refusal(&event, "the input document is too large");
    assert_eq!(records_last(&log)["reason"], "the input document is too large");
}

#[test]
fn a_driver_no_plugin_provides_runs_exactly_its_scripts_through_run_unlisted() {
    let hooks = Hooks::new();
    let (runner, log) = audited(&hooks, Layout::PerObject);
    let event = Event::new("libxl", "vm1", "start", "begin", "-");
    // No script: nothing runs, nothing fails, and the decision is recorded.
    let outcome = runner.run_unlisted(&event).expect("no script is no failure");
    assert!(outcome.scripts.is_empty());
    assert_eq!(records(&log)[0]["decision"], "no-driver");
    let marker = hooks.path().join("others-ran");
    for other in ["libxl", "libxl.d/10-plain", "libxl.d/vm1/stopped/end"] {
        hooks.script(other, &format!("touch {}", marker.display()));
    }
    hooks.script("libxl.d/vm1/start/begin", "echo denied >&2; exit 6");
    let err = runner.run_unlisted(&event).expect_err("its script refuses");
    let outcome = err.outcome().expect("an outcome");
    assert_eq!(outcome.scripts.len(), 1);
    assert_eq!(outcome.scripts[0].status, ScriptStatus::Exited { code: 6 });
    assert!(!marker.exists(), "only the scripts made for the event run");
    // A disabled driver stays refused, and nothing runs.
    let mut registry = virt_hooks::RegistryBuilder::new();
    registry.search().only_explicit();
    let mut b =
        virt_hooks::RunnerBuilder::new(std::sync::Arc::new(registry.disable("libxl").build()));
    b.hooks_dir(hooks.path()).layout(Layout::PerObject);
    let runner = b.build().expect("build");
    assert!(matches!(runner.run_unlisted(&event), Err(RunError::InvalidEvent(_))));
}

fn records_last(log: &std::path::Path) -> serde_json::Value {
    records(log).pop().expect("a record")
}
