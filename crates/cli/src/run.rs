//! `virt-hook run` and `virt-hook plan`: one event, through the runner.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use clap::Args;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use virt_hooks::{Cancel, Event, InputSpec, RunError, Runner};

use crate::{Format, deferred, exit, input::read_capped, spool::Spool};

/// The five arguments a hook script receives after its path.
#[derive(Debug, Args)]
pub(crate) struct EventArgs {
    /// The driver: daemon, qemu, lxc, ... (the hook script's name).
    pub(crate) driver: String,
    /// The object: a domain or network name, or `-`.
    object: String,
    /// The operation, e.g. start, prepare, release.
    pub(crate) operation: String,
    /// The sub-operation, e.g. begin, end, or `-`.
    sub_operation: String,
    /// The extra argument, e.g. a shutoff reason, or `-`.
    extra: String,
    /// The document for the scripts' stdin: a file, or `-` for standard
    /// input (`run` reads standard input without it when it is not a
    /// terminal).
    #[arg(long, value_name = "FILE|-")]
    input: Option<PathBuf>,
}

impl EventArgs {
    /// Reads the input document, if one was named: at most `max` bytes
    /// (`max_input`), a larger one is an error.
    pub(crate) fn read_input(&self, max: u64) -> anyhow::Result<Option<Vec<u8>>> {
        self.read_input_or(max, false)
    }

    /// [`read_input`](EventArgs::read_input); with `stdin`, standard input
    /// when no `--input` is named and it is not a terminal (an empty one is
    /// no document).
    pub(crate) fn read_input_or(&self, max: u64, stdin: bool) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(path) = &self.input else {
            if !stdin || std::io::stdin().is_terminal() {
                return Ok(None);
            }
            let data = read_capped(std::io::stdin().lock(), max, "standard input")?;
            return Ok(Some(data).filter(|d| !d.is_empty()));
        };
        let data = if path.as_os_str() == "-" {
            read_capped(std::io::stdin().lock(), max, "standard input")?
        } else {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot read input file {}", path.display()))?;
            read_capped(file, max, &format!("input file {}", path.display()))?
        };
        Ok(Some(data))
    }

    /// The event, borrowing these arguments and `input`.
    pub(crate) fn event<'a>(&'a self, input: Option<&'a [u8]>) -> Event<'a> {
        let event = Event::new(
            &self.driver,
            &self.object,
            &self.operation,
            &self.sub_operation,
            &self.extra,
        );
        match input {
            Some(bytes) => event.with_input(bytes),
            None => event,
        }
    }
}

/// Runs the event's scripts. Exit 0 when the operation may go on, 1 when
/// it is refused, 2 when the event is invalid.
pub(crate) fn run(
    runner: &Runner,
    args: &EventArgs,
    max_input: u64,
    spool: &Spool,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<u8> {
    // Standard input is the document when no --input is named, for the
    // operations that take one.
    let takes_document = runner
        .registry()
        .get(&args.driver)
        .and_then(|d| d.operations().iter().find(|op| op.name == args.operation))
        .is_some_and(|op| matches!(op.input, InputSpec::Xml { .. }));
    let input = args.read_input_or(max_input, takes_document)?;
    let event = args.event(input.as_deref());
    let interrupt = Interrupt::install()?;
    match runner.run_with(&event, &interrupt.cancel) {
        Err(RunError::Cancelled { .. }) => Ok(interrupt.exit_code()),
        Ok(outcome) => {
            // Ignored failures and leftovers reach stderr through the log.
            match format {
                Format::Json => crate::print_json(out, &outcome)?,
                Format::Text if outcome.filter => {
                    out.write_all(outcome.document(input.as_deref().unwrap_or_default()))?;
                }
                Format::Text => {}
            }
            out.flush()?;
            // As libvirt's hook: after the answer, by a detached worker.
            deferred::hand_over(runner, spool, &event, &outcome);
            Ok(exit::OK)
        }
        Err(err) => {
            eprintln!("error: {err}");
            if let (Format::Json, Some(outcome)) = (format, err.outcome()) {
                crate::print_json(out, outcome)?;
            }
            Ok(exit_code(&err))
        }
    }
}

/// Prints the scripts an event would run, without running anything.
pub(crate) fn plan(
    runner: &Runner,
    args: &EventArgs,
    max_input: u64,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<u8> {
    let input = args.read_input(max_input)?;
    let event = args.event(input.as_deref());
    match runner.plan(&event) {
        Ok(plan) => {
            match format {
                Format::Json => {
                    crate::print_json(out, &plan)?;
                }
                Format::Text => {
                    let deferred = plan.deferred.iter().map(|s| (s, true));
                    for (script, deferred) in
                        plan.scripts.iter().map(|s| (s, false)).chain(deferred)
                    {
                        let notes: Vec<String> = [
                            deferred.then(|| "deferred".to_owned()),
                            script.profile.as_ref().map(|p| format!("profile {p}")),
                        ]
                        .into_iter()
                        .flatten()
                        .collect();
                        if notes.is_empty() {
                            writeln!(out, "{}", script.path.display())?;
                        } else {
                            writeln!(out, "{}  ({})", script.path.display(), notes.join(", "))?;
                        }
                    }
                }
            }
            for skipped in &plan.skipped {
                log::info!("skipped {}: {}", skipped.path.display(), skipped.reason);
            }
            Ok(exit::OK)
        }
        Err(err) => {
            eprintln!("error: {err}");
            Ok(exit_code(&err))
        }
    }
}

/// 2 for an event no script may see; 1 for a refused operation.
fn exit_code(err: &RunError) -> u8 {
    match err {
        RunError::InvalidEvent(_) | RunError::NulByte { .. } => exit::USAGE,
        _ => exit::REFUSED,
    }
}

/// The signals that cancel the running hook: every signal whose default
/// action would end virt-hook and leave the hook tree running.
const CANCELLING: [i32; 6] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

/// SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 cancel the running
/// hook: it and its descendants are killed and reaped, and virt-hook exits
/// 128 + the signal number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
pub(crate) struct Interrupt {
    pub(crate) cancel: Cancel,
    /// The last cancelling signal received; 0 for none.
    signal: Arc<AtomicUsize>,
}

impl Interrupt {
    /// Routes the cancelling signals to a new [`Cancel`].
    pub(crate) fn install() -> anyhow::Result<Interrupt> {
        let cancel = Cancel::new().context("cannot set up signal handling")?;
        let signal = Arc::new(AtomicUsize::new(0));
        for sig in CANCELLING {
            let number = usize::try_from(sig).unwrap_or_default();
            signal_hook::flag::register_usize(sig, Arc::clone(&signal), number)?;
            signal_hook::low_level::pipe::register(sig, cancel.signal_fd()?)?;
        }
        Ok(Interrupt { cancel, signal })
    }

    /// 128 + the signal that cancelled (130 after SIGINT, 143 after
    /// SIGTERM); 130 if none was seen.
    pub(crate) fn exit_code(&self) -> u8 {
        match u8::try_from(self.signal.load(Ordering::SeqCst)) {
            Ok(sig @ 1..=64) => 128 + sig,
            _ => exit::SIGINT,
        }
    }
}
