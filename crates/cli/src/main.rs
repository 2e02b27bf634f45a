//! `virt-hook`: runs, plans and audits libvirt-style hook scripts through the
//! virt-hooks host library and its driver plugins.
//!
//! Exit codes: 0 when the operation may go on (or the listing is clean), 1
//! when it is refused (or a plugin failed to load), 2 for usage and
//! validation errors.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)] // the binary is where output happens

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use virt_hooks::{Registry, RegistryBuilder};

mod drivers;

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
    let mut out = std::io::stdout().lock();
    let code = match cli.command {
        Command::Drivers { format } => drivers::print(&registry, format, &mut out)?,
    };
    out.flush()?;
    Ok(code)
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
        .format_target(false)
        .format_timestamp(None)
        .init();
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
