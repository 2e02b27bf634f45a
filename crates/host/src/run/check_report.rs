//! The audit of a hooks directory for `virt-hook check`: what would run,
//! what would not and why, and what looks wrong. Nothing is run.

use std::{
    fs,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use serde::Serialize;

use super::outcome::{SkipReason, path_lossy};
use crate::{
    config::SecurityMode,
    drivers::Registry,
    hooks::{
        discovery::{self, MainScript},
        message,
        profiles::{self, PropertyInfo},
    },
};

/// The drivers libvirt itself calls hook scripts for (libvirt's
/// `virHookDriverType`): the names of its hook scripts.
pub const LIBVIRT_DRIVERS: [&str; 6] = ["daemon", "qemu", "lxc", "network", "libxl", "bhyve"];

/// File name endings left behind by package managers and editors.
const LEFTOVER_SUFFIXES: [&str; 11] = [
    "~",
    ".rpmnew",
    ".rpmsave",
    ".rpmorig",
    ".dpkg-old",
    ".dpkg-new",
    ".dpkg-dist",
    ".dpkg-bak",
    ".bak",
    ".swp",
    ".orig",
];

/// What [`Runner::check`](crate::Runner::check) found in the hooks
/// directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The hooks directory.
    #[serde(serialize_with = "path_lossy")]
    pub hooks_dir: PathBuf,
    /// How the security rules are enforced.
    pub security: SecurityMode,
    /// The hooks directory cannot be listed (it is fine for it not to
    /// exist: then no hook runs).
    pub hooks_dir_error: Option<String>,
    /// One entry per driver of the registry, in load order.
    pub drivers: Vec<DriverCheck>,
    /// Hook scripts (or `.d` directories) named after a libvirt driver that
    /// is not loaded, or after a disabled driver: they never run.
    pub stray: Vec<CheckedFile>,
}

/// The hook scripts of one driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverCheck {
    /// The driver name.
    pub driver: String,
    /// The main script `<hooks>/<driver>`; `None` when there is none.
    pub main: Option<CheckedFile>,
    /// `<hooks>/<driver>.d`.
    #[serde(serialize_with = "path_lossy")]
    pub drop_in_dir: PathBuf,
    /// libvirt's error when `<driver>.d` exists but cannot be listed: every
    /// event of the driver then fails.
    pub drop_in_error: Option<String>,
    /// Every entry of `<driver>.d` in byte order (the order scripts run in).
    pub drop_ins: Vec<CheckedFile>,
    /// `<hooks>/<driver>.profiles`.
    #[serde(serialize_with = "path_lossy")]
    pub profiles_dir: PathBuf,
    /// Why `<driver>.profiles` cannot be listed, if it cannot.
    pub profiles_error: Option<String>,
    /// Every profile of `<driver>.profiles`, in byte order.
    pub profiles: Vec<ProfileCheck>,
}

/// One hook profile: its declaration and its scripts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileCheck {
    /// The profile's name.
    pub name: String,
    /// Its directory.
    #[serde(serialize_with = "path_lossy")]
    pub path: PathBuf,
    /// What its `profile.toml` says it does.
    pub description: Option<String>,
    /// The properties it declares.
    pub properties: Vec<PropertyInfo>,
    /// Why its `profile.toml` cannot be used (every object naming it is
    /// then refused), or a directory of it that cannot be listed.
    pub errors: Vec<String>,
    /// Every `<op>/<subop>` script of it, and the entries that do not run.
    pub scripts: Vec<CheckedFile>,
}

/// One file or directory entry and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckedFile {
    /// Its full path.
    #[serde(serialize_with = "path_lossy")]
    pub path: PathBuf,
    /// True if and only if it would run.
    pub runs: bool,
    /// Why it would not run; `None` when it runs.
    pub skipped: Option<SkipReason>,
    /// What looks wrong even though it does (or does not) run.
    pub warnings: Vec<String>,
}

impl CheckedFile {
    /// Returns true if and only if this entry is worth a look: a warning,
    /// or a reason not to run other than being a directory (`.d` is not
    /// recursive, and dispatchers keep per-domain directories there).
    pub fn has_problem(&self) -> bool {
        !self.warnings.is_empty()
            || self.skipped.as_ref().is_some_and(|r| *r != SkipReason::Directory)
    }
}

impl CheckReport {
    /// Returns true if and only if nothing is worth a look.
    pub fn is_clean(&self) -> bool {
        self.problems().is_empty()
    }

    /// Every problem, one line each, in report order.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(err) = &self.hooks_dir_error {
            out.push(err.clone());
        }
        let mut file = |f: &CheckedFile| {
            let path = f.path.display();
            if let Some(reason) = f.skipped.as_ref().filter(|r| **r != SkipReason::Directory) {
                out.push(format!("{path}: does not run: {reason}"));
            }
            out.extend(f.warnings.iter().map(|w| format!("{path}: {w}")));
        };
        for d in &self.drivers {
            d.main.iter().for_each(&mut file);
            d.drop_ins.iter().for_each(&mut file);
            d.profiles.iter().flat_map(|p| &p.scripts).for_each(&mut file);
        }
        self.stray.iter().for_each(&mut file);
        for d in &self.drivers {
            if let Some(err) = &d.drop_in_error {
                out.push(err.clone());
            }
            out.extend(d.profiles_error.iter().cloned());
            out.extend(d.profiles.iter().flat_map(|p| p.errors.iter().cloned()));
        }
        out
    }
}

