//! The trust rule: who may have written what the host runs or loads. This
//! module *vets* files (`vet_script`, `vet_plugin`); "check" is left to the
//! `check` report and the drivers' checks.
//!
//! A hook script runs with the daemon's privileges (root, for the system
//! daemons), and a plugin's initialisers run in the host, so anybody who can
//! change a script, a plugin, a link or a directory on the way to them can
//! run code as root. The *trusted* users are root and the host's effective
//! user. Walking from the anchor (the hooks directory, a plugin directory)
//! the way the kernel resolves the path (see `walk`), a script or plugin is
//! refused when
//!
//! - a directory that holds a symbolic link or the file of the chain (the
//!   anchor included) is writable by its group or by others, sticky bit or
//!   not (in a sticky directory the owner of an entry can still swap it), or
//!   is owned by an untrusted user;
//! - a directory the walk only passes through (to the next directory) is
//!   that, unless it is one of the anchor's own ancestors (`/`, `/etc`, ...
//!   for `/etc/libvirt/hooks`): those decide where the anchor itself is, so
//!   whoever controls them controls the anchor whatever is checked below;
//! - a symbolic link of the chain is owned by an untrusted user;
//! - more than [`MAX_LINKS`](super::walk::MAX_LINKS) links are followed;
//! - the file at the end is not a regular file, is writable by its group or
//!   by others, or is owned by an untrusted user, or (a script) is setuid or
//!   setgid.
//!
//! Nobody untrusted can then change any component of the chain, so the
//! window between this check and the exec (or `dlopen`) by path is closed by
//! construction. See `docs/security.md`.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{
    message,
    walk::{self, Judge, Meta, Stop, Walked},
};

/// Why a hook script is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsafe {
    /// The file, link or directory at fault.
    pub(crate) path: PathBuf,
    /// What is wrong with it.
    pub(crate) problem: SecurityProblem,
}

/// What is wrong with a file, link or directory on the way to a hook script
/// or a plugin: why the security rules do not trust it. Its text is a
/// predicate ("is writable by its group (mode 0775)") that follows the name
/// of the file, link or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecurityProblem {
    /// Group or others may write it; the mode is given.
    Writable(u32),
    /// Owned by `owner`, which is neither root nor the host's user `euid`.
    ForeignOwner {
        /// The file's owner.
        owner: u32,
        /// The host's effective uid.
        euid: u32,
    },
    /// A symbolic link of the chain owned by `owner`, which is neither root
    /// nor the host's user `euid`.
    LinkOwner {
        /// The link's owner.
        owner: u32,
        /// The host's effective uid.
        euid: u32,
    },
    /// The script is setuid or setgid; the mode is given.
    SetId(u32),
    /// The end of the chain is not a regular file.
    NotRegularFile,
    /// The chain has more links than the walk follows; the limit is given.
    TooManyLinks(usize),
    /// It could not be examined; the OS reason.
    Unreadable(String),
}

/// The predicate: "is writable by its group (mode 0775)".
impl fmt::Display for SecurityProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecurityProblem::Writable(mode) => {
                let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
                    (true, true) => "group and others",
                    (true, false) => "its group",
                    _ => "others",
                };
                write!(f, "is writable by {who} (mode {:04o})", mode & 0o7777)
            }
            SecurityProblem::ForeignOwner { owner, euid } => {
                write!(f, "is owned by uid {owner}, not root or uid {euid}")
            }
            SecurityProblem::LinkOwner { owner, euid } => {
                write!(f, "is a symbolic link owned by uid {owner}, not root or uid {euid}")
            }
            SecurityProblem::SetId(mode) => {
                write!(f, "is setuid or setgid (mode {:04o})", mode & 0o7777)
            }
            SecurityProblem::NotRegularFile => f.write_str("is not a regular file"),
            SecurityProblem::TooManyLinks(max) => {
                write!(f, "is a symbolic link beyond the {max} a chain may have")
            }
            SecurityProblem::Unreadable(reason) => write!(f, "cannot be examined: {reason}"),
        }
    }
}

impl fmt::Display for Unsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path.display(), self.problem)
    }
}

/// The rule, for a host running as `euid`: the [`Judge`] of every
/// component a walk meets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    /// The host's effective uid: trusted, with root.
    pub(crate) euid: u32,
    /// The end of the chain is a script (setuid and setgid are refused).
    pub(crate) script: bool,
}

impl Rule {
    fn trusted(&self, uid: u32) -> bool {
        uid == 0 || uid == self.euid
    }

