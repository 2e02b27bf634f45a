//! The virt-hooks overhead benchmark (issue 5).
//!
//! `cargo bench -p virt-hooks --bench overhead [-- --quick]`
//!
//! Every scenario is a set of paired, interleaved measurements of virt-hooks
//! and a baseline written here with raw system calls, in the same process
//! and the same run: after a warm-up, each iteration runs both, alternating
//! which goes first. The medians and their ratio are printed as a table and
//! written to `<target dir>/virt-hooks-bench.json` (and rendered from that
//! JSON into `<target dir>/virt-hooks-bench.md`). A missed goal never makes
//! the harness fail; only a broken harness (or a broken correctness check,
//! scenario 3) exits non-zero.
//!
//! Private flags (the harness re-executes itself with them):
//! `--child-rss`, `--child-load`, `--child-dlopen`. Public extra flag:
//! `--table FILE.json` prints the markdown table of a JSON file.
#![allow(
    unsafe_code,
    missing_docs,
    unreachable_pub,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::too_many_lines
)]

mod raw;

use std::{
    ffi::CString,
    fs,
    io::Write,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Barrier},
    time::Instant,
};

use raw::{Prepared, Spawner};
use serde_json::{Value, json};
use virt_hooks::{Event, Registry, RegistryBuilder, Runner, RunnerBuilder};

// ---------------------------------------------------------------------------
// Settings

#[derive(Debug, Clone, Copy)]
struct Settings {
    quick: bool,
}

impl Settings {
    /// `full` iterations in a full run, `quick` with `--quick`.
    fn n(self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }
}

const MIB: usize = 1 << 20;
const GIB: usize = 1 << 30;

/// A small but realistic domain definition whose `<name>` is `vm1`.
const SMALL_XML: &str = "<domain type='kvm'>\n  <name>vm1</name>\n  \
<uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\n  <memory unit='KiB'>2097152</memory>\n  \
<currentMemory unit='KiB'>2097152</currentMemory>\n  <vcpu placement='static'>2</vcpu>\n  \
<os>\n    <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>\n    <boot dev='hd'/>\n  </os>\n  \
<features><acpi/><apic/></features>\n  <cpu mode='host-passthrough' check='none'/>\n  \
<clock offset='utc'/>\n  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  \
<devices>\n    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n    \
<disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n      \
<source file='/var/lib/libvirt/images/vm1.qcow2'/>\n      <target dev='vda' bus='virtio'/>\n    \
</disk>\n    <interface type='network'>\n      <mac address='52:54:00:6b:3c:58'/>\n      \
<source network='default'/>\n      <model type='virtio'/>\n    </interface>\n    \
<console type='pty'/>\n  </devices>\n</domain>\n";

// ---------------------------------------------------------------------------
// Results

/// What a goal is applied to.
#[derive(Debug, Clone, Copy)]
enum Goal {
    /// ours / baseline <= x
    RatioLe(f64),
    /// ours / baseline >= x
    RatioGe(f64),
    /// ours <= x (in the row's unit)
    OursLe(f64),
    /// ours >= x (in the row's unit)
    OursGe(f64),
    /// Informational row, no goal.
    Info,
}

impl Goal {
    fn text(self, unit: &str) -> String {
        match self {
            Goal::RatioLe(x) => format!("<= {x:.2}"),
            Goal::RatioGe(x) => format!(">= {x:.2}"),
            Goal::OursLe(x) => format!("<= {x} {unit}"),
            Goal::OursGe(x) => format!(">= {x} {unit}"),
            Goal::Info => "-".to_owned(),
        }
    }

    fn on(self) -> &'static str {
        match self {
            Goal::RatioLe(_) | Goal::RatioGe(_) => "ratio",
            Goal::OursLe(_) | Goal::OursGe(_) => "ours",
            Goal::Info => "none",
        }
    }

    fn met(self, ours: f64, ratio: f64) -> Option<bool> {
        match self {
            Goal::RatioLe(x) => Some(ratio <= x),
            Goal::RatioGe(x) => Some(ratio >= x),
            Goal::OursLe(x) => Some(ours <= x),
            Goal::OursGe(x) => Some(ours >= x),
            Goal::Info => None,
        }
    }
}

#[derive(Debug, Default)]
struct Report {
    rows: Vec<Value>,
    /// A correctness check failed (not a ratio).
    broken: Vec<String>,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        scenario: &str,
        unit: &str,
        ours: f64,
        baseline: f64,
        goal: Goal,
        samples: usize,
        note: &str,
    ) {
        let ratio = ours / baseline;
        let met = goal.met(ours, ratio);
        let row = json!({
            "scenario": scenario,
            "unit": unit,
            "ours": round(ours),
            "baseline": round(baseline),
            "ratio": round(ratio),
            "goal": goal.text(unit),
            "goal_on": goal.on(),
            "met": met,
            "samples": samples,
            "note": note,
        });
        println!(
            "  => {scenario}: ours {} {unit}, baseline {} {unit}, ratio {:.3}, goal {} [{}]",
            fmt_num(ours),
            fmt_num(baseline),
            ratio,
            goal.text(unit),
            match met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "info",
            }
        );
        self.rows.push(row);
    }
}

fn round(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let digits = 4 - (x.abs().max(1e-9).log10().floor() as i32);
    let m = 10f64.powi(digits.max(0));
    (x * m).round() / m
}

