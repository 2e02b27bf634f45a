use std::{
    ffi::CString,
    fs,
    path::Path,
    process, thread,
    time::{Duration, Instant},
};

use virt_hooks_exec::{Cancel, Command, Finished, Limits, run};

/// `/bin/sh -c SCRIPT sh ARGS...` with `PATH` as its whole environment.
#[derive(Debug)]
pub(crate) struct Sh {
    argv: Vec<CString>,
    envp: Vec<CString>,
}

pub(crate) fn sh(script: &str) -> Sh {
    let argv = ["/bin/sh", "-c", script, "sh"].map(|a| CString::new(a).expect("no NUL"));
    Sh { argv: argv.to_vec(), envp: vec![c"PATH=/usr/bin:/bin".to_owned()] }
}

impl Sh {
    pub(crate) fn args(mut self, args: &[&str]) -> Sh {
        self.argv.extend(args.iter().map(|a| CString::new(*a).expect("no NUL")));
        self
    }

    pub(crate) fn env(mut self, envp: &[&str]) -> Sh {
        self.envp = envp.iter().map(|e| CString::new(*e).expect("no NUL")).collect();
        self
    }

    pub(crate) fn command(&self) -> Command<'_> {
        Command::new(c"/bin/sh", &self.argv, &self.envp)
    }

    /// Runs it with the default limits and no input.
    pub(crate) fn run(&self) -> Finished {
        self.run_with(None, &Limits::default(), None)
    }

    pub(crate) fn run_with(
        &self,
        input: Option<&[u8]>,
        limits: &Limits,
        cancel: Option<&Cancel>,
    ) -> Finished {
        let command = match input {
            Some(input) => self.command().with_stdin(input),
            None => self.command(),
        };
        run(&command, limits, cancel).expect("/bin/sh starts")
    }
}

/// The default limits, changed by `set`.
pub(crate) fn limits(set: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    set(&mut limits);
    limits
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Returns true if and only if `pid` is a live (not zombie) process.
pub(crate) fn alive(pid: u32) -> bool {
    match fs::read(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let close = stat.iter().rposition(|&b| b == b')').expect("comm");
            stat.get(close + 2) != Some(&b'Z')
        }
    }
}

/// Returns true if and only if `pid` is gone now or within 2 s.
pub(crate) fn gone(pid: u32) -> bool {
    let until = Instant::now() + Duration::from_secs(2);
    while alive(pid) {
        if Instant::now() >= until {
            return false;
        }
        thread::sleep(ms(20));
    }
    true
}

/// The pid a child wrote to `path`, waiting up to 5 s for it.
pub(crate) fn read_pid(path: &Path) -> u32 {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(pid) = fs::read_to_string(path).ok().and_then(|t| t.trim().parse().ok()) {
            return pid;
        }
        assert!(Instant::now() < until, "no pid in {}", path.display());
        thread::sleep(ms(10));
    }
}

/// Cleanup only: SIGKILL to `pid`, which may be gone already.
pub(crate) fn kill(pid: u32) {
    let _ = process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
}

/// Runs this test binary's ignored test `name` in a new process with `env`
/// set; for what is only meaningful in a process where no other test runs.
pub(crate) fn in_own_process(name: &str, env: &[(&str, &str)]) {
    let exe = std::env::current_exe().expect("current exe");
    let status = process::Command::new(exe)
        .envs(env.iter().copied())
        .args(["--exact", name, "--ignored", "--test-threads=1", "-q"])
        .status()
        .expect("spawn the helper");
    assert!(status.success(), "{name} failed: {status:?}");
}
