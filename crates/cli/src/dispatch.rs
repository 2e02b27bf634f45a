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
//! libvirt quotes to the user. For `migrate` and `restore`, the new document
//! on stdout (nothing when unchanged). Scripts never get libvirt's pipes, so
//! whatever they leave running cannot hold libvirt's call.

use std::io::{Read, Write};

use virt_hooks::{Event, InputSpec, RunError, Runner, ScriptStatus};

use crate::exit;
use crate::run::Interrupt;

/// What libvirt passed: the driver (our file name) and its four arguments.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) driver: String,
    pub(crate) args: [String; 4],
}

/// Runs the per-object scripts of `call`; returns the exit status for libvirt.
pub(crate) fn dispatch(runner: &Runner, call: &Call, out: &mut impl Write) -> anyhow::Result<u8> {
    let [object, operation, sub_operation, extra] = &call.args;
    let mut event = Event::new(&call.driver, object, operation, sub_operation, extra);
    // Read stdin only for operations that take a document: for the others
    // libvirt gives /dev/null, and nothing must block on it.
    let takes_input = runner
        .registry()
        .get(&call.driver)
        .and_then(|d| d.operations().iter().find(|op| op.name == *operation))
        .is_some_and(|op| matches!(op.input, InputSpec::Xml { .. }));
    let mut input = Vec::new();
    if takes_input {
        std::io::stdin().lock().read_to_end(&mut input)?;
        event = event.with_input(&input);
    }
    let interrupt = Interrupt::install()?;
    match runner.run_with(&event, &interrupt.cancel) {
        Err(RunError::Cancelled { .. }) => Ok(interrupt.exit_code()),
        Ok(outcome) => {
            if let Some(document) = &outcome.output {
                out.write_all(document)?;
            }
            Ok(exit::OK)
        }
        Err(RunError::InvalidEvent(err)) => {
            // An event this host does not know (a newer libvirt, a missing
            // plugin) must not break the daemon's operation: run nothing.
            log::warn!("ignoring hook event {}: {err}", call.describe());
            Ok(exit::OK)
        }
        Err(err) => Ok(report(&err)),
    }
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