fn fmt_num(x: f64) -> String {
    if x.abs() >= 1000.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

// ---------------------------------------------------------------------------
// Statistics and pairing

fn median(v: &[f64]) -> f64 {
    quantile(v, 0.5)
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let pos = q * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

struct Paired {
    ours: Vec<f64>,
    base: Vec<f64>,
}

impl Paired {
    fn show(&self, label_ours: &str, label_base: &str, unit: &str, scale: f64) {
        for (label, v) in [(label_ours, &self.ours), (label_base, &self.base)] {
            println!(
                "    {label:<28} median {:>10} {unit}  (p10 {} p90 {}, n={})",
                fmt_num(median(v) * scale),
                fmt_num(quantile(v, 0.1) * scale),
                fmt_num(quantile(v, 0.9) * scale),
                v.len()
            );
        }
        let ratios: Vec<f64> = self.ours.iter().zip(&self.base).map(|(a, b)| a / b).collect();
        println!("    median of per-pair ratios     {:.3}", median(&ratios));
    }
}

/// Runs `warm` unmeasured pairs, then `n` measured pairs, alternating which
/// of the two goes first. Each closure returns its own measurement (seconds
/// or any unit), so it can exclude its setup.
fn paired(
    warm: usize,
    n: usize,
    mut ours: impl FnMut() -> f64,
    mut base: impl FnMut() -> f64,
) -> Paired {
    for _ in 0..warm {
        ours();
        base();
    }
    let mut p = Paired { ours: Vec::with_capacity(n), base: Vec::with_capacity(n) };
    for i in 0..n {
        if i % 2 == 0 {
            p.ours.push(ours());
            p.base.push(base());
        } else {
            p.base.push(base());
            p.ours.push(ours());
        }
    }
    p
}

fn timed(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------------------
// Environment: target dir, plugins, trivial hook, runner

/// Works whether `RunnerBuilder::build` returns a `Runner` or a `Result`.
trait IntoRunner {
    fn into_runner(self) -> Runner;
}

impl IntoRunner for Runner {
    fn into_runner(self) -> Runner {
        self
    }
}

impl<E: std::fmt::Debug> IntoRunner for Result<Runner, E> {
    fn into_runner(self) -> Runner {
        self.expect("cannot build the runner")
    }
}

/// The workspace root: two levels above the package (`CARGO_MANIFEST_DIR`,
/// which cargo sets when it runs a bench; the compile-time value otherwise).
fn workspace_root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.join("../..").canonicalize().unwrap()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// `CARGO_TARGET_DIR` (made absolute against the workspace root), else
/// `cargo metadata`'s `target_directory`.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() { dir } else { workspace_root().join(dir) };
    }
    let out = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run cargo metadata");
    assert!(out.status.success(), "cargo metadata failed");
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata output");
    PathBuf::from(meta["target_directory"].as_str().expect("target_directory"))
}

/// Builds the release plugins and `virt-hook`; returns `<target>/release`.
fn build_release(target: &Path) -> PathBuf {
    println!("building the release plugins and virt-hook (nested cargo)...");
    let t = Instant::now();
    let status = Command::new(cargo())
        .args([
            "build",
            "--release",
            "-p",
            "virt-hook",
            "-p",
            "virt-hooks-driver-daemon",
            "-p",
            "virt-hooks-driver-qemu",
            "-p",
            "virt-hooks-driver-lxc",
        ])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(workspace_root())
        .status()
        .expect("cannot run cargo build");
    assert!(status.success(), "the nested release build failed");
    println!("  done in {:.1} s", t.elapsed().as_secs_f64());
    target.join("release")
}

const PLUGINS: [&str; 3] = [
    "libvirt_hooks_driver_daemon.so",
    "libvirt_hooks_driver_lxc.so",
    "libvirt_hooks_driver_qemu.so",
];

/// The plugin directory: `<target>/release` itself, as built. (It must be
/// the executable's directory of `virt-hook` too: a copy elsewhere would make
/// `virt-hook --plugin-dir COPY` load every plugin twice, once from the copy
/// and once from its own directory, the second time only to refuse it.)
fn plugin_dir(release: &Path) -> PathBuf {
    for p in PLUGINS {
        assert!(release.join(p).is_file(), "{p} was not built");
    }
    release.to_owned()
}

fn registry(plugins: &Path) -> Registry {
    let mut b = RegistryBuilder::new();
    b.search().dir(plugins).only_explicit();
    let r = b.build();
    assert!(r.errors().is_empty(), "plugin errors: {:?}", r.errors());
    assert_eq!(r.drivers().len(), 3, "expected three drivers");
    r
}

fn runner(registry: &Arc<Registry>, hooks: &Path) -> Runner {
    RunnerBuilder::new(Arc::clone(registry)).hooks_dir(hooks).build().into_runner()
}

/// Compiles `int main(void){return 0;}`, static if the toolchain can.
fn trivial_hook(work: &Path) -> (PathBuf, &'static str) {
    let src = work.join("true.c");
    fs::write(&src, "int main(void){return 0;}\n").unwrap();
    let exe = work.join("true-hook");
    for (flags, kind) in [(&["-O2", "-static"][..], "static C"), (&["-O2"][..], "dynamic C")] {
        let ok = Command::new("cc")
            .args(flags)
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
            return (exe, kind);
        }
    }
    panic!("cannot compile the trivial hook with cc");
}

