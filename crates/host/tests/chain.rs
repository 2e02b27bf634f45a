use virt_hooks::RunError;

use crate::util::{DOMAIN, Hooks, qemu, stdouts};

fn doc() -> String {
    String::from_utf8(DOMAIN.to_vec()).expect("utf-8").trim_end().to_owned()
}

#[test]
fn restore_chains_outputs_and_a_blank_output_changes_nothing() {
    let hooks = Hooks::new();
    hooks.script("qemu", r#"printf '%s|main' "$(cat)""#);
    hooks.script("qemu.d/1", r#"cat >/dev/null; printf ' \n\t\r\v\f'"#);
    hooks.script("qemu.d/2", r#"printf '%s|two' "$(cat)""#);
    hooks.script("qemu.d/3", "cat >/dev/null");
    let outcome = hooks.runner().run(&qemu("vm1", "restore", "begin", "-")).expect("run");
    let d = doc();
    assert_eq!(
        stdouts(&outcome),
        [
            format!("{d}|main"),
            " \n\t\r\u{b}\u{c}".to_owned(),
            format!("{d}|main|two"),
            String::new()
        ]
    );
    assert_eq!(outcome.output.as_deref(), Some(format!("{d}|main|two").as_bytes()));
    assert_eq!(outcome.document(DOMAIN), format!("{d}|main|two").as_bytes());
    // The output was moved there, not copied: its run keeps an empty stdout.
    let moved: Vec<_> = outcome.scripts.iter().map(|s| s.stdout_is_output).collect();
    assert_eq!(moved, [false, false, true, false]);
    assert!(outcome.scripts[2].stdout.is_empty());
    let lens: Vec<_> = outcome.scripts.iter().map(|s| s.input_len).collect();
    let main_len = format!("{d}|main").len();
    assert_eq!(lens, [Some(DOMAIN.len()), Some(main_len), Some(main_len), Some(main_len + 4)]);
}

#[test]
fn without_main_script_the_first_drop_in_gets_the_input() {
    let hooks = Hooks::new();
    hooks.script("qemu.d/a", "cat");
    hooks.script("qemu.d/b", r#"printf '%s|b' "$(cat)""#);
    let outcome = hooks.runner().run(&qemu("vm1", "restore", "begin", "-")).expect("run");
    assert_eq!(
        stdouts(&outcome),
        [String::from_utf8_lossy(DOMAIN).into_owned(), format!("{}|b", doc())]
    );
}

#[test]
fn after_a_failure_later_filters_get_the_original_input() {
    let hooks = Hooks::new();
    hooks.script("qemu.d/1", r#"printf '%s|one' "$(cat)""#);
    hooks.script("qemu.d/2", "cat >/dev/null; echo mid >&2; exit 3");
    hooks.script("qemu.d/3", r#"printf '%s|three' "$(cat)""#);
    let err = hooks.runner().run(&qemu("vm1", "restore", "begin", "-")).expect_err("refused");
    let RunError::Refused { message, outcome, .. } = err else { panic!("not refused: {err}") };
    assert!(message.ends_with("unexpected exit status 3: mid\n"), "{message}");
    let d = doc();
    assert_eq!(stdouts(&outcome), [format!("{d}|one"), String::new(), format!("{d}|three")]);
    assert_eq!(outcome.output.as_deref(), Some(format!("{d}|three").as_bytes()));
    assert_eq!(
        outcome.scripts.iter().map(|s| s.succeeded()).collect::<Vec<_>>(),
        [true, false, true]
    );
}

#[test]
fn output_refused_by_the_driver_fails_that_script() {
    let hooks = Hooks::new();
    let bad = hooks.script("qemu.d/1", "cat >/dev/null; echo BAD");
    hooks.script("qemu.d/2", r#"printf '%s|two' "$(cat)""#);
    let err = hooks.runner().run(&qemu("vm1", "restore", "begin", "-")).expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "Hook script execution failed: driver 'qemu' refused the output of hook script {}: the document says BAD",
            bad.display()
        )
    );
    let outcome = err.outcome().expect("outcome");
    assert_eq!(outcome.scripts[0].status, virt_hooks::ScriptStatus::Exited { code: 0 });
    assert!(!outcome.scripts[0].succeeded());
    // The refused output never became the document.
    assert_eq!(stdouts(outcome)[1], format!("{}|two", doc()));
}

#[test]
fn every_script_runs_and_the_last_failure_is_reported() {
    let hooks = Hooks::new();
    hooks.script("qemu", "echo first >&2; exit 1");
    hooks.script("qemu.d/1", "exit 0");
    hooks.script("qemu.d/2", "echo second >&2; exit 2");
    hooks.script("qemu.d/3", "echo last ran");
    let err = hooks.runner().run(&qemu("vm1", "start", "begin", "-")).expect_err("refused");
    assert!(err.to_string().ends_with("unexpected exit status 2: second\n"), "{err}");
    let outcome = err.outcome().expect("outcome");
    assert_eq!(outcome.scripts.len(), 4);
    assert_eq!(stdouts(outcome)[3], "last ran\n");
    assert_eq!(outcome.error.as_deref(), Some(&*err.to_string()));
}

#[test]
fn ignore_policy_keeps_failures_as_warnings() {
    let hooks = Hooks::new();
    hooks.script("qemu.d/1", "echo one >&2; exit 1");
    hooks.script("qemu.d/2", "exit 4");
    let outcome = hooks.runner().run(&qemu("vm1", "release", "end", "-")).expect("ignored");
    assert_eq!(outcome.warnings.len(), 2);
    assert!(outcome.warnings[0].ends_with("unexpected exit status 1: one\n"));
    assert!(outcome.warnings[1].ends_with("unexpected exit status 4"));
    assert_eq!(outcome.error.as_ref(), outcome.warnings.last());
    assert!(!outcome.succeeded());
}

#[test]
fn non_filter_operations_never_chain() {
    let hooks = Hooks::new();
    hooks.script("qemu", "cat >/dev/null; echo replaced");
    hooks.script("qemu.d/1", "cat");
    let outcome = hooks.runner().run(&qemu("vm1", "start", "begin", "-")).expect("run");
    assert_eq!(outcome.scripts[1].stdout, DOMAIN);
    assert_eq!(outcome.output, None);
}
