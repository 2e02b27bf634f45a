//! libvirt's error texts, byte for byte, and the shell escaping they use.
//!
//! Every function here is pure: it formats, it never logs or touches the
//! system.

use std::{fmt::Write as _, io, path::Path, time::Duration};

use crate::run::outcome::ScriptStatus;

/// The characters that make `virBufferEscapeShell` quote a string.
const SHELL_SPECIAL: &[u8] = b"\r\t\n !\"#$&'()*;<>?[\\]^`{|}~";

/// Appends `s` escaped as libvirt's `virBufferEscapeShell` does: `''` when
/// empty; unchanged unless it holds a shell-special character; otherwise
/// wrapped in `'...'` with each `'` written as `'\''`.
pub(crate) fn escape_shell_into(out: &mut String, s: &str) {
    if s.is_empty() {
        out.push_str("''");
    } else if !s.bytes().any(|b| SHELL_SPECIAL.contains(&b)) {
        out.push_str(s);
    } else {
        out.reserve(s.len() + 2);
        out.push('\'');
        for c in s.chars() {
            if c == '\'' {
                out.push_str("'\\''");
            } else {
                out.push(c);
            }
        }
        out.push('\'');
    }
}

/// `s` escaped as libvirt's `virBufferEscapeShell` does.
#[cfg(test)]
fn escape_shell(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    escape_shell_into(&mut out, s);
    out
}

/// The environment part of `virCommandToString`: each `KEY=` followed by the
/// escaped value and one space.
pub(crate) fn env_prefix<'a>(env: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (key, value) in env {
        out.push_str(key);
        out.push('=');
        escape_shell_into(&mut out, value);
        out.push(' ');
    }
    out
}

/// `virCommandToString(cmd, false)`: the environment prefix from
/// [`env_prefix`], then argv escaped and separated by single spaces.
pub(crate) fn command_string(env_prefix: &str, argv: &[String]) -> String {
    let mut out =
        String::with_capacity(env_prefix.len() + argv.iter().map(|a| a.len() + 3).sum::<usize>());
    out.push_str(env_prefix);
    for (i, arg) in argv.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        escape_shell_into(&mut out, arg);
    }
    out
}

/// `virProcessTranslateStatus`.
pub(crate) fn translate_status(status: &ScriptStatus) -> String {
    match status {
        ScriptStatus::Exited { code } => format!("exit status {code}"),
        ScriptStatus::Signaled { signal } => format!("fatal signal {signal}"),
        ScriptStatus::Invalid { raw } => format!("invalid value {raw}"),
        ScriptStatus::NotStarted | ScriptStatus::Refused => "invalid value -1".to_owned(),
    }
}

/// The message libvirt reports when a hook script ends with a non-zero
/// status:
///
/// `Hook script execution failed: internal error: Child process (<env> <argv>)
/// unexpected exit status N: <stderr>`
///
/// The `: <stderr>` suffix is there only when stderr is not empty; stderr is
/// inserted verbatim, up to its first NUL byte (it is a C string in libvirt).
pub(crate) fn child_failure(
    env_prefix: &str,
    argv: &[String],
    status: &ScriptStatus,
    stderr: &[u8],
) -> String {
    let stderr = match stderr.iter().position(|&b| b == 0) {
        Some(nul) => &stderr[..nul],
        None => stderr,
    };
    let mut out = String::from("Hook script execution failed: internal error: Child process (");
    out.push_str(&command_string(env_prefix, argv));
    out.push_str(") unexpected ");
    out.push_str(&translate_status(status));
    if !stderr.is_empty() {
        out.push_str(": ");
        out.push_str(&String::from_utf8_lossy(stderr));
    }
    out
}

/// The failure of a script that ran out of time; `killed` are the pids of
/// the processes stopped (the script and its descendants).
pub(crate) fn timed_out(path: &Path, after: Duration, killed: &[u32]) -> String {
    format!(
        "Hook script execution failed: hook script {} timed out after {}s; {}",
        path.display(),
        seconds(after),
        killed_processes(killed)
    )
}

/// What was killed, in words: "killed 3 processes (pids 1, 2, 3)".
pub(crate) fn killed_processes(pids: &[u32]) -> String {
    let list = pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    match pids {
        [] => "no process of it was left to kill".to_owned(),
        [pid] => format!("killed 1 process (pid {pid})"),
        _ => format!("killed {} processes (pids {list})", pids.len()),
    }
}

/// The failure of a script the security rules refused.
pub(crate) fn refused(path: &Path, reason: &str) -> String {
    format!("Hook script execution failed: hook script {} refused: {reason}", path.display())
}

/// The failure of a script stopped by a cancellation.
pub(crate) fn cancelled(path: &Path, killed: &[u32]) -> String {
    format!(
        "Hook script execution failed: hook script {} was cancelled; {}",
        path.display(),
        killed_processes(killed)
    )
}

/// The failure of a filter script whose output the driver refused.
pub(crate) fn output_refused(path: &Path, driver: &str, reason: &str) -> String {
    format!(
        "Hook script execution failed: driver '{driver}' refused the output of hook script {}: {reason}",
        path.display()
    )
}

/// The failure of a filter script whose output is larger than the limit.
pub(crate) fn output_too_large(path: &Path, limit: usize) -> String {
    format!(
        "Hook script execution failed: the output of hook script {} exceeds the limit of {limit} bytes",
        path.display()
    )
}

/// The failure of a script that could not be started at all (no pipe, no
/// process), before any exec.
pub(crate) fn not_started(path: &Path, err: &io::Error) -> String {
    format!(
        "Hook script execution failed: cannot run hook script {}: {}",
        path.display(),
        strerror(err)
    )
}

