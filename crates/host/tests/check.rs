//! `check` tells the truth (issue 13): with the per-object layout (virt-hook
//! installed as the hook) every entry of the per-object trees gets the
//! runner's verdict, and what `plan` lists is what `check` says runs.

use std::os::unix::fs::symlink;
use std::path::Path;

use virt_hooks::{CheckOptions, Event, Layout, RegistryBuilder, RunnerBuilder, SkipReason};

use crate::util::{DOMAIN, Hooks};

/// The check of `hooks` with `<hooks>/qemu` taken for virt-hook.
fn check_installed(hooks: &Hooks) -> virt_hooks::CheckReport {
    let main = hooks.path().join("qemu");
    let is_virt_hook = move |path: &Path| path == main;
    hooks.runner().check_with(&CheckOptions { layout: None, is_virt_hook: Some(&is_virt_hook) })
}

fn verdict<'r>(
    report: &'r virt_hooks::CheckReport,
    rel: &str,
    hooks: &Hooks,
) -> &'r virt_hooks::CheckedFile {
    let path = hooks.path().join(rel);
    let qemu = report.drivers.iter().find(|d| d.driver == "qemu").expect("qemu");
    qemu.per_object
        .iter()
        .chain(&qemu.drop_ins)
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("{rel} not in {:#?}", qemu.per_object))
}

#[test]
fn every_per_object_entry_gets_the_runners_verdict() {
    let hooks = Hooks::new();
    hooks.script("qemu", "exit 0");
    hooks.script("qemu.d/vm1/start/begin/10-ok", "exit 0");
    hooks.script("qemu.d/vm1/start/begin/20-gw", "exit 0");
    hooks.set_mode("qemu.d/vm1/start/begin/20-gw", 0o775);
    hooks.file("qemu.d/vm1/start/begin/30-noexec", "#!/bin/sh\n", 0o644);
    symlink("nowhere", hooks.path().join("qemu.d/vm1/start/begin/40-dangling")).expect("ln");
    hooks.script("qemu.d/vm1/start/begin/50-x.dpkg-new", "exit 0");
    hooks.script("qemu.d/vm1/start/begin/#60#", "exit 0");
    hooks.file("qemu.d/vm1/start/begin/.70.swp", "x", 0o644);
    hooks.script("qemu.d/vm1/start/begin/nested/x", "exit 0");
    hooks.script("qemu.d/vm1/start/begin/deferred/x", "exit 0");
    hooks.script("qemu.d/vm1/release/end", "exit 0");
    hooks.file("qemu.d/vm2/release/end", "#!/bin/sh\n", 0o775);
    symlink("nowhere", hooks.path().join("qemu.d/vm2/prepare")).expect("ln");
    hooks.script("qemu.d/vm2/start/bgein", "exit 0");
    hooks.script("qemu.d/vm2/stray", "exit 0");
    hooks.script("qemu.d/10-top", "exit 0");
    hooks.script("qemu.d/20-x.rpmsave", "exit 0");

    let report = check_installed(&hooks);
    let qemu = report.drivers.iter().find(|d| d.driver == "qemu").expect("qemu");
    assert!(qemu.virt_hook && qemu.loaded && qemu.layout == Layout::PerObject);
    let v = |rel| verdict(&report, rel, &hooks);
    assert!(
        v("qemu.d/vm1/start/begin/10-ok").runs && !v("qemu.d/vm1/start/begin/10-ok").has_problem()
    );
    let gw = v("qemu.d/vm1/start/begin/20-gw");
    assert!(
        matches!(&gw.skipped, Some(SkipReason::Refused(r)) if r.contains("writable by its group")),
        "{gw:?}"
    );
    assert_eq!(v("qemu.d/vm1/start/begin/30-noexec").skipped, Some(SkipReason::NotExecutable));
    assert_eq!(v("qemu.d/vm1/start/begin/40-dangling").skipped, Some(SkipReason::DanglingSymlink));
    for leftover in ["50-x.dpkg-new", "#60#", ".70.swp"] {
        let rel = format!("qemu.d/vm1/start/begin/{leftover}");
        let f = verdict(&report, &rel, &hooks);
        assert!(f.warnings.iter().any(|w| w.contains("leftover")), "{f:?}");
    }
    assert!(v("qemu.d/vm1/start/begin/nested").warnings[0].contains("nested directory"));
    // The deferred scripts are judged like the others, not as a nested
    // directory.
    let deferred = v("qemu.d/vm1/start/begin/deferred/x");
    assert!(deferred.runs && !deferred.has_problem(), "{deferred:?}");
    assert!(!qemu.per_object.iter().any(|f| f.path.ends_with("begin/deferred")));
    assert!(v("qemu.d/vm1/release/end").runs);
    assert!(matches!(v("qemu.d/vm2/release/end").skipped, Some(SkipReason::Refused(_))));
    assert_eq!(v("qemu.d/vm2/prepare").skipped, None);
    assert!(v("qemu.d/vm2/prepare").warnings[0].contains("never runs"), "a file at <object>/<op>");
    let typo = v("qemu.d/vm2/start/bgein");
    assert!(!typo.runs && typo.warnings[0].contains("no sub-operation 'bgein'"), "{typo:?}");
    assert!(!v("qemu.d/vm2/stray").runs);
    assert!(v("qemu.d/10-top").warnings[0].contains("libvirt runs this itself"));
    assert!(v("qemu.d/20-x.rpmsave").warnings.iter().any(|w| w.contains(".rpm*")));
    assert!(!report.is_clean());

    // plan lists exactly what check says runs, in order.
    let mut b = hooks.builder();
    b.layout(Layout::PerObject);
    let runner = b.build().expect("build");
    for (object, op, sub, extra) in [("vm1", "start", "begin", "-"), ("vm1", "release", "end", "-")]
    {
        let event = Event::new("qemu", object, op, sub, extra).with_input(DOMAIN);
        let plan = runner.plan(&event).expect("plan");
        let planned: Vec<_> =
            plan.scripts.iter().chain(&plan.deferred).map(|s| s.path.clone()).collect();
        let dir = hooks.path().join(format!("qemu.d/{object}/{op}/{sub}"));
        let runs: Vec<_> = qemu
            .per_object
            .iter()
            .filter(|f| f.runs && f.path.starts_with(&dir))
            .map(|f| f.path.clone())
            .collect();
        assert_eq!(planned, runs, "{object} {op} {sub}");
    }
}

