//! The virt-hooks overhead benchmark: what virt-hooks costs against the
//! cheapest code that does the same job (docs/performance.md).
//!
//! `cargo bench --bench overhead [-- --quick] [-- --only 1,5]`
//!
//! Every scenario is a set of paired, interleaved measurements of virt-hooks
//! and a baseline written with raw system calls ([`raw`]), in the same
//! process and the same run: after a warm-up, each iteration runs both,
//! alternating which goes first ([`stats`]). Each table row is a typed
//! [`report::Row`]: written to `<target dir>/virt-hooks-bench.json`, then
//! rendered from that file into `<target dir>/virt-hooks-bench.md`.
//!
//! The release `virt-hook` and the plugins the scenarios need are built by
//! a nested cargo and copied, by name, into a private directory
//! ([`artifacts`]): the benchmark runs from an empty target directory,
//! after any build, and beside any other plugins.
//!
//! A missed goal never makes the run fail; a broken harness, or a failed
//! correctness check (scenario 3), exits non-zero.
//!
//! Other flags: `--table FILE.json` prints the markdown table of a results
//! file; `--profile WHAT PLUGIN_DIR N` ([`profile`]). The harness starts
//! itself again with private flags (`--child-*`) for the measurements that
//! need a fresh process.
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a benchmark reports on the console")]

mod artifacts;
mod fail;
mod fixtures;
mod profile;
mod report;
mod scenarios;
mod stats;

use std::{
    io::Write,
    path::Path,
    process::{Command, ExitCode},
    sync::Arc,
    time::Instant,
};

use crate::{
    artifacts::{DRIVERS, Workspace, build_and_install},
    fail::{Context, Result, fail},
    fixtures::{hook_env, new_dir, trivial_hook},
    report::{Mode, Report, RunInfo, markdown},
    scenarios::{ALL, CHILDREN, Ctx, registry},
};

/// The command line.
#[derive(Debug, Default)]
struct Args {
    quick: bool,
    /// Scenario numbers to run; empty: all.
    only: Vec<String>,
    table: Option<String>,
    /// `--profile` or a child flag, and the arguments after it.
    special: Option<(String, Vec<String>)>,
}

impl Args {
    fn parse(mut it: impl Iterator<Item = String>) -> Result<Args> {
        let mut a = Args::default();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--quick" => a.quick = true,
                // cargo bench passes it to every bench binary.
                "--bench" => {}
                "--only" => {
                    let list = it.next().context("--only needs a list such as 1,5")?;
                    a.only = list.split(',').map(str::to_owned).collect();
                    if let Some(bad) = a.only.iter().find(|id| !ALL.iter().any(|(n, _)| n == id)) {
                        return Err(fail(format!("--only: no scenario {bad:?} (1 to 8)")));
                    }
                }
                "--table" => a.table = Some(it.next().context("--table needs a JSON file")?),
                flag if flag == "--profile" || CHILDREN.iter().any(|(f, _)| *f == flag) => {
                    a.special = Some((arg, it.collect()));
                    break;
                }
                other => return Err(fail(format!("unknown argument {other:?}"))),
            }
        }
        Ok(a)
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let args = Args::parse(std::env::args().skip(1))?;
    if let Some((flag, rest)) = &args.special {
        if flag == "--profile" {
            profile::run(rest)?;
        } else if let Some((_, child)) = CHILDREN.iter().find(|(f, _)| f == flag) {
            child(rest)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(file) = &args.table {
        print!("{}", markdown(&report::read(Path::new(file))?));
        return Ok(ExitCode::SUCCESS);
    }
    bench(&args)
}

/// The benchmark proper.
fn bench(args: &Args) -> Result<ExitCode> {
    let started = Instant::now();
    let mode = if args.quick { Mode::Quick } else { Mode::Full };
    let ws = Workspace::find()?;
    let tmp = tempfile::Builder::new()
        .prefix("virt-hooks-bench-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let work = new_dir(&tmp.path().join("w"))?;
    let installed = build_and_install(&ws, &tmp.path().join("install"))?;
    let t = Instant::now();
    let registry = Arc::new(registry(&installed.dir, true)?);
    println!(
        "registry of {} built in-process in {:.2} ms",
        DRIVERS.join(", "),
        t.elapsed().as_secs_f64() * 1e3
    );
    let (hook, kind) = trivial_hook(&work)?;
    let info = RunInfo {
        machine: machine(),
        mode,
        trivial_hook: kind.to_owned(),
        commit: commit(&ws.workspace_root),
        date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"], Path::new("/")),
    };
    println!(
        "trivial hook: {} ({kind}); machine: {}; commit {}",
        hook.display(),
        info.machine,
        info.commit
    );
    let c = Ctx { quick: args.quick, work, installed, registry, hook, env: hook_env() };

    let mut report = Report::new(info);
    for (id, scenario) in ALL {
        if args.only.is_empty() || args.only.iter().any(|o| o == id) {
            let t = Instant::now();
            scenario(&c, &mut report).with_context(|| format!("scenario {id}"))?;
            println!("  ({id}: {:.1} s)", t.elapsed().as_secs_f64());
        }
    }

    let json = ws.target_directory.join("virt-hooks-bench.json");
    let md = ws.target_directory.join("virt-hooks-bench.md");
    let table = report.write(&json, &md)?;
    println!("\n{table}");
    println!("wrote {} and {}", json.display(), md.display());
    println!(
        "total {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        if args.quick { "quick" } else { "full" }
    );
    if report.broken().is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let _ = std::io::stdout().flush();
    for b in report.broken() {
        eprintln!("BROKEN: {b}");
    }
    Ok(ExitCode::FAILURE)
}

/// Cores, kernel and CPU model.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    format!("{cores} cores, kernel {}, CPU {cpu}", kernel.trim())
}

/// The measured tree's commit, `+dirty` when tracked files differ from it;
/// `unknown` outside a git checkout.
fn commit(root: &Path) -> String {
    let head = command_line("git", &["rev-parse", "--short=7", "HEAD"], root);
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(root)
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if dirty { format!("{head}+dirty") } else { head }
}

/// The first line `program args` prints in `dir`, or `unknown`.
fn command_line(program: &str, args: &[&str], dir: &Path) -> String {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}