/// libvirt's `cannot open directory '<path>': <strerror>`.
pub(crate) fn cannot_open_dir(path: &Path, err: &io::Error) -> String {
    format!("cannot open directory '{}': {}", path.display(), strerror(err))
}

/// libvirt's `Unable to read directory '<path>': <strerror>`.
pub(crate) fn cannot_read_dir(path: &Path, err: &io::Error) -> String {
    format!("Unable to read directory '{}': {}", path.display(), strerror(err))
}

/// The stderr line of a script that could not be executed, as libvirt's
/// child prints it: `cannot execute binary <path>: <strerror>`, plus the
/// interpreter when the script exists and its `#!` line names a missing or
/// unusable one (escaped, so a CRLF line shows as `/bin/sh\r`).
pub(crate) fn exec_failure_stderr(
    path: &Path,
    err: &io::Error,
    interpreter: Option<&[u8]>,
) -> Vec<u8> {
    let mut line = format!("cannot execute binary {}: {}", path.display(), strerror(err));
    if let Some(interp) = interpreter {
        let _ = write!(line, " (bad interpreter '{}')", interp.escape_ascii());
    }
    line.push('\n');
    line.into_bytes()
}

/// The bare `strerror` text of an OS error, without Rust's ` (os error N)`.
pub(crate) fn strerror(err: &io::Error) -> String {
    let text = err.to_string();
    if err.raw_os_error().is_some() {
        if let Some(at) = text.rfind(" (os error ") {
            return text[..at].to_owned();
        }
    }
    text
}

/// True if and only if `bytes` is empty or holds only C `isspace`
/// characters (libvirt's `virStringIsEmpty`).
pub(crate) fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
}

/// A duration in seconds, without a fraction when it is whole.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        let s = format!("{:.3}", d.as_secs_f64());
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_vir_buffer_escape_shell() {
        assert_eq!(escape_shell(""), "''");
        assert_eq!(escape_shell("vm1"), "vm1");
        assert_eq!(escape_shell("-"), "-");
        assert_eq!(escape_shell("my vm"), "'my vm'");
        assert_eq!(escape_shell("from snapshot"), "'from snapshot'");
        assert_eq!(escape_shell("it's"), "'it'\\''s'");
        assert_eq!(escape_shell("a\tb"), "'a\tb'");
        assert_eq!(escape_shell("/usr/bin:/bin"), "/usr/bin:/bin");
        assert_eq!(escape_shell("a=b,c%d@e+f.g/h:i-j_k"), "a=b,c%d@e+f.g/h:i-j_k");
        for special in "\r\t\n !\"#$&'()*;<>?[\\]^`{|}~".chars() {
            let s = format!("a{special}b");
            assert!(escape_shell(&s).starts_with('\''), "{s:?} must be quoted");
        }
    }

    #[test]
    fn command_string_puts_env_then_argv() {
        let env = env_prefix([("LC_ALL", "C"), ("PATH", "/bin"), ("HOME", "/my home")]);
        let argv: Vec<String> =
            ["/etc/libvirt/hooks/qemu", "my vm", "release", "end", "from snapshot"]
                .map(String::from)
                .into();
        assert_eq!(
            command_string(&env, &argv),
            "LC_ALL=C PATH=/bin HOME='/my home' /etc/libvirt/hooks/qemu 'my vm' release end 'from snapshot'"
        );
    }

    #[test]
    fn child_failure_is_libvirts_text() {
        let env = env_prefix([("LC_ALL", "C"), ("PATH", "/usr/bin")]);
        let argv: Vec<String> =
            ["/etc/libvirt/hooks/qemu", "test", "prepare", "begin", "-"].map(String::from).into();
        let st = ScriptStatus::Exited { code: 1 };
        assert_eq!(
            child_failure(&env, &argv, &st, b""),
            "Hook script execution failed: internal error: Child process (LC_ALL=C PATH=/usr/bin /etc/libvirt/hooks/qemu test prepare begin -) unexpected exit status 1"
        );
        assert!(
            child_failure(&env, &argv, &st, b"no\nway\n").ends_with("exit status 1: no\nway\n")
        );
        assert!(child_failure(&env, &argv, &st, b" ").ends_with("exit status 1:  "));
        assert!(child_failure(&env, &argv, &st, b"\0hidden").ends_with("exit status 1"));
        let sig = ScriptStatus::Signaled { signal: 15 };
        assert!(child_failure(&env, &argv, &sig, b"").ends_with(") unexpected fatal signal 15"));
    }

    #[test]
    fn strerror_is_bare() {
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(strerror(&e), "Permission denied");
        let e = io::Error::from_raw_os_error(libc::ENOTDIR);
        assert_eq!(
            cannot_open_dir(Path::new("/h/qemu.d"), &e),
            "cannot open directory '/h/qemu.d': Not a directory"
        );
    }

    #[test]
    fn exec_failure_names_the_interpreter_escaped() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            exec_failure_stderr(Path::new("/h/qemu"), &e, Some(b"/bin/sh\r")),
            b"cannot execute binary /h/qemu: No such file or directory (bad interpreter '/bin/sh\\r')\n"
        );
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(
            exec_failure_stderr(Path::new("/h/qemu"), &e, None),
            b"cannot execute binary /h/qemu: Permission denied\n"
        );
    }

    #[test]
    fn blank_is_c_isspace_only() {
        assert!(is_blank(b""));
        assert!(is_blank(b" \t\n\r\x0b\x0c"));
        assert!(!is_blank(b" x "));
        assert!(!is_blank(b"\xa0"));
    }

    #[test]
    fn seconds_drop_a_zero_fraction() {
        assert_eq!(seconds(Duration::from_secs(120)), "120");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5");
        assert_eq!(seconds(Duration::from_millis(250)), "0.25");
    }
}
