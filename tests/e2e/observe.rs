//! What an administrator sees of hook runs: the system log (journal, syslog)
//! with structured fields, the audit log that never refuses an event, and
//! `virt-hook log`; read-only commands that open nothing for writing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use virt_hooks_e2e::{
    HooksDir, binary, copy_file, journal_field, journal_fields, plugin, receive_datagrams,
};

const XML: &str = "<domain type='kvm'>\n  <name>vm1</name>\n  <uuid>c7a5fdbd-cdaf-9455-926a-d65c16db1809</uuid>\n  <memory>65536</memory>\n</domain>\n";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A world-readable directory with `virt-hook` and the qemu plugin, and a
/// hooks directory where it is installed as qemu's hook.
struct Setup {
    _bin: tempfile::TempDir,
    exe: PathBuf,
    hooks: HooksDir,
}

impl Setup {
    fn new() -> Setup {
        let bin = tempfile::tempdir().unwrap();
        fs::set_permissions(bin.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let exe = bin.path().join("virt-hook");
        copy_file(&binary(), &exe);
        copy_file(&plugin("qemu"), &bin.path().join(plugin("qemu").file_name().unwrap()));
        let hooks = HooksDir::new();
        fs::set_permissions(hooks.path(), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&exe, hooks.path().join("qemu")).unwrap();
        Setup { _bin: bin, exe, hooks }
    }

    /// A failing per-domain `release end` script (libvirt ignores its
    /// status).
    fn failing_release(&self) -> PathBuf {
        self.hooks.script(
            "qemu.d/vm1/release/end",
            "echo 'first line'; echo 'cannot unmount /srv/vm1' >&2; exit 4",
        )
    }

    /// A configuration file with `audit_log`.
    fn config(&self, audit: &Path) -> PathBuf {
        let config = self.hooks.path().join("virt-hooks.toml");
        fs::write(&config, format!("audit_log = \"{}\"\n", audit.display())).unwrap();
        config
    }

    /// Runs `cmd` (the hook, or virt-hook) as libvirt does: cleared
    /// environment plus `env`, the document on stdin.
    fn libvirt(&self, mut cmd: Command, env: &[(&str, &Path)]) -> Output {
        cmd.env_clear()
            .env("LC_ALL", "C")
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(XML.as_bytes());
        child.wait_with_output().unwrap()
    }

    fn hook(&self) -> Command {
        let mut cmd = Command::new(self.hooks.path().join("qemu"));
        cmd.args(["vm1", "release", "end", "-"]);
        cmd
    }

    fn virt_hook(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("--hooks-dir").arg(self.hooks.path()).args(args);
        cmd
    }
}

#[test]
fn hook_mode_logs_a_failed_release_script_to_the_journal_with_its_fields() {
    if !Command::new("unshare").args(["--mount", "true"]).status().is_ok_and(|s| s.success()) {
        eprintln!("SKIP: no private mount namespace (unshare --mount needs root)");
        return;
    }
    let setup = Setup::new();
    let script = setup.failing_release();
    // The journal's socket, bound by the test, mounted at the journal's
    // path in a private mount namespace where the hook runs.
    let journal = tempfile::tempdir().unwrap();
    let socket = UnixDatagram::bind(journal.path().join("socket")).unwrap();
    // A missing audit directory is created; the history gets the run.
    let audit = setup.hooks.path().join("log/dir/audit.jsonl");
    let config = setup.config(&audit);
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "sh", "-c"])
        .arg(
            "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal \
             && mount --bind \"$0\" /run/systemd/journal && exec \"$@\"",
        )
        .arg(journal.path())
        .arg(setup.hooks.path().join("qemu"))
        .args(["vm1", "release", "end", "-"]);
    let out = setup.libvirt(cmd, &[("VIRT_HOOKS_CONFIG", &config)]);
    // libvirt ignores a release script's status, and quotes nothing.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "stderr stays what libvirt must see");
    let records: Vec<_> = receive_datagrams(&socket).iter().map(|d| journal_fields(d)).collect();
    let failure = records
        .iter()
        .find(|f| journal_field(f, "SCRIPT").as_deref() == Some(&*script.to_string_lossy()))
        .unwrap_or_else(|| panic!("no record names the script: {records:?}"));
    assert_eq!(journal_field(failure, "SYSLOG_IDENTIFIER").as_deref(), Some("virt-hook"));
    assert_eq!(journal_field(failure, "PRIORITY").as_deref(), Some("4"), "a warning");
    assert_eq!(journal_field(failure, "DRIVER").as_deref(), Some("qemu"));
    assert_eq!(journal_field(failure, "OBJECT").as_deref(), Some("vm1"));
    assert_eq!(journal_field(failure, "OPERATION").as_deref(), Some("release"));
    assert_eq!(journal_field(failure, "SUB_OPERATION").as_deref(), Some("end"));
    assert_eq!(journal_field(failure, "EXIT_STATUS").as_deref(), Some("exit status 4"));
    assert_eq!(journal_field(failure, "STDERR").as_deref(), Some("cannot unmount /srv/vm1"));
    let message = journal_field(failure, "MESSAGE").unwrap();
    assert!(message.contains(&*script.to_string_lossy()), "{message}");
    assert!(message.contains("cannot unmount /srv/vm1"), "{message}");
    assert!(journal_field(failure, "EVENT_ID").is_some_and(|id| !id.is_empty()));

    // The history has it, with the script's message.
    let dir_mode = fs::metadata(audit.parent().unwrap()).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o750, "created 0750");
    let log = setup.virt_hook(&["log", "--failed", "--file"]).arg(&audit).output().unwrap();
    assert_eq!(log.status.code(), Some(0), "{}", text(&log.stderr));
    let lines: Vec<String> = text(&log.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("qemu vm1 release end -"), "{}", lines[0]);
    assert!(lines[0].contains(&*script.to_string_lossy()), "{}", lines[0]);
    assert!(lines[0].contains("exit status 4"), "{}", lines[0]);
    assert!(lines[0].ends_with("cannot unmount /srv/vm1"), "{}", lines[0]);
}

