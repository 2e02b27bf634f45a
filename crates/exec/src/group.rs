//! The child's process group, which everything it starts joins unless it
//! moves away: signalled as a whole, and counted through `/proc` when
//! processes outlive the child.

use std::{
    fs,
    os::unix::ffi::OsStrExt,
    path::Path,
    thread,
    time::{Duration, Instant},
};

use rustix::process::{Pid, Signal};

use crate::finished::Leftovers;

/// How long [`Group::wait_gone`] waits for SIGKILLed members to die.
const GONE_WITHIN: Duration = Duration::from_millis(500);

/// A process group, named by its leader's pid.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Group(Pid);

impl Group {
    /// The group the child `pid` leads.
    pub(crate) fn of(pid: Pid) -> Group {
        Group(pid)
    }

    fn id(self) -> u32 {
        self.0.as_raw_nonzero().get().unsigned_abs()
    }

    /// Sends `signal` to every process of the group. Returns false if the
    /// group has no process left.
    pub(crate) fn signal(self, signal: Signal) -> bool {
        // Never "every process" (-1) nor init's group.
        if self.0.as_raw_nonzero().get() <= 1 {
            return false;
        }
        rustix::process::kill_process_group(self.0, signal).is_ok()
    }

    /// How many live (not zombie) processes are in the group: a scan of
    /// `/proc/<pid>/stat`, whose fifth field is the process group.
    pub(crate) fn members(self) -> usize {
        let Ok(entries) = fs::read_dir("/proc") else { return 0 };
        let want = self.id().to_string();
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().as_bytes().iter().all(u8::is_ascii_digit))
            .filter_map(|e| fs::read(e.path().join("stat")).ok())
            .filter(|stat| in_group(stat, want.as_bytes()))
            .count()
    }

    /// SIGKILL is delivered asynchronously: waits, briefly and bounded,
    /// until no live member is left, so that nothing the limits say to kill
    /// is still running when the run returns. Only on the (rare) killed
    /// path: it scans `/proc`.
    pub(crate) fn wait_gone(self, program: &Path) {
        let until = Instant::now() + GONE_WITHIN;
        while self.members() > 0 {
            if Instant::now() >= until {
                log::warn!(
                    "{}: its process group {} still has members 500 ms after SIGKILL",
                    program.display(),
                    self.id()
                );
                return;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Counts (and if `kill`, kills) the processes left in the group after
    /// `program` exited with its output still held open.
    pub(crate) fn leftovers(self, kill: bool, program: &Path) -> Leftovers {
        let pgid = self.id();
        let count = self.members();
        let killed = kill && count > 0 && self.signal(Signal::KILL);
        if killed {
            self.wait_gone(program);
        }
        let held_by = if count > 0 {
            format!("{count} process(es) it left behind in process group {pgid}")
        } else {
            format!("a process outside its process group {pgid}")
        };
        log::warn!(
            "{} (pid {pgid}) exited but its output was still held open by {held_by}; \
             stopped reading{}",
            program.display(),
            if killed { ", and killed the group" } else { "" }
        );
        Leftovers { pgid, count, killed }
    }
}

/// Returns true if and only if `stat` (the text of `/proc/<pid>/stat`) is
/// that of a live process in process group `pgid`.
fn in_group(stat: &[u8], pgid: &[u8]) -> bool {
    // "pid (comm) state ppid pgrp ...": comm may hold anything, so split
    // after its last ')'.
    let Some(close) = stat.iter().rposition(|&b| b == b')') else { return false };
    let mut fields = stat[close + 1..].split(|&b| b == b' ').filter(|f| !f.is_empty());
    let state = fields.next();
    let pgrp = fields.nth(1);
    state != Some(b"Z") && pgrp == Some(pgid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_split_after_the_last_parenthesis() {
        assert!(in_group(b"42 (sh) S 1 42 42 0", b"42"));
        assert!(in_group(b"43 (a) b) 7 (c) R 42 42 42 0", b"42"), "a comm with ') ' in it");
        assert!(!in_group(b"44 (sh) Z 42 42 42 0", b"42"), "zombies are not members");
        assert!(!in_group(b"45 (sh) S 42 421 421 0", b"42"), "421 is not 42");
        assert!(!in_group(b"garbage", b"42"));
    }

    #[test]
    fn this_process_group_has_members_and_no_group_is_never_signalled() {
        let own = Group::of(rustix::process::getpgrp());
        assert!(own.members() >= 1, "this test runs in it");
        let init = Group::of(Pid::INIT);
        assert!(!init.signal(Signal::CONT), "init's group is never signalled");
    }
}
