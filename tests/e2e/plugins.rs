use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use virt_hooks::{
    DriverError, Event, EventError, ExtraRule, FailurePolicy, InputSpec, PluginFailure,
    PluginWarning, Registry,
};
use virt_hooks_e2e::{PluginDir, fixture, logs, plugin};

const VM1: &[u8] = b"<domain type='kvm'><name>vm1</name>\
    <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid></domain>";

fn load(dir: &Path) -> Registry {
    logs(""); // the keeping logger must be in place before a plugin loads
    let mut builder = Registry::builder();
    builder.search().dir(dir).only_explicit();
    builder.build()
}

fn names(registry: &Registry) -> Vec<&str> {
    registry.drivers().iter().map(|d| d.name()).collect()
}

/// Loads `dir`, which must hold one bad plugin and nothing else, and returns
/// the reason it was refused.
fn only_error(dir: &PluginDir) -> String {
    let registry = load(dir.path());
    assert!(registry.drivers().is_empty(), "{:?}", names(&registry));
    assert_eq!(registry.errors().len(), 1, "{:?}", registry.errors());
    let error = &registry.errors()[0];
    assert_eq!(error.file.parent(), Some(dir.path()));
    let reason = error.reason.to_string();
    assert!(!reason.contains('\n'), "not one line: {reason:?}");
    reason
}

#[test]
fn the_real_plugins_load_with_libvirts_vocabulary() {
    let dir = PluginDir::with_drivers();
    let registry = load(dir.path());
    assert_eq!(registry.errors(), []);
    assert_eq!(names(&registry), ["bhyve", "daemon", "libxl", "lxc", "qemu"]); // file name order
    for driver in registry.drivers() {
        let file = dir.path().join(format!("libvirt_hooks_driver_{}.so", driver.name()));
        assert_eq!(driver.file(), Some(file.as_path()));
        assert_eq!(driver.info().version, "0.1.0");
    }

    let daemon = registry.get("daemon").unwrap();
    let reload = daemon.operations().iter().find(|op| op.name == "reload").unwrap();
    assert_eq!(reload.extra, ExtraRule::fixed("SIGHUP"));
    assert_eq!(reload.sub_operations, ["begin"]);
    assert_eq!(reload.on_failure, FailurePolicy::Ignore);

    let qemu = registry.get("qemu").unwrap();
    let release = qemu.operations().iter().find(|op| op.name == "release").unwrap();
    let ExtraRule::OneOf(reasons) = &release.extra else { panic!("{:?}", release.extra) };
    assert!(reasons.iter().any(|r| r == "from snapshot"), "{reasons:?}");
    assert_eq!(reasons.len(), 10);
    assert_eq!(release.input, InputSpec::xml("domain"));
    let filters: Vec<&str> =
        qemu.operations().iter().filter(|op| op.filter).map(|op| op.name.as_str()).collect();
    assert_eq!(filters, ["migrate", "restore"]);
    assert_eq!(registry.get("lxc").unwrap().operations().len(), 6);

    let libxl = registry.get("libxl").unwrap();
    let filters: Vec<&str> =
        libxl.operations().iter().filter(|op| op.filter).map(|op| op.name.as_str()).collect();
    assert_eq!(filters, ["migrate"]);
    let release = libxl.operations().iter().find(|op| op.name == "release").unwrap();
    assert_eq!(release.extra, ExtraRule::Dash);
    assert_eq!(release.on_failure, FailurePolicy::Ignore);
    let bhyve = registry.get("bhyve").unwrap();
    let ops: Vec<&str> = bhyve.operations().iter().map(|op| op.name.as_str()).collect();
    assert_eq!(ops, ["prepare", "start", "started", "stopped", "release"]);
}

#[test]
fn the_real_plugins_check_events_across_the_boundary() {
    let dir = PluginDir::with_drivers();
    let registry = load(dir.path());
    let qemu = registry.get("qemu").unwrap();

    let ok = Event::new("qemu", "vm1", "started", "begin", "-").with_input(VM1);
    assert_eq!(qemu.validate(&ok).map(|op| op.name.as_str()), Ok("started"));
    let wrong = Event::new("qemu", "vm2", "started", "begin", "-").with_input(VM1);
    assert_eq!(
        qemu.validate(&wrong).unwrap_err().to_string(),
        "driver 'qemu' refused 'started': the domain XML names 'vm1', not the object 'vm2'"
    );
    let migrate = Event::new("qemu", "vm1", "migrate", "begin", "-").with_input(VM1);
    assert_eq!(
        qemu.check_output(&migrate, b"<domain><name>vm3</name></domain>"),
        Err(DriverError::invalid("the hook output renames the domain from 'vm1' to 'vm3'"))
    );

    let daemon = registry.get("daemon").unwrap();
    assert!(daemon.validate(&Event::new("daemon", "-", "reload", "begin", "SIGHUP")).is_ok());
    let lxc = registry.get("lxc").unwrap();
    let not_domain = Event::new("lxc", "ct", "start", "begin", "-").with_input(b"<network/>");
    assert!(matches!(lxc.validate(&not_domain), Err(EventError::Driver { .. })));
}

