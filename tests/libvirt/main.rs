//! Interop with the real libvirt daemon: virt-hook installed as libvirtd's
//! hook script (`<hooks>/<driver> -> virt-hook`), per-object scripts under
//! `<hooks>/<driver>.d/<object>/<op>/<subop>/`, and libvirtd itself emitting
//! the events.
//!
//! The daemon runs in private mount and network namespaces set up by
//! `.ci/libvirt/daemon.sh`, with scratch directories over `/etc/libvirt`
//! (so its hooks directory is `$VH_LIBVIRT_DIR/etc/hooks`) and over
//! `/etc/virt-hooks`. `.ci/libvirt/setup.sh` installs the packages and sets
//! `VH_LIBVIRT_DIR`; without it this suite prints why and does nothing, and
//! under CI (`CI=true`) that is a failure: there it must run. With
//! `VH_LIBVIRT_VIRT_HOOK=/usr/bin/virt-hook` it tests the installed packages.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use virt_hooks_e2e::{
    HooksDir, binary, copy_file, plugin_file_name, target_directory, workspace_root,
};

/// The running scratch daemon; stopped when dropped.
struct Daemon {
    scratch: PathBuf,
    uri: String,
    hooks: PathBuf,
    qemu: String,
    pidfile: PathBuf,
}

impl Daemon {
    fn script() -> PathBuf {
        workspace_root().join(".ci/libvirt/daemon.sh")
    }

    fn control(scratch: &Path, action: &str) -> Output {
        Command::new("bash")
            .arg(Daemon::script())
            .arg(action)
            .env("VH_LIBVIRT_DIR", scratch)
            .output()
            .unwrap()
    }

    fn start(scratch: &Path) -> Daemon {
        let out = Daemon::control(scratch, "start");
        assert!(out.status.success(), "daemon.sh start failed:\n{}", text(&out.stderr));
        let env = fs::read_to_string(scratch.join("env")).unwrap();
        let get = |key: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .map(|v| v.trim_matches('\'').to_owned())
                .unwrap_or_default()
        };
        Daemon {
            scratch: scratch.to_owned(),
            uri: get("VH_URI"),
            hooks: PathBuf::from(get("VH_HOOKS_DIR")),
            qemu: get("VH_QEMU"),
            pidfile: PathBuf::from(get("VH_PIDFILE")),
        }
    }

    fn virsh(&self, args: &[&str]) -> (Output, Duration) {
        let start = Instant::now();
        let out = Command::new("virsh").arg("-c").arg(&self.uri).args(args).output().unwrap();
        (out, start.elapsed())
    }

    fn pid(&self) -> String {
        fs::read_to_string(&self.pidfile).unwrap().trim().to_owned()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let out = Daemon::control(&self.scratch, "stop");
        if !out.status.success() {
            eprintln!("daemon.sh stop: {}", text(&out.stderr));
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Where the suite may run, or why not.
fn scratch_dir() -> Option<PathBuf> {
    let why = match std::env::var_os("VH_LIBVIRT_DIR") {
        None => {
            "VH_LIBVIRT_DIR is not set (run .ci/libvirt/setup.sh first, as .ci/run does)".to_owned()
        }
        Some(dir) if !Path::new(&dir).join("emulator").exists() => {
            format!("{} has not been prepared by .ci/libvirt/setup.sh", Path::new(&dir).display())
        }
        Some(dir) => return Some(PathBuf::from(dir)),
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the libvirt interop suite must run in CI, but {why}");
    }
    eprintln!("SKIPPED: libvirt interop suite: {why}");
    None
}

/// Names an installed virt-hook (`/usr/bin/virt-hook`, as `.ci/packages.sh`
/// does) to test it and the plugins its own search path finds (the system
/// plugin directory), instead of a copy of the workspace's build.
const INSTALLED_ENV: &str = "VH_LIBVIRT_VIRT_HOOK";

/// The virt-hook to make libvirtd's hook, and the directory of the copy
/// (removed when dropped) unless it is an installed one.
fn virt_hook() -> (PathBuf, Option<tempfile::TempDir>) {
    if let Some(exe) = std::env::var_os(INSTALLED_ENV) {
        eprintln!("testing the installed {}", Path::new(&exe).display());
        return (PathBuf::from(exe), None);
    }
    let dir = install_dir();
    (dir.path().join("virt-hook"), Some(dir))
}

/// virt-hook and all four plugins in a directory of their own, so the
/// links in the hooks directory find exactly these plugins.
fn install_dir() -> tempfile::TempDir {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "virt-hooks-driver-network"])
        .args(if cfg!(debug_assertions) { &[][..] } else { &["--release"][..] })
        .current_dir(workspace_root())
        .status()
        .unwrap();
    assert!(status.success(), "building the network plugin failed");
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let built = target_directory().join(profile);
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    copy_file(&binary(), &dir.path().join("virt-hook"));
    for driver in ["daemon", "qemu", "lxc", "network"] {
        let name = plugin_file_name(driver);
        copy_file(&built.join(&name), &dir.path().join(&name));
    }
    dir
}

