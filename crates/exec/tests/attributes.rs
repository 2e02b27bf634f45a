//! What the child gets: libvirt's process state, whatever the caller's.
#![allow(unsafe_code)]

use virt_hooks_exec::WaitStatus;

use crate::util::sh;

#[test]
fn only_fds_0_1_2_are_open_even_when_the_caller_leaked_one() {
    let file = tempfile::tempfile().expect("temp file");
    // A descriptor a careless caller leaks: no close-on-exec.
    let leaked = rustix::io::fcntl_dupfd_cloexec(&file, 900).expect("dup");
    rustix::io::fcntl_setfd(&leaked, rustix::io::FdFlags::empty()).expect("setfd");
    let flags = rustix::io::fcntl_getfd(&leaked).expect("getfd");
    assert!(!flags.contains(rustix::io::FdFlags::CLOEXEC), "really inheritable");
    let finished = sh("exec ls /proc/self/fd").run();
    drop(leaked);
    // `3` is the directory ls itself opened.
    assert_eq!(finished.stdout.data, b"0\n1\n2\n3\n");
}

#[test]
fn signals_are_default_and_unblocked_whatever_the_caller_blocks_or_ignores() {
    // This thread blocks SIGUSR1 and SIGTERM; the process ignores SIGPIPE
    // (Rust does at start-up) and SIGURG (set here; harmless to the other
    // tests, whose children must reset it too).
    // SAFETY: initialised sigsets; SIG_IGN is a valid disposition; the mask
    // is restored below.
    let old = unsafe {
        libc::signal(libc::SIGURG, libc::SIG_IGN);
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    };
    let finished = sh("exec grep -E '^Sig(Blk|Ign):' /proc/self/status").run();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    assert_eq!(finished.stdout.data, b"SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

#[test]
fn the_child_leads_a_process_group_of_its_own() {
    let finished = sh("exec cat /proc/self/stat").run();
    let stat = String::from_utf8(finished.stdout.data).expect("utf-8");
    let after_comm = &stat[stat.rfind(')').expect("comm") + 2..];
    let pgrp: u32 = after_comm.split(' ').nth(2).expect("pgrp").parse().expect("number");
    assert_eq!(pgrp, finished.pid, "{stat}");
    let ours = rustix::process::getpgrp().as_raw_nonzero().get().unsigned_abs();
    assert_ne!(pgrp, ours, "not the caller's group");
}

#[test]
fn the_environment_is_exactly_envp_and_argv_is_as_given() {
    let finished = sh(r#"tr '\0' '\n' < /proc/$$/environ; printf '%s|' "$0" "$1" "$2""#)
        .env(&["B=2", "A=a b", "EMPTY="])
        .args(&["x y", ""])
        .run();
    assert_eq!(finished.stdout.data, b"B=2\nA=a b\nEMPTY=\nsh|x y||");
    assert_eq!(finished.status.expect("status"), WaitStatus::Exited { code: 0 });
}

#[test]
fn stdin_is_dev_null_without_input_and_a_pipe_with_one() {
    let probe = sh("readlink /proc/self/fd/0; cat");
    let none = probe.run();
    assert_eq!(none.stdout.data, b"/dev/null\n");
    let some = probe.run_with(Some(b"doc"), &Default::default(), None);
    let out = String::from_utf8(some.stdout.data).expect("utf-8");
    assert!(out.starts_with("pipe:[") && out.ends_with("]\ndoc"), "{out}");
    let empty = probe.run_with(Some(b""), &Default::default(), None);
    assert!(empty.stdout.data.starts_with(b"pipe:["), "an empty input is still a pipe");
    assert!(empty.stdout.data.ends_with(b"]\n"), "at end of file at once");
}
