//! Loading a plugin built against an older minor version of the interface
//! (see `docs/abi-evolution.md`, "New host, old plugin").
//!
//! abi_stable's checked loader refuses a plugin whose prefix types (the root
//! module, the trait's vtable) have fewer fields than the host's: the case
//! "expected more fields than found" is an error for every type kind. For
//! prefix types that is exactly what a newer minor version looks like, and
//! it is safe to view such a plugin through the host's types: every prefix
//! field access checks the plugin's own field count, and every later trait
//! method has a default body.
//!
//! So when the checked load fails, the host runs abi_stable's layout checker
//! once more, reads its structured report (not the formatted text) and
//! accepts the plugin only when every difference is a prefix type missing
//! trailing fields. Any other difference (a changed type, a plain struct or
//! a function signature with fewer fields, a moved prefix marker) still
//! refuses it.

use abi_stable::StableAbi;
use abi_stable::abi_stability::abi_checking::{AbiInstability, AbiInstabilityErrors};
use abi_stable::abi_stability::check_layout_compatibility;
use abi_stable::library::LibHeader;
use abi_stable::type_layout::{TLData, TLFieldOrFunction, TypeLayout};

use crate::module::DriverModuleRef;

/// Whether the plugin behind `header` differs from this host's interface
/// only by lacking trailing prefix fields: a plugin built against an older
/// minor version.
pub(crate) fn is_older_minor(header: &LibHeader) -> bool {
    let Some(found) = header.layout() else { return false };
    is_prefix_of(<DriverModuleRef as StableAbi>::LAYOUT, found)
}

/// Whether `found` is `expected` with some trailing prefix fields missing
/// (or equal to it).
pub(crate) fn is_prefix_of(expected: &'static TypeLayout, found: &'static TypeLayout) -> bool {
    // The checker the executable registered (what `LibHeader::ensure_layout`
    // uses); its error is the unformatted report.
    match check_layout_compatibility(expected, found).into_result() {
        Ok(()) => true,
        Err(error) => error
            .downcast_ref::<AbiInstabilityErrors>()
            .is_some_and(only_missing_trailing_prefix_fields),
    }
}

/// The rule itself, on abi_stable's structured report.
///
/// The report holds one entry per type that differs, each with the path of
/// fields that leads to it (its last field has the type's layout; the
/// top-level type has an empty path) and the list of differences found in
/// that type itself. Types that only contain a differing type have an entry
/// with no differences of their own.
fn only_missing_trailing_prefix_fields(report: &AbiInstabilityErrors) -> bool {
    let mut tolerated = 0;
    for entry in report.errors.iter().filter(|e| !e.errs.is_empty()) {
        let layout = match entry.stack_trace.last() {
            None => report.interface,
            Some(step) => match &step.expected {
                TLFieldOrFunction::Field(field) => field.layout(),
                // The parameters of a function type: never tolerated.
                TLFieldOrFunction::Function(_) => return false,
            },
        };
        if !matches!(layout.data(), TLData::PrefixType(_)) {
            return false;
        }
        for difference in entry.errs.iter() {
            match difference {
                AbiInstability::FieldCountMismatch(n) if n.expected > n.found => tolerated += 1,
                // The prefix type's size follows from its fields.
                AbiInstability::Size(n) if n.expected > n.found => {}
                _ => return false,
            }
        }
    }
    tolerated > 0
}

