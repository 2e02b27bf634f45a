//! `virt-hook run`, `plan` and `demo` through the real binary and plugins:
//! what a script sees, exit codes, libvirt's error text, filters, and the
//! events of libvirt's own call-site tables.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use virt_hooks_e2e::{HooksDir, PluginDir, binary, installed_binary};

/// A hooks directory (the kit's, scripts at mode 0755) with recording
/// scripts.
struct Hooks(HooksDir);

impl Hooks {
    fn new() -> Hooks {
        Hooks(HooksDir::new())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn script(&self, name: &str, body: &str) -> PathBuf {
        self.0.script(name, body)
    }

    /// A script that records its argv, stdin and environment under
    /// `<hooks>/record/<name>.*`, then runs `tail`.
    fn recorder(&self, name: &str, tail: &str) -> PathBuf {
        let out = self.0.dir("record").join(name.replace('/', "_"));
        self.script(
            name,
            &format!(
                "for a in \"$0\" \"$@\"; do printf '%s\\n' \"$a\"; done > {out}.argv\n\
                 cat > {out}.stdin\n\
                 env > {out}.env\n\
                 ls /proc/self/fd > {out}.fds\n\
                 {tail}\n",
                out = out.display()
            ),
        )
    }

    fn recorded(&self, name: &str, what: &str) -> String {
        self.0.read(&format!("record/{}.{what}", name.replace('/', "_")))
    }
}

fn domain(name: &str) -> String {
    format!(
        "<domain type='kvm'>\n  <name>{name}</name>\n  <uuid>c7a5fdbd-cdaf-9455-926a-d65c16db1809</uuid>\n  <memory>65536</memory>\n</domain>\n"
    )
}

/// Runs the real binary with the real plugins and `hooks` as hooks dir.
fn virt_hook(hooks: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(installed_binary());
    cmd.arg("--hooks-dir").arg(hooks).args(args);
    cmd.env_remove("VIRT_HOOKS_PLUGIN_PATH").env_remove("VIRT_HOOKS_CONFIG").env_remove("RUST_LOG");
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(bytes) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn run_gives_the_script_libvirts_argv_and_the_document_verbatim() {
    let hooks = Hooks::new();
    hooks.recorder("qemu", "");
    let xml = domain("my vm");
    let out = virt_hook(
        hooks.path(),
        &["run", "qemu", "my vm", "release", "end", "from snapshot", "--input", "-"],
        Some(xml.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let script = hooks.path().join("qemu");
    assert_eq!(
        hooks.recorded("qemu", "argv"),
        format!("{}\nmy vm\nrelease\nend\nfrom snapshot\n", script.display())
    );
    assert_eq!(hooks.recorded("qemu", "stdin"), xml);
    assert_eq!(hooks.recorded("qemu", "fds"), "0\n1\n2\n3\n", "only 0, 1, 2 (and ls's own dir fd)");
}

#[test]
fn the_environment_is_libvirts_under_a_bare_host_environment() {
    let hooks = Hooks::new();
    hooks.recorder("daemon", "");
    let out = Command::new("env")
        .args(["-i", "PATH=/usr/bin:/bin", "TMPDIR=/var/tmp", "UNRELATED=x"])
        .arg(installed_binary())
        .arg("--hooks-dir")
        .arg(hooks.path())
        .args(["run", "daemon", "-", "start", "-", "start"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut env: Vec<String> = hooks.recorded("daemon", "env").lines().map(str::to_owned).collect();
    env.retain(|v| !v.starts_with("PWD=") && !v.starts_with("SHLVL=") && !v.starts_with("_="));
    env.sort();
    assert_eq!(env, ["LC_ALL=C", "PATH=/usr/bin:/bin", "TMPDIR=/var/tmp"]);
    assert_eq!(hooks.recorded("daemon", "stdin"), "", "stdin is /dev/null");
}

#[test]
fn a_refusing_script_gives_exit_1_and_libvirts_error_text() {
    let hooks = Hooks::new();
    hooks.script("qemu.d/10-deny", "echo \"no room for $1\" >&2\nexit 3\n");
    let xml = domain("vm1");
    let out = Command::new("env")
        .args(["-i", "PATH=/usr/bin:/bin"])
        .arg(installed_binary())
        .arg("--hooks-dir")
        .arg(hooks.path())
        .args(["run", "qemu", "vm1", "start", "begin", "-", "--input", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(xml.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "error: Hook script execution failed: internal error: Child process (LC_ALL=C PATH=/usr/bin:/bin {}/qemu.d/10-deny vm1 start begin -) unexpected exit status 3: no room for vm1\n\n",
            hooks.path().display()
        )
    );
}

#[test]
fn ignore_policy_failures_are_warnings_and_exit_0() {
    let hooks = Hooks::new();
    hooks.script("qemu", "echo cleanup failed >&2\nexit 1\n");
    let out = virt_hook(
        hooks.path(),
        &["run", "qemu", "vm1", "stopped", "end", "-", "--input", "-"],
        Some(domain("vm1").as_bytes()),
    );
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.starts_with("warning: Hook script execution failed: internal error:"), "{err}");
    assert!(err.contains("unexpected exit status 1: cleanup failed"), "{err}");
}

#[test]
fn invalid_events_give_exit_2_with_the_valid_choices_and_run_nothing() {
    let hooks = Hooks::new();
    let marker = hooks.path().join("ran");
    hooks.script("qemu", &format!("touch {}\n", marker.display()));
    let cases: [(&[&str], &str); 5] = [
        (&["run", "qemu", "vm1", "strat", "begin", "-"], "valid operations: prepare, start"),
        (&["run", "qemu", "vm1", "start", "end", "-"], "takes sub-operation 'begin', not 'end'"),
        (&["run", "qemu", "vm1", "release", "end", "later"], "'from snapshot'"),
        (
            &["run", "qemu", "vm1", "start", "begin", "-"],
            "needs an XML document with root <domain>",
        ),
        (
            &["run", "kvm", "vm1", "start", "begin", "-"],
            "no driver named 'kvm'; loaded drivers: bhyve, daemon, libxl, lxc, qemu",
        ),
    ];
    for (args, expected) in cases {
        let out = virt_hook(hooks.path(), args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    }
    let out = virt_hook(
        hooks.path(),
        &["run", "qemu", "vm1", "start", "begin", "-", "--input", "-"],
        Some(domain("vm2").as_bytes()),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("vm2") && stderr(&out).contains("vm1"), "{}", stderr(&out));
    assert!(!marker.exists(), "no script may run for an invalid event");
}

#[test]
fn a_filter_chain_prints_the_resulting_document() {
    let hooks = Hooks::new();
    hooks.script("qemu.d/10-mem", "sed 's|<memory>65536</memory>|<memory>131072</memory>|'\n");
    hooks.script("qemu.d/20-blank", "cat >/dev/null; echo '   '\n");
    hooks.script(
        "qemu.d/30-tag",
        "sed 's|</domain>|  <description>restored</description>\\n</domain>|'\n",
    );
    let out = virt_hook(
        hooks.path(),
        &["run", "qemu", "vm1", "restore", "begin", "-", "--input", "-"],
        Some(domain("vm1").as_bytes()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = String::from_utf8(out.stdout).unwrap();
    assert!(doc.contains("<memory>131072</memory>"), "{doc}");
    assert!(doc.contains("<description>restored</description>"), "{doc}");
}

#[test]
fn run_json_reports_every_script() {
    let hooks = Hooks::new();
    hooks.script("daemon", "echo hello\n");
    hooks.script("daemon.d/b", "echo oops >&2; exit 4\n");
    let out = virt_hook(
        hooks.path(),
        &["run", "daemon", "-", "reload", "begin", "SIGHUP", "--format", "json"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "ignore policy: {}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["on_failure"], "ignore");
    let scripts = doc["scripts"].as_array().unwrap();
    assert_eq!(scripts.len(), 2);
    assert_eq!(scripts[0]["stdout"], "hello\n");
    assert_eq!(scripts[0]["status"], serde_json::json!({"kind": "exited", "code": 0}));
    assert_eq!(scripts[1]["status"]["code"], 4);
    assert_eq!(
        scripts[1]["argv"],
        serde_json::json!([hooks.path().join("daemon.d/b"), "-", "reload", "begin", "SIGHUP"])
    );
}

#[test]
fn plan_lists_the_scripts_in_order_and_runs_nothing() {
    let hooks = Hooks::new();
    let marker = hooks.path().join("ran");
    let touch = format!("touch {}\n", marker.display());
    for name in ["lxc", "lxc.d/2-b", "lxc.d/10-a", "lxc.d/Z", "lxc.d/a", "lxc.d/.hidden"] {
        hooks.script(name, &touch);
    }
    fs::write(hooks.path().join("lxc.d/notes"), "not a script").unwrap();
    fs::set_permissions(hooks.path().join("lxc.d/notes"), fs::Permissions::from_mode(0o644))
        .unwrap();
    let out = virt_hook(
        hooks.path(),
        &["plan", "lxc", "c1", "prepare", "begin", "-", "--input", "-"],
        Some(domain("c1").as_bytes()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let d = hooks.path();
    let expected: Vec<String> =
        ["lxc", "lxc.d/.hidden", "lxc.d/10-a", "lxc.d/2-b", "lxc.d/Z", "lxc.d/a"]
            .iter()
            .map(|n| d.join(n).display().to_string())
            .collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().collect::<Vec<_>>(), expected);
    assert!(!marker.exists());

    let out = virt_hook(
        hooks.path(),
        &["plan", "lxc", "c1", "prepare", "begin", "-", "--input", "-", "--format", "json"],
        Some(domain("c1").as_bytes()),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["input_len"], domain("c1").len());
    assert_eq!(
        doc["scripts"][0]["argv"],
        serde_json::json!([d.join("lxc"), "c1", "prepare", "begin", "-"])
    );
    assert_eq!(doc["env"][0], serde_json::json!({"name": "LC_ALL", "value": "C"}));
    let skipped = doc["skipped"].as_array().unwrap();
    assert!(
        skipped.iter().any(|s| s["path"] == d.join("lxc.d/notes").display().to_string()),
        "{skipped:?}"
    );
}

/// Every event of libvirt's call-site tables (reference §3.1–§3.3, §3.5,
/// §3.6) reaches the script with exactly libvirt's argv and stdin.
#[test]
fn every_libvirt_event_reaches_the_script_as_libvirt_sends_it() {
    let hooks = Hooks::new();
    for driver in ["daemon", "qemu", "lxc", "libxl", "bhyve"] {
        hooks.recorder(driver, "");
    }
    let daemon = [
        ["-", "start", "-", "start"],
        ["-", "shutdown", "-", "shutdown"],
        ["-", "reload", "begin", "SIGHUP"],
    ];
    let mut events: Vec<(&str, [&str; 4])> = daemon.iter().map(|a| ("daemon", *a)).collect();
    let guest_ops = [
        ("prepare", "begin"),
        ("start", "begin"),
        ("started", "begin"),
        ("stopped", "end"),
        ("release", "end"),
        ("reconnect", "begin"),
    ];
    for driver in ["qemu", "lxc"] {
        for (op, sub) in guest_ops {
            events.push((driver, ["g1", op, sub, "-"]));
        }
        events.push((driver, ["g1", "release", "end", "from snapshot"]));
    }
    for op in ["migrate", "restore", "attach"] {
        events.push(("qemu", ["g1", op, "begin", "-"]));
    }
    // libxl and bhyve: no shutoff reason on release; bhyve has no reconnect.
    for (op, sub) in guest_ops {
        events.push(("libxl", ["g1", op, sub, "-"]));
        if op != "reconnect" {
            events.push(("bhyve", ["g1", op, sub, "-"]));
        }
    }
    events.push(("libxl", ["g1", "migrate", "begin", "-"]));
    for (driver, args) in events {
        let xml = (driver != "daemon").then(|| domain("g1"));
        let mut argv = vec!["run", driver];
        argv.extend(args);
        if xml.is_some() {
            argv.extend(["--input", "-"]);
        }
        let out = virt_hook(hooks.path(), &argv, xml.as_deref().map(str::as_bytes));
        assert_eq!(out.status.code(), Some(0), "{driver} {args:?}: {}", stderr(&out));
        let expected: String = std::iter::once(hooks.path().join(driver).display().to_string())
            .chain(args.iter().map(|a| (*a).to_owned()))
            .map(|a| a + "\n")
            .collect();
        assert_eq!(hooks.recorded(driver, "argv"), expected, "{driver} {args:?}");
        assert_eq!(hooks.recorded(driver, "stdin"), xml.unwrap_or_default(), "{driver} {args:?}");
    }
}

#[test]
fn demo_plays_the_lifecycle_from_any_directory() {
    let keep = tempfile::tempdir().unwrap();
    let plugins = PluginDir::with_drivers();
    let exe = plugins.add(&binary());
    let text = demo(Command::new(&exe).args(["demo", "--keep"]).arg(keep.path()));
    for needle in [
        "daemon - start - start",
        "qemu demo-vm prepare begin -",
        "document rewritten: <memory unit='KiB'>1048576</memory> -> <memory unit='KiB'>524288</memory>",
        "error: Hook script execution failed: internal error: Child process (",
        "unexpected exit status 1: policy: forbidden-vm is on the deny list and may not start",
        "qemu demo-vm release end shutdown",
        "then, after the answer (deferred):",
        "deferred: demo-vm is running, libvirt is free again",
        "daemon - shutdown - shutdown",
        "qemu.profiles/vfio-gpu/prepare/begin/10-detach",
        "vfio-gpu: would give 0000:01:00.0 to vfio-pci for demo-vm",
        "qemu.d/demo-vm/prepare/begin/10-hugepages",
        "hugepages: would free the memory of demo-vm (shutdown)",
        "summary: 9 events, 27 hook scripts run, 1 operation refused, 1 document rewritten, 0 warnings",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(keep.path().join("hooks/qemu.d/10-policy").is_file());
}

#[test]
fn demo_json_is_the_events_played_with_their_outcomes_and_replays() {
    let keep = tempfile::tempdir().unwrap();
    let plugins = PluginDir::with_drivers();
    let vh = || {
        let mut cmd = Command::new(binary());
        cmd.arg("--plugin-dir").arg(plugins.path());
        cmd
    };
    let doc: Value = serde_json::from_str(&demo(
        vh().args(["demo", "--format", "json", "--keep"]).arg(keep.path()),
    ))
    .unwrap();
    // The text of the same demo, kept in the same place: the same replays.
    let text = demo(vh().args(["demo", "--keep"]).arg(keep.path()));
    let events = doc.as_array().expect("an array of events");
    let blocks = demo_events(&text);
    assert_eq!(events.len(), 9, "{doc}");
    assert_eq!(blocks.len(), 9, "{text}");
    let hooks = keep.path().join("hooks");
    let relative = |outcome: &Value| -> Vec<String> {
        outcome["scripts"]
            .as_array()
            .expect("scripts is an array")
            .iter()
            .map(|s| {
                let path = Path::new(s["path"].as_str().unwrap());
                path.strip_prefix(&hooks).unwrap().display().to_string()
            })
            .collect()
    };
    let mut scripts = 0;
    for (event, (now, later, replay)) in events.iter().zip(&blocks) {
        let e = &event["event"];
        let shown = ["driver", "object", "operation", "sub_operation", "extra"]
            .map(|k| e[k].as_str().unwrap_or_else(|| panic!("{k} is not a string: {e}")))
            .join(" ");
        assert!(
            replay.ends_with(&format!("run {shown}"))
                || replay.contains(&format!("run {shown} --input ")),
            "{replay}"
        );
        assert_eq!(event["replay"].as_str(), Some(replay.as_str()));
        assert_eq!(&relative(&event["outcome"]), now, "{shown}");
        let refused = event["refused"].as_bool().expect("refused is a boolean");
        assert_eq!(refused, shown == "qemu forbidden-vm start begin -", "{shown}");
        assert_eq!(event["message"].is_string(), refused, "{shown}");
        assert_eq!(event["outcome"]["error"].is_string(), refused, "{shown}");
        match &event["deferred"] {
            Value::Null => assert!(later.is_empty(), "{shown}"),
            deferred => assert_eq!(&relative(deferred), later, "{shown}"),
        }
        for run in event["outcome"]["scripts"].as_array().unwrap() {
            assert!(run["duration"].as_f64().is_some_and(|d| d >= 0.0), "{run}");
            assert!(run["argv"].is_array(), "{run}");
        }
        scripts += event["outcome"]["scripts"].as_array().unwrap().len();
    }
    assert_eq!(events[3]["event"]["operation"], "started");
    assert!(
        events[3]["deferred"]["scripts"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("deferred/10-notify")
    );
    assert!(text.contains(&format!("summary: 9 events, {scripts} hook scripts run,")), "{text}");
    // Without --keep, no replay.
    let doc: Value = serde_json::from_str(&demo(vh().args(["demo", "--format", "json"]))).unwrap();
    assert!(doc.as_array().unwrap().iter().all(|e| e.get("replay").is_none()), "{doc}");
}

/// Runs `virt-hook demo` from `/`, with no plugin path from the
/// environment; returns its standard output after checking it succeeded
/// and said nothing on stderr.
fn demo(cmd: &mut Command) -> String {
    let out = cmd.current_dir("/").env_remove("VIRT_HOOKS_PLUGIN_PATH").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    String::from_utf8(out.stdout).unwrap()
}

/// The blocks of a demo's output that played an event: (the scripts it
/// ran, relative to the hooks directory; the deferred scripts it ran after
/// the answer; its replay command).
fn demo_events(text: &str) -> Vec<(Vec<String>, Vec<String>, String)> {
    let scripts = |lines: &str| -> Vec<String> {
        lines
            .lines()
            .filter(|l| {
                l.starts_with("    ")
                    && matches!(l.split_whitespace().nth(1), Some("exit" | "signal" | "not"))
            })
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    };
    text.split("\n\n")
        .filter_map(|block| {
            let replay = block.lines().find_map(|l| l.strip_prefix("    replay: "))?;
            let body = block.split_once('\n').map_or("", |(_, rest)| rest);
            let (now, later) =
                body.split_once("then, after the answer (deferred):").unwrap_or((body, ""));
            Some((scripts(now), scripts(later), replay.to_owned()))
        })
        .collect()
}

#[test]
fn demo_keep_keeps_every_input_and_its_run_commands_replay_each_event() {
    let keep = tempfile::tempdir().unwrap();
    // A space and a quote: the printed commands must quote them.
    let root = keep.path().join("my 'demo'");
    let plugins = PluginDir::with_drivers();
    let text = demo(
        Command::new(binary())
            .arg("--plugin-dir")
            .arg(plugins.path())
            .args(["demo", "--keep"])
            .arg(&root),
    );
    for kept in ["hooks/qemu.d/10-policy", "documents/demo-vm.xml", "documents/forbidden-vm.xml"] {
        assert!(root.join(kept).is_file(), "{kept} was not kept");
    }
    let document = fs::read_to_string(root.join("documents/forbidden-vm.xml")).unwrap();
    assert!(document.contains("<name>forbidden-vm</name>"), "{document}");

    let events = demo_events(&text);
    assert_eq!(events.len(), 9, "{text}");
    let mut refused = 0;
    for (scripts, deferred, command) in &events {
        // A command is for a shell; the JSON outcome says what ran. Run
        // from elsewhere, without stdin: nothing may come from the caller.
        let replay = Command::new("sh")
            .arg("-c")
            .arg(format!("{command} --format json"))
            .current_dir(keep.path())
            .stdin(Stdio::null())
            .env_remove("VIRT_HOOKS_PLUGIN_PATH")
            .output()
            .unwrap();
        let outcome: Value = serde_json::from_slice(&replay.stdout)
            .unwrap_or_else(|e| panic!("{command}: {e}: {}", stderr(&replay)));
        let ran: Vec<String> = outcome["scripts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let path = Path::new(s["path"].as_str().unwrap());
                path.strip_prefix(root.join("hooks")).unwrap().display().to_string()
            })
            .collect();
        assert_eq!(&ran, scripts, "{command}");
        // The deferred scripts are handed over, not run by the call: the
        // outcome names them.
        let handed_over: Vec<String> = outcome["deferred"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let path = Path::new(p.as_str().unwrap());
                path.strip_prefix(root.join("hooks")).unwrap().display().to_string()
            })
            .collect();
        assert_eq!(&handed_over, deferred, "{command}");
        assert!(!scripts.is_empty(), "{command}");
        if command.contains(" forbidden-vm start ") {
            refused += 1;
            assert_eq!(replay.status.code(), Some(1), "{command}");
            assert!(
                stderr(&replay)
                    .contains("unexpected exit status 1: policy: forbidden-vm is on the deny list"),
                "{}",
                stderr(&replay)
            );
        } else {
            assert_eq!(replay.status.code(), Some(0), "{command}: {}", stderr(&replay));
        }
        if command.contains(" restore begin ") {
            let output = outcome["output"].as_str().unwrap_or_default();
            assert!(output.contains("<memory unit='KiB'>524288</memory>"), "{outcome}");
        }
        if command.contains(" prepare begin ") {
            let detach = &outcome["scripts"][3];
            assert_eq!(detach["profile"], "vfio-gpu", "{outcome}");
        }
    }
    assert_eq!(refused, 1, "{text}");
}

#[test]
fn demo_prints_no_environment_value() {
    let keep = tempfile::tempdir().unwrap();
    let plugins = PluginDir::with_drivers();
    for keep_args in [vec![], vec!["--keep".as_ref(), keep.path().as_os_str()]] {
        let text = demo(
            Command::new(binary())
                .arg("--plugin-dir")
                .arg(plugins.path())
                .arg("demo")
                .args(&keep_args)
                .env("PATH", "/usr/bin:/bin:/virt-hooks-marker-path")
                .env("HOME", "/virt-hooks-marker-home")
                .env("USER", "virt-hooks-marker-user")
                .env("LOGNAME", "virt-hooks-marker-logname")
                .env("LD_LIBRARY_PATH", "/virt-hooks-marker-lib"),
        );
        // The refusal line is there, with the variables' names only.
        assert!(
            text.contains("Child process (LC_ALL=C LD_LIBRARY_PATH=... PATH=... HOME=... USER=... LOGNAME=... /"),
            "{text}"
        );
        assert!(!text.contains("virt-hooks-marker"), "an environment value in:\n{text}");
    }
}