#[test]
fn plugin_log_records_reach_the_host_logger() {
    let dir = PluginDir::with_drivers();
    let registry = load(dir.path());
    let doc = b"<domain><name>log-probe-vm</name></domain>";
    let event = Event::new("qemu", "log-probe-vm", "prepare", "begin", "-").with_input(doc);
    registry.get("qemu").unwrap().validate(&event).unwrap();
    let records = logs("qemu prepare log-probe-vm");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].level, log::Level::Debug);
    assert_eq!(records[0].target, "virt_hooks_driver_qemu");
}

#[test]
fn a_panic_in_a_driver_method_fails_that_call_and_the_host_goes_on() {
    let dir = PluginDir::with_drivers();
    dir.add(&fixture("validate-panics"));
    let registry = load(dir.path());
    assert_eq!(registry.errors(), []);
    let panicky = registry.get("panicky").unwrap();
    let event = Event::new("panicky", "panic-probe", "start", "-", "-");
    for _ in 0..2 {
        match panicky.validate(&event) {
            Err(EventError::Driver { source: DriverError::Panicked(message), .. }) => {
                assert_eq!(message, "fixture validate-panics: validate gives up on panic-probe")
            }
            other => panic!("{other:?}"),
        }
    }
    // The warning before each panic, and the panic message itself (routed to
    // the log instead of stderr), reached the host's logger.
    let warned = logs("about to panic for panic-probe");
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert_eq!(warned[0].level, log::Level::Warn);
    let panics = logs("validate gives up on panic-probe");
    assert!(
        panics
            .iter()
            .any(|l| l.target == "virt_hooks_abi" && l.message.starts_with("plugin panicked at ")),
        "{panics:?}"
    );
    // Other drivers still work.
    let ok = Event::new("qemu", "vm1", "start", "begin", "-").with_input(VM1);
    assert!(registry.get("qemu").unwrap().validate(&ok).is_ok());
}

#[test]
fn a_text_file_named_like_a_plugin() {
    let dir = PluginDir::new();
    dir.write("libvirt_hooks_driver_notes.so", "just some text\n");
    let reason = only_error(&dir);
    assert!(reason.starts_with("not a shared library ("), "{reason}");
    assert!(reason.contains("file too short") || reason.contains("invalid ELF header"), "{reason}");
}

#[test]
fn a_library_without_a_root_module() {
    let dir = PluginDir::new();
    dir.add(&fixture("no-root-module"));
    assert_eq!(
        only_error(&dir),
        "a shared library, but not a virt-hooks plugin (it exports no root module)"
    );
}

#[test]
fn a_plugin_whose_init_panics() {
    let dir = PluginDir::new();
    dir.add(&fixture("init-panics"));
    assert_eq!(
        only_error(&dir),
        "its init panicked: fixture init-panics: the constructor gives up"
    );
    let warned = logs("fixture init-panics: about to panic in the constructor");
    assert!(warned.iter().any(|l| l.level == log::Level::Warn), "{warned:?}");
}

#[test]
fn a_plugin_built_against_another_major_version() {
    let dir = PluginDir::new();
    dir.add(&fixture("abi-v2"));
    assert_eq!(only_error(&dir), "built against virt-hooks-abi 2.0.0, this host speaks 1.0.0");
}

#[test]
fn a_plugin_with_the_same_version_and_a_changed_layout() {
    let dir = PluginDir::new();
    dir.add(&fixture("abi-layout"));
    let reason = only_error(&dir);
    assert_eq!(
        reason,
        "built against an incompatible virt-hooks-abi 1.0.0+changed-layout (this host speaks \
         1.0.0): mismatched type (expected u8, found u32); mismatched type (expected RResult, \
         found u64)"
    );
    // The start of abi_stable's long report went to the debug log.
    let report = logs("layout mismatch in ");
    assert!(report.iter().any(|l| l.message.contains("libvirt_hooks_driver_abi_layout.so")));
}

