use std::{fs, os::unix::fs::symlink, path::Path};

use virt_hooks::{Event, RunError, SkipReason};

use crate::util::{Hooks, daemon_start, qemu, stdouts};

fn names(paths: impl IntoIterator<Item = impl AsRef<Path>>) -> Vec<String> {
    paths
        .into_iter()
        .map(|p| p.as_ref().file_name().expect("name").to_string_lossy().into_owned())
        .collect()
}

#[test]
fn main_first_then_drop_ins_in_byte_order_hidden_included() {
    let hooks = Hooks::new();
    for name in ["a", "Z", "2-b", "10-a", ".hidden"] {
        hooks.script(&format!("qemu.d/{name}"), &format!("echo {name}"));
    }
    hooks.script("qemu", "echo main");
    let outcome = hooks.runner().run(&qemu("vm1", "start", "begin", "-")).expect("run");
    assert_eq!(
        names(outcome.scripts.iter().map(|s| &s.path)),
        ["qemu", ".hidden", "10-a", "2-b", "Z", "a"]
    );
    assert_eq!(stdouts(&outcome), ["main\n", ".hidden\n", "10-a\n", "2-b\n", "Z\n", "a\n"]);
    assert!(outcome.succeeded());
    assert_eq!(outcome.output, None, "start is not a filter");
}

