//! The per-object trees of `virt-hook check`: every entry of
//! `<hooks>/<driver>.d/<object>/<op>/<subop>` given the verdict the runner
//! would give it, found by the runner's own discovery
//! ([`Stage::PerObject`]), so that the two cannot disagree. The deferred
//! scripts of an event (its `deferred/` directory) are judged the same way.

use std::{
    fs, io,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use virt_hooks_core::OperationSpec;

use super::outcome::SkipReason;
use crate::hooks::{
    discovery::{self, DropIns, Stage},
    message,
};

/// One entry of a per-object tree, before the security rules judge it.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) path: PathBuf,
    /// Discovery's verdict: `None` when the runner would start it (then
    /// the security rules judge it); never `Some` for [`Entry::misplaced`].
    pub(crate) skipped: Option<SkipReason>,
    /// In no place an event looks (or in an event that never comes): it
    /// never runs, whatever it is.
    pub(crate) misplaced: bool,
    /// What is wrong with it.
    pub(crate) warnings: Vec<String>,
}

/// Every entry of the per-object trees of `driver`, in byte order, with
/// the runner's discovery verdict (the caller applies the security rules
/// to those the runner would start, as the runner does). `operations` is the driver's table (`None` when no plugin
/// provides the driver): a sub-operation the table does not have for a
/// listed operation never comes, and is reported.
pub(crate) fn walk(hooks: &Path, driver: &str, operations: Option<&[OperationSpec]>) -> Vec<Entry> {
    let judge = |path, skipped| Entry { path, skipped, misplaced: false, warnings: Vec::new() };
    let drop_in_dir = discovery::drop_in_dir(&hooks.join(driver));
    let mut out = Vec::new();
    for object in sorted_dirs(&drop_in_dir, false, &mut out) {
        let object_name = name_of(&object);
        for op in sorted_dirs(&object, true, &mut out) {
            let op_name = name_of(&op);
            let spec = operations.and_then(|ops| ops.iter().find(|s| s.name == op_name));
            for entry in sorted_entries(&op, &mut out) {
                let subop_name = name_of(&entry);
                let args = [object_name.as_str(), op_name.as_str(), subop_name.as_str(), "-"];
                let before = out.len();
                match Stage::PerObject.find(hooks, driver, args) {
                    Err(err) => out.push(problem(err.path, err.message)),
                    Ok(found) if found.scripts.is_empty() && found.skipped.is_empty() => {
                        // Nothing the runner would look at: a dangling link
                        // (or an entry gone since it was listed).
                        if fs::symlink_metadata(&entry).is_ok() && fs::metadata(&entry).is_err() {
                            out.push(judge(entry.clone(), Some(SkipReason::DanglingSymlink)));
                        }
                    }
                    Ok(mut found) => {
                        let deferred = found.deferred.take();
                        let mut all: Vec<Entry> =
                            entries(found).map(|(path, reason)| judge(path, reason)).collect();
                        if let Some(dir) = deferred {
                            // The event's deferred scripts, listed as the
                            // runner lists them.
                            match discovery::drop_ins(&dir) {
                                Ok(found) => all.extend(
                                    entries(found).map(|(path, reason)| judge(path, reason)),
                                ),
                                Err(err) => all.push(problem(err.path, err.message)),
                            }
                        }
                        for file in &mut all {
                            if file.skipped == Some(SkipReason::Directory) && file.path != entry {
                                file.warnings.push(
                                    "a nested directory: never runs (the scripts of an event \
                                     are the files directly in its directory)"
                                        .to_owned(),
                                );
                            }
                        }
                        out.extend(all);
                    }
                }
                if let Some(spec) = spec {
                    if !spec.sub_operations.contains(&subop_name) {
                        let why = format!(
                            "never runs: '{driver} {op_name}' has no sub-operation \
                             '{subop_name}' (it has {})",
                            spec.sub_operations.join(", ")
                        );
                        let found = &mut out[before..];
                        for file in found.iter_mut() {
                            file.misplaced = true;
                        }
                        match found.first_mut() {
                            Some(first) => first.warnings.push(why),
                            None => out.push(problem(entry.clone(), why)),
                        }
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.as_os_str().as_bytes().cmp(b.path.as_os_str().as_bytes()));
    out
}

/// Every entry discovery found, with why it does not run (`None`: it
/// runs).
pub(crate) fn entries(found: DropIns) -> impl Iterator<Item = (PathBuf, Option<SkipReason>)> {
    let skipped = found.skipped.into_iter().map(|s| (s.path, Some(s.reason)));
    found.scripts.into_iter().map(|p| (p, None)).chain(skipped)
}

/// An entry that is wrong where it is, with what is wrong.
fn problem(path: PathBuf, warning: String) -> Entry {
    Entry { path, skipped: None, misplaced: true, warnings: vec![warning] }
}

fn name_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The entries of `dir`, sorted by bytes; a directory that cannot be listed
/// is reported in `out` (a missing one has no entries).
fn sorted_entries(dir: &Path, out: &mut Vec<Entry>) -> Vec<PathBuf> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(err) => {
            out.push(problem(dir.to_owned(), message::cannot_open_dir(dir, &err)));
            return Vec::new();
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    paths
}

/// The directories (or links to directories) among the entries of `dir`;
/// with `report_files` anything else is reported: it is in no place an
/// event looks.
fn sorted_dirs(dir: &Path, report_files: bool, out: &mut Vec<Entry>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for path in sorted_entries(dir, out) {
        if fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            dirs.push(path);
        } else if report_files {
            // `<object>/<file>`: per-object scripts are `<object>/<op>/<subop>`.
            out.push(problem(
                path,
                "never runs: per-object scripts are <driver>.d/<object>/<operation>/\
                 <sub-operation> (a file, or files in that directory)"
                    .to_owned(),
            ));
        }
    }
    dirs
}