#[test]
fn a_second_plugin_for_the_same_driver_is_reported_and_the_first_kept() {
    let dir = PluginDir::with_drivers();
    let copy = dir.add_as(&plugin("qemu"), "libvirt_hooks_driver_qemu_copy.so");
    let registry = load(dir.path());
    assert_eq!(names(&registry), ["bhyve", "daemon", "libxl", "lxc", "qemu"]);
    let first = dir.path().join("libvirt_hooks_driver_qemu.so");
    assert_eq!(registry.get("qemu").unwrap().file(), Some(first.as_path()));
    assert_eq!(registry.errors().len(), 1);
    assert_eq!(registry.errors()[0].file, copy);
    assert_eq!(
        registry.errors()[0].reason.to_string(),
        format!("a second 'qemu' driver, ignored; the first came from {}", first.display())
    );

    // Across directories the first directory on the search path wins.
    let other = PluginDir::new();
    let later = other.add(&plugin("qemu"));
    logs("");
    let mut builder = Registry::builder();
    builder.search().dir(other.path()).dir(dir.path()).only_explicit();
    let registry = builder.build();
    assert_eq!(registry.get("qemu").unwrap().file(), Some(later.as_path()));
    assert_eq!(registry.errors().len(), 2); // qemu and qemu_copy in `dir`
}

#[test]
fn a_plugin_whose_file_name_names_another_driver_loads_with_a_warning() {
    let dir = PluginDir::new();
    let file = dir.add_as(&plugin("qemu"), "libvirt_hooks_driver_kvm.so");
    let registry = load(dir.path());
    assert_eq!(registry.errors(), []);
    assert_eq!(names(&registry), ["qemu"]);
    let warning = PluginWarning::NameMismatch {
        file: file.clone(),
        named: "kvm".to_owned(),
        driver: "qemu".to_owned(),
    };
    assert_eq!(registry.warnings(), std::slice::from_ref(&warning));
    let text = warning.to_string();
    assert_eq!(
        text,
        format!(
            "{}: the file name says driver 'kvm' but the plugin provides driver 'qemu'; \
             rename the file to libvirt_hooks_driver_qemu.so",
            file.display()
        )
    );
    let logged = logs(&text);
    assert!(!logged.is_empty() && logged.iter().all(|l| l.level == log::Level::Warn), "{logged:?}");

    // The one-driver shortcut finds the file named after 'kvm', which holds
    // 'qemu': every plugin is loaded, that file once, and it is reported once.
    let only = |name: &str| {
        let mut builder = Registry::builder();
        builder.only_driver(name).search().dir(dir.path()).only_explicit();
        builder.build()
    };
    let registry = only("kvm");
    assert_eq!((names(&registry), registry.errors()), (vec!["qemu"], &[][..]));
    assert_eq!(registry.warnings(), std::slice::from_ref(&warning));
    // No file is named after 'qemu': the shortcut cannot find it, every
    // plugin is loaded, and the reason is reported.
    let registry = only("qemu");
    assert_eq!((names(&registry), registry.errors()), (vec!["qemu"], &[][..]));
    assert_eq!(registry.warnings(), [warning]);

    // Named after its driver, the same file loads without a warning.
    let right = PluginDir::new();
    right.add(&plugin("qemu"));
    assert_eq!(load(right.path()).warnings(), []);
}

#[test]
fn a_group_writable_plugin_is_refused_without_being_opened() {
    let dir = PluginDir::new();
    let file = dir.add(&plugin("qemu"));
    fs::set_permissions(&file, fs::Permissions::from_mode(0o775)).unwrap();
    assert_eq!(only_error(&dir), "refused: the file is writable by its group (mode 0775)");
    // The same file is fine once nobody else may write it.
    fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(names(&load(dir.path())), ["qemu"]);
}

#[test]
fn a_plugin_in_a_world_writable_directory_is_refused() {
    let dir = PluginDir::new();
    dir.add(&plugin("lxc"));
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(
        only_error(&dir),
        format!(
            "refused: its directory {} is writable by group and others (mode 0777)",
            dir.path().display()
        )
    );
}

#[test]
fn a_plugin_owned_by_another_user_is_refused() {
    let dir = PluginDir::new();
    let file = dir.add(&plugin("daemon"));
    let euid = fs::metadata(&file).unwrap().uid(); // a new file belongs to the effective uid
    if euid != 0 {
        eprintln!("skipped: changing a file's owner needs root (running as uid {euid})");
        return;
    }
    std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
    assert_eq!(only_error(&dir), "refused: the file is owned by uid 65534, not root or uid 0");
}

#[test]
fn bad_plugins_never_stop_good_ones() {
    let dir = PluginDir::with_drivers();
    for name in ["no-root-module", "init-panics", "validate-panics", "abi-v2", "abi-layout"] {
        dir.add(&fixture(name));
    }
    dir.write("libvirt_hooks_driver_0_text.so", "text");
    dir.write("README", "ignored: not a plugin file name");
    let registry = load(dir.path());
    assert_eq!(names(&registry), ["bhyve", "daemon", "libxl", "lxc", "qemu", "panicky"]);
    let failed: Vec<String> = registry
        .errors()
        .iter()
        .map(|e| e.file.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        failed,
        [
            "libvirt_hooks_driver_0_text.so",
            "libvirt_hooks_driver_abi_layout.so",
            "libvirt_hooks_driver_abi_v2.so",
            "libvirt_hooks_driver_init_panics.so",
            "libvirt_hooks_driver_no_root_module.so",
        ]
    );
}

