//! `virt-hook`: runs, plans and audits libvirt-style hook scripts through the
//! virt-hooks host library and its driver plugins.
//!
//! Exit codes: 0 when the operation may go on (or the listing is clean), 1
//! when it is refused (or something is wrong), 2 for usage and validation
//! errors, 128 + the signal number when interrupted (130 SIGINT, 143
//! SIGTERM, 129 SIGHUP, 131 SIGQUIT, 138/140 SIGUSR1/SIGUSR2).
//!
//! Executed under a driver's name (`/etc/libvirt/hooks/qemu -> virt-hook`;
//! the name of the path the kernel executed, not `argv[0]`), it is libvirt's
//! hook script and runs the event's per-object scripts (see `dispatch`).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)] // the binary is where output happens

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use virt_hooks::{
    Config, DEFAULT_AUDIT_LOG, DEFAULT_CONFIG_FILE, LIBVIRT_DRIVERS, Layout, PLUGIN_PATH_ENV,
    REPORT_TARGET, Registry, RegistryBuilder, Runner, RunnerBuilder, SYSTEM_PLUGIN_DIR, Source,
};

mod check;
mod deferred;
mod demo;
mod dispatch;
mod drivers;
mod generate;
mod input;
mod install;
mod log_cmd;
mod logger;
mod run;
mod spool;

/// The name this program answers to; under any other name it is a hook.
const NAME: &str = "virt-hook";
/// Names the configuration file, like `--config`.
const CONFIG_ENV: &str = "VIRT_HOOKS_CONFIG";
/// Names the hooks directory, like `--hooks-dir`.
const HOOKS_DIR_ENV: &str = "VIRT_HOOKS_DIR";
/// Names the audit log (empty: none), over the configuration file.
const AUDIT_LOG_ENV: &str = "VIRT_HOOKS_AUDIT_LOG";

/// Run libvirt-style hook scripts: the same arguments, stdin, environment and
/// error text as libvirt, with drivers loaded from plugins.
#[derive(Debug, Parser)]
#[command(name = NAME, version, long_version = generate::long_version(), about, max_term_width = 100)]
struct Cli {
    /// Look for driver plugins in DIR first (repeatable); then
    /// VIRT_HOOKS_PLUGIN_PATH, the configuration's plugin_path, the
    /// executable's directory and the system plugin directory (--version).
    #[arg(long = "plugin-dir", value_name = "DIR", global = true)]
    plugin_dirs: Vec<PathBuf>,

    /// The hooks directory (or VIRT_HOOKS_DIR) [default: the configuration's,
    /// else /etc/libvirt/hooks].
    #[arg(long, value_name = "DIR", global = true)]
    hooks_dir: Option<PathBuf>,

