//! The audit of a hooks directory for `virt-hook check`: what would run,
//! what would not and why, and what looks wrong. Nothing is run.

use std::{
    fs,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use serde::Serialize;

use super::{
    check_system::{self, System},
    check_tree,
    outcome::{SkipReason, path_lossy},
};
use crate::{
    config::SecurityMode,
    drivers::{Driver, PLUGIN_PREFIX, PLUGIN_SUFFIX, Registry},
    hooks::{
        Layout,
        discovery::{self, MainScript},
        message,
        profiles::{self, PropertyInfo},
    },
};

/// The drivers libvirt itself calls hook scripts for (libvirt's
/// `virHookDriverType`): the names of its hook scripts.
pub const LIBVIRT_DRIVERS: [&str; 6] = ["daemon", "qemu", "lxc", "network", "libxl", "bhyve"];

/// File name endings left behind by package managers and editors (besides
/// `.dpkg-*`, `.rpm*` and `#...#`, see [`leftover`]).
const LEFTOVER_SUFFIXES: [&str; 4] = ["~", ".bak", ".swp", ".orig"];

/// How [`Runner::check_with`](crate::Runner::check_with) looks at the
/// hooks directory.
#[derive(Clone, Copy, Default)]
pub struct CheckOptions<'a> {
    /// The layout of every driver; `None`: per driver, the per-object
    /// layout where `<hooks>/<driver>` is virt-hook (as the hook will run),
    /// else the runner's.
    pub layout: Option<Layout>,
    /// Says whether a hook file is virt-hook itself (a link to, or a copy
    /// of, the running program); `None`: none is.
    pub is_virt_hook: Option<&'a dyn Fn(&Path) -> bool>,
}

impl std::fmt::Debug for CheckOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckOptions")
            .field("layout", &self.layout)
            .field("is_virt_hook", &self.is_virt_hook.is_some())
            .finish()
    }
}

/// What [`Runner::check`](crate::Runner::check) found in the hooks
/// directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The hooks directory.
    #[serde(serialize_with = "path_lossy")]
    pub hooks_dir: PathBuf,
    /// How the security rules are enforced.
    pub security: SecurityMode,
    /// The hooks directory does not exist (then no hook runs) or cannot be
    /// listed.
    pub hooks_dir_error: Option<String>,
    /// One entry per driver of the registry, in load order, then one per
    /// driver virt-hook is installed for that no plugin provides.
    pub drivers: Vec<DriverCheck>,
    /// Hook scripts (or `.d` directories) named after a libvirt driver that
    /// is not loaded, or after a disabled driver: they never run.
    pub stray: Vec<CheckedFile>,
    /// Problems of the whole setup: no driver loaded, virt-hook installed
    /// for a driver no plugin provides, a hook made after the daemon
    /// started.
    pub system: Vec<String>,
    /// Worth a look, but not a problem (`check` still exits 0): SELinux
    /// labels.
    pub advisories: Vec<String>,
}

/// The hook scripts of one driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverCheck {
    /// The driver name.
    pub driver: String,
    /// False when no plugin provides the driver (virt-hook is installed as
    /// its hook all the same).
    pub loaded: bool,
    /// The layout the check used for it.
    pub layout: Layout,
    /// `<hooks>/<driver>` is virt-hook itself (a link or a copy).
    pub virt_hook: bool,
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
    /// With the per-object layout, every entry of the per-object trees
    /// `<driver>.d/<object>/<op>/<subop>` (a file, or the files of that
    /// directory), in byte order: the runner's verdict on each.
    pub per_object: Vec<CheckedFile>,
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
        out.extend(self.system.iter().cloned());
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
            d.per_object.iter().for_each(&mut file);
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

/// What the report is built from.
pub(crate) struct Inputs<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) hooks_dir: &'a Path,
    pub(crate) mode: SecurityMode,
    /// The runner's layout.
    pub(crate) layout: Layout,
    pub(crate) options: CheckOptions<'a>,
    pub(crate) system: &'a System,
}

