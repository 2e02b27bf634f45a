//! The script security rules: who may have written a hook script.
//!
//! A hook script runs with the daemon's privileges (root, for the system
//! daemons), so anybody who can change a script, or a directory on the way to
//! it, can run code as root. A script is refused when the file or any directory
//! from the hooks directory down to it
//!
//! - is writable by its group or by others,
//! - is owned by someone other than root or the host's effective user,
//!
//! or when the file is setuid or setgid. A symlinked script is judged by its
//! target as well: the target file and the directory holding it.
//!
//! Checking happens just before execution, by path. See `docs/security.md` for
//! why the window between the check and the exec cannot be used by anyone the
//! rules do not already trust.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a hook script is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsafe {
    /// The file or directory at fault.
    pub(crate) path: PathBuf,
    /// What is wrong with it.
    pub(crate) problem: Problem,
}

/// What is wrong with a file or directory on the way to a hook script (or
/// with a plugin file and its directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// Group or others may write it; the mode is given.
    Writable(u32),
    /// Owned by `owner`, which is neither root nor the host's user `euid`.
    ForeignOwner {
        /// The file's owner.
        owner: u32,
        /// The host's effective uid.
        euid: u32,
    },
    /// The script is setuid or setgid; the mode is given.
    SetId(u32),
    /// It could not be examined; the OS reason.
    Unreadable(String),
}

/// The predicate: "is writable by its group (mode 0775)".
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Writable(mode) => {
                let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
                    (true, true) => "group and others",
                    (true, false) => "its group",
                    _ => "others",
                };
                write!(f, "is writable by {who} (mode {:04o})", mode & 0o7777)
            }
            Problem::ForeignOwner { owner, euid } => {
                write!(f, "is owned by uid {owner}, not root or uid {euid}")
            }
            Problem::SetId(mode) => write!(f, "is setuid or setgid (mode {:04o})", mode & 0o7777),
            Problem::Unreadable(reason) => write!(f, "cannot be examined: {reason}"),
        }
    }
}

impl fmt::Display for Unsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path.display(), self.problem)
    }
}

/// The directories found safe so far during one event, so that the scripts
/// of one `.d` directory do not each re-examine the hooks directory and the
/// `.d` directory. Only successes are kept; a new event starts empty, so a
/// change between events is always seen.
#[derive(Debug, Default)]
pub(crate) struct CheckedDirs(Vec<PathBuf>);

/// The host's effective user id: whose scripts and plugins the rules trust
/// (besides root's).
pub(crate) fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Checks `script` (a path inside `hooks_dir`) and every directory from
/// `hooks_dir` down to it, for a host running as `euid`. Directories in
/// `checked` are not examined again; those found safe are added to it.
pub(crate) fn check_script(
    hooks_dir: &Path,
    script: &Path,
    euid: u32,
    checked: &mut CheckedDirs,
) -> Result<(), Unsafe> {
    // The directories from the hooks dir down to the script's own directory.
    let mut dirs: Vec<&Path> =
        script.ancestors().skip(1).take_while(|d| d.starts_with(hooks_dir)).collect();
    dirs.reverse();
    for dir in dirs {
        if checked.0.iter().any(|d| d == dir) {
            continue;
        }
        check_entry(dir, euid, false)?;
        checked.0.push(dir.to_owned());
    }
    // A symlinked script: judge the file that really runs, and its directory.
    // For anything else, lstat already says everything stat would.
    let meta = match std::fs::symlink_metadata(script) {
        Ok(meta) => meta,
        Err(e) => return Err(Unsafe { path: script.to_owned(), problem: unreadable(&e) }),
    };
    if !meta.file_type().is_symlink() {
        return judge(script, &meta, euid, true);
    }
    let target = std::fs::canonicalize(script)
        .map_err(|e| Unsafe { path: script.to_owned(), problem: unreadable(&e) })?;
    if let Some(parent) = target.parent() {
        check_entry(parent, euid, false)?;
    }
    check_entry(&target, euid, true)
}

