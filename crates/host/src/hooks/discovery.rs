//! Finding an event's hook scripts, as libvirt's `virHookCall` does on every
//! call: the main script `<hooks>/<driver>`, then the executable entries of
//! `<hooks>/<driver>.d/` in byte order; and, beyond libvirt, the per-object
//! scripts `<hooks>/<driver>.d/<object>/<op>/<subop>` (see [`Layout`]).
//!
//! Nothing is cached, so added, removed and replaced scripts take effect on
//! the next call. For a driver with no hooks this costs two failing system
//! calls (one `stat`, one `open`).

use std::{
    fs::{self, Metadata},
    io,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::{Path, PathBuf},
};

use super::message;
use crate::run::outcome::{SkipReason, Skipped};

/// Which hook scripts an event runs.
///
/// libvirt runs the main script and the plain files of `<driver>.d/`; it
/// never looks into subdirectories of `<driver>.d/`, which is where the
/// per-object scripts live, so the two never run the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// libvirt's: `<hooks>/<driver>`, then `<hooks>/<driver>.d/*`, and
    /// nothing else (no profiles, no per-object scripts): exactly what
    /// libvirt runs.
    #[default]
    Libvirt,
    /// Only virt-hooks' own scripts: the profiles the object asks for
    /// (`<hooks>/<driver>.profiles/<profile>/<op>/<subop>`), then the
    /// per-object scripts `<hooks>/<driver>.d/<object>/<op>/<subop>`; each
    /// one executable file, or every executable file in that directory (byte
    /// order). This is what virt-hook runs when libvirt calls it as its hook.
    PerObject,
    /// libvirt's scripts, then the profiles, then the per-object ones: for a
    /// daemon that embeds the library.
    Both,
}

impl Layout {
    /// The discovery stages, in the order their scripts run.
    pub(crate) fn stages(self) -> &'static [Stage] {
        match self {
            Layout::Libvirt => &[Stage::Main, Stage::DropIns],
            Layout::PerObject => &[Stage::Profiles, Stage::PerObject],
            Layout::Both => &[Stage::Main, Stage::DropIns, Stage::Profiles, Stage::PerObject],
        }
    }
}

/// One place scripts are looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// `<hooks>/<driver>`.
    Main,
    /// The plain files of `<hooks>/<driver>.d/`.
    DropIns,
    /// The profiles the object asks for, in its order:
    /// `<hooks>/<driver>.profiles/<profile>/<op>/<subop>`. The runner finds
    /// them (it needs the document); [`Stage::find`] has none.
    Profiles,
    /// `<hooks>/<driver>.d/<object>/<op>/<subop>`, a file or a directory.
    PerObject,
}

impl Stage {
    /// The scripts of this stage for an event, in order, and the entries
    /// that do not run. Looked up anew on every call.
    pub(crate) fn find(
        self,
        hooks: &Path,
        driver: &str,
        args: [&str; 4],
    ) -> Result<DropIns, DirError> {
        let main = hooks.join(driver);
        match self {
            Stage::Main => Ok(match main_script(main) {
                MainScript::Absent => DropIns::default(),
                MainScript::Run(path) => DropIns { scripts: vec![path], ..DropIns::default() },
                MainScript::Skipped(skipped) => {
                    DropIns { skipped: vec![skipped], ..DropIns::default() }
                }
            }),
            Stage::DropIns => drop_ins(&drop_in_dir(&main)),
            Stage::Profiles => Ok(DropIns::default()),
            Stage::PerObject => per_object(&drop_in_dir(&main), args),
        }
    }
}

/// `<dir>/<object>/<op>/<subop>`: nothing, one script, or a directory of
/// them. An object that is not a plain file name (`.`, `..`, empty, or with a
/// `/`) has no per-object scripts.
fn per_object(
    drop_in_dir: &Path,
    [object, operation, sub_operation, _]: [&str; 4],
) -> Result<DropIns, DirError> {
    if ![object, operation, sub_operation].into_iter().all(is_plain_name) {
        log::debug!("no per-object scripts for object '{object}': not a plain file name");
        return Ok(DropIns::default());
    }
    file_or_dir(drop_in_dir.join(object).join(operation).join(sub_operation))
}

/// Returns true if and only if `name` is one plain path component: not
/// empty, not `.` or `..`, no `/`.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

/// The name of the directory of an event's deferred scripts, inside its
/// directory: `<object>/<op>/<subop>/deferred/` (and the same inside a
/// profile). Only the directory form of `<subop>` has one.
pub const DEFERRED_DIR: &str = "deferred";

