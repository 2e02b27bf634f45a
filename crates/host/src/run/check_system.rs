//! What `virt-hook check` asks of the running system, read-only: which
//! libvirt daemons run and since when (`/proc`), and the SELinux label of
//! hook files (`/sys/fs/selinux`, the `security.selinux` attribute).

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Where the system is read from: `/proc` and `/sys/fs/selinux`, or a
/// fake tree in tests.
#[derive(Debug, Clone)]
pub(crate) struct System {
    pub(crate) proc: PathBuf,
    pub(crate) selinux: PathBuf,
    /// The hooks directory of the system's daemons: only hooks there are
    /// compared with the daemons' start.
    pub(crate) daemon_hooks: PathBuf,
}

impl Default for System {
    fn default() -> System {
        System {
            proc: PathBuf::from("/proc"),
            selinux: PathBuf::from("/sys/fs/selinux"),
            daemon_hooks: PathBuf::from(crate::DEFAULT_HOOKS_DIR),
        }
    }
}

/// A running libvirt daemon.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Daemon {
    pub(crate) name: String,
    pub(crate) pid: u32,
    /// When it started.
    pub(crate) started: SystemTime,
}

/// The daemons that call the hook of `driver` (the monolithic `libvirtd`
/// and the modular daemon of the driver; every daemon calls `daemon`).
fn daemons_of(driver: &str) -> &'static [&'static str] {
    match driver {
        "daemon" => {
            &["libvirtd", "virtqemud", "virtlxcd", "virtnetworkd", "virtxend", "virtbhyved"]
        }
        "qemu" => &["libvirtd", "virtqemud"],
        "lxc" => &["libvirtd", "virtlxcd"],
        "network" => &["libvirtd", "virtnetworkd"],
        "libxl" => &["libvirtd", "virtxend"],
        "bhyve" => &["libvirtd", "virtbhyved"],
        _ => &["libvirtd"],
    }
}

impl System {
    /// Whether `hooks` is the system daemons' hooks directory.
    pub(crate) fn is_daemon_hooks(&self, hooks: &Path) -> bool {
        match (fs::metadata(hooks), fs::metadata(&self.daemon_hooks)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }

    /// Every running libvirt daemon found in `/proc`.
    pub(crate) fn daemons(&self) -> Vec<Daemon> {
        let Ok(entries) = fs::read_dir(&self.proc) else { return Vec::new() };
        let Some(boot) = self.boot_time() else { return Vec::new() };
        let ticks = rustix::param::clock_ticks_per_second();
        let mut out = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(comm) = fs::read_to_string(entry.path().join("comm")) else { continue };
            let name = comm.trim_end();
            if !daemons_of("daemon").contains(&name) {
                continue;
            }
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else { continue };
            let Some(since_boot) = start_ticks(&stat) else { continue };
            let started = boot + Duration::from_secs_f64(since_boot as f64 / ticks.max(1) as f64);
            out.push(Daemon { name: name.to_owned(), pid, started });
        }
        out.sort_by_key(|d| d.pid);
        out
    }

