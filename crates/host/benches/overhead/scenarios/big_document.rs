//! Scenario 5: a 64 MiB document through a `cat` filter: throughput, and the peak
//! memory of a fresh process.

use std::path::Path;

use crate::{
    fail::{Context, Result, fail},
    fixtures::{CAT_FILTER, GIB, MIB, big_doc, migrate_event, status_kib, write_script},
    report::{Goal, Measured, Report, Unit},
    scenarios::{Ctx, Pair, raw_ok, registry, runner},
};
use virt_hooks_exec::baseline::{Prepared, Spawner};

const SIZE: usize = 64 * MIB;

/// The raw pump: `raw` fed `doc`, its whole output kept in a buffer
/// allocated at the full size up front.
fn pump(raw: &Prepared, doc: &[u8]) -> Result<()> {
    let mut out = Vec::with_capacity(doc.len());
    raw_ok(raw, Spawner::PosixSpawn, Some(doc), Some(&mut out))?;
    if out.len() != doc.len() {
        return Err(fail(format!("the raw filter gave {} bytes, not {}", out.len(), doc.len())));
    }
    Ok(())
}

pub(crate) fn run(c: &Ctx, r: &mut Report) -> Result<()> {
    println!("\n[5] {} MiB document through a cat filter (qemu migrate begin)", SIZE / MIB);
    let hooks = c.hooks_dir("s5-hooks")?;
    let main = hooks.join("qemu");
    write_script(&main, CAT_FILTER)?;
    let runner = c.runner(&hooks)?;
    let doc = big_doc(SIZE);
    let event = migrate_event(&doc);
    let o = runner.run(&event).context("the filter event failed")?;
    if o.scripts.len() != 1 || o.document(&doc) != &doc[..] {
        return Err(fail("the filter event did not give the document back unchanged"));
    }
    let args = ["vm1", "migrate", "begin", "-"];
    let raw = c.raw(&main, args)?;
    let throughput = Unit::Rate { work: SIZE as f64 / GIB as f64, per: "GiB/s" };
    let n = c.n(21, 3);
    let m = Pair {
        ours: "virt-hooks Runner::run",
        base: "raw posix_spawn + poll pump",
        warm: 1,
        n,
        unit: throughput,
    }
    .time(
        || runner.run(&event).map(drop).context("the filter event failed"),
        || pump(&raw, &doc),
    )?;
    r.record(
        "5 64 MiB through cat: throughput",
        m,
        Goal::OursGe(1.0),
        "document size / median wall time; both spawn the same `#!/bin/sh exec cat` hook; ratio = ours/baseline (higher is better)",
    );
    // What the same raw pump reaches with 1 MiB pipes (F_SETPIPE_SZ): how
    // much of the gap to 1 GiB/s is the pipe size.
    let big_pipes = c.raw(&main, args)?.with_pipe_size(MIB as i32);
    let m = Pair {
        ours: "raw pump, 1 MiB pipes",
        base: "raw pump, 64 KiB pipes",
        warm: 1,
        n,
        unit: throughput,
    }
    .time(|| pump(&big_pipes, &doc), || pump(&raw, &doc))?;
    r.record(
        "5 info: raw pump with 1 MiB pipes vs 64 KiB pipes",
        m,
        Goal::Info,
        "F_SETPIPE_SZ(1 MiB) on the stdin and stdout pipes of the same raw pump",
    );
    drop((o, event));
    drop(doc);

    // Peak RSS in a fresh process.
    let size = SIZE.to_string();
    let text =
        c.child("--child-rss", &[c.installed.dir.as_ref(), hooks.as_ref(), size.as_ref()])?;
    let nums: Vec<f64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    let [before, peak] = nums[..] else {
        return Err(fail(format!("the --child-rss child printed {text:?}, not two numbers")));
    };
    let (before, peak) = (before / 1024.0, peak / 1024.0);
    println!(
        "  peak RSS: {peak:.1} MiB in all; {before:.1} MiB before the document was built; \
         delta {:.1} MiB",
        peak - before
    );
    let doc_mib = (SIZE / MIB) as f64;
    r.record(
        "5 peak RSS over pre-document RSS",
        Measured { unit: "MiB", ours: peak - before, baseline: doc_mib, samples: 1 },
        Goal::RatioLe(3.0),
        "fresh process: peak RSS (VmHWM; getrusage ru_maxrss would carry the parent's peak across the vfork+exec) after one event minus the same before the document was built (registry and runner already built); baseline = the document size; ratio = multiples of the document",
    );
    r.record(
        "5 info: peak RSS of the whole process",
        Measured { unit: "MiB", ours: peak, baseline: doc_mib, samples: 1 },
        Goal::Info,
        "",
    );
    Ok(())
}

/// `--child-rss PLUGIN_DIR HOOKS SIZE`: one filter event on a document of
/// SIZE bytes in this fresh process; prints the peak RSS (KiB) before the
/// document was built and after the event.
///
/// The peak is `VmHWM` (the memory map's high-water mark), not getrusage's
/// `ru_maxrss`: a process started by `posix_spawn` (vfork) inherits in
/// `ru_maxrss` the peak of the parent's memory map, so after scenario 2 it
/// would report the ballast.
pub(crate) fn child_rss(args: &[String]) -> Result<()> {
    let [plugins, hooks, size] = args else {
        return Err(fail("usage: --child-rss PLUGIN_DIR HOOKS SIZE"));
    };
    let size: usize = size.parse().with_context(|| format!("bad size {size:?}"))?;
    let registry = std::sync::Arc::new(registry(Path::new(plugins), true)?);
    let runner = runner(&registry, Path::new(hooks))?;
    let before = status_kib("VmHWM:");
    let doc = big_doc(size);
    let o = runner.run(&migrate_event(&doc)).context("the filter event failed")?;
    if o.document(&doc).len() != size {
        return Err(fail("the filter event changed the document's size"));
    }
    let peak = status_kib("VmHWM:");
    println!("{before} {peak}");
    Ok(())
}
