//! The per-object layout: `<hooks>/<driver>.d/<object>/<op>/<subop>`, alone
//! (virt-hook as libvirt's hook) or after libvirt's scripts (embedded).

use virt_hooks::{Layout, RunError};

use crate::util::{Hooks, qemu, stdouts};

fn names(hooks: &Hooks, outcome: &virt_hooks::Outcome) -> Vec<String> {
    outcome
        .scripts
        .iter()
        .map(|s| {
            s.path.strip_prefix(hooks.path()).expect("inside the hooks dir").display().to_string()
        })
        .collect()
}

/// A hooks dir with libvirt's scripts and per-object ones for vm1.
fn tree() -> Hooks {
    let hooks = Hooks::new();
    hooks.script("qemu", "echo main");
    hooks.script("qemu.d/10-all", "echo all");
    hooks.script("qemu.d/vm1/start/begin/20-b", "echo b");
    hooks.script("qemu.d/vm1/start/begin/10-a", "echo a");
    hooks.script("qemu.d/vm1/start/begin/.hidden", "echo hidden");
    hooks.file("qemu.d/vm1/start/begin/notes", b"not a script", 0o644);
    hooks.script("qemu.d/vm1/prepare/begin", "echo prepare-file");
    hooks.script("qemu.d/vm2/start/begin/10-other", "echo other");
    hooks
}

#[test]
fn libvirt_layout_never_looks_into_subdirectories() {
    let hooks = tree();
    let outcome = hooks.runner().run(&qemu("vm1", "start", "begin", "-")).unwrap();
    assert_eq!(names(&hooks, &outcome), ["qemu", "qemu.d/10-all"]);
}

#[test]
fn per_object_layout_runs_only_the_objects_scripts_in_byte_order() {
    let hooks = tree();
    let runner = hooks.builder().layout(Layout::PerObject).build().unwrap();
    let outcome = runner.run(&qemu("vm1", "start", "begin", "-")).unwrap();
    assert_eq!(
        names(&hooks, &outcome),
        [
            "qemu.d/vm1/start/begin/.hidden",
            "qemu.d/vm1/start/begin/10-a",
            "qemu.d/vm1/start/begin/20-b"
        ]
    );
    assert_eq!(outcome.scripts[1].argv[1..], ["vm1", "start", "begin", "-"]);
    assert!(outcome.skipped.iter().any(|s| s.path.ends_with("begin/notes")));
}

#[test]
fn a_per_object_file_is_one_script() {
    let hooks = tree();
    let runner = hooks.builder().layout(Layout::PerObject).build().unwrap();
    let outcome = runner.run(&qemu("vm1", "prepare", "begin", "-")).unwrap();
    assert_eq!(stdouts(&outcome), ["prepare-file\n"]);
    let none = runner.run(&qemu("vm1", "release", "end", "-")).unwrap();
    assert!(none.scripts.is_empty());
}

#[test]
fn both_runs_libvirts_scripts_then_the_objects() {
    let hooks = tree();
    let runner = hooks.builder().layout(Layout::Both).build().unwrap();
    let outcome = runner.run(&qemu("vm1", "start", "begin", "-")).unwrap();
    assert_eq!(stdouts(&outcome), ["main\n", "all\n", "hidden\n", "a\n", "b\n"]);
    let plan = runner.plan(&qemu("vm1", "start", "begin", "-")).unwrap();
    assert_eq!(plan.scripts.len(), 5);
}

#[test]
fn a_refusing_per_object_script_refuses_with_its_message() {
    let hooks = Hooks::new();
    hooks.script("qemu.d/vm1/start/begin/10-deny", "echo 'vm1 may not start' >&2; exit 1");
    let runner = hooks.builder().layout(Layout::PerObject).build().unwrap();
    let err = runner.run(&qemu("vm1", "start", "begin", "-")).unwrap_err();
    let RunError::Refused { message, .. } = err else { panic!("{err}") };
    assert!(message.ends_with("unexpected exit status 1: vm1 may not start\n"), "{message}");
}

#[test]
fn objects_that_are_not_plain_names_have_no_per_object_scripts() {
    let hooks = Hooks::new();
    let marker = hooks.path().join("ran");
    // `..` would lead out of qemu.d (qemu.d/../start/begin is
    // <hooks>/start/begin) and `.` would be the `.d` itself.
    hooks.script("start/begin", &format!("touch {}", marker.display()));
    hooks.script("qemu.d/start/begin", &format!("touch {}", marker.display()));
    let runner = hooks.builder().layout(Layout::PerObject).build().unwrap();
    for object in ["..", "."] {
        let outcome = runner.run(&qemu(object, "start", "begin", "-")).unwrap();
        assert!(outcome.scripts.is_empty(), "{object}");
    }
    assert!(!marker.exists());
}

#[test]
fn a_file_on_the_way_means_no_per_object_scripts() {
    let hooks = Hooks::new();
    // A file where a directory is expected on the way is "no scripts" (a
    // directory that cannot be listed is an error, as for `.d`).
    hooks.file("qemu.d/vm1", b"x", 0o644);
    let runner = hooks.builder().layout(Layout::PerObject).build().unwrap();
    assert!(runner.run(&qemu("vm1", "start", "begin", "-")).unwrap().scripts.is_empty());
}
