//! Through the binary: nothing a hook starts escapes `virt-hook` (setpgid,
//! setsid, double fork, `set -m`, nohup), whatever signal state the launcher
//! left, whatever signal ends it; and no configuration can make it panic.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use virt_hooks_e2e::{HooksDir, binary};

/// Generous: only a call that waits for the script (30 s and more) crosses it.
const BOUND: Duration = Duration::from_secs(15);

fn virt_hook(dir: &HooksDir, config: &str, args: &[&str]) -> Command {
    let conf = dir.path().join("virt-hooks.toml");
    fs::write(&conf, config).unwrap();
    let mut cmd = Command::new(binary());
    cmd.env_remove("VIRT_HOOKS_PLUGIN_PATH")
        .env_remove("VIRT_HOOKS_DIR")
        .env_remove("RUST_LOG")
        .arg("--config")
        .arg(&conf)
        .arg("--hooks-dir")
        .arg(dir.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn run_daemon(dir: &HooksDir, config: &str, timeout: &str) -> (Output, Duration) {
    let started = Instant::now();
    let timeout = format!("--timeout={timeout}");
    let args = ["run", &timeout, "daemon", "-", "start", "-", "start"];
    let out = virt_hook(dir, config, &args).output().unwrap();
    (out, started.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_pid(path: &Path) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(pid) = fs::read_to_string(path).ok().and_then(|t| t.trim().parse().ok()) {
            return pid;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no pid in {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

fn cleanup(pid: i32) {
    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
}

#[test]
fn a_script_that_moves_its_group_is_stopped_at_the_timeout_and_its_child_killed() {
    let dir = HooksDir::new();
    let pidfile = dir.path().join("pid");
    dir.script(
        "daemon",
        &format!(
            r#"exec perl -e '
            my $p = fork; if (!$p) {{ setpgrp(0, 0); exec "sleep", "3600" }}
            open my $f, ">", "{}"; print $f "$p\n"; close $f;
            sleep 1 until getpgrp($p) == $p; setpgrp(0, $p); $SIG{{TERM}} = "IGNORE"; sleep 30'"#,
            pidfile.display()
        ),
    );
    let (out, took) = run_daemon(&dir, "grace = 1\n", "1");
    let child = read_pid(&pidfile);
    let err = text(&out.stderr);
    assert!(took < BOUND, "returned at timeout + grace, not when the script ended: {took:?}");
    assert!(err.contains("timed out after 1s; killed 2 processes (pids "), "{err}");
    assert!(err.contains(&child.to_string()), "{err}");
    assert!(!err.contains("process group was killed"), "{err}");
    assert!(!alive(child), "the sleep 3600 is dead");
}

/// Each way of leaving a process behind; `{}` is the pid file.
const ESCAPES: [(&str, &str); 4] = [
    ("setsid", r#"setsid sleep 3611 & echo $! > "{}"; echo done"#),
    ("double fork", r#"(setsid sleep 3612 & echo $! > "{}"); echo done"#),
    ("set -m", r#"set -m; sleep 3613 & echo $! > "{}"; echo done"#),
    ("nohup", r#"nohup sleep 3614 >/dev/null 2>&1 </dev/null & echo $! > "{}"; echo done"#),
];

fn escapes(policy: &str) {
    for (name, script) in ESCAPES {
        let dir = HooksDir::new();
        let pidfile = dir.path().join("pid");
        dir.script("daemon", &script.replace("{}", &pidfile.display().to_string()));
        let config = format!("leftovers = \"{policy}\"\ndrain = \"200ms\"\n");
        let (out, took) = run_daemon(&dir, &config, "0");
        let left = read_pid(&pidfile);
        let err = text(&out.stderr);
        assert!(took < BOUND, "{name}: {took:?}");
        assert_eq!(out.status.code(), Some(0), "{name}: {err}");
        // The pid and its command line; `nohup` may not have exec'd its
        // `sleep` yet when the report is made ("nohup sleep 3614").
        let reported = format!("still running: {left} (");
        let at = err.find(&reported).unwrap_or_else(|| panic!("{name}: {err}"));
        let cmdline = &err[at + reported.len()..];
        assert!(
            cmdline.starts_with("sleep 361") || cmdline.starts_with("nohup sleep 361"),
            "{name}: {err}"
        );
        if policy == "kill" {
            assert!(err.contains("; killed it"), "{name}: {err}");
            assert!(!alive(left), "{name}: killed");
        } else {
            assert!(!err.contains("killed"), "{name}: {err}");
            assert!(alive(left), "{name}: left running");
            cleanup(left);
        }
    }
}

#[test]
fn escaped_children_are_reported_by_pid_under_leave() {
    escapes("leave");
}

#[test]
fn escaped_children_are_killed_under_kill() {
    escapes("kill");
}

/// Starts `virt-hook run` on a script that records its pid and sleeps,
/// through `perl` so that the launcher's signal state is `setup`.
fn launched(dir: &HooksDir, setup: &str) -> (Child, i32) {
    let pidfile = dir.path().join("pid");
    dir.script("daemon", &format!("echo $$ > '{}'; sleep 3615", pidfile.display()));
    let cmd = virt_hook(dir, "", &["run", "daemon", "-", "start", "-", "start"]);
    let mut args = vec![cmd.get_program().to_owned()];
    args.extend(cmd.get_args().map(ToOwned::to_owned));
    let child = Command::new("perl")
        .arg("-e")
        .arg(format!("use POSIX; {setup}; exec @ARGV or die"))
        .args(args)
        .env_remove("VIRT_HOOKS_PLUGIN_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, read_pid(&pidfile))
}

fn signal_and_wait(child: Child, signal: &str, script: i32, expected: i32) {
    let started = Instant::now();
    assert!(
        Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap().success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(expected), "{signal}: {}", text(&out.stderr));
    assert!(started.elapsed() < BOUND);
    assert!(!alive(script), "{signal}: the script {script} is gone");
}

#[test]
fn sighup_sigquit_and_sigusr1_cancel_like_sigterm() {
    for (signal, code) in [("-HUP", 129), ("-QUIT", 131), ("-USR1", 138), ("-USR2", 140)] {
        let dir = HooksDir::new();
        let (child, script) = launched(&dir, "1");
        signal_and_wait(child, signal, script, code);
    }
}

#[test]
fn a_launcher_that_blocked_sigterm_and_sigint_does_not_make_them_ignored() {
    let block = "sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGTERM, SIGINT, SIGHUP))";
    for (signal, code) in [("-TERM", 143), ("-INT", 130)] {
        let dir = HooksDir::new();
        let (child, script) = launched(&dir, block);
        signal_and_wait(child, signal, script, code);
    }
}

#[test]
fn a_launcher_that_ignored_sigchld_does_not_make_scripts_fail() {
    let dir = HooksDir::new();
    dir.script("daemon", "echo ran; exit 0");
    let cmd = virt_hook(&dir, "", &["run", "daemon", "-", "start", "-", "start"]);
    let mut args = vec![cmd.get_program().to_owned()];
    args.extend(cmd.get_args().map(ToOwned::to_owned));
    let out = Command::new("perl")
        .args(["-e", "$SIG{CHLD} = 'IGNORE'; exec @ARGV or die"])
        .args(args)
        .env_remove("VIRT_HOOKS_PLUGIN_PATH")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("No child processes"), "{err}");
}

#[test]
fn no_configuration_or_timeout_makes_the_binary_panic() {
    let bad = [
        ("timeout = 1e300\n", "timeout: duration 1e300 is too large"),
        ("grace = 1e300\n", "grace: duration 1e300 is too large"),
        ("timeout = 18446744073709551615\n", "timeout: duration 18446744073709551615 is too large"),
        ("grace = 18446744073709551615\n", "grace: duration 18446744073709551615 is too large"),
        ("timeout = 1e-12\n", "timeout: duration 0.000000000001 is too small"),
        ("drain = \"1e400s\"\n", "drain:"),
        ("pass_env = [\"A=B\", \"\"]\n", "pass_env: \"A=B\" is not an environment variable name"),
        (
            "plugin_path = [\"/nonexistent/vh-plugins\"]\n",
            "plugin_path: /nonexistent/vh-plugins does not exist",
        ),
    ];
    for (config, want) in bad {
        for command in [&["config"][..], &["run", "daemon", "-", "start", "-", "start"]] {
            let dir = HooksDir::new();
            let marker = dir.path().join("ran");
            dir.script("daemon", &format!("touch '{}'", marker.display()));
            let out = virt_hook(&dir, config, command).output().unwrap();
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{config} {command:?}: {err}");
            assert!(err.contains("line 1: ") && err.contains(want), "{config}: {err}");
            assert!(!err.contains("panicked"), "{err}");
            assert!(!marker.exists(), "no script ran");
        }
    }
    for timeout in ["1e19", "1e300", "18446744073709551615", "1e-12", "NaN", "-1", "inf"] {
        let dir = HooksDir::new();
        let marker = dir.path().join("ran");
        dir.script("daemon", &format!("touch '{}'", marker.display()));
        let (out, _) = run_daemon(&dir, "", timeout);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--timeout {timeout}: {err}");
        assert!(err.contains("--timeout") && !err.contains("panicked"), "{err}");
        assert!(!marker.exists(), "--timeout {timeout}: the script must not have started");
    }
}

#[test]
fn sections_no_driver_has_are_warnings_in_config_and_check() {
    let dir = HooksDir::new();
    let config = "[drivers.daemon.operations.strat]\ntimeout = 1\n[drivers.nosuch]\ntimeout = 2\n";
    for command in ["config", "check"] {
        let out = virt_hook(&dir, config, &[command]).output().unwrap();
        let all = text(&out.stdout) + &text(&out.stderr);
        assert!(all.contains("[drivers.nosuch] names no loaded driver"), "{command}: {all}");
        assert!(all.contains("driver 'daemon' has no operation 'strat'"), "{command}: {all}");
    }
}