/// Checks one file or directory: not writable by group or others, owned by
/// root or `euid`, and, for a script, not setuid or setgid. Plugins are held
/// to the same rule (`is_script: false`).
pub(crate) fn check_entry(path: &Path, euid: u32, is_script: bool) -> Result<(), Unsafe> {
    match std::fs::metadata(path) {
        Ok(meta) => judge(path, &meta, euid, is_script),
        Err(e) => Err(Unsafe { path: path.to_owned(), problem: unreadable(&e) }),
    }
}

/// [`check_entry`] on metadata already read.
fn judge(path: &Path, meta: &std::fs::Metadata, euid: u32, is_script: bool) -> Result<(), Unsafe> {
    let unsafe_because = |problem| Err(Unsafe { path: path.to_owned(), problem });
    let mode = meta.mode();
    if mode & 0o022 != 0 {
        return unsafe_because(Problem::Writable(mode));
    }
    if meta.uid() != 0 && meta.uid() != euid {
        return unsafe_because(Problem::ForeignOwner { owner: meta.uid(), euid });
    }
    if is_script && mode & 0o6000 != 0 {
        return unsafe_because(Problem::SetId(mode));
    }
    Ok(())
}

fn unreadable(err: &std::io::Error) -> Problem {
    Problem::Unreadable(crate::message::strerror(err))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn hooks() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("qemu.d");
        std::fs::create_dir(&d).unwrap();
        set_mode(&d, 0o755);
        let script = d.join("10-x");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        set_mode(&script, 0o755);
        (dir, script)
    }

    /// The owner of a new file is the effective uid.
    fn euid() -> u32 {
        let probe = tempfile::NamedTempFile::new().unwrap();
        std::fs::metadata(probe.path()).unwrap().uid()
    }

    #[test]
    fn a_clean_tree_passes() {
        let (dir, script) = hooks();
        assert_eq!(check_script(dir.path(), &script, euid(), &mut CheckedDirs::default()), Ok(()));
    }

    #[test]
    fn group_writable_script_and_directory_are_refused() {
        let (dir, script) = hooks();
        set_mode(&script, 0o775);
        let err =
            check_script(dir.path(), &script, euid(), &mut CheckedDirs::default()).unwrap_err();
        assert_eq!(err.problem, Problem::Writable(0o100775));
        assert!(err.to_string().ends_with("10-x is writable by its group (mode 0775)"), "{err}");
        set_mode(&script, 0o755);
        set_mode(script.parent().unwrap(), 0o777);
        let err =
            check_script(dir.path(), &script, euid(), &mut CheckedDirs::default()).unwrap_err();
        assert_eq!(err.path, script.parent().unwrap());
        assert!(err.to_string().contains("writable by group and others (mode 0777)"), "{err}");
    }

    #[test]
    fn setuid_script_is_refused() {
        let (dir, script) = hooks();
        set_mode(&script, 0o4755);
        let err =
            check_script(dir.path(), &script, euid(), &mut CheckedDirs::default()).unwrap_err();
        assert!(matches!(err.problem, Problem::SetId(_)), "{err}");
    }

    #[test]
    fn a_foreign_owner_is_refused() {
        let (dir, script) = hooks();
        // Pretend the host runs as another user: the files are then foreign
        // unless they belong to root.
        let owner = std::fs::metadata(&script).unwrap().uid();
        let result =
            check_script(dir.path(), &script, owner.wrapping_add(1), &mut CheckedDirs::default());
        if owner == 0 {
            assert_eq!(result, Ok(()), "root-owned files are always trusted");
        } else {
            assert_eq!(
                result.unwrap_err().problem,
                Problem::ForeignOwner { owner, euid: owner.wrapping_add(1) }
            );
        }
    }

    #[test]
    fn a_symlink_is_judged_by_its_target() {
        let (dir, script) = hooks();
        let elsewhere = tempfile::tempdir().unwrap();
        set_mode(elsewhere.path(), 0o755);
        let target = elsewhere.path().join("real");
        std::fs::write(&target, "#!/bin/sh\n").unwrap();
        set_mode(&target, 0o777);
        let link = script.with_file_name("20-link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = check_script(dir.path(), &link, euid(), &mut CheckedDirs::default()).unwrap_err();
        assert_eq!(err.path, target.canonicalize().unwrap());
    }
}
