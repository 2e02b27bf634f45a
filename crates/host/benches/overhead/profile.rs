//! `--profile WHAT PLUGIN_DIR N`: one piece of work N times, untimed, for
//! `valgrind --tool=callgrind`, `strace -c` or `perf` (see
//! docs/performance.md). PLUGIN_DIR must hold the plugins of the scenarios'
//! drivers; other plugins there are loaded too.
//!
//! WHAT: `nohooks` (scenario 3), `validate` (the qemu driver's check of the
//! small XML only), `one` (scenario 1), `filter` (scenario 5, one 64 MiB
//! document), `load` (scenario 6), `validate64` (the qemu driver's two
//! checks of scenario 5's document, each timed, and one copy of it).

use std::{path::Path, sync::Arc};

use crate::{
    fail::{Context, Result, fail},
    fixtures::{
        CAT_FILTER, MIB, big_doc, install, migrate_event, new_dir, start_event, trivial_hook,
        write_script,
    },
    scenarios::{registry, run_ok, runner},
    stats::timed,
};

pub(crate) fn run(args: &[String]) -> Result<()> {
    let [what, plugins, n] = args else {
        return Err(fail("usage: --profile WHAT PLUGIN_DIR N"));
    };
    let plugins = Path::new(plugins);
    let n: usize = n.parse().with_context(|| format!("bad count {n:?}"))?;
    if what == "load" {
        for _ in 0..n {
            std::mem::forget(registry(plugins, false)?);
        }
        return Ok(());
    }
    let tmp = tempfile::Builder::new().prefix("virt-hooks-prof-").tempdir()?;
    let work = new_dir(&tmp.path().join("w"))?;
    let registry = Arc::new(registry(plugins, false)?);
    let hooks = new_dir(&work.join("hooks"))?;
    let runner = runner(&registry, &hooks)?;
    let small = start_event();
    let qemu = registry.get("qemu").context("no qemu driver")?;
    match what.as_str() {
        "nohooks" => (0..n).try_for_each(|_| run_ok(&runner, &small, 0)),
        "validate" => (0..n).try_for_each(|_| qemu.validate(&small).map(drop).context("validate")),
        "one" => {
            let (hook, _) = trivial_hook(&work)?;
            install(&hook, &hooks.join("qemu"))?;
            (0..n).try_for_each(|_| run_ok(&runner, &small, 1))
        }
        "filter" => {
            write_script(&hooks.join("qemu"), CAT_FILTER)?;
            let doc = big_doc(64 * MIB);
            let event = migrate_event(&doc);
            (0..n).try_for_each(|_| run_ok(&runner, &event, 1))
        }
        "validate64" => {
            let doc = big_doc(64 * MIB);
            let event = migrate_event(&doc);
            for _ in 0..n {
                let a = timed(|| qemu.validate(&event).map(drop).context("validate"))?;
                let b = timed(|| qemu.check_output(&event, &doc).context("check_output"))?;
                let copy = timed(|| {
                    drop(std::hint::black_box(doc.clone()));
                    Ok(())
                })?;
                println!(
                    "validate {:.1} ms, check_output {:.1} ms, one 64 MiB copy {:.1} ms",
                    a * 1e3,
                    b * 1e3,
                    copy * 1e3
                );
            }
            Ok(())
        }
        other => Err(fail(format!(
            "unknown --profile {other:?} (nohooks, validate, one, filter, load, validate64)"
        ))),
    }
}
