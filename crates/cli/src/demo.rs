//! `virt-hook demo`: a whole domain lifecycle through the real runner and the
//! real plugins, on a bundled example hooks directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use virt_hooks::{Event, Outcome, Registry, RunError, Runner, ScriptRun, ScriptStatus};

use crate::Format;

/// Who runs a bundled file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// libvirt itself: `<hooks>/<driver>` and `<hooks>/<driver>.d/*`.
    Libvirt,
    /// virt-hook as libvirt's hook: profiles and per-object scripts.
    VirtHook,
}

/// One file of the bundled hooks directory.
struct Bundled {
    /// Its path relative to the hooks directory.
    path: &'static str,
    /// Who runs it.
    place: Place,
    /// When it runs, for the reader.
    role: &'static str,
    /// Its contents.
    text: &'static str,
}

impl Bundled {
    /// Scripts are executable; declarations (`profile.toml`) are not.
    fn mode(&self) -> u32 {
        if self.path.ends_with(".toml") { 0o644 } else { 0o755 }
    }
}

/// The bundled hooks directory, libvirt's places first. A new kind of
/// script is one more entry here (and its file under `demo/hooks/`).
const HOOKS: &[Bundled] = &[
    Bundled {
        path: "daemon",
        place: Place::Libvirt,
        role: "every daemon event",
        text: include_str!("../demo/hooks/daemon"),
    },
    Bundled {
        path: "qemu",
        place: Place::Libvirt,
        role: "every qemu event, first",
        text: include_str!("../demo/hooks/qemu"),
    },
    Bundled {
        path: "qemu.d/10-policy",
        place: Place::Libvirt,
        role: "every qemu event, then in name order",
        text: include_str!("../demo/hooks/qemu.d/10-policy"),
    },
    Bundled {
        path: "qemu.d/50-restore-memory",
        place: Place::Libvirt,
        role: "every qemu event (a filter on restore)",
        text: include_str!("../demo/hooks/qemu.d/50-restore-memory"),
    },
    Bundled {
        path: "lxc",
        place: Place::Libvirt,
        role: "every lxc event (none in this demo)",
        text: include_str!("../demo/hooks/lxc"),
    },
    Bundled {
        path: "qemu.profiles/vfio-gpu/profile.toml",
        place: Place::VirtHook,
        role: "declares the profile vfio-gpu and its property gpu",
        text: include_str!("../demo/hooks/qemu.profiles/vfio-gpu/profile.toml"),
    },
    Bundled {
        path: "qemu.profiles/vfio-gpu/prepare/begin/10-detach",
        place: Place::VirtHook,
        role: "prepare begin of each domain naming vfio-gpu in its <metadata>",
        text: include_str!("../demo/hooks/qemu.profiles/vfio-gpu/prepare/begin/10-detach"),
    },
    Bundled {
        path: "qemu.profiles/vfio-gpu/release/end",
        place: Place::VirtHook,
        role: "release end of those domains (a single script)",
        text: include_str!("../demo/hooks/qemu.profiles/vfio-gpu/release/end"),
    },
    Bundled {
        path: "qemu.d/demo-vm/prepare/begin/10-hugepages",
        place: Place::VirtHook,
        role: "prepare begin of demo-vm only",
        text: include_str!("../demo/hooks/qemu.d/demo-vm/prepare/begin/10-hugepages"),
    },
    Bundled {
        path: "qemu.d/demo-vm/started/begin/deferred/10-notify",
        place: Place::VirtHook,
        role: "started begin of demo-vm, after virt-hook answered libvirt (deferred)",
        text: include_str!("../demo/hooks/qemu.d/demo-vm/started/begin/deferred/10-notify"),
    },
    Bundled {
        path: "qemu.d/demo-vm/release/end",
        place: Place::VirtHook,
        role: "release end of demo-vm only (a single script)",
        text: include_str!("../demo/hooks/qemu.d/demo-vm/release/end"),
    },
];

/// The demo's configuration file: the layout that runs libvirt's scripts,
/// then the profiles and per-object ones (what libvirt plus virt-hook as its
/// hook run), and no history, so the demo leaves nothing in the system's.
const CONFIG: &str = "\
# virt-hook demo's configuration: `virt-hook --config <this file> run ...`
# replays an event as the demo played it.
layout = \"both\"
audit_log = false
";

/// The bundled domain XML, for the domain `demo-vm`.
const DOMAIN: &str = include_str!("../demo/domain.xml");

/// The drivers the lifecycle needs.
const NEEDED: [&str; 2] = ["daemon", "qemu"];

