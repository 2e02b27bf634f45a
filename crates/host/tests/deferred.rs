//! Deferred scripts: `<object>/<op>/<subop>/deferred/` (and the same in a
//! profile) are found by the event's run, never run by it, and run by
//! `run_deferred` through the same step, with the event's argv,
//! environment and final document; their status changes nothing.

use std::{fs, time::Duration};

use virt_hooks::{
    Config, Event, HistoryFilter, Layout, RunError, ScriptStatus, SkipReason, read_history,
};

use crate::util::{DOMAIN, Hooks, qemu};

fn per_object(hooks: &Hooks) -> virt_hooks::Runner {
    hooks.builder().layout(Layout::PerObject).build().expect("build")
}

#[test]
fn the_run_lists_them_and_runs_none_run_deferred_runs_them_with_the_same_event() {
    let hooks = Hooks::new();
    let out = hooks.path().join("out");
    let record =
        format!("printf '%s|' \"$0\" \"$@\" >> {o}; cat >> {o}; echo >> {o}", o = out.display());
    hooks.script("qemu.d/vm1/start/begin/10-sync", &format!("echo sync >> {}", out.display()));
    hooks.script("qemu.d/vm1/start/begin/deferred/20-b", &record);
    hooks.script("qemu.d/vm1/start/begin/deferred/10-a", &record);
    let runner = per_object(&hooks);
    let event = qemu("vm1", "start", "begin", "-");
    let outcome = runner.run(&event).expect("run");
    assert_eq!(outcome.scripts.len(), 1, "only the synchronous script ran");
    assert!(!outcome.skipped.iter().any(|s| s.path.ends_with("deferred")), "{:?}", outcome.skipped);
    let dir = hooks.path().join("qemu.d/vm1/start/begin/deferred");
    assert_eq!(outcome.deferred, [dir.join("10-a"), dir.join("20-b")], "byte order");
    assert_eq!(fs::read_to_string(&out).expect("read"), "sync\n");
    assert!(!outcome.event_id.is_empty());

    let deferred = runner.run_deferred(&event, &outcome.event_id).expect("deferred");
    assert_eq!(deferred.event_id, outcome.event_id);
    assert!(deferred.deferred.is_empty());
    let doc = String::from_utf8_lossy(DOMAIN);
    let line = |name: &str| format!("{}|vm1|start|begin|-|{doc}\n", dir.join(name).display());
    assert_eq!(
        fs::read_to_string(&out).expect("read"),
        format!("sync\n{}{}", line("10-a"), line("20-b"))
    );
}

#[test]
fn the_environment_is_the_synchronous_scripts_one() {
    let hooks = Hooks::new();
    let env = |name: &str| format!("env | LC_ALL=C sort > {}", hooks.path().join(name).display());
    hooks.script("qemu.d/vm1/start/begin/10-sync", &env("sync-env"));
    hooks.script("qemu.d/vm1/start/begin/deferred/10-later", &env("deferred-env"));
    let runner = per_object(&hooks);
    let event = qemu("vm1", "start", "begin", "-");
    let outcome = runner.run(&event).expect("run");
    runner.run_deferred(&event, &outcome.event_id).expect("deferred");
    let read = |name: &str| fs::read_to_string(hooks.path().join(name)).expect("read");
    assert_eq!(read("sync-env"), read("deferred-env"));
}

