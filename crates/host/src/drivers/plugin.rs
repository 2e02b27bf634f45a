//! Finding and opening driver plugin files: the search path, the file-name
//! pattern, the trust rule for plugins, and loading one file through
//! `virt-hooks-abi`. This module only reports what it found and loaded; what
//! to do with it (a second copy of a driver, a disabled driver, the
//! one-driver shortcut, a file named after another driver) is decided by the
//! registry. The rules users see are documented on [`PluginSearch`].

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use virt_hooks_abi::LoadError;

use super::driver::Driver;
use crate::hooks::{
    message,
    security::{self, SecurityProblem},
};

/// The file name prefix of a driver plugin.
pub const PLUGIN_PREFIX: &str = "libvirt_hooks_driver_";
/// The file name suffix of a driver plugin.
pub const PLUGIN_SUFFIX: &str = ".so";
/// The environment variable with extra plugin directories, `:`-separated.
pub const PLUGIN_PATH_ENV: &str = "VIRT_HOOKS_PLUGIN_PATH";
/// The system plugin directory, last on the search path: set at build time by
/// `VIRT_HOOKS_PLUGIN_DIR` (an absolute path), else `/usr/lib/virt-hooks/plugins`.
pub const SYSTEM_PLUGIN_DIR: &str = match option_env!("VIRT_HOOKS_PLUGIN_DIR") {
    None => "/usr/lib/virt-hooks/plugins",
    Some(dir) if matches!(dir.as_bytes(), [b'/', ..]) => dir,
    Some(_) => panic!("VIRT_HOOKS_PLUGIN_DIR must be an absolute path"),
};

/// A plugin file (or plugin directory) that could not be used, and why.
///
/// Its text is `<file>: <reason>`, one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct PluginError {
    /// The plugin file, or the directory when the directory itself failed.
    pub file: PathBuf,
    /// Why it was not loaded; its text is one lowercase line.
    pub reason: PluginFailure,
}

impl PluginError {
    pub(crate) fn new(file: &Path, reason: impl Into<PluginFailure>) -> PluginError {
        PluginError { file: file.to_owned(), reason: reason.into() }
    }
}

/// Why a plugin file (or directory) was not used: the reason of a
/// [`PluginError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PluginFailure {
    /// A directory given explicitly (`--plugin-dir`, `plugin_path`) does not
    /// exist.
    #[error("the plugin directory does not exist")]
    MissingDir,
    /// A plugin directory exists but cannot be listed.
    #[error("cannot read the plugin directory: {reason}")]
    UnreadableDir {
        /// The OS reason, lowercase.
        reason: String,
    },
    /// The file or its directory breaks the trust rule: it was not opened.
    #[error(transparent)]
    Refused(#[from] PluginRefusal),
    /// The file was opened but is not a plugin this host can use.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The file provides a driver that is already loaded; the first one
    /// stays. A file named after a loaded driver is reported this way
    /// without being opened.
    #[error("a second '{driver}' driver, ignored; the first {}", origin(first.as_deref()))]
    Duplicate {
        /// The driver name.
        driver: String,
        /// Where the first one came from; `None` when it is compiled in.
        first: Option<PathBuf>,
    },
}

/// "is compiled in" or "came from <file>".
fn origin(first: Option<&Path>) -> String {
    first.map_or_else(|| "is compiled in".to_owned(), |f| format!("came from {}", f.display()))
}

/// Why a plugin file is not trusted, so never opened: the script security
/// rules, applied to plugins.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PluginRefusal {
    /// The directory holding the file breaks the rules.
    #[error("refused: its directory {} {problem}", dir.display())]
    Directory {
        /// The plugin directory.
        dir: PathBuf,
        /// What is wrong with it.
        problem: SecurityProblem,
    },
    /// The file breaks the rules.
    #[error("refused: the file {0}")]
    File(SecurityProblem),
    /// The name is a directory, FIFO, socket or device.
    #[error("refused: not a regular file")]
    NotAFile,
    /// A symbolic link, or a directory holding one, on the way from the
    /// plugin directory to the file breaks the rules.
    #[error("refused: {} {problem}", path.display())]
    Chain {
        /// The link or directory at fault.
        path: PathBuf,
        /// What is wrong with it.
        problem: SecurityProblem,
    },
    /// The file cannot be examined.
    #[error("refused: cannot examine it: {reason}")]
    Unexaminable {
        /// The OS reason, lowercase.
        reason: String,
    },
}

