//! Scenario 2: the same event while the host holds a 16 MiB and a 4 GiB (quick:
//! 1 GiB) ballast, against `fork()` + `execve`.
//!
//! Per ballast size two paired sets: virt-hooks vs raw posix_spawn, then
//! fork()+execve vs raw posix_spawn, so that the page-table copy (and the
//! copy-on-write faults a fork leaves the parent) never lands in a
//! virt-hooks sample. The sizes alternate for a few rounds, so a slow drift
//! of the machine hits both.

use std::time::{Duration, Instant};

use crate::{
    fail::Result,
    fixtures::{GIB, MIB, status_kib},
    report::{Goal, Measured, Report, Unit},
    scenarios::{Ctx, OneEvent, Pair},
    stats::{Paired, median, timed},
};
use virt_hooks_exec::baseline::Spawner;

/// Touches every page of `v`, so that it is resident.
fn touch(v: &mut [u8]) {
    for i in (0..v.len()).step_by(4096) {
        v[i] = 1;
    }
    std::hint::black_box(&v[..]);
}

/// The samples at one ballast size.
#[derive(Debug, Default)]
struct AtSize {
    /// virt-hooks (ours) vs raw posix_spawn (base).
    event: Paired,
    /// fork()+execve (ours) vs raw posix_spawn (base).
    fork: Paired,
}

pub(crate) fn run(c: &Ctx, r: &mut Report) -> Result<()> {
    let big = if c.quick { GIB } else { 4 * GIB };
    println!("\n[2] host memory: ballast 16 MiB vs {} GiB (allocated and touched)", big / GIB);
    let one = OneEvent::new(c, "s2-hooks")?;
    let mut at: [AtSize; 2] = Default::default();
    for round in 0..c.n(3, 2) {
        for (k, size) in [16 * MIB, big].into_iter().enumerate() {
            let t = Instant::now();
            let mut ballast = vec![0u8; size];
            touch(&mut ballast);
            println!(
                "  round {round}: ballast {} MiB touched in {:.2} s, process RSS {} MiB",
                size / MIB,
                t.elapsed().as_secs_f64(),
                status_kib("VmRSS:") / 1024
            );
            // Let the kernel settle after faulting in the ballast (a quick
            // run right after touching 1 GiB saw raw posix_spawn itself 4x
            // slower for a while).
            std::thread::sleep(Duration::from_millis(300));
            let event = one.sample(Pair {
                ours: "virt-hooks Runner::run",
                base: "raw posix_spawn",
                warm: 30,
                n: c.n(200, 40),
                unit: Unit::Micros,
            })?;
            let fork = Pair {
                ours: "fork()+execve",
                base: "raw posix_spawn",
                warm: 2,
                n: if k == 0 { c.n(100, 30) } else { c.n(20, 10) },
                unit: Unit::Micros,
            }
            .sample(
                || timed(|| one.base(Spawner::ForkExec)),
                || timed(|| one.base(Spawner::PosixSpawn)),
            )?;
            at[k].event.extend(event);
            at[k].fork.extend(fork);
            drop(ballast);
        }
    }
    let [small, large] = &at;
    // How much a median grows from the small ballast to the big one.
    let growth = |m: fn(&AtSize) -> f64| m(large) / m(small);
    let tag = format!("{} GiB", big / GIB);
    r.record(
        &format!("2 {tag} resident host: big/small"),
        Measured {
            unit: "x",
            ours: growth(|a| median(&a.event.ours)),
            baseline: growth(|a| median(&a.fork.ours)),
            samples: large.event.ours.len(),
        },
        Goal::OursLe(1.2),
        "ours = virt-hooks median at the big ballast / at 16 MiB; baseline = the same for a fork()+execve spawner (libvirt's way); ratio = ours/baseline",
    );
    r.record(
        "2 info: raw posix_spawn big/small",
        Measured {
            unit: "x",
            ours: growth(|a| median(&a.event.base)),
            baseline: growth(|a| median(&a.fork.base)),
            samples: large.event.base.len(),
        },
        Goal::Info,
        "the flat physical limit, from the two paired sets (beside virt-hooks, beside fork+exec)",
    );
    for (a, label) in [(small, "16 MiB"), (large, tag.as_str())] {
        r.record(
            &format!("2 info: event at {label}, virt-hooks vs raw posix_spawn"),
            Measured::of(&a.event, Unit::Micros),
            Goal::Info,
            "",
        );
        r.record(
            &format!("2 info: event at {label}, fork+exec vs raw posix_spawn"),
            Measured::of(&a.fork, Unit::Micros),
            Goal::Info,
            "",
        );
    }
    Ok(())
}
