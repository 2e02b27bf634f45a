//! Every descendant of the program, whatever process group or session it
//! moved to: found through `/proc`, signalled one by one by pid, frozen and
//! killed, and reported when it outlives the program.
//!
//! A process belongs to the run when it is
//!
//! * the program itself, until it is reaped;
//! * in the program's process group (a pid cannot be reused while a group
//!   of that id exists, so this needs no subreaper);
//! * a child of this process that is not the program of any run going on
//!   here and started no earlier than the program: an orphan of the tree,
//!   reparented to us because we are a child subreaper ([`become_subreaper`]);
//! * or a descendant of one of these, by the parent links of
//!   `/proc/<pid>/stat`.
//!
//! Without the subreaper, an orphan that left the group (`setsid`, a double
//! fork) is reparented to init and lost to the scan once its parent died;
//! while its parents live, the links still find it.
//!
//! Signals go by pidfd after checking that the pid still names the process
//! scanned (same start time), so a recycled pid is never signalled; never to
//! a process group and never to our own.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs, io,
    os::unix::ffi::OsStrExt,
    sync::{Mutex, PoisonError},
    thread,
    time::{Duration, Instant},
};

use rustix::{
    io::Errno,
    process::{Pid, PidfdFlags, Signal, WaitOptions},
};

/// How long the freeze-and-kill loop may take before it gives up (a process
/// stuck in the kernel cannot be stopped).
const FREEZE_WITHIN: Duration = Duration::from_secs(2);
/// How long, after SIGKILL, for the killed processes to be gone.
const GONE_WITHIN: Duration = Duration::from_millis(500);
/// The most processes a report lists (the count stays exact).
const LISTED: usize = 64;
/// The most bytes of one command line kept in a report.
const CMDLINE: usize = 256;

/// The programs of the runs going on in this process: their orphans are
/// theirs, but they are not each other's.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`): every
/// orphan among its descendants is reparented to it rather than to init, so
/// that a hook's descendant that double-forks or calls `setsid` stays
/// visible to [`run`](crate::run) and is killed with the rest.
///
/// The binary calls it at start. A long-lived program that embeds the
/// library decides: once set, it becomes the parent of every orphan of its
/// descendants (of any child, not only hooks) and must reap them (`run`
/// reaps those it attributes to a hook; a leftover left running under
/// "leave" becomes its zombie when it exits). The flag is not inherited by
/// children and lasts until the process exits.
///
/// # Errors
///
/// The `prctl` error (only on kernels before 3.4).
pub fn become_subreaper() -> io::Result<()> {
    Ok(rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?)
}

/// Returns true if and only if this process is a child subreaper.
pub fn is_subreaper() -> bool {
    rustix::process::child_subreaper().is_ok_and(|p| p.is_some())
}

/// One process still running when the program ended: its pid and command
/// line (arguments joined by spaces, `[comm]` when it has none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Process {
    /// Its pid.
    pub pid: u32,
    /// Its command line, cut at 256 bytes.
    pub cmdline: String,
}

/// One line of `/proc/<pid>/stat`, the fields we need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    pid: u32,
    state: u8,
    ppid: u32,
    pgrp: u32,
    /// Start time in clock ticks after boot: with the pid, names the
    /// process (a recycled pid has a later one).
    start: u64,
}

impl Stat {
    fn alive(&self) -> bool {
        !matches!(self.state, b'Z' | b'X' | b'x')
    }

    fn stopped(&self) -> bool {
        matches!(self.state, b'T' | b't')
    }
}

/// The processes of one run, found from its program.
#[derive(Debug)]
pub(crate) struct Tree {
    program: u32,
    /// The program's start time; an orphan that started earlier is not ours.
    since: u64,
    me: u32,
    /// We are a subreaper: our children other than the programs include
    /// the orphans of the trees.
    adopts: bool,
}