/// The scripts at `path`: nothing, one script, or a directory of them
/// (per-object and profile scripts). A directory's `deferred/`
/// subdirectory is not a skipped entry: it is [`DropIns::deferred`].
pub(crate) fn file_or_dir(path: PathBuf) -> Result<DropIns, DirError> {
    match fs::metadata(&path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(DropIns::default()),
        Err(err) if err.kind() == io::ErrorKind::NotADirectory => Ok(DropIns::default()),
        Err(err) => {
            let message = message::cannot_open_dir(&path, &err);
            Err(DirError { path, message })
        }
        Ok(meta) if meta.is_dir() => {
            let mut found = drop_ins(&path)?;
            let deferred = path.join(DEFERRED_DIR);
            let before = found.skipped.len();
            found.skipped.retain(|s| !(s.reason == SkipReason::Directory && s.path == deferred));
            if found.skipped.len() != before {
                found.deferred = Some(deferred);
            }
            Ok(found)
        }
        Ok(meta) => Ok(match classify(&meta) {
            None => DropIns { scripts: vec![path], ..DropIns::default() },
            Some(reason) => {
                log::warn!("Non-executable hook script {} ({reason})", path.display());
                DropIns { skipped: vec![Skipped { path, reason }], ..DropIns::default() }
            }
        }),
    }
}

/// The main script `<hooks>/<driver>`.
#[derive(Debug)]
pub(crate) enum MainScript {
    /// Nothing there (or a dangling link): libvirt's `No hook script`.
    Absent,
    /// An executable regular file: it runs first.
    Run(PathBuf),
    /// Something that exists but cannot run; the `.d` scripts still run.
    Skipped(Skipped),
}

/// Looks at the main script. libvirt's `virFileIsExecutable`: `stat`
/// (following links) says a regular file with any execute bit.
pub(crate) fn main_script(path: PathBuf) -> MainScript {
    match fs::metadata(&path) {
        Err(err) => {
            log::debug!("No hook script {} ({})", path.display(), message::strerror(&err));
            MainScript::Absent
        }
        Ok(meta) => match classify(&meta) {
            None => MainScript::Run(path),
            Some(reason) => {
                log::warn!("Non-executable hook script {} ({reason})", path.display());
                MainScript::Skipped(Skipped { path, reason })
            }
        },
    }
}

/// The entries of `<driver>.d` that run, sorted, and the ones that do not.
#[derive(Debug, Default)]
pub(crate) struct DropIns {
    pub(crate) scripts: Vec<PathBuf>,
    pub(crate) skipped: Vec<Skipped>,
    /// The event's `deferred/` directory, when the event's scripts are a
    /// directory that has one (per-object and profile scripts only).
    pub(crate) deferred: Option<PathBuf>,
}

/// A `.d` directory that exists but cannot be listed. The message is
/// libvirt's.
#[derive(Debug)]
pub(crate) struct DirError {
    /// The directory.
    pub(crate) path: PathBuf,
    pub(crate) message: String,
}

/// Lists `<driver>.d`. A missing directory has no scripts.
///
/// Every entry but `.` and `..` is looked at (hidden files too), following
/// links; the directory is not recursive. The scripts are sorted by bytes,
/// like `strcmp`.
pub(crate) fn drop_ins(dir: &Path) -> Result<DropIns, DirError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            log::debug!("No hook script dir {}", dir.display());
            return Ok(DropIns::default());
        }
        Err(err) => {
            return Err(DirError {
                path: dir.to_owned(),
                message: message::cannot_open_dir(dir, &err),
            });
        }
    };
    let mut found = DropIns::default();
    for entry in entries {
        let entry = entry.map_err(|err| DirError {
            path: dir.to_owned(),
            message: message::cannot_read_dir(dir, &err),
        })?;
        let path = entry.path();
        let reason = match fs::metadata(&path) {
            Ok(meta) => classify(&meta),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                match fs::symlink_metadata(&path) {
                    Ok(_) => Some(SkipReason::DanglingSymlink),
                    // Removed between readdir and stat: it is simply gone.
                    Err(_) => continue,
                }
            }
            Err(err) => Some(SkipReason::Unreadable(message::strerror(&err))),
        };
        match reason {
            None => found.scripts.push(path),
            Some(reason) => {
                if reason == SkipReason::NotExecutable {
                    log::warn!("Non-executable hook script {}", path.display());
                } else {
                    log::debug!("Skipping {} in hook dir: {reason}", path.display());
                }
                found.skipped.push(Skipped { path, reason });
            }
        }
    }
    found.scripts.sort_unstable_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    found
        .skipped
        .sort_unstable_by(|a, b| a.path.as_os_str().as_bytes().cmp(b.path.as_os_str().as_bytes()));
    Ok(found)
}

/// `None` if the file runs, otherwise why not.
fn classify(meta: &Metadata) -> Option<SkipReason> {
    if meta.is_file() {
        if meta.permissions().mode() & 0o111 != 0 { None } else { Some(SkipReason::NotExecutable) }
    } else if meta.is_dir() {
        Some(SkipReason::Directory)
    } else {
        Some(SkipReason::NotRegularFile)
    }
}

/// `<hooks>/<driver>.d`.
pub(crate) fn drop_in_dir(main: &Path) -> PathBuf {
    let mut dir = main.as_os_str().to_owned();
    dir.push(".d");
    PathBuf::from(dir)
}

/// `<hooks>/<driver>.d/<object>/<op>/<subop>`: where the per-object scripts
/// of an event are.
pub(crate) fn per_object_path(hooks: &Path, driver: &str, args: [&str; 4]) -> PathBuf {
    let [object, operation, sub_operation, _] = args;
    drop_in_dir(&hooks.join(driver)).join(object).join(operation).join(sub_operation)
}