fn new_dir(path: &Path) -> PathBuf {
    let _ = fs::remove_dir_all(path);
    fs::create_dir_all(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    path.to_owned()
}

fn install(src: &Path, dst: &Path) {
    fs::copy(src, dst).unwrap();
    fs::set_permissions(dst, fs::Permissions::from_mode(0o755)).unwrap();
}

fn write_script(dst: &Path, text: &str) {
    fs::write(dst, text).unwrap();
    fs::set_permissions(dst, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The hook environment the runner builds: `LC_ALL=C`, then the
/// pass-through variables the host has.
fn hook_env() -> Vec<CString> {
    let mut env = vec![CString::new("LC_ALL=C").unwrap()];
    for name in virt_hooks::PASS_THROUGH_ENV {
        if let Some(v) = std::env::var_os(name) {
            let mut e = format!("{name}=").into_bytes();
            e.extend_from_slice(v.as_bytes());
            env.push(CString::new(e).unwrap());
        }
    }
    env
}

fn hook_argv(path: &Path, args: [&str; 4]) -> Vec<CString> {
    let mut v = vec![CString::new(path.as_os_str().as_bytes()).unwrap()];
    v.extend(args.iter().map(|a| CString::new(*a).unwrap()));
    v
}

fn run_ok(runner: &Runner, event: &Event<'_>, scripts: usize) {
    match runner.run(event) {
        Ok(o) => assert_eq!(o.scripts.len(), scripts, "scripts run"),
        Err(e) => panic!("the event failed: {e}"),
    }
}

struct Ctx {
    s: Settings,
    work: PathBuf,
    release: PathBuf,
    plugins: PathBuf,
    registry: Arc<Registry>,
    hook: PathBuf,
    env: Vec<CString>,
}

// ---------------------------------------------------------------------------
// Scenarios

/// 1. One event, one trivial hook, library vs raw posix_spawn.
fn s1(c: &Ctx, r: &mut Report) {
    println!("\n[1] one event (qemu start begin, small XML), trivial hook as <hooks>/qemu");
    let hooks = new_dir(&c.work.join("s1-hooks"));
    let main = hooks.join("qemu");
    install(&c.hook, &main);
    let runner = runner(&c.registry, &hooks);
    let event = Event::new("qemu", "vm1", "start", "begin", "-").with_input(SMALL_XML.as_bytes());
    run_ok(&runner, &event, 1);
    let raw = Prepared::new(&main, hook_argv(&main, ["vm1", "start", "begin", "-"]), c.env.clone());
    let input = SMALL_XML.as_bytes();
    let p = paired(
        c.s.n(100, 30),
        c.s.n(2000, 300),
        || timed(|| run_ok(&runner, &event, 1)),
        || {
            timed(|| {
                let st = raw.run(Spawner::PosixSpawn, Some(input), None);
                assert_eq!(st, 0);
            })
        },
    );
    p.show("virt-hooks Runner::run", "raw posix_spawn+waitpid", "µs", 1e6);
    r.row(
        "1 one event, trivial hook",
        "µs",
        median(&p.ours) * 1e6,
        median(&p.base) * 1e6,
        Goal::RatioLe(1.10),
        p.ours.len(),
        "baseline: posix_spawn with stdin/stdout/stderr pipes, same argv, env and stdin, poll pump, waitpid",
    );
}

/// Touches every page of `v` (so it is resident).
fn touch(v: &mut [u8]) {
    for i in (0..v.len()).step_by(4096) {
        v[i] = 1;
    }
    std::hint::black_box(&v[..]);
}

fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// A `kB` line of `/proc/self/status`.
fn status_kib(key: &str) -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// 2. The same event with a 16 MiB and a 4 GiB (quick: 1 GiB) ballast.
///
/// Per ballast size two paired sets: virt-hooks vs raw posix_spawn, then
/// fork()+execve vs raw posix_spawn, so that the page-table copy (and the
/// copy-on-write faults a fork leaves the parent) never lands in a
/// virt-hooks sample. The sizes alternate for a few rounds, so a slow
/// drift of the machine hits both.
fn s2(c: &Ctx, r: &mut Report) {
    let big = if c.s.quick { GIB } else { 4 * GIB };
    println!("\n[2] host memory: ballast 16 MiB vs {} GiB (allocated and touched)", big / GIB);
    let hooks = new_dir(&c.work.join("s2-hooks"));
    let main = hooks.join("qemu");
    install(&c.hook, &main);
    let runner = runner(&c.registry, &hooks);
    let event = Event::new("qemu", "vm1", "start", "begin", "-").with_input(SMALL_XML.as_bytes());
    let raw = Prepared::new(&main, hook_argv(&main, ["vm1", "start", "begin", "-"]), c.env.clone());
    let input = SMALL_XML.as_bytes();
    // [size][ours, raw (paired with ours), fork, raw (paired with fork)]
    let mut acc: [[Vec<f64>; 4]; 2] = Default::default();
    let rounds = c.s.n(3, 2);
    for round in 0..rounds {
        for (k, size) in [16 * MIB, big].into_iter().enumerate() {
            let t = Instant::now();
            let mut ballast = vec![0u8; size];
            touch(&mut ballast);
            println!(
                "  round {round}: ballast {} MiB touched in {:.2} s, process RSS {} MiB",
                size / MIB,
                t.elapsed().as_secs_f64(),
                rss_kib() / 1024
            );
            // Let the kernel settle after faulting in the ballast (a quick
            // run right after touching 1 GiB saw raw posix_spawn itself 4x
            // slower for a while).
            std::thread::sleep(std::time::Duration::from_millis(300));
            let n_ours = c.s.n(200, 40);
            let n_fork = if k == 0 { c.s.n(100, 30) } else { c.s.n(20, 10) };
            let a = paired(
                30,
                n_ours,
                || timed(|| run_ok(&runner, &event, 1)),
                || timed(|| assert_eq!(raw.run(Spawner::PosixSpawn, Some(input), None), 0)),
            );
            a.show("virt-hooks Runner::run", "raw posix_spawn", "µs", 1e6);
            let b = paired(
                2,
                n_fork,
                || timed(|| assert_eq!(raw.run(Spawner::ForkExec, Some(input), None), 0)),
                || timed(|| assert_eq!(raw.run(Spawner::PosixSpawn, Some(input), None), 0)),
            );
            b.show("fork()+execve", "raw posix_spawn", "µs", 1e6);
            acc[k][0].extend(a.ours);
            acc[k][1].extend(a.base);
            acc[k][2].extend(b.ours);
            acc[k][3].extend(b.base);
            drop(ballast);
        }
    }
    let m = |k: usize, i: usize| median(&acc[k][i]);
    let tag = format!("{} GiB", big / GIB);
    r.row(
        &format!("2 {tag} resident host: big/small"),
        "x",
        m(1, 0) / m(0, 0),
        m(1, 2) / m(0, 2),
        Goal::OursLe(1.2),
        acc[1][0].len(),
        "ours = virt-hooks median at the big ballast / at 16 MiB; baseline = the same for a fork()+execve spawner (libvirt's way); ratio = ours/baseline",
    );
    r.row(
        "2 info: raw posix_spawn big/small",
        "x",
        m(1, 1) / m(0, 1),
        m(1, 3) / m(0, 3),
        Goal::Info,
        acc[1][1].len(),
        "the flat physical limit, from the two paired sets (beside virt-hooks, beside fork+exec)",
    );
    for (k, label) in [(0, "16 MiB".to_owned()), (1, tag.clone())] {
        r.row(
            &format!("2 info: event at {label}, virt-hooks vs raw posix_spawn"),
            "µs",
            m(k, 0) * 1e6,
            m(k, 1) * 1e6,
            Goal::Info,
            acc[k][0].len(),
            "",
        );
        r.row(
            &format!("2 info: event at {label}, fork+exec vs raw posix_spawn"),
            "µs",
            m(k, 2) * 1e6,
            m(k, 3) * 1e6,
            Goal::Info,
            acc[k][2].len(),
            "",
        );
    }
}

/// 3. A driver with no hooks: time per call, and new scripts are seen.
fn s3(c: &Ctx, r: &mut Report) {
    println!("\n[3] event for a driver with no hooks installed");
    let hooks = new_dir(&c.work.join("s3-hooks"));
    let runner = runner(&c.registry, &hooks);
    let event = Event::new("qemu", "vm1", "start", "begin", "-").with_input(SMALL_XML.as_bytes());
    run_ok(&runner, &event, 0);
    let main_c = CString::new(hooks.join("qemu").as_os_str().as_bytes()).unwrap();
    let dir_c = CString::new(hooks.join("qemu.d").as_os_str().as_bytes()).unwrap();
    let batch = 1000;
    let raw_discovery = || {
        // SAFETY: valid NUL-terminated paths and a stat buffer on the stack.
        unsafe {
            let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
            let a = libc::stat(main_c.as_ptr(), st.as_mut_ptr());
            let fd =
                libc::open(dir_c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::close(fd);
            }
            std::hint::black_box((a, fd));
        }
    };
    let per_call = |f: &dyn Fn()| {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        t.elapsed().as_secs_f64() / batch as f64
    };
    let p = paired(
        3,
        c.s.n(200, 30),
        || per_call(&|| run_ok(&runner, &event, 0)),
        || per_call(&raw_discovery),
    );
    p.show("virt-hooks Runner::run", "stat + open (both ENOENT)", "µs", 1e6);
    r.row(
        "3 no hooks installed (qemu, small XML)",
        "µs",
        median(&p.ours) * 1e6,
        median(&p.base) * 1e6,
        Goal::OursLe(5.0),
        p.ours.len() * batch,
        "per call, batches of 1000; baseline = stat(<hooks>/qemu) + open(<hooks>/qemu.d), the syscalls discovery cannot avoid",
    );

    // The same without a document to validate (daemon driver), to separate
    // the driver's XML check from discovery.
    let daemon = Event::new("daemon", "-", "start", "-", "start");
    match runner.run(&daemon) {
        Ok(o) if o.scripts.is_empty() => {
            let p = paired(
                3,
                c.s.n(200, 30),
                || per_call(&|| run_ok(&runner, &daemon, 0)),
                || per_call(&raw_discovery),
            );
            p.show("virt-hooks (daemon, no XML)", "stat + open", "µs", 1e6);
            r.row(
                "3 info: no hooks, daemon start (no XML)",
                "µs",
                median(&p.ours) * 1e6,
                median(&p.base) * 1e6,
                Goal::Info,
                p.ours.len() * batch,
                "",
            );
        }
        other => println!("  (daemon event not measured: {:?})", other.err()),
    }

    // Scripts installed between two calls are seen by the second.
    let mut seen = true;
    let count = |runner: &Runner| runner.run(&event).map(|o| o.scripts.len()).unwrap_or(usize::MAX);
    let before = count(&runner);
    install(&c.hook, &hooks.join("qemu"));
    let after_main = count(&runner);
    let d = new_dir(&hooks.join("qemu.d"));
    install(&c.hook, &d.join("10-new"));
    let after_dropin = count(&runner);
    fs::remove_file(hooks.join("qemu")).unwrap();
    fs::remove_dir_all(&d).unwrap();
    let after_removal = count(&runner);
    for (what, got, want) in [
        ("before", before, 0),
        ("after installing <hooks>/qemu", after_main, 1),
        ("after adding <hooks>/qemu.d/10-new", after_dropin, 2),
        ("after removing both", after_removal, 0),
    ] {
        let ok = got == want;
        seen &= ok;
        println!("  scripts run {what}: {got} (want {want}) {}", if ok { "ok" } else { "WRONG" });
    }
    if !seen {
        r.broken.push("scenario 3: a script installed between two calls was not seen".to_owned());
    }
    let v = if seen { 1.0 } else { 0.0 };
    r.rows.push(json!({
        "scenario": "3 script installed between two calls is seen",
        "unit": "bool",
        "ours": v,
        "baseline": 1.0,
        "ratio": v,
        "goal": "== 1",
        "goal_on": "ours",
        "met": seen,
        "samples": 4,
        "note": "main script and a .d entry added, then removed, between calls of one Runner",
    }));
}

/// 4. 100 scripts in `qemu.d/` vs 100 raw spawns.
fn s4(c: &Ctx, r: &mut Report) {
    println!("\n[4] 100 scripts in <hooks>/qemu.d/");
    let hooks = new_dir(&c.work.join("s4-hooks"));
    let d = new_dir(&hooks.join("qemu.d"));
    let mut raws = Vec::new();
    for i in 0..100 {
        let p = d.join(format!("{i:03}-hook"));
        install(&c.hook, &p);
        raws.push(Prepared::new(&p, hook_argv(&p, ["vm1", "start", "begin", "-"]), c.env.clone()));
    }
    let runner = runner(&c.registry, &hooks);
    let event = Event::new("qemu", "vm1", "start", "begin", "-").with_input(SMALL_XML.as_bytes());
    run_ok(&runner, &event, 100);
    let input = SMALL_XML.as_bytes();
    let p = paired(
        2,
        c.s.n(40, 6),
        || timed(|| run_ok(&runner, &event, 100)),
        || {
            timed(|| {
                for raw in &raws {
                    assert_eq!(raw.run(Spawner::PosixSpawn, Some(input), None), 0);
                }
            })
        },
    );
    p.show("virt-hooks Runner::run", "100 x raw posix_spawn", "ms", 1e3);
    r.row(
        "4 100 scripts in qemu.d",
        "ms",
        median(&p.ours) * 1e3,
        median(&p.base) * 1e3,
        Goal::RatioLe(1.05),
        p.ours.len(),
        "baseline: the sum of 100 raw posix_spawn runs of the same files in the same order",
    );
}

/// A valid `<domain>` named vm1, padded to exactly `size` bytes.
fn big_doc(size: usize) -> Vec<u8> {
    let head = b"<domain type='kvm'><name>vm1</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid><description>";
    let tail = b"</description></domain>\n";
    let mut doc = Vec::with_capacity(size);
    doc.extend_from_slice(head);
    let line = b"padding padding padding padding padding padding padding padding padding padding\n";
    while doc.len() + line.len() + tail.len() <= size {
        doc.extend_from_slice(line);
    }
    doc.resize(size - tail.len(), b'x');
    doc.extend_from_slice(tail);
    assert_eq!(doc.len(), size);
    doc
}

const CAT_FILTER: &str = "#!/bin/sh\nexec cat\n";

/// 5. A 64 MiB document through a `cat` filter.
fn s5(c: &Ctx, r: &mut Report) {
    let size = 64 * MIB;
    println!("\n[5] {} MiB document through a cat filter (qemu migrate begin)", size / MIB);
    let hooks = new_dir(&c.work.join("s5-hooks"));
    let main = hooks.join("qemu");
    write_script(&main, CAT_FILTER);
    let runner = runner(&c.registry, &hooks);
    let doc = big_doc(size);
    let event = Event::new("qemu", "vm1", "migrate", "begin", "-").with_input(&doc);
    match runner.run(&event) {
        Ok(o) => {
            assert_eq!(o.scripts.len(), 1);
            assert!(o.document(&doc) == &doc[..], "the filtered document differs");
        }
        Err(e) => panic!("the filter event failed: {e}"),
    }
    let raw =
        Prepared::new(&main, hook_argv(&main, ["vm1", "migrate", "begin", "-"]), c.env.clone());
    let p = paired(
        1,
        c.s.n(21, 3),
        || {
            timed(|| {
                let o = runner.run(&event).expect("filter");
                std::hint::black_box(o);
            })
        },
        || {
            timed(|| {
                let mut out = Vec::with_capacity(size);
                assert_eq!(raw.run(Spawner::PosixSpawn, Some(&doc), Some(&mut out)), 0);
                assert_eq!(out.len(), size);
            })
        },
    );
    let gib = size as f64 / GIB as f64;
    let tp = |v: &[f64]| gib / median(v);
    p.show("virt-hooks Runner::run", "raw posix_spawn + poll pump", "ms", 1e3);
    r.row(
        "5 64 MiB through cat: throughput",
        "GiB/s",
        tp(&p.ours),
        tp(&p.base),
        Goal::OursGe(1.0),
        p.ours.len(),
        "document size / median wall time; both spawn the same `#!/bin/sh exec cat` hook; ratio = ours/baseline (higher is better)",
    );
    // What the same raw pump reaches with 1 MiB pipes (F_SETPIPE_SZ): how
    // much of the gap to 1 GiB/s is the pipe size.
    let big_pipes =
        Prepared::new(&main, hook_argv(&main, ["vm1", "migrate", "begin", "-"]), c.env.clone())
            .with_pipe_size(MIB as i32);
    let q = paired(
        1,
        c.s.n(21, 3),
        || {
            timed(|| {
                let mut out = Vec::with_capacity(size);
                assert_eq!(big_pipes.run(Spawner::PosixSpawn, Some(&doc), Some(&mut out)), 0);
                assert_eq!(out.len(), size);
            })
        },
        || {
            timed(|| {
                let mut out = Vec::with_capacity(size);
                assert_eq!(raw.run(Spawner::PosixSpawn, Some(&doc), Some(&mut out)), 0);
                assert_eq!(out.len(), size);
            })
        },
    );
    q.show("raw pump, 1 MiB pipes", "raw pump, 64 KiB pipes", "ms", 1e3);
    r.row(
        "5 info: raw pump with 1 MiB pipes vs 64 KiB pipes",
        "GiB/s",
        tp(&q.ours),
        tp(&q.base),
        Goal::Info,
        q.ours.len(),
        "F_SETPIPE_SZ(1 MiB) on the stdin and stdout pipes of the same raw pump",
    );
    drop(doc);

    // Peak RSS in a fresh process.
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("--child-rss")
        .arg(&c.plugins)
        .arg(&hooks)
        .arg(size.to_string())
        .stderr(Stdio::inherit())
        .output()
        .expect("re-exec for RSS");
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<f64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(out.status.success() && nums.len() == 3, "rss child failed: {text}");
    let (before, peak, _doc_built) = (nums[0] / 1024.0, nums[1] / 1024.0, nums[2] / 1024.0);
    println!(
        "  peak RSS: {peak:.1} MiB in all; {before:.1} MiB before the document was built; \
         delta {:.1} MiB",
        peak - before
    );
    r.row(
        "5 peak RSS over pre-document RSS",
        "MiB",
        peak - before,
        size as f64 / MIB as f64,
        Goal::RatioLe(3.0),
        1,
        "fresh process: peak RSS (VmHWM; getrusage ru_maxrss would carry the parent's peak across the vfork+exec) after one event minus the same before the document was built (registry and runner already built); baseline = the document size; ratio = multiples of the document",
    );
    r.row(
        "5 info: peak RSS of the whole process",
        "MiB",
        peak,
        size as f64 / MIB as f64,
        Goal::Info,
        1,
        "",
    );
}

fn child_rss(args: &[String]) {
    let plugins = PathBuf::from(&args[0]);
    let hooks = PathBuf::from(&args[1]);
    let size: usize = args[2].parse().unwrap();
    let registry = Arc::new(registry(&plugins));
    let runner = runner(&registry, &hooks);
    let before = maxrss_kib();
    let doc = big_doc(size);
    let built = maxrss_kib();
    let event = Event::new("qemu", "vm1", "migrate", "begin", "-").with_input(&doc);
    let o = runner.run(&event).expect("filter event");
    assert_eq!(o.document(&doc).len(), size);
    let peak = maxrss_kib();
    println!("{before} {peak} {built}");
}

/// The peak RSS of this process image. `VmHWM` (the memory map's high-water
/// mark) and not getrusage's `ru_maxrss`: a process started by
/// `posix_spawn` (vfork) inherits in `ru_maxrss` the peak of the parent's
/// memory map, so after scenario 2 it would report the ballast.
fn maxrss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// 6. Loading the three plugins in a fresh process.
fn s6(c: &Ctx, r: &mut Report) {
    println!("\n[6] loading the three release plugins, each measurement in a fresh process");
    let child = |flag: &str| -> f64 {
        let out = Command::new(std::env::current_exe().unwrap())
            .arg(flag)
            .arg(&c.plugins)
            .stderr(Stdio::inherit())
            .output()
            .expect("re-exec");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{flag} child failed: {text}");
        text.trim().parse::<f64>().expect("ns")
    };
    let p =
        paired(2, c.s.n(40, 8), || child("--child-load") / 1e9, || child("--child-dlopen") / 1e9);
    p.show("RegistryBuilder::build", "dlopen x3", "ms", 1e3);
    r.row(
        "6 load three plugins",
        "ms",
        median(&p.ours) * 1e3,
        median(&p.base) * 1e3,
        Goal::OursLe(5.0),
        p.ours.len(),
        "time inside a fresh process: RegistryBuilder::build (one explicit dir, defaults off) vs dlopen(RTLD_LAZY|RTLD_LOCAL) of the same three files",
    );
}

fn child_load(args: &[String]) {
    let dir = PathBuf::from(&args[0]);
    let t = Instant::now();
    let mut b = RegistryBuilder::new();
    b.search().dir(&dir).only_explicit();
    let reg = b.build();
    let ns = t.elapsed().as_nanos();
    assert!(reg.errors().is_empty() && reg.drivers().len() == 3, "{:?}", reg.errors());
    std::mem::forget(reg);
    println!("{ns}");
}

fn child_dlopen(args: &[String]) {
    let dir = PathBuf::from(&args[0]);
    let paths: Vec<CString> =
        PLUGINS.iter().map(|p| CString::new(dir.join(p).as_os_str().as_bytes()).unwrap()).collect();
    let t = Instant::now();
    for p in &paths {
        // SAFETY: a valid path; the library is never closed.
        let h = unsafe { libc::dlopen(p.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
        assert!(!h.is_null(), "dlopen failed");
    }
    let ns = t.elapsed().as_nanos();
    println!("{ns}");
}

/// 7. `virt-hook run` as a whole process vs `/bin/sh -c`.
fn s7(c: &Ctx, r: &mut Report) {
    println!("\n[7] `virt-hook run` as a process vs /bin/sh -c '<script> ...'");
    let hooks = new_dir(&c.work.join("s7-hooks"));
    let main = hooks.join("qemu");
    write_script(&main, "#!/bin/sh\nexit 0\n");
    let input = c.work.join("s7-domain.xml");
    fs::write(&input, SMALL_XML).unwrap();
    let bin = c.release.join("virt-hook");
    let ours = Prepared::new(
        &bin,
        [
            bin.to_str().unwrap(),
            "--plugin-dir",
            c.plugins.to_str().unwrap(),
            "--hooks-dir",
            hooks.to_str().unwrap(),
            "run",
            "qemu",
            "vm1",
            "start",
            "begin",
            "-",
            "--input",
            input.to_str().unwrap(),
        ]
        .iter()
        .map(|a| CString::new(*a).unwrap())
        .collect(),
        c.env.clone(),
    );
    let sh = Path::new("/bin/sh");
    let cmd = format!("{} vm1 start begin -", main.display());
    let base = Prepared::new(
        sh,
        ["/bin/sh", "-c", &cmd].iter().map(|a| CString::new(*a).unwrap()).collect(),
        c.env.clone(),
    );
    let xml = SMALL_XML.as_bytes();
    let mut err = Vec::new();
    let st = ours.run_capture(Spawner::PosixSpawn, None, None, Some(&mut err));
    assert_eq!(st, 0, "virt-hook run failed: {}", String::from_utf8_lossy(&err));
    let p = paired(
        5,
        c.s.n(150, 25),
        || timed(|| assert_eq!(ours.run(Spawner::PosixSpawn, None, None), 0)),
        || timed(|| assert_eq!(base.run(Spawner::PosixSpawn, Some(xml), None), 0)),
    );
    p.show("virt-hook run (process)", "/bin/sh -c script", "ms", 1e3);
    r.row(
        "7 virt-hook run, whole process",
        "ms",
        median(&p.ours) * 1e3,
        median(&p.base) * 1e3,
        Goal::RatioLe(1.3),
        p.ours.len(),
        "ours: virt-hook --plugin-dir (3 release plugins) --hooks-dir H run qemu vm1 start begin - --input FILE; baseline: /bin/sh -c 'H/qemu vm1 start begin -' with the XML on stdin",
    );
}

/// 8. 32 threads firing events at once.
fn s8(c: &Ctx, r: &mut Report) {
    let threads = 32;
    let per = c.s.n(10, 4);
    println!("\n[8] {threads} threads x {per} events, trivial hook");
    let hooks = new_dir(&c.work.join("s8-hooks"));
    let main = hooks.join("qemu");
    install(&c.hook, &main);
    let runner = runner(&c.registry, &hooks);
    let raw = Prepared::new(&main, hook_argv(&main, ["vm1", "start", "begin", "-"]), c.env.clone());
    let total = (threads * per) as f64;
    let burst = |f: &(dyn Fn() + Sync)| -> f64 {
        let barrier = Barrier::new(threads + 1);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    barrier.wait();
                    for _ in 0..per {
                        f();
                    }
                });
            }
            barrier.wait();
            let t = Instant::now();
            // The scope joins every thread before returning.
            t
        })
        .elapsed()
        .as_secs_f64()
    };
    let event = Event::new("qemu", "vm1", "start", "begin", "-").with_input(SMALL_XML.as_bytes());
    let input = SMALL_XML.as_bytes();
    let p = paired(
        1,
        c.s.n(30, 3),
        || total / burst(&|| run_ok(&runner, &event, 1)),
        || total / burst(&|| assert_eq!(raw.run(Spawner::PosixSpawn, Some(input), None), 0)),
    );
    p.show("virt-hooks, 32 threads", "raw posix_spawn, 32 threads", "ev/s", 1.0);
    r.row(
        "8 32 threads concurrently: throughput",
        "events/s",
        median(&p.ours),
        median(&p.base),
        Goal::RatioGe(0.9),
        p.ours.len(),
        "events per second over a burst of 32 threads; one shared Runner",
    );
}

