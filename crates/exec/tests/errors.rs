//! Programs that do not start are typed errors naming the program and the
//! cause; a status that is lost is an error in the result, with the output
//! kept.
#![allow(unsafe_code)]

use std::{ffi::CString, fs, io::ErrorKind, os::unix::fs::PermissionsExt, path::Path};

use virt_hooks_exec::{Command, Limits, SpawnError, WaitStatus, run};

use crate::util::{in_own_process, sh};

fn exec_error(program: &Path) -> SpawnError {
    let c = CString::new(program.as_os_str().as_encoded_bytes()).expect("no NUL");
    let argv = [c.clone()];
    run(&Command::new(&c, &argv, &[]), &Limits::default(), None).expect_err("does not start")
}

fn file(dir: &Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

#[test]
fn a_missing_program_is_an_exec_error_that_names_it() {
    let err = exec_error(Path::new("/nonexistent/program"));
    let SpawnError::Exec { ref program, ref interpreter, ref source } = err else {
        panic!("not an exec error: {err:?}")
    };
    assert_eq!(program, Path::new("/nonexistent/program"));
    assert_eq!((source.kind(), interpreter), (ErrorKind::NotFound, &None));
    assert!(
        err.to_string().starts_with("cannot execute /nonexistent/program: No such file"),
        "{err}"
    );
}

#[test]
fn a_missing_or_unusable_interpreter_is_named() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = file(dir.path(), "missing", "#!/nonexistent/interp -x\n", 0o755);
    let SpawnError::Exec { interpreter, source, .. } = exec_error(&missing) else {
        panic!("not an exec error")
    };
    assert_eq!(source.kind(), ErrorKind::NotFound);
    assert_eq!(interpreter.as_deref(), Some(Path::new("/nonexistent/interp")));

    let interp = file(dir.path(), "interp", "", 0o644);
    let text = format!("#!{}\n", interp.display());
    let unusable = file(dir.path(), "unusable", &text, 0o755);
    let SpawnError::Exec { interpreter, source, .. } = exec_error(&unusable) else {
        panic!("not an exec error")
    };
    assert_eq!(source.kind(), ErrorKind::PermissionDenied);
    assert_eq!(interpreter.as_deref(), Some(interp.as_path()));
}

#[test]
fn a_file_without_execute_permission_has_no_interpreter_to_blame() {
    let dir = tempfile::tempdir().expect("dir");
    let script = file(dir.path(), "script", "#!/bin/sh\nexit 0\n", 0o644);
    let SpawnError::Exec { interpreter, source, .. } = exec_error(&script) else {
        panic!("not an exec error")
    };
    assert_eq!((source.kind(), interpreter), (ErrorKind::PermissionDenied, None));
}

#[test]
fn a_lost_status_is_a_wait_error_and_the_output_is_kept() {
    in_own_process("errors::lost_status_helper", &[("VH_EXEC_HELPER", "1")]);
}

#[test]
#[ignore = "helper process for a_lost_status_is_a_wait_error_and_the_output_is_kept"]
fn lost_status_helper() {
    if std::env::var_os("VH_EXEC_HELPER").is_none() {
        return;
    }
    // With SIGCHLD ignored, the kernel reaps children itself, so waitpid
    // finds none.
    // SAFETY: a single-threaded helper process; SIG_IGN is a valid
    // disposition.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let finished = sh("echo ran").run();
    assert_eq!(finished.stdout.data, b"ran\n");
    let err = finished.status.expect_err("the status is lost");
    assert_eq!(err.pid, finished.pid);
    assert_eq!(err.source.raw_os_error(), Some(libc::ECHILD));
    assert_eq!(
        err.to_string(),
        format!("cannot wait for process {}: No child processes (os error 10)", finished.pid)
    );
    // And a normal status once SIGCHLD is back to its default.
    // SAFETY: as above.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    let status = sh("exit 5").run().status.expect("status");
    assert_eq!(status, WaitStatus::Exited { code: 5 });
}
