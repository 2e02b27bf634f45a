//! Scenario 1: one event, one trivial hook: virt-hooks against raw `posix_spawn`.

use crate::{
    fail::Result,
    report::{Goal, Measured, Report, Unit},
    scenarios::{Ctx, OneEvent, Pair},
};

pub(crate) fn run(c: &Ctx, r: &mut Report) -> Result<()> {
    println!("\n[1] one event (qemu start begin, small XML), trivial hook as <hooks>/qemu");
    let one = OneEvent::new(c, "s1-hooks")?;
    let pair = Pair {
        ours: "virt-hooks Runner::run",
        base: "raw posix_spawn+waitpid",
        warm: c.n(100, 30),
        n: c.n(2000, 300),
        unit: Unit::Micros,
    };
    let p = one.sample(pair)?;
    r.record(
        "1 one event, trivial hook",
        Measured::of(&p, pair.unit),
        Goal::RatioLe(1.10),
        "baseline: posix_spawn with stdin/stdout/stderr pipes, same argv, env and stdin, poll pump, waitpid",
    );
    Ok(())
}