/// Something about a plugin that loaded, worth fixing but not refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PluginWarning {
    /// The file's name announces one driver and the plugin provides
    /// another. The driver is used under its own name, but the one-driver
    /// shortcut ([`RegistryBuilder::only_driver`](crate::RegistryBuilder::only_driver))
    /// cannot find it by its file name, and a file named after a loaded
    /// driver is refused without being opened. Rename the file.
    #[error(
        "{}: the file name says driver '{named}' but the plugin provides driver '{driver}'; \
         rename the file to {PLUGIN_PREFIX}{driver}{PLUGIN_SUFFIX}",
        file.display()
    )]
    NameMismatch {
        /// The plugin file.
        file: PathBuf,
        /// The driver its file name announces (`libvirt_hooks_driver_<named>.so`).
        named: String,
        /// The driver it provides (`info().name`).
        driver: String,
    },
}

/// Where plugins are looked for.
///
/// A driver plugin is a shared library named `libvirt_hooks_driver_<name>.so`
/// (the file cargo writes for a crate with `[lib] name =
/// "virt_hooks_driver_<name>"` and `crate-type = ["cdylib", ...]`). Other
/// files in a plugin directory are ignored; matching files are loaded in
/// byte order of their names. The driver's name comes from its `info()`;
/// a file whose name announces another driver is loaded and reported as a
/// [`PluginWarning::NameMismatch`].
///
/// The search path, in order:
///
/// 1. every directory added with [`PluginSearch::dir`] (`--plugin-dir`);
/// 2. the directories in `VIRT_HOOKS_PLUGIN_PATH`, separated by `:`;
/// 3. the directory of the running executable, so that `target/<profile>/`
///    works after `cargo build`;
/// 4. `/usr/lib/virt-hooks/plugins`.
///
/// Each of the last three can be switched off. A missing default directory
/// is skipped; a missing directory given with [`PluginSearch::dir`] is an
/// error. When two plugins provide the same driver, the first one on the
/// search path wins and the second is reported. A file whose name already
/// says it is a second copy (`libvirt_hooks_driver_<name>.so` when a driver
/// `<name>` is loaded) is reported the same way without being opened:
/// loading a plugin costs about a quarter of a millisecond, most of it
/// abi_stable's layout check.
///
/// A host that needs one driver only (`virt-hook run` and `plan`, and
/// virt-hook as libvirt's hook script) can ask for it with
/// [`RegistryBuilder::only_driver`](crate::RegistryBuilder::only_driver):
/// then the first file named `libvirt_hooks_driver_<name>.so` on the search
/// path is loaded alone, and everything is loaded as usual only when no such
/// file provides that driver (another file may provide it under another
/// name).
///
/// Loading a library runs code from it, with the host's privileges, before
/// any other check. So a plugin file is refused, without being opened, when
/// it or its directory is writable by group or others, or is owned by
/// anyone but root and the host's effective user. Loaded libraries are
/// never unloaded.
///
/// A plugin that cannot be loaded becomes one [`PluginError`]: it never
/// stops the other plugins from loading, and never crashes the host (the
/// boundary catches a driver's panics; see `virt-hooks-abi`).
#[derive(Debug, Clone)]
pub struct PluginSearch {
    dirs: Vec<PathBuf>,
    env_path: bool,
    exe_dir: bool,
    system_dir: bool,
}

impl Default for PluginSearch {
    fn default() -> PluginSearch {
        PluginSearch { dirs: Vec::new(), env_path: true, exe_dir: true, system_dir: true }
    }
}

/// One directory of the search path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SearchDir {
    path: PathBuf,
    /// Given explicitly: a missing directory is an error.
    explicit: bool,
}

impl PluginSearch {
    /// The default search path.
    pub fn new() -> PluginSearch {
        PluginSearch::default()
    }

    /// Adds a directory to search, after those added before and before the
    /// defaults. It must exist.
    pub fn dir(&mut self, dir: impl Into<PathBuf>) -> &mut PluginSearch {
        self.dirs.push(dir.into());
        self
    }

