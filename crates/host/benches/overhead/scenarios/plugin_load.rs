//! Scenario 6: loading the plugins of the scenarios' drivers in a fresh process,
//! against `dlopen` of the same files.

use std::{path::Path, time::Instant};

use crate::{
    artifacts::{DRIVERS, plugin_file},
    fail::{Context, Result, fail},
    report::{Goal, Report, Unit},
    scenarios::{Ctx, Pair, check, load},
};
use virt_hooks_exec::baseline::Libraries;

pub(crate) fn run(c: &Ctx, r: &mut Report) -> Result<()> {
    println!(
        "\n[6] loading the {} release plugins, each measurement in a fresh process",
        DRIVERS.len()
    );
    let child = |flag: &str| -> Result<f64> {
        let text = c.child(flag, &[c.installed.dir.as_ref()])?;
        let ns: f64 = text.trim().parse().with_context(|| format!("{flag} printed {text:?}"))?;
        Ok(ns / 1e9)
    };
    let m = Pair {
        ours: "RegistryBuilder::build",
        base: "dlopen of the same files",
        warm: 2,
        n: c.n(40, 8),
        unit: Unit::Millis,
    }
    .measure(|| child("--child-load"), || child("--child-dlopen"))?;
    r.record(
        "6 load three plugins",
        m,
        Goal::OursLe(5.0),
        "time inside a fresh process: RegistryBuilder::build (one explicit dir holding daemon, lxc and qemu only, defaults off) vs dlopen(RTLD_LAZY|RTLD_LOCAL) of the same three files",
    );
    Ok(())
}

fn dir_arg<'a>(args: &'a [String], flag: &str) -> Result<&'a Path> {
    match args {
        [dir] => Ok(Path::new(dir)),
        _ => Err(fail(format!("usage: {flag} PLUGIN_DIR"))),
    }
}

/// `--child-load PLUGIN_DIR`: prints the nanoseconds `RegistryBuilder::build`
/// takes on the directory (which must hold the plugins and nothing that
/// fails).
pub(crate) fn child_load(args: &[String]) -> Result<()> {
    let dir = dir_arg(args, "--child-load")?;
    let t = Instant::now();
    let reg = load(dir);
    let ns = t.elapsed().as_nanos();
    check(&reg, dir, true)?;
    // Plugins are never unloaded; neither is the registry dropped here.
    std::mem::forget(reg);
    println!("{ns}");
    Ok(())
}

/// `--child-dlopen PLUGIN_DIR`: prints the nanoseconds `dlopen` of the
/// plugins of the scenarios' drivers takes.
pub(crate) fn child_dlopen(args: &[String]) -> Result<()> {
    let dir = dir_arg(args, "--child-dlopen")?;
    let files: Vec<_> = DRIVERS.iter().map(|d| dir.join(plugin_file(d))).collect();
    let paths: Vec<&Path> = files.iter().map(AsRef::as_ref).collect();
    let libs = Libraries::new(&paths).context("bad plugin path")?;
    let t = Instant::now();
    libs.open_all()?;
    let ns = t.elapsed().as_nanos();
    println!("{ns}");
    Ok(())
}