/// One step of the lifecycle.
struct Step {
    args: [&'static str; 5],
    /// Which domain's XML goes on stdin, if any.
    domain: Option<&'static str>,
    /// What a reader should notice.
    note: &'static str,
}

const LIFECYCLE: &[Step] = &[
    Step { args: ["daemon", "-", "start", "-", "start"], domain: None, note: "the daemon starts" },
    Step {
        args: ["qemu", "demo-vm", "prepare", "begin", "-"],
        domain: Some("demo-vm"),
        note: "before any resource is allocated",
    },
    Step {
        args: ["qemu", "demo-vm", "start", "begin", "-"],
        domain: Some("demo-vm"),
        note: "just before QEMU is launched",
    },
    Step {
        args: ["qemu", "demo-vm", "started", "begin", "-"],
        domain: Some("demo-vm"),
        note: "QEMU runs",
    },
    Step {
        args: ["qemu", "demo-vm", "restore", "begin", "-"],
        domain: Some("demo-vm"),
        note: "a filter: 50-restore-memory rewrites the XML",
    },
    Step {
        args: ["qemu", "forbidden-vm", "start", "begin", "-"],
        domain: Some("forbidden-vm"),
        note: "10-policy refuses this start",
    },
    Step {
        args: ["qemu", "demo-vm", "stopped", "end", "-"],
        domain: Some("demo-vm"),
        note: "QEMU is gone; failures here are only logged",
    },
    Step {
        args: ["qemu", "demo-vm", "release", "end", "shutdown"],
        domain: Some("demo-vm"),
        note: "resources released; extra is the shutoff reason",
    },
    Step {
        args: ["daemon", "-", "shutdown", "-", "shutdown"],
        domain: None,
        note: "the daemon shuts down",
    },
];

/// What the lifecycle came to.
#[derive(Debug, Default)]
struct Tally {
    events: usize,
    scripts: usize,
    refused: usize,
    warnings: usize,
    rewritten: usize,
}

/// The files the demo plays from: everything a `run` needs to replay one of
/// its events.
struct Inputs {
    /// The hooks directory.
    hooks: PathBuf,
    /// The configuration file ([`CONFIG`]).
    config: PathBuf,
    /// The directory of the domains' documents, `<domain>.xml`.
    documents: PathBuf,
}

impl Inputs {
    /// The document of `domain`.
    fn document(&self, domain: &str) -> PathBuf {
        self.documents.join(format!("{domain}.xml"))
    }
}

/// How to run an event again: this executable, with the demo's
/// configuration, hooks directory, documents and plugin directories.
struct Replay {
    exe: PathBuf,
    /// The directories of the plugins the demo loaded, unless the
    /// executable's own (which is searched anyway).
    plugin_dirs: Vec<PathBuf>,
}

impl Replay {
    fn new(registry: &Registry) -> anyhow::Result<Replay> {
        let exe = std::env::current_exe().context("cannot find the path of this executable")?;
        let mut plugin_dirs: Vec<PathBuf> = Vec::new();
        for driver in NEEDED.iter().filter_map(|d| registry.get(d)) {
            let dir = driver.file().and_then(Path::parent);
            if let Some(dir) = dir.filter(|d| Some(*d) != exe.parent()) {
                if !plugin_dirs.iter().any(|known| known == dir) {
                    plugin_dirs.push(dir.to_owned());
                }
            }
        }
        Ok(Replay { exe, plugin_dirs })
    }