    /// Whether to search the directories in `VIRT_HOOKS_PLUGIN_PATH`
    /// (default yes).
    pub fn env_path(&mut self, yes: bool) -> &mut PluginSearch {
        self.env_path = yes;
        self
    }

    /// Whether to search the running executable's directory (default yes).
    pub fn exe_dir(&mut self, yes: bool) -> &mut PluginSearch {
        self.exe_dir = yes;
        self
    }

    /// Whether to search `/usr/lib/virt-hooks/plugins` (default yes).
    pub fn system_dir(&mut self, yes: bool) -> &mut PluginSearch {
        self.system_dir = yes;
        self
    }

    /// Searches only the directories added with [`dir`](Self::dir).
    pub fn only_explicit(&mut self) -> &mut PluginSearch {
        self.env_path(false).exe_dir(false).system_dir(false)
    }

    /// The directories to search, in order, as of now (the environment and
    /// the executable's location are read here).
    pub fn resolve(&self) -> Vec<PathBuf> {
        self.search_dirs().into_iter().map(|d| d.path).collect()
    }

    fn search_dirs(&self) -> Vec<SearchDir> {
        let mut out: Vec<SearchDir> =
            self.dirs.iter().map(|d| SearchDir { path: d.clone(), explicit: true }).collect();
        let default = |path: PathBuf| SearchDir { path, explicit: false };
        if let Some(value) = std::env::var_os(PLUGIN_PATH_ENV).filter(|_| self.env_path) {
            out.extend(
                std::env::split_paths(&value).filter(|p| !p.as_os_str().is_empty()).map(default),
            );
        }
        if self.exe_dir {
            match std::env::current_exe() {
                Ok(exe) => out.extend(exe.parent().map(|d| default(d.to_owned()))),
                Err(e) => log::debug!("cannot find the running executable: {e}"),
            }
        }
        if self.system_dir {
            out.push(default(PathBuf::from(SYSTEM_PLUGIN_DIR)));
        }
        out
    }

    /// Every plugin file on the search path, in search order, and the
    /// directories that could not be searched, each where it was met. A
    /// directory met twice is searched once.
    pub(crate) fn candidates(&self) -> Vec<Found> {
        let euid = security::effective_uid();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for dir in self.search_dirs() {
            let key = fs::canonicalize(&dir.path).unwrap_or_else(|_| dir.path.clone());
            if !seen.insert(key) {
                log::debug!(
                    "plugin directory {} is already on the search path",
                    dir.path.display()
                );
                continue;
            }
            let files = match plugin_files(&dir.path) {
                Ok(files) => files,
                Err(e) if e.kind() == io::ErrorKind::NotFound && !dir.explicit => {
                    log::debug!("no plugin directory {}", dir.path.display());
                    continue;
                }
                Err(e) => {
                    let reason = match e.kind() {
                        io::ErrorKind::NotFound => PluginFailure::MissingDir,
                        _ => PluginFailure::UnreadableDir { reason: io_reason(&e) },
                    };
                    out.push(Found::Failed(PluginError::new(&dir.path, reason)));
                    continue;
                }
            };
            if files.is_empty() {
                log::debug!("no plugins in {}", dir.path.display());
                continue;
            }
            out.extend(
                files
                    .into_iter()
                    .map(|file| Found::File(Candidate { file, dir: dir.path.clone(), euid })),
            );
        }
        out
    }

    /// The first file named after `driver` on the search path, if any.
    pub(crate) fn candidate_named(&self, driver: &str) -> Option<Candidate> {
        let file_name = format!("{PLUGIN_PREFIX}{driver}{PLUGIN_SUFFIX}");
        if !is_plugin_name(&file_name) || driver.contains('/') {
            return None;
        }
        let euid = security::effective_uid();
        for dir in self.search_dirs() {
            let file = dir.path.join(&file_name);
            match fs::symlink_metadata(&file) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    log::debug!("cannot examine {}: {}", file.display(), io_reason(&e));
                    continue;
                }
            }
            return Some(Candidate { file, dir: dir.path, euid });
        }
        None
    }
}

/// One step of the search: a plugin file, or a directory that failed.
#[derive(Debug)]
pub(crate) enum Found {
    /// A file whose name is a plugin file name.
    File(Candidate),
    /// A plugin directory that could not be searched.
    Failed(PluginError),
}

