use std::{sync::Arc, thread, time::Duration};

use virt_hooks::{Event, ScriptStatus};

use crate::util::{Hooks, qemu};

fn big_domain(size: usize) -> Vec<u8> {
    let mut doc = b"<domain><name>vm1</name><description>".to_vec();
    doc.resize(size - 23, b'x');
    doc.extend_from_slice(b"</description></domain>");
    doc
}

#[test]
fn ten_mib_to_a_script_that_never_reads_stdin() {
    let hooks = Hooks::new();
    hooks.script("qemu", "echo ignored-input");
    hooks.script("qemu.d/sleepy", "sleep 0.2; exit 0");
    let doc = big_domain(10 << 20);
    let event = Event::new("qemu", "vm1", "start", "begin", "-").with_input(&doc);
    let outcome = hooks.runner().run(&event).expect("run");
    assert_eq!(outcome.scripts.len(), 2);
    assert!(outcome.succeeded());
    assert_eq!(outcome.scripts[0].stdout, b"ignored-input\n");
}

#[test]
fn ten_mib_through_a_filter_while_it_writes_stderr() {
    let hooks = Hooks::new();
    // Writes a lot to stderr before reading stdin, then echoes stdin: no
    // deadlock whatever the order.
    hooks.script("qemu", "head -c 3000000 /dev/zero >&2; cat");
    let doc = big_domain(10 << 20);
    let event = Event::new("qemu", "vm1", "restore", "begin", "-").with_input(&doc);
    let mut builder = hooks.builder();
    builder.stderr_limit(4 << 20);
    let outcome = builder.build().expect("build").run(&event).expect("run");
    assert_eq!(outcome.scripts[0].stderr.len(), 3_000_000);
    assert!(outcome.output.as_deref() == Some(&doc[..]), "the document came back whole");
}