/// Held while a program is spawned and until its pid is registered: a scan
/// of another run cannot see it unregistered and take it for an orphan.
/// Only a subreaper's scans look for orphans, so only a subreaper takes the
/// lock: other programs spawn side by side.
pub(crate) struct Spawning(Option<std::sync::MutexGuard<'static, Vec<u32>>>);

impl std::fmt::Debug for Spawning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spawning")
    }
}

/// Takes the registration lock for a spawn, as a subreaper.
pub(crate) fn spawning() -> Spawning {
    Spawning(is_subreaper().then(|| RUNNING.lock().unwrap_or_else(PoisonError::into_inner)))
}

impl Tree {
    /// The tree of `program`, just spawned under `spawning` (unreaped, so
    /// its pid is its own): registered as running until dropped.
    pub(crate) fn new(program: Pid, spawning: Spawning) -> Tree {
        let pid = program.as_raw_nonzero().get().unsigned_abs();
        match spawning.0 {
            Some(mut running) => running.push(pid),
            None => RUNNING.lock().unwrap_or_else(PoisonError::into_inner).push(pid),
        }
        let since = read_stat(pid).map_or(0, |s| s.start);
        let me = rustix::process::getpid().as_raw_nonzero().get().unsigned_abs();
        Tree { program: pid, since, me, adopts: is_subreaper() }
    }

