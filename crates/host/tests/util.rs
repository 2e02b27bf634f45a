use std::{ops::Deref, sync::Arc};

use virt_hooks::{
    DriverError, DriverInfo, Event, ExtraRule, FailurePolicy, HookDriver, InputSpec, OperationSpec,
    Registry, RegistryBuilder, Runner, RunnerBuilder,
};
use virt_hooks_testing::HooksDir;

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

/// A temporary hooks directory (the kit's [`HooksDir`]: `script`, `file`,
/// `path`, `read`, ...) with a runner over the fake drivers.
pub(crate) struct Hooks(HooksDir);

impl Hooks {
    pub(crate) fn new() -> Hooks {
        Hooks(HooksDir::new())
    }

    pub(crate) fn builder(&self) -> RunnerBuilder {
        let mut b = RunnerBuilder::new(registry());
        b.hooks_dir(self.path());
        b
    }

    pub(crate) fn runner(&self) -> Runner {
        self.builder().build().expect("build")
    }
}

impl Deref for Hooks {
    type Target = HooksDir;

    fn deref(&self) -> &HooksDir {
        &self.0
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