#[test]
fn sixteen_threads_each_see_their_own_document() {
    let hooks = Hooks::new();
    hooks.script("qemu", r#"printf '%s|%s' "$(cat)" "$1""#);
    hooks.script("qemu.d/1", r#"printf '%s|d' "$(cat)""#);
    let runner = Arc::new(hooks.runner());
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let runner = Arc::clone(&runner);
            thread::spawn(move || {
                let name = format!("vm{i}");
                let doc = format!("<domain><name>{name}</name>{}</domain>", "y".repeat(i * 10_000));
                for _ in 0..3 {
                    let event = Event::new("qemu", &name, "restore", "begin", "-")
                        .with_input(doc.as_bytes());
                    let outcome = runner.run(&event).expect("run");
                    assert_eq!(outcome.output, Some(format!("{doc}|{name}|d").into_bytes()));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
}

#[test]
fn runner_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<virt_hooks::Runner>();
    assert_send_sync::<virt_hooks::Outcome>();
    assert_send_sync::<virt_hooks::RunError>();
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let hooks = Hooks::new();
    let marker = hooks.path().join("grandchild-survived");
    let main = hooks.script(
        "qemu",
        &format!("(sleep 3; touch '{}') & cat >/dev/null; sleep 30", marker.display()),
    );
    let mut builder = hooks.builder();
    builder.timeout(Duration::from_millis(300)).kill_grace(Duration::from_millis(200));
    let err = builder
        .build()
        .expect("build")
        .run(&qemu("vm1", "start", "begin", "-"))
        .expect_err("timed out");
    let message = err.to_string();
    let head = format!(
        "Hook script execution failed: hook script {} timed out after 0.3s; killed ",
        main.display()
    );
    assert!(message.starts_with(&head), "{message}");
    let run = &err.outcome().expect("outcome").scripts[0];
    let pid = run.pid.expect("pid").to_string();
    assert!(message.contains(" processes (pids ") && message.contains(&pid), "{message}");
    assert!(run.timed_out);
    assert_eq!(run.status, ScriptStatus::Signaled { signal: libc::SIGTERM });
    thread::sleep(Duration::from_millis(3500));
    assert!(!marker.exists(), "the background child was killed with its group");
}

#[test]
fn sigterm_ignored_means_sigkill_after_the_grace() {
    let hooks = Hooks::new();
    hooks.script("qemu", "trap '' TERM; cat >/dev/null; while :; do sleep 1; done");
    let mut builder = hooks.builder();
    builder.timeout(Duration::from_millis(200)).kill_grace(Duration::from_millis(200));
    let err = builder
        .build()
        .expect("build")
        .run(&qemu("vm1", "start", "begin", "-"))
        .expect_err("timed out");
    let run = &err.outcome().expect("outcome").scripts[0];
    assert_eq!(run.status, ScriptStatus::Signaled { signal: libc::SIGKILL });
}

#[test]
fn leftover_background_process_is_a_warning_after_the_drain_window() {
    let hooks = Hooks::new();
    // The background sleep keeps stdout and stderr open.
    hooks.script("qemu", "cat >/dev/null; sleep 5 & echo done");
    let mut builder = hooks.builder();
    builder.drain_window(Some(Duration::from_millis(200)));
    let outcome =
        builder.build().expect("build").run(&qemu("vm1", "start", "begin", "-")).expect("run");
    assert!(outcome.succeeded());
    assert_eq!(outcome.scripts[0].stdout, b"done\n");
    assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    assert!(outcome.warnings[0].contains("left running"), "{}", outcome.warnings[0]);
}

#[test]
fn capture_limits_truncate_but_keep_draining() {
    let hooks = Hooks::new();
    hooks.script(
        "qemu",
        "cat >/dev/null; head -c 100000 /dev/zero; printf '0123456789abcdef' >&2; exit 1",
    );
    let mut builder = hooks.builder();
    builder.stdout_limit(1000).stderr_limit(10);
    let err = builder
        .build()
        .expect("build")
        .run(&qemu("vm1", "start", "begin", "-"))
        .expect_err("fails");
    assert!(err.to_string().ends_with("unexpected exit status 1: 0123456789"), "{err}");
    let run = &err.outcome().expect("outcome").scripts[0];
    assert_eq!(run.stdout.len(), 1000);
    assert!(run.stdout_truncated && run.stderr_truncated);

    // A filter output beyond its limit fails the script.
    hooks.script("qemu", "cat");
    let mut builder = hooks.builder();
    builder.filter_output_limit(10);
    let err = builder
        .build()
        .expect("build")
        .run(&qemu("vm1", "restore", "begin", "-"))
        .expect_err("too large");
    assert!(err.to_string().contains("exceeds the limit of 10 bytes"), "{err}");
    assert_eq!(err.outcome().expect("outcome").output, None);
}

/// Not a test: prints the cost of an event with no hooks and of one trivial
/// script. `cargo test -p virt-hooks --release -- --ignored --nocapture costs`
#[test]
#[ignore = "measurement, not a test"]
#[allow(clippy::print_stderr)]
fn costs() {
    let hooks = Hooks::new();
    let runner = hooks.runner();
    let none = Event::new("daemon", "-", "start", "-", "start");
    let n = 100_000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        runner.run(&none).expect("run");
    }
    eprintln!("no hooks: {:?} per event", t.elapsed() / n);
    hooks.file("daemon", b"#!/bin/true\n", 0o755);
    std::fs::copy("/bin/true", hooks.path().join("daemon")).expect("copy");
    let n = 500;
    let t = std::time::Instant::now();
    for _ in 0..n {
        runner.run(&none).expect("run");
    }
    eprintln!("one /bin/true: {:?} per event", t.elapsed() / n);
    hooks.script("daemon", "exit 0");
    let t = std::time::Instant::now();
    for _ in 0..n {
        runner.run(&none).expect("run");
    }
    eprintln!("one #!/bin/sh script: {:?} per event", t.elapsed() / n);
}
