//! The host side: loading a plugin file and seeing its driver as a native
//! [`HookDriver`].

use std::fmt::Write as _;
use std::panic::catch_unwind;
use std::path::Path;

use abi_stable::library::{LibraryError, RootModule, RootModuleError, lib_header_from_path};
use abi_stable::std_types::{RSlice, RStr};
use virt_hooks_core::{DriverError, DriverInfo, Event, HookDriver, OperationSpec};

use crate::ffi::{FfiEvent, HostLogger};
use crate::module::DriverModuleRef;
use crate::{DriverBox, compat};

/// The driver inside a plugin, seen as a native [`HookDriver`].
///
/// Its description and operation table are read (and checked) once, when it
/// is created; the other calls go through to the plugin every time.
pub struct ForeignDriver {
    inner: DriverBox,
    info: DriverInfo,
    operations: Vec<OperationSpec>,
}

impl std::fmt::Debug for ForeignDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForeignDriver").field("info", &self.info).finish_non_exhaustive()
    }
}

impl ForeignDriver {
    /// Reads the driver's description and operation table.
    ///
    /// # Errors
    ///
    /// [`DriverError::Panicked`] when the plugin panicked doing so, and
    /// [`DriverError::Protocol`] when the table holds a kind this host does
    /// not know (a plugin built against a newer interface).
    pub fn new(inner: DriverBox) -> Result<ForeignDriver, DriverError> {
        let info = DriverInfo::from(inner.info().into_result()?);
        let operations = inner
            .operations()
            .into_result()?
            .into_iter()
            .map(OperationSpec::try_from)
            .collect::<Result<_, _>>()?;
        Ok(ForeignDriver { inner, info, operations })
    }
}

#[cfg(feature = "__next-minor-probe")]
impl ForeignDriver {
    /// The test-only trailing method: the plugin's answer, or the default
    /// body's 0 for a plugin built before it existed.
    pub fn next_minor_probe(&self) -> u32 {
        self.inner.next_minor_probe()
    }
}

impl HookDriver for ForeignDriver {
    fn info(&self) -> DriverInfo {
        self.info.clone()
    }

    fn operations(&self) -> Vec<OperationSpec> {
        self.operations.clone()
    }

    fn validate(&self, event: &Event<'_>) -> Result<(), DriverError> {
        self.inner.validate(FfiEvent::from(event)).into_result().map_err(DriverError::from)
    }

    fn check_output(&self, event: &Event<'_>, output: &[u8]) -> Result<(), DriverError> {
        self.inner
            .check_output(FfiEvent::from(event), RSlice::from_slice(output))
            .into_result()
            .map_err(DriverError::from)
    }
}

/// Why a plugin file could not be loaded. Each message is one lowercase line
/// that does not repeat the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// `dlopen` refused the file.
    #[error("not a shared library ({reason})")]
    NotALibrary {
        /// The dynamic loader's reason.
        reason: String,
    },
    /// A shared library without the root-module symbol every plugin exports.
    #[error("a shared library, but not a virt-hooks plugin (it exports no root module)")]
    NotAPlugin,
    /// Built against another major version of the interface.
    #[error("built against virt-hooks-abi {found}, this host speaks {expected}")]
    IncompatibleVersion {
        /// The plugin's interface version.
        found: String,
        /// The host's interface version.
        expected: String,
    },
    /// Same interface version, but its types differ from the host's.
    #[error(
        "built against an incompatible virt-hooks-abi {found} (this host speaks {expected}): {summary}"
    )]
    IncompatibleLayout {
        /// The plugin's interface version.
        found: String,
        /// The host's interface version.
        expected: String,
        /// The first differences abi_stable found.
        summary: String,
    },
    /// Built with an incompatible abi_stable (or compiler C ABI).
    #[error("built with an incompatible abi_stable: {detail}")]
    IncompatibleAbiStable {
        /// What differs.
        detail: String,
    },
    /// Its driver panicked while being constructed or described.
    #[error("its init panicked: {message}")]
    InitPanicked {
        /// The panic message.
        message: String,
    },
    /// Its driver could not be constructed or described.
    #[error("its init failed: {reason}")]
    Init {
        /// The constructor's error or panic message.
        reason: String,
    },
}

/// Loads the driver plugin at `path`.
///
/// The file is opened with `dlopen` (which runs its initialisers: only load
/// trusted files), its interface version and layout are checked against this
/// host's, the host's logger is installed in it, and its driver is
/// constructed. A loaded library is never unloaded.
///
/// # Errors
///
/// A [`LoadError`] saying which of these steps failed.
pub fn load_driver(path: &Path) -> Result<Box<dyn HookDriver>, LoadError> {
    load_foreign(path).map(|driver| Box::new(driver) as Box<dyn HookDriver>)
}

