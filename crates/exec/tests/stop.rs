//! Stopping a child: at the timeout or on a cancellation its whole group
//! gets SIGTERM, then SIGKILL after the grace period; the call returns once
//! it is reaped and nothing of the group is alive.

use std::{
    thread,
    time::{Duration, Instant},
};

use virt_hooks_exec::{Cancel, WaitStatus};

use crate::util::{alive, gone, kill, limits, ms, read_pid, sh};

#[test]
fn a_timeout_terminates_the_child_and_its_whole_group() {
    let dir = tempfile::tempdir().expect("dir");
    let pidfile = dir.path().join("grandchild.pid");
    let script = format!("sleep 30 & echo $! > '{}'; sleep 30", pidfile.display());
    let started = Instant::now();
    let finished = sh(&script).run_with(None, &limits(|l| l.timeout = Some(ms(300))), None);
    let elapsed = started.elapsed();
    assert!(elapsed >= ms(300) && elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(finished.timed_out && !finished.cancelled);
    assert_eq!(finished.status.expect("status"), WaitStatus::Signaled { signal: 15 });
    let grandchild = read_pid(&pidfile);
    assert!(!alive(grandchild), "the group is gone when the call returns");
}

#[test]
fn a_child_that_ignores_sigterm_is_killed_when_the_grace_ends() {
    let dir = tempfile::tempdir().expect("dir");
    let pidfile = dir.path().join("stubborn.pid");
    // The ignored SIGTERM is inherited by every sleep it starts.
    let script = format!(
        "trap '' TERM; sleep 30 & echo $! > '{}'; while :; do sleep 1; done",
        pidfile.display()
    );
    let lim = limits(|l| (l.timeout, l.grace) = (Some(ms(200)), ms(400)));
    let started = Instant::now();
    let finished = sh(&script).run_with(None, &lim, None);
    let elapsed = started.elapsed();
    assert!(elapsed >= ms(600), "SIGKILL came only after the grace: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "but it came: {elapsed:?}");
    assert!(finished.timed_out);
    assert_eq!(finished.status.expect("status"), WaitStatus::Signaled { signal: 9 });
    assert!(!alive(read_pid(&pidfile)), "the stubborn grandchild too");
}

#[test]
fn a_leftover_that_ignores_sigterm_does_not_hold_the_call_for_the_grace() {
    let dir = tempfile::tempdir().expect("dir");
    let pidfile = dir.path().join("stubborn.pid");
    // The child dies on SIGTERM; its subshell ignores it and keeps the pipes.
    let script = format!("(trap '' TERM; sleep 30) & echo $! > '{}'; sleep 30", pidfile.display());
    let lim = limits(|l| {
        (l.timeout, l.grace, l.drain) = (Some(ms(300)), Duration::from_secs(30), Some(ms(200)));
    });
    let started = Instant::now();
    let finished = sh(&script).run_with(None, &lim, None);
    assert!(started.elapsed() < Duration::from_secs(10), "did not wait for the 30 s grace");
    assert!(finished.timed_out);
    let left = finished.leftovers.expect("leftovers");
    assert_eq!(left.pgid, finished.pid);
    assert!(left.killed && left.count >= 1, "{left:?}");
    assert!(!alive(read_pid(&pidfile)), "killed, and gone when the call returns");
}

#[test]
fn a_timeout_also_bounds_the_wait_for_end_of_file() {
    // No drain window (wait for end of file, as libvirt does), and a
    // background child holding stdout: the timeout still ends the call.
    let dir = tempfile::tempdir().expect("dir");
    let pidfile = dir.path().join("bg.pid");
    let script = format!("sleep 30 & echo $! > '{}'; echo done", pidfile.display());
    let started = Instant::now();
    let finished = sh(&script).run_with(None, &limits(|l| l.timeout = Some(ms(300))), None);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(finished.timed_out);
    assert_eq!(finished.status.expect("status"), WaitStatus::Exited { code: 0 });
    assert_eq!(finished.stdout.data, b"done\n");
    assert!(!alive(read_pid(&pidfile)));
}

#[test]
fn a_cancellation_from_another_thread_stops_and_reaps_the_child() {
    let dir = tempfile::tempdir().expect("dir");
    let pidfile = dir.path().join("grandchild.pid");
    let script = format!("sleep 30 & echo $! > '{}'; sleep 30", pidfile.display());
    let cancel = Cancel::new().expect("cancel");
    let trigger = {
        let (cancel, pidfile) = (cancel.clone(), pidfile.clone());
        thread::spawn(move || {
            read_pid(&pidfile);
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let finished = sh(&script).run_with(None, &Default::default(), Some(&cancel));
    assert!(started.elapsed() < Duration::from_secs(10));
    trigger.join().expect("thread");
    assert!(finished.cancelled && !finished.timed_out);
    assert_eq!(finished.status.expect("status"), WaitStatus::Signaled { signal: 15 });
    assert!(!alive(read_pid(&pidfile)), "the group is gone");
    // Reaped: no zombie left for it.
    let pid = rustix::process::Pid::from_raw(finished.pid as i32).expect("pid");
    let again = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
    assert_eq!(again.map(|_| ()), Err(rustix::io::Errno::CHILD));
}

#[test]
fn an_already_cancelled_switch_stops_the_child_at_once() {
    let cancel = Cancel::new().expect("cancel");
    cancel.cancel();
    cancel.cancel();
    assert!(cancel.is_cancelled(), "stays cancelled");
    let started = Instant::now();
    let finished = sh("sleep 30").run_with(None, &Default::default(), Some(&cancel));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(finished.cancelled);
    assert_eq!(finished.status.expect("status"), WaitStatus::Signaled { signal: 15 });
}

#[test]
fn a_cancellation_cuts_the_wait_for_end_of_file_short() {
    // The child exited; its background child holds stdout and there is no
    // drain window: only the cancellation ends the call.
    let dir = tempfile::tempdir().expect("dir");
    let pidfile = dir.path().join("bg.pid");
    let script = format!("sleep 30 & echo $! > '{}'; echo done", pidfile.display());
    let cancel = Cancel::new().expect("cancel");
    let trigger = {
        let cancel = cancel.clone();
        thread::spawn(move || {
            thread::sleep(ms(300));
            cancel.cancel();
        })
    };
    let finished = sh(&script).run_with(None, &Default::default(), Some(&cancel));
    trigger.join().expect("thread");
    assert_eq!(finished.status.expect("status"), WaitStatus::Exited { code: 0 });
    assert!(!finished.cancelled, "the child itself had ended");
    let left = finished.leftovers.expect("reported");
    assert_eq!((left.count, left.killed), (1, false), "left to the caller's policy");
    let bg = read_pid(&pidfile);
    assert!(alive(bg));
    kill(bg);
    assert!(gone(bg));
}

#[test]
fn the_signal_fd_cancels() {
    let cancel = Cancel::new().expect("cancel");
    let fd = cancel.signal_fd().expect("fd");
    rustix::io::write(&fd, b"x").expect("write");
    assert!(cancel.is_cancelled());
}
