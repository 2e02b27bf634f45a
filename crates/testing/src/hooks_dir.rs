//! A hooks directory for tests: scripts and files at exact modes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// A hooks directory for a test, with every file at the mode it is given.
///
/// Modes are set explicitly (never left to the umask), because the host
/// refuses scripts and directories that are writable by group or others.
/// Directories are created with mode 0755. A directory from
/// [`HooksDir::new`] is removed, with everything in it, when the value is
/// dropped.
///
/// Paths given to the methods are relative to the directory and may not
/// leave it (`..`, an absolute path).
///
/// # Panics
///
/// Every method panics, naming the path and the reason, when the file
/// system refuses what it asks or a path leaves the directory: these
/// helpers set up tests, and a test whose setup failed must fail.
#[derive(Debug)]
pub struct HooksDir {
    root: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl HooksDir {
    /// A new, empty temporary directory, mode 0755.
    pub fn new() -> HooksDir {
        let temp = tempfile::Builder::new()
            .prefix("virt-hooks-test.")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary hooks directory: {e}"));
        let hooks = HooksDir { root: temp.path().to_owned(), _temp: None };
        hooks.chmod(&hooks.root, 0o755);
        HooksDir { _temp: Some(temp), ..hooks }
    }

    /// The directory `path` (created with its missing parents), mode 0755;
    /// kept when the value is dropped. For a hooks directory whose place is
    /// fixed, e.g. the one a daemon under test reads.
    pub fn at(path: impl Into<PathBuf>) -> HooksDir {
        let hooks = HooksDir { root: path.into(), _temp: None };
        hooks.create_dirs(&hooks.root.clone());
        hooks.chmod(&hooks.root, 0o755);
        hooks
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Writes an executable shell script at `rel`: `#!/bin/sh`, a newline,
    /// `body` and a newline, mode 0755. Returns its path.
    pub fn script(&self, rel: &str, body: &str) -> PathBuf {
        self.file(rel, format!("#!/bin/sh\n{body}\n"), 0o755)
    }

    /// Writes `contents` at `rel` (replacing a file that is there) and sets
    /// `mode`. Missing parent directories are created. Returns its path.
    pub fn file(&self, rel: &str, contents: impl AsRef<[u8]>, mode: u32) -> PathBuf {
        let path = self.resolve(rel);
        if let Some(parent) = path.parent() {
            self.create_dirs(parent);
        }
        fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        self.chmod(&path, mode);
        path
    }

    /// Copies the file `from` to `rel` and sets `mode`. Returns the copy's
    /// path.
    pub fn copy(&self, from: &Path, rel: &str, mode: u32) -> PathBuf {
        let path = self.resolve(rel);
        if let Some(parent) = path.parent() {
            self.create_dirs(parent);
        }
        fs::copy(from, &path).unwrap_or_else(|e| {
            panic!("cannot copy {} to {}: {e}", from.display(), path.display())
        });
        self.chmod(&path, mode);
        path
    }

    /// Creates the directory `rel` and its missing parents, mode 0755.
    /// Returns its path.
    pub fn dir(&self, rel: &str) -> PathBuf {
        let path = self.resolve(rel);
        self.create_dirs(&path);
        path
    }

    /// Sets the mode of the file or directory `rel`. Returns its path.
    pub fn set_mode(&self, rel: &str, mode: u32) -> PathBuf {
        let path = self.resolve(rel);
        self.chmod(&path, mode);
        path
    }

    /// The contents of the file `rel`, as text.
    pub fn read(&self, rel: &str) -> String {
        let path = self.resolve(rel);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// `rel` inside the directory; refuses a path that would leave it.
    fn resolve(&self, rel: &str) -> PathBuf {
        let inside = Path::new(rel).components().all(|c| matches!(c, Component::Normal(_)));
        if rel.is_empty() || !inside {
            panic!(
                "'{rel}' is not a path inside the hooks directory {} (relative, without '.' or '..')",
                self.root.display()
            );
        }
        self.root.join(rel)
    }

    fn create_dirs(&self, dir: &Path) {
        let mut missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
        missing.reverse();
        for d in missing {
            fs::create_dir(d).unwrap_or_else(|e| panic!("cannot create {}: {e}", d.display()));
            self.chmod(d, 0o755);
        }
    }

    fn chmod(&self, path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("cannot set mode {mode:o} on {}: {e}", path.display()));
    }
}

impl Default for HooksDir {
    fn default() -> HooksDir {
        HooksDir::new()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::panic::catch_unwind;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn modes_are_exact_whatever_the_umask() {
        let hooks = HooksDir::new();
        assert_eq!(mode(hooks.path()), 0o755);
        let script = hooks.script("qemu.d/vm1/start/begin/10-a", "exit 3");
        assert_eq!(fs::read_to_string(&script).unwrap(), "#!/bin/sh\nexit 3\n");
        assert_eq!(mode(&script), 0o755);
        for dir in ["qemu.d", "qemu.d/vm1", "qemu.d/vm1/start", "qemu.d/vm1/start/begin"] {
            assert_eq!(mode(&hooks.path().join(dir)), 0o755, "{dir}");
        }
        let plain = hooks.file("qemu.d/notes", b"x", 0o640);
        assert_eq!(mode(&plain), 0o640);
        assert_eq!(hooks.set_mode("qemu.d", 0o775), hooks.path().join("qemu.d"));
        assert_eq!(mode(&hooks.path().join("qemu.d")), 0o775);
        assert_eq!(mode(&hooks.file("setuid", "", 0o4755)), 0o4755);
    }

    #[test]
    fn the_script_runs_and_files_read_back() {
        let hooks = HooksDir::new();
        let script = hooks.script("hook", "echo \"$1\" > \"$(dirname \"$0\")/out\"");
        let status = std::process::Command::new(&script).arg("ran").status().unwrap();
        assert!(status.success());
        assert_eq!(hooks.read("out"), "ran\n");
        let copy = hooks.copy(&script, "sub/copy", 0o700);
        assert_eq!(mode(&copy), 0o700);
        assert_eq!(fs::read(&copy).unwrap(), fs::read(&script).unwrap());
        assert!(hooks.dir("a/b").is_dir());
    }

    #[test]
    fn a_path_may_not_leave_the_directory() {
        let hooks = HooksDir::new();
        for rel in ["../escape", "/tmp/escape", "a/../../escape", "", "./a"] {
            let err = catch_unwind(|| hooks.file(rel, "x", 0o644)).unwrap_err();
            let message = err.downcast_ref::<String>().unwrap();
            assert!(message.contains("is not a path inside the hooks directory"), "{message}");
        }
        assert!(!hooks.path().parent().unwrap().join("escape").exists());
    }

    #[test]
    fn failures_name_the_path() {
        let hooks = HooksDir::new();
        hooks.file("plain", "x", 0o644);
        let err = catch_unwind(|| hooks.script("plain/below", "exit 0")).unwrap_err();
        let message = err.downcast_ref::<String>().unwrap();
        assert!(message.starts_with("cannot "), "{message}");
        assert!(message.contains("plain/below"), "{message}");
        let err = catch_unwind(|| hooks.read("missing")).unwrap_err();
        assert!(err.downcast_ref::<String>().unwrap().contains("missing"));
    }

    #[test]
    fn a_temporary_directory_goes_a_fixed_one_stays() {
        let hooks = HooksDir::new();
        let gone = hooks.path().to_owned();
        hooks.script("x", "exit 0");
        drop(hooks);
        assert!(!gone.exists());

        let parent = HooksDir::new();
        let fixed = parent.path().join("etc/hooks");
        let hooks = HooksDir::at(&fixed);
        assert_eq!(mode(&fixed), 0o755);
        assert_eq!(mode(&parent.path().join("etc")), 0o755);
        hooks.script("daemon", "exit 0");
        drop(hooks);
        assert!(fixed.join("daemon").is_file());
    }
}
