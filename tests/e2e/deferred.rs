//! Deferred scripts through the real binary as libvirt's hook: the hook
//! answers (its pipes at end of file) before they end, they run detached,
//! one object's runs in order, two objects side by side, failures only
//! recorded, the filtered document handed over, lost runs recorded.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use virt_hooks_e2e::{HooksDir, binary, output_with_stdin};

const XML: &str = "<domain type='kvm'>\n  <name>vm1</name>\n  <uuid>c7a5fdbd-cdaf-9455-926a-d65c16db1809</uuid>\n  <memory>65536</memory>\n</domain>\n";

/// The document of domain `name`.
fn xml(name: &str) -> String {
    XML.replace("vm1", name)
}

/// virt-hook installed for qemu, with its own spool and audit log.
struct Setup {
    dir: HooksDir,
    config: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        Setup::with_config("")
    }

    fn with_config(extra: &str) -> Setup {
        let dir = HooksDir::new();
        let out = Command::new(binary())
            .arg("--hooks-dir")
            .arg(dir.path())
            .args(["install", "--libvirt", "qemu"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let config = dir.path().join("virt-hooks.toml");
        let spool = dir.path().join("spool");
        let audit = dir.path().join("audit.jsonl");
        fs::write(
            &config,
            format!(
                "deferred_dir = \"{}\"\naudit_log = \"{}\"\n{extra}",
                spool.display(),
                audit.display()
            ),
        )
        .unwrap();
        Setup { dir, config }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn spool(&self) -> PathBuf {
        self.path().join("spool")
    }

    fn audit(&self) -> String {
        fs::read_to_string(self.path().join("audit.jsonl")).unwrap_or_default()
    }

    /// Calls `<hooks>/qemu` as libvirt does: cleared environment, piped
    /// stdout and stderr read to their end. Returns when both reached end
    /// of file and the hook was reaped.
    fn call(&self, args: [&str; 4], doc: &str) -> (Output, Duration) {
        let start = Instant::now();
        let mut cmd = Command::new(self.path().join("qemu"));
        cmd.args(args).env_clear().env("LC_ALL", "C").env("PATH", "/usr/bin:/bin");
        cmd.env("VIRT_HOOKS_CONFIG", &self.config);
        let out = output_with_stdin(&mut cmd, Some(doc.as_bytes()));
        (out, start.elapsed())
    }
}

/// Waits (at most 30 s) until `done` says yes.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A deferred script body appending `<tag> start <ns>` and `<tag> end
/// <ns>` to `log` around `sleep <secs>`.
fn stamped(log: &Path, tag: &str, secs: &str) -> String {
    format!(
        "echo \"{tag} start $(date +%s%N)\" >> {l}\nsleep {secs}\necho \"{tag} end $(date +%s%N)\" >> {l}",
        l = log.display()
    )
}

/// The stamps of `log`: (tag, start or end, nanoseconds).
fn stamps(log: &Path) -> Vec<(String, String, u128)> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split(' ').collect();
            (w[0].to_owned(), w[1].to_owned(), w[2].parse().unwrap())
        })
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_hook_answers_and_closes_its_pipes_before_a_deferred_sleep_ends() {
    let setup = Setup::new();
    let done = setup.path().join("done");
    let ids = setup.path().join("ids");
    setup.dir.script(
        "qemu.d/vm1/started/begin/deferred/10-slow",
        &format!(
            "cut -d' ' -f5,6 /proc/$$/stat > {ids}\nsleep 2\ntouch {done}",
            ids = ids.display(),
            done = done.display()
        ),
    );
    let (out, took) = setup.call(["vm1", "started", "begin", "-"], XML);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{}", text(&out.stderr));
    assert!(!done.exists(), "the call returned after the deferred script ended");
    assert!(took < Duration::from_millis(1500), "the call took {took:?}");
    wait_until("the deferred script", || done.exists());
    // Detached: neither our process group nor our session.
    let ours = fs::read_to_string("/proc/self/stat").unwrap();
    let ours: Vec<&str> = ours.rsplit(')').next().unwrap().split(' ').collect();
    let theirs = fs::read_to_string(&ids).unwrap();
    let theirs: Vec<&str> = theirs.split_whitespace().collect();
    assert_ne!(theirs[0], ours[3], "process group");
    assert_ne!(theirs[1], ours[4], "session");
    wait_until("the record", || setup.audit().contains("\"deferred\":true"));
    wait_until("the spool emptied", || {
        fs::read_dir(setup.spool()).unwrap().all(|e| !e.unwrap().path().ends_with(".entry"))
    });
}

