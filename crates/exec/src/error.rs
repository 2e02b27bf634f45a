//! [`SpawnError`]: why a program did not start.

use std::{
    ffi::OsStr,
    fs::{self, File},
    io::{self, Read},
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::{Path, PathBuf},
};

use rustix::io::Errno;

/// Why a program did not start. Nothing is left running and nothing is
/// left to reap.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The process was created but could not execute the program: `source`
    /// is the exec error (`NotFound` when the file or its interpreter does
    /// not exist).
    #[error("cannot execute {}: {source}", program.display())]
    Exec {
        /// The program.
        program: PathBuf,
        /// The `#!` interpreter, when the program exists and names one that
        /// is missing or not executable.
        interpreter: Option<PathBuf>,
        /// The exec error.
        #[source]
        source: io::Error,
    },
    /// No process was created: a pipe, `/dev/null` or the spawn attributes
    /// could not be set up (out of descriptors, out of memory).
    #[error("cannot start {}: {source}", program.display())]
    Setup {
        /// The program.
        program: PathBuf,
        /// The error of the step that failed.
        #[source]
        source: io::Error,
    },
}

impl SpawnError {
    /// The exec failure of `program`, with its interpreter looked up.
    pub(crate) fn exec(program: &Path, source: io::Error) -> SpawnError {
        let interpreter = bad_interpreter(program, &source);
        SpawnError::Exec { program: program.to_owned(), interpreter, source }
    }
}

/// For an exec failure of a program that exists: the `#!` interpreter, if
/// it is what is missing or unusable.
fn bad_interpreter(program: &Path, err: &io::Error) -> Option<PathBuf> {
    if !matches!(Errno::from_io_error(err), Some(Errno::NOENT | Errno::ACCESS)) {
        return None;
    }
    let mut head = [0u8; 256];
    let n = File::open(program).and_then(|mut f| f.read(&mut head)).ok()?;
    let interpreter = shebang(&head[..n])?;
    let usable =
        fs::metadata(interpreter).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    (!usable).then(|| interpreter.to_owned())
}

/// The interpreter a `#!` line names: after `#!` and blanks, up to the next
/// blank or newline.
fn shebang(head: &[u8]) -> Option<&Path> {
    let line = head.strip_prefix(b"#!")?;
    let line = &line[line.iter().position(|b| !matches!(b, b' ' | b'\t'))?..];
    let end = line.iter().position(|b| matches!(b, b' ' | b'\t' | b'\n')).unwrap_or(line.len());
    Some(Path::new(OsStr::from_bytes(&line[..end])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interpreter_is_the_first_word_after_the_hash_bang() {
        let p = |s: &[u8]| shebang(s).map(|p| p.as_os_str().as_bytes().to_vec());
        assert_eq!(p(b"#!/bin/sh\necho"), Some(b"/bin/sh".to_vec()));
        assert_eq!(p(b"#! \t/usr/bin/env python3\n"), Some(b"/usr/bin/env".to_vec()));
        assert_eq!(p(b"#!/bin/sh\r\n"), Some(b"/bin/sh\r".to_vec()), "a CRLF line keeps its \\r");
        assert_eq!(p(b"#!   "), None, "only blanks");
        assert_eq!(p(b"\x7fELF"), None);
    }
}
