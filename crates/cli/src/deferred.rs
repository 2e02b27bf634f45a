//! Deferred scripts in `virt-hook`: the hand-over once the event is
//! answered, and the detached worker that runs them.
//!
//! The hook (or `virt-hook run`) writes the event and its final document
//! to the spool ([`Spool::submit`], locked) and starts
//! `/proc/self/exe deferred-run --spool DIR` in a new process group, with
//! the entry as its stdin and /dev/null as stdout and stderr; it does not
//! wait for it. That first process starts the real worker (`--detached`)
//! and exits at once: the worker is a grandchild whose parent is gone
//! (double fork), and it calls `setsid`, so it is in no process group or
//! session of the daemon, holds none of libvirt's pipes and is not killed
//! with the daemon. The worker waits for its turn (the object's earlier
//! entries, then a slot), runs [`Runner::run_deferred`] and removes its
//! entry. Every failure on the way is recorded as `deferred-lost`: by the
//! hook when the hand-over fails, and by the next worker for an entry
//! whose worker is gone.
//!
//! Where containment (descendant tracking, cgroups) plugs in: the worker
//! runs each script through the runner's one step, so whatever the runner
//! does for synchronous scripts applies here too; a cgroup for the worker
//! itself would be created right after `setsid` in [`worker`].

use std::{
    fs::File,
    os::{fd::AsFd, unix::process::CommandExt},
    process::{Command, Stdio},
};

use anyhow::Context;
use virt_hooks::{Event, Outcome, RunError, Runner};

use crate::{
    exit,
    run::Interrupt,
    spool::{self, Header, Spool},
};

/// The hidden command of the worker.
pub(crate) const WORKER: &str = "deferred-run";

/// The program the worker is started as: this very executable, whatever
/// name it was run by (`/etc/libvirt/hooks/qemu` may be a copy). Its name,
/// `exe`, is no driver's, so it is never taken for a hook.
pub(crate) const SELF_EXE: &str = "/proc/self/exe";

/// Hands the deferred scripts of `event` over to a detached worker, when
/// the run found some. `event` is what the synchronous scripts got; a
/// filter's deferred scripts get `outcome`'s document. Never fails: a
/// hand-over that cannot be done is recorded as `deferred-lost` and logged,
/// and the answer to libvirt stays what the synchronous scripts decided.
pub(crate) fn hand_over(runner: &Runner, spool: &Spool, event: &Event<'_>, outcome: &Outcome) {
    if outcome.deferred.is_empty() {
        return;
    }
    let document = outcome.document(event.input.unwrap_or_default());
    let mut header = Header {
        seq: 0,
        event_id: outcome.event_id.clone(),
        hooks_dir: runner.hooks_dir().to_owned(),
        layout: runner.layout(),
        driver: event.driver.to_owned(),
        object: event.object.to_owned(),
        operation: event.operation.to_owned(),
        sub_operation: event.sub_operation.to_owned(),
        extra: event.extra.to_owned(),
        input: event.input.is_some(),
    };
    let submitted = match spool.submit(&mut header, document) {
        Ok(submitted) => submitted,
        Err(err) => {
            let reason = format!("cannot hand them over: {err:#}");
            runner.record_deferred_lost(event, &outcome.event_id, &reason);
            return;
        }
    };
    let path = submitted.path.clone();
    let spawned = Command::new(SELF_EXE)
        .args([WORKER, "--spool"])
        .arg(&spool.dir)
        .stdin(Stdio::from(submitted.file))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    match spawned {
        // Not waited for: it exits at once, and once this process is gone
        // init reaps it.
        Ok(_child) => {}
        Err(err) => {
            spool.discard(&path);
            let reason = format!("cannot start the worker {SELF_EXE} {WORKER}: {err}");
            runner.record_deferred_lost(event, &outcome.event_id, &reason);
        }
    }
}

/// `virt-hook deferred-run --spool DIR [--detached]`, its stdin the
/// locked entry. Without `--detached`: starts the detached worker and
/// exits. With it: the worker; `build` makes the runner for the entry
/// (its driver's plugin, its hooks directory and layout).
pub(crate) fn worker(
    detached: bool,
    spool: &Spool,
    build: impl FnOnce(&Header) -> anyhow::Result<Runner>,
) -> anyhow::Result<u8> {
    if !detached {
        Command::new(SELF_EXE)
            .args([WORKER, "--detached", "--spool"])
            .arg(&spool.dir)
            .stdin(Stdio::inherit())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start the detached worker {SELF_EXE}"))?;
        return Ok(exit::OK);
    }
    // Not a process group leader (the first process is): a new session.
    rustix::process::setsid().context("setsid")?;
    let mut entry = File::from(
        std::io::stdin().as_fd().try_clone_to_owned().context("the entry is not on stdin")?,
    );
    let (header, document) = spool::read_entry(&mut entry)?;
    let runner = build(&header)?;
    let turn = spool.wait_turn(&header, |lost, path, why| match lost {
        Some(lost) => runner.record_deferred_lost(&lost.event(&[]), &lost.event_id, why),
        None => log::error!(
            "removed the deferred entry {}: {why}, and its event cannot be read",
            path.display()
        ),
    });
    let event = header.event(&document);
    let _turn = match turn {
        Ok(turn) => turn,
        Err(err) => {
            runner.record_deferred_lost(&event, &header.event_id, &format!("{err:#}"));
            spool.finish(&header);
            return Ok(exit::REFUSED);
        }
    };
    let interrupt = Interrupt::install()?;
    match runner.run_deferred_with(&event, &header.event_id, &interrupt.cancel) {
        // Each script is recorded, the cancelled one too.
        Ok(_) | Err(RunError::Cancelled { .. }) => {}
        Err(err) => runner.record_deferred_lost(&event, &header.event_id, &err.to_string()),
    }
    spool.finish(&header);
    Ok(exit::OK)
}
