//! Scenario 9: the hand-over of deferred scripts. `virt-hook` as libvirt's
//! hook (`<hooks>/qemu`, a link to it) for an event with one synchronous
//! script and one deferred script, against the same call for an event with
//! the synchronous script alone. Each call is timed as libvirt sees it:
//! until stdout and stderr reached end of file and the hook was reaped.

use std::{ffi::OsString, fs, os::unix::fs::symlink, time::Instant};

use crate::{
    fail::{Context, Result, fail},
    fixtures::{SMALL_XML, write_script},
    report::{Goal, Measured, Report, Unit},
    scenarios::{Ctx, Pair, raw_ok},
    stats::median,
};
use virt_hooks_exec::baseline::{Prepared, Spawner};

pub(crate) fn run(c: &Ctx, r: &mut Report) -> Result<()> {
    println!("\n[9] the hand-over of a deferred script vs the same hook call without one");
    let hooks = c.hooks_dir("s9-hooks")?;
    symlink(&c.installed.virt_hook, hooks.join("qemu"))
        .with_context(|| format!("cannot link {}", hooks.join("qemu").display()))?;
    for dir in ["qemu.d/vm1/start/begin/deferred", "qemu.d/vm2/start/begin"] {
        let dir = hooks.join(dir);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for object in ["vm1", "vm2"] {
        write_script(
            &hooks.join(format!("qemu.d/{object}/start/begin/10-now")),
            "#!/bin/sh\nexit 0\n",
        )?;
    }
    let later = hooks.join("qemu.d/vm1/start/begin/deferred/10-later");
    write_script(&later, "#!/bin/sh\nexit 0\n")?;
    let spool = c.work.join("s9-spool");
    let config = c.work.join("s9-virt-hooks.toml");
    fs::write(&config, format!("audit_log = \"\"\ndeferred_dir = \"{}\"\n", spool.display()))
        .with_context(|| format!("write {}", config.display()))?;
    let mut env = c.env.clone();
    let mut var = OsString::from("VIRT_HOOKS_CONFIG=");
    var.push(&config);
    env.push(var);
    let hook = hooks.join("qemu");
    let call = |object: &str| {
        Prepared::new(
            &hook,
            &crate::fixtures::hook_argv(&hook, [object, "start", "begin", "-"]),
            &env,
        )
        .context("cannot prepare the hook call")
    };
    let (with, without) = (call("vm1")?, call("vm2")?);
    let xml = Some(SMALL_XML.as_bytes());
    let vm2 = SMALL_XML.replace("<name>vm1</name>", "<name>vm2</name>");
    let xml2 = Some(vm2.as_bytes());
    let mut err = Vec::new();
    for (what, p, doc) in [("with", &with, xml), ("without", &without, xml2)] {
        let code = p.run_capture(Spawner::PosixSpawn, doc, None, Some(&mut err))?;
        if code != 0 {
            return Err(fail(format!(
                "the hook call {what} a deferred script exited {code}: {}",
                String::from_utf8_lossy(&err).trim()
            )));
        }
    }
    let p = Pair {
        ours: "hook call, 1 deferred script",
        base: "hook call, none",
        warm: 5,
        n: c.n(150, 25),
        unit: Unit::Millis,
    }
    .sample(
        || crate::stats::timed(|| raw_ok(&with, Spawner::PosixSpawn, xml, None)),
        || crate::stats::timed(|| raw_ok(&without, Spawner::PosixSpawn, xml2, None)),
    )?;
    let diffs: Vec<f64> = p.ours.iter().zip(&p.base).map(|(a, b)| a - b).collect();
    let overhead = median(&diffs) * 1e3;
    r.record(
        "9 deferred hand-over, over the same call",
        Measured {
            unit: "ms",
            ours: overhead,
            baseline: median(&p.base) * 1e3,
            samples: diffs.len(),
        },
        Goal::OursLe(2.0),
        "ours: median per-pair (hook call with a deferred script) - (the same call without); baseline: the call without; <hooks>/qemu -> virt-hook, timed to EOF of stdout and stderr and the reaping",
    );

    // A deferred script that sleeps: the call still ends at once.
    write_script(&later, "#!/bin/sh\nsleep 1\n")?;
    let start = Instant::now();
    raw_ok(&with, Spawner::PosixSpawn, xml, Some(&mut Vec::new()))?;
    let took = start.elapsed();
    println!("  hook call with a deferred 'sleep 1': {:.3} ms to EOF", took.as_secs_f64() * 1e3);
    let held = took.as_secs_f64() < 0.5;
    r.record(
        "9 pipes at EOF before a deferred sleep 1 ends",
        Measured { unit: "bool", ours: if held { 1.0 } else { 0.0 }, baseline: 1.0, samples: 1 },
        Goal::Holds,
        "the hook's stdout and stderr reach end of file and it is reaped in under 0.5 s while its deferred script sleeps 1 s",
    );
    // Let the sleeping workers end before the work directory goes.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    Ok(())
}