/// [`load_driver`], without boxing: for the interface's own evolution tests.
pub(crate) fn load_foreign(path: &Path) -> Result<ForeignDriver, LoadError> {
    let header = lib_header_from_path(path).map_err(|e| load_error(path, e))?;
    let found = header.version_strings().version.as_str();
    let module = match header.init_root_module::<DriverModuleRef>() {
        Ok(module) => module,
        Err(LibraryError::AbiInstability(report)) => {
            if !compat::is_older_minor(header) {
                return Err(layout_error(path, found, &report.to_string()));
            }
            log::debug!(
                "{}: built against the older virt-hooks-abi {found}; loading it through the \
                 interface's prefix (later methods use their defaults)",
                path.display()
            );
            // SAFETY: `is_older_minor` re-ran abi_stable's layout check and
            // found only one kind of difference: prefix types (the root
            // module, the trait's vtable) of the plugin lacking trailing
            // fields the host has. Every field both sides have was checked
            // as usual. Prefix references check the plugin's own field count
            // on every access, and every later trait method has a default
            // body, so the missing fields are never read.
            #[allow(unsafe_code)]
            let module =
                unsafe { header.init_root_module_with_unchecked_layout::<DriverModuleRef>() };
            module.map_err(|e| load_error(path, e))?
        }
        Err(other) => return Err(load_error(path, other)),
    };
    (module.install_logger())(host_logger());
    let init_error = |e: DriverError| match e {
        DriverError::Panicked(message) => LoadError::InitPanicked { message },
        other => LoadError::Init { reason: other.to_string() },
    };
    let driver = (module.new_driver())().into_result().map_err(|e| init_error(e.into()))?;
    ForeignDriver::new(driver).map_err(init_error)
}

fn expected_version() -> String {
    DriverModuleRef::VERSION_STRINGS.version.as_str().to_owned()
}

fn load_error(path: &Path, error: LibraryError) -> LoadError {
    match error {
        LibraryError::OpenError { err, .. } => {
            let reason = err.to_string();
            let prefix = format!("{}: ", path.display());
            let reason = reason.strip_prefix(&prefix).unwrap_or(&reason).trim().to_owned();
            LoadError::NotALibrary { reason }
        }
        LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin,
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => {
            LoadError::IncompatibleVersion {
                found: actual_version.to_string(),
                expected: expected_version.to_string(),
            }
        }
        LibraryError::ParseVersionError(e) => LoadError::IncompatibleVersion {
            found: format!("with an unreadable version ({})", e.to_string().trim()),
            expected: expected_version(),
        },
        LibraryError::RootModule { err: RootModuleError::Unwound, .. } => {
            LoadError::InitPanicked { message: "in its root module loader".to_owned() }
        }
        LibraryError::RootModule { err: RootModuleError::Returned(e), .. } => {
            LoadError::Init { reason: first_line(&e.to_string()) }
        }
        LibraryError::AbiInstability(report) => layout_error(path, "unknown", &report.to_string()),
        LibraryError::InvalidAbiHeader(h) => LoadError::IncompatibleAbiStable {
            detail: format!(
                "the plugin uses abi_stable ABI {}.{}, this host {}.{}",
                h.abi_major,
                h.abi_minor,
                abi_stable::library::AbiHeader::VALUE.abi_major,
                abi_stable::library::AbiHeader::VALUE.abi_minor,
            ),
        },
        LibraryError::InvalidCAbi { .. } => {
            LoadError::IncompatibleAbiStable { detail: "the compiler's C ABI differs".to_owned() }
        }
        LibraryError::Many(errors) => match errors.into_iter().next() {
            Some(first) => load_error(path, first),
            None => LoadError::Init { reason: "unknown loading error".to_owned() },
        },
    }
}

fn first_line(text: &str) -> String {
    text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no reason given").to_owned()
}

/// Turns abi_stable's multi-kilobyte layout report into one line: the first
/// few distinct `Error:` entries with their expected and found values. The
/// start of the report goes to the debug log.
fn layout_error(path: &Path, found: &str, report: &str) -> LoadError {
    let lines: Vec<&str> = report.lines().collect();
    log::debug!(
        "layout mismatch in {} ({} lines); the first 40:\n{}",
        path.display(),
        lines.len(),
        lines.iter().take(40).copied().collect::<Vec<_>>().join("\n")
    );
    let mut entries: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() && entries.len() < 3 {
        let Some(what) = lines[i].trim().strip_prefix("Error:") else {
            i += 1;
            continue;
        };
        let mut entry = what.trim().to_owned();
        let mut values = Vec::new();
        let mut j = i + 1;
        while j < lines.len() && !lines[j].trim().starts_with("Error:") && values.len() < 2 {
            let label = lines[j].trim();
            if (label == "Expected:" || label == "Found:") && j + 1 < lines.len() {
                let value: String = lines[j + 1].trim().chars().take(60).collect();
                values.push(format!("{} {value}", label.trim_end_matches(':').to_lowercase()));
                j += 1;
            }
            j += 1;
        }
        if !values.is_empty() {
            let _ = write!(entry, " ({})", values.join(", "));
        }
        if !entries.contains(&entry) {
            entries.push(entry);
        }
        i = j;
    }
    let summary = if entries.is_empty() { first_line(report) } else { entries.join("; ") };
    LoadError::IncompatibleLayout { found: found.to_owned(), expected: expected_version(), summary }
}

/// The host's side of the log bridge.
pub(crate) fn host_logger() -> HostLogger {
    HostLogger { max_level: log::max_level() as usize as u8, log: host_log }
}

extern "C" fn host_log(level: u8, target: RStr<'_>, message: RStr<'_>) {
    let level = match level {
        1 => log::Level::Error,
        2 => log::Level::Warn,
        3 => log::Level::Info,
        4 => log::Level::Debug,
        _ => log::Level::Trace,
    };
    // A logger that panics must not unwind into the plugin.
    let _ = catch_unwind(|| {
        if level > log::max_level() {
            return;
        }
        let logger = log::logger();
        let metadata = log::Metadata::builder().level(level).target(target.as_str()).build();
        if logger.enabled(&metadata) {
            logger.log(
                &log::Record::builder()
                    .metadata(metadata)
                    .args(format_args!("{}", message.as_str()))
                    .build(),
            );
        }
    });
}
