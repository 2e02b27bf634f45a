//! Every link and directory of a script's chain is judged (issue 11): an
//! untrusted user who owns a link of the chain, or the directory holding
//! one, could swap it between the check and the exec.
//!
//! The untrusted user is `nobody` (uid 65534), made by `chown`, which needs
//! root: without root these tests print why and pass.

use std::{
    fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use virt_hooks::{Layout, RunError, SkipReason};

use crate::util::{Hooks, qemu};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    let probe = tempfile::tempdir().expect("tempdir");
    let root = std::os::unix::fs::MetadataExt::uid(&fs::metadata(probe.path()).expect("meta")) == 0;
    if !root {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: making files owned by uid {NOBODY} needs root");
        }
    }
    root
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mkdir(path: &Path, mode: u32) {
    fs::create_dir_all(path).expect("mkdir");
    chmod(path, mode);
}

/// Makes `link` -> `target`, owned by `uid`.
fn link_as(target: &Path, link: &Path, uid: u32) {
    symlink(target, link).expect("symlink");
    std::os::unix::fs::lchown(link, Some(uid), Some(uid)).expect("lchown");
}

/// The places of the chain, outside the hooks directory:
/// `<e>/safe/real` (root's script that exits 0), `<e>/sticky` (mode 1777)
/// and `<e>/open` (mode 0755), where links go, and `<e>/evil` (nobody's
/// script that leaves a marker).
struct Elsewhere {
    dir: tempfile::TempDir,
}

