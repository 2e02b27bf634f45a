//! The run layer: one event from validation to libvirt's verdict, and what
//! is reported about it.
//!
//! - `runner`: [`Runner`] and [`RunnerBuilder`]: validation, the stages,
//!   libvirt's chaining and verdict;
//! - `outcome`: what ran ([`Outcome`], [`ScriptRun`]) and what would
//!   ([`Plan`]), serializable;
//! - `audit`: one record per script run, to the log and an optional file;
//! - `history`: the audit log read back ([`read_history`]);
//! - `check_report`: the audit of a whole hooks directory for
//!   `virt-hook check` ([`CheckReport`]); `check_tree` walks the
//!   per-object trees with the runner's discovery, `check_system` reads
//!   the running daemons and SELinux labels.

mod audit;
mod check_report;
mod check_system;
mod check_tree;
mod history;
pub(crate) mod outcome;
mod runner;
mod script;

pub use self::{
    audit::{AUDIT_TARGET, DEFAULT_AUDIT_LOG, TAIL_BYTES},
    check_report::{
        CheckOptions, CheckReport, CheckedFile, DriverCheck, LIBVIRT_DRIVERS, ProfileCheck,
    },
    history::{History, HistoryEntry, HistoryFilter, SkippedLine, parse_since, read_history},
    outcome::{
        EnvVar, Leftovers, Outcome, Plan, PlannedProfile, PlannedScript, ScriptRun, ScriptStatus,
        SkipReason, Skipped,
    },
    runner::{BuildError, PASS_THROUGH_ENV, REPORT_TARGET, RunError, Runner, RunnerBuilder},
};