/// A plugin file on the search path, not opened yet.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub(crate) file: PathBuf,
    /// The plugin directory it was found in: the anchor of its vetting.
    dir: PathBuf,
    euid: u32,
}

impl Candidate {
    /// The driver the file's name announces:
    /// `libvirt_hooks_driver_<name>.so` gives `<name>`.
    pub(crate) fn named(&self) -> Option<&str> {
        let name = self.file.file_name()?.to_str()?;
        is_plugin_name(name).then(|| &name[PLUGIN_PREFIX.len()..name.len() - PLUGIN_SUFFIX.len()])
    }

    /// The trust rule, for every link and directory on the way from the
    /// plugin directory to the file, and the file. Nothing is opened.
    pub(crate) fn vet(&self) -> Result<(), PluginError> {
        let vetted = &mut security::VettedDirs::default();
        security::vet_plugin(&self.dir, &self.file, self.euid, vetted)
            .map_err(|fault| PluginError::new(&self.file, self.refusal(fault)))
    }

    /// What a fault found on the way to the file means for the plugin.
    fn refusal(&self, fault: security::Unsafe) -> PluginRefusal {
        let security::Unsafe { path, problem } = fault;
        if path == self.dir {
            return PluginRefusal::Directory { dir: path, problem };
        }
        if path != self.file {
            return PluginRefusal::Chain { path, problem };
        }
        match problem {
            SecurityProblem::NotRegularFile => PluginRefusal::NotAFile,
            SecurityProblem::Unreadable(reason) => {
                PluginRefusal::Unexaminable { reason: lowercase_first(&reason) }
            }
            problem => PluginRefusal::File(problem),
        }
    }

    /// Opens the file (which runs its code: [`vet`](Candidate::vet) it
    /// first) and reads its driver's description and table.
    pub(crate) fn open(&self) -> Result<Driver, PluginError> {
        let started = Instant::now();
        let imp =
            virt_hooks_abi::load_driver(&self.file).map_err(|e| PluginError::new(&self.file, e))?;
        let driver = Driver::new(imp, Some(self.file.clone()));
        log::debug!(
            "loaded driver '{}' {} from {} in {:?}",
            driver.name(),
            driver.info().version,
            self.file.display(),
            started.elapsed()
        );
        Ok(driver)
    }
}

/// Returns true if and only if `name` is a plugin file name.
fn is_plugin_name(name: &str) -> bool {
    name.len() > PLUGIN_PREFIX.len() + PLUGIN_SUFFIX.len()
        && name.starts_with(PLUGIN_PREFIX)
        && name.ends_with(PLUGIN_SUFFIX)
}

/// The plugin files in `dir`, sorted by name.
fn plugin_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        match entry.file_name().to_str() {
            Some(name) if is_plugin_name(name) => files.push(entry.path()),
            _ => log::trace!("not a plugin file name: {}", entry.path().display()),
        }
    }
    files.sort();
    Ok(files)
}

