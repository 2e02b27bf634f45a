//! The script security rules, applied just before a script would start.

use std::{fs, os::unix::fs::MetadataExt, path::PathBuf};

use virt_hooks::{RunError, ScriptStatus, SecurityMode, SkipReason};

use crate::util::{Hooks, qemu};

/// A hooks directory with one unsafe `qemu.d/bad` script that would create
/// a marker file, made unsafe by `spoil`. `None` when the test cannot set it
/// up (printed).
fn unsafe_hook(spoil: &str) -> Option<(Hooks, PathBuf, PathBuf)> {
    let hooks = Hooks::new();
    let marker = hooks.path().join("ran");
    let script = hooks.script("qemu.d/bad", &format!("touch '{}'", marker.display()));
    match spoil {
        "group-writable" => _ = hooks.set_mode("qemu.d/bad", 0o775),
        "group-writable-dir" => _ = hooks.set_mode("qemu.d", 0o775),
        "setuid" => _ = hooks.set_mode("qemu.d/bad", 0o4755),
        "foreign-owner" => {
            // The owner of a new directory is the effective uid.
            if fs::metadata(hooks.path()).expect("meta").uid() != 0 {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("skipped: chown to uid 65534 needs root");
                }
                return None;
            }
            std::os::unix::fs::chown(&script, Some(65534), None).expect("chown");
        }
        other => panic!("unknown spoil {other}"),
    }
    Some((hooks, script, marker))
}

const SPOILS: [&str; 4] = ["group-writable", "group-writable-dir", "setuid", "foreign-owner"];

#[test]
fn unsafe_scripts_are_refused_and_fail_under_abort() {
    for spoil in SPOILS {
        let Some((hooks, script, marker)) = unsafe_hook(spoil) else { continue };
        let err = hooks.runner().run(&qemu("vm1", "start", "begin", "-")).expect_err("refused");
        let RunError::Refused { ref message, ref outcome, .. } = err else {
            panic!("{spoil}: not refused: {err}")
        };
        let prefix =
            format!("Hook script execution failed: hook script {} refused: ", script.display());
        assert!(message.starts_with(&prefix), "{spoil}: {message}");
        let run = &outcome.scripts[0];
        assert_eq!(run.status, ScriptStatus::Refused, "{spoil}");
        assert!(run.refused.is_some() && run.pid.is_none(), "{spoil}");
        assert!(!marker.exists(), "{spoil}: the script was never executed");
    }
}

#[test]
fn unsafe_scripts_are_warnings_under_ignore() {
    for spoil in SPOILS {
        let Some((hooks, _, marker)) = unsafe_hook(spoil) else { continue };
        let outcome = hooks.runner().run(&qemu("vm1", "release", "end", "-")).expect("ignored");
        assert_eq!(outcome.warnings.len(), 1, "{spoil}: {:?}", outcome.warnings);
        assert!(outcome.warnings[0].contains(" refused: "), "{spoil}: {}", outcome.warnings[0]);
        assert!(!marker.exists(), "{spoil}: the script was never executed");
    }
}

#[test]
fn warn_mode_runs_them() {
    for spoil in SPOILS {
        let Some((hooks, _, marker)) = unsafe_hook(spoil) else { continue };
        let mut builder = hooks.builder();
        builder.security(SecurityMode::Warn);
        let runner = builder.build().expect("build");
        let outcome = runner.run(&qemu("vm1", "start", "begin", "-")).expect("runs");
        assert!(marker.exists(), "{spoil}: it ran");
        assert!(outcome.warnings[0].contains("is unsafe, running it anyway"), "{spoil}");
        let plan = runner.plan(&qemu("vm1", "start", "begin", "-")).expect("plan");
        assert_eq!((plan.scripts.len(), plan.warnings.len()), (1, 1), "{spoil}");
    }
}

#[test]
fn the_plan_shows_refused_scripts_as_skipped() {
    let (hooks, script, _) = unsafe_hook("group-writable").expect("set up");
    hooks.script("qemu", "exit 0");
    let plan = hooks.runner().plan(&qemu("vm1", "start", "begin", "-")).expect("plan");
    assert_eq!(plan.scripts.len(), 1, "only the main script");
    assert_eq!(plan.skipped.len(), 1);
    assert_eq!(plan.skipped[0].path, script);
    let SkipReason::Refused(ref reason) = plan.skipped[0].reason else {
        panic!("{:?}", plan.skipped[0].reason)
    };
    assert!(reason.ends_with("is writable by its group (mode 0775)"), "{reason}");
}