// ---------------------------------------------------------------------------
// Output

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    format!("{cores} cores, kernel {}, CPU {cpu}", kernel.trim())
}

/// The markdown table of a results JSON document.
fn markdown(rows: &[Value]) -> String {
    let mut s = String::new();
    if let Some(m) = rows.first().and_then(|r| r["machine"].as_str()) {
        s.push_str(&format!(
            "Machine: {m}. Mode: {}.\n\n",
            rows[0]["mode"].as_str().unwrap_or("?")
        ));
    }
    s.push_str("| scenario | unit | virt-hooks | baseline | ratio | goal | met |\n");
    s.push_str("|---|---|---:|---:|---:|---|---|\n");
    let num = |v: &Value| v.as_f64().map_or_else(|| "-".to_owned(), fmt_num);
    for r in rows {
        let met = match r["met"].as_bool() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let goal = match r["goal_on"].as_str() {
            Some("ours") => format!("virt-hooks {}", r["goal"].as_str().unwrap_or("")),
            Some("ratio") => format!("ratio {}", r["goal"].as_str().unwrap_or("")),
            _ => "-".to_owned(),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r["scenario"].as_str().unwrap_or(""),
            r["unit"].as_str().unwrap_or(""),
            num(&r["ours"]),
            num(&r["baseline"]),
            r["ratio"].as_f64().map_or_else(|| "-".to_owned(), |x| format!("{x:.3}")),
            goal,
            met
        ));
    }
    s
}

