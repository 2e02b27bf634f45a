//! Never hang, never leak: hung hooks, leftovers, floods, cancellation,
//! and descriptor and zombie accounting under concurrency.
#![allow(unsafe_code)]

use std::{
    fs,
    path::Path,
    process::Command,
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use virt_hooks::{Cancel, Event, LeftoverPolicy, RunError, ScriptStatus};

use crate::util::{Hooks, qemu};

/// Returns true if and only if `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match fs::read(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let close = stat.iter().rposition(|&b| b == b')').expect("comm");
            stat.get(close + 2) != Some(&b'Z')
        }
    }
}

/// Waits up to 2 s for `pid` to be gone.
fn gone(pid: u32) -> bool {
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        if !alive(pid) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Waits up to 5 s for `path` to hold a pid.
fn read_pid(path: &Path) -> u32 {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(pid) = fs::read_to_string(path).ok().and_then(|text| text.trim().parse().ok()) {
            return pid;
        }
        assert!(Instant::now() < until, "no pid in {}", path.display());
        thread::sleep(Duration::from_millis(10));
    }
}

fn kill(pid: u32) {
    // Cleanup only; the process may be gone already.
    let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
}

#[test]
fn a_hung_hook_is_killed_on_time_with_its_whole_group() {
    let hooks = Hooks::new();
    let pidfile = hooks.path().join("grandchild.pid");
    hooks.script(
        "qemu",
        &format!("sleep 30 & echo $! > '{}'; cat >/dev/null; sleep 30", pidfile.display()),
    );
    let mut builder = hooks.builder();
    builder.timeout(Duration::from_millis(300)).kill_grace(Duration::from_millis(200));
    let started = Instant::now();
    let err = builder
        .build()
        .expect("build")
        .run(&qemu("vm1", "start", "begin", "-"))
        .expect_err("timed out");
    assert!(started.elapsed() < Duration::from_secs(10), "returned long before the sleep ends");
    let run = &err.outcome().expect("outcome").scripts[0];
    assert!(run.timed_out && run.pid.is_some());
    let grandchild = read_pid(&pidfile);
    assert!(gone(grandchild), "the grandchild {grandchild} was killed with the group");
}

#[test]
fn a_timed_out_group_is_killed_even_when_its_leftovers_ignore_sigterm() {
    let hooks = Hooks::new();
    let pidfile = hooks.path().join("stubborn.pid");
    hooks.script(
        "qemu",
        &format!(
            "(trap '' TERM; sleep 30) & echo $! > '{}'; cat >/dev/null; sleep 30",
            pidfile.display()
        ),
    );
    let mut builder = hooks.builder();
    builder
        .timeout(Duration::from_millis(300))
        .kill_grace(Duration::from_secs(20))
        .drain_window(Some(Duration::from_millis(200)));
    let started = Instant::now();
    let err = builder
        .build()
        .expect("build")
        .run(&qemu("vm1", "start", "begin", "-"))
        .expect_err("timed out");
    assert!(started.elapsed() < Duration::from_secs(10), "did not wait for the 20 s grace");
    let run = &err.outcome().expect("outcome").scripts[0];
    assert!(run.timed_out);
    let left = run.leftovers.as_ref().expect("leftovers");
    assert!(left.killed && left.count >= 1, "{left:?}");
    assert!(gone(read_pid(&pidfile)), "the stubborn subshell was killed");
}

#[test]
fn a_background_child_holding_stdout_is_reported_after_the_drain_window() {
    let hooks = Hooks::new();
    let pidfile = hooks.path().join("bg.pid");
    hooks.script("qemu", &format!("sleep 30 & echo $! > '{}'; echo done", pidfile.display()));
    let mut builder = hooks.builder();
    builder.drain_window(Some(Duration::from_millis(200)));
    let started = Instant::now();
    let outcome = builder.build().expect("build").run(&qemu("vm1", "start", "begin", "-"));
    let elapsed = started.elapsed();
    let bg = read_pid(&pidfile);
    let outcome = outcome.expect("run");
    assert!(elapsed < Duration::from_secs(10), "returned within the drain window: {elapsed:?}");
    let run = &outcome.scripts[0];
    assert_eq!(run.stdout, b"done\n");
    let left = run.leftovers.as_ref().expect("leftovers reported");
    assert_eq!(Some(left.pgid), run.pid, "the hook's own group");
    assert_eq!((left.count, left.killed), (1, false));
    assert!(alive(bg), "left running under the leave policy");
    assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    assert!(
        outcome.warnings[0].contains("1 process(es)")
            && outcome.warnings[0].contains("left running"),
        "{}",
        outcome.warnings[0]
    );
    kill(bg);
}

#[test]
fn the_kill_policy_kills_the_leftovers() {
    let hooks = Hooks::new();
    let pidfile = hooks.path().join("bg.pid");
    hooks.script(
        "qemu",
        &format!("sleep 30 & sleep 30 & echo $! > '{}'; echo done", pidfile.display()),
    );
    let mut builder = hooks.builder();
    builder.drain_window(Some(Duration::from_millis(200))).leftovers(LeftoverPolicy::Kill);
    let outcome =
        builder.build().expect("build").run(&qemu("vm1", "start", "begin", "-")).expect("run");
    let left = outcome.scripts[0].leftovers.as_ref().expect("leftovers reported");
    assert_eq!((left.count, left.killed), (2, true));
    let warning = &outcome.warnings[0];
    assert!(warning.contains("2 process(es) it started are still running"), "{warning}");
    assert!(warning.contains("; killed 2 processes (pids "), "{warning}");
    assert!(gone(read_pid(&pidfile)), "killed");
}