/// `<e>/safe/<plugin>` (root's copy of the daemon plugin), `<e>/sticky`
/// (mode 1777) holding nobody's copy of the lxc plugin, and `<e>/open`
/// (mode 0755): the places of issue 11's plugin chain. `None` without root
/// (printed).
fn plugin_chain_places() -> Option<(PluginDir, PathBuf, PathBuf)> {
    let e = PluginDir::new();
    if fs::metadata(e.path()).unwrap().uid() != 0 {
        eprintln!("skipped: making files owned by uid 65534 needs root");
        return None;
    }
    for (sub, mode) in [("safe", 0o755), ("sticky", 0o1777), ("open", 0o755)] {
        fs::create_dir(e.path().join(sub)).unwrap();
        fs::set_permissions(e.path().join(sub), fs::Permissions::from_mode(mode)).unwrap();
    }
    let safe = e.add_as(&plugin("daemon"), "safe/libvirt_hooks_driver_daemon.so");
    let evil = e.add_as(&plugin("lxc"), "sticky/evil.so");
    std::os::unix::fs::chown(&evil, Some(65534), Some(65534)).unwrap();
    Some((e, safe, evil))
}

/// Makes `link` -> `target`, owned by nobody.
fn nobodys_link(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
    std::os::unix::fs::lchown(link, Some(65534), Some(65534)).unwrap();
}

/// `<dir>/libvirt_hooks_driver_daemon.so` (root's link) -> `<e>/<holder>/l2`
/// (nobody's link) -> `target`.
fn plugin_chain(dir: &PluginDir, e: &PluginDir, holder: &str, target: &Path) -> PathBuf {
    let l2 = e.path().join(holder).join("l2");
    nobodys_link(target, &l2);
    std::os::unix::fs::symlink(&l2, dir.path().join("libvirt_hooks_driver_daemon.so")).unwrap();
    l2
}

#[test]
fn a_plugin_reached_through_nobodys_link_is_refused_though_it_ends_at_a_safe_file() {
    let Some((e, safe, _)) = plugin_chain_places() else { return };
    let dir = PluginDir::new();
    let l2 = plugin_chain(&dir, &e, "open", &safe);
    let expected = format!(
        "refused: {} is a symbolic link owned by uid 65534, not root or uid 0",
        l2.display()
    );
    assert_eq!(only_error(&dir), expected);
    // The same through the one-driver load of `run` and libvirt's hook.
    let mut builder = Registry::builder();
    builder.only_driver("daemon").search().dir(dir.path()).only_explicit();
    let registry = builder.build();
    assert!(registry.drivers().is_empty());
    assert_eq!(registry.errors()[0].reason.to_string(), expected);
}

#[test]
fn a_plugin_link_in_a_sticky_directory_is_refused() {
    let Some((e, safe, _)) = plugin_chain_places() else { return };
    let dir = PluginDir::new();
    plugin_chain(&dir, &e, "sticky", &safe);
    assert_eq!(
        only_error(&dir),
        format!(
            "refused: {} is writable by group and others (mode 1777)",
            e.path().join("sticky").display()
        )
    );
}

#[test]
fn swapping_nobodys_plugin_link_under_the_loader_never_wins() {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };
    let Some((e, safe, evil)) = plugin_chain_places() else { return };
    let dir = PluginDir::new();
    let l2 = plugin_chain(&dir, &e, "sticky", &safe);
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let tmp = l2.with_extension("new");
            let mut flip = false;
            while !stop.load(Ordering::Relaxed) {
                let _ = fs::remove_file(&tmp);
                nobodys_link(if flip { &safe } else { &evil }, &tmp);
                fs::rename(&tmp, &l2).unwrap();
                flip = !flip;
            }
        })
    };
    let started = std::time::Instant::now();
    let (mut loads, mut wins, mut refused) = (0, 0, 0);
    while loads < 300 && started.elapsed() < std::time::Duration::from_secs(30) {
        loads += 1;
        let registry = load(dir.path());
        wins += usize::from(registry.get("lxc").is_some());
        refused += usize::from(
            registry.drivers().is_empty()
                && registry.errors().iter().all(|e| matches!(e.reason, PluginFailure::Refused(_))),
        );
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert_eq!(wins, 0, "nobody's library was loaded in {wins} of {loads} loads");
    assert_eq!(refused, loads, "every load refused the chain");
    assert!(loads >= 50, "only {loads} loads in 30 s");
}