impl Elsewhere {
    fn new() -> Elsewhere {
        let dir = tempfile::tempdir().expect("tempdir");
        chmod(dir.path(), 0o755);
        let e = Elsewhere { dir };
        mkdir(&e.path().join("safe"), 0o755);
        mkdir(&e.path().join("sticky"), 0o1777);
        mkdir(&e.path().join("open"), 0o755);
        fs::write(e.safe(), "#!/bin/sh\nexit 0\n").expect("write");
        chmod(&e.safe(), 0o755);
        fs::write(e.evil(), format!("#!/bin/sh\necho won >> '{}'\n", e.marker().display()))
            .expect("write");
        chmod(&e.evil(), 0o755);
        std::os::unix::fs::chown(e.evil(), Some(NOBODY), Some(NOBODY)).expect("chown");
        e
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn safe(&self) -> PathBuf {
        self.path().join("safe/real")
    }

    fn evil(&self) -> PathBuf {
        self.path().join("sticky/evil")
    }

    fn marker(&self) -> PathBuf {
        self.path().join("won")
    }

    fn wins(&self) -> usize {
        fs::read_to_string(self.marker()).map_or(0, |s| s.lines().count())
    }
}

/// `qemu.d/10-x` (root's link) -> `<e>/<holder>/l2` (a link owned by
/// `uid`) -> `target`.
fn chain(
    hooks: &Hooks,
    e: &Elsewhere,
    holder: &str,
    uid: u32,
    target: &Path,
) -> (PathBuf, PathBuf) {
    hooks.dir("qemu.d");
    let l2 = e.path().join(holder).join("l2");
    link_as(target, &l2, uid);
    let script = hooks.path().join("qemu.d/10-x");
    symlink(&l2, &script).expect("symlink");
    (script, l2)
}

/// The reason the runner gives for refusing `script` (start begin aborts).
fn refusal(hooks: &Hooks, script: &Path) -> String {
    let err = hooks.runner().run(&qemu("vm1", "start", "begin", "-")).expect_err("refused");
    let RunError::Refused { message, .. } = err else { panic!("not refused: {err}") };
    let prefix =
        format!("Hook script execution failed: hook script {} refused: ", script.display());
    message.strip_prefix(&prefix).unwrap_or_else(|| panic!("{message}")).to_owned()
}

#[test]
fn a_link_owned_by_nobody_in_a_sticky_directory_is_refused_though_it_points_to_a_safe_file() {
    if !is_root() {
        return;
    }
    let (hooks, e) = (Hooks::new(), Elsewhere::new());
    let (script, _) = chain(&hooks, &e, "sticky", NOBODY, &e.safe());
    assert_eq!(
        refusal(&hooks, &script),
        format!(
            "{} is writable by group and others (mode 1777)",
            e.path().join("sticky").display()
        )
    );
}

#[test]
fn a_link_owned_by_nobody_is_refused_wherever_it_is() {
    if !is_root() {
        return;
    }
    let (hooks, e) = (Hooks::new(), Elsewhere::new());
    let (script, l2) = chain(&hooks, &e, "open", NOBODY, &e.safe());
    assert_eq!(
        refusal(&hooks, &script),
        format!("{} is a symbolic link owned by uid 65534, not root or uid 0", l2.display())
    );
}

#[test]
fn a_roots_link_in_a_sticky_directory_is_refused() {
    let (hooks, e) = (Hooks::new(), Elsewhere { dir: tempfile::tempdir().expect("tmp") });
    chmod(e.path(), 0o755);
    mkdir(&e.path().join("sticky"), 0o1777);
    mkdir(&e.path().join("safe"), 0o755);
    fs::write(e.safe(), "#!/bin/sh\nexit 0\n").expect("write");
    chmod(&e.safe(), 0o755);
    let owner = std::os::unix::fs::MetadataExt::uid(&fs::metadata(e.path()).expect("meta"));
    let (script, _) = chain(&hooks, &e, "sticky", owner, &e.safe());
    assert!(
        refusal(&hooks, &script).ends_with("sticky is writable by group and others (mode 1777)")
    );
}

#[test]
fn the_link_already_swapped_to_nobodys_script_never_runs() {
    if !is_root() {
        return;
    }
    let (hooks, e) = (Hooks::new(), Elsewhere::new());
    let (script, _) = chain(&hooks, &e, "sticky", NOBODY, &e.evil());
    assert!(refusal(&hooks, &script).contains("(mode 1777)"));
    assert_eq!(e.wins(), 0);
}

#[test]
fn a_directory_link_owned_by_nobody_refuses_the_scripts_below_it() {
    if !is_root() {
        return;
    }
    let (hooks, e) = (Hooks::new(), Elsewhere::new());
    // qemu.d/vm1 -> <e>/open/vm1, a directory nobody owns.
    let theirs = e.path().join("open/vm1");
    mkdir(&theirs.join("start"), 0o755);
    fs::write(theirs.join("start/begin"), "#!/bin/sh\nexit 0\n").expect("write");
    chmod(&theirs.join("start/begin"), 0o755);
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).expect("chown");
    hooks.dir("qemu.d");
    symlink(&theirs, hooks.path().join("qemu.d/vm1")).expect("symlink");
    let mut builder = hooks.builder();
    builder.layout(Layout::PerObject);
    let err = builder.build().expect("build").run(&qemu("vm1", "start", "begin", "-"));
    let Err(RunError::Refused { message, .. }) = err else { panic!("{err:?}") };
    assert!(
        message
            .ends_with(&format!("{} is owned by uid 65534, not root or uid 0", theirs.display())),
        "{message}"
    );
}

#[test]
fn check_reports_an_untrusted_link_exactly_as_the_runner_refuses_it() {
    if !is_root() {
        return;
    }
    let (hooks, e) = (Hooks::new(), Elsewhere::new());
    let (script, _) = chain(&hooks, &e, "open", NOBODY, &e.safe());
    let runner = hooks.runner();
    let report = runner.check();
    let qemu_check = report.drivers.iter().find(|d| d.driver == "qemu").expect("qemu");
    let entry = qemu_check.drop_ins.iter().find(|f| f.path == script).expect("listed");
    assert!(!entry.runs);
    let Some(SkipReason::Refused(reason)) = &entry.skipped else { panic!("{entry:?}") };
    assert_eq!(*reason, refusal(&hooks, &script));
    assert!(report.problems().iter().any(|p| p.ends_with(reason.as_str())), "{report:?}");
    let plan = runner.plan(&qemu("vm1", "start", "begin", "-")).expect("plan");
    assert!(plan.scripts.is_empty());
    assert_eq!(plan.skipped[0].reason, SkipReason::Refused(reason.clone()));
}