/// Per-object scripts that append one line per call to a log:
/// `driver object op subop extra <root element of stdin>`.
struct Recorder {
    hooks: HooksDir,
    log: PathBuf,
}

impl Recorder {
    fn new(hooks: &Path, log: PathBuf) -> Recorder {
        Recorder { hooks: HooksDir::at(hooks), log }
    }

    fn script(&self, rel: &str, body: &str) -> PathBuf {
        self.hooks.script(rel, body)
    }

    /// Records `driver object op subop` with a per-object script.
    fn record(&self, driver: &str, object: &str, op: &str, subop: &str) {
        let body = format!(
            "root=$(head -c 200 | tr -d '\\n' | sed -n 's/^[^<]*<\\([A-Za-z]*\\).*/\\1/p')\n\
             echo \"{driver} $1 $2 $3 $4 ${{root:-none}}\" >> {log}",
            log = self.log.display()
        );
        self.script(&format!("{driver}.d/{object}/{op}/{subop}/50-record"), &body);
    }

    fn lines(&self) -> Vec<String> {
        fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// Waits (at most 20 s) until `line` has been recorded.
    fn wait_for(&self, line: &str) {
        let start = Instant::now();
        while !self.lines().iter().any(|l| l == line) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "never recorded {line:?}: {:#?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn take(&self) -> Vec<String> {
        let lines = self.lines();
        let _ = fs::remove_file(&self.log);
        lines
    }
}

const NETWORK: &str = "<network><name>vhtest</name><bridge name='vhbr0'/></network>";

fn domain(qemu: &str) -> String {
    format!(
        "<domain type='qemu'><name>vhdom</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices><emulator>{qemu}</emulator><memballoon model='none'/></devices></domain>"
    )
}

/// [`domain`] with one foreign element of `attributes` attributes in its
/// `<metadata>`.
fn domain_with_metadata(qemu: &str, attributes: usize) -> String {
    let attrs: String = (0..attributes).map(|i| format!(" a{i}='v'")).collect();
    domain(qemu).replace(
        "<memory ",
        &format!(
            "<metadata><vh:big xmlns:vh='https://example.invalid/vh'{attrs}/></metadata><memory "
        ),
    )
}

#[test]
fn libvirtd_runs_per_object_scripts_through_virt_hook() {
    let Some(scratch) = scratch_dir() else { return };
    let work = tempfile::tempdir().unwrap();
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let (exe, _copy) = virt_hook();
    let hooks = scratch.join("etc/hooks");
    let _ = fs::remove_dir_all(&hooks);
    let _ = fs::remove_dir_all(scratch.join("virt-hooks"));
    fs::create_dir_all(&hooks).unwrap();
    fs::set_permissions(&hooks, fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(&exe)
        .arg("--hooks-dir")
        .arg(&hooks)
        .args(["install", "--libvirt", "daemon", "qemu", "network"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    let rec = Recorder::new(&hooks, work.path().join("calls.log"));
    for (op, sub) in [("start", "-"), ("reload", "begin"), ("shutdown", "-")] {
        rec.record("daemon", "-", op, sub);
    }
    for (op, sub) in [("start", "begin"), ("started", "begin"), ("stopped", "end")] {
        rec.record("network", "vhtest", op, sub);
    }
    for (op, sub) in [
        ("prepare", "begin"),
        ("start", "begin"),
        ("started", "begin"),
        ("stopped", "end"),
        ("release", "end"),
    ] {
        rec.record("qemu", "vhdom", op, sub);
    }

    // Daemon start: discovery happens now, so the links exist before it.
    let daemon = Daemon::start(&scratch);
    assert_eq!(daemon.hooks, hooks);
    rec.wait_for("daemon - start - start none");

    // Reload.
    assert!(Command::new("kill").args(["-HUP", &daemon.pid()]).status().unwrap().success());
    rec.wait_for("daemon - reload begin SIGHUP none");
    rec.take();

    // `check` against the live tree: a group-writable per-domain script,
    // which the hook would refuse, is a problem (issue 13).
    let gw = hooks.join("qemu.d/vhdom/restore/begin");
    fs::create_dir_all(gw.parent().unwrap()).unwrap();
    fs::write(&gw, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&gw, fs::Permissions::from_mode(0o775)).unwrap();
    let check = || Command::new(&exe).arg("--hooks-dir").arg(&hooks).arg("check").output().unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("begin is writable by its group (mode 0775)"),
        "{}",
        text(&out.stdout)
    );
    fs::remove_dir_all(hooks.join("qemu.d/vhdom/restore")).unwrap();

    // An isolated network, started and destroyed.
    let net = work.path().join("net.xml");
    fs::write(&net, NETWORK).unwrap();
    let (out, _) = daemon.virsh(&["net-create", net.to_str().unwrap()]);
    assert!(out.status.success(), "net-create: {}", text(&out.stderr));
    let (out, _) = daemon.virsh(&["net-destroy", "vhtest"]);
    assert!(out.status.success(), "net-destroy: {}", text(&out.stderr));
    assert_eq!(
        rec.take(),
        [
            "network vhtest start begin - hookData",
            "network vhtest started begin - hookData",
            "network vhtest stopped end - hookData"
        ]
    );

    // A tiny TCG domain, started and destroyed.
    let dom = work.path().join("dom.xml");
    fs::write(&dom, domain(&daemon.qemu)).unwrap();
    let create = || daemon.virsh(&["create", dom.to_str().unwrap()]);
    let destroy = || {
        let (out, _) = daemon.virsh(&["destroy", "vhdom"]);
        assert!(out.status.success(), "destroy: {}", text(&out.stderr));
    };
    let (out, plain_start) = create();
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    destroy();
    let calls = rec.take();
    assert_eq!(calls.len(), 5, "{calls:#?}");
    assert_eq!(
        calls[..4],
        [
            "qemu vhdom prepare begin - domain",
            "qemu vhdom start begin - domain",
            "qemu vhdom started begin - domain",
            "qemu vhdom stopped end - domain"
        ]
    );
    // libvirt < 10.5 passes `-`, later ones the shutoff reason.
    assert!(
        ["qemu vhdom release end - domain", "qemu vhdom release end destroyed domain"]
            .contains(&calls[4].as_str()),
        "{calls:#?}"
    );

    // A domain whose <metadata> holds a large foreign element (issue 11:
    // 150,000 attributes in one element), which libvirt keeps and hands to
    // every hook: it starts with its scripts run, in about the time a plain
    // one takes (the document checks are linear in its size).
    let big = work.path().join("big.xml");
    fs::write(&big, domain_with_metadata(&daemon.qemu, 150_000)).unwrap();
    let (out, big_start) = daemon.virsh(&["create", big.to_str().unwrap()]);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    destroy();
    let calls = rec.take();
    assert_eq!(
        calls[..4],
        [
            "qemu vhdom prepare begin - domain",
            "qemu vhdom start begin - domain",
            "qemu vhdom started begin - domain",
            "qemu vhdom stopped end - domain"
        ],
        "{calls:#?}"
    );
    let delay = big_start.saturating_sub(plain_start);
    assert!(delay < Duration::from_secs(2), "the large metadata delayed the start by {delay:?}");

    // A refusing start script: virsh fails with the script's message.
    let refuse = rec.script(
        "qemu.d/vhdom/start/begin/10-refuse",
        "echo 'vhdom may not start: refused by the interop test' >&2\nexit 1",
    );
    let (out, _) = create();
    assert!(!out.status.success(), "the start must be refused");
    let err = text(&out.stderr);
    assert!(err.contains("Hook script execution failed"), "{err}");
    assert!(err.contains("vhdom may not start: refused by the interop test"), "{err}");
    fs::remove_file(refuse).unwrap();
    rec.take();

    // A start script that backgrounds a long sleep with inherited stdio:
    // libvirt alone waits for it; through virt-hook the start is not held.
    let pidfile = work.path().join("sleep.pid");
    let bg = rec.script(
        "qemu.d/vhdom/start/begin/10-background",
        &format!("sleep 30 &\necho $! > {}\necho started in the background", pidfile.display()),
    );
    let (out, slow_start) = create();
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    let delay = slow_start.saturating_sub(plain_start);
    assert!(delay < Duration::from_secs(2), "the background child delayed the start by {delay:?}");
    destroy();
    fs::remove_file(bg).unwrap();
    if let Ok(pid) = fs::read_to_string(&pidfile) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
    rec.take();

    // A hanging start script is killed at its timeout; the start fails.
    fs::create_dir_all(scratch.join("virt-hooks")).unwrap();
    fs::write(
        scratch.join("virt-hooks/virt-hooks.toml"),
        "[drivers.qemu.operations.start]\ntimeout = \"2s\"\n",
    )
    .unwrap();
    let hang = rec.script("qemu.d/vhdom/start/begin/10-hang", "exec sleep 60");
    let (out, took) = create();
    assert!(!out.status.success(), "the start must fail");
    let err = text(&out.stderr);
    assert!(err.contains("timed out after 2s; its process group was killed"), "{err}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    fs::remove_file(hang).unwrap();
    fs::remove_file(scratch.join("virt-hooks/virt-hooks.toml")).unwrap();
    rec.take();

    deferred_scripts(&daemon, &rec, work.path());

    // Shutdown.
    drop(daemon);
    rec.wait_for("daemon - shutdown - shutdown none");
}

/// Nanoseconds since the epoch, as `date +%s%N` prints them.
fn now_ns() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// Waits (at most 30 s) until `done`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The stamps `<object> <tag> <ns>` the deferred scripts appended to `log`.
fn stamps(log: &Path) -> Vec<(String, String, u128)> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split(' ').collect();
            Some((w.first()?.to_string(), w.get(1)?.to_string(), w.get(2)?.parse().ok()?))
        })
        .collect()
}

/// Deferred scripts (issue 14): they run after the hook answered, so they
/// can call back into libvirt, and they never hold a domain's start.
fn deferred_scripts(daemon: &Daemon, rec: &Recorder, work: &Path) {
    let config = daemon.scratch.join("virt-hooks/virt-hooks.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    // A spool of this suite's own (another suite may run beside it).
    fs::write(&config, format!("deferred_dir = \"{}\"\n", work.join("spool").display())).unwrap();
    let virsh = format!("virsh -c '{}'", daemon.uri);
    let dom = work.join("dom.xml");
    fs::write(&dom, domain(&daemon.qemu)).unwrap();

    // `started begin`: `virsh domstate` from a deferred script says
    // running, and `virsh create` returned before the script ended (as a
    // synchronous script, the same call hangs the start).
    let state = work.join("state");
    let done = work.join("started.done");
    let started = rec.script(
        "qemu.d/vhdom/started/begin/deferred/10-domstate",
        &format!(
            "{virsh} domstate \"$1\" > {state} 2>&1\nsleep 3\ntouch {done}",
            state = state.display(),
            done = done.display()
        ),
    );
    // `release end`: runs after `virsh destroy` returned; its `virsh list`
    // no longer sees the destroyed (transient) domain.
    let release_log = work.join("release");
    let release = rec.script(
        "qemu.d/vhdom/release/end/deferred/10-after",
        &format!(
            "{virsh} list --all --name > {l}.list 2>&1\necho \"$1 release $(date +%s%N)\" > {l}",
            l = release_log.display()
        ),
    );
    let (out, took) = daemon.virsh(&["create", dom.to_str().unwrap()]);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    assert!(!done.exists(), "virsh create returned after the deferred script ended ({took:?})");
    wait_until("the deferred domstate", || {
        fs::read_to_string(&state).is_ok_and(|s| !s.trim().is_empty())
    });
    assert_eq!(fs::read_to_string(&state).unwrap().trim(), "running");
    wait_until("the deferred started script", || done.exists());
    let (out, _) = daemon.virsh(&["destroy", "vhdom"]);
    assert!(out.status.success(), "destroy: {}", text(&out.stderr));
    let destroyed = now_ns();
    wait_until("the deferred release script", || release_log.exists());
    let stamp = stamps(&release_log);
    assert!(stamp[0].2 >= destroyed.saturating_sub(1_000_000_000), "{stamp:?}");
    let list = fs::read_to_string(format!("{}.list", release_log.display())).unwrap();
    assert!(!list.lines().any(|l| l.trim() == "vhdom"), "{list}");
    fs::remove_file(started).unwrap();
    fs::remove_file(release).unwrap();

    // Two domains started at once run their deferred scripts side by side;
    // one domain's `started` and `stopped` work run one after the other.
    let log = work.join("stamps");
    let window = |tag: &str, secs: &str| {
        format!(
            "echo \"$1 {tag}-start $(date +%s%N)\" >> {l}\nsleep {secs}\n\
             echo \"$1 {tag}-end $(date +%s%N)\" >> {l}",
            l = log.display()
        )
    };
    let mut scripts = Vec::new();
    for name in ["vhdom", "vhdom2"] {
        scripts.push(rec.script(
            &format!("qemu.d/{name}/started/begin/deferred/10-w"),
            &window("started", "2"),
        ));
    }
    scripts.push(rec.script("qemu.d/vhdom/stopped/end/deferred/10-w", &window("stopped", "0.3")));
    let dom2 = work.join("dom2.xml");
    fs::write(&dom2, domain(&daemon.qemu).replace("vhdom", "vhdom2")).unwrap();
    std::thread::scope(|s| {
        for file in [&dom, &dom2] {
            s.spawn(move || {
                let (out, _) = daemon.virsh(&["create", file.to_str().unwrap()]);
                assert!(out.status.success(), "create: {}", text(&out.stderr));
            });
        }
    });
    for name in ["vhdom", "vhdom2"] {
        let (out, _) = daemon.virsh(&["destroy", name]);
        assert!(out.status.success(), "destroy {name}: {}", text(&out.stderr));
    }
    wait_until("every deferred window", || stamps(&log).len() == 6);
    let s = stamps(&log);
    let at = |object: &str, tag: &str| {
        s.iter().find(|(o, t, _)| o == object && t == tag).map(|x| x.2).unwrap()
    };
    assert!(at("vhdom2", "started-start") < at("vhdom", "started-end"), "side by side: {s:?}");
    assert!(at("vhdom", "started-start") < at("vhdom2", "started-end"), "side by side: {s:?}");
    assert!(at("vhdom", "started-end") <= at("vhdom", "stopped-start"), "in order: {s:?}");
    for script in scripts {
        fs::remove_file(script).unwrap();
    }
    fs::remove_file(&config).unwrap();
    rec.take();
}