#[test]
fn a_failing_deferred_script_is_recorded_and_refuses_nothing() {
    let hooks = Hooks::new();
    let audit = hooks.path().join("audit.jsonl");
    hooks.script("qemu.d/vm1/start/begin/deferred/10-fail", "echo broken >&2; exit 3");
    hooks.script("qemu.d/vm1/start/begin/deferred/20-ok", "exit 0");
    let runner =
        hooks.builder().layout(Layout::PerObject).audit_log(Some(audit.clone())).build().unwrap();
    let event = qemu("vm1", "start", "begin", "-");
    let outcome = runner.run(&event).expect("nothing synchronous failed");
    assert!(outcome.succeeded());
    let deferred = runner.run_deferred(&event, &outcome.event_id).expect("never refused");
    assert_eq!(deferred.scripts.len(), 2, "every deferred script runs after a failure");
    assert_eq!(deferred.scripts[0].status, ScriptStatus::Exited { code: 3 });
    assert!(deferred.warnings.iter().any(|w| w.contains("unexpected exit status 3")));
    assert!(deferred.error.is_some());

    let file = fs::File::open(&audit).expect("audit");
    let history = read_history(std::io::BufReader::new(file), &HistoryFilter::default()).unwrap();
    let runs: Vec<_> = history.entries.iter().filter(|e| e.script.is_some()).collect();
    assert_eq!(runs.len(), 2, "{:?}", history.entries);
    for run in &runs {
        assert!(run.deferred, "{run:?}");
        assert_eq!(run.event_id.as_deref(), Some(outcome.event_id.as_str()));
    }
    assert!(runs[0].failed && !runs[1].failed);
}

#[test]
fn a_filters_deferred_scripts_read_the_final_document_and_rewrite_nothing() {
    let hooks = Hooks::new();
    let seen = hooks.path().join("seen");
    hooks.script("qemu.d/vm1/restore/begin/10-filter", "sed 's|vm1|vm1<!--changed-->|'");
    // Output of a deferred script is only recorded: the next one still
    // reads the event's document, and BAD is never checked.
    hooks.script("qemu.d/vm1/restore/begin/deferred/10-print", "cat >/dev/null; echo BAD");
    hooks.script("qemu.d/vm1/restore/begin/deferred/20-seen", &format!("cat > {}", seen.display()));
    let runner = per_object(&hooks);
    let event = qemu("vm1", "restore", "begin", "-");
    let outcome = runner.run(&event).expect("run");
    let document = outcome.document(DOMAIN).to_vec();
    assert!(String::from_utf8_lossy(&document).contains("changed"));
    let after = Event::new("qemu", "vm1", "restore", "begin", "-").with_input(&document);
    let deferred = runner.run_deferred(&after, &outcome.event_id).expect("deferred");
    assert!(deferred.succeeded(), "{:?}", deferred.warnings);
    assert_eq!(deferred.output, None, "a deferred script replaces nothing");
    assert_eq!(fs::read(&seen).expect("seen"), document);
}

#[test]
fn a_refused_event_runs_no_deferred_script_and_says_so() {
    let hooks = Hooks::new();
    let audit = hooks.path().join("audit.jsonl");
    hooks.script("qemu.d/vm1/start/begin/10-deny", "exit 1");
    hooks.script("qemu.d/vm1/start/begin/deferred/10-later", "exit 0");
    let runner =
        hooks.builder().layout(Layout::PerObject).audit_log(Some(audit.clone())).build().unwrap();
    let err = runner.run(&qemu("vm1", "start", "begin", "-")).unwrap_err();
    let RunError::Refused { outcome, .. } = err else { panic!("refused: {err:?}") };
    assert_eq!(outcome.deferred.len(), 1);
    let text = fs::read_to_string(&audit).expect("audit");
    let skipped = text.lines().find(|l| l.contains("\"deferred-skipped\"")).expect(&text);
    assert!(skipped.contains("\"deferred\":true") && skipped.contains(&outcome.event_id));
}

#[test]
fn only_deferred_scripts_still_get_a_checked_document() {
    let hooks = Hooks::new();
    hooks.script("qemu.d/forbidden/start/begin/deferred/10-later", "exit 0");
    let runner = per_object(&hooks);
    let err = runner.run(&qemu("forbidden", "start", "begin", "-")).unwrap_err();
    assert!(matches!(err, RunError::InvalidEvent(_)), "{err:?}");
    // Without deferred scripts the document is not read, as libvirt.
    let err = runner.run_deferred(&qemu("forbidden", "start", "begin", "-"), "");
    assert!(matches!(err, Err(RunError::InvalidEvent(_))), "{err:?}");
}