    fn owner_and_mode(&self, path: &Path, meta: &Meta) -> Result<(), Unsafe> {
        let unsafe_because = |problem| Err(Unsafe { path: path.to_owned(), problem });
        if meta.mode & 0o022 != 0 {
            return unsafe_because(SecurityProblem::Writable(meta.mode));
        }
        if !self.trusted(meta.uid) {
            return unsafe_because(SecurityProblem::ForeignOwner {
                owner: meta.uid,
                euid: self.euid,
            });
        }
        Ok(())
    }
}

impl Judge for Rule {
    type Fault = Unsafe;

    fn holder(&self, path: &Path, meta: &Meta) -> Result<(), Unsafe> {
        self.owner_and_mode(path, meta)
    }

    fn link(&self, path: &Path, meta: &Meta) -> Result<(), Unsafe> {
        if self.trusted(meta.uid) {
            return Ok(());
        }
        Err(Unsafe {
            path: path.to_owned(),
            problem: SecurityProblem::LinkOwner { owner: meta.uid, euid: self.euid },
        })
    }

    fn end(&self, path: &Path, meta: &Meta) -> Result<(), Unsafe> {
        if !meta.is_file() {
            return Err(Unsafe { path: path.to_owned(), problem: SecurityProblem::NotRegularFile });
        }
        self.owner_and_mode(path, meta)?;
        if self.script && meta.mode & 0o6000 != 0 {
            return Err(Unsafe {
                path: path.to_owned(),
                problem: SecurityProblem::SetId(meta.mode),
            });
        }
        Ok(())
    }
}

/// The host's effective user id: whose scripts and plugins the rules trust
/// (besides root's).
pub(crate) fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// What the walks of one event (or one plugin directory) have opened, so
/// that the scripts of one `.d` directory do not each walk from the hooks
/// directory again. A new event starts empty, so a change between events is
/// always seen.
#[derive(Debug, Default)]
pub(crate) struct VettedDirs(Walked);

/// Vets `script` (a path inside `hooks_dir`) by walking to it from
/// `hooks_dir`, for a host running as `euid`.
pub(crate) fn vet_script(
    hooks_dir: &Path,
    script: &Path,
    euid: u32,
    vetted: &mut VettedDirs,
) -> Result<(), Unsafe> {
    vet(hooks_dir, script, Rule { euid, script: true }, vetted)
}

/// Vets a file the host reads to decide what scripts get (a profile's
/// `profile.toml`, a path inside `hooks_dir`): the rule of a plugin file
/// (owner and mode of it and of every link and directory on the way).
pub(crate) fn vet_declaration(
    hooks_dir: &Path,
    file: &Path,
    euid: u32,
    vetted: &mut VettedDirs,
) -> Result<(), Unsafe> {
    vet(hooks_dir, file, Rule { euid, script: false }, vetted)
}

/// Vets the plugin file `file` (a path inside the plugin directory `dir`)
/// by walking to it from `dir`.
pub(crate) fn vet_plugin(
    dir: &Path,
    file: &Path,
    euid: u32,
    vetted: &mut VettedDirs,
) -> Result<(), Unsafe> {
    vet(dir, file, Rule { euid, script: false }, vetted)
}