#[test]
fn argv_is_full_path_then_the_four_arguments() {
    let hooks = Hooks::new();
    let main = hooks.script("qemu", r#"for a in "$0" "$@"; do printf '[%s]' "$a"; done"#);
    let outcome =
        hooks.runner().run(&qemu("my vm", "release", "end", "from snapshot")).expect("run");
    assert_eq!(
        stdouts(&outcome),
        [format!("[{}][my vm][release][end][from snapshot]", main.display())]
    );
    assert_eq!(
        outcome.scripts[0].argv,
        [&*main.to_string_lossy(), "my vm", "release", "end", "from snapshot"]
    );
}

#[test]
fn only_executable_regular_files_run() {
    let hooks = Hooks::new();
    let target = hooks.script("elsewhere/real", "echo linked");
    hooks.file("qemu.d/plain", b"#!/bin/sh\necho plain\n", 0o644);
    hooks.file("qemu.d/others-x", b"#!/bin/sh\necho others\n", 0o701);
    hooks.file("qemu.d/group-x", b"#!/bin/sh\necho group\n", 0o610);
    symlink(&target, hooks.path().join("qemu.d/link")).expect("symlink");
    symlink(hooks.path().join("nowhere"), hooks.path().join("qemu.d/dangling")).expect("symlink");
    hooks.script("qemu.d/subdir/inner", "echo inner");
    symlink(hooks.path().join("qemu.d/subdir"), hooks.path().join("qemu.d/dirlink"))
        .expect("symlink");

    let outcome = hooks.runner().run(&qemu("vm1", "start", "begin", "-")).expect("run");
    assert_eq!(names(outcome.scripts.iter().map(|s| &s.path)), ["group-x", "link", "others-x"]);
    assert_eq!(stdouts(&outcome), ["group\n", "linked\n", "others\n"]);
    let skipped: Vec<(String, SkipReason)> =
        outcome.skipped.iter().map(|s| (names([&s.path]).remove(0), s.reason.clone())).collect();
    assert_eq!(
        skipped,
        [
            ("dangling".to_owned(), SkipReason::DanglingSymlink),
            ("dirlink".to_owned(), SkipReason::Directory),
            ("plain".to_owned(), SkipReason::NotExecutable),
            ("subdir".to_owned(), SkipReason::Directory),
        ]
    );
}

#[test]
fn non_executable_main_is_skipped_and_drop_ins_still_run() {
    let hooks = Hooks::new();
    hooks.file("qemu", b"#!/bin/sh\necho main\n", 0o644);
    hooks.script("qemu.d/one", "echo one");
    let outcome = hooks.runner().run(&qemu("vm1", "start", "begin", "-")).expect("run");
    assert_eq!(stdouts(&outcome), ["one\n"]);
    assert_eq!(outcome.skipped.len(), 1);
    assert_eq!(outcome.skipped[0].reason, SkipReason::NotExecutable);
}

#[test]
fn drop_in_dir_as_a_plain_file_fails_the_call_after_the_main_script() {
    let hooks = Hooks::new();
    let marker = hooks.path().join("main-ran");
    hooks.script("qemu", &format!("touch '{}'", marker.display()));
    let dot_d = hooks.file("qemu.d", b"not a directory", 0o644);
    let err = hooks.runner().run(&qemu("vm1", "start", "begin", "-")).expect_err("must fail");
    assert_eq!(
        err.to_string(),
        format!("cannot open directory '{}': Not a directory", dot_d.display())
    );
    assert!(matches!(err, RunError::Discovery { .. }));
    assert!(marker.exists(), "libvirt runs the main script before opening .d");
    let ran = err.outcome().expect("outcome");
    assert_eq!(ran.scripts.len(), 1);
    assert!(ran.scripts[0].succeeded());

    // The same for plan(), which runs nothing.
    fs::remove_file(&marker).expect("rm");
    let err = hooks.runner().plan(&qemu("vm1", "start", "begin", "-")).expect_err("must fail");
    assert!(matches!(err, RunError::Discovery { outcome: None, .. }));
    assert!(!marker.exists());

    // Under the ignore policy the failure is a warning.
    let outcome = hooks.runner().run(&qemu("vm1", "release", "end", "-")).expect("ignored");
    assert_eq!(
        outcome.warnings,
        [format!("cannot open directory '{}': Not a directory", dot_d.display())]
    );
    assert!(!outcome.succeeded());
}

#[test]
fn no_hooks_no_process_and_missing_dir_is_fine() {
    let hooks = Hooks::new();
    // qemu has hooks, the daemon has none.
    hooks.script("qemu", "echo main");
    let outcome = hooks.runner().run(&daemon_start()).expect("run");
    assert!(outcome.scripts.is_empty() && outcome.skipped.is_empty() && outcome.succeeded());

    let mut b = hooks.builder();
    b.hooks_dir(hooks.path().join("does/not/exist"));
    let outcome = b.build().expect("build").run(&qemu("vm1", "start", "begin", "-")).expect("run");
    assert!(outcome.scripts.is_empty() && outcome.succeeded());
}

#[test]
fn discovery_happens_on_every_call() {
    let hooks = Hooks::new();
    let runner = hooks.runner();
    let event = qemu("vm1", "start", "begin", "-");
    assert!(runner.run(&event).expect("run").scripts.is_empty());
    let added = hooks.script("qemu.d/new", "echo new");
    assert_eq!(stdouts(&runner.run(&event).expect("run")), ["new\n"]);
    fs::remove_file(added).expect("rm");
    assert!(runner.run(&event).expect("run").scripts.is_empty());
}

#[test]
fn invalid_events_run_nothing() {
    let hooks = Hooks::new();
    let marker = hooks.path().join("ran");
    hooks.script("qemu", &format!("touch '{}'", marker.display()));
    hooks.script("lxc", &format!("touch '{}'", marker.display()));
    let runner = hooks.runner();
    let cases = [
        Event::new("lxc", "c1", "start", "begin", "-"),
        Event::new("qemu", "vm1", "start", "end", "-").with_input(b"<domain/>"),
        Event::new("qemu", "vm1", "start", "begin", "-"),
        qemu("forbidden", "start", "begin", "-"),
        qemu("vm1", "release", "end", "later"),
    ];
    for event in cases {
        let err = runner.run(&event).expect_err("invalid");
        assert!(matches!(err, RunError::InvalidEvent(_)), "{event:?}: {err}");
        // A plan may leave out the document; everything else is checked.
        if event.input.is_some() || event.driver != "qemu" {
            let err = runner.plan(&event).expect_err("invalid");
            assert!(matches!(err, RunError::InvalidEvent(_)), "{event:?}: {err}");
        }
    }
    let err = runner.run(&qemu("vm\0x", "start", "begin", "-")).expect_err("nul");
    assert!(matches!(err, RunError::NulByte { argument: "object", .. }));
    assert!(!marker.exists());
}

#[test]
fn the_driver_checks_the_document_only_when_a_script_will_run() {
    // libvirt checks nothing and formats no XML when no hook script exists;
    // the driver's checks protect the scripts, so they wait for one.
    let hooks = Hooks::new();
    let runner = hooks.runner();
    let refused_by_driver = qemu("forbidden", "start", "begin", "-");
    let outcome = runner.run(&refused_by_driver).expect("no script, no driver check");
    assert!(outcome.scripts.is_empty());
    // The operation table is still checked first.
    let bad_extra = qemu("vm1", "release", "end", "later");
    assert!(matches!(runner.run(&bad_extra), Err(RunError::InvalidEvent(_))));
    // A plan with the document still asks the driver.
    assert!(matches!(runner.plan(&refused_by_driver), Err(RunError::InvalidEvent(_))));
    // A script found: the driver refuses before it runs, in the main stage
    // and in the `.d` stage alike.
    let marker = hooks.path().join("ran");
    let script = hooks.script("qemu.d/1", &format!("touch '{}'", marker.display()));
    assert!(matches!(runner.run(&refused_by_driver), Err(RunError::InvalidEvent(_))));
    fs::remove_file(script).expect("rm");
    hooks.script("qemu", &format!("touch '{}'", marker.display()));
    assert!(matches!(runner.run(&refused_by_driver), Err(RunError::InvalidEvent(_))));
    assert!(!marker.exists());
}

#[test]
fn plan_lists_scripts_env_input_and_skips() {
    let hooks = Hooks::new();
    let main = hooks.script("qemu", "exit 0");
    let one = hooks.script("qemu.d/1", "exit 0");
    hooks.file("qemu.d/0-off", b"", 0o600);
    let plan = hooks.runner().plan(&qemu("my vm", "restore", "begin", "-")).expect("plan");
    assert_eq!(
        plan.scripts.iter().map(|s| s.path.clone()).collect::<Vec<_>>(),
        [main.clone(), one]
    );
    assert_eq!(plan.scripts[0].argv, [&*main.to_string_lossy(), "my vm", "restore", "begin", "-"]);
    assert_eq!((plan.env[0].name.as_str(), plan.env[0].value.as_str()), ("LC_ALL", "C"));
    assert_eq!(plan.input_len, Some(crate::util::DOMAIN.len()));
    assert!(plan.filter);
    assert_eq!(plan.skipped.len(), 1);
    let json = serde_json::to_value(&plan).expect("json");
    assert_eq!(json["on_failure"], "abort");
    assert_eq!(json["skipped"][0]["reason"], "not_executable");
}

#[test]
fn a_plan_needs_no_input_document_but_still_checks_the_arguments() {
    let hooks = Hooks::new();
    hooks.script("qemu", "exit 0");
    let runner = hooks.runner();
    let bare = virt_hooks::Event::new("qemu", "vm1", "start", "begin", "-");
    let plan = runner.plan(&bare).expect("plan without input");
    assert_eq!(plan.scripts.len(), 1);
    assert_eq!(plan.input_len, None);
    let bad = virt_hooks::Event::new("qemu", "vm1", "start", "end", "-");
    assert!(runner.plan(&bad).is_err(), "the sub-operation is still checked");
    assert!(runner.run(&bare).is_err(), "running still needs the document");
}
