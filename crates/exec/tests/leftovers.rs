//! Processes a child leaves behind holding its output: read for the drain
//! window only, then reported, and killed if the limits say so.

use std::time::{Duration, Instant};

use crate::util::{alive, gone, kill, limits, ms, read_pid, sh};

#[test]
fn a_background_child_holding_stdout_is_reported_after_the_drain_window() {
    let dir = tempfile::tempdir().expect("dir");
    let pidfile = dir.path().join("bg.pid");
    let script = format!("sleep 30 & echo $! > '{}'; echo done", pidfile.display());
    let started = Instant::now();
    let finished = sh(&script).run_with(None, &limits(|l| l.drain = Some(ms(200))), None);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(finished.stdout.data, b"done\n");
    assert!(!finished.timed_out && !finished.cancelled);
    let left = finished.leftovers.expect("reported");
    assert_eq!(left.pgid, finished.pid, "the child's own group");
    assert_eq!((left.count, left.killed), (1, false));
    let bg = read_pid(&pidfile);
    assert!(alive(bg), "left running by default");
    kill(bg);
}

#[test]
fn kill_leftovers_kills_them_all_before_the_call_returns() {
    let dir = tempfile::tempdir().expect("dir");
    let pidfile = dir.path().join("bg.pid");
    let script = format!("sleep 30 & sleep 30 & echo $! > '{}'; echo done", pidfile.display());
    let lim = limits(|l| (l.drain, l.kill_leftovers) = (Some(ms(200)), true));
    let finished = sh(&script).run_with(None, &lim, None);
    let left = finished.leftovers.expect("reported");
    assert_eq!((left.count, left.killed), (2, true));
    assert!(!alive(read_pid(&pidfile)), "gone at once, not eventually");
}

#[test]
fn a_holder_that_left_the_group_counts_zero_and_is_not_claimed_killed() {
    let dir = tempfile::tempdir().expect("dir");
    let pidfile = dir.path().join("escaped.pid");
    let script =
        format!("setsid sh -c 'echo $$ > \"{}\"; exec sleep 30' & echo done", pidfile.display());
    let lim = limits(|l| (l.drain, l.kill_leftovers) = (Some(ms(300)), true));
    let finished = sh(&script).run_with(None, &lim, None);
    let escaped = read_pid(&pidfile);
    let left = finished.leftovers.expect("reported");
    assert_eq!((left.count, left.killed), (0, false), "nothing of the group was there to kill");
    assert!(alive(escaped));
    kill(escaped);
    assert!(gone(escaped));
}

#[test]
fn without_a_drain_window_late_output_is_read_to_end_of_file() {
    let finished = sh("(sleep 0.3; echo late) & echo early").run();
    assert_eq!(finished.stdout.data, b"early\nlate\n");
    assert!(finished.leftovers.is_none());
}

#[test]
fn a_child_that_closes_its_output_early_is_waited_for() {
    // End of file long before the exit: the exit still counts.
    let finished = sh("exec >&- 2>&-; sleep 0.3; exit 7").run();
    assert_eq!(finished.status.expect("status"), virt_hooks_exec::WaitStatus::Exited { code: 7 });
    assert!(finished.duration >= ms(300));
}
