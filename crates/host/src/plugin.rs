//! Finding and loading driver plugins.
//!
//! A driver plugin is a shared library named `libvirt_hooks_driver_<name>.so`
//! (the file cargo writes for a crate with `[lib] name =
//! "virt_hooks_driver_<name>"` and `crate-type = ["cdylib", ...]`). Other files
//! in a plugin directory are ignored; matching files are loaded in byte
//! order of their names.
//!
//! The search path, in order:
//!
//! 1. every directory added with [`PluginSearch::dir`] (`--plugin-dir`);
//! 2. the directories in `VIRT_HOOKS_PLUGIN_PATH`, separated by `:`;
//! 3. the directory of the running executable, so that `target/<profile>/`
//!    works after `cargo build`;
//! 4. `/usr/lib/virt-hooks/plugins`.
//!
//! Each of the last three can be switched off. A missing default directory is
//! skipped; a missing directory given with [`PluginSearch::dir`] is an error.
//! When two plugins provide the same driver, the first one on the search path
//! wins and the second is reported. A file whose name already says it is a
//! second copy (`libvirt_hooks_driver_<name>.so` when a driver `<name>` is
//! loaded) is reported the same way without being opened: loading a plugin
//! costs about a quarter of a millisecond, most of it abi_stable's layout
//! check.
//!
//! A host that needs one driver only (`virt-hook run` and `plan`, and
//! virt-hook as libvirt's hook script) can ask for it with
//! [`RegistryBuilder::only_driver`](crate::RegistryBuilder::only_driver):
//! then the first file named `libvirt_hooks_driver_<name>.so` on the search
//! path is loaded alone, and everything is loaded as usual only when no such
//! file provides that driver (another file may provide it under another
//! name).
//!
//! Loading a library runs code from it, with the host's privileges, before
//! any other check. So a plugin file is refused, without being opened, when
//! it or its directory is writable by group or others, or is owned by anyone
//! but root and the host's effective user. Loaded libraries are never
//! unloaded.
//!
//! A plugin that cannot be loaded becomes one [`PluginError`]: it never stops
//! the other plugins from loading, and never crashes the host (the boundary
//! catches a driver's panics; see `virt-hooks-abi`).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::registry::{Driver, Registry};
use crate::{security, spawn};

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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct PluginError {
    /// The plugin file, or the directory when the directory itself failed.
    pub file: PathBuf,
    /// Why it was not loaded: one lowercase line.
    pub reason: String,
}

impl PluginError {
    fn new(file: &Path, reason: impl Into<String>) -> PluginError {
        PluginError { file: file.to_owned(), reason: reason.into() }
    }
}

/// Where plugins are looked for; see the [module docs](self) for the order.
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
pub(crate) struct SearchDir {
    pub(crate) path: PathBuf,
    /// Given explicitly: a missing directory is an error.
    pub(crate) explicit: bool,
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

    pub(crate) fn search_dirs(&self) -> Vec<SearchDir> {
        let mut out: Vec<SearchDir> =
            self.dirs.iter().map(|d| SearchDir { path: d.clone(), explicit: true }).collect();
        let default = |path: PathBuf| SearchDir { path, explicit: false };
        if self.env_path
            && let Some(value) = std::env::var_os(PLUGIN_PATH_ENV)
        {
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
}

/// Returns true if and only if `name` is a plugin file name.
pub(crate) fn is_plugin_name(name: &str) -> bool {
    name.len() > PLUGIN_PREFIX.len() + PLUGIN_SUFFIX.len()
        && name.starts_with(PLUGIN_PREFIX)
        && name.ends_with(PLUGIN_SUFFIX)
}

/// The driver name a plugin file's name announces:
/// `libvirt_hooks_driver_<name>.so` gives `<name>`.
fn name_of(file: &Path) -> Option<&str> {
    let name = file.file_name()?.to_str()?;
    is_plugin_name(name).then(|| &name[PLUGIN_PREFIX.len()..name.len() - PLUGIN_SUFFIX.len()])
}

/// Loads into `registry` only the plugin file named after `driver`, the
/// first on the search path, unless a driver of that name is already
/// there. Returns true when the registry now has the driver (or it is
/// disabled), and the file tried, if any. On false the caller loads
/// everything, skipping the file tried here (its result is kept).
pub(crate) fn load_only(
    search: &PluginSearch,
    driver: &str,
    registry: &mut Registry,
) -> (bool, Option<PathBuf>) {
    if registry.get(driver).is_some() {
        return (true, None);
    }
    let file_name = format!("{PLUGIN_PREFIX}{driver}{PLUGIN_SUFFIX}");
    if !is_plugin_name(&file_name) || driver.contains('/') {
        return (false, None);
    }
    let euid = spawn::effective_uid();
    for dir in search.search_dirs() {
        let file = dir.path.join(&file_name);
        match fs::symlink_metadata(&file) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                log::debug!("cannot examine {}: {}", file.display(), io_reason(&e));
                continue;
            }
        }
        let problem = untrusted(&dir.path, euid)
            .map(|p| format!("its directory {} {p}", dir.path.display()))
            .or_else(|| untrusted_file(&file, euid));
        let result = match problem {
            Some(reason) => Err(PluginError::new(&file, format!("refused: {reason}"))),
            None => load_one(&file, registry),
        };
        if let Err(error) = result {
            log::debug!("{error}");
            registry.push_error(error);
        }
        let found =
            registry.get(driver).is_some() || registry.disabled().iter().any(|d| d == driver);
        return (found, Some(file));
    }
    (false, None)
}