#[test]
fn the_libvirt_layout_leaves_per_object_directories_alone() {
    let hooks = Hooks::new();
    hooks.script("qemu", "exit 0");
    hooks.script("qemu.d/vm1/start/begin", "exit 0");
    hooks.set_mode("qemu.d/vm1/start/begin", 0o775);
    let report = hooks.runner().check();
    assert!(report.is_clean(), "{:?}", report.problems());
    // Told the layout, the same tree has a problem.
    let report = hooks
        .runner()
        .check_with(&CheckOptions { layout: Some(Layout::PerObject), is_virt_hook: None });
    assert!(!report.is_clean());
    assert!(
        report.problems().iter().any(|p| p.contains("writable by its group")),
        "{:?}",
        report.problems()
    );
}

#[test]
fn a_missing_hooks_directory_and_no_driver_are_problems() {
    let hooks = Hooks::new();
    let mut b = hooks.builder();
    b.hooks_dir(hooks.path().join("missing"));
    let report = b.build().expect("build").check();
    assert!(report.hooks_dir_error.as_deref().is_some_and(|e| e.contains("does not exist")));

    let mut registry = RegistryBuilder::new();
    registry.search().only_explicit();
    let mut b = RunnerBuilder::new(std::sync::Arc::new(registry.build()));
    b.hooks_dir(hooks.path());
    let report = b.build().expect("build").check();
    assert!(report.system.iter().any(|p| p.starts_with("no driver loaded")), "{:?}", report.system);
    assert!(!report.is_clean());
}

#[test]
fn virt_hook_installed_for_a_driver_without_a_plugin_is_a_problem_and_its_tree_is_checked() {
    let hooks = Hooks::new();
    hooks.script("libxl", "exit 0");
    hooks.script("libxl.d/vm1/start/begin", "exit 0");
    hooks.set_mode("libxl.d/vm1/start/begin", 0o775);
    let main = hooks.path().join("libxl");
    let is_virt_hook = move |path: &Path| path == main;
    let report = hooks
        .runner()
        .check_with(&CheckOptions { layout: None, is_virt_hook: Some(&is_virt_hook) });
    assert!(
        report.system.iter().any(|p| p.contains("no plugin provides driver 'libxl'")),
        "{:?}",
        report.system
    );
    let libxl = report.drivers.iter().find(|d| d.driver == "libxl").expect("libxl");
    assert!(!libxl.loaded);
    assert!(matches!(libxl.per_object[0].skipped, Some(SkipReason::Refused(_))));
    assert!(report.stray.is_empty(), "{:?}", report.stray);
}
