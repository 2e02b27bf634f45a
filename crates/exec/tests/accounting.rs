//! Nothing leaks: after many runs of every kind (success, failure, exec
//! error, timeout, cancellation, leftovers), concurrently, the process has
//! the descriptors it had before and no child left to reap. And a child that
//! does not read its input cannot kill a caller whose SIGPIPE is at its
//! default. Each in a process of its own, where no other test runs.
#![allow(unsafe_code)]

use std::{fs, sync::Arc, thread};

use virt_hooks_exec::{Cancel, Command, Limits, WaitStatus, run};

use crate::util::{in_own_process, limits, ms, sh};

#[test]
fn no_descriptor_or_zombie_leaks_under_concurrency() {
    in_own_process("accounting::accounting_helper", &[("VH_EXEC_HELPER", "1")]);
}

#[test]
fn sigpipe_at_its_default_does_not_kill_the_caller() {
    in_own_process("accounting::sigpipe_helper", &[("VH_EXEC_HELPER", "1")]);
}

fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").expect("fds").count()
}

/// One run of each kind.
fn every_kind(i: usize) {
    let input = vec![b'x'; 100_000];
    match i % 6 {
        0 => assert!(sh("cat").run_with(Some(&input), &Limits::default(), None).status.is_ok()),
        1 => {
            let status = sh("echo no >&2; exit 3").run().status.expect("status");
            assert_eq!(status, WaitStatus::Exited { code: 3 });
        }
        2 => {
            let argv = [c"/nonexistent".to_owned()];
            let command = Command::new(c"/nonexistent", &argv, &[]);
            assert!(run(&command, &Limits::default(), None).is_err());
        }
        3 => {
            let lim = limits(|l| (l.timeout, l.grace) = (Some(ms(50)), ms(50)));
            assert!(sh("trap '' TERM; sleep 5").run_with(None, &lim, None).timed_out);
        }
        4 => {
            let cancel = Cancel::new().expect("cancel");
            cancel.cancel();
            assert!(
                sh("sleep 5").run_with(Some(&input), &Limits::default(), Some(&cancel)).cancelled
            );
        }
        _ => {
            let lim = limits(|l| (l.drain, l.kill_leftovers) = (Some(ms(50)), true));
            let finished = sh("sleep 5 & echo done").run_with(None, &lim, None);
            assert!(finished.leftovers.expect("leftovers").killed);
        }
    }
}

#[test]
#[ignore = "helper process for no_descriptor_or_zombie_leaks_under_concurrency"]
fn accounting_helper() {
    if std::env::var_os("VH_EXEC_HELPER").is_none() {
        return;
    }
    let before = open_fds();
    let handles: Vec<_> =
        (0..8).map(|t| thread::spawn(move || (0..12).for_each(|i| every_kind(t + i)))).collect();
    for h in handles {
        h.join().expect("thread");
    }
    assert_eq!(open_fds(), before, "every descriptor was closed");
    let waited = rustix::process::waitpid(None, rustix::process::WaitOptions::NOHANG);
    assert_eq!(waited.map(|_| ()), Err(rustix::io::Errno::CHILD), "no child at all");
}

#[test]
#[ignore = "helper process for sigpipe_at_its_default_does_not_kill_the_caller"]
fn sigpipe_helper() {
    if std::env::var_os("VH_EXEC_HELPER").is_none() {
        return;
    }
    // SAFETY: a single-threaded helper process; SIG_DFL is a valid
    // disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let input = Arc::new(vec![b'x'; 10 << 20]);
    for script in ["exit 0", "exec 0<&-; sleep 0.2", "head -c 1 >/dev/null"] {
        let finished = sh(script).run_with(Some(&input), &Limits::default(), None);
        assert!(finished.status.expect("status").success(), "{script}");
    }
    // Still alive, and SIGPIPE is neither blocked nor pending afterwards.
    // SAFETY: valid sigsets to fill.
    let (blocked, pending) = unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
        libc::sigpending(&mut pending);
        (libc::sigismember(&mask, libc::SIGPIPE), libc::sigismember(&pending, libc::SIGPIPE))
    };
    assert_eq!((blocked, pending), (0, 0));
}