/// Loads every plugin on the search path into `registry`, keeping every
/// failure in its errors. `skip` was tried already.
pub(crate) fn load_all(search: &PluginSearch, registry: &mut Registry, skip: Option<&Path>) {
    let euid = spawn::effective_uid();
    let mut seen = HashSet::new();
    for dir in search.search_dirs() {
        let key = fs::canonicalize(&dir.path).unwrap_or_else(|_| dir.path.clone());
        if !seen.insert(key) {
            log::debug!("plugin directory {} is already on the search path", dir.path.display());
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
                    io::ErrorKind::NotFound => "the plugin directory does not exist".to_owned(),
                    _ => format!("cannot read the plugin directory: {}", io_reason(&e)),
                };
                registry.push_error(PluginError::new(&dir.path, reason));
                continue;
            }
        };
        if files.is_empty() {
            log::debug!("no plugins in {}", dir.path.display());
            continue;
        }
        let dir_problem =
            untrusted(&dir.path, euid).map(|p| format!("its directory {} {p}", dir.path.display()));
        for file in files {
            if skip == Some(file.as_path()) {
                continue;
            }
            let problem = dir_problem.clone().or_else(|| untrusted_file(&file, euid));
            let result = match problem {
                Some(reason) => Err(PluginError::new(&file, format!("refused: {reason}"))),
                None => match name_of(&file).and_then(|name| registry.get(name)) {
                    // Its name says it is a second copy: no need to open it
                    // to refuse it.
                    Some(first) => Err(duplicate(&file, first)),
                    None => load_one(&file, registry),
                },
            };
            if let Err(error) = result {
                log::debug!("{error}");
                registry.push_error(error);
            }
        }
    }
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

fn load_one(file: &Path, registry: &mut Registry) -> Result<(), PluginError> {
    let started = Instant::now();
    let imp =
        virt_hooks_abi::load_driver(file).map_err(|e| PluginError::new(file, e.to_string()))?;
    let driver = Driver::new(imp, Some(file.to_owned()));
    log::debug!(
        "loaded driver '{}' {} from {} in {:?}",
        driver.name(),
        driver.info().version,
        file.display(),
        started.elapsed()
    );
    registry.insert(driver).map_err(|dup| match registry.get(dup.name()) {
        Some(first) => duplicate(file, first),
        None => PluginError::new(file, format!("a second '{}' driver, ignored", dup.name())),
    })
}

/// `file` provides a driver `first` already provides.
fn duplicate(file: &Path, first: &Driver) -> PluginError {
    let origin = first
        .file()
        .map_or_else(|| "is compiled in".to_owned(), |f| format!("came from {}", f.display()));
    PluginError::new(
        file,
        format!("a second '{}' driver, ignored; the first {origin}", first.name()),
    )
}

/// Why `path` (a plugin file) cannot be trusted, if it cannot.
fn untrusted_file(path: &Path, euid: u32) -> Option<String> {
    match fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Some("not a regular file".to_owned()),
        Ok(_) => untrusted(path, euid).map(|p| format!("the file {p}")),
        Err(e) => Some(format!("cannot examine it: {}", io_reason(&e))),
    }
}

/// Why a file or directory cannot be trusted to hold code the host runs,
/// as a predicate ("is writable by its group (mode 0664)"): the script
/// security rule, applied to plugins.
fn untrusted(path: &Path, euid: u32) -> Option<String> {
    security::check_entry(path, euid, false).err().map(|u| u.problem.to_string())
}