#[test]
fn a_chain_of_40_links_runs_like_the_kernels() {
    let hooks = Hooks::new();
    let real = hooks.script("real", "echo ran");
    hooks.dir("links");
    let mut target = real;
    for i in 0..39 {
        let link = hooks.path().join(format!("links/{i}"));
        symlink(&target, &link).expect("symlink");
        target = link;
    }
    // qemu.d/a -> links/38 -> ... -> links/0 -> real: 40 links, the most
    // the kernel follows (the walk's refusal of a 41st is a unit test: the
    // kernel's ELOOP makes discovery skip such a script before).
    hooks.dir("qemu.d");
    symlink(&target, hooks.path().join("qemu.d/a")).expect("symlink");
    let outcome = hooks.runner().run(&qemu("vm1", "release", "end", "-")).expect("run");
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    assert_eq!(outcome.scripts[0].stdout, b"ran\n");
}

#[test]
fn relative_links_within_the_hooks_directory_run() {
    let hooks = Hooks::new();
    hooks.script("common/log", "echo common");
    hooks.dir("qemu.d/vm1/start");
    symlink("../../../common/log", hooks.path().join("qemu.d/vm1/start/begin")).expect("ln");
    symlink("../common/log", hooks.path().join("qemu.d/10-log")).expect("ln");
    let mut builder = hooks.builder();
    builder.layout(Layout::Both);
    let outcome = builder.build().expect("build").run(&qemu("vm1", "start", "begin", "-"));
    let outcome = outcome.expect("runs");
    assert_eq!(outcome.scripts.len(), 2);
    assert!(outcome.scripts.iter().all(|s| s.stdout == b"common\n"));
}

/// Swaps `link` between `a` and `b` (each new link owned by `uid`, renamed
/// over the old one) until `stop`.
fn swapper(link: PathBuf, a: PathBuf, b: PathBuf, uid: u32, stop: Arc<AtomicBool>) {
    let tmp = link.with_extension("new");
    let mut flip = false;
    while !stop.load(Ordering::Relaxed) {
        let _ = fs::remove_file(&tmp);
        link_as(if flip { &a } else { &b }, &tmp, uid);
        fs::rename(&tmp, &link).expect("rename");
        flip = !flip;
    }
}

#[test]
fn swapping_nobodys_link_under_the_runner_never_wins() {
    if !is_root() {
        return;
    }
    let (hooks, e) = (Hooks::new(), Elsewhere::new());
    let (_, l2) = chain(&hooks, &e, "sticky", NOBODY, &e.safe());
    let stop = Arc::new(AtomicBool::new(false));
    let swap = {
        let (l2, a, b, stop) = (l2.clone(), e.safe(), e.evil(), Arc::clone(&stop));
        std::thread::spawn(move || swapper(l2, a, b, NOBODY, stop))
    };
    let runner = hooks.runner();
    let started = Instant::now();
    let (mut runs, mut refused) = (0, 0);
    while runs < 300 && started.elapsed() < Duration::from_secs(30) {
        runs += 1;
        match runner.run(&qemu("vm1", "start", "begin", "-")) {
            Err(RunError::Refused { outcome, .. }) if outcome.scripts[0].refused.is_some() => {
                refused += 1;
            }
            other => {
                let _ = other;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    swap.join().expect("swapper");
    assert_eq!(e.wins(), 0, "nobody's script ran as root in {} of {runs} runs", e.wins());
    assert_eq!(refused, runs, "every run refused the chain");
    assert!(runs >= 50, "only {runs} runs in 30 s");
}