#[test]
fn one_objects_deferred_runs_keep_their_order_and_never_overlap() {
    let setup = Setup::new();
    let log = setup.path().join("log");
    setup.dir.script("qemu.d/vm1/started/begin/deferred/10-a", &stamped(&log, "started", "1"));
    setup.dir.script("qemu.d/vm1/stopped/end/deferred/10-b", &stamped(&log, "stopped", "0.2"));
    let (out, _) = setup.call(["vm1", "started", "begin", "-"], XML);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (out, _) = setup.call(["vm1", "stopped", "end", "-"], XML);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    wait_until("both runs", || stamps(&log).len() == 4);
    let s = stamps(&log);
    let order: Vec<(&str, &str)> = s.iter().map(|(t, w, _)| (t.as_str(), w.as_str())).collect();
    assert_eq!(
        order,
        [("started", "start"), ("started", "end"), ("stopped", "start"), ("stopped", "end")],
        "the stopped work waits for the started work"
    );
    assert!(s[1].2 <= s[2].2);
}

#[test]
fn two_objects_run_their_deferred_scripts_side_by_side() {
    let setup = Setup::new();
    let log = setup.path().join("log");
    for vm in ["vm1", "vm2"] {
        setup
            .dir
            .script(&format!("qemu.d/{vm}/started/begin/deferred/10-a"), &stamped(&log, vm, "1.5"));
    }
    for vm in ["vm1", "vm2"] {
        let (out, _) = setup.call([vm, "started", "begin", "-"], &xml(vm));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    wait_until("both runs", || stamps(&log).len() == 4);
    let s = stamps(&log);
    let at = |tag: &str, what: &str| {
        s.iter().find(|(t, w, _)| t == tag && w == what).map(|x| x.2).unwrap()
    };
    assert!(at("vm2", "start") < at("vm1", "end"), "vm2 waited for vm1: {s:?}");
    assert!(at("vm1", "start") < at("vm2", "end"), "{s:?}");
}

#[test]
fn the_parallel_limit_holds_other_objects_back() {
    let setup = Setup::with_config("deferred_parallel = 1\n");
    let log = setup.path().join("log");
    for vm in ["vm1", "vm2"] {
        setup
            .dir
            .script(&format!("qemu.d/{vm}/started/begin/deferred/10-a"), &stamped(&log, vm, "0.5"));
        let (out, _) = setup.call([vm, "started", "begin", "-"], &xml(vm));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    wait_until("both runs", || stamps(&log).len() == 4);
    let s = stamps(&log);
    assert_eq!(s[0].0, s[1].0, "one at a time: {s:?}");
    assert!(s[1].2 <= s[2].2);
}

#[test]
fn a_failing_deferred_script_is_recorded_and_never_changes_the_answer() {
    let setup = Setup::new();
    setup.dir.script("qemu.d/vm1/prepare/begin/deferred/10-fail", "echo broken >&2\nexit 3");
    let (out, _) = setup.call(["vm1", "prepare", "begin", "-"], XML);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "libvirt hears nothing of it: {}", text(&out.stderr));
    wait_until("the record", || setup.audit().contains("\"exit_code\":3"));
    let audit = setup.audit();
    assert!(audit.contains("\"deferred\":true") && audit.contains("\"failed\":true"), "{audit}");
    let log = Command::new(binary())
        .args(["log", "--file"])
        .arg(setup.path().join("audit.jsonl"))
        .output()
        .unwrap();
    let shown = text(&log.stdout);
    assert!(shown.contains("deferred: exit status 3") && shown.contains("broken"), "{shown}");
}

#[test]
fn a_filters_deferred_scripts_get_the_filtered_document() {
    let setup = Setup::new();
    let seen = setup.path().join("seen");
    setup.dir.script("qemu.d/vm1/restore/begin/10-mem", "sed 's|65536|131072|'");
    setup
        .dir
        .script("qemu.d/vm1/restore/begin/deferred/10-seen", &format!("cat > {}", seen.display()));
    let (out, _) = setup.call(["vm1", "restore", "begin", "-"], XML);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let filtered = XML.replace("65536", "131072");
    assert_eq!(text(&out.stdout), filtered);
    wait_until("the deferred script", || fs::read_to_string(&seen).is_ok_and(|s| s == filtered));
}

#[test]
fn a_refused_start_runs_no_deferred_script() {
    let setup = Setup::new();
    let ran = setup.path().join("ran");
    setup.dir.script("qemu.d/vm1/start/begin/10-deny", "echo no >&2\nexit 1");
    setup
        .dir
        .script("qemu.d/vm1/start/begin/deferred/10-later", &format!("touch {}", ran.display()));
    let (out, _) = setup.call(["vm1", "start", "begin", "-"], XML);
    assert_eq!(out.status.code(), Some(1));
    assert!(setup.audit().contains("deferred-skipped"), "{}", setup.audit());
    std::thread::sleep(Duration::from_millis(300));
    assert!(!ran.exists());
}

#[test]
fn a_spool_entry_without_a_worker_is_recorded_by_the_next_one() {
    let setup = Setup::new();
    let done = setup.path().join("done");
    fs::create_dir_all(setup.spool()).unwrap();
    fs::set_permissions(setup.spool(), std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .unwrap();
    // What a worker that crashed leaves: an entry nobody holds.
    let header = format!(
        "{{\"seq\":7,\"event_id\":\"ghost-1\",\"hooks_dir\":\"{}\",\"layout\":\"per-object\",\
         \"driver\":\"qemu\",\"object\":\"ghost\",\"operation\":\"started\",\
         \"sub_operation\":\"begin\",\"extra\":\"-\",\"input\":true}}\n",
        setup.path().display()
    );
    let ghost = setup.spool().join("00000000000000000007.entry");
    fs::write(&ghost, format!("{header}{}", xml("ghost"))).unwrap();
    setup
        .dir
        .script("qemu.d/vm1/started/begin/deferred/10-a", &format!("touch {}", done.display()));
    let (out, _) = setup.call(["vm1", "started", "begin", "-"], XML);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    wait_until("the deferred script", || done.exists());
    wait_until("the lost record", || setup.audit().contains("deferred-lost"));
    let audit = setup.audit();
    let lost = audit.lines().find(|l| l.contains("deferred-lost")).unwrap();
    assert!(lost.contains("\"object\":\"ghost\"") && lost.contains("ghost-1"), "{lost}");
    assert!(lost.contains("\"failed\":true"), "{lost}");
    assert!(!ghost.exists(), "removed once recorded");
}

#[test]
fn a_hand_over_that_fails_is_recorded_and_the_answer_stands() {
    let setup = Setup::new();
    // The spool cannot be made under a regular file.
    let blocker = setup.path().join("blocker");
    fs::write(&blocker, "").unwrap();
    let config = fs::read_to_string(&setup.config).unwrap();
    let config = config.replace(
        &format!("\"{}\"", setup.spool().display()),
        &format!("\"{}/spool\"", blocker.display()),
    );
    fs::write(&setup.config, config).unwrap();
    setup.dir.script("qemu.d/vm1/started/begin/deferred/10-a", "exit 0");
    let (out, _) = setup.call(["vm1", "started", "begin", "-"], XML);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let audit = setup.audit();
    assert!(audit.contains("deferred-lost") && audit.contains("cannot create"), "{audit}");
}

#[test]
fn plan_lists_the_deferred_scripts_apart() {
    let setup = Setup::new();
    setup.dir.script("qemu.d/vm1/started/begin/10-now", "exit 0");
    setup.dir.script("qemu.d/vm1/started/begin/deferred/10-later", "exit 0");
    let out = Command::new(binary())
        .arg("--hooks-dir")
        .arg(setup.path())
        .args(["plan", "qemu", "vm1", "started", "begin", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let dir = setup.path().join("qemu.d/vm1/started/begin");
    assert_eq!(
        text(&out.stdout),
        format!(
            "{}\n{}  (deferred)\n",
            dir.join("10-now").display(),
            dir.join("deferred/10-later").display()
        )
    );
}
