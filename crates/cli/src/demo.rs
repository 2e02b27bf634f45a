//! `virt-hook demo`: a whole domain lifecycle through the real runner and the
//! real plugins, on a bundled example hooks directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use virt_hooks::{Event, Outcome, Registry, RunError, Runner, ScriptRun, ScriptStatus};

/// The bundled hooks directory: (path relative to it, contents).
const HOOKS: &[(&str, &str)] = &[
    ("daemon", include_str!("../demo/hooks/daemon")),
    ("qemu", include_str!("../demo/hooks/qemu")),
    ("qemu.d/10-policy", include_str!("../demo/hooks/qemu.d/10-policy")),
    ("qemu.d/50-restore-memory", include_str!("../demo/hooks/qemu.d/50-restore-memory")),
    ("lxc", include_str!("../demo/hooks/lxc")),
    (
        "qemu.d/demo-vm/started/begin/deferred/10-notify",
        include_str!("../demo/hooks/qemu.d/demo-vm/started/begin/deferred/10-notify"),
    ),
];

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

/// Writes the example hooks directory, plays the lifecycle and prints the
/// timeline.
pub(crate) fn demo(
    registry: Registry,
    keep: Option<&Path>,
    build: impl FnOnce(&Path, Registry) -> anyhow::Result<Runner>,
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
    let temp;
    let root = match keep {
        Some(dir) => dir.to_owned(),
        None => {
            temp = tempfile::Builder::new().prefix("virt-hook-demo.").tempdir()?;
            temp.path().to_owned()
        }
    };
    let hooks = write_hooks(&root)?;
    let runner = build(&hooks, registry)?;

    writeln!(
        out,
        "virt-hook demo: a domain's lifecycle through the hook scripts in {}",
        hooks.display()
    )?;
    writeln!(out)?;
    let mut tally = Tally::default();
    for step in LIFECYCLE {
        play(&runner, &hooks, step, &mut tally, out)?;
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
        Some(dir) => {
            writeln!(out, "the hooks directory is kept in {}", dir.join("hooks").display())?
        }
        None => writeln!(out, "(run with --keep DIR to keep the hooks directory)")?,
    }
    Ok(crate::exit::OK)
}

fn write_hooks(root: &Path) -> anyhow::Result<PathBuf> {
    let hooks = root.join("hooks");
    for (name, text) in HOOKS {
        let path = hooks.join(name);
        let dir = path.parent().unwrap_or(&hooks);
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    }
    fs::set_permissions(root, fs::Permissions::from_mode(0o755))?;
    Ok(hooks)
}

fn play(
    runner: &Runner,
    hooks: &Path,
    step: &Step,
    tally: &mut Tally,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let xml = step
        .domain
        .map(|name| DOMAIN.replace("<name>demo-vm</name>", &format!("<name>{name}</name>")));
    let [driver, object, operation, sub_operation, extra] = step.args;
    let mut event = Event::new(driver, object, operation, sub_operation, extra);
    if let Some(xml) = &xml {
        event = event.with_input(xml.as_bytes());
    }
    tally.events += 1;
    writeln!(out, "{}  ({})", shown_args(&step.args), step.note)?;
    let (outcome, refusal) = match runner.run(&event) {
        Ok(outcome) => (outcome, None),
        Err(RunError::Refused { message, outcome, .. }) => (*outcome, Some(message)),
        Err(err) => return Err(err).context("the demo event failed unexpectedly"),
    };
    timeline(hooks, &outcome, out)?;
    if refusal.is_none() && !outcome.deferred.is_empty() {
        // What virt-hook's worker does once the hook answered libvirt.
        let document = outcome.document(event.input.unwrap_or_default()).to_vec();
        let mut after = Event::new(driver, object, operation, sub_operation, extra);
        if event.input.is_some() {
            after = after.with_input(&document);
        }
        let deferred = runner.run_deferred(&after, &outcome.event_id)?;
        writeln!(out, "    then, after the answer (deferred):")?;
        timeline(hooks, &deferred, out)?;
    }
    tally.scripts += outcome.scripts.len();
    tally.warnings += outcome.warnings.len();
    for warning in &outcome.warnings {
        writeln!(out, "    warning: {warning}")?;
    }
    if let (Some(document), Some(input)) = (&outcome.output, &xml) {
        tally.rewritten += 1;
        for (before, after) in input.lines().zip(String::from_utf8_lossy(document).lines()) {
            if before != after {
                writeln!(out, "    document rewritten: {} -> {}", before.trim(), after.trim())?;
            }
        }
    }
    if let Some(message) = refusal {
        tally.refused += 1;
        writeln!(out, "    refused; the user sees:")?;
        writeln!(out, "    error: {}", message.trim_end())?;
    }
    writeln!(out)?;
    Ok(())
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
    for run in &outcome.scripts {
        let name = run.path.strip_prefix(hooks).unwrap_or(&run.path);
        writeln!(
            out,
            "    {:<26} {:<9} {:>8}  {}",
            name.display(),
            status(run),
            millis(run.duration),
            first_line(run)
        )?;
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
    match line.char_indices().nth(67) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_owned(),
    }
}
