//! `virt-hook install --libvirt`: makes virt-hook libvirt's hook script for
//! some drivers, as a symlink (or a copy) `<hooks>/<driver>`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::{Format, exit};

/// How `<hooks>/<driver>` relates to this virt-hook.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Installed {
    /// Nothing there.
    Absent,
    /// A symlink to this executable.
    Link,
    /// A byte-for-byte copy of this executable.
    Copy,
    /// Something else: a user's own hook script.
    Foreign,
}

/// What is at `path`, compared with the running executable `exe`, read
/// only: a symbolic link (or a chain of them) to the same file, the same
/// file (a hard link), or a file of the same length and bytes.
pub(crate) fn installed(path: &Path, exe: &Path) -> Installed {
    let Ok(meta) = fs::symlink_metadata(path) else { return Installed::Absent };
    let (Ok(target), Ok(exe_meta)) = (fs::metadata(path), fs::metadata(exe)) else {
        return Installed::Foreign;
    };
    let same_file = target.dev() == exe_meta.dev() && target.ino() == exe_meta.ino();
    if meta.file_type().is_symlink() {
        return if same_file { Installed::Link } else { Installed::Foreign };
    }
    if same_file {
        return Installed::Copy;
    }
    let same_bytes = target.is_file()
        && target.len() == exe_meta.len()
        && same_content(path, exe).unwrap_or(false);
    if same_bytes { Installed::Copy } else { Installed::Foreign }
}

/// Whether two files of the same length hold the same bytes, compared a
/// block at a time (the executable is megabytes).
fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let (mut a, mut b) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut x, mut y) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(b.read(&mut y[..1])? == 0);
        }
        b.read_exact(&mut y[..n])?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
}

/// Whether `path` is virt-hook itself: the running executable, linked or
/// copied.
pub(crate) fn is_virt_hook(path: &Path) -> bool {
    let Ok(exe) = std::env::current_exe() else { return false };
    matches!(installed(path, &exe), Installed::Link | Installed::Copy)
}

/// What one step of `install` or `uninstall` does, in the order done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Action {
    /// Create the hooks directory (mode 0755).
    CreateHooksDir,
    /// Nothing to do; `reason` says why.
    Keep,
    /// Move a hook that is not virt-hook to `backup`.
    MoveAside,
    /// Make `path` a symbolic link to `executable`.
    InstallLink,
    /// Make `path` a copy of `executable`.
    InstallCopy,
    /// Remove virt-hook's `path`.
    Remove,
    /// Move `backup` back to `path`.
    RestoreBackup,
}

/// One step, as planned and then as done: what `--format json` prints for
/// each change.
#[derive(Debug, Serialize)]
struct Step {
    /// The driver whose hook this is; none for the hooks directory itself.
    driver: Option<String>,
    /// `<hooks>/<driver>`, or the hooks directory.
    path: PathBuf,
    action: Action,
    /// Where a hook is moved aside to, or the backup put back.
    backup: Option<PathBuf>,
    /// The executable linked to or copied.
    executable: Option<PathBuf>,
    /// Why nothing is done, for `keep`.
    reason: Option<&'static str>,
    /// Whether this was only planned (`--dry-run`).
    dry_run: bool,
    /// Whether the change was made.
    done: bool,
}

impl Step {
    fn new(driver: Option<&str>, path: &Path, action: Action, dry_run: bool) -> Step {
        Step {
            driver: driver.map(str::to_owned),
            path: path.to_owned(),
            action,
            backup: None,
            executable: None,
            reason: None,
            dry_run,
            done: false,
        }
    }