/// `--profile WHAT PLUGIN_DIR N`: runs one piece of work N times, with no
/// timing, for `valgrind --tool=callgrind`, `strace -c` or `perf`.
/// WHAT: `nohooks` (scenario 3), `validate` (the qemu driver's check of
/// the small XML only), `one` (scenario 1), `filter` (scenario 5, one
/// 64 MiB document), `load` (scenario 6).
fn profile(args: &[String]) {
    let what = args[0].as_str();
    let plugins = PathBuf::from(&args[1]);
    let n: usize = args[2].parse().unwrap();
    if what == "load" {
        for _ in 0..n {
            std::mem::forget(registry(&plugins));
        }
        return;
    }
    let tmp = tempfile::Builder::new().prefix("virt-hooks-prof-").tempdir().unwrap();
    let work = new_dir(&tmp.path().join("w"));
    let registry = Arc::new(registry(&plugins));
    let hooks = new_dir(&work.join("hooks"));
    let runner = runner(&registry, &hooks);
    let small = Event::new("qemu", "vm1", "start", "begin", "-").with_input(SMALL_XML.as_bytes());
    match what {
        "nohooks" => (0..n).for_each(|_| run_ok(&runner, &small, 0)),
        "validate" => {
            let qemu = registry.get("qemu").unwrap();
            for _ in 0..n {
                qemu.validate(&small).unwrap();
            }
        }
        "one" => {
            let (hook, _) = trivial_hook(&work);
            install(&hook, &hooks.join("qemu"));
            (0..n).for_each(|_| run_ok(&runner, &small, 1));
        }
        "filter" => {
            write_script(&hooks.join("qemu"), CAT_FILTER);
            let doc = big_doc(64 * MIB);
            let event = Event::new("qemu", "vm1", "migrate", "begin", "-").with_input(&doc);
            for _ in 0..n {
                let o = runner.run(&event).expect("filter");
                assert_eq!(o.document(&doc).len(), doc.len());
            }
        }
        "validate64" => {
            // The driver's two checks of scenario 5, timed alone.
            let qemu = registry.get("qemu").unwrap();
            let doc = big_doc(64 * MIB);
            let event = Event::new("qemu", "vm1", "migrate", "begin", "-").with_input(&doc);
            for _ in 0..n {
                let a = timed(|| qemu.validate(&event).map(drop).unwrap());
                let b = timed(|| qemu.check_output(&event, &doc).unwrap());
                let copy = timed(|| drop(std::hint::black_box(doc.clone())));
                println!(
                    "validate {:.1} ms, check_output {:.1} ms, one 64 MiB copy {:.1} ms",
                    a * 1e3,
                    b * 1e3,
                    copy * 1e3
                );
            }
        }
        other => panic!("unknown --profile {other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let private = |flag: &str| args.iter().position(|a| a == flag).map(|i| &args[i + 1..]);
    if let Some(rest) = private("--profile") {
        return profile(rest);
    }
    if let Some(rest) = private("--child-rss") {
        return child_rss(rest);
    }
    if let Some(rest) = private("--child-load") {
        return child_load(rest);
    }
    if let Some(rest) = private("--child-dlopen") {
        return child_dlopen(rest);
    }
    if let Some(rest) = private("--table") {
        let rows: Vec<Value> =
            serde_json::from_slice(&fs::read(&rest[0]).expect("read JSON")).expect("parse JSON");
        print!("{}", markdown(&rows));
        return;
    }
    let s = Settings { quick: args.iter().any(|a| a == "--quick") };
    let started = Instant::now();
    let target = target_dir();
    let release = build_release(&target);
    let tmp = tempfile::Builder::new().prefix("virt-hooks-bench-").tempdir().unwrap();
    let work = new_dir(&tmp.path().join("w"));
    let plugins = plugin_dir(&release);
    let t = Instant::now();
    let registry = Arc::new(registry(&plugins));
    println!(
        "registry with 3 plugins built in-process in {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let (hook, kind) = trivial_hook(&work);
    println!("trivial hook: {} ({kind}); machine: {}", hook.display(), machine());
    let c = Ctx { s, work, release, plugins, registry, hook, env: hook_env() };

    let mut report = Report::default();
    type Scenario = fn(&Ctx, &mut Report);
    let scenarios: [(&str, Scenario); 8] =
        [("1", s1), ("2", s2), ("3", s3), ("4", s4), ("5", s5), ("6", s6), ("7", s7), ("8", s8)];
    let only: Vec<&str> = args
        .iter()
        .position(|a| a == "--only")
        .map(|i| args[i + 1].split(',').collect())
        .unwrap_or_default();
    for (id, f) in scenarios {
        if only.is_empty() || only.contains(&id) {
            let t = Instant::now();
            f(&c, &mut report);
            println!("  ({id}: {:.1} s)", t.elapsed().as_secs_f64());
        }
    }

    let mode = if s.quick { "quick" } else { "full" };
    let m = machine();
    for row in &mut report.rows {
        row["machine"] = json!(m);
        row["mode"] = json!(mode);
        row["trivial_hook"] = json!(kind);
    }
    let json_path = target.join("virt-hooks-bench.json");
    let text = serde_json::to_string_pretty(&report.rows).unwrap();
    fs::write(&json_path, format!("{text}\n")).expect("write the JSON");
    // The table is rendered from the JSON file just written.
    let rows: Vec<Value> = serde_json::from_slice(&fs::read(&json_path).unwrap()).unwrap();
    let table = markdown(&rows);
    let md_path = target.join("virt-hooks-bench.md");
    fs::write(&md_path, &table).expect("write the markdown");
    println!("\n{table}");
    println!("wrote {} and {}", json_path.display(), md_path.display());
    println!("total {:.1} s ({mode})", started.elapsed().as_secs_f64());
    std::io::stdout().flush().unwrap();
    if !report.broken.is_empty() {
        for b in &report.broken {
            eprintln!("BROKEN: {b}");
        }
        std::process::exit(1);
    }
}