/// Builds the report. `vet` says why a script is unsafe, if it is.
pub(crate) fn report(
    inputs: &Inputs<'_>,
    vet: impl Fn(&Path) -> Result<(), String>,
) -> CheckReport {
    let Inputs { registry, hooks_dir, mode, options, system, .. } = *inputs;
    let selinux = system.selinux();
    let mut advisories = Vec::new();
    let mut judge = |path: PathBuf, skipped: Option<SkipReason>| {
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
        }
        if let Some(what) = leftover(&file.path) {
            if file.runs {
                file.warnings.push(format!(
                    "looks like a packaging or editor leftover ({what}) but runs like any other \
                     script"
                ));
            } else if file.skipped != Some(SkipReason::Directory) {
                file.warnings
                    .push(format!("looks like a packaging or editor leftover ({what}): remove it"));
            }
        }
        if file.runs && selinux {
            if let Some(warning) = check_system::selinux_label(&file.path) {
                advisories.push(format!("{}: {warning}", file.path.display()));
            }
        }
        file
    };
    let is_virt_hook = |path: &Path| options.is_virt_hook.is_some_and(|f| f(path));
    // Running daemons only look at their own hooks directory.
    let daemons = if system.is_daemon_hooks(hooks_dir) { system.daemons() } else { Vec::new() };
    let mut problems = Vec::new();
    if registry.drivers().is_empty() {
        problems.push(format!(
            "no driver loaded: no plugin found in {} (every event is refused, or runs its \
             per-object scripts unchecked in libvirt's hook)",
            search_path(registry)
        ));
    }
    // The registry's drivers, then those virt-hook is installed for
    // without a plugin.
    let mut names: Vec<(String, Option<&Driver>)> =
        registry.drivers().iter().map(|d| (d.name().to_owned(), Some(d))).collect();
    for name in LIBVIRT_DRIVERS {
        let disabled = registry.disabled().iter().any(|d| d == name);
        if registry.get(name).is_none() && !disabled && is_virt_hook(&hooks_dir.join(name)) {
            problems.push(format!(
                "{}: virt-hook is installed as libvirt's '{name}' hook, but no plugin provides \
                 driver '{name}' ({PLUGIN_PREFIX}{name}{PLUGIN_SUFFIX} not found in {}): its \
                 events run their per-object scripts without any checks",
                hooks_dir.join(name).display(),
                search_path(registry)
            ));
            names.push((name.to_owned(), None));
        }
    }
    let mut drivers = Vec::new();
    for (name, driver) in names {
        let main = hooks_dir.join(&name);
        let drop_in_dir = discovery::drop_in_dir(&main);
        let virt_hook = is_virt_hook(&main);
        let layout =
            options.layout.unwrap_or(if virt_hook { Layout::PerObject } else { inputs.layout });
        if let Some(problem) = system.installed_after_start(&daemons, &name, &main) {
            problems.push(format!("{}: {problem}", main.display()));
        }
        let main = match discovery::main_script(main) {
            MainScript::Absent => None,
            MainScript::Run(path) => Some(judge(path, None)),
            MainScript::Skipped(s) => Some(judge(s.path, Some(s.reason))),
        };
        let (drop_in_error, drop_ins) = match discovery::drop_ins(&drop_in_dir) {
            Ok(found) => {
                let mut all: Vec<CheckedFile> =
                    check_tree::entries(found).map(|(path, reason)| judge(path, reason)).collect();
                all.sort_by(|a, b| {
                    a.path.as_os_str().as_bytes().cmp(b.path.as_os_str().as_bytes())
                });
                if virt_hook {
                    for file in all.iter_mut().filter(|f| f.runs) {
                        file.warnings.push(format!(
                            "libvirt runs this itself, next to virt-hook, for every '{name}' \
                             event (no timeout, security rules or audit log of virt-hook's); \
                             for one object's event, move it to {}/<object>/<operation>/\
                             <sub-operation>",
                            drop_in_dir.display()
                        ));
                    }
                }
                (None, all)
            }
            Err(err) => (Some(err.message), Vec::new()),
        };
        let per_object = if layout == Layout::Libvirt || drop_in_error.is_some() {
            Vec::new()
        } else {
            let tree = check_tree::walk(hooks_dir, &name, driver.map(Driver::operations));
            tree.into_iter()
                .map(|entry| {
                    let mut file =
                        if entry.misplaced && entry.skipped.is_none() && !entry.path.is_file() {
                            CheckedFile {
                                path: entry.path,
                                runs: false,
                                skipped: None,
                                warnings: Vec::new(),
                            }
                        } else {
                            judge(entry.path, entry.skipped)
                        };
                    if entry.misplaced {
                        file.runs = false;
                    }
                    file.warnings.extend(entry.warnings);
                    file
                })
                .collect()
        };
        let (profiles_error, profiles) = profile_checks(hooks_dir, &name, &mut judge);
        let profiles_dir = profiles::profiles_dir(hooks_dir, &name);
        drivers.push(DriverCheck {
            driver: name,
            loaded: driver.is_some(),
            layout,
            virt_hook,
            main,
            drop_in_dir,
            drop_in_error,
            drop_ins,
            per_object,
            profiles_dir,
            profiles_error,
            profiles,
        });
    }
    let (hooks_dir_error, mut stray) = stray_entries(registry, hooks_dir);
    stray.retain(|f| {
        let name = f.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        !drivers
            .iter()
            .any(|d| !d.loaded && (name == d.driver || name == format!("{}.d", d.driver)))
    });
    CheckReport {
        hooks_dir: hooks_dir.to_owned(),
        security: mode,
        hooks_dir_error,
        drivers,
        stray,
        system: problems,
        advisories,
    }
}