/// "Permission denied (os error 13)" -> "permission denied": the OS reason,
/// lowercased to sit inside a message.
fn io_reason(e: &io::Error) -> String {
    lowercase_first(&message::strerror(e))
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| c.to_lowercase().chain(chars).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_documented_file_name_pattern() {
        assert!(is_plugin_name("libvirt_hooks_driver_qemu.so"));
        assert!(is_plugin_name("libvirt_hooks_driver_x-y.so"));
        assert!(!is_plugin_name("libvirt_hooks_driver_.so"));
        assert!(!is_plugin_name("libvirt_hooks_driver_qemu.so.1"));
        assert!(!is_plugin_name("libvirt_hooks_driver_qemu.rlib"));
        assert!(!is_plugin_name("virt_hooks_driver_qemu.so"));
        assert!(!is_plugin_name("libvirt_hooks_abi.so"));
    }

    #[test]
    fn the_search_path_order_and_switches() {
        let mut search = PluginSearch::new();
        search.dir("/a").dir("/b");
        let dirs = search.resolve();
        assert_eq!(dirs[..2], [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(dirs.last(), Some(&PathBuf::from(SYSTEM_PLUGIN_DIR)));
        let exe_dir = std::env::current_exe().unwrap().parent().unwrap().to_owned();
        assert_eq!(dirs[dirs.len() - 2], exe_dir);
        assert_eq!(search.only_explicit().resolve(), [PathBuf::from("/a"), PathBuf::from("/b")]);
        let mut search = PluginSearch::new();
        search.env_path(false).exe_dir(false);
        assert_eq!(search.resolve(), [PathBuf::from(SYSTEM_PLUGIN_DIR)]);
    }

    fn dir_with(names: &[&str]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        for name in names {
            let file = tmp.path().join(name);
            fs::write(&file, "text, not a library").unwrap();
            fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        }
        tmp
    }

    fn files(found: &[Found]) -> Vec<String> {
        found
            .iter()
            .map(|f| match f {
                Found::File(c) => c.file.file_name().unwrap().to_str().unwrap().to_owned(),
                Found::Failed(e) => format!("failed: {e}"),
            })
            .collect()
    }

    #[test]
    fn candidates_are_the_plugin_files_in_search_order_each_directory_once() {
        let (one, two) = (dir_with(&["libvirt_hooks_driver_b.so", "README"]), dir_with(&[]));
        fs::write(two.path().join("libvirt_hooks_driver_a.so"), "x").unwrap();
        fs::write(two.path().join("libvirt_hooks_driver_x.so.bak"), "x").unwrap();
        let missing = one.path().join("nope");
        let mut search = PluginSearch::new();
        search.dir(one.path()).dir(&missing).dir(two.path()).dir(one.path()).only_explicit();
        assert_eq!(
            files(&search.candidates()),
            [
                "libvirt_hooks_driver_b.so".to_owned(),
                format!("failed: {}: the plugin directory does not exist", missing.display()),
                "libvirt_hooks_driver_a.so".to_owned(),
            ]
        );
        let named = search.candidate_named("a").unwrap();
        assert_eq!(named.file, two.path().join("libvirt_hooks_driver_a.so"));
        assert_eq!(named.named(), Some("a"));
        assert!(search.candidate_named("c").is_none());
        assert!(search.candidate_named("../a").is_none());
        assert!(search.candidate_named("").is_none());
    }

    #[test]
    fn refusals_are_typed_and_nothing_is_opened() {
        let tmp = dir_with(&["libvirt_hooks_driver_x.so"]);
        let file = tmp.path().join("libvirt_hooks_driver_x.so");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o664)).unwrap();
        let mut search = PluginSearch::new();
        search.dir(tmp.path()).only_explicit();
        let candidate = search.candidate_named("x").unwrap();
        let err = candidate.vet().unwrap_err();
        assert_eq!(
            err.reason,
            PluginFailure::Refused(PluginRefusal::File(SecurityProblem::Writable(0o100664)))
        );
        assert_eq!(
            err.to_string(),
            format!("{}: refused: the file is writable by its group (mode 0664)", file.display())
        );

        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o757)).unwrap();
        let candidate = search.candidate_named("x").unwrap();
        let err = candidate.vet().unwrap_err();
        assert!(
            matches!(
                &err.reason,
                PluginFailure::Refused(PluginRefusal::Directory {
                    dir,
                    problem: SecurityProblem::Writable(_),
                }) if dir == tmp.path()
            ),
            "{err:?}"
        );

        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let candidate = search.candidate_named("x").unwrap();
        assert_eq!(candidate.vet(), Ok(()));
        // Opened, the text file is no library: the abi's typed error, its text unchanged.
        let err = candidate.open().unwrap_err();
        let PluginFailure::Load(LoadError::NotALibrary { .. }) = &err.reason else {
            panic!("{err:?}")
        };
        assert!(err.reason.to_string().starts_with("not a shared library ("), "{err}");
    }

    #[test]
    fn a_directory_named_like_a_plugin_is_not_a_regular_file() {
        let tmp = dir_with(&[]);
        fs::create_dir(tmp.path().join("libvirt_hooks_driver_d.so")).unwrap();
        let mut search = PluginSearch::new();
        search.dir(tmp.path()).only_explicit();
        let err = search.candidate_named("d").unwrap().vet().unwrap_err();
        assert_eq!(err.reason, PluginFailure::Refused(PluginRefusal::NotAFile));
        assert!(err.to_string().ends_with(": refused: not a regular file"), "{err}");
    }
}