    fn boot_time(&self) -> Option<SystemTime> {
        let stat = fs::read_to_string(self.proc.join("stat")).ok()?;
        let secs = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
        Some(UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// The problem with the hook `path` of `driver` if a daemon that calls
    /// it started before it was made: libvirt only looks for hooks when it
    /// starts or reloads.
    pub(crate) fn installed_after_start(
        &self,
        daemons: &[Daemon],
        driver: &str,
        path: &Path,
    ) -> Option<String> {
        // The link or file itself: when it was made.
        let meta = fs::symlink_metadata(path).ok()?;
        let changed = UNIX_EPOCH
            + Duration::new(
                u64::try_from(meta.ctime()).ok()?,
                u32::try_from(meta.ctime_nsec()).ok()?,
            );
        let daemon = daemons
            .iter()
            .filter(|d| daemons_of(driver).contains(&d.name.as_str()))
            .find(|d| d.started < changed)?;
        Some(format!(
            "made after {} (pid {}) started: libvirt only looks for hooks when it starts or \
             reloads, so it does not call this one yet; reload the daemon (systemctl reload {})",
            daemon.name, daemon.pid, daemon.name
        ))
    }

    /// Whether SELinux is enabled.
    pub(crate) fn selinux(&self) -> bool {
        self.selinux.is_dir()
    }
}

/// The start time of a process in clock ticks after boot: field 22 of
/// `/proc/<pid>/stat`, counted after the command name's closing `)`.
fn start_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after ')'; field 22 is 19 further.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The warning about the SELinux label of an executable hook file, if its
/// type is not one a daemon may run: types made for hooks, `bin_t`, or
/// libvirt's own executables.
pub(crate) fn selinux_label(path: &Path) -> Option<String> {
    let mut buf = vec![0u8; 256];
    let label = match rustix::fs::getxattr(path, "security.selinux", &mut buf) {
        Ok(len) => String::from_utf8_lossy(&buf[..len]).trim_end_matches('\0').to_owned(),
        Err(err) => return Some(format!("has no readable SELinux label: {err}")),
    };
    label_warning(&label)
}

fn label_warning(label: &str) -> Option<String> {
    let ty = label.split(':').nth(2).unwrap_or("");
    let fits = ty == "bin_t"
        || ty.ends_with("_hook_t")
        || ty.ends_with("_hook_exec_t")
        || ty == "virtd_exec_t"
        || ty == "virt_etc_t";
    if fits {
        return None;
    }
    Some(format!(
        "has the SELinux label {label}: the daemon may be denied running it; restore the \
         default label (restorecon -v <path>) or give it an executable type such as bin_t"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fake_proc(daemons: &[(u32, &str, u64)], btime: u64) -> tempfile::TempDir {
        let proc = tempfile::tempdir().unwrap();
        fs::write(proc.path().join("stat"), format!("cpu 1 2 3\nbtime {btime}\nprocesses 9\n"))
            .unwrap();
        for (pid, name, start) in daemons {
            let dir = proc.path().join(pid.to_string());
            fs::create_dir(&dir).unwrap();
            fs::write(dir.join("comm"), format!("{name}\n")).unwrap();
            // A command name with spaces and parentheses, as the kernel
            // allows: the fields count from the last ')'.
            fs::write(
                dir.join("stat"),
                format!("{pid} ({name} (x) y) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 1 1"),
            )
            .unwrap();
        }
        fs::create_dir(proc.path().join("self")).unwrap();
        proc
    }

    #[test]
    fn daemons_are_found_with_their_start_time() {
        let ticks = rustix::param::clock_ticks_per_second();
        let proc = fake_proc(&[(10, "virtqemud", 5 * ticks), (11, "bash", 0)], 1_000);
        let system = System {
            proc: proc.path().to_owned(),
            selinux: PathBuf::from("/nowhere"),
            daemon_hooks: proc.path().to_owned(),
        };
        assert!(system.is_daemon_hooks(proc.path()));
        assert!(!system.is_daemon_hooks(Path::new("/")));
        let daemons = system.daemons();
        assert_eq!(
            daemons,
            vec![Daemon {
                name: "virtqemud".to_owned(),
                pid: 10,
                started: UNIX_EPOCH + Duration::from_secs(1_005)
            }]
        );
        // A hook made now, after a daemon that started in 1970: reported
        // for qemu and daemon, not for lxc (virtqemud never calls it).
        let hook = proc.path().join("qemu");
        fs::write(&hook, "").unwrap();
        let warning = system.installed_after_start(&daemons, "qemu", &hook).unwrap();
        assert!(warning.contains("virtqemud (pid 10)") && warning.contains("reload"), "{warning}");
        assert!(system.installed_after_start(&daemons, "daemon", &hook).is_some());
        assert!(system.installed_after_start(&daemons, "lxc", &hook).is_none());
        // A daemon started after the hook was made: nothing to say.
        let later =
            Daemon { started: SystemTime::now() + Duration::from_secs(60), ..daemons[0].clone() };
        assert!(system.installed_after_start(&[later], "qemu", &hook).is_none());
    }

    #[test]
    fn labels_a_daemon_may_run_pass_and_others_are_named() {
        assert_eq!(label_warning("system_u:object_r:bin_t:s0"), None);
        assert_eq!(label_warning("system_u:object_r:virt_hook_exec_t:s0"), None);
        let w = label_warning("unconfined_u:object_r:user_home_t:s0").unwrap();
        assert!(w.contains("user_home_t") && w.contains("restorecon"), "{w}");
    }
}
