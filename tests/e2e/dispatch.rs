//! virt-hook as libvirt's hook script: installed as `<hooks>/<driver>`, it
//! runs the per-object scripts `<hooks>/<driver>.d/<object>/<op>/<subop>` and
//! answers libvirt with the exit status, stderr and stdout libvirt expects.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use virt_hooks_e2e::{
    HooksDir, binary, copy_file, installed_binary, output_with_stdin, plugin, plugin_file_name,
};

const XML: &str = "<domain type='kvm'>\n  <name>vm1</name>\n  <uuid>c7a5fdbd-cdaf-9455-926a-d65c16db1809</uuid>\n  <memory>65536</memory>\n</domain>\n";

/// A hooks directory where virt-hook is installed for some drivers.
struct Installed {
    dir: HooksDir,
}

impl Installed {
    /// Installed for qemu and daemon.
    fn new() -> Installed {
        Installed::with(&["qemu", "daemon"])
    }

    fn with(drivers: &[&str]) -> Installed {
        let dir = HooksDir::new();
        let out = Command::new(binary())
            .arg("--hooks-dir")
            .arg(dir.path())
            .args(["install", "--libvirt"])
            .args(drivers)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        Installed { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn script(&self, rel: &str, body: &str) -> PathBuf {
        self.dir.script(rel, body)
    }

    /// Calls `<hooks>/<driver>` exactly as libvirt does: cleared
    /// environment, piped stdout and stderr read to the end, the document on
    /// stdin (or /dev/null).
    fn call(&self, driver: &str, args: [&str; 4], stdin: Option<&str>) -> (Output, Duration) {
        self.call_with(driver, args, stdin, &[])
    }

    /// [`call`](Installed::call) with more environment variables (libvirt
    /// passes none of these; tests name a configuration file this way).
    fn call_with(
        &self,
        driver: &str,
        args: [&str; 4],
        stdin: Option<&str>,
        env: &[(&str, &Path)],
    ) -> (Output, Duration) {
        let start = Instant::now();
        let mut cmd = Command::new(self.path().join(driver));
        cmd.args(args).env_clear().env("LC_ALL", "C").env("PATH", "/usr/bin:/bin");
        // A hook may exit without reading its stdin; like libvirt, the
        // caller then gets EPIPE (the helper allows exactly that).
        let out = output_with_stdin(cmd.envs(env.iter().copied()), stdin.map(str::as_bytes));
        (out, start.elapsed())
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn install_links_the_drivers_and_leaves_foreign_hooks_alone() {
    let hooks = Installed::new();
    let link = fs::read_link(hooks.path().join("qemu")).unwrap();
    assert_eq!(link, binary().canonicalize().unwrap());

    let install = |args: &[&str]| {
        Command::new(binary()).arg("--hooks-dir").arg(hooks.path()).args(args).output().unwrap()
    };
    let again = install(&["install", "--libvirt", "qemu"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(text(&again.stdout).contains("already virt-hook"), "{}", text(&again.stdout));

    let own = hooks.script("lxc", "echo my own hook");
    let refused = install(&["install", "--libvirt", "lxc"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("is an existing hook script, not virt-hook"));
    assert_eq!(fs::read_to_string(&own).unwrap(), "#!/bin/sh\necho my own hook\n", "untouched");

    let forced = install(&["install", "--libvirt", "--force", "lxc"]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced.stderr));
    let backup = hooks.path().join("lxc.virt-hook-backup");
    assert_eq!(fs::read_to_string(&backup).unwrap(), "#!/bin/sh\necho my own hook\n");
    assert!(fs::symlink_metadata(hooks.path().join("lxc")).unwrap().file_type().is_symlink());

    // A copy instead of a link, checked by a binary that sees exactly the
    // shipped plugins (whatever else the build left in target/).
    let copies = tempfile::tempdir().unwrap();
    fs::set_permissions(copies.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let exe = installed_binary();
    let run = |args: &[&str]| {
        Command::new(exe).arg("--hooks-dir").arg(copies.path()).args(args).output().unwrap()
    };
    let copied = run(&["install", "--libvirt", "--copy", "qemu"]);
    assert_eq!(copied.status.code(), Some(0), "{}", text(&copied.stderr));
    assert_eq!(fs::read(copies.path().join("qemu")).unwrap(), fs::read(exe).unwrap());
    let check = run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stdout));
    assert!(text(&check.stdout).contains("qemu  virt-hook (copy)"), "{}", text(&check.stdout));
    let check = install(&["check"]);
    assert!(text(&check.stdout).contains("lxc  virt-hook (link)"), "{}", text(&check.stdout));
}

#[test]
fn a_refusing_per_object_script_is_what_libvirt_reports() {
    let hooks = Installed::new();
    hooks.script("qemu.d/vm1/start/begin/10-deny", "echo \"$1 may not start here\" >&2\nexit 3");
    hooks.script("qemu.d/vm2/start/begin/10-other", "exit 9");
    let (out, _) = hooks.call("qemu", ["vm1", "start", "begin", "-"], Some(XML));
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stderr), "vm1 may not start here\n");
    assert!(out.stdout.is_empty());
}

#[test]
fn only_the_per_object_scripts_run_libvirt_runs_the_others() {
    let hooks = Installed::new();
    let marker = hooks.path().join("plain-ran");
    hooks.script("qemu.d/10-plain", &format!("touch {}", marker.display()));
    let record = hooks.path().join("record");
    hooks.script(
        "qemu.d/vm1/prepare/begin",
        &format!("printf '%s|' \"$0\" \"$@\" > {r}; cat >> {r}", r = record.display()),
    );
    let (out, _) = hooks.call("qemu", ["vm1", "prepare", "begin", "-"], Some(XML));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!marker.exists(), "plain .d files are libvirt's to run, not ours");
    let script = hooks.path().join("qemu.d/vm1/prepare/begin");
    assert_eq!(
        fs::read_to_string(&record).unwrap(),
        format!("{}|vm1|prepare|begin|-|{XML}", script.display())
    );
}

#[test]
fn a_filter_prints_the_new_document_and_nothing_when_unchanged() {
    let hooks = Installed::new();
    let (out, _) = hooks.call("qemu", ["vm1", "restore", "begin", "-"], Some(XML));
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "unchanged: libvirt keeps its document");
    hooks.script("qemu.d/vm1/restore/begin/10-mem", "sed 's|65536|131072|'");
    let (out, _) = hooks.call("qemu", ["vm1", "restore", "begin", "-"], Some(XML));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), XML.replace("65536", "131072"));
}