#[test]
fn without_a_journal_hook_mode_logs_to_syslog() {
    if Path::new("/run/systemd/journal/socket").exists() {
        eprintln!("SKIP: this machine has a journal, which comes first");
        return;
    }
    let setup = Setup::new();
    let script = setup.failing_release();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let socket = UnixDatagram::bind(&path).unwrap();
    let out = setup.libvirt(setup.hook(), &[("VIRT_HOOKS_SYSLOG_SOCKET", &path)]);
    assert_eq!((out.status.code(), text(&out.stderr)), (Some(0), String::new()));
    let messages: Vec<String> = receive_datagrams(&socket).iter().map(|d| text(d)).collect();
    let failure = messages
        .iter()
        .find(|m| m.contains(&*script.to_string_lossy()))
        .unwrap_or_else(|| panic!("no message names the script: {messages:?}"));
    assert!(failure.starts_with("<28>"), "daemon.warning: {failure}");
    assert!(failure.contains(" virt-hook["), "{failure}");
    assert!(failure.contains("cannot unmount /srv/vm1"), "{failure}");
}

#[test]
fn an_audit_log_that_cannot_be_written_never_refuses_an_event() {
    let setup = Setup::new();
    setup.hooks.script("qemu.d/vm1/prepare/begin", "exit 0");
    // Under a regular file: not even root can create it.
    fs::write(setup.hooks.path().join("blocker"), "").unwrap();
    let audit = setup.hooks.path().join("blocker/audit.jsonl");
    let config = setup.config(&audit);
    let mut hook = Command::new(setup.hooks.path().join("qemu"));
    hook.args(["vm1", "prepare", "begin", "-"]);
    let out = setup.libvirt(hook, &[("VIRT_HOOKS_CONFIG", &config)]);
    assert_eq!(out.status.code(), Some(0), "the domain starts: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "nothing for libvirt to quote");
    // By hand the trouble shows once, without a doubled OS error.
    let out = setup
        .virt_hook(&["dispatch", "qemu", "vm1", "prepare", "begin", "-"])
        .env("VIRT_HOOKS_CONFIG", &config)
        .stdin(fs::File::open(setup.hooks.path().join("qemu.d/vm1/prepare/begin")).unwrap())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("cannot open audit log").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("(os error").count(), 1, "{stderr}");
    // `check` reports it.
    let check = setup.virt_hook(&["check"]).env("VIRT_HOOKS_CONFIG", &config).output().unwrap();
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stdout));
    assert!(text(&check.stdout).contains("audit log"), "{}", text(&check.stdout));
}