    /// The configuration file (or VIRT_HOOKS_CONFIG) [default:
    /// /etc/virt-hooks/virt-hooks.toml, if it exists].
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,

    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// No warnings on the terminal, only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the loaded drivers with their operation tables, and the plugins
    /// that failed to load.
    Drivers {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run the hook scripts of one event, as libvirt would. Exit 0 when the
    /// operation may go on, 1 when it is refused, 2 for a bad event.
    Run {
        #[command(flatten)]
        event: run::EventArgs,
        /// Per-script timeout for this call, as in the configuration: seconds
        /// (`90`, `1.5`) or with a unit (`500ms`, `90s`, `5m`); 0 means none.
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        timeout: Option<Duration>,
        /// Output format: text prints a filter's resulting document on
        /// stdout; json prints the whole outcome.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the hook scripts an event would run, in order; runs nothing.
    Plan {
        #[command(flatten)]
        event: run::EventArgs,
        /// Which scripts to list (default: per-object where
        /// `<hooks>/<driver>` is virt-hook, as that hook will run them; else
        /// the configuration's layout).
        #[arg(long, value_enum)]
        layout: Option<LayoutArg>,
        /// Output format: text is one path per line; json adds argv, the
        /// environment, the input size and the skipped files.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Play a whole domain lifecycle on a bundled example hooks directory,
    /// through the real runner and plugins.
    Demo {
        /// Write the example hooks directory, the documents and the
        /// configuration under DIR and keep them; each event is printed with
        /// the `run` command that replays it.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
        /// Output format: json prints one array of the events played, each
        /// with its outcome as `run --format json` prints it.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Audit the hooks directory, the plugins and the configuration without
    /// running anything. Exit 0 when clean, 1 when anything is wrong.
    Check {
        /// Which scripts each driver runs (default: per-object where
        /// `<hooks>/<driver>` is virt-hook, as that hook will run them; else
        /// the configuration's layout).
        #[arg(long, value_enum)]
        layout: Option<LayoutArg>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the latest hook script runs from the audit log, oldest first;
    /// reads only.
    Log(log_cmd::LogArgs),
    /// Print the effective configuration and where each value came from.
    Config {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run the per-object scripts of an event as libvirt's hook would:
    /// `<hooks>/<driver>.d/<object>/<op>/<subop>`.
    Dispatch {
        /// The driver, as libvirt's hook script name.
        driver: String,
        /// The object, operation, sub-operation and extra, as libvirt passes them.
        #[arg(num_args = 4, value_names = ["OBJECT", "OP", "SUBOP", "EXTRA"])]
        args: Vec<String>,
    },
    /// Make virt-hook libvirt's hook script for some drivers (all loaded
    /// ones by default): `<hooks>/<driver>` becomes a link to virt-hook.
    Install {
        /// Install for libvirt (the only daemon supported so far).
        #[arg(long, required = true)]
        libvirt: bool,
        /// Copy the executable instead of linking to it.
        #[arg(long)]
        copy: bool,
        /// Replace existing hook scripts that are not virt-hook; each is kept
        /// as `<driver>.virt-hook-backup`.
        #[arg(long)]
        force: bool,
        /// Print what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Output format: json prints each change (done or, with
        /// --dry-run, planned) and what was refused.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// The drivers (loaded ones); default every loaded driver.
        drivers: Vec<String>,
    },
    /// Remove virt-hook as libvirt's hook script (only links to, or copies
    /// of, virt-hook) and put back what `install --force` kept.
    Uninstall {
        /// Uninstall from libvirt (the only daemon supported so far).
        #[arg(long, required = true)]
        libvirt: bool,
        /// Print what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Output format: json prints each change (done or, with
        /// --dry-run, planned) and what was refused.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// The drivers; default every driver virt-hook is installed for.
        drivers: Vec<String>,
    },
    /// The detached worker that runs the deferred scripts a hook handed
    /// over (started by virt-hook itself, with the spool entry on stdin).
    #[command(hide = true, name = "deferred-run")]
    DeferredRun {
        /// The spool directory.
        #[arg(long, value_name = "DIR")]
        spool: PathBuf,
        /// The second process: run the entry (the first only starts it).
        #[arg(long)]
        detached: bool,
    },
    /// Print the completion script for SHELL on stdout.
    ///
    /// The packages install them. By hand, for example: `virt-hook
    /// completions bash > ~/.local/share/bash-completion/completions/virt-hook`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: generate::Shell,
    },
    /// Write the manual pages or the completion scripts into a directory,
    /// for packaging (docs/packaging.md).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: generate::Generate,
    },
}

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Readable text.
    Text,
    /// One JSON document.
    Json,
}

/// `--layout`: the configuration's `layout` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LayoutArg {
    /// libvirt's: `<hooks>/<driver>`, then `<hooks>/<driver>.d/*`.
    Libvirt,
    /// Only `<hooks>/<driver>.d/<object>/<op>/<subop>`: virt-hook as
    /// libvirt's hook.
    PerObject,
    /// libvirt's scripts, then the per-object ones.
    Both,
}

impl From<LayoutArg> for Layout {
    fn from(arg: LayoutArg) -> Layout {
        match arg {
            LayoutArg::Libvirt => Layout::Libvirt,
            LayoutArg::PerObject => Layout::PerObject,
            LayoutArg::Both => Layout::Both,
        }
    }
}

/// The process exit codes, in one place.
pub(crate) mod exit {
    /// The operation may go on; everything is clean.
    pub(crate) const OK: u8 = 0;
    /// The operation was refused, or something is wrong.
    pub(crate) const REFUSED: u8 = 1;
    /// Usage or validation error.
    pub(crate) const USAGE: u8 = 2;
    /// Interrupted by SIGINT.
    pub(crate) const SIGINT: u8 = 130;
}

/// Says what the start-up could not do: without the clean signal state or
/// the subreaper, hooks run, but with less containment.
fn report_setup(signals: &std::io::Result<()>, subreaper: &std::io::Result<()>) {
    if let Err(err) = signals {
        log::warn!("cannot reset the signal state inherited from the launcher: {err}");
    }
    if let Err(err) = subreaper {
        log::warn!(
            "cannot become a child subreaper ({err}); descendants of a hook that detach from it \
             cannot be followed"
        );
    }
}

fn main() -> ExitCode {
    // Before anything runs (and before any thread exists): a launcher's
    // blocked signals or ignored SIGCHLD must not reach the hooks' handling,
    // and orphans of the hooks must come to us, not to init.
    let signals = virt_hooks::reset_signal_state();
    let subreaper = virt_hooks::become_subreaper();
    let argv: Vec<OsString> = std::env::args_os().collect();
    let executed = executed_path();
    let result = match hook_driver(&executed) {
        Some(driver) => {
            // libvirt's own stderr capture would quote our warnings in its
            // error message; keep stderr for the scripts' words and our
            // errors.
            // Warnings and errors also go to the system log.
            logger::init(&logger::Setup { verbose: 0, quiet_level: "error", system: true });
            report_setup(&signals, &subreaper);
            as_libvirt_hook(&executed, driver, &argv[1..])
        }
        None => {
            let cli = Cli::parse_from(argv);
            // Commands that run hook scripts also log to the system log;
            // the others create and open nothing.
            let system = matches!(
                cli.command,
                Command::Run { .. } | Command::Dispatch { .. } | Command::DeferredRun { .. }
            );
            logger::init(&logger::Setup {
                verbose: cli.verbose,
                quiet_level: if cli.quiet { "error" } else { "warn" },
                system,
            });
            report_setup(&signals, &subreaper);
            run(cli)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::from(exit::OK);
            }
            // Printed below; the system log gets it too.
            log::error!(target: REPORT_TARGET, "{err:#}");
            eprintln!("error: {err:#}");
            ExitCode::from(exit::USAGE)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    // Generated files depend on nothing configured.
    match &cli.command {
        Command::Completions { shell } => return generate::completions(*shell, &mut out),
        Command::Generate { what } => return generate::generate(what, &mut out),
        _ => {}
    }
    // `check` reports a bad configuration file instead of stopping at it.
    let (config, config_error) = load_config(&cli);
    if let Some(err) =
        config_error.as_ref().filter(|_| !matches!(cli.command, Command::Check { .. }))
    {
        anyhow::bail!("{err}");
    }
    if let Command::Config { format } = cli.command {
        for warning in load_registry(&config, None).unknown_sections(&config) {
            log::warn!("{warning}");
        }
        return print_config(&config, format, &mut out);
    }
    if let Command::DeferredRun { spool, detached } = &cli.command {
        let spool = spool::Spool::new(Some(spool), config.deferred_parallel);
        return deferred::worker(*detached, &spool, |entry| {
            let mut config = config.clone();
            config.set_hooks_dir(&entry.hooks_dir, Source::Default);
            let registry = load_registry(&config, Some(&entry.driver));
            build_runner(&config, registry, Some(entry.layout))
        });
    }
    if let Command::Log(args) = &cli.command {
        // When none is set, the default file, even when not root: reading
        // it is what an administrator does.
        let path = match (&config.audit_log, config.source_of("audit_log")) {
            (Some(path), _) => Some(path.clone()),
            (None, Source::Default) => Some(PathBuf::from(DEFAULT_AUDIT_LOG)),
            (None, _) => None,
        };
        let code = log_cmd::log(args, path.as_deref(), &mut out)?;
        out.flush()?;
        return Ok(code);
    }
    // A command about one event loads only that event's driver, when a
    // plugin file is named after it (a plugin load is most of a short run).
    let only = match &cli.command {
        Command::Run { event, .. } | Command::Plan { event, .. } => Some(event.driver.as_str()),
        Command::Dispatch { driver, .. } => Some(driver.as_str()),
        _ => None,
    };
    let registry = load_registry(&config, only);
    let code = match cli.command {
        Command::Drivers { format } => drivers::print(&registry, format, &mut out)?,
        Command::Run { event, timeout, format } => {
            let mut config = config;
            if let Some(timeout) = timeout {
                config.set_timeout(timeout, Source::Flag("--timeout".into()));
            }
            let runner = build_runner(&config, registry, None)?;
            let spool = spool_of(&config);
            run::run(&runner, &event, config.max_input, &spool, format, &mut out)?
        }
        Command::Plan { event, layout, format } => {
            let layout = layout.map(Layout::from).or_else(|| {
                install::is_virt_hook(&config.hooks_dir.join(&event.driver))
                    .then_some(Layout::PerObject)
            });
            let runner = build_runner(&config, registry, layout)?;
            run::plan(&runner, &event, config.max_input, format, &mut out)?
        }
        Command::Demo { keep, format } => demo::demo(
            registry,
            keep.as_deref(),
            format,
            // As `virt-hook --config FILE --hooks-dir DIR run` would: the
            // replay lines the demo prints run exactly this.
            |file, hooks, registry| {
                let mut config = load_config_file(Some(file.to_owned()))?;
                config.set_hooks_dir(hooks, Source::Flag("--hooks-dir".into()));
                build_runner(&config, registry, None)
            },
            &mut out,
        )?,
        Command::Check { layout, format } => {
            let warnings = registry.unknown_sections(&config);
            let runner = build_runner(&config, registry, None)?;
            let layout = layout.map(Layout::from);
            check::check(&runner, layout, config_error.as_ref(), &warnings, format, &mut out)?
        }
        Command::Dispatch { driver, args } => {
            let call = dispatch::Call::new(driver, args)?;
            let runner = build_runner(&config, registry, Some(Layout::PerObject))?;
            dispatch::dispatch(&runner, &call, config.max_input, &spool_of(&config), &mut out)?
        }
        Command::Install { libvirt: _, copy, force, dry_run, format, drivers } => {
            let loaded: Vec<String> =
                registry.drivers().iter().map(|d| d.name().to_owned()).collect();
            let drivers = if drivers.is_empty() { loaded.clone() } else { drivers };
            let opts = install::InstallOptions { copy, force, dry_run };
            install::install(&config.hooks_dir, &drivers, &loaded, opts, format, &mut out)?
        }
        Command::Uninstall { libvirt: _, dry_run, format, drivers } => {
            let mut known: Vec<String> =
                registry.drivers().iter().map(|d| d.name().to_owned()).collect();
            for name in LIBVIRT_DRIVERS {
                if !known.iter().any(|k| k == name) {
                    known.push(name.to_owned());
                }
            }
            install::uninstall(&config.hooks_dir, &drivers, &known, dry_run, format, &mut out)?
        }
        Command::Config { .. }
        | Command::DeferredRun { .. }
        | Command::Log(_)
        | Command::Completions { .. }
        | Command::Generate { .. } => unreachable!("handled above"),
    };
    out.flush()?;
    Ok(code)
}

/// The path the kernel executed (`AT_EXECFN`): what the caller passed to
/// `execve`, whatever it put in `argv[0]`, and after any `PATH` lookup (the
/// shell's or libc's `execvp` passes the full path it found).
fn executed_path() -> PathBuf {
    PathBuf::from(OsStr::from_bytes(rustix::param::linux_execfn().to_bytes()))
}

/// The driver whose hook script virt-hook was executed as, if it was: the
/// executed file's name is the name of a driver, one libvirt runs hooks for
/// or one a loaded plugin provides. Any other name (`virt-hook`, a renamed
/// `virt-hook.new`) is the command line.
fn hook_driver(executed: &Path) -> Option<String> {
    let name = executed.file_name()?.to_str()?;
    if name == NAME || executed == Path::new(deferred::SELF_EXE) {
        return None;
    }
    if LIBVIRT_DRIVERS.contains(&name) {
        return Some(name.to_owned());
    }
    // A driver libvirt does not know yet, shipped as a plugin: only the
    // registry can say. (Logging is not set up yet; the plugins are loaded
    // again, with it, if this is hook mode.)
    let config = load_config_file(std::env::var_os(CONFIG_ENV).map(PathBuf::from)).ok()?;
    load_registry(&config, Some(name)).get(name).is_some().then(|| name.to_owned())
}

/// virt-hook as libvirt's hook script `<hooks>/<driver>`: `args` are
/// libvirt's four. The hooks directory is the directory of the path the
/// kernel executed, which must be absolute (libvirt's always is), unless
/// the configuration names another; never the current directory.
fn as_libvirt_hook(executed: &Path, driver: String, args: &[OsString]) -> anyhow::Result<u8> {
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.clone().into_string().map_err(|a| anyhow::anyhow!("argument {a:?} is not UTF-8"))
        })
        .collect::<anyhow::Result<_>>()?;
    let call = dispatch::Call::new(driver, args)?;
    let mut config = load_config_file(std::env::var_os(CONFIG_ENV).map(PathBuf::from))?;
    audit_defaults(&mut config);
    if config.source_of("hooks_dir") == Source::Default {
        let dir = executed.parent().filter(|_| executed.is_absolute()).ok_or_else(|| {
            anyhow::anyhow!(
                "as libvirt's '{}' hook, virt-hook must be executed by an absolute path, not \
                 '{}': its directory is the hooks directory (by hand, use `virt-hook dispatch`)",
                call.driver,
                executed.display()
            )
        })?;
        config.set_hooks_dir(dir, Source::Default);
    }
    let registry = load_registry(&config, Some(&call.driver));
    let runner = build_runner(&config, registry, Some(Layout::PerObject))?;
    let mut out = std::io::stdout().lock();
    let code = dispatch::dispatch(&runner, &call, config.max_input, &spool_of(&config), &mut out)?;
    out.flush()?;
    Ok(code)
}

/// The deferred spool of `config`: its `deferred_dir`, unless that is the
/// default and virt-hook is not root (then a directory of its own user's).
fn spool_of(config: &Config) -> spool::Spool {
    let set = config.source_of("deferred_dir") != Source::Default;
    let dir = (set || rustix::process::geteuid().is_root()).then_some(&*config.deferred_dir);
    spool::Spool::new(dir, config.deferred_parallel)
}

/// The configuration: the file (`--config`, `VIRT_HOOKS_CONFIG` or the
/// default one), then the environment, then the flags. When the file cannot
/// be used its error is returned beside the defaults with the other layers.
fn load_config(cli: &Cli) -> (Config, Option<anyhow::Error>) {
    let named = cli.config.clone().or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from));
    let (mut config, error) = match load_config_file(named) {
        Ok(config) => (config, None),
        Err(err) => (Config::default(), Some(err)),
    };
    audit_defaults(&mut config);
    if let Some(dir) = std::env::var_os(HOOKS_DIR_ENV).filter(|d| !d.is_empty()) {
        config.set_hooks_dir(PathBuf::from(dir), Source::Env(HOOKS_DIR_ENV.into()));
    }
    if let Some(dir) = &cli.hooks_dir {
        config.set_hooks_dir(dir, Source::Flag("--hooks-dir".into()));
    }
    let env_dirs: Vec<PathBuf> = std::env::var_os(PLUGIN_PATH_ENV)
        .map(|p| std::env::split_paths(&p).filter(|d| !d.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    config.prepend_plugin_path(env_dirs, Source::Env(PLUGIN_PATH_ENV.into()));
    config.prepend_plugin_path(cli.plugin_dirs.clone(), Source::Flag("--plugin-dir".into()));
    (config, error)
}

/// The audit log: `VIRT_HOOKS_AUDIT_LOG` (empty: none) over the file;
/// when neither sets it and virt-hook runs as root, [`DEFAULT_AUDIT_LOG`].
fn audit_defaults(config: &mut Config) {
    if let Some(path) = std::env::var_os(AUDIT_LOG_ENV) {
        let path = (!path.is_empty()).then(|| PathBuf::from(path));
        config.set_audit_log(path, Source::Env(AUDIT_LOG_ENV.into()));
    } else if config.source_of("audit_log") == Source::Default
        && rustix::process::geteuid().is_root()
    {
        config.set_audit_log(Some(PathBuf::from(DEFAULT_AUDIT_LOG)), Source::Default);
    }
}

/// A named file must exist; the default one may be missing.
fn load_config_file(named: Option<PathBuf>) -> anyhow::Result<Config> {
    Ok(match named {
        Some(path) => Config::from_file(&path)?,
        None => Config::from_file_if_exists(Path::new(DEFAULT_CONFIG_FILE))?,
    })
}

/// Loads the plugins: the configuration's plugin path (flags, environment,
/// file, in that order), then the executable's directory and the system one.
/// With `only`, just that driver's plugin when a file is named after it
/// ([`RegistryBuilder::only_driver`]).
fn load_registry(config: &Config, only: Option<&str>) -> Registry {
    let mut builder = RegistryBuilder::new();
    // The environment's directories are already in the configuration's path.
    builder.search().env_path(false);
    if let Some(driver) = only {
        builder.only_driver(driver);
    }
    builder.config(config).build()
}

fn build_runner(
    config: &Config,
    registry: Registry,
    layout: Option<Layout>,
) -> anyhow::Result<Runner> {
    let mut builder = RunnerBuilder::new(Arc::new(registry));
    builder.config(config);
    if let Some(layout) = layout {
        builder.layout(layout);
    }
    Ok(builder.build()?)
}

fn print_config(config: &Config, format: Format, out: &mut impl Write) -> anyhow::Result<u8> {
    let mut entries: Vec<(&str, String, String)> = config
        .entries()
        .into_iter()
        .map(|(key, value, source)| (key, value, source.to_string()))
        .collect();
    // Not a key of the file: where this build looks for plugins last.
    entries.push(("system_plugin_dir", SYSTEM_PLUGIN_DIR.to_owned(), "build".to_owned()));
    match format {
        Format::Json => {
            let doc: serde_json::Map<String, serde_json::Value> = config
                .typed_entries()
                .into_iter()
                .map(|(key, value, source)| {
                    (
                        key.to_owned(),
                        serde_json::json!({ "value": value, "source": source.to_string() }),
                    )
                })
                .collect();
            print_json(out, &doc)?;
        }
        Format::Text => {
            let width = entries.iter().map(|(k, ..)| k.len()).max().unwrap_or(0);
            for (key, value, source) in &entries {
                writeln!(out, "{key:width$} = {value}  ({source})")?;
            }
        }
    }
    Ok(exit::OK)
}

/// A `--timeout` value: the configuration's durations, held to the same
/// range (one parser).
fn duration(text: &str) -> Result<Duration, String> {
    match virt_hooks::parse_duration(text) {
        Some(Ok(duration)) => Ok(duration),
        Some(Err(reason)) => Err(format!("invalid duration '{text}': {reason}")),
        None => Err(format!(
            "invalid duration '{text}': use seconds (90, 1.5) or a number with a unit (500ms, \
             90s, 5m); 0 for none"
        )),
    }
}

/// Prints `value` as one pretty JSON document and a newline: every
/// `--format json`.
pub(crate) fn print_json(
    out: &mut impl Write,
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
