//! Placeholder until the plugin loader lands: finds nothing.
use std::path::PathBuf;

use crate::registry::Registry;

/// A plugin file that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct PluginError {
    /// The plugin file.
    pub file: PathBuf,
    /// Why it was not loaded.
    pub reason: String,
}

/// Where plugins are looked for.
#[derive(Debug, Clone, Default)]
pub struct PluginSearch {
    dirs: Vec<PathBuf>,
}

impl PluginSearch {
    /// Adds a directory to search, before the defaults.
    pub fn dir(&mut self, dir: impl Into<PathBuf>) -> &mut PluginSearch {
        self.dirs.push(dir.into());
        self
    }
}

pub(crate) fn load_all(_search: &PluginSearch, _registry: &mut Registry) {}
