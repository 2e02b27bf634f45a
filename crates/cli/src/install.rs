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

/// Installs virt-hook as `<hooks>/<driver>` for each driver. Exit 1 when an
/// existing hook was left alone.
pub(crate) fn install(
    hooks: &Path,
    drivers: &[String],
    copy: bool,
    force: bool,
    out: &mut impl Write,
) -> anyhow::Result<u8> {
    // Every name first: nothing changes when one of them is bad.
    for driver in drivers {
        check_driver_name(driver)?;
    }
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    let exe = fs::canonicalize(&exe).unwrap_or(exe);
    if !hooks.is_dir() {
        fs::create_dir_all(hooks).with_context(|| format!("cannot create {}", hooks.display()))?;
        fs::set_permissions(hooks, fs::Permissions::from_mode(0o755))?;
        writeln!(out, "created {}", hooks.display())?;
    }
    let mut refused = 0;
    for driver in drivers {
        let path = hooks.join(driver);
        match installed(&path, &exe) {
            Installed::Link | Installed::Copy => {
                writeln!(out, "{}: already virt-hook", path.display())?;
                continue;
            }
            Installed::Foreign if !force => {
                eprintln!(
                    "error: {} is an existing hook script, not virt-hook; left alone (--force replaces it and keeps a backup)",
                    path.display()
                );
                refused += 1;
                continue;
            }
            Installed::Foreign => {
                let backup = backup_name(&path);
                fs::rename(&path, &backup).with_context(|| {
                    format!("cannot move {} to {}", path.display(), backup.display())
                })?;
                writeln!(
                    out,
                    "{}: moved the existing hook to {}",
                    path.display(),
                    backup.display()
                )?;
            }
            Installed::Absent => {}
        }
        if copy {
            fs::copy(&exe, &path)
                .with_context(|| format!("cannot copy {} to {}", exe.display(), path.display()))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
            writeln!(out, "{}: installed (a copy of {})", path.display(), exe.display())?;
        } else {
            std::os::unix::fs::symlink(&exe, &path)
                .with_context(|| format!("cannot create the link {}", path.display()))?;
            writeln!(out, "{}: installed (a link to {})", path.display(), exe.display())?;
        }
    }
    if refused == 0 {
        writeln!(out, "libvirt runs these hooks from its next start or reload (SIGHUP)")?;
    }
    Ok(if refused == 0 { exit::OK } else { exit::REFUSED })
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
