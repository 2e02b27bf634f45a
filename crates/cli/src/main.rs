//! `virt-hook`: runs, plans and audits libvirt-style hook scripts through the
//! virt-hooks host library and its driver plugins.
//!
//! Exit codes: 0 when the operation may go on (or the listing is clean), 1
//! when it is refused (or a plugin failed to load), 2 for usage and
//! validation errors.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)] // the binary is where output happens

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use virt_hooks::{DEFAULT_HOOKS_DIR, Registry, RegistryBuilder, RunnerBuilder};

mod demo;
mod drivers;
mod run;

/// Run libvirt-style hook scripts: the same arguments, stdin, environment and
/// error text as libvirt, with drivers loaded from plugins.
#[derive(Debug, Parser)]
#[command(name = "virt-hook", version, about, max_term_width = 100)]
struct Cli {
    /// Look for driver plugins in DIR first (repeatable); then
    /// VIRT_HOOKS_PLUGIN_PATH, the executable's directory and
    /// /usr/lib/virt-hooks/plugins.
    #[arg(long = "plugin-dir", value_name = "DIR", global = true)]
    plugin_dirs: Vec<PathBuf>,

    /// The hooks directory [default: /etc/libvirt/hooks].
    #[arg(long, value_name = "DIR", env = "VIRT_HOOKS_DIR", global = true)]
    hooks_dir: Option<PathBuf>,

    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

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
        /// Per-script timeout in seconds for this call; 0 means none.
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
        /// Output format: text prints a filter's resulting document on
        /// stdout; json prints the whole outcome.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the hook scripts an event would run, in order; runs nothing.
    Plan {
        #[command(flatten)]
        event: run::EventArgs,
        /// Output format: text is one path per line; json adds argv, the
        /// environment, the input size and the skipped files.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Play a whole domain lifecycle on a bundled example hooks directory,
    /// through the real runner and plugins.
    Demo {
        /// Write the example hooks directory under DIR and keep it.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
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

/// The process exit codes, in one place.
pub(crate) mod exit {
    /// The operation may go on; everything loaded.
    pub(crate) const OK: u8 = 0;
    /// The operation was refused, or a plugin failed to load.
    pub(crate) const REFUSED: u8 = 1;
    /// Usage or validation error.
    pub(crate) const USAGE: u8 = 2;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::from(exit::OK);
            }
            eprintln!("error: {err:#}");
            ExitCode::from(exit::USAGE)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let registry = load_registry(&cli.plugin_dirs);
    let hooks_dir = cli.hooks_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_HOOKS_DIR));
    let mut out = std::io::stdout().lock();
    let code = match cli.command {
        Command::Drivers { format } => drivers::print(&registry, format, &mut out)?,
        Command::Run { event, timeout, format } => {
            let mut builder = runner_builder(&hooks_dir, registry);
            if let Some(secs) = timeout {
                builder.timeout(seconds(secs)?);
            }
            run::run(&builder.build()?, &event, format, &mut out)?
        }
        Command::Plan { event, format } => {
            run::plan(&runner_builder(&hooks_dir, registry).build()?, &event, format, &mut out)?
        }
        Command::Demo { keep } => demo::demo(
            registry,
            keep.as_deref(),
            |hooks, registry| Ok(runner_builder(hooks, registry).build()?),
            &mut out,
        )?,
    };
    out.flush()?;
    Ok(code)
}

fn runner_builder(hooks_dir: &Path, registry: Registry) -> RunnerBuilder {
    let mut builder = RunnerBuilder::new(Arc::new(registry));
    builder.hooks_dir(hooks_dir);
    builder
}

/// A `--timeout` value: non-negative seconds.
fn seconds(secs: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| anyhow::anyhow!("invalid --timeout {secs}: use a number of seconds, 0 for none"))
}

/// Loads the plugins on the search path, `--plugin-dir`s first.
fn load_registry(plugin_dirs: &[PathBuf]) -> Registry {
    let mut builder = RegistryBuilder::new();
    for dir in plugin_dirs {
        builder.search().dir(dir);
    }
    builder.build()
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format(|buf, record| {
            let level = match record.level() {
                log::Level::Error => "error",
                log::Level::Warn => "warning",
                log::Level::Info => "info",
                log::Level::Debug => "debug",
                log::Level::Trace => "trace",
            };
            writeln!(buf, "{level}: {}", record.args())
        })
        .init();
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