/// Builds the report. `vet` says why a script is unsafe, if it is.
pub(crate) fn report(
    registry: &Registry,
    hooks_dir: &Path,
    mode: SecurityMode,
    vet: impl Fn(&Path) -> Result<(), String>,
) -> CheckReport {
    let judge = |path: PathBuf, skipped: Option<SkipReason>| {
        let mut file = CheckedFile { path, runs: skipped.is_none(), skipped, warnings: Vec::new() };
        if file.runs {
            if let Err(reason) = vet(&file.path) {
                if mode == SecurityMode::Strict {
                    file.runs = false;
                    file.skipped = Some(SkipReason::Refused(reason));
                } else {
                    file.warnings.push(format!("unsafe, runs anyway (security = warn): {reason}"));
                }
            }
            if let Some(suffix) = leftover_suffix(&file.path) {
                file.warnings.push(format!(
                    "looks like a packaging or editor leftover (ends in '{suffix}') but runs \
                     like any other script"
                ));
            }
        }
        file
    };
    let mut drivers = Vec::new();
    for driver in registry.drivers() {
        let main = hooks_dir.join(driver.name());
        let drop_in_dir = discovery::drop_in_dir(&main);
        let main = match discovery::main_script(main) {
            MainScript::Absent => None,
            MainScript::Run(path) => Some(judge(path, None)),
            MainScript::Skipped(s) => Some(judge(s.path, Some(s.reason))),
        };
        let (drop_in_error, drop_ins) = match discovery::drop_ins(&drop_in_dir) {
            Ok(found) => {
                let mut all: Vec<CheckedFile> = found
                    .scripts
                    .into_iter()
                    .map(|p| judge(p, None))
                    .chain(found.skipped.into_iter().map(|s| judge(s.path, Some(s.reason))))
                    .collect();
                all.sort_by(|a, b| {
                    a.path.as_os_str().as_bytes().cmp(b.path.as_os_str().as_bytes())
                });
                (None, all)
            }
            Err(err) => (Some(err.message), Vec::new()),
        };
        let (profiles_error, profiles) = profile_checks(hooks_dir, driver.name(), &judge);
        drivers.push(DriverCheck {
            driver: driver.name().to_owned(),
            main,
            drop_in_dir,
            drop_in_error,
            drop_ins,
            profiles_dir: profiles::profiles_dir(hooks_dir, driver.name()),
            profiles_error,
            profiles,
        });
    }
    let (hooks_dir_error, stray) = stray_entries(registry, hooks_dir);
    CheckReport { hooks_dir: hooks_dir.to_owned(), security: mode, hooks_dir_error, drivers, stray }
}

/// The profiles of `driver`, their scripts judged by `judge`.
fn profile_checks(
    hooks_dir: &Path,
    driver: &str,
    judge: &dyn Fn(PathBuf, Option<SkipReason>) -> CheckedFile,
) -> (Option<String>, Vec<ProfileCheck>) {
    let listed = match profiles::list(hooks_dir, driver) {
        Ok(listed) => listed,
        Err(err) => return (Some(err), Vec::new()),
    };
    let checks = listed
        .into_iter()
        .map(|p| {
            let mut scripts: Vec<CheckedFile> = p
                .found
                .scripts
                .into_iter()
                .map(|path| judge(path, None))
                .chain(p.found.skipped.into_iter().map(|s| judge(s.path, Some(s.reason))))
                .collect();
            scripts
                .sort_by(|a, b| a.path.as_os_str().as_bytes().cmp(b.path.as_os_str().as_bytes()));
            let mut errors = p.errors;
            let (description, properties) = match p.decl {
                Ok(decl) => (decl.description, decl.properties),
                Err(err) => {
                    errors.insert(0, err.to_string());
                    (None, Vec::new())
                }
            };
            ProfileCheck { name: p.name, path: p.dir, description, properties, errors, scripts }
        })
        .collect();
    (None, checks)
}

/// Entries of the hooks directory named after a libvirt driver (or a
/// disabled one) that the registry does not have.
fn stray_entries(registry: &Registry, hooks_dir: &Path) -> (Option<String>, Vec<CheckedFile>) {
    let entries = match fs::read_dir(hooks_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return (None, Vec::new()),
        Err(err) => {
            return (
                Some(format!(
                    "cannot list hooks directory {}: {}",
                    hooks_dir.display(),
                    message::strerror(&err)
                )),
                Vec::new(),
            );
        }
    };
    let mut stray = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let driver = name.strip_suffix(".d").unwrap_or(name);
        if registry.get(driver).is_some() {
            continue;
        }
        let why = if registry.disabled().iter().any(|d| d == driver) {
            format!("hooks of driver '{driver}', which is disabled: they never run")
        } else if LIBVIRT_DRIVERS.contains(&driver) {
            format!("hooks of driver '{driver}', which no loaded plugin provides: they never run")
        } else {
            continue;
        };
        stray.push(CheckedFile {
            path: entry.path(),
            runs: false,
            skipped: None,
            warnings: vec![why],
        });
    }
    stray.sort_by(|a, b| a.path.as_os_str().as_bytes().cmp(b.path.as_os_str().as_bytes()));
    (None, stray)
}

fn leftover_suffix(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.as_bytes();
    LEFTOVER_SUFFIXES.into_iter().find(|s| name.len() > s.len() && name.ends_with(s.as_bytes()))
}
