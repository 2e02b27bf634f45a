//! What the packages install beside the binary stays true to it: the
//! checked-in manual pages and completion scripts are exactly what
//! `virt-hook generate` makes now (a stale copy fails here, with the command
//! that regenerates it), every page has an EXIT STATUS, and the hand-written
//! configuration page and sample configuration cover every key.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use virt_hooks::Config;

const REGENERATE_MAN: &str = "cargo run --bin virt-hook -- generate man man";
const REGENERATE_COMPLETIONS: &str =
    "cargo run --bin virt-hook -- generate completions completions";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn virt_hook(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_virt-hook")).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "virt-hook {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The files of `dir` whose names `keep` accepts, by name.
fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| keep(name))
        .map(|name| {
            let bytes = fs::read(dir.join(&name)).unwrap();
            (name, bytes)
        })
        .collect()
}

/// Generates `what` afresh and compares it with the checked-in directory.
fn assert_up_to_date(what: &str, checked_in: &str, keep: fn(&str) -> bool, regenerate: &str) {
    let fresh = tempfile::tempdir().unwrap();
    virt_hook(&["generate", what, fresh.path().to_str().unwrap()]);
    let fresh = files(fresh.path(), |_| true);
    assert!(!fresh.is_empty(), "generate {what} wrote nothing");
    let old = files(&root().join(checked_in), keep);
    let mut problems = Vec::new();
    for (name, bytes) in &fresh {
        match old.get(name) {
            None => problems.push(format!("{checked_in}/{name} is missing")),
            Some(old) if old != bytes => problems.push(format!("{checked_in}/{name} is stale")),
            Some(_) => {}
        }
    }
    for name in old.keys().filter(|name| !fresh.contains_key(*name)) {
        problems.push(format!("{checked_in}/{name} is no longer generated"));
    }
    assert!(
        problems.is_empty(),
        "{}\nregenerate with `{regenerate}` in the workspace root, and commit the result",
        problems.join("\n")
    );
}

#[test]
fn the_checked_in_man_pages_are_up_to_date() {
    assert_up_to_date("man", "man", |name| name.ends_with(".1"), REGENERATE_MAN);
}

#[test]
fn the_checked_in_completions_are_up_to_date() {
    assert_up_to_date("completions", "completions", |_| true, REGENERATE_COMPLETIONS);
}

#[test]
fn every_page_has_an_exit_status_and_the_set_is_complete() {
    let pages = files(&root().join("man"), |_| true);
    let names: Vec<&str> = pages.keys().map(String::as_str).collect();
    for expected in ["virt-hook.1", "virt-hook-run.1", "virt-hook-dispatch.1", "virt-hooks.toml.5"]
    {
        assert!(names.contains(&expected), "man/{expected} is missing: {names:?}");
    }
    for (name, bytes) in &pages {
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains("\n.SH \"EXIT STATUS\"\n") || text.contains("\n.SH EXIT STATUS\n"),
            "man/{name} has no EXIT STATUS section"
        );
        assert!(text.contains("\n.SH NAME\n"), "man/{name} has no NAME section");
    }
}

