//! The nine scenarios, one file each, and what they share: the context,
//! the one measure-and-record path, and the runner helpers.

mod big_document;
mod concurrency;
mod deferred_handover;
mod host_memory;
mod many_scripts;
mod no_hooks;
mod one_event;
mod plugin_load;
mod whole_process;

use std::{
    ffi::{OsStr, OsString},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
};

use virt_hooks::{Event, Registry, RegistryBuilder, Runner, RunnerBuilder};

use crate::{
    artifacts::{DRIVERS, Installed},
    fail::{Context, Result, fail},
    fixtures::{SMALL_XML, hook_argv, install, new_dir, start_event},
    report::{Measured, Report, Unit, show},
    stats::{Paired, paired, timed},
};
use virt_hooks_exec::baseline::{Prepared, Spawner};

/// Everything a scenario needs.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) quick: bool,
    /// A private scratch directory.
    pub(crate) work: PathBuf,
    pub(crate) installed: Installed,
    /// The plugins of [`DRIVERS`], loaded once.
    pub(crate) registry: Arc<Registry>,
    /// The trivial hook (see `fixtures::trivial_hook`).
    pub(crate) hook: PathBuf,
    /// The hook environment, for the baselines.
    pub(crate) env: Vec<OsString>,
}

impl Ctx {
    /// `full` in a full run, `quick` with `--quick`.
    pub(crate) fn n(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }

    /// A fresh hooks directory `<work>/<name>`.
    pub(crate) fn hooks_dir(&self, name: &str) -> Result<PathBuf> {
        new_dir(&self.work.join(name))
    }

    /// A runner with its shipped defaults on `hooks`.
    pub(crate) fn runner(&self, hooks: &Path) -> Result<Runner> {
        runner(&self.registry, hooks)
    }

    /// A baseline: the script `path` with the libvirt arguments `args` and
    /// the hook environment.
    pub(crate) fn raw(&self, path: &Path, args: [&str; 4]) -> Result<Prepared> {
        Prepared::new(path, &hook_argv(path, args), &self.env)
            .with_context(|| format!("cannot prepare {}", path.display()))
    }

    /// Runs `flag args...` in a fresh process of this benchmark (see
    /// [`CHILDREN`]); returns its stdout.
    pub(crate) fn child(&self, flag: &str, args: &[&OsStr]) -> Result<String> {
        let exe = std::env::current_exe().context("cannot find the benchmark's executable")?;
        let out = Command::new(exe)
            .arg(flag)
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("cannot start the {flag} child"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(fail(format!("the {flag} child failed ({}): {text}", out.status)));
        }
        Ok(text)
    }
}

/// A runner with its shipped defaults on `hooks`.
pub(crate) fn runner(registry: &Arc<Registry>, hooks: &Path) -> Result<Runner> {
    RunnerBuilder::new(Arc::clone(registry))
        .hooks_dir(hooks)
        .build()
        .with_context(|| format!("cannot build a runner on {}", hooks.display()))
}

/// The plugins found in `dir` alone (no default directory), checked: every
/// driver of [`DRIVERS`] must be there; `strict` also refuses any plugin
/// error (the private directory holds nothing else), otherwise they are
/// only printed.
pub(crate) fn registry(dir: &Path, strict: bool) -> Result<Registry> {
    let r = load(dir);
    check(&r, dir, strict)?;
    Ok(r)
}

/// The plugins found in `dir` alone, unchecked.
pub(crate) fn load(dir: &Path) -> Registry {
    let mut b = RegistryBuilder::new();
    b.search().dir(dir).only_explicit();
    b.build()
}

/// See [`registry`].
pub(crate) fn check(r: &Registry, dir: &Path, strict: bool) -> Result<()> {
    let errors: Vec<String> = r.errors().iter().map(ToString::to_string).collect();
    let missing: Vec<&str> = DRIVERS.into_iter().filter(|d| r.get(d).is_none()).collect();
    if !missing.is_empty() || (strict && !errors.is_empty()) {
        return Err(fail(format!(
            "plugins in {}: missing {missing:?}; errors {errors:?}",
            dir.display()
        )));
    }
    for e in errors {
        println!("  (plugin not used: {e})");
    }
    Ok(())
}

/// Runs `event`; it must succeed and run `scripts` scripts.
pub(crate) fn run_ok(runner: &Runner, event: &Event<'_>, scripts: usize) -> Result<()> {
    let o = runner.run(event).context("the event failed")?;
    if o.scripts.len() != scripts {
        return Err(fail(format!("the event ran {} scripts, not {scripts}", o.scripts.len())));
    }
    Ok(())
}