fn vet(anchor: &Path, file: &Path, rule: Rule, vetted: &mut VettedDirs) -> Result<(), Unsafe> {
    let walked = match file.strip_prefix(anchor) {
        Ok(rest) => walk::walk(anchor, rest, &rule, &mut vetted.0),
        // Not below the anchor: everything from `/` (or the current
        // directory) is judged.
        Err(_) => {
            let root = if file.is_absolute() { Path::new("/") } else { Path::new(".") };
            walk::walk(root, file, &rule, &mut vetted.0)
        }
    };
    walked.map_err(|stop| match stop {
        Stop::Refused(fault) => fault,
        Stop::Unreadable { path, err } => {
            Unsafe { path, problem: SecurityProblem::Unreadable(message::strerror(&err)) }
        }
        Stop::TooManyLinks { path } => {
            Unsafe { path, problem: SecurityProblem::TooManyLinks(walk::MAX_LINKS) }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

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
        assert_eq!(vet_script(dir.path(), &script, euid(), &mut VettedDirs::default()), Ok(()));
    }

    #[test]
    fn group_writable_script_and_directory_are_refused() {
        let (dir, script) = hooks();
        set_mode(&script, 0o775);
        let err = vet_script(dir.path(), &script, euid(), &mut VettedDirs::default()).unwrap_err();
        assert_eq!(err.problem, SecurityProblem::Writable(0o100775));
        assert!(err.to_string().ends_with("10-x is writable by its group (mode 0775)"), "{err}");
        set_mode(&script, 0o755);
        set_mode(script.parent().unwrap(), 0o777);
        let err = vet_script(dir.path(), &script, euid(), &mut VettedDirs::default()).unwrap_err();
        assert_eq!(err.path, script.parent().unwrap());
        assert!(err.to_string().contains("writable by group and others (mode 0777)"), "{err}");
    }

    #[test]
    fn setuid_script_is_refused() {
        let (dir, script) = hooks();
        set_mode(&script, 0o4755);
        let err = vet_script(dir.path(), &script, euid(), &mut VettedDirs::default()).unwrap_err();
        assert!(matches!(err.problem, SecurityProblem::SetId(_)), "{err}");
    }

    #[test]
    fn a_foreign_owner_is_refused() {
        let (dir, script) = hooks();
        // Pretend the host runs as another user: the files are then foreign
        // unless they belong to root.
        let owner = std::fs::metadata(&script).unwrap().uid();
        let result =
            vet_script(dir.path(), &script, owner.wrapping_add(1), &mut VettedDirs::default());
        if owner == 0 {
            assert_eq!(result, Ok(()), "root-owned files are always trusted");
        } else {
            assert_eq!(
                result.unwrap_err().problem,
                SecurityProblem::ForeignOwner { owner, euid: owner.wrapping_add(1) }
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
        let err = vet_script(dir.path(), &link, euid(), &mut VettedDirs::default()).unwrap_err();
        assert_eq!(err.path, target.canonicalize().unwrap());
    }

    #[test]
    fn the_41st_link_and_a_loop_are_refused() {
        let (dir, script) = hooks();
        let d = script.parent().unwrap();
        let mut target = script.clone();
        for i in 0..41 {
            let link = d.join(format!("l{i}"));
            std::os::unix::fs::symlink(&target, &link).unwrap();
            target = link;
        }
        let check = |path: &Path| vet_script(dir.path(), path, euid(), &mut VettedDirs::default());
        assert_eq!(check(&d.join("l39")), Ok(()), "40 links");
        let err = check(&d.join("l40")).unwrap_err();
        assert_eq!(err, Unsafe { path: d.join("l0"), problem: SecurityProblem::TooManyLinks(40) });
        assert!(err.to_string().ends_with("l0 is a symbolic link beyond the 40 a chain may have"));
        std::os::unix::fs::symlink("loop-b", d.join("loop-a")).unwrap();
        std::os::unix::fs::symlink("loop-a", d.join("loop-b")).unwrap();
        assert_eq!(
            check(&d.join("loop-a")).unwrap_err().problem,
            SecurityProblem::TooManyLinks(40)
        );
    }

    #[test]
    fn a_dangling_link_or_a_file_on_the_way_cannot_be_examined() {
        let (dir, script) = hooks();
        let d = script.parent().unwrap();
        std::os::unix::fs::symlink("nowhere", d.join("dangling")).unwrap();
        std::os::unix::fs::symlink("10-x/y", d.join("through-a-file")).unwrap();
        let check = |path: &Path| vet_script(dir.path(), path, euid(), &mut VettedDirs::default());
        let err = check(&d.join("dangling")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} cannot be examined: No such file or directory",
                d.join("nowhere").display()
            )
        );
        let err = check(&d.join("through-a-file")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{} cannot be examined: Not a directory", d.join("10-x").display())
        );
        std::os::unix::fs::symlink(".", d.join("here")).unwrap();
        assert_eq!(check(&d.join("here")).unwrap_err().problem, SecurityProblem::NotRegularFile);
    }

    #[test]
    fn the_directories_above_the_anchor_are_passed_but_never_hold_a_link_or_file() {
        // The hooks directory sits in a world-writable sticky directory
        // (/tmp): passing through it is the anchor's own business, but a
        // link or a file directly in it is refused.
        let (dir, script) = hooks();
        let above = dir.path().parent().unwrap();
        if std::fs::metadata(above).unwrap().mode() & 0o1002 != 0o1002 {
            return; // the temporary directory is not sticky and world-writable
        }
        let d = script.parent().unwrap();
        std::os::unix::fs::symlink(
            format!("../../{}/qemu.d/10-x", dir.path().file_name().unwrap().to_str().unwrap()),
            d.join("back"),
        )
        .unwrap();
        let check = |path: &Path| vet_script(dir.path(), path, euid(), &mut VettedDirs::default());
        assert_eq!(check(&d.join("back")), Ok(()));
        let stray = tempfile::NamedTempFile::new_in(above).unwrap();
        set_mode(stray.path(), 0o755);
        std::os::unix::fs::symlink(stray.path(), d.join("in-tmp")).unwrap();
        let err = check(&d.join("in-tmp")).unwrap_err();
        assert_eq!(err.path, above);
        assert!(matches!(err.problem, SecurityProblem::Writable(_)), "{err}");
    }
}