    /// Makes the change.
    fn apply(&self) -> anyhow::Result<()> {
        let path = &self.path;
        match (self.action, &self.backup, &self.executable) {
            (Action::CreateHooksDir, ..) => {
                fs::create_dir_all(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
            }
            (Action::Keep, ..) => {}
            (Action::MoveAside, Some(backup), _) => {
                fs::rename(path, backup).with_context(|| {
                    format!("cannot move {} to {}", path.display(), backup.display())
                })?;
            }
            (Action::InstallLink, _, Some(exe)) => std::os::unix::fs::symlink(exe, path)
                .with_context(|| format!("cannot create the link {}", path.display()))?,
            (Action::InstallCopy, _, Some(exe)) => {
                fs::copy(exe, path).with_context(|| {
                    format!("cannot copy {} to {}", exe.display(), path.display())
                })?;
                fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
            }
            (Action::Remove, ..) => {
                fs::remove_file(path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
            (Action::RestoreBackup, Some(backup), _) => {
                fs::rename(backup, path).with_context(|| {
                    format!("cannot move {} back to {}", backup.display(), path.display())
                })?;
            }
            (action, ..) => anyhow::bail!("{action:?} of {} lacks its operand", path.display()),
        }
        Ok(())
    }

    /// The text line for this step (after it was done, or planned with
    /// `--dry-run`); `prev` is the step before it. None when the line was
    /// the previous step's: a planned move aside and install are one line.
    fn line(&self, prev: Option<&Step>) -> Option<String> {
        let path = self.path.display();
        let how = |exe: &Option<PathBuf>| {
            let exe = shown(exe);
            match self.action {
                Action::InstallCopy => format!("a copy of {exe}"),
                _ => format!("a link to {exe}"),
            }
        };
        let would = if self.dry_run { "would " } else { "" };
        Some(match (self.action, self.dry_run) {
            (Action::CreateHooksDir, true) => format!("would create {path}"),
            (Action::CreateHooksDir, false) => format!("created {path}"),
            (Action::Keep, _) => format!("{path}: {}", self.reason.unwrap_or_default()),
            (Action::MoveAside, true) => return None,
            (Action::MoveAside, false) => {
                format!("{path}: moved the existing hook to {}", shown(&self.backup))
            }
            (Action::InstallLink | Action::InstallCopy, true) => {
                match prev.filter(|p| p.action == Action::MoveAside && p.path == self.path) {
                    Some(moved) => format!(
                        "{path}: would move the existing hook to {} and install {}",
                        shown(&moved.backup),
                        how(&self.executable)
                    ),
                    None => format!("{path}: would install {}", how(&self.executable)),
                }
            }
            (Action::InstallLink | Action::InstallCopy, false) => {
                format!("{path}: installed ({})", how(&self.executable))
            }
            (Action::Remove, _) => format!("{path}: {would}remove virt-hook"),
            (Action::RestoreBackup, _) => {
                format!("{path}: {would}put back {}", shown(&self.backup))
            }
        })
    }
}

/// An optional path for a text line (always set where a line shows it).
fn shown(path: &Option<PathBuf>) -> std::path::Display<'_> {
    path.as_deref().unwrap_or(Path::new("")).display()
}

/// A driver whose hook is left alone, which refuses the whole call.
#[derive(Debug, Serialize)]
struct Refusal {
    driver: String,
    path: PathBuf,
    reason: String,
}

/// What `install` or `uninstall` planned, did and refused: the document
/// `--format json` prints.
#[derive(Debug, Serialize)]
struct Report {
    /// `install` or `uninstall`.
    command: &'static str,
    hooks_dir: PathBuf,
    dry_run: bool,
    /// Every step, in order.
    changes: Vec<Step>,
    /// When not empty, nothing was changed.
    refused: Vec<Refusal>,
}

impl Report {
    fn new(command: &'static str, hooks: &Path, dry_run: bool) -> Report {
        Report {
            command,
            hooks_dir: hooks.to_owned(),
            dry_run,
            changes: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// Prints the refusals on stderr and, in JSON, the report: nothing is
    /// changed.
    fn refuse(&self, format: Format, out: &mut impl Write) -> anyhow::Result<u8> {
        for refusal in &self.refused {
            eprintln!("error: {}", refusal.reason);
        }
        eprintln!("error: nothing was {}ed", self.command);
        if format == Format::Json {
            crate::print_json(out, self)?;
        }
        Ok(exit::REFUSED)
    }

    /// Makes the changes in order (none with `--dry-run`), printing each
    /// text line once its change is made; in JSON the report, also when a
    /// change fails (then its error follows).
    fn execute(&mut self, format: Format, out: &mut impl Write) -> anyhow::Result<()> {
        let result = self.apply_all(format, out);
        if format == Format::Json {
            crate::print_json(out, self)?;
        }
        result
    }

    fn apply_all(&mut self, format: Format, out: &mut impl Write) -> anyhow::Result<()> {
        for i in 0..self.changes.len() {
            if !self.dry_run {
                self.changes[i].apply()?;
                self.changes[i].done = true;
            }
            let prev = i.checked_sub(1).map(|p| &self.changes[p]);
            if let (Format::Text, Some(line)) = (format, self.changes[i].line(prev)) {
                writeln!(out, "{line}")?;
            }
        }
        Ok(())
    }
}

/// Installs virt-hook as `<hooks>/<driver>` for each driver. Every driver
/// is checked first (a loaded driver's name; an existing hook that is not
/// virt-hook needs `force`): when one is refused nothing changes. With
/// `dry_run` nothing changes either, and what would is printed.
pub(crate) fn install(
    hooks: &Path,
    drivers: &[String],
    loaded: &[String],
    opts: InstallOptions,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<u8> {
    check_driver_names(drivers, loaded)?;
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    let exe = fs::canonicalize(&exe).unwrap_or(exe);
    let dry_run = opts.dry_run;
    let mut report = Report::new("install", hooks, dry_run);
    if !hooks.is_dir() {
        report.changes.push(Step::new(None, hooks, Action::CreateHooksDir, dry_run));
    }
    let how = if opts.copy { Action::InstallCopy } else { Action::InstallLink };
    for driver in drivers {
        let path = hooks.join(driver);
        let step = |action| Step::new(Some(driver), &path, action, dry_run);
        match installed(&path, &exe) {
            Installed::Link | Installed::Copy => {
                report
                    .changes
                    .push(Step { reason: Some("already virt-hook"), ..step(Action::Keep) });
                continue;
            }
            Installed::Foreign if !opts.force => {
                report.refused.push(Refusal {
                    driver: driver.clone(),
                    reason: format!(
                        "{} is an existing hook script, not virt-hook; left alone (--force \
                         replaces it and keeps a backup)",
                        path.display()
                    ),
                    path,
                });
                continue;
            }
            Installed::Foreign => report
                .changes
                .push(Step { backup: Some(backup_name(&path)), ..step(Action::MoveAside) }),
            Installed::Absent => {}
        }
        report.changes.push(Step { executable: Some(exe.clone()), ..step(how) });
    }
    if !report.refused.is_empty() {
        return report.refuse(format, out);
    }
    report.execute(format, out)?;
    if format == Format::Text && !dry_run {
        writeln!(out, "libvirt runs these hooks from its next start or reload (SIGHUP)")?;
    }
    Ok(exit::OK)
}

/// `install`'s switches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InstallOptions {
    pub(crate) copy: bool,
    pub(crate) force: bool,
    pub(crate) dry_run: bool,
}

/// Removes virt-hook's `<hooks>/<driver>` (only a link to, or a copy of,
/// this virt-hook) for each driver, and puts back the backup `install
/// --force` kept. A hook that is not virt-hook refuses the whole call:
/// nothing changes. Without drivers, every driver virt-hook is installed
/// for.
pub(crate) fn uninstall(
    hooks: &Path,
    drivers: &[String],
    known: &[String],
    dry_run: bool,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<u8> {
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    let exe = fs::canonicalize(&exe).unwrap_or(exe);
    let explicit = !drivers.is_empty();
    let drivers: Vec<String> = if explicit {
        for driver in drivers {
            check_driver_name(driver)?;
        }
        drivers.to_vec()
    } else {
        known.to_vec()
    };
    let mut report = Report::new("uninstall", hooks, dry_run);
    for driver in &drivers {
        let path = hooks.join(driver);
        let step = |action| Step::new(Some(driver), &path, action, dry_run);
        match installed(&path, &exe) {
            Installed::Link | Installed::Copy => {
                report.changes.push(step(Action::Remove));
                if let Some(backup) = latest_backup(&path) {
                    report
                        .changes
                        .push(Step { backup: Some(backup), ..step(Action::RestoreBackup) });
                }
            }
            Installed::Absent if explicit => {
                report.changes.push(Step { reason: Some("not installed"), ..step(Action::Keep) });
            }
            Installed::Foreign if explicit => report.refused.push(Refusal {
                driver: driver.clone(),
                reason: format!(
                    "{} is not virt-hook (a link to, or a copy of, {}); left alone",
                    path.display(),
                    exe.display()
                ),
                path,
            }),
            Installed::Absent | Installed::Foreign => {}
        }
    }
    if !report.refused.is_empty() {
        return report.refuse(format, out);
    }
    if report.changes.is_empty() {
        match format {
            Format::Text => writeln!(out, "virt-hook is not installed in {}", hooks.display())?,
            Format::Json => crate::print_json(out, &report)?,
        }
        return Ok(exit::OK);
    }
    report.execute(format, out)?;
    if format == Format::Text && !dry_run {
        writeln!(out, "libvirt notices removed hooks at its next start or reload (SIGHUP)")?;
    }
    Ok(exit::OK)
}

/// The newest backup of `path` `install --force` made: the highest
/// numbered `<path>.virt-hook-backup.N`, else `<path>.virt-hook-backup`.
fn latest_backup(path: &Path) -> Option<PathBuf> {
    let base = PathBuf::from(format!("{}.virt-hook-backup", path.display()));
    fs::symlink_metadata(&base).ok()?;
    let mut latest = base.clone();
    for n in 1.. {
        let next = PathBuf::from(format!("{}.{n}", base.display()));
        if fs::symlink_metadata(&next).is_err() {
            break;
        }
        latest = next;
    }
    Some(latest)
}

/// Every name must be a plain file name and a loaded driver's: nothing
/// changes when one of them is not.
fn check_driver_names(drivers: &[String], loaded: &[String]) -> anyhow::Result<()> {
    for driver in drivers {
        check_driver_name(driver)?;
        if !loaded.contains(driver) {
            anyhow::bail!(
                "no driver named '{driver}'; loaded drivers: {}; nothing was installed",
                if loaded.is_empty() { "none".to_owned() } else { loaded.join(", ") }
            );
        }
    }
    Ok(())
}

/// A driver name is the hook script's file name in the hooks directory: a
/// plain file name, so that `<hooks>/<driver>` is never elsewhere.
fn check_driver_name(driver: &str) -> anyhow::Result<()> {
    let plain = !driver.is_empty() && driver != "." && driver != ".." && !driver.contains('/');
    if !plain {
        anyhow::bail!(
            "'{driver}' is not a driver name: a driver name is a plain file name (not empty, \
             '.' or '..', no '/'); nothing was installed"
        );
    }
    Ok(())
}

/// `<path>.virt-hook-backup`, or with a number when that is taken. The
/// name matches no driver, so libvirt never runs it.
fn backup_name(path: &Path) -> PathBuf {
    let base = format!("{}.virt-hook-backup", path.display());
    let mut candidate = PathBuf::from(&base);
    let mut n = 1;
    while fs::symlink_metadata(&candidate).is_ok() {
        candidate = PathBuf::from(format!("{base}.{n}"));
        n += 1;
    }
    candidate
}
