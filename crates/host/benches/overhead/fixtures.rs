//! What the scenarios feed the runner and the baselines: documents, hooks
//! directories, the trivial hook and the hook's environment.

use std::{
    ffi::OsString,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use virt_hooks::Event;

use crate::fail::{Context, Result, fail};

pub(crate) const MIB: usize = 1 << 20;
pub(crate) const GIB: usize = 1 << 30;

/// A small but realistic domain definition whose `<name>` is `vm1`.
pub(crate) const SMALL_XML: &str = "<domain type='kvm'>\n  <name>vm1</name>\n  \
<uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\n  <memory unit='KiB'>2097152</memory>\n  \
<currentMemory unit='KiB'>2097152</currentMemory>\n  <vcpu placement='static'>2</vcpu>\n  \
<os>\n    <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>\n    <boot dev='hd'/>\n  </os>\n  \
<features><acpi/><apic/></features>\n  <cpu mode='host-passthrough' check='none'/>\n  \
<clock offset='utc'/>\n  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  \
<devices>\n    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n    \
<disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n      \
<source file='/var/lib/libvirt/images/vm1.qcow2'/>\n      <target dev='vda' bus='virtio'/>\n    \
</disk>\n    <interface type='network'>\n      <mac address='52:54:00:6b:3c:58'/>\n      \
<source network='default'/>\n      <model type='virtio'/>\n    </interface>\n    \
<console type='pty'/>\n  </devices>\n</domain>\n";

/// `qemu vm1 start begin -` with the small XML: the event of most
/// scenarios.
pub(crate) fn start_event() -> Event<'static> {
    Event::new("qemu", "vm1", "start", "begin", "-").with_input(SMALL_XML.as_bytes())
}

/// `qemu vm1 migrate begin -` with `doc`: an event whose hook output is
/// the new document (a filter).
pub(crate) fn migrate_event(doc: &[u8]) -> Event<'_> {
    Event::new("qemu", "vm1", "migrate", "begin", "-").with_input(doc)
}

/// A filter hook: its output is its input.
pub(crate) const CAT_FILTER: &str = "#!/bin/sh\nexec cat\n";

/// A valid `<domain>` named vm1, padded to exactly `size` bytes by a large
/// `<description>`.
pub(crate) fn big_doc(size: usize) -> Vec<u8> {
    let head = b"<domain type='kvm'><name>vm1</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid><description>";
    let tail = b"</description></domain>\n";
    let mut doc = Vec::with_capacity(size);
    doc.extend_from_slice(head);
    let line = b"padding padding padding padding padding padding padding padding padding padding\n";
    while doc.len() + line.len() + tail.len() <= size {
        doc.extend_from_slice(line);
    }
    doc.resize(size - tail.len(), b'x');
    doc.extend_from_slice(tail);
    doc
}

/// A fresh, empty directory at `path` with mode 0755 (the runner refuses
/// hooks in a directory others may write).
pub(crate) fn new_dir(path: &Path) -> Result<PathBuf> {
    let _ = fs::remove_dir_all(path);
    fs::create_dir_all(path).with_context(|| format!("create {}", path.display()))?;
    set_mode(path, 0o755)?;
    Ok(path.to_owned())
}

/// Copies `src` to `dst` with mode 0755.
pub(crate) fn install(src: &Path, dst: &Path) -> Result<()> {
    fs::copy(src, dst).with_context(|| format!("copy {} to {}", src.display(), dst.display()))?;
    set_mode(dst, 0o755)
}

/// Writes an executable script.
pub(crate) fn write_script(dst: &Path, text: &str) -> Result<()> {
    fs::write(dst, text).with_context(|| format!("write {}", dst.display()))?;
    set_mode(dst, 0o755)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

/// Compiles `int main(void){return 0;}` into `work`, static if the
/// toolchain can; returns the program and which kind it is.
pub(crate) fn trivial_hook(work: &Path) -> Result<(PathBuf, &'static str)> {
    let src = work.join("true.c");
    fs::write(&src, "int main(void){return 0;}\n")
        .with_context(|| format!("write {}", src.display()))?;
    let exe = work.join("true-hook");
    for (flags, kind) in [(&["-O2", "-static"][..], "static C"), (&["-O2"][..], "dynamic C")] {
        let ok = Command::new("cc")
            .args(flags)
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            set_mode(&exe, 0o755)?;
            return Ok((exe, kind));
        }
    }
    Err(fail(
        "cannot compile the trivial hook: `cc -O2 true.c` failed (is a C compiler installed?)",
    ))
}

/// The hook environment the runner builds: `LC_ALL=C`, then the
/// pass-through variables the host has.
pub(crate) fn hook_env() -> Vec<OsString> {
    let mut env = vec![OsString::from("LC_ALL=C")];
    for name in virt_hooks::PASS_THROUGH_ENV {
        if let Some(v) = std::env::var_os(name) {
            let mut e = OsString::from(format!("{name}="));
            e.push(v);
            env.push(e);
        }
    }
    env
}

/// `path` and the four libvirt arguments, as an argv.
pub(crate) fn hook_argv(path: &Path, args: [&str; 4]) -> Vec<OsString> {
    let mut v = vec![path.as_os_str().to_owned()];
    v.extend(args.iter().map(OsString::from));
    v
}

/// A `kB` line of `/proc/self/status`, in KiB.
pub(crate) fn status_kib(key: &str) -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
