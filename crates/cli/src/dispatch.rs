//! Dispatch mode: virt-hook installed as libvirt's own hook script.
//!
//! libvirt runs `/etc/libvirt/hooks/<driver>` (a link to, or a copy of,
//! virt-hook) with `OBJECT OP SUBOP EXTRA` and the document on stdin, and
//! then the plain files of `<driver>.d/` itself. virt-hook then runs the
//! per-object scripts of the event, `<hooks>/<driver>.d/<object>/<op>/<subop>`
//! (one executable, or every executable in that directory), with the runner's
//! validation, timeouts, caps, security checks and audit log.
//!
//! What libvirt sees is what it must see: exit 0 when the operation may go
//! on; otherwise a non-zero status with the failing script's stderr, which
//! libvirt quotes to the user, or with the reason the event was refused. For `migrate` and `restore`, the new document
//! on stdout (nothing when unchanged). Scripts never get libvirt's pipes, so
//! whatever they leave running cannot hold libvirt's call.

use std::io::{IsTerminal, Write};

use virt_hooks::{Event, InputSpec, RunError, Runner, ScriptStatus};

use crate::input::read_capped;
use crate::run::Interrupt;
use crate::spool::Spool;
use crate::{deferred, exit};

/// What libvirt passed: the driver (our file name) and its four arguments.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) driver: String,
    pub(crate) args: [String; 4],
}

/// Runs the per-object scripts of `call`; returns the exit status for libvirt.
///
/// Never a silent success: an event that cannot be validated (a disabled
/// driver, a bad sub-operation or extra, a document the driver refuses, a
/// document over `max_input`) exits 1 with the reason on stderr, which
/// libvirt quotes or logs, and libvirt applies its own policy to that status
/// as it would to a failing script. An operation the driver does not list
/// (a newer libvirt's), and any event of a driver no plugin provides, runs
/// the per-object scripts made for exactly it and passes their status
/// through (exit 0 when there is none, as libvirt without a script); a
/// missing plugin is logged as an error naming it and the search path. Each
/// decision is logged and recorded in the audit log.
pub(crate) fn dispatch(
    runner: &Runner,
    call: &Call,
    max_input: u64,
    spool: &Spool,
    out: &mut impl Write,
) -> anyhow::Result<u8> {
    let [object, operation, sub_operation, extra] = &call.args;
    let mut event = Event::new(&call.driver, object, operation, sub_operation, extra);
    // Read stdin only for operations that take a document, and for
    // operations the driver does not know (their scripts get what libvirt
    // gave): for the others libvirt gives /dev/null, and nothing must block
    // on it. A terminal is never read.
    let listed = runner
        .registry()
        .get(&call.driver)
        .map(|d| d.operations().iter().find(|op| op.name == *operation));
    // A driver no plugin provides is run like an operation its driver does
    // not list: only the scripts made for the event, given what libvirt gave.
    let disabled = runner.registry().disabled().contains(&call.driver);
    let listed = listed.or(if disabled { None } else { Some(None) });
    let read = match listed {
        Some(Some(op)) => matches!(op.input, InputSpec::Xml { .. }),
        Some(None) => !std::io::stdin().is_terminal(),
        None => false,
    };
    let input = if read {
        match read_capped(std::io::stdin().lock(), max_input, "standard input") {
            Ok(input) => input,
            Err(err) => {
                let reason = format!("{err:#}");
                runner.record_refusal(&event, &reason);
                return Ok(refuse(call, &reason));
            }
        }
    } else {
        Vec::new()
    };
    let unlisted = matches!(listed, Some(None));
    if read && !(unlisted && input.is_empty()) {
        event = event.with_input(&input);
    }
    let interrupt = Interrupt::install()?;
    let result = if unlisted {
        runner.run_unlisted_with(&event, &interrupt.cancel)
    } else {
        runner.run_with(&event, &interrupt.cancel)
    };
    match result {
        Err(RunError::Cancelled { .. }) => Ok(interrupt.exit_code()),
        Ok(outcome) => {
            if let Some(document) = &outcome.output {
                out.write_all(document)?;
            }
            // The answer first; then the deferred scripts go to a worker
            // that holds none of libvirt's pipes, and this process exits.
            out.flush()?;
            deferred::hand_over(runner, spool, &event, &outcome);
            Ok(exit::OK)
        }
        Err(
            err @ (RunError::InvalidEvent(_) | RunError::NulByte { .. } | RunError::Profile { .. }),
        ) => {
            // Nothing ran where libvirt would have run the scripts: the
            // runner recorded the refusal; libvirt gets the reason.
            Ok(refuse(call, &err.to_string()))
        }
        Err(err) => Ok(report(&err)),
    }
}

/// An event refused before any script ran: logged as an error, which is
/// what reaches stderr (and so libvirt) in hook mode. Returns the exit
/// status.
fn refuse(call: &Call, reason: &str) -> u8 {
    let [object, operation, sub_operation, _] = &call.args;
    log::error!(
        driver = call.driver.as_str(),
        object = object.as_str(),
        operation = operation.as_str(),
        sub_operation = sub_operation.as_str();
        "refused hook event {}: {reason}",
        call.describe()
    );
    exit::REFUSED
}

/// Writes what libvirt will quote after "unexpected exit status N: " and
/// returns N: the last failing script's own stderr and status where there is
/// one, else our message.
fn report(err: &RunError) -> u8 {
    let failed = err.outcome().and_then(|o| o.scripts.iter().rev().find(|s| s.error.is_some()));
    let stderr = failed.map(|s| s.stderr.as_slice()).filter(|e| !e.is_empty());
    match stderr {
        Some(bytes) => {
            let _ = std::io::stderr().write_all(bytes);
        }
        None => {
            let message = err.to_string();
            let message =
                message.strip_prefix("Hook script execution failed: ").unwrap_or(&message);
            eprintln!("{message}");
        }
    }
    match failed.map(|s| s.status) {
        Some(ScriptStatus::Exited { code }) if code != 0 => {
            u8::try_from(code).unwrap_or(exit::REFUSED)
        }
        _ => exit::REFUSED,
    }
}

impl Call {
    /// libvirt always passes exactly four arguments after the script path.
    pub(crate) fn new(driver: String, args: Vec<String>) -> anyhow::Result<Call> {
        let args: [String; 4] = args.try_into().map_err(|args: Vec<String>| {
            anyhow::anyhow!(
                "a hook is called with 4 arguments (object, operation, sub-operation, extra), not {}",
                args.len()
            )
        })?;
        Ok(Call { driver, args })
    }

    fn describe(&self) -> String {
        format!("'{} {}'", self.driver, self.args.join(" "))
    }
}