#[cfg(test)]
#[allow(unsafe_code, dead_code, missing_docs, unreachable_pub, clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Version 1.0 of some types.
    mod old {
        use abi_stable::StableAbi;

        #[repr(C)]
        #[derive(StableAbi)]
        #[sabi(kind(Prefix(prefix_ref = ModuleRef)))]
        #[sabi(missing_field(option))]
        pub struct Module {
            #[sabi(last_prefix_field)]
            pub first: extern "C" fn(u32) -> u32,
        }

        #[repr(C)]
        #[derive(StableAbi)]
        pub struct Plain {
            pub first: u32,
        }

        #[repr(C)]
        #[derive(StableAbi)]
        pub struct Callback {
            pub call: extern "C" fn(u32) -> u32,
        }
    }

    /// The same types one version later.
    mod new {
        use abi_stable::StableAbi;

        /// A minor version: one more trailing field.
        #[repr(C)]
        #[derive(StableAbi)]
        #[sabi(kind(Prefix(prefix_ref = ModuleRef)))]
        #[sabi(missing_field(option))]
        pub struct Module {
            #[sabi(last_prefix_field)]
            pub first: extern "C" fn(u32) -> u32,
            pub second: extern "C" fn() -> u64,
        }

        /// Broken: a plain struct with one more field.
        #[repr(C)]
        #[derive(StableAbi)]
        pub struct Plain {
            pub first: u32,
            pub second: u32,
        }

        /// Broken: a function with one more parameter.
        #[repr(C)]
        #[derive(StableAbi)]
        pub struct Callback {
            pub call: extern "C" fn(u32, u32) -> u32,
        }
    }

    /// Broken: the 1.0 prefix type with a changed field type.
    mod changed {
        use abi_stable::StableAbi;

        #[repr(C)]
        #[derive(StableAbi)]
        #[sabi(kind(Prefix(prefix_ref = ModuleRef)))]
        #[sabi(missing_field(option))]
        pub struct Module {
            #[sabi(last_prefix_field)]
            pub first: extern "C" fn(u64) -> u32,
            pub second: extern "C" fn() -> u64,
        }
    }

    /// A host whose prefix has two mandatory fields: a plugin with only the
    /// first lacks a field the host reads without checking.
    mod two_mandatory {
        use abi_stable::StableAbi;

        #[repr(C)]
        #[derive(StableAbi)]
        #[sabi(kind(Prefix(prefix_ref = ModuleRef)))]
        #[sabi(missing_field(option))]
        pub struct Module {
            pub first: extern "C" fn(u32) -> u32,
            #[sabi(last_prefix_field)]
            pub second: extern "C" fn() -> u64,
        }
    }

    fn layout<T: StableAbi>() -> &'static TypeLayout {
        T::LAYOUT
    }

    #[test]
    fn an_older_prefix_type_is_a_prefix() {
        assert!(is_prefix_of(layout::<new::ModuleRef>(), layout::<old::ModuleRef>()));
        // The other direction abi_stable accepts by itself.
        assert!(
            check_layout_compatibility(layout::<old::ModuleRef>(), layout::<new::ModuleRef>())
                .is_ok()
        );
        assert!(is_prefix_of(layout::<new::ModuleRef>(), layout::<new::ModuleRef>()));
    }

    #[test]
    fn abi_stable_alone_refuses_the_older_prefix_type() {
        let error =
            check_layout_compatibility(layout::<new::ModuleRef>(), layout::<old::ModuleRef>())
                .unwrap_err();
        assert!(error.to_string().contains("too many fields"), "{error}");
    }

    #[test]
    fn other_differences_are_not_tolerated() {
        assert!(!is_prefix_of(layout::<new::Plain>(), layout::<old::Plain>()));
        assert!(!is_prefix_of(layout::<new::Callback>(), layout::<old::Callback>()));
        // Missing a trailing field and a changed one.
        assert!(!is_prefix_of(layout::<new::ModuleRef>(), layout::<changed::ModuleRef>()));
        assert!(!is_prefix_of(layout::<changed::ModuleRef>(), layout::<old::ModuleRef>()));
    }

    #[test]
    fn a_missing_mandatory_prefix_field_is_not_tolerated() {
        // Only trailing (optional) fields may be missing: the accessors of
        // mandatory ones do not check the plugin's field count.
        assert!(!is_prefix_of(layout::<two_mandatory::ModuleRef>(), layout::<old::ModuleRef>()));
    }
}