#[test]
fn completions_prints_what_the_packages_install() {
    for (shell, file) in
        [("bash", "virt-hook.bash"), ("zsh", "_virt-hook"), ("fish", "virt-hook.fish")]
    {
        let out = virt_hook(&["completions", shell]);
        assert_eq!(out.stdout, fs::read(root().join("completions").join(file)).unwrap(), "{shell}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_virt-hook"))
        .args(["completions", "powershell"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[possible values: bash, zsh, fish]"));
}

#[test]
fn bash_completes_the_visible_commands_and_the_shells() {
    let script = root().join("completions/virt-hook.bash");
    let complete = |words: &str| {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}\nCOMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n\
                 \"$(complete -p virt-hook | sed 's/.*-F \\([^ ]*\\) .*/\\1/')\" virt-hook \
                 \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
                 printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                script.display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let commands = complete("virt-hook ''");
    let commands: Vec<&str> = commands.lines().collect();
    for expected in ["run", "plan", "check", "dispatch", "install", "completions"] {
        assert!(commands.contains(&expected), "{expected}: {commands:?}");
    }
    assert!(!commands.contains(&"generate"), "the hidden command is offered: {commands:?}");
    let shells = complete("virt-hook completions ''");
    let shells: Vec<&str> = shells.lines().filter(|w| !w.starts_with('-')).collect();
    assert_eq!(shells, ["bash", "zsh", "fish"]);
    assert_eq!(complete("virt-hook completions z"), "zsh\n");
    // A command's own options: what clap-rs/clap#6421 breaks for a
    // hyphenated binary name.
    assert_eq!(complete("virt-hook run --for"), "--format\n");
    assert_eq!(complete("virt-hook --hooks-dir /tmp plan --inp"), "--input\n");
}

/// The keys `virt-hook config` shows, but the per-driver table.
fn config_keys() -> Vec<(&'static str, String)> {
    Config::default()
        .entries()
        .into_iter()
        .filter(|(key, ..)| *key != "drivers")
        .map(|(key, value, _)| (key, value))
        .collect()
}

#[test]
fn the_configuration_page_describes_every_key() {
    let page = fs::read_to_string(root().join("man/virt-hooks.toml.5")).unwrap();
    let keys = config_keys();
    assert!(keys.len() >= 14, "{keys:?}");
    for (key, _) in keys.iter().map(|(k, v)| (*k, v)).chain([("on_failure", &String::new())]) {
        assert!(
            page.contains(&format!("\n\\fB{key}\\fR = ")),
            "man/virt-hooks.toml.5 does not describe `{key}` (as a .TP tag `\\fB{key}\\fR = ...`)"
        );
    }
}

/// The sample with its `# key = value` lines uncommented: the top-level
/// ones, or all of them, tables included.
fn uncomment(sample: &str, tables_too: bool) -> String {
    let mut out = String::new();
    let mut in_tables = false;
    for line in sample.lines() {
        let body = line.strip_prefix("# ").unwrap_or("");
        in_tables |= body.starts_with('[');
        let setting = body.split_once(" = ").is_some_and(|(key, _)| {
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        });
        if (setting || body.starts_with('[')) && (!in_tables || tables_too) {
            out.push_str(body);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn parse(text: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("virt-hooks.toml");
    fs::write(&path, text).unwrap();
    Config::from_file(&path).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn the_sample_configuration_shows_every_key_at_its_default() {
    let sample = fs::read_to_string(root().join("packaging/virt-hooks.toml")).unwrap();
    let defaults = config_keys();
    // As shipped it changes nothing.
    let shipped: Vec<_> = parse(&sample).entries();
    assert_eq!(shipped, Config::default().entries());

    let uncommented = uncomment(&sample, false);
    assert_ne!(uncommented, sample, "no `# key = value` line found");
    let values: BTreeMap<&str, String> =
        parse(&uncommented).entries().into_iter().map(|(k, v, _)| (k, v)).collect();
    let rotated = fs::read_to_string(root().join("packaging/logrotate")).unwrap();
    for (key, default) in &defaults {
        let count = uncommented.lines().filter(|l| l.starts_with(&format!("{key} = "))).count();
        assert_eq!(count, 1, "packaging/virt-hooks.toml must show `# {key} = ...` once");
        if default == "none" {
            // No default value to show: the example must be the rotated file.
            assert!(
                rotated.contains(&format!("\n{} {{", values[key])),
                "`{key}` = {} is not the file packaging/logrotate rotates",
                values[key]
            );
        } else {
            assert_eq!(&values[key], default, "`# {key} = ...` is not the default");
        }
    }
    // The per-driver examples are valid too.
    let all = parse(&uncomment(&sample, true));
    assert!(all.entries().iter().any(|(k, v, _)| *k == "drivers" && v.contains("on_failure")));
}

#[test]
fn uncomment_takes_settings_and_tables_only() {
    let sample =
        "# A comment = not a key.\n# timeout = 5\n#timeout = 6\n# [drivers.qemu]\n# grace = 1\n";
    assert_eq!(
        uncomment(sample, false),
        "# A comment = not a key.\ntimeout = 5\n#timeout = 6\n# [drivers.qemu]\n# grace = 1\n"
    );
    assert_eq!(
        uncomment(sample, true),
        "# A comment = not a key.\ntimeout = 5\n#timeout = 6\n[drivers.qemu]\ngrace = 1\n"
    );
}
