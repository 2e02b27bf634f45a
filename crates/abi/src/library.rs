//! The one rule between a plugin crate's library name and its driver's name.
//!
//! The host loads `libvirt_hooks_driver_<name>.so`, the file cargo writes for
//! a crate whose `[lib] name` is `virt_hooks_driver_<name>`, and the driver
//! inside names the hook script it serves (`info().name`). Library names
//! cannot hold a `-`, so a driver `port-audit` lives in
//! `virt_hooks_driver_port_audit`. [`export_driver!`](crate::export_driver)
//! turns a disagreement into a failing `cargo test` of the plugin crate.

/// The library name prefix of a driver plugin crate; cargo writes the plugin
/// as `lib` + this + `<name>.so`.
pub const LIBRARY_PREFIX: &str = "virt_hooks_driver_";

/// The library name a crate exporting the driver `driver` must have:
/// `virt_hooks_driver_<driver>`, with each `-` written `_`.
pub fn library_name(driver: &str) -> String {
    format!("{LIBRARY_PREFIX}{}", driver.replace('-', "_"))
}

/// A plugin crate whose library name and driver name disagree: the host
/// would find the file under one name and run the hooks of another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LibraryNameError {
    /// The driver's name is empty: there is no hook script to serve.
    #[error("library '{library}' exports a driver with an empty name")]
    EmptyDriverName {
        /// The crate's library name (`CARGO_CRATE_NAME`).
        library: String,
    },
    /// The library name lacks the prefix, so no host loads it as a plugin.
    #[error(
        "library '{library}' exports driver '{driver}', but no host loads it: name the library \
         '{expected}' ([lib] name in Cargo.toml)"
    )]
    NotAPlugin {
        /// The crate's library name (`CARGO_CRATE_NAME`).
        library: String,
        /// The driver's name (`info().name`).
        driver: String,
        /// The library name the driver needs.
        expected: String,
    },
    /// The library announces another driver than the one it exports.
    #[error(
        "library '{library}' exports driver '{driver}': name the library '{expected}' \
         ([lib] name in Cargo.toml) or the driver '{announced}'"
    )]
    Mismatch {
        /// The crate's library name (`CARGO_CRATE_NAME`).
        library: String,
        /// The driver's name (`info().name`).
        driver: String,
        /// The library name the driver needs.
        expected: String,
        /// The driver name the library announces (what follows the prefix).
        announced: String,
    },
}

/// Checks that `library`, a crate's library name, is the one the driver
/// named `driver` needs (see [`library_name`]).
///
/// # Errors
///
/// [`LibraryNameError`] naming both and the fix.
pub fn check_library_name(library: &str, driver: &str) -> Result<(), LibraryNameError> {
    if driver.is_empty() {
        return Err(LibraryNameError::EmptyDriverName { library: library.to_owned() });
    }
    let expected = library_name(driver);
    if library == expected {
        return Ok(());
    }
    let (library, driver) = (library.to_owned(), driver.to_owned());
    Err(match library.strip_prefix(LIBRARY_PREFIX) {
        Some(announced) if !announced.is_empty() => {
            let announced = announced.to_owned();
            LibraryNameError::Mismatch { library, driver, expected, announced }
        }
        _ => LibraryNameError::NotAPlugin { library, driver, expected },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_is_the_driver_name_after_the_prefix() {
        assert_eq!(check_library_name("virt_hooks_driver_qemu", "qemu"), Ok(()));
        assert_eq!(check_library_name("virt_hooks_driver_port_audit", "port-audit"), Ok(()));
        assert_eq!(library_name("port-audit"), "virt_hooks_driver_port_audit");
    }

    #[test]
    fn a_mismatch_names_both_and_the_fix() {
        let err = check_library_name("virt_hooks_driver_qemu", "kvm").unwrap_err();
        assert_eq!(
            err.to_string(),
            "library 'virt_hooks_driver_qemu' exports driver 'kvm': name the library \
             'virt_hooks_driver_kvm' ([lib] name in Cargo.toml) or the driver 'qemu'"
        );
        // One character off, or a case difference, is a mismatch too.
        assert!(check_library_name("virt_hooks_driver_qemu", "qemu ").is_err());
        assert!(check_library_name("virt_hooks_driver_Qemu", "qemu").is_err());
    }

    #[test]
    fn a_library_without_the_prefix_is_never_loaded() {
        for library in ["qemu", "virt_hooks_driver_", "libvirt_hooks_driver_qemu", "driver_qemu"] {
            let err = check_library_name(library, "qemu").unwrap_err();
            assert!(matches!(err, LibraryNameError::NotAPlugin { .. }), "{library}: {err}");
            assert!(err.to_string().contains("no host loads it"), "{err}");
        }
    }

    #[test]
    fn an_empty_driver_name_never_matches() {
        assert_eq!(
            check_library_name("virt_hooks_driver_", "").unwrap_err().to_string(),
            "library 'virt_hooks_driver_' exports a driver with an empty name"
        );
    }
}