/// The plugin search path, for messages.
fn search_path(registry: &Registry) -> String {
    let dirs: Vec<String> =
        registry.search_path().iter().map(|d| d.display().to_string()).collect();
    if dirs.is_empty() { "an empty search path".to_owned() } else { dirs.join(":") }
}

/// The profiles of `driver`, their scripts judged by `judge`.
fn profile_checks(
    hooks_dir: &Path,
    driver: &str,
    judge: &mut dyn FnMut(PathBuf, Option<SkipReason>) -> CheckedFile,
) -> (Option<String>, Vec<ProfileCheck>) {
    let listed = match profiles::list(hooks_dir, driver) {
        Ok(listed) => listed,
        Err(err) => return (Some(err), Vec::new()),
    };
    let checks = listed
        .into_iter()
        .map(|p| {
            let found = p.found.scripts.into_iter().map(|path| (path, None));
            let skipped = p.found.skipped.into_iter().map(|s| (s.path, Some(s.reason)));
            let mut scripts: Vec<CheckedFile> =
                found.chain(skipped).map(|(path, reason)| judge(path, reason)).collect();
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
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return (
                Some(format!(
                    "hooks directory {} does not exist: no hook script runs",
                    hooks_dir.display()
                )),
                Vec::new(),
            );
        }
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

/// What makes a file name look like a packaging or editor leftover.
fn leftover(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if let Some(s) =
        LEFTOVER_SUFFIXES.into_iter().find(|s| name.len() > s.len() && name.ends_with(s))
    {
        return Some(format!("ends in '{s}'"));
    }
    if name.len() > 2 && name.starts_with('#') && name.ends_with('#') {
        return Some("is an editor's '#...#' autosave".to_owned());
    }
    let (_, ext) = name.rsplit_once('.')?;
    for (prefix, what) in [("dpkg-", ".dpkg-*"), ("rpm", ".rpm*")] {
        if ext.starts_with(prefix) && ext.len() > prefix.len() {
            return Some(format!("ends in '.{ext}' ({what})"));
        }
    }
    None
}
