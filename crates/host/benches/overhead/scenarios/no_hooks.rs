//! Scenario 3: an event for a driver with no hooks installed: the time per call, and
//! that scripts installed between two calls are seen.

use std::{fs, time::Instant};

use virt_hooks::{Event, Runner};

use crate::{
    fail::{Context, Result},
    fixtures::{install, new_dir, start_event},
    report::{Goal, Measured, Report, Unit},
    scenarios::{Ctx, Pair, run_ok},
};
use virt_hooks_exec::baseline::Probe;

/// Calls per sample: one call is too short to time alone.
const BATCH: usize = 1000;

/// The time of one call of `f`, over a batch.
fn per_call(f: &dyn Fn() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    for _ in 0..BATCH {
        f()?;
    }
    Ok(t.elapsed().as_secs_f64() / BATCH as f64)
}

pub(crate) fn run(c: &Ctx, r: &mut Report) -> Result<()> {
    println!("\n[3] event for a driver with no hooks installed");
    let hooks = c.hooks_dir("s3-hooks")?;
    let runner = c.runner(&hooks)?;
    let probe = Probe::new(&hooks.join("qemu"), &hooks.join("qemu.d"))
        .context("cannot prepare the discovery probe")?;
    let raw = || {
        probe.run();
        Ok(())
    };
    let event = start_event();
    // The same without a document to validate (daemon driver), to separate
    // the driver's XML check from discovery.
    let daemon = Event::new("daemon", "-", "start", "-", "start");
    for (ev, scenario, label, goal, note) in [
        (
            &event,
            "3 no hooks installed (qemu, small XML)",
            "virt-hooks Runner::run",
            Goal::OursLe(5.0),
            "per call, batches of 1000; baseline = stat(<hooks>/qemu) + open(<hooks>/qemu.d), the syscalls discovery cannot avoid",
        ),
        (
            &daemon,
            "3 info: no hooks, daemon start (no XML)",
            "virt-hooks (daemon, no XML)",
            Goal::Info,
            "",
        ),
    ] {
        run_ok(&runner, ev, 0)?;
        let mut m = Pair {
            ours: label,
            base: "stat + open (both ENOENT)",
            warm: 3,
            n: c.n(200, 30),
            unit: Unit::Micros,
        }
        .measure(|| per_call(&|| run_ok(&runner, ev, 0)), || per_call(&raw))?;
        m.samples *= BATCH;
        r.record(scenario, m, goal, note);
    }
    seen(c, r, &runner, &event)
}

/// Scripts installed between two calls of one runner are seen by the
/// second: a correctness check, recorded as a row that must hold.
fn seen(c: &Ctx, r: &mut Report, runner: &Runner, event: &Event<'_>) -> Result<()> {
    let hooks = runner.hooks_dir().to_owned();
    let count = || runner.run(event).map(|o| o.scripts.len()).unwrap_or(usize::MAX);
    let before = count();
    install(&c.hook, &hooks.join("qemu"))?;
    let after_main = count();
    let d = new_dir(&hooks.join("qemu.d"))?;
    install(&c.hook, &d.join("10-new"))?;
    let after_dropin = count();
    fs::remove_file(hooks.join("qemu")).context("cannot remove <hooks>/qemu")?;
    fs::remove_dir_all(&d).context("cannot remove <hooks>/qemu.d")?;
    let after_removal = count();
    let mut held = true;
    for (what, got, want) in [
        ("before", before, 0),
        ("after installing <hooks>/qemu", after_main, 1),
        ("after adding <hooks>/qemu.d/10-new", after_dropin, 2),
        ("after removing both", after_removal, 0),
    ] {
        let ok = got == want;
        held &= ok;
        println!("  scripts run {what}: {got} (want {want}) {}", if ok { "ok" } else { "WRONG" });
    }
    r.record(
        "3 script installed between two calls is seen",
        Measured { unit: "bool", ours: if held { 1.0 } else { 0.0 }, baseline: 1.0, samples: 4 },
        Goal::Holds,
        "main script and a .d entry added, then removed, between calls of one Runner",
    );
    Ok(())
}
