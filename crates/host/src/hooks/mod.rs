//! The hooks layer: the files an event runs and what libvirt says about
//! them.
//!
//! - `discovery`: which files an event runs ([`Layout`], stages), looked up
//!   anew on every call;
//! - `security`: the trust rule for scripts and plugin files: owner, mode,
//!   setuid, for every link and directory of the chain;
//! - `walk`: resolving a path component by component, as the kernel does,
//!   judging each with `security`'s rule;
//! - `profiles`: the profiles an object asks for in its metadata, their
//!   `profile.toml` declarations and their scripts;
//! - `message`: libvirt's texts (shell escaping, `Child process (...)
//!   unexpected exit status N`, strerror).

pub(crate) mod discovery;
pub(crate) mod message;
pub(crate) mod profiles;
pub(crate) mod security;
mod walk;

pub use self::{
    discovery::{DEFERRED_DIR, Layout},
    profiles::{
        PROFILE_ENV, PROFILE_FILE, PROPERTY_ENV_PREFIX, ProfileDecl, ProfileFileError, PropertyInfo,
    },
    security::SecurityProblem,
};
