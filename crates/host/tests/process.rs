//! What the hook process sees. The environment and SIGPIPE tests run a copy
//! of this test binary under `env -i` (the test process's own environment
//! cannot be changed safely while other tests run).
#![allow(unsafe_code)]

use std::{fs, path::Path, process::Command};

use virt_hooks::{Event, RunnerBuilder};

use crate::util::{Hooks, daemon_start, qemu, registry};

/// Runs `process::child_helper` in a new process with exactly `env`.
fn run_child(dir: &Path, env: &[(&str, &str)]) {
    let exe = std::env::current_exe().expect("current exe");
    let status = Command::new(exe)
        .env_clear()
        .envs(env.iter().copied())
        .env("VH_CHILD_DIR", dir)
        .args(["--exact", "process::child_helper", "--ignored", "--test-threads=1", "-q"])
        .status()
        .expect("spawn the helper");
    assert!(status.success(), "helper failed: {status:?}");
}

/// The helper: runs one failing `daemon start` and writes what it got, then
/// feeds 10 MiB to a script that exits at once, with SIGPIPE at its default
/// disposition. Does nothing in a normal test run.
#[test]
#[ignore = "helper process for the tests in this module"]
fn child_helper() {
    let Some(dir) = std::env::var_os("VH_CHILD_DIR") else { return };
    // SAFETY: single-threaded helper process; SIG_DFL is a valid disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let dir = Path::new(&dir);
    let mut builder = RunnerBuilder::new(registry());
    builder.hooks_dir(dir.join("hooks"));
    let runner = builder.build().expect("build");
    let err = runner.run(&daemon_start()).expect_err("the daemon hook fails");
    fs::write(dir.join("message"), err.to_string()).expect("write");
    let big = vec![b'x'; 10 << 20];
    let outcome = runner
        .run(&Event::new("qemu", "vm1", "restore", "begin", "-").with_input(&big))
        .expect("a script that does not read its input succeeds");
    assert_eq!(outcome.scripts.len(), 1);
    fs::write(dir.join("sigpipe"), "survived").expect("write");
}

fn child_hooks() -> (Hooks, std::path::PathBuf) {
    let hooks = Hooks::new();
    let out = hooks.path().join("env.out");
    let daemon = hooks.script(
        "hooks/daemon",
        &format!("tr '\\0' '\\n' < /proc/$$/environ > '{}'; exit 1", out.display()),
    );
    hooks.script("hooks/qemu", "exit 0");
    (hooks, daemon)
}

#[test]
fn environment_is_cleared_with_lc_all_and_path_only() {
    let (hooks, daemon) = child_hooks();
    run_child(hooks.path(), &[("PATH", "/usr/bin:/bin"), ("LANG", "de_DE.UTF-8")]);
    assert_eq!(hooks.read("env.out"), "LC_ALL=C\nPATH=/usr/bin:/bin\n");
    assert_eq!(
        hooks.read("message"),
        format!(
            "Hook script execution failed: internal error: Child process (LC_ALL=C PATH=/usr/bin:/bin {} - start - start) unexpected exit status 1",
            daemon.display()
        )
    );
    assert_eq!(hooks.read("sigpipe"), "survived");
}

#[test]
fn pass_through_variables_in_libvirts_order() {
    let (hooks, daemon) = child_hooks();
    run_child(
        hooks.path(),
        &[
            ("TMPDIR", "/tmp"),
            ("LOGNAME", "ln"),
            ("USER", "u"),
            ("HOME", "/my home"),
            ("PATH", "/usr/bin:/bin"),
            ("LD_LIBRARY_PATH", "/nonexistent-lib"),
            ("LC_ALL", "de_DE.UTF-8"),
            ("SHELL", "/bin/bash"),
        ],
    );
    assert_eq!(
        hooks.read("env.out"),
        "LC_ALL=C\nLD_LIBRARY_PATH=/nonexistent-lib\nPATH=/usr/bin:/bin\nHOME=/my home\nUSER=u\nLOGNAME=ln\nTMPDIR=/tmp\n"
    );
    assert_eq!(
        hooks.read("message"),
        format!(
            "Hook script execution failed: internal error: Child process (LC_ALL=C LD_LIBRARY_PATH=/nonexistent-lib PATH=/usr/bin:/bin HOME='/my home' USER=u LOGNAME=ln TMPDIR=/tmp {} - start - start) unexpected exit status 1",
            daemon.display()
        )
    );
}

#[test]
fn only_fds_0_1_2_are_open_even_without_close_on_exec() {
    let hooks = Hooks::new();
    let file = hooks.file("leak", b"", 0o644);
    let c_path = std::ffi::CString::new(file.to_str().expect("utf-8")).expect("c path");
    // SAFETY: plain open/dup2 of a path we own; no O_CLOEXEC on purpose.
    let (fd, leaked) = unsafe {
        let fd = libc::open(c_path.as_ptr(), libc::O_RDONLY);
        (fd, libc::dup2(fd, 900))
    };
    assert!(fd >= 0 && leaked == 900);
    hooks.script("qemu", "exec ls /proc/self/fd");
    let outcome = hooks.runner().run(&qemu("vm1", "start", "begin", "-"));
    // SAFETY: closing the two descriptors opened above.
    unsafe {
        libc::close(fd);
        libc::close(leaked);
    }
    // `3` is the directory ls itself opened.
    assert_eq!(outcome.expect("run").scripts[0].stdout, b"0\n1\n2\n3\n");
}

#[test]
fn signals_are_default_and_unblocked_and_the_hook_has_its_own_group() {
    let hooks = Hooks::new();
    hooks.script("qemu", "exec grep -E '^Sig(Blk|Ign):' /proc/self/status");
    hooks.script("qemu.d/pgrp", "exec cat /proc/self/stat");
    // This thread blocks SIGUSR1 and SIGTERM; the test process ignores
    // SIGPIPE (the Rust runtime does that at start-up).
    // SAFETY: initialised sigsets; the mask is restored below.
    let old = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    };
    let outcome = hooks.runner().run(&qemu("vm1", "start", "begin", "-"));
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    let outcome = outcome.expect("run");
    assert_eq!(
        outcome.scripts[0].stdout,
        b"SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
    let stat = String::from_utf8(outcome.scripts[1].stdout.clone()).expect("utf-8");
    let pid = stat.split(' ').next().expect("pid");
    let after_comm = &stat[stat.rfind(')').expect("comm") + 2..];
    let pgrp = after_comm.split(' ').nth(2).expect("pgrp");
    assert_eq!(pgrp, pid, "each hook leads its own process group: {stat}");
}

#[test]
fn stdin_is_dev_null_without_input() {
    let hooks = Hooks::new();
    hooks.script("daemon", "readlink /proc/self/fd/0; readlink /proc/self/fd/1; exit 0");
    let outcome = hooks.runner().run(&daemon_start()).expect("run");
    let out = String::from_utf8(outcome.scripts[0].stdout.clone()).expect("utf-8");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("/dev/null"));
    assert!(lines.next().expect("fd 1").starts_with("pipe:"));
}