#[test]
fn sixty_four_mib_to_a_hook_that_ignores_stdin_and_floods_both_outputs() {
    let hooks = Hooks::new();
    hooks.script("qemu", "head -c 20000000 /dev/zero >&2 & head -c 20000000 /dev/zero; wait");
    let doc = vec![b'x'; 64 << 20];
    let event = Event::new("qemu", "vm1", "start", "begin", "-").with_input(&doc);
    let outcome = hooks.runner().run(&event).expect("run");
    let run = &outcome.scripts[0];
    assert_eq!(run.status, ScriptStatus::Exited { code: 0 });
    assert_eq!((run.stdout.len(), run.stderr.len()), (1 << 20, 1 << 20));
    assert!(run.stdout_truncated && run.stderr_truncated);
    assert_eq!(run.input_len, Some(64 << 20));
}

#[test]
fn stdin_closed_early() {
    let hooks = Hooks::new();
    hooks.script("qemu", "exec 0<&-; sleep 0.1; echo ok");
    let doc = vec![b'x'; 4 << 20];
    let event = Event::new("qemu", "vm1", "start", "begin", "-").with_input(&doc);
    let outcome = hooks.runner().run(&event).expect("run");
    assert_eq!(outcome.scripts[0].stdout, b"ok\n");
}

#[test]
fn cancellation_from_another_thread_kills_the_group_and_runs_nothing_more() {
    let hooks = Hooks::new();
    let pidfile = hooks.path().join("grandchild.pid");
    let marker = hooks.path().join("second-ran");
    hooks.script(
        "qemu",
        &format!("sleep 30 & echo $! > '{}'; cat >/dev/null; sleep 30", pidfile.display()),
    );
    hooks.script("qemu.d/next", &format!("touch '{}'", marker.display()));
    let runner = hooks.runner();
    let cancel = Cancel::new().expect("cancel");
    let trigger = {
        let cancel = cancel.clone();
        let pidfile = pidfile.clone();
        thread::spawn(move || {
            read_pid(&pidfile);
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let err = runner.run_with(&qemu("vm1", "start", "begin", "-"), &cancel).expect_err("cancel");
    assert!(started.elapsed() < Duration::from_secs(10), "returned long before the sleep ends");
    trigger.join().expect("thread");
    let RunError::Cancelled { ref driver, ref outcome, .. } = err else {
        panic!("not a cancellation: {err}")
    };
    assert_eq!(driver, "qemu");
    assert_eq!(err.to_string(), "the hook scripts of 'qemu start' were cancelled");
    assert_eq!(outcome.scripts.len(), 1, "no further script ran");
    let run = &outcome.scripts[0];
    assert!(run.cancelled);
    assert_eq!(run.status, ScriptStatus::Signaled { signal: libc::SIGTERM });
    assert!(run.error.as_deref().is_some_and(|e| e.contains("was cancelled")));
    assert!(!marker.exists());
    assert!(gone(read_pid(&pidfile)), "the group is gone");
    // The hook itself was reaped: waiting for it again finds no child.
    let pid = run.pid.expect("pid") as libc::pid_t;
    // SAFETY: a non-blocking waitpid for one specific pid.
    let rc = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
    assert_eq!(rc, -1, "no zombie left for {pid}");

    // Cancelled stays cancelled: the next run starts nothing.
    let err = runner.run_with(&qemu("vm1", "start", "begin", "-"), &cancel).expect_err("cancel");
    assert!(err.outcome().expect("outcome").scripts.is_empty());
}

/// Runs this test binary's `accounting_helper` in a new process: counting
/// descriptors and reaping children is only meaningful in a process where
/// no other test runs.
#[test]
fn no_descriptor_or_zombie_leaks_under_concurrency() {
    let hooks = Hooks::new();
    hooks.script("qemu", "cat >/dev/null; echo ok");
    hooks.script("qemu.d/fail", "echo failing >&2; exit 3");
    let exe = std::env::current_exe().expect("current exe");
    let status = Command::new(exe)
        .env("VH_ACCOUNTING_DIR", hooks.path())
        .args(["--exact", "robust::accounting_helper", "--ignored", "--test-threads=1", "-q"])
        .status()
        .expect("spawn the helper");
    assert!(status.success(), "helper failed: {status:?}");
}

fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").expect("fds").count()
}

#[test]
#[ignore = "helper process for no_descriptor_or_zombie_leaks_under_concurrency"]
fn accounting_helper() {
    let Some(dir) = std::env::var_os("VH_ACCOUNTING_DIR") else { return };
    let mut builder = virt_hooks::RunnerBuilder::new(crate::util::registry());
    builder.hooks_dir(&dir);
    let runner = Arc::new(builder.build().expect("build"));
    let before = open_fds();
    let handles: Vec<_> = (0..32)
        .map(|t| {
            let runner = Arc::clone(&runner);
            thread::spawn(move || {
                for i in 0..63 {
                    let name = format!("vm{t}-{i}");
                    if i % 2 == 0 {
                        // release ignores failures.
                        let event = qemu(&name, "release", "end", "-");
                        let outcome = runner.run(&event).expect("run");
                        assert_eq!(outcome.scripts.len(), 2);
                    } else {
                        let cancel = Cancel::new().expect("cancel");
                        let event = qemu(&name, "start", "begin", "-");
                        let err = runner.run_with(&event, &cancel).expect_err("refused");
                        assert!(matches!(err, RunError::Refused { .. }), "{err}");
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    assert_eq!(open_fds(), before, "every descriptor was closed");
    // SAFETY: a non-blocking wait for any child of this helper process.
    let rc = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
    let err = std::io::Error::last_os_error();
    assert_eq!(rc, -1, "no child left to reap");
    assert_eq!(err.raw_os_error(), Some(libc::ECHILD), "no child at all: {err}");
}
