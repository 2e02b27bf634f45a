use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use tempfile::TempDir;
use virt_hooks::{
    DriverError, DriverInfo, Event, ExtraRule, FailurePolicy, HookDriver, InputSpec, OperationSpec,
    Registry, RegistryBuilder, Runner, RunnerBuilder,
};

/// A qemu-like driver: `start` and `prepare` abort, `release` is ignored,
/// `restore` is a filter whose output must not contain `BAD`.
pub(crate) struct Qemu;

impl HookDriver for Qemu {
    fn info(&self) -> DriverInfo {
        DriverInfo::new("qemu", "1.0.0", "qemu-like test driver")
    }
    fn operations(&self) -> Vec<OperationSpec> {
        let xml = || InputSpec::xml("domain");
        vec![
            OperationSpec::new("prepare", ["begin"], ExtraRule::Dash).input(xml()),
            OperationSpec::new("start", ["begin"], ExtraRule::Dash).input(xml()),
            OperationSpec::new("release", ["end"], ExtraRule::one_of(["-", "from snapshot"]))
                .input(xml())
                .on_failure(FailurePolicy::Ignore),
            OperationSpec::new("restore", ["begin"], ExtraRule::Dash).input(xml()).filter(true),
        ]
    }
    fn validate(&self, event: &Event<'_>) -> Result<(), DriverError> {
        if event.object == "forbidden" {
            return Err(DriverError::invalid("the object 'forbidden' is not allowed"));
        }
        Ok(())
    }
    fn check_output(&self, _event: &Event<'_>, output: &[u8]) -> Result<(), DriverError> {
        if output.windows(3).any(|w| w == b"BAD") {
            return Err(DriverError::invalid("the document says BAD"));
        }
        Ok(())
    }
}

/// A daemon-like driver: no input documents.
pub(crate) struct Daemon;

impl HookDriver for Daemon {
    fn info(&self) -> DriverInfo {
        DriverInfo::new("daemon", "1.0.0", "daemon-like test driver")
    }
    fn operations(&self) -> Vec<OperationSpec> {
        vec![
            OperationSpec::new("start", ["-"], ExtraRule::fixed("start")),
            OperationSpec::new("reload", ["begin"], ExtraRule::fixed("SIGHUP"))
                .on_failure(FailurePolicy::Ignore),
        ]
    }
}

/// The fake drivers only: no plugin directory is searched, so what the
/// build left next to the test binary cannot change the results.
pub(crate) fn registry() -> Arc<Registry> {
    let mut builder = RegistryBuilder::new();
    builder.search().only_explicit();
    Arc::new(builder.driver(Qemu).driver(Daemon).build())
}

pub(crate) const DOMAIN: &[u8] = b"<domain><name>vm1</name></domain>\n";

pub(crate) fn qemu<'a>(object: &'a str, op: &'a str, sub: &'a str, extra: &'a str) -> Event<'a> {
    Event::new("qemu", object, op, sub, extra).with_input(DOMAIN)
}

pub(crate) fn daemon_start() -> Event<'static> {
    Event::new("daemon", "-", "start", "-", "start")
}

/// A temporary hooks directory.
pub(crate) struct Hooks {
    dir: TempDir,
}

impl Hooks {
    pub(crate) fn new() -> Hooks {
        let dir = tempfile::tempdir().expect("temp dir");
        // Explicit modes: the security rules refuse group- or
        // other-writable directories, whatever the umask.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        Hooks { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `#!/bin/sh` + `body` at `rel`, mode 0755.
    pub(crate) fn script(&self, rel: &str, body: &str) -> PathBuf {
        self.file(rel, format!("#!/bin/sh\n{body}\n").as_bytes(), 0o755)
    }

    pub(crate) fn file(&self, rel: &str, content: &[u8], mode: u32) -> PathBuf {
        let path = self.dir.path().join(rel);
        self.mkdir(path.parent().expect("parent"));
        fs::write(&path, content).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    /// Creates `dir` (inside the hooks directory) and its parents, mode 0755.
    pub(crate) fn mkdir(&self, dir: &Path) {
        let mut missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
        missing.reverse();
        for d in missing {
            fs::create_dir(d).expect("mkdir");
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }

    pub(crate) fn builder(&self) -> RunnerBuilder {
        let mut b = RunnerBuilder::new(registry());
        b.hooks_dir(self.path());
        b
    }

    pub(crate) fn runner(&self) -> Runner {
        self.builder().build().expect("build")
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.dir.path().join(rel)).expect("read")
    }
}

/// The stdout of each script, as strings (the one moved to
/// `outcome.output` included).
pub(crate) fn stdouts(outcome: &virt_hooks::Outcome) -> Vec<String> {
    outcome
        .scripts
        .iter()
        .map(|s| String::from_utf8_lossy(s.output(outcome)).into_owned())
        .collect()
}
