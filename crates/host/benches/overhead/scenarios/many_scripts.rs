//! Scenario 4: 100 scripts in `<hooks>/qemu.d/` against 100 raw spawns of the same
//! files in the same order.

use crate::{
    fail::Result,
    fixtures::{SMALL_XML, install, new_dir, start_event},
    report::{Goal, Report, Unit},
    scenarios::{Ctx, Pair, raw_ok, run_ok},
};
use virt_hooks_exec::baseline::Spawner;

const SCRIPTS: usize = 100;

pub(crate) fn run(c: &Ctx, r: &mut Report) -> Result<()> {
    println!("\n[4] {SCRIPTS} scripts in <hooks>/qemu.d/");
    let hooks = c.hooks_dir("s4-hooks")?;
    let d = new_dir(&hooks.join("qemu.d"))?;
    let mut raws = Vec::with_capacity(SCRIPTS);
    for i in 0..SCRIPTS {
        let p = d.join(format!("{i:03}-hook"));
        install(&c.hook, &p)?;
        raws.push(c.raw(&p, ["vm1", "start", "begin", "-"])?);
    }
    let runner = c.runner(&hooks)?;
    let event = start_event();
    run_ok(&runner, &event, SCRIPTS)?;
    let input = Some(SMALL_XML.as_bytes());
    let m = Pair {
        ours: "virt-hooks Runner::run",
        base: "100 x raw posix_spawn",
        warm: 2,
        n: c.n(40, 6),
        unit: Unit::Millis,
    }
    .time(
        || run_ok(&runner, &event, SCRIPTS),
        || raws.iter().try_for_each(|raw| raw_ok(raw, Spawner::PosixSpawn, input, None)),
    )?;
    r.record(
        "4 100 scripts in qemu.d",
        m,
        Goal::RatioLe(1.05),
        "baseline: the sum of 100 raw posix_spawn runs of the same files in the same order",
    );
    Ok(())
}