/// "Permission denied (os error 13)" -> "permission denied": the OS reason,
/// lowercased to sit inside a message.
fn io_reason(e: &io::Error) -> String {
    let text = crate::message::strerror(e);
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

    #[test]
    fn a_missing_explicit_dir_is_an_error_and_other_files_are_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(tmp.path().join("README"), "not a plugin").unwrap();
        fs::write(tmp.path().join("libvirt_hooks_driver_x.so.bak"), "not a plugin").unwrap();
        let missing = tmp.path().join("nope");
        let mut search = PluginSearch::new();
        search.dir(&missing).dir(tmp.path()).only_explicit();
        let mut registry = Registry::default();
        load_all(&search, &mut registry, None);
        assert_eq!(
            registry.errors(),
            [PluginError::new(&missing, "the plugin directory does not exist")]
        );
        assert!(registry.drivers().is_empty());
    }

    struct Builtin;

    impl virt_hooks_core::HookDriver for Builtin {
        fn info(&self) -> virt_hooks_core::DriverInfo {
            virt_hooks_core::DriverInfo::new("x", "1.0.0", "compiled in")
        }
        fn operations(&self) -> Vec<virt_hooks_core::OperationSpec> {
            Vec::new()
        }
    }

    fn plugin_dir(names: &[&str]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        for name in names {
            let file = tmp.path().join(format!("{PLUGIN_PREFIX}{name}{PLUGIN_SUFFIX}"));
            fs::write(&file, "text, not a library").unwrap();
            fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        }
        tmp
    }

    #[test]
    fn a_file_named_after_a_loaded_driver_is_refused_without_opening_it() {
        let tmp = plugin_dir(&["x"]);
        let mut builder = crate::RegistryBuilder::new();
        builder.driver(Builtin).search().dir(tmp.path()).only_explicit();
        let registry = builder.build();
        // Opened, the text file would be "not a shared library".
        let file = tmp.path().join("libvirt_hooks_driver_x.so");
        assert_eq!(
            registry.errors(),
            [PluginError::new(&file, "a second 'x' driver, ignored; the first is compiled in")]
        );
    }

    #[test]
    fn only_driver_falls_back_to_everything_and_tries_each_file_once() {
        let tmp = plugin_dir(&["a", "b"]);
        let files = |registry: &Registry| -> Vec<PathBuf> {
            registry.errors().iter().map(|e| e.file.clone()).collect()
        };
        let (a, b) = (
            tmp.path().join(format!("{PLUGIN_PREFIX}a.so")),
            tmp.path().join(format!("{PLUGIN_PREFIX}b.so")),
        );
        // b's file does not load: everything is tried, b's file once.
        let mut builder = crate::RegistryBuilder::new();
        builder.only_driver("b").search().dir(tmp.path()).only_explicit();
        assert_eq!(files(&builder.build()), [b.clone(), a.clone()]);
        // No file named after c: everything.
        let mut builder = crate::RegistryBuilder::new();
        builder.only_driver("c").search().dir(tmp.path()).only_explicit();
        assert_eq!(files(&builder.build()), [a.clone(), b.clone()]);
        // A compiled-in driver of that name: no plugin is opened at all.
        let mut builder = crate::RegistryBuilder::new();
        builder.driver(Builtin).only_driver("x").search().dir(tmp.path()).only_explicit();
        let registry = builder.build();
        assert!(registry.errors().is_empty(), "{:?}", registry.errors());
        assert_eq!(registry.drivers().len(), 1);
    }

    #[test]
    fn writable_files_and_directories_are_refused_before_loading() {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let file = tmp.path().join("libvirt_hooks_driver_x.so");
        fs::write(&file, "text, never opened").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o664)).unwrap();
        let mut search = PluginSearch::new();
        search.dir(tmp.path()).only_explicit();
        let mut registry = Registry::default();
        load_all(&search, &mut registry, None);
        assert_eq!(
            registry.errors(),
            [PluginError::new(&file, "refused: the file is writable by its group (mode 0664)")]
        );

        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let mut registry = Registry::default();
        load_all(&search, &mut registry, None);
        assert_eq!(
            registry.errors()[0].reason,
            format!(
                "refused: its directory {} is writable by group and others (mode 0777)",
                tmp.path().display()
            )
        );

        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let mut registry = Registry::default();
        load_all(&search, &mut registry, None);
        assert!(
            registry.errors()[0].reason.starts_with("not a shared library ("),
            "{:?}",
            registry.errors()
        );
    }
}