/// A raw run that must exit 0.
pub(crate) fn raw_ok(
    raw: &Prepared,
    how: Spawner,
    input: Option<&[u8]>,
    out: Option<&mut Vec<u8>>,
) -> Result<()> {
    match raw.run(how, input, out).context("the raw baseline failed")? {
        0 => Ok(()),
        code => Err(fail(format!("the raw baseline exited {code}"))),
    }
}

/// One paired measurement: labels for the console, warm-up pairs and
/// measured pairs, and how the samples (wall times in seconds) become the
/// row's numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pair<'a> {
    pub(crate) ours: &'a str,
    pub(crate) base: &'a str,
    pub(crate) warm: usize,
    pub(crate) n: usize,
    pub(crate) unit: Unit,
}

impl Pair<'_> {
    /// Runs the paired measurement of the two closures and prints it.
    pub(crate) fn sample(
        self,
        ours: impl FnMut() -> Result<f64>,
        base: impl FnMut() -> Result<f64>,
    ) -> Result<Paired> {
        let p = paired(self.warm, self.n, ours, base)?;
        show(&p, self.unit, [self.ours, self.base]);
        Ok(p)
    }

    /// [`measure`](Self::measure) of two closures that return nothing:
    /// each sample is the wall time of one call.
    pub(crate) fn time(
        self,
        mut ours: impl FnMut() -> Result<()>,
        mut base: impl FnMut() -> Result<()>,
    ) -> Result<Measured> {
        self.measure(|| timed(&mut ours), || timed(&mut base))
    }

    /// [`sample`](Self::sample), summarised for a row.
    pub(crate) fn measure(
        self,
        ours: impl FnMut() -> Result<f64>,
        base: impl FnMut() -> Result<f64>,
    ) -> Result<Measured> {
        let unit = self.unit;
        Ok(Measured::of(&self.sample(ours, base)?, unit))
    }
}

/// The event of scenarios 1, 2 and 8: `qemu vm1 start begin -` with the
/// small XML, the trivial hook as `<hooks>/qemu`, and its raw twin.
pub(crate) struct OneEvent {
    runner: Runner,
    event: Event<'static>,
    raw: Prepared,
}

impl OneEvent {
    pub(crate) fn new(c: &Ctx, hooks: &str) -> Result<OneEvent> {
        let hooks = c.hooks_dir(hooks)?;
        let main = hooks.join("qemu");
        install(&c.hook, &main)?;
        let event = start_event();
        let one = OneEvent {
            runner: c.runner(&hooks)?,
            event,
            raw: c.raw(&main, ["vm1", "start", "begin", "-"])?,
        };
        one.ours()?;
        one.base(Spawner::PosixSpawn)?;
        Ok(one)
    }

    /// The event through virt-hooks.
    pub(crate) fn ours(&self) -> Result<()> {
        run_ok(&self.runner, &self.event, 1)
    }

    /// The same hook, same argv, env and stdin, spawned raw.
    pub(crate) fn base(&self, how: Spawner) -> Result<()> {
        raw_ok(&self.raw, how, Some(SMALL_XML.as_bytes()), None)
    }

    /// [`ours`](Self::ours) against raw posix_spawn, timed.
    pub(crate) fn sample(&self, pair: Pair<'_>) -> Result<Paired> {
        pair.sample(|| timed(|| self.ours()), || timed(|| self.base(Spawner::PosixSpawn)))
    }
}

/// A scenario: reads the context, records rows.
type Scenario = fn(&Ctx, &mut Report) -> Result<()>;

/// Every scenario, by number, in order.
pub(crate) const ALL: [(&str, Scenario); 9] = [
    ("1", one_event::run),
    ("2", host_memory::run),
    ("3", no_hooks::run),
    ("4", many_scripts::run),
    ("5", big_document::run),
    ("6", plugin_load::run),
    ("7", whole_process::run),
    ("8", concurrency::run),
    ("9", deferred_handover::run),
];

/// What a fresh process started with a private flag runs, given the
/// arguments after the flag.
type Child = fn(&[String]) -> Result<()>;

/// The private flags of the fresh processes some scenarios start (see
/// [`Ctx::child`]), and what each runs.
pub(crate) const CHILDREN: [(&str, Child); 3] = [
    ("--child-rss", big_document::child_rss),
    ("--child-load", plugin_load::child_load),
    ("--child-dlopen", plugin_load::child_dlopen),
];
