//! `virt-hook install --libvirt`: makes virt-hook libvirt's hook script for
//! some drivers, as a symlink (or a copy) `<hooks>/<driver>`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::exit;

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

/// What `install` or `uninstall` does to one `<hooks>/<driver>`.
#[derive(Debug)]
enum Change {
    /// Nothing to do; the reason is printed.
    Keep(&'static str),
    /// Make the link or the copy.
    Install,
    /// Move a foreign hook to the backup, then install.
    Replace { backup: PathBuf },
    /// Remove virt-hook, then put `backup` back if there is one.
    Remove { backup: Option<PathBuf> },
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
    out: &mut impl Write,
) -> anyhow::Result<u8> {
    check_driver_names(drivers, loaded)?;
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    let exe = fs::canonicalize(&exe).unwrap_or(exe);
    let mut changes = Vec::new();
    let mut refused = Vec::new();
    for driver in drivers {
        let path = hooks.join(driver);
        let change = match installed(&path, &exe) {
            Installed::Link | Installed::Copy => Change::Keep("already virt-hook"),
            Installed::Foreign if !opts.force => {
                refused.push(format!(
                    "{} is an existing hook script, not virt-hook; left alone (--force replaces \
                     it and keeps a backup)",
                    path.display()
                ));
                continue;
            }
            Installed::Foreign => Change::Replace { backup: backup_name(&path) },
            Installed::Absent => Change::Install,
        };
        changes.push((path, change));
    }
    if !refused.is_empty() {
        for reason in &refused {
            eprintln!("error: {reason}");
        }
        eprintln!("error: nothing was installed");
        return Ok(exit::REFUSED);
    }
    let how = if opts.copy { "a copy of" } else { "a link to" };
    if opts.dry_run {
        if !hooks.is_dir() {
            writeln!(out, "would create {}", hooks.display())?;
        }
        for (path, change) in &changes {
            match change {
                Change::Keep(why) => writeln!(out, "{}: {why}", path.display())?,
                Change::Replace { backup } => writeln!(
                    out,
                    "{}: would move the existing hook to {} and install {how} {}",
                    path.display(),
                    backup.display(),
                    exe.display()
                )?,
                _ => writeln!(out, "{}: would install {how} {}", path.display(), exe.display())?,
            }
        }
        return Ok(exit::OK);
    }
    if !hooks.is_dir() {
        fs::create_dir_all(hooks).with_context(|| format!("cannot create {}", hooks.display()))?;
        fs::set_permissions(hooks, fs::Permissions::from_mode(0o755))?;
        writeln!(out, "created {}", hooks.display())?;
    }
    for (path, change) in &changes {
        match change {
            Change::Keep(why) => {
                writeln!(out, "{}: {why}", path.display())?;
                continue;
            }
            Change::Replace { backup } => {
                fs::rename(path, backup).with_context(|| {
                    format!("cannot move {} to {}", path.display(), backup.display())
                })?;
                writeln!(
                    out,
                    "{}: moved the existing hook to {}",
                    path.display(),
                    backup.display()
                )?;
            }
            _ => {}
        }
        if opts.copy {
            fs::copy(&exe, path)
                .with_context(|| format!("cannot copy {} to {}", exe.display(), path.display()))?;
            fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
        } else {
            std::os::unix::fs::symlink(&exe, path)
                .with_context(|| format!("cannot create the link {}", path.display()))?;
        }
        writeln!(out, "{}: installed ({how} {})", path.display(), exe.display())?;
    }
    writeln!(out, "libvirt runs these hooks from its next start or reload (SIGHUP)")?;
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
    let mut changes = Vec::new();
    let mut refused = Vec::new();
    for driver in &drivers {
        let path = hooks.join(driver);
        let change = match installed(&path, &exe) {
            Installed::Link | Installed::Copy => Change::Remove { backup: latest_backup(&path) },
            Installed::Absent if explicit => Change::Keep("not installed"),
            Installed::Absent => continue,
            Installed::Foreign if explicit => {
                refused.push(format!(
                    "{} is not virt-hook (a link to, or a copy of, {}); left alone",
                    path.display(),
                    exe.display()
                ));
                continue;
            }
            Installed::Foreign => continue,
        };
        changes.push((path, change));
    }
    if !refused.is_empty() {
        for reason in &refused {
            eprintln!("error: {reason}");
        }
        eprintln!("error: nothing was uninstalled");
        return Ok(exit::REFUSED);
    }
    if changes.is_empty() {
        writeln!(out, "virt-hook is not installed in {}", hooks.display())?;
        return Ok(exit::OK);
    }
    let would = if dry_run { "would " } else { "" };
    for (path, change) in &changes {
        let backup = match change {
            Change::Keep(why) => {
                writeln!(out, "{}: {why}", path.display())?;
                continue;
            }
            Change::Remove { backup } => backup,
            _ => continue,
        };
        if !dry_run {
            fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
        writeln!(out, "{}: {would}remove virt-hook", path.display())?;
        if let Some(backup) = backup {
            if !dry_run {
                fs::rename(backup, path).with_context(|| {
                    format!("cannot move {} back to {}", backup.display(), path.display())
                })?;
            }
            writeln!(out, "{}: {would}put back {}", path.display(), backup.display())?;
        }
    }
    if !dry_run {
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
