//! Scenario 8: 32 threads firing events at once through one shared runner, against
//! 32 threads of raw `posix_spawn`.

use std::{sync::Barrier, time::Instant};

use crate::{
    fail::{Result, fail},
    report::{Goal, Report, Unit},
    scenarios::{Ctx, OneEvent, Pair},
};
use virt_hooks_exec::baseline::Spawner;

const THREADS: usize = 32;

/// The wall time of `THREADS` threads each calling `f` `per` times, from a
/// common start.
fn burst(per: usize, f: &(dyn Fn() -> Result<()> + Sync)) -> Result<f64> {
    let barrier = Barrier::new(THREADS + 1);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    (0..per).try_for_each(|_| f())
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        for th in threads {
            th.join().map_err(|_| fail("a burst thread panicked"))??;
        }
        Ok(t.elapsed().as_secs_f64())
    })
}

pub(crate) fn run(c: &Ctx, r: &mut Report) -> Result<()> {
    let per = c.n(10, 4);
    println!("\n[8] {THREADS} threads x {per} events, trivial hook");
    let one = OneEvent::new(c, "s8-hooks")?;
    let m = Pair {
        ours: "virt-hooks, 32 threads",
        base: "raw posix_spawn, 32 threads",
        warm: 1,
        n: c.n(30, 3),
        unit: Unit::Rate { work: (THREADS * per) as f64, per: "events/s" },
    }
    .measure(|| burst(per, &|| one.ours()), || burst(per, &|| one.base(Spawner::PosixSpawn)))?;
    r.record(
        "8 32 threads concurrently: throughput",
        m,
        Goal::RatioGe(0.9),
        "events per second over a burst of 32 threads; one shared Runner",
    );
    Ok(())
}