    /// The shell command that runs `step` again.
    fn command(&self, inputs: &Inputs, step: &Step) -> String {
        let mut words: Vec<String> = vec![shell_word(&self.exe)];
        words.push(format!("--config {}", shell_word(&inputs.config)));
        words.push(format!("--hooks-dir {}", shell_word(&inputs.hooks)));
        for dir in &self.plugin_dirs {
            words.push(format!("--plugin-dir {}", shell_word(dir)));
        }
        words.push("run".to_owned());
        words.push(shown_args(&step.args));
        if let Some(domain) = step.domain {
            words.push(format!("--input {}", shell_word(&inputs.document(domain))));
        }
        words.join(" ")
    }
}

/// Writes the example hooks directory, the documents and the
/// configuration, plays the lifecycle and prints the timeline (in JSON, the
/// events played).
///
/// `build` makes the runner from the configuration file and the hooks
/// directory, as `virt-hook --config FILE --hooks-dir DIR run` does.
pub(crate) fn demo(
    registry: Registry,
    keep: Option<&Path>,
    format: Format,
    build: impl FnOnce(&Path, &Path, Registry) -> anyhow::Result<Runner>,
    out: &mut impl Write,
) -> anyhow::Result<u8> {
    let missing: Vec<&str> = NEEDED.iter().copied().filter(|d| registry.get(d).is_none()).collect();
    if !missing.is_empty() {
        bail!(
            "the demo needs the {} driver plugin(s), which were not found on the plugin search path \
             (build them with `cargo build --release --workspace`, or name their directory with --plugin-dir)",
            missing.join(" and ")
        );
    }
    let replay = keep.map(|_| Replay::new(&registry)).transpose()?;
    let temp;
    let root = match keep {
        Some(dir) => std::path::absolute(dir)
            .with_context(|| format!("cannot make {} an absolute path", dir.display()))?,
        None => {
            temp = tempfile::Builder::new().prefix("virt-hook-demo.").tempdir()?;
            temp.path().to_owned()
        }
    };
    let inputs = write_inputs(&root)?;
    let runner = build(&inputs.config, &inputs.hooks, registry)?;

    if format == Format::Json {
        let mut played = Vec::new();
        for step in LIFECYCLE {
            let replay = replay.as_ref().map(|r| r.command(&inputs, step));
            played.push(play(&runner, step, replay)?);
        }
        crate::print_json(out, &played)?;
        return Ok(crate::exit::OK);
    }
    writeln!(
        out,
        "virt-hook demo: a domain's lifecycle through the hook scripts in {}",
        inputs.hooks.display()
    )?;
    writeln!(out)?;
    show_layout(out)?;
    let mut tally = Tally::default();
    for step in LIFECYCLE {
        let replay = replay.as_ref().map(|r| r.command(&inputs, step));
        let played = play(&runner, step, replay)?;
        show(&inputs.hooks, step, &played, &mut tally, out)?;
    }
    writeln!(
        out,
        "summary: {} events, {} hook scripts run, {} refused, {} rewritten, {}",
        tally.events,
        tally.scripts,
        plural(tally.refused, "operation"),
        plural(tally.rewritten, "document"),
        plural(tally.warnings, "warning"),
    )?;
    match keep {
        Some(_) => writeln!(
            out,
            "the hooks directory, the documents and the configuration are kept in {}; \
             each replay line runs its event again",
            root.display()
        )?,
        None => writeln!(
            out,
            "(run with --keep DIR to keep the hooks directory and the documents, \
             with a command that replays each event)"
        )?,
    }
    Ok(crate::exit::OK)
}

/// The bundled files, by who runs them.
fn show_layout(out: &mut impl Write) -> anyhow::Result<()> {
    let width = name_width();
    for (place, title) in [
        (Place::Libvirt, "libvirt runs these itself:"),
        (Place::VirtHook, "virt-hook runs these, as libvirt's hook (virt-hook install --libvirt):"),
    ] {
        writeln!(out, "{title}")?;
        for file in HOOKS.iter().filter(|f| f.place == place) {
            writeln!(out, "    {:<width$}  {}", file.path, file.role)?;
        }
    }
    writeln!(out)?;
    Ok(())
}

/// The width of the name column: the longest bundled path.
fn name_width() -> usize {
    HOOKS.iter().map(|f| f.path.len()).max().unwrap_or(0)
}

fn write_inputs(root: &Path) -> anyhow::Result<Inputs> {
    let inputs = Inputs {
        hooks: root.join("hooks"),
        config: root.join("virt-hooks.toml"),
        documents: root.join("documents"),
    };
    for file in HOOKS {
        write_file(&inputs.hooks, &inputs.hooks.join(file.path), file.text, file.mode())?;
    }
    for domain in LIFECYCLE.iter().filter_map(|step| step.domain) {
        write_file(&inputs.documents, &inputs.document(domain), &document(domain), 0o644)?;
    }
    write_file(root, &inputs.config, CONFIG, 0o644)?;
    fs::set_permissions(root, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot set the mode of {}", root.display()))?;
    Ok(inputs)
}

/// Writes `text` to `path` with `mode`, creating the directories from
/// `top` down to it (mode 0755: the security rules refuse scripts under
/// directories others may write).
fn write_file(top: &Path, path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(top);
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for dir in dir.ancestors().take_while(|d| d.starts_with(top)) {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    Ok(())
}

/// The bundled domain XML, named `name`.
fn document(name: &str) -> String {
    DOMAIN.replace("<name>demo-vm</name>", &format!("<name>{name}</name>"))
}

/// One event the demo played: what `--format json` prints for each.
#[derive(Debug, Serialize)]
struct Played {
    event: PlayedEvent,
    /// What a reader should notice.
    note: &'static str,
    /// The outcome, as `run --format json` prints it (also when refused).
    outcome: Outcome,
    /// Whether the operation was refused.
    refused: bool,
    /// The refusal's message, as libvirt would report it.
    message: Option<String>,
    /// The deferred scripts' outcome, when the event has any and was not
    /// refused.
    deferred: Option<Outcome>,
    /// The command that replays the event (with `--keep`).
    #[serde(skip_serializing_if = "Option::is_none")]
    replay: Option<String>,
}

/// The five arguments of an event.
#[derive(Debug, Serialize)]
struct PlayedEvent {
    driver: &'static str,
    object: &'static str,
    operation: &'static str,
    sub_operation: &'static str,
    extra: &'static str,
}

/// Runs `step`'s event, then its deferred scripts as virt-hook's worker
/// would.
fn play(runner: &Runner, step: &'static Step, replay: Option<String>) -> anyhow::Result<Played> {
    let xml = step.domain.map(document);
    let [driver, object, operation, sub_operation, extra] = step.args;
    let mut event = Event::new(driver, object, operation, sub_operation, extra);
    if let Some(xml) = &xml {
        event = event.with_input(xml.as_bytes());
    }
    let (outcome, refusal) = match runner.run(&event) {
        Ok(outcome) => (outcome, None),
        Err(RunError::Refused { message, outcome, .. }) => (*outcome, Some(message)),
        Err(err) => return Err(err).context("the demo event failed unexpectedly"),
    };
    let mut deferred = None;
    if refusal.is_none() && !outcome.deferred.is_empty() {
        // What virt-hook's worker does once the hook answered libvirt.
        let document = outcome.document(event.input.unwrap_or_default()).to_vec();
        let mut after = Event::new(driver, object, operation, sub_operation, extra);
        if event.input.is_some() {
            after = after.with_input(&document);
        }
        deferred = Some(runner.run_deferred(&after, &outcome.event_id)?);
    }
    Ok(Played {
        event: PlayedEvent { driver, object, operation, sub_operation, extra },
        note: step.note,
        outcome,
        refused: refusal.is_some(),
        message: refusal,
        deferred,
        replay,
    })
}

/// Prints a played event's block of the timeline.
fn show(
    hooks: &Path,
    step: &Step,
    played: &Played,
    tally: &mut Tally,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let outcome = &played.outcome;
    tally.events += 1;
    writeln!(out, "{}  ({})", shown_args(&step.args), step.note)?;
    timeline(hooks, outcome, out)?;
    if let Some(deferred) = &played.deferred {
        writeln!(out, "    then, after the answer (deferred):")?;
        timeline(hooks, deferred, out)?;
    }
    tally.scripts += outcome.scripts.len();
    tally.warnings += outcome.warnings.len();
    for warning in &outcome.warnings {
        writeln!(out, "    warning: {warning}")?;
    }
    if let (Some(document), Some(domain)) = (&outcome.output, step.domain) {
        tally.rewritten += 1;
        let input = self::document(domain);
        for (before, after) in input.lines().zip(String::from_utf8_lossy(document).lines()) {
            if before != after {
                writeln!(out, "    document rewritten: {} -> {}", before.trim(), after.trim())?;
            }
        }
    }
    if let Some(message) = &played.message {
        tally.refused += 1;
        writeln!(out, "    refused; the user sees (the environment's values elided):")?;
        writeln!(out, "    error: {}", without_env_values(message.trim_end()))?;
    }
    if let Some(command) = &played.replay {
        writeln!(out, "    replay: {command}")?;
    }
    writeln!(out)?;
    Ok(())
}

/// libvirt's failure message with the values of the host's environment
/// elided: `Child process (LC_ALL=C PATH=/usr/bin:/bin /hooks/qemu ...)`
/// becomes `Child process (LC_ALL=C PATH=... /hooks/qemu ...)`. The reader
/// asked for a demo, not for their `PATH` or `HOME`; `LC_ALL=C` is
/// libvirt's own.
fn without_env_values(message: &str) -> String {
    const HEAD: &str = "Child process (";
    let Some(at) = message.find(HEAD) else {
        return message.to_owned();
    };
    let (before, mut rest) = message.split_at(at + HEAD.len());
    let mut out = String::from(before);
    loop {
        let end = shell_word_end(rest);
        let word = &rest[..end];
        match env_name(word) {
            Some(name) if rest[end..].starts_with(' ') => {
                if word == "LC_ALL=C" {
                    out.push_str(word);
                } else {
                    out.push_str(name);
                    out.push_str("=...");
                }
                out.push(' ');
                rest = &rest[end + 1..];
            }
            _ => break,
        }
    }
    out.push_str(rest);
    out
}

/// Where the shell word `text` starts with ends: at the first space outside
/// single quotes (libvirt's escaping: `'...'`, with `'\''` for a quote).
fn shell_word_end(text: &str) -> usize {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if !quoted => escaped = true,
            '\'' => quoted = !quoted,
            ' ' if !quoted => return i,
            _ => {}
        }
    }
    text.len()
}

/// `NAME` when `word` is `NAME=...` and `NAME` a variable's name.
fn env_name(word: &str) -> Option<&str> {
    let (name, _) = word.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    let valid = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(name)
}

/// `path` as one shell word: unchanged when it holds only characters no
/// shell treats specially, else in single quotes.
fn shell_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c));
    if plain { text.into_owned() } else { format!("'{}'", text.replace('\'', "'\\''")) }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