#[test]
fn an_ignore_policy_event_never_makes_libvirt_fail() {
    let hooks = Installed::new();
    hooks.script("qemu.d/vm1/release/end/10-fail", "echo broken >&2; exit 1");
    let (out, _) = hooks.call("qemu", ["vm1", "release", "end", "destroyed"], Some(XML));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    hooks.script("daemon.d/-/start/-/10-fail", "exit 1");
    let (out, _) = hooks.call("daemon", ["-", "start", "-", "start"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_backgrounded_child_never_holds_libvirts_pipes() {
    let hooks = Installed::new();
    let pidfile = hooks.path().join("sleeper");
    hooks.script(
        "qemu.d/vm1/start/begin/10-bg",
        &format!("sleep 30 &\necho $! > {}\necho started", pidfile.display()),
    );
    let (out, took) = hooks.call("qemu", ["vm1", "start", "begin", "-"], Some(XML));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(took < Duration::from_secs(5), "libvirt's call took {took:?}");
    let pid = fs::read_to_string(&pidfile).unwrap();
    let _ = Command::new("kill").arg(pid.trim()).status();
}

#[test]
fn an_event_this_host_does_not_know_runs_nothing_and_does_not_fail() {
    let hooks = Installed::new();
    let (out, _) = hooks.call("qemu", ["vm1", "checkpoint", "begin", "-"], Some(XML));
    assert_eq!(out.status.code(), Some(0));
    let out = Command::new(hooks.path().join("qemu")).args(["vm1", "start"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a call libvirt never makes is a usage error");
}

#[test]
fn the_dispatch_subcommand_is_the_same_without_a_link() {
    let hooks = Installed::new();
    hooks.script("qemu.d/vm1/started/begin", "echo late >&2; exit 4");
    let mut child = Command::new(binary())
        .arg("--hooks-dir")
        .arg(hooks.path())
        .args(["dispatch", "qemu", "vm1", "started", "begin", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(XML.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(text(&out.stderr), "late\n");
}

/// Current libvirt runs libxl's migrate hook with stdin /dev/null (its
/// formatter refuses the flags it is given, reference §3.5): the per-object
/// scripts still run, with an empty stdin, and may print a new definition.
#[test]
fn libxl_migrate_runs_with_libvirts_empty_stdin() {
    let hooks = Installed::with(&["libxl", "bhyve"]);
    let record = hooks.path().join("record");
    hooks.script(
        "libxl.d/xen1/migrate/begin/10-record",
        &format!("printf '%s|' \"$@\" > {r}; cat >> {r}", r = record.display()),
    );
    let (out, _) = hooks.call("libxl", ["xen1", "migrate", "begin", "-"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "unchanged: libvirt keeps its document");
    assert_eq!(fs::read_to_string(&record).unwrap(), "xen1|migrate|begin|-|");

    let xen = XML.replace("kvm", "xen").replace("vm1", "xen1");
    hooks.script("libxl.d/xen1/migrate/begin/20-define", &format!("printf '%s' \"{xen}\""));
    let (out, _) = hooks.call("libxl", ["xen1", "migrate", "begin", "-"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), xen);

    // Output that is no domain is refused, and the migration with it.
    hooks.script("libxl.d/xen1/migrate/begin/30-garbage", "echo '<network/>'");
    let (out, _) = hooks.call("libxl", ["xen1", "migrate", "begin", "-"], None);
    assert_ne!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());

    // bhyve: a refusing prepare script stops the start; a failing release does not.
    hooks.script("bhyve.d/bsd1/prepare/begin", "echo no >&2; exit 5");
    hooks.script("bhyve.d/bsd1/release/end", "exit 1");
    let bsd = XML.replace("vm1", "bsd1");
    let (out, _) = hooks.call("bhyve", ["bsd1", "prepare", "begin", "-"], Some(&bsd));
    assert_eq!((out.status.code(), text(&out.stderr)), (Some(5), "no\n".to_owned()));
    let (out, _) = hooks.call("bhyve", ["bsd1", "release", "end", "-"], Some(&bsd));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A configuration file in `hooks` with an audit log and `extra` lines;
/// returns (the file, the audit log).
fn audit_config(hooks: &Installed, extra: &str) -> (PathBuf, PathBuf) {
    let log = hooks.path().join("audit.jsonl");
    let config = hooks.path().join("virt-hooks.toml");
    fs::write(&config, format!("audit_log = \"{}\"\n{extra}", log.display())).unwrap();
    (config, log)
}

fn audit_records(log: &Path) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_document_that_cannot_be_validated_fails_closed_with_the_reason() {
    let hooks = Installed::new();
    let marker = hooks.path().join("ran");
    hooks.script(
        "qemu.d/vm1/start/begin/10-deny",
        &format!("touch {}; echo 'vm1 may not start' >&2; exit 3", marker.display()),
    );
    let (config, log) = audit_config(&hooks, "");
    let env = [("VIRT_HOOKS_CONFIG", config.as_path())];
    // Another domain's document, and one that is not XML at all.
    let other = XML.replace("<name>vm1</name>", "<name>vm2</name>");
    for (doc, why) in [(other.as_str(), "vm2"), ("<domain><name>vm1</name>", "")] {
        let (out, _) = hooks.call_with("qemu", ["vm1", "start", "begin", "-"], Some(doc), &env);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("error: refused hook event 'qemu vm1 start begin -': driver 'qemu'"),
            "{stderr}"
        );
        assert!(stderr.contains(why) && stderr.lines().count() == 1, "{stderr}");
        assert!(!marker.exists(), "nothing runs on a document that fails the checks");
    }
    let records = audit_records(&log);
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().all(|r| r["decision"] == "refused" && r["operation"] == "start"));
    // What libvirt can send but the checks may not read (yet): an internal
    // DTD subset, a declared encoding. Either the checks read it and the
    // domain's refusing script runs, or the call fails with the reason:
    // never a silent success.
    let dtd = XML.replacen("<domain", "<!DOCTYPE domain [<!ENTITY n \"vm1\">]>\n<domain", 1);
    let latin1 = format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n{XML}");
    for doc in [dtd, latin1] {
        let (out, _) = hooks.call("qemu", ["vm1", "start", "begin", "-"], Some(&doc));
        assert_ne!(out.status.code(), Some(0), "{doc}");
        assert!(!out.stderr.is_empty(), "the reason is on stderr");
    }
}

#[test]
fn an_unlisted_operation_runs_the_scripts_made_for_it_and_passes_their_status() {
    let hooks = Installed::new();
    let others = hooks.path().join("others-ran");
    hooks.script("qemu.d/vm1/start/begin", &format!("touch {}", others.display()));
    hooks.script(
        "qemu.d/vm1/checkpoint/begin/10-deny",
        "cat >/dev/null; echo 'no checkpoints' >&2; exit 5",
    );
    let (config, log) = audit_config(&hooks, "");
    let env = [("VIRT_HOOKS_CONFIG", config.as_path())];
    let (out, _) = hooks.call_with("qemu", ["vm1", "checkpoint", "begin", "-"], Some(XML), &env);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(text(&out.stderr), "no checkpoints\n");
    assert!(!others.exists());
    let records = audit_records(&log);
    assert_eq!(records[0]["decision"], "unlisted");
    assert_eq!(records[1]["exit_code"], 5);
    // Without a document (libvirt's /dev/null) too.
    let (out, _) = hooks.call_with("qemu", ["vm1", "checkpoint", "begin", "-"], None, &env);
    assert_eq!(out.status.code(), Some(5));
}

#[test]
fn a_driver_no_plugin_provides_runs_the_scripts_made_for_the_event_and_logs_an_error() {
    let hooks = Installed::new();
    // A virt-hook next to the qemu plugin only: libvirt's libxl driver
    // calls it, and no plugin provides `libxl`.
    let lone = HooksDir::new();
    copy_file(&binary(), &lone.path().join("virt-hook"));
    copy_file(&plugin("qemu"), &lone.path().join(plugin_file_name("qemu")));
    std::os::unix::fs::symlink(lone.path().join("virt-hook"), hooks.path().join("libxl")).unwrap();
    let (config, log) = audit_config(&hooks, "");
    let env = [("VIRT_HOOKS_CONFIG", config.as_path())];
    // No script for the event: libvirt's own "no script", exit 0, but on
    // the record as an error naming the plugin and where it was looked for.
    let (out, _) = hooks.call_with("libxl", ["vm1", "start", "begin", "-"], Some(XML), &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let records = audit_records(&log);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["decision"], "no-driver");
    let reason = records[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "no plugin provides driver 'libxl' (libvirt_hooks_driver_libxl.so not found in"
        ) && reason.contains(&lone.path().display().to_string()),
        "{reason}"
    );
    // Scripts made for exactly this event run, with libvirt's document, and
    // their status passes through; another event's do not.
    let other = hooks.path().join("other-ran");
    hooks.script("libxl.d/vm1/stopped/end", &format!("touch {}", other.display()));
    let got = hooks.path().join("got");
    hooks.script(
        "libxl.d/vm1/start/begin/10-deny",
        &format!("cat > {}; echo 'vm1 may not start' >&2; exit 4", got.display()),
    );
    let (out, _) = hooks.call_with("libxl", ["vm1", "start", "begin", "-"], Some(XML), &env);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).ends_with("vm1 may not start\n"), "{}", text(&out.stderr));
    assert_eq!(fs::read_to_string(&got).unwrap(), XML);
    assert!(!other.exists());
    let records = audit_records(&log);
    assert_eq!(records[1]["decision"], "no-driver");
    assert_eq!(records[2]["exit_code"], 4);
    // A sub-operation or extra a KNOWN driver does not take is refused.
    let (out, _) = hooks.call("qemu", ["vm1", "start", "later", "-"], Some(XML));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("'qemu start' takes sub-operation"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_input_over_max_input_is_refused_unread() {
    let hooks = Installed::new();
    let marker = hooks.path().join("ran");
    hooks.script("qemu.d/vm1/start/begin", &format!("touch {}", marker.display()));
    let (config, log) = audit_config(&hooks, "max_input = \"1KiB\"\n");
    let env = [("VIRT_HOOKS_CONFIG", config.as_path())];
    let big = XML
        .replace("</domain>", &format!("<description>{}</description></domain>", "x".repeat(2048)));
    let (out, _) = hooks.call_with("qemu", ["vm1", "start", "begin", "-"], Some(&big), &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is larger than max_input (1024 bytes)"),
        "{}",
        text(&out.stderr)
    );
    assert!(!marker.exists());
    assert_eq!(audit_records(&log)[0]["decision"], "refused");
}

#[test]
fn dev_zero_as_input_fails_fast_in_bounded_memory() {
    let hooks = Installed::new();
    // `run --input /dev/zero`, with the default cap (64 MiB).
    let started = Instant::now();
    let out = Command::new(binary())
        .arg("--hooks-dir")
        .arg(hooks.path())
        .args(["run", "qemu", "vm1", "start", "begin", "-", "--input", "/dev/zero"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "error: the input document from input file /dev/zero is larger than max_input \
         (67108864 bytes); raise max_input in the configuration file if such a document is real\n"
    );
    // A generous bound: growing without a cap takes minutes and gigabytes.
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    // And as libvirt's hook, /dev/zero on stdin.
    let out = Command::new(hooks.path().join("qemu"))
        .args(["vm1", "start", "begin", "-"])
        .env_clear()
        .stdin(fs::File::open("/dev/zero").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("larger than max_input"), "{}", text(&out.stderr));
}

#[test]
fn the_hooks_directory_is_the_executed_paths_never_the_current_directory() {
    let hooks = Installed::new();
    let ours = hooks.path().join("ours-ran");
    // Builtins only: the scripts' PATH is the hooks directory.
    hooks.script("qemu.d/vm1/start/begin", &format!("echo ran > {}", ours.display()));
    // The current directory holds a hooks tree of its own.
    let cwd = tempfile::tempdir().unwrap();
    fs::set_permissions(cwd.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let theirs = cwd.path().join("theirs-ran");
    for dir in ["qemu.d", "qemu.d/vm1", "qemu.d/vm1/start"] {
        fs::create_dir(cwd.path().join(dir)).unwrap();
        fs::set_permissions(cwd.path().join(dir), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let script = cwd.path().join("qemu.d/vm1/start/begin");
    fs::write(&script, format!("#!/bin/sh\necho ran > {}\n", theirs.display())).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    // `qemu` found through PATH: argv[0] is the bare name.
    let mut out = Command::new("qemu")
        .args(["vm1", "start", "begin", "-"])
        .env_clear()
        .env("PATH", hooks.path())
        .current_dir(cwd.path())
        .stdin(Stdio::piped())
        .output_with(XML);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(ours.exists(), "the scripts of the directory the kernel executed from ran");
    assert!(!theirs.exists(), "the current directory's scripts never run");
    // Executed by a relative path: refused, whatever the current directory holds.
    fs::remove_file(&ours).unwrap();
    std::os::unix::fs::symlink(hooks.path().join("qemu"), cwd.path().join("qemu")).unwrap();
    out = Command::new("./qemu")
        .args(["vm1", "start", "begin", "-"])
        .env_clear()
        .current_dir(cwd.path())
        .stdin(Stdio::piped())
        .output_with(XML);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("must be executed by an absolute path, not './qemu'"));
    assert!(!ours.exists() && !theirs.exists());
}

#[test]
fn hook_mode_is_the_executed_name_not_argv0_nor_a_renamed_binary() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let renamed = dir.path().join("virt-hook.new");
    std::os::unix::fs::symlink(binary().canonicalize().unwrap(), &renamed).unwrap();
    let out = Command::new(&renamed).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Usage:"), "{}", text(&out.stdout));
    // argv[0] is whatever the caller says; the executed file is virt-hook.
    let out = Command::new(binary()).arg0("qemu").arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("virt-hook "), "{}", text(&out.stdout));
}

#[test]
fn install_refuses_driver_names_that_are_not_plain_file_names() {
    let outer = tempfile::tempdir().unwrap();
    let hooks = outer.path().join("hooks");
    fs::create_dir(&hooks).unwrap();
    fs::set_permissions(&hooks, fs::Permissions::from_mode(0o755)).unwrap();
    for name in ["../x", "a/b", ".", "..", "", "/etc/x"] {
        let out = Command::new(binary())
            .arg("--hooks-dir")
            .arg(&hooks)
            .args(["install", "--libvirt", "qemu", name])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name:?}");
        assert_eq!(
            text(&out.stderr),
            format!(
                "error: '{name}' is not a driver name: a driver name is a plain file name (not \
                 empty, '.' or '..', no '/'); nothing was installed\n"
            )
        );
        assert!(!outer.path().join("x").exists());
        assert_eq!(fs::read_dir(&hooks).unwrap().count(), 0, "{name:?}: nothing installed");
    }
}

trait OutputWith {
    /// Spawns, writes `stdin` and waits for the output.
    fn output_with(&mut self, stdin: &str) -> Output;
}

impl OutputWith for Command {
    fn output_with(&mut self, stdin: &str) -> Output {
        let mut child = self.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    }
}

/// The names in `dir`, sorted.
fn sorted_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn install_checks_every_driver_before_changing_anything_and_uninstall_puts_back_the_backup() {
    let hooks = HooksDir::new();
    let vh = |args: &[&str]| {
        Command::new(binary()).arg("--hooks-dir").arg(hooks.path()).args(args).output().unwrap()
    };
    let entries = || sorted_entries(hooks.path());
    // A typo is refused with the valid names; nothing is made.
    let out = vh(&["install", "--libvirt", "qemu", "qemuu"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no driver named 'qemuu'; loaded drivers: ") && stderr.contains("qemu")
    );
    assert!(entries().is_empty(), "{:?}", entries());
    // An existing hook among the targets: all or nothing.
    hooks.script("lxc", "echo mine");
    let out = vh(&["install", "--libvirt", "qemu", "lxc", "daemon"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("nothing was installed"), "{}", text(&out.stderr));
    assert_eq!(entries(), ["lxc"]);
    // --dry-run says what would change and changes nothing.
    let out = vh(&["install", "--libvirt", "--dry-run", "--force", "qemu", "lxc"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("qemu: would install a link to"), "{stdout}");
    assert!(stdout.contains("lxc: would move the existing hook to"), "{stdout}");
    assert_eq!(entries(), ["lxc"]);
    let out = vh(&["install", "--libvirt", "--force", "qemu", "lxc"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(entries(), ["lxc", "lxc.virt-hook-backup", "qemu"]);

    let out = vh(&["uninstall", "--libvirt", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("lxc: would put back"), "{}", text(&out.stdout));
    assert_eq!(entries(), ["lxc", "lxc.virt-hook-backup", "qemu"]);
    let out = vh(&["uninstall", "--libvirt", "lxc"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(entries(), ["lxc", "qemu"]);
    assert_eq!(fs::read_to_string(hooks.path().join("lxc")).unwrap(), "#!/bin/sh\necho mine\n");
    // A hook that is not virt-hook is never removed.
    let out = vh(&["uninstall", "--libvirt", "qemu", "lxc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is not virt-hook"), "{}", text(&out.stderr));
    assert_eq!(entries(), ["lxc", "qemu"]);
    // Without names: every driver virt-hook is installed for, and only those.
    let out = vh(&["uninstall", "--libvirt"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(entries(), ["lxc"]);
}

/// The JSON document `out` printed on stdout.
fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", text(&out.stdout), text(&out.stderr)))
}

/// (driver, action, backup, dry_run, done) of a change.
type Change = (Option<String>, String, Option<String>, bool, bool);

/// (driver, action, backup, dry_run, done) of each change of an install or
/// uninstall report, typed as the document must type them.
fn changes(doc: &serde_json::Value) -> Vec<Change> {
    doc["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("changes is not an array: {doc}"))
        .iter()
        .map(|c| {
            let opt = |v: &serde_json::Value| {
                if v.is_null() { None } else { Some(v.as_str().expect("a string").to_owned()) }
            };
            (
                opt(&c["driver"]),
                c["action"].as_str().expect("action is a string").to_owned(),
                opt(&c["backup"]),
                c["dry_run"].as_bool().expect("dry_run is a boolean"),
                c["done"].as_bool().expect("done is a boolean"),
            )
        })
        .collect()
}

#[test]
fn install_and_uninstall_print_their_changes_and_refusals_as_json_and_text_unchanged() {
    let hooks = HooksDir::new();
    let dir = hooks.path().display().to_string();
    let exe = binary().canonicalize().unwrap().display().to_string();
    let vh = |args: &[&str]| {
        Command::new(binary()).arg("--hooks-dir").arg(hooks.path()).args(args).output().unwrap()
    };
    let entries = || sorted_entries(hooks.path());
    let some = |s: &str| Some(s.to_owned());
    hooks.script("lxc", "echo mine");
    let backup = format!("{dir}/lxc.virt-hook-backup");

    // Refused: nothing changes, stderr says so as in text, and the document
    // names the refused hook.
    let out = vh(&["install", "--libvirt", "--format", "json", "qemu", "lxc"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).ends_with("error: nothing was installed\n"), "{}", text(&out.stderr));
    let doc = json(&out);
    assert_eq!(doc["command"], "install");
    assert_eq!(doc["refused"][0]["driver"], "lxc");
    assert_eq!(doc["refused"][0]["path"], format!("{dir}/lxc"));
    assert!(doc["refused"][0]["reason"].as_str().unwrap().contains("not virt-hook"), "{doc}");
    assert_eq!(changes(&doc), [(some("qemu"), "install-link".into(), None, false, false)]);
    assert_eq!(entries(), ["lxc"]);
    // Text: refused, nothing on stdout.
    let out = vh(&["install", "--libvirt", "qemu", "lxc"]);
    assert_eq!((out.status.code(), text(&out.stdout)), (Some(1), String::new()));

    // A dry run plans and does nothing; its text is what it was.
    let out =
        vh(&["install", "--libvirt", "--dry-run", "--force", "--format", "json", "qemu", "lxc"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = json(&out);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["hooks_dir"], dir);
    assert_eq!(doc["refused"], serde_json::json!([]));
    assert_eq!(
        changes(&doc),
        [
            (some("qemu"), "install-link".into(), None, true, false),
            (some("lxc"), "move-aside".into(), some(&backup), true, false),
            (some("lxc"), "install-link".into(), None, true, false),
        ]
    );
    assert_eq!(doc["changes"][0]["executable"], exe);
    assert_eq!(doc["changes"][0]["path"], format!("{dir}/qemu"));
    assert_eq!(entries(), ["lxc"]);
    let out = vh(&["install", "--libvirt", "--dry-run", "--force", "qemu", "lxc"]);
    assert_eq!(
        text(&out.stdout),
        format!(
            "{dir}/qemu: would install a link to {exe}\n{dir}/lxc: would move the existing hook \
             to {backup} and install a link to {exe}\n"
        )
    );
    assert_eq!(entries(), ["lxc"]);

    // Done: every change says so, and is on disk.
    let out = vh(&["install", "--libvirt", "--force", "--format", "json", "qemu", "lxc"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = json(&out);
    assert_eq!(doc["dry_run"], false);
    assert_eq!(
        changes(&doc),
        [
            (some("qemu"), "install-link".into(), None, false, true),
            (some("lxc"), "move-aside".into(), some(&backup), false, true),
            (some("lxc"), "install-link".into(), None, false, true),
        ]
    );
    assert_eq!(entries(), ["lxc", "lxc.virt-hook-backup", "qemu"]);
    let out = vh(&["install", "--libvirt", "--format", "json", "qemu"]);
    let doc = json(&out);
    assert_eq!(changes(&doc), [(some("qemu"), "keep".into(), None, false, true)]);
    assert_eq!(doc["changes"][0]["reason"], "already virt-hook");

    // Uninstall: planned, then done; the text of the plan is what it was.
    let out = vh(&["uninstall", "--libvirt", "--dry-run", "--format", "json", "lxc", "qemu"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let planned = [
        (some("lxc"), "remove".to_owned(), None, true, false),
        (some("lxc"), "restore-backup".to_owned(), some(&backup), true, false),
        (some("qemu"), "remove".to_owned(), None, true, false),
    ];
    assert_eq!(changes(&json(&out)), planned);
    let out = vh(&["uninstall", "--libvirt", "--dry-run", "lxc", "qemu"]);
    assert_eq!(
        text(&out.stdout),
        format!(
            "{dir}/lxc: would remove virt-hook\n{dir}/lxc: would put back {backup}\n{dir}/qemu: \
             would remove virt-hook\n"
        )
    );
    assert_eq!(entries(), ["lxc", "lxc.virt-hook-backup", "qemu"]);
    let out = vh(&["uninstall", "--libvirt", "--format", "json", "lxc", "qemu"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let done: Vec<_> = planned
        .iter()
        .map(|(d, a, b, _, _)| (d.clone(), a.clone(), b.clone(), false, true))
        .collect();
    assert_eq!(changes(&json(&out)), done);
    assert_eq!(entries(), ["lxc"]);

    // A hook that is not virt-hook refuses the uninstall, in JSON too.
    let out = vh(&["uninstall", "--libvirt", "--format", "json", "lxc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).ends_with("error: nothing was uninstalled\n"),
        "{}",
        text(&out.stderr)
    );
    let doc = json(&out);
    assert_eq!(doc["refused"][0]["driver"], "lxc");
    assert_eq!(doc["changes"], serde_json::json!([]));
    assert_eq!(entries(), ["lxc"]);
    // Nothing installed: an empty list, not an error.
    let out = vh(&["uninstall", "--libvirt", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = json(&out);
    assert_eq!(
        (doc["changes"].clone(), doc["refused"].clone()),
        (serde_json::json!([]), serde_json::json!([]))
    );
    // A usage error stays one: exit 2, no document.
    let out = vh(&["install", "--libvirt", "--format", "json", "qemuu"]);
    assert_eq!((out.status.code(), text(&out.stdout)), (Some(2), String::new()));
    // A missing hooks directory is a change of its own, of no driver.
    let fresh = hooks.path().join("new");
    let out = Command::new(binary())
        .arg("--hooks-dir")
        .arg(&fresh)
        .args(["install", "--libvirt", "--dry-run", "--format", "json", "qemu"])
        .output()
        .unwrap();
    let doc = json(&out);
    assert_eq!(changes(&doc)[0], (None, "create-hooks-dir".into(), None, true, false));
    assert_eq!(doc["changes"][0]["path"], fresh.display().to_string());
    assert!(!fresh.exists());
}

#[test]
fn check_and_plan_see_the_per_object_scripts_the_installed_hook_runs() {
    let hooks = Installed::with(&["qemu"]);
    let ok = hooks.script("qemu.d/vm1/start/begin/10-ok", "exit 0");
    let gw = hooks.script("qemu.d/vm1/start/begin/20-gw", "exit 0");
    fs::set_permissions(&gw, fs::Permissions::from_mode(0o775)).unwrap();
    hooks.script("qemu.d/vm1/release/end", "exit 0");
    let vh = |args: &[&str]| {
        Command::new(binary()).arg("--hooks-dir").arg(hooks.path()).args(args).output().unwrap()
    };
    let out = vh(&["plan", "qemu", "vm1", "start", "begin", "-"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{}\n", ok.display()),
        "the group-writable one is refused"
    );
    let out = vh(&["plan", "--layout", "libvirt", "qemu", "vm1", "start", "begin", "-"]);
    assert_eq!(text(&out.stdout), format!("{}\n", hooks.path().join("qemu").display()));

    let out = vh(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let report = text(&out.stdout);
    assert!(report.contains("qemu (layout per-object)"), "{report}");
    assert!(report.contains("20-gw is writable by its group (mode 0775)"), "{report}");
    assert!(!report.contains("no problems found"), "{report}");
    let out = vh(&["check", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["clean"], false);
    let qemu =
        doc["hooks"]["drivers"].as_array().unwrap().iter().find(|d| d["driver"] == "qemu").unwrap();
    assert_eq!(qemu["layout"], "per-object");
    assert_eq!(qemu["virt_hook"], true);
    let entry = qemu["per_object"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == gw.to_str().unwrap())
        .unwrap();
    assert_eq!(entry["runs"], false);
    // The clean tree is clean, and says so.
    fs::set_permissions(&gw, fs::Permissions::from_mode(0o755)).unwrap();
    let out = vh(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

/// A domain document asking for the profile `vfio` with property `gpu`
/// (the namespace under the prefix `vh`, not `hooks`).
fn with_profile(gpu: &str) -> String {
    XML.replace(
        "  <memory>",
        &format!(
            "  <metadata>\n    <vh:profiles xmlns:vh=\"http://virt-hooks.org/xmlns/profiles/1.0\">\n      \
             <vh:profile name=\"vfio\"><vh:property name=\"gpu\">{gpu}</vh:property></vh:profile>\n    \
             </vh:profiles>\n  </metadata>\n  <memory>"
        ),
    )
}

/// `vfio` declared with a required, patterned `gpu`; its prepare script and
/// a per-object prepare script print what they see.
fn profile_hooks() -> Installed {
    let hooks = Installed::new();
    hooks.dir.file(
        "qemu.profiles/vfio/profile.toml",
        "description = \"gpu\"\n[properties.gpu]\nrequired = true\npattern = '[0-9a-f:.]+'\n",
        0o644,
    );
    hooks.script(
        "qemu.profiles/vfio/prepare/begin/10-detach",
        "echo \"profile=$VIRT_HOOKS_PROFILE gpu=$VIRT_HOOKS_PROP_GPU $*\" >> \"$0.log\"",
    );
    hooks.script(
        "qemu.d/vm1/prepare/begin",
        "echo \"per-object ${VIRT_HOOKS_PROFILE-none}\" >> \"$0.log\"",
    );
    hooks
}

#[test]
fn a_profile_chosen_by_the_domain_runs_with_its_properties() {
    let hooks = profile_hooks();
    let doc = with_profile("0000:01:00.0");
    let (out, _) = hooks.call("qemu", ["vm1", "prepare", "begin", "-"], Some(&doc));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let log =
        fs::read_to_string(hooks.path().join("qemu.profiles/vfio/prepare/begin/10-detach.log"))
            .unwrap();
    assert_eq!(log, "profile=vfio gpu=0000:01:00.0 vm1 prepare begin -\n");
    let log = fs::read_to_string(hooks.path().join("qemu.d/vm1/prepare/begin.log")).unwrap();
    assert_eq!(log, "per-object none\n", "per-object scripts keep libvirt's environment");

    // `plan` shows the profile and its scripts.
    let config = hooks.dir.file("virt-hooks.toml", "layout = \"per-object\"\n", 0o644);
    let plan = Command::new(binary())
        .arg("--hooks-dir")
        .arg(hooks.path())
        .arg("--config")
        .arg(&config)
        .args(["plan", "qemu", "vm1", "prepare", "begin", "-", "--input", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(doc.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let stdout = text(&plan.stdout);
    assert!(stdout.contains("10-detach  (profile vfio)"), "{stdout}{}", text(&plan.stderr));

    // `check` lists it with its property.
    let check = Command::new(binary()).arg("--hooks-dir").arg(hooks.path()).arg("check").output();
    let stdout = text(&check.unwrap().stdout);
    assert!(
        stdout.contains("profile vfio") && stdout.contains("property gpu (required)"),
        "{stdout}"
    );
}

#[test]
fn a_domain_with_an_invalid_property_is_refused_with_the_reason() {
    let hooks = profile_hooks();
    let doc = with_profile("not a pci address");
    let (out, _) = hooks.call("qemu", ["vm1", "prepare", "begin", "-"], Some(&doc));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("domain 'vm1', profile 'vfio': property 'gpu': value 'not a pci address'"),
        "{stderr}"
    );
    assert!(!hooks.path().join("qemu.d/vm1/prepare/begin.log").exists(), "nothing ran");
    // At an ignore-policy event (release) the problem is only logged: the
    // rest runs.
    hooks.script("qemu.d/vm1/release/end", "echo ran >> \"$0.log\"");
    let (out, _) = hooks.call("qemu", ["vm1", "release", "end", "-"], Some(&doc));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(hooks.path().join("qemu.d/vm1/release/end.log")).unwrap(),
        "ran\n"
    );
}