    /// The members among `procs` (zombies included), the program counted
    /// only while `program_alive` (unreaped).
    fn members<'p>(&self, procs: &'p [Stat], program_alive: bool) -> Vec<&'p Stat> {
        let running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let root = |p: &Stat| {
            if p.pid == self.program {
                return program_alive;
            }
            p.pgrp == self.program
                || (self.adopts
                    && p.ppid == self.me
                    && p.start >= self.since
                    && !running.contains(&p.pid))
        };
        let mut ours: BTreeSet<u32> =
            procs.iter().filter(|p| root(p)).map(|p| p.pid).filter(|&p| p != self.me).collect();
        let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for p in procs {
            children.entry(p.ppid).or_default().push(p.pid);
        }
        let mut queue: Vec<u32> = ours.iter().copied().collect();
        while let Some(parent) = queue.pop() {
            for &child in children.get(&parent).into_iter().flatten() {
                if child != self.me && ours.insert(child) {
                    queue.push(child);
                }
            }
        }
        procs.iter().filter(|p| ours.contains(&p.pid)).collect()
    }

    /// Reaps the zombies among `members` that are our children (orphans
    /// reparented to us), except the program, which its `Child` reaps.
    fn reap(&self, members: &[&Stat]) {
        for p in members.iter().filter(|p| !p.alive() && p.ppid == self.me) {
            if p.pid == self.program {
                continue;
            }
            if let Some(pid) = Pid::from_raw(p.pid as i32) {
                let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
            }
        }
    }

    /// The live members now, zombies of ours reaped on the way.
    fn live(&self, program_alive: bool) -> Vec<Stat> {
        let procs = scan();
        let members = self.members(&procs, program_alive);
        self.reap(&members);
        members.into_iter().filter(|p| p.alive()).copied().collect()
    }

    /// Sends `signal` to every live member; returns their pids.
    pub(crate) fn signal_all(&self, signal: Signal, program_alive: bool) -> Vec<u32> {
        let live = self.live(program_alive);
        live.iter().filter(|p| send(p, signal)).map(|p| p.pid).collect()
    }

    /// Freezes the whole tree (SIGSTOP to each member, again until a scan
    /// finds every member stopped and none new, so a forking process cannot
    /// outrun it), then SIGKILLs every frozen process and waits, bounded,
    /// until they are gone. Returns the pids killed.
    pub(crate) fn kill_all(&self, program_alive: bool) -> Vec<u32> {
        let until = Instant::now() + FREEZE_WITHIN;
        let mut frozen: BTreeMap<u32, Stat> = BTreeMap::new();
        loop {
            let live = self.live(program_alive);
            let fresh: Vec<&Stat> = live.iter().filter(|p| !frozen.contains_key(&p.pid)).collect();
            let settling = live.iter().any(|p| frozen.contains_key(&p.pid) && !p.stopped());
            if fresh.is_empty() && !settling {
                break;
            }
            // The program first: a forking loop stops forking at once.
            let (program, others): (Vec<&Stat>, Vec<&Stat>) =
                fresh.into_iter().partition(|p| p.pid == self.program);
            for p in program.into_iter().chain(others) {
                if send(p, Signal::STOP) {
                    frozen.insert(p.pid, *p);
                }
            }
            if Instant::now() >= until {
                log::warn!(
                    "the processes of pid {} did not all stop within {FREEZE_WITHIN:?}",
                    self.program
                );
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        let killed: Vec<u32> =
            frozen.values().filter(|p| send(p, Signal::KILL)).map(|p| p.pid).collect();
        let gone_by = Instant::now() + GONE_WITHIN;
        loop {
            let live = self.live(program_alive);
            if live.is_empty() {
                break;
            }
            if Instant::now() >= gone_by {
                log::warn!(
                    "{} process(es) of pid {} still alive {GONE_WITHIN:?} after SIGKILL",
                    live.len(),
                    self.program
                );
                // Whatever appeared after the freeze: kill it too.
                for p in &live {
                    send(p, Signal::KILL);
                }
                break;
            }
            thread::sleep(Duration::from_millis(2));
        }
        killed
    }

    /// The members still alive after the program was reaped, with their
    /// command lines: how many, and the first [`LISTED`].
    pub(crate) fn survivors(&self) -> (usize, Vec<Process>) {
        if self.nothing_left() {
            return (0, Vec::new());
        }
        let live = self.live(false);
        let listed =
            live.iter().take(LISTED).map(|p| Process { pid: p.pid, cmdline: cmdline(p.pid) });
        (live.len(), listed.collect())
    }
}

impl Tree {
    /// After the program was reaped: true when no member can be left, told
    /// without a scan of `/proc` (the common case, and the scan costs
    /// hundreds of system calls). Every member descends from a root (see
    /// the module doc): the program's process group is empty (`kill(-pgid,
    /// 0)` says ESRCH, and while a zombie is in it, it is not), and, as a
    /// subreaper, this process has no child that is not the program of a
    /// run going on here. Any doubt answers false, and the scan decides.
    fn nothing_left(&self) -> bool {
        let Some(group) = Pid::from_raw(self.program as i32) else { return false };
        if rustix::process::test_kill_process_group(group) != Err(Errno::SRCH) {
            return false;
        }
        !self.adopts || self.adopted_none()
    }

    /// True when every child of every thread of this process is the program
    /// of a run going on here (`/proc/self/task/*/children`).
    fn adopted_none(&self) -> bool {
        let running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let Ok(tasks) = fs::read_dir("/proc/self/task") else { return false };
        for task in tasks {
            let Ok(task) = task else { return false };
            let Ok(children) = fs::read_to_string(task.path().join("children")) else {
                return false;
            };
            let ours = |pid: &str| pid.parse::<u32>().is_ok_and(|pid| running.contains(&pid));
            if !children.split_whitespace().all(ours) {
                return false;
            }
        }
        true
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = running.iter().position(|&p| p == self.program) {
            running.swap_remove(at);
        }
    }
}

/// Sends `signal` to `p` if its pid still names it: by pidfd, after
/// checking the start time; `kill` on kernels without pidfds. Returns true
/// if it was sent.
fn send(p: &Stat, signal: Signal) -> bool {
    let Some(pid) = Pid::from_raw(p.pid as i32) else { return false };
    if p.pid <= 1 {
        return false;
    }
    match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => {
            // The pidfd pins the process: if the start time still matches,
            // the signal reaches the one scanned.
            if read_stat(p.pid).is_none_or(|now| now.start != p.start) {
                return false;
            }
            rustix::process::pidfd_send_signal(&fd, signal).is_ok()
        }
        Err(Errno::NOSYS) => rustix::process::kill_process(pid, signal).is_ok(),
        Err(_) => false,
    }
}

