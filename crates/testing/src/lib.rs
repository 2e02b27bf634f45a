/*!
Test helpers for virt-hooks drivers and for the hosts that run them.

A driver author adds this crate as a dev-dependency and tests the driver as
an ordinary library, the way the host will use it:

* [`check`]: one line per event; the event against the driver's operation
  table, then the driver's own `validate`, exactly as the host does before a
  script runs. [`check_output`] does the same for a filter script's output.
  Both return a typed [`Refusal`] that compares equal to its message.
* [`table_problems`]: the mistakes in a driver's name and table that no
  event reveals (a row listed twice, an operation no event can match, a
  filter without a document, a missing description).
* [`HooksDir`]: a temporary hooks directory with scripts, files and
  directories at exact modes, for tests that run scripts.

# Example

```
use virt_hooks_core::{DriverError, DriverInfo, Event, ExtraRule, HookDriver, OperationSpec};
use virt_hooks_testing::{check, table_problems};

struct Backup;

impl HookDriver for Backup {
    fn info(&self) -> DriverInfo {
        DriverInfo::new("backup", "1.0.0", "domain backups")
    }
    fn operations(&self) -> Vec<OperationSpec> {
        vec![OperationSpec::new("run", ["begin"], ExtraRule::one_of(["full", "incremental"]))
            .describe("when the backup job starts")]
    }
    fn validate(&self, event: &Event<'_>) -> Result<(), DriverError> {
        if event.object.is_empty() {
            return Err(DriverError::invalid("the object is empty"));
        }
        Ok(())
    }
}

assert_eq!(table_problems(&Backup), []);
assert_eq!(check(&Backup, &Event::new("backup", "vm1", "run", "begin", "full")), Ok(()));
assert_eq!(
    check(&Backup, &Event::new("backup", "vm1", "run", "begin", "sideways")).unwrap_err(),
    "'backup run' takes extra one of 'full', 'incremental', not 'sideways'"
);
assert_eq!(
    check(&Backup, &Event::new("backup", "", "run", "begin", "full")).unwrap_err(),
    "the object is empty"
);
```

The driver types are those of `virt-hooks-core`, which `virt-hooks-abi`
re-exports: a plugin crate uses them through `virt_hooks_abi::...`.

The helpers are for tests: [`HooksDir`] panics, naming the path and the
reason, when the file system refuses what it asks, so that a test whose
setup failed fails. [`check`] and [`table_problems`] never panic; they
return what they found.
*/

pub use crate::{
    check::{Refusal, check, check_output},
    hooks_dir::HooksDir,
    table::{TableProblem, table_problems},
};

mod check;
mod hooks_dir;
mod table;