#[test]
fn the_file_form_has_none_and_a_file_named_deferred_is_an_ordinary_script() {
    let hooks = Hooks::new();
    hooks.script("qemu.d/vm1/prepare/begin", "exit 0");
    hooks.script("qemu.d/vm1/start/begin/deferred", "echo now");
    let runner = per_object(&hooks);
    let outcome = runner.run(&qemu("vm1", "prepare", "begin", "-")).expect("run");
    assert!(outcome.deferred.is_empty());
    let outcome = runner.run(&qemu("vm1", "start", "begin", "-")).expect("run");
    assert!(outcome.deferred.is_empty());
    assert_eq!(outcome.scripts.len(), 1, "runs now, as before deferred scripts existed");
}

#[test]
fn libvirts_layout_has_no_deferred_scripts() {
    let hooks = Hooks::new();
    hooks.script("qemu.d/vm1/start/begin/deferred/10-later", "exit 0");
    let runner = hooks.runner();
    let outcome = runner.run(&qemu("vm1", "start", "begin", "-")).expect("run");
    assert!(outcome.deferred.is_empty());
    let deferred = runner.run_deferred(&qemu("vm1", "start", "begin", "-"), "").expect("ok");
    assert!(deferred.scripts.is_empty());
}

#[test]
fn the_security_rules_and_the_deferred_timeout_apply() {
    let hooks = Hooks::new();
    hooks.script("qemu.d/vm1/start/begin/deferred/10-gw", "exit 0");
    hooks.set_mode("qemu.d/vm1/start/begin/deferred/10-gw", 0o775);
    hooks.script("qemu.d/vm1/start/begin/deferred/20-slow", "sleep 30");
    let config = Config::from_toml(
        "timeout = 1\ndeferred_timeout = 60\n[drivers.qemu.operations.start]\ndeferred_timeout = \"300ms\"\n",
        "t.toml".as_ref(),
    )
    .expect("config");
    let runner = hooks
        .builder()
        .config(&config)
        .hooks_dir(hooks.path())
        .layout(Layout::PerObject)
        .build()
        .unwrap();
    assert_eq!(runner.deferred_timeout_for("qemu", "start"), Some(Duration::from_millis(300)));
    assert_eq!(runner.deferred_timeout_for("qemu", "prepare"), Some(Duration::from_secs(60)));
    let plan = runner.plan(&qemu("vm1", "start", "begin", "-")).expect("plan");
    assert!(plan.scripts.is_empty());
    assert_eq!(plan.deferred.len(), 1, "{:?}", plan.deferred);
    assert!(plan.deferred[0].path.ends_with("deferred/20-slow"));
    assert_eq!(plan.deferred_timeout, Some(Duration::from_millis(300)));
    assert!(plan.skipped.iter().any(|s| s.path.ends_with("deferred/10-gw")
        && matches!(&s.reason, SkipReason::Refused(r) if r.contains("writable by its group"))));

    let deferred = runner.run_deferred(&qemu("vm1", "start", "begin", "-"), "").expect("ok");
    assert_eq!(deferred.scripts[0].status, ScriptStatus::Refused);
    assert!(deferred.scripts[1].timed_out, "{:?}", deferred.scripts[1]);
    assert!(deferred.scripts[1].duration < Duration::from_secs(20));
}

#[test]
fn a_profiles_deferred_scripts_run_with_its_variables() {
    let hooks = Hooks::new();
    let out = hooks.path().join("out");
    hooks.file("qemu.profiles/gpu/profile.toml", b"", 0o644);
    hooks.script(
        "qemu.profiles/gpu/start/begin/deferred/10-later",
        &format!("echo \"$VIRT_HOOKS_PROFILE\" > {}", out.display()),
    );
    let doc = b"<domain><name>vm1</name><metadata><vh:profiles xmlns:vh='http://virt-hooks.org/xmlns/profiles/1.0'><vh:profile name='gpu'/></vh:profiles></metadata></domain>";
    let event = Event::new("qemu", "vm1", "start", "begin", "-").with_input(doc);
    let runner = per_object(&hooks);
    let outcome = runner.run(&event).expect("run");
    assert_eq!(outcome.deferred.len(), 1, "{outcome:?}");
    let deferred = runner.run_deferred(&event, &outcome.event_id).expect("deferred");
    assert_eq!(deferred.scripts[0].profile.as_deref(), Some("gpu"));
    assert_eq!(fs::read_to_string(&out).expect("out"), "gpu\n");
}