/// Every process `/proc` shows.
fn scan() -> Vec<Stat> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::str::from_utf8(e.file_name().as_bytes()).ok()?.parse::<u32>().ok())
        .filter_map(read_stat)
        .collect()
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses `/proc/<pid>/stat`: "pid (comm) state ppid pgrp session tty
/// tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
/// priority nice threads itrealvalue starttime ...". comm may hold
/// anything, so the fields after it are split after its last ')'.
fn parse_stat(stat: &[u8]) -> Option<Stat> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let pid = std::str::from_utf8(stat.get(..open)?).ok()?.trim().parse().ok()?;
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let state = *fields.first()?.as_bytes().first()?;
    let number = |i: usize| fields.get(i)?.parse().ok();
    Some(Stat {
        pid,
        state,
        ppid: number(1)?,
        pgrp: number(2)?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// The command line of `pid`, arguments joined by spaces; `[comm]` for a
/// process without one (a kernel thread, or one that exited meanwhile).
fn cmdline(pid: u32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut words: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    if words.is_empty() {
        let comm = fs::read(format!("/proc/{pid}/comm")).unwrap_or_default();
        words.push(format!("[{}]", String::from_utf8_lossy(&comm).trim_end()));
    }
    let mut line = words.join(" ");
    if line.len() > CMDLINE {
        let mut cut = CMDLINE;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: u32, state: u8, ppid: u32, pgrp: u32, start: u64) -> Stat {
        Stat { pid, state, ppid, pgrp, start }
    }

    #[test]
    fn stat_lines_are_split_after_the_last_parenthesis() {
        let tail = "0 0 0 0 0 0 0 0 0 0 0 20 0 1 0 777 1000";
        let line = format!("43 (a) b) 7 (c) R 42 41 41 {tail}");
        assert_eq!(parse_stat(line.as_bytes()), Some(stat(43, b'R', 42, 41, 777)));
        let zombie = format!("44 (sh) Z 42 42 42 {tail}");
        assert!(!parse_stat(zombie.as_bytes()).expect("parsed").alive(), "zombies are not alive");
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(b"45 (sh) S 1 2"), None, "too short");
    }

    #[test]
    fn this_process_parses_and_has_a_start_time() {
        let me = rustix::process::getpid().as_raw_nonzero().get().unsigned_abs();
        let own = read_stat(me).expect("own stat");
        assert_eq!(own.pid, me);
        assert!(own.start > 0 && own.alive());
        assert!(scan().iter().any(|p| p.pid == me));
        assert!(!cmdline(me).is_empty());
    }

    #[test]
    fn members_follow_the_group_the_orphans_and_the_parent_links() {
        let tree = Tree { program: 100, since: 50, me: 10, adopts: true };
        let procs = [
            stat(10, b'S', 1, 10, 1),      // us
            stat(100, b'S', 10, 100, 50),  // the program
            stat(101, b'S', 100, 100, 51), // its child
            stat(102, b'S', 1, 100, 52),   // in its group, orphaned to init
            stat(103, b'S', 10, 103, 60),  // an orphan reparented to us
            stat(104, b'S', 103, 104, 61), // its child, in a new session
            stat(105, b'S', 10, 105, 40),  // our child from before the program
            stat(106, b'S', 1, 106, 70),   // a stranger
            stat(107, b'S', 105, 105, 71), // a child of the older one
        ];
        let pids =
            |alive| -> Vec<u32> { tree.members(&procs, alive).iter().map(|p| p.pid).collect() };
        assert_eq!(pids(true), [100, 101, 102, 103, 104]);
        assert_eq!(pids(false), [101, 102, 103, 104], "the reaped program's pid is not followed");
        let plain = Tree { adopts: false, ..tree };
        let pids: Vec<u32> = plain.members(&procs, true).iter().map(|p| p.pid).collect();
        assert_eq!(pids, [100, 101, 102], "without the subreaper, our children are not orphans");
    }

    #[test]
    fn init_and_this_process_are_never_signalled() {
        assert!(!send(&stat(1, b'S', 0, 1, 1), Signal::CONT));
    }
}
