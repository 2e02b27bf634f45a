use virt_hooks::{RunError, ScriptStatus};

use crate::util::{Hooks, daemon_start, qemu};

/// The `LC_ALL=C PATH=... ` part, from the plan (the test process's own
/// environment).
fn env_prefix(hooks: &Hooks) -> String {
    let plan = hooks.runner().plan(&daemon_start()).expect("plan");
    plan.env.iter().map(|v| format!("{}={} ", v.name, shell(&v.value))).collect()
}

fn shell(s: &str) -> String {
    if s.is_empty() {
        "''".to_owned()
    } else if s.bytes().any(|b| b"\r\t\n !\"#$&'()*;<>?[\\]^`{|}~".contains(&b)) {
        format!("'{}'", s.replace('\'', r"'\''"))
    } else {
        s.to_owned()
    }
}

fn refused(err: RunError) -> (String, Box<virt_hooks::Outcome>) {
    match err {
        RunError::Refused { message, outcome, .. } => (message, outcome),
        other => panic!("not refused: {other}"),
    }
}

#[test]
fn exit_status_message_is_libvirts_with_escaped_arguments() {
    let hooks = Hooks::new();
    let main = hooks.script("qemu", "cat >/dev/null; printf 'line one\\nline two\\n' >&2; exit 3");
    // `release` ignores failures: the message is the warning.
    let outcome =
        hooks.runner().run(&qemu("my vm", "release", "end", "from snapshot")).expect("ignored");
    assert_eq!(
        outcome.warnings,
        [format!(
            "Hook script execution failed: internal error: Child process ({}{} 'my vm' release end 'from snapshot') unexpected exit status 3: line one\nline two\n",
            env_prefix(&hooks),
            main.display()
        )]
    );
}

#[test]
fn no_stderr_no_suffix_and_whitespace_stderr_is_kept() {
    let hooks = Hooks::new();
    let main = hooks.script("qemu", "exit 1");
    let (message, _) =
        refused(hooks.runner().run(&qemu("vm1", "prepare", "begin", "-")).expect_err("fails"));
    assert_eq!(
        message,
        format!(
            "Hook script execution failed: internal error: Child process ({}{} vm1 prepare begin -) unexpected exit status 1",
            env_prefix(&hooks),
            main.display()
        )
    );
    hooks.script("qemu", "printf ' ' >&2; exit 1");
    let (message, _) =
        refused(hooks.runner().run(&qemu("vm1", "prepare", "begin", "-")).expect_err("fails"));
    assert!(message.ends_with("prepare begin -) unexpected exit status 1:  "), "{message:?}");
}

#[test]
fn death_by_signal_is_a_fatal_signal() {
    let hooks = Hooks::new();
    hooks.script("qemu", "kill -TERM $$");
    let (message, outcome) =
        refused(hooks.runner().run(&qemu("vm1", "start", "begin", "-")).expect_err("fails"));
    assert!(message.ends_with(" vm1 start begin -) unexpected fatal signal 15"), "{message}");
    assert_eq!(outcome.scripts[0].status, ScriptStatus::Signaled { signal: 15 });
}

#[test]
fn exec_failures_are_126_and_127_like_libvirts_child() {
    let hooks = Hooks::new();
    let prefix = env_prefix(&hooks);
    let expect = |path: &std::path::Path, code: i32, stderr: &str| {
        format!(
            "Hook script execution failed: internal error: Child process ({prefix}{} - start - start) unexpected exit status {code}: {stderr}",
            path.display()
        )
    };
    let runner = hooks.runner();

    // Not a binary and no #!: ENOEXEC.
    let garbage = hooks.file("daemon", b"\x01\x02garbage\n", 0o755);
    let (message, outcome) = refused(runner.run(&daemon_start()).expect_err("fails"));
    assert_eq!(outcome.scripts[0].status, ScriptStatus::Exited { code: 126 });
    assert_eq!(
        message,
        expect(
            &garbage,
            126,
            &format!("cannot execute binary {}: Exec format error\n", garbage.display())
        )
    );

    // An interpreter without any x bit: EACCES, even for root.
    let interp = hooks.file("not-exec-interp", b"#!/bin/sh\n", 0o644);
    hooks.file("daemon", format!("#!{}\nexit 0\n", interp.display()).as_bytes(), 0o755);
    let (message, _) = refused(runner.run(&daemon_start()).expect_err("fails"));
    assert_eq!(
        message,
        expect(
            &garbage,
            126,
            &format!(
                "cannot execute binary {}: Permission denied (bad interpreter '{}')\n",
                garbage.display(),
                interp.display()
            )
        )
    );

    // A CRLF #! line: the interpreter is `/bin/sh\r`, which does not exist.
    hooks.file("daemon", b"#!/bin/sh\r\nexit 0\r\n", 0o755);
    let (message, outcome) = refused(runner.run(&daemon_start()).expect_err("fails"));
    assert_eq!(outcome.scripts[0].status, ScriptStatus::Exited { code: 127 });
    assert_eq!(
        message,
        expect(
            &garbage,
            127,
            &format!(
                "cannot execute binary {}: No such file or directory (bad interpreter '/bin/sh\\r')\n",
                garbage.display()
            )
        )
    );

    // A missing interpreter.
    hooks.file("daemon", b"#! /no/such/shell -e\nexit 0\n", 0o755);
    let (message, _) = refused(runner.run(&daemon_start()).expect_err("fails"));
    assert!(
        message.ends_with("No such file or directory (bad interpreter '/no/such/shell')\n"),
        "{message}"
    );
}

#[test]
fn stderr_is_kept_verbatim_in_the_outcome() {
    let hooks = Hooks::new();
    hooks.script("qemu", "cat >/dev/null; printf 'a\\nb' >&2; echo out");
    let outcome = hooks.runner().run(&qemu("vm1", "start", "begin", "-")).expect("ok");
    assert_eq!(outcome.scripts[0].stderr, b"a\nb");
    assert_eq!(outcome.scripts[0].stdout, b"out\n");
    assert!(outcome.succeeded() && outcome.warnings.is_empty());
    let json = serde_json::to_value(&outcome).expect("json");
    assert_eq!(json["scripts"][0]["stderr"], "a\nb");
    assert_eq!(json["scripts"][0]["status"]["kind"], "exited");
}
