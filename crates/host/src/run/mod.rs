//! The run layer: one event from validation to libvirt's verdict, and what
//! is reported about it.
//!
//! - `runner`: [`Runner`] and [`RunnerBuilder`]: validation, the stages,
//!   libvirt's chaining and verdict;
//! - `outcome`: what ran ([`Outcome`], [`ScriptRun`]) and what would
//!   ([`Plan`]), serializable;
//! - `audit`: one record per script run, to the log and an optional file;
//! - `check_report`: the audit of a whole hooks directory for
//!   `virt-hook check` ([`CheckReport`]).

mod audit;
mod check_report;
pub(crate) mod outcome;
mod runner;
mod script;

pub use self::{
    audit::AUDIT_TARGET,
    check_report::{CheckReport, CheckedFile, DriverCheck, LIBVIRT_DRIVERS, ProfileCheck},
    outcome::{
        EnvVar, Leftovers, Outcome, Plan, PlannedProfile, PlannedScript, ScriptRun, ScriptStatus,
        SkipReason, Skipped,
    },
    runner::{BuildError, PASS_THROUGH_ENV, RunError, Runner, RunnerBuilder},
};