fn shown_args(args: &[&str; 5]) -> String {
    args.iter()
        .map(|a| if a.contains(' ') { format!("'{a}'") } else { (*a).to_owned() })
        .collect::<Vec<_>>()
        .join(" ")
}

fn timeline(hooks: &Path, outcome: &Outcome, out: &mut impl Write) -> anyhow::Result<()> {
    if outcome.scripts.is_empty() {
        writeln!(out, "    (no hook scripts)")?;
    }
    let width = name_width();
    for run in &outcome.scripts {
        let name = run.path.strip_prefix(hooks).unwrap_or(&run.path);
        let line = format!(
            "    {:<width$}  {:<9} {:>8}  {}",
            name.display(),
            status(run),
            millis(run.duration),
            first_line(run)
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn status(run: &ScriptRun) -> String {
    match run.status {
        ScriptStatus::Exited { code } => format!("exit {code}"),
        ScriptStatus::Signaled { signal } => format!("signal {signal}"),
        _ => "not run".to_owned(),
    }
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The first line a script printed: stderr when it failed, else stdout.
fn first_line(run: &ScriptRun) -> String {
    let stream = if run.succeeded() { &run.stdout } else { &run.stderr };
    let text = String::from_utf8_lossy(stream);
    let line = text.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_values_are_elided_and_nothing_else() {
        let message = "Hook script execution failed: internal error: Child process (LC_ALL=C \
                       PATH=/secret/bin:/usr/bin HOME='/home/my '\\''self' TMPDIR=/t \
                       '/hooks dir/qemu.d/10-policy' 'my vm' start begin -) unexpected exit \
                       status 1: PATH=/not/env stays";
        assert_eq!(
            without_env_values(message),
            "Hook script execution failed: internal error: Child process (LC_ALL=C PATH=... \
             HOME=... TMPDIR=... '/hooks dir/qemu.d/10-policy' 'my vm' start begin -) \
             unexpected exit status 1: PATH=/not/env stays"
        );
    }

    #[test]
    fn a_path_with_an_equals_sign_is_not_a_variable() {
        let message = "Child process (LC_ALL=C PATH=/x /tmp/a=b/qemu vm start begin -) unexpected";
        assert_eq!(
            without_env_values(message),
            "Child process (LC_ALL=C PATH=... /tmp/a=b/qemu vm start begin -) unexpected"
        );
    }

    #[test]
    fn messages_without_a_child_process_are_unchanged() {
        let message = "Hook script execution failed: hook script /h/q timed out after 1s";
        assert_eq!(without_env_values(message), message);
    }

    #[test]
    fn shell_words_quote_what_a_shell_would_split_or_expand() {
        assert_eq!(shell_word(Path::new("/tmp/d-1/x.xml")), "/tmp/d-1/x.xml");
        assert_eq!(shell_word(Path::new("/tmp/my dir")), "'/tmp/my dir'");
        assert_eq!(shell_word(Path::new("/tmp/it's")), "'/tmp/it'\\''s'");
        assert_eq!(shell_word(Path::new("/tmp/$HOME*")), "'/tmp/$HOME*'");
        assert_eq!(shell_word(Path::new("")), "''");
    }

    #[test]
    fn every_bundled_file_has_a_distinct_path_and_scripts_are_executable() {
        for (i, file) in HOOKS.iter().enumerate() {
            assert!(HOOKS[..i].iter().all(|f| f.path != file.path), "{} twice", file.path);
            let script = !file.path.ends_with(".toml");
            assert_eq!(file.mode() & 0o111 != 0, script, "{}", file.path);
            assert_eq!(file.text.starts_with("#!"), script, "{}", file.path);
        }
    }
}