#[test]
fn log_skips_corrupt_and_truncated_lines_and_filters() {
    let setup = Setup::new();
    let old = r#"{"time":"2001-01-01T00:00:00.000Z","event_id":"a","driver":"qemu","object":"vm0","operation":"start","sub_operation":"begin","extra":"-","script":"/h/qemu.d/vm0/start/begin","status":"exit status 0","duration":0.01,"failed":false,"stderr_tail":""}"#;
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let new = old.replace("2001-01-01T00:00:00.000Z", &now).replace("vm0", "vm1");
    let failed = new
        .replace("\"failed\":false", "\"failed\":true")
        .replace("exit status 0", "exit status 2")
        .replace("\"stderr_tail\":\"\"", "\"stderr_tail\":\"no disk\\nmore\"");
    let file = setup.hooks.path().join("audit.jsonl");
    fs::write(&file, format!("{old}\n{{\"broken\n\u{0}\u{1}\n{new}\n{failed}\n{}", &new[..30]))
        .unwrap();
    let log =
        |args: &[&str]| setup.virt_hook(&["log", "--file"]).arg(&file).args(args).output().unwrap();
    let out = log(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("2001-01-01T00:00:00Z  qemu vm0 start begin -"), "{}", lines[0]);
    assert!(lines[2].ends_with("exit status 2  0.010s  no disk"), "{}", lines[2]);
    let stderr = text(&out.stderr);
    for n in [2, 3, 6] {
        assert!(stderr.contains(&format!("line {n}: skipped")), "{stderr}");
    }
    assert!(stderr.contains("line 6: skipped: cut short"), "{stderr}");
    let count = |args: &[&str]| text(&log(args).stdout).lines().count();
    assert_eq!(count(&["--failed"]), 1);
    assert_eq!(count(&["--since", "1h"]), 2);
    assert_eq!(count(&["--object", "vm0"]), 1);
    assert_eq!(count(&["--driver", "lxc"]), 0);
    assert_eq!(count(&["-n", "1"]), 1);
    let json = log(&["--format", "json", "--failed"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["stderr_tail"], "no disk\nmore");
    let bad = log(&["--since", "soon"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("invalid time \"soon\""), "{}", text(&bad.stderr));
}

#[test]
fn read_only_commands_open_no_audit_log() {
    let setup = Setup::new();
    setup.hooks.script("qemu.d/vm1/start/begin", "exit 0");
    let audit_dir = setup.hooks.path().join("audit");
    let audit = audit_dir.join("audit.jsonl");
    let config = setup.config(&audit);
    let commands: [&[&str]; 5] = [
        &["drivers"],
        &["plan", "qemu", "vm1", "start", "begin", "-"],
        &["check"],
        &["config"],
        &["log", "--file", "/dev/null"],
    ];
    for args in commands {
        let out = setup.virt_hook(args).env("VIRT_HOOKS_CONFIG", &config).output().unwrap();
        assert!(!text(&out.stderr).contains("audit"), "{args:?}: {}", text(&out.stderr));
        assert!(!audit_dir.exists(), "{args:?} created the audit log's directory");
    }
    // As an ordinary user, on a readable tree, they work.
    let probe = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("SKIP: cannot run as uid 65534 (setpriv)");
        return;
    }
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    for args in commands {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&setup.exe)
            .arg("--hooks-dir")
            .arg(setup.hooks.path())
            .args(args)
            .env("VIRT_HOOKS_CONFIG", &config)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("Permission denied"), "{args:?}: {stderr}");
        assert!(!stderr.contains("audit"), "{args:?}: {stderr}");
        assert!(!audit_dir.exists(), "{args:?} created the audit log's directory");
        if args[0] != "check" {
            assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        }
    }
}
