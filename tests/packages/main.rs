//! The package metadata ships what the workspace builds: cargo-deb's
//! `[package.metadata.deb]` and cargo-generate-rpm's
//! `[package.metadata.generate-rpm]` describe one host package and one
//! package per driver plugin, the same files in both formats, the licence
//! texts in each, and a plugin interface that keeps hosts and drivers of
//! different majors apart. Every source file must exist; with
//! `VIRT_HOOKS_CHECK_RELEASE=1` (`.ci/packages.sh`, after the release build)
//! so must the built ones in `target/release/`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use virt_hooks_e2e::{target_directory, workspace_root};

/// Set to `1` to require the built files (`target/release/...`) too.
const CHECK_RELEASE_ENV: &str = "VIRT_HOOKS_CHECK_RELEASE";
/// Where the packages put the driver plugins: the host's default
/// `SYSTEM_PLUGIN_DIR` (a distribution that builds with another
/// `VIRT_HOOKS_PLUGIN_DIR` changes the assets with it: docs/packaging.md).
const PLUGIN_DIR: &str = "/usr/lib/virt-hooks/plugins";
const BUILT: &str = "target/release/";

/// One workspace package that is shipped.
struct Shipped {
    /// The Cargo package name.
    crate_name: String,
    /// The directory of its Cargo.toml.
    dir: PathBuf,
    metadata: Value,
    /// The library name of a driver plugin (`virt_hooks_driver_qemu`).
    plugin_lib: Option<String>,
    /// Whether it builds the `virt-hook` binary.
    host: bool,
}

/// One installed file: where it comes from and its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Installed {
    source: Source,
    mode: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    /// A file of the repository (canonical path).
    File(PathBuf),
    /// A file the release build makes, relative to `target/release/`.
    Built(String),
}

fn metadata() -> Value {
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The host, every driver plugin under `plugins/`, and whatever else
/// carries package metadata.
fn shipped(meta: &Value) -> Vec<Shipped> {
    let plugins = workspace_root().join("plugins");
    let mut out = Vec::new();
    for package in meta["packages"].as_array().unwrap() {
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
        let dir = manifest.parent().unwrap().to_owned();
        let targets = package["targets"].as_array().unwrap();
        let has_kind = |target: &Value, kind: &str| {
            target["kind"].as_array().unwrap().iter().any(|k| k == kind)
        };
        let plugin_lib = targets
            .iter()
            .find(|t| has_kind(t, "cdylib") && dir.starts_with(&plugins))
            .map(|t| t["name"].as_str().unwrap().to_owned());
        let host = targets.iter().any(|t| has_kind(t, "bin") && t["name"] == "virt-hook");
        let metadata = package["metadata"].clone();
        let has_metadata = metadata.get("deb").is_some() || metadata.get("generate-rpm").is_some();
        if plugin_lib.is_some() || host || has_metadata {
            out.push(Shipped {
                crate_name: package["name"].as_str().unwrap().to_owned(),
                dir,
                metadata,
                plugin_lib,
                host,
            });
        }
    }
    out
}

fn abi_major(meta: &Value) -> String {
    let abi = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "virt-hooks-abi")
        .expect("the virt-hooks-abi package");
    abi["version"].as_str().unwrap().split('.').next().unwrap().to_owned()
}

/// The files `pattern` names: a `*` is allowed in the file name only, as
/// both tools glob.
fn expand(base: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let path = base.join(pattern);
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    let dir = path.parent().unwrap();
    if dir.to_str().unwrap().contains('*') || name.matches('*').count() > 1 {
        return Err(format!("{pattern}: only one `*`, in the file name, is supported here"));
    }
    let found: Vec<PathBuf> = match name.split_once('*') {
        None => vec![path.clone()].into_iter().filter(|p| p.is_file()).collect(),
        Some((prefix, suffix)) => {
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| format!("{pattern}: {}: {e}", dir.display()))?
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    let n = p.file_name().unwrap().to_str().unwrap();
                    p.is_file()
                        && n.len() >= prefix.len() + suffix.len()
                        && n.starts_with(prefix)
                        && n.ends_with(suffix)
                })
                .collect();
            found.sort();
            found
        }
    };
    if found.is_empty() {
        return Err(format!("{pattern}: no such file (from {})", base.display()));
    }
    Ok(found.into_iter().map(|p| p.canonicalize().unwrap()).collect())
}

/// Adds the files of one asset to `files`, by absolute destination.
fn add(
    files: &mut BTreeMap<String, Installed>,
    base: &Path,
    source: &str,
    dest: &str,
    mode: &str,
) -> Result<(), String> {
    let dest = format!("/{}", dest.trim_start_matches('/'));
    let sources: Vec<(Source, String)> = match source.strip_prefix(BUILT) {
        Some(built) => vec![(Source::Built(built.to_owned()), built.to_owned())],
        None => expand(base, source)?
            .into_iter()
            .map(|p| {
                let name = p.file_name().unwrap().to_str().unwrap().to_owned();
                (Source::File(p), name)
            })
            .collect(),
    };
    if sources.len() > 1 && !dest.ends_with('/') {
        return Err(format!("{source}: several files to the one file {dest}"));
    }
    for (source, name) in sources {
        let to = if dest.ends_with('/') { format!("{dest}{name}") } else { dest.clone() };
        let entry = Installed { source, mode: mode.to_owned() };
        if files.insert(to.clone(), entry).is_some() {
            return Err(format!("{to} is installed twice"));
        }
    }
    Ok(())
}

/// The files of the Debian package; sources are relative to the package.
fn deb_files(p: &Shipped) -> Result<BTreeMap<String, Installed>, String> {
    let assets = p.metadata["deb"]["assets"].as_array().ok_or("no deb assets")?;
    let mut files = BTreeMap::new();
    for asset in assets {
        let field = |i: usize, key: &str| {
            asset.get(i).or_else(|| asset.get(key)).and_then(Value::as_str).map(str::to_owned)
        };
        let (Some(source), Some(dest), Some(mode)) =
            (field(0, "source"), field(1, "dest"), field(2, "mode"))
        else {
            return Err(format!("deb asset {asset}: needs a source, a dest and a mode"));
        };
        add(&mut files, &p.dir, &source, &dest, &mode)?;
    }
    Ok(files)
}

/// The files of the RPM package; sources are relative to the workspace
/// root, else to the package, as cargo-generate-rpm looks.
fn rpm_files(p: &Shipped) -> Result<BTreeMap<String, Installed>, String> {
    let assets = p.metadata["generate-rpm"]["assets"].as_array().ok_or("no rpm assets")?;
    let mut files = BTreeMap::new();
    for asset in assets {
        let dest = asset["dest"].as_str().ok_or(format!("rpm asset {asset}: no dest"))?;
        let mode = asset["mode"].as_str().ok_or(format!("rpm asset {asset}: no mode"))?;
        // cargo-generate-rpm 0.21 reads a file named "" for `dir = true`.
        let source = asset["source"].as_str().ok_or(format!("rpm asset {asset}: no source"))?;
        let base = if source.starts_with(BUILT) || expand(workspace_root(), source).is_ok() {
            workspace_root()
        } else {
            &p.dir
        };
        add(&mut files, base, source, dest, mode)?;
    }
    Ok(files)
}

/// An RPM destination as the Debian package names it: the two formats
/// differ in where licences and zsh completions go.
fn as_deb_path(rpm_path: &str, name: &str) -> String {
    let licences = format!("/usr/share/licenses/{name}/");
    if let Some(rest) = rpm_path.strip_prefix(&licences) {
        return format!("/usr/share/doc/{name}/{rest}");
    }
    if let Some(rest) = rpm_path.strip_prefix("/usr/share/zsh/site-functions/") {
        return format!("/usr/share/zsh/vendor-completions/{rest}");
    }
    rpm_path.to_owned()
}

fn deb_name(p: &Shipped) -> String {
    p.metadata["deb"]["name"].as_str().unwrap_or(&p.crate_name).to_owned()
}

fn rpm_name(p: &Shipped) -> String {
    p.metadata["generate-rpm"]["name"].as_str().unwrap_or(&p.crate_name).to_owned()
}

/// Every problem of one package, as lines naming it.
fn problems(p: &Shipped, abi_major: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let name = deb_name(p);
    let mut say = |what: String| problems.push(format!("{} ({name}): {what}", p.crate_name));
    let (deb, rpm) = match (deb_files(p), rpm_files(p)) {
        (Ok(deb), Ok(rpm)) => (deb, rpm),
        (deb, rpm) => {
            for err in [deb.err(), rpm.err()].into_iter().flatten() {
                say(err);
            }
            return problems;
        }
    };
    if rpm_name(p) != name {
        say(format!("the RPM is named {} but the Debian package {name}", rpm_name(p)));
    }
    let rpm: BTreeMap<String, Installed> =
        rpm.into_iter().map(|(path, f)| (as_deb_path(&path, &name), f)).collect();
    for (path, file) in &deb {
        match rpm.get(path) {
            None => say(format!("{path} is in the Debian package only")),
            Some(other) if other != file => {
                say(format!("{path}: {file:?} (deb) != {other:?} (rpm)"))
            }
            Some(_) => {}
        }
    }
    for path in rpm.keys().filter(|path| !deb.contains_key(*path)) {
        say(format!("{path} is in the RPM only"));
    }
    let root = workspace_root();
    for licence in ["LICENSE-MIT", "LICENSE-APACHE"] {
        let want = Source::File(root.join(licence).canonicalize().unwrap());
        let path = format!("/usr/share/doc/{name}/{licence}");
        if deb.get(&path).map(|f| &f.source) != Some(&want) {
            say(format!("{path} is not the workspace's {licence}"));
        }
    }
    let deb_meta = &p.metadata["deb"];
    let rpm_meta = &p.metadata["generate-rpm"];
    let interface = format!("virt-hooks-plugin-abi-{abi_major}");
    let rpm_interface = format!("virt-hooks-plugin-abi({abi_major})");
    let lists = |v: &Value| -> Vec<String> {
        v.as_str().unwrap_or("").split(',').map(|s| s.trim().to_owned()).collect()
    };
    if let Some(lib) = &p.plugin_lib {
        if !name.starts_with("virt-hooks-driver-") || name != p.crate_name {
            say("a driver's package is named after its crate, virt-hooks-driver-<name>".into());
        }
        let so = format!("lib{lib}.so");
        let path = format!("{PLUGIN_DIR}/{so}");
        let want = Installed { source: Source::Built(so.clone()), mode: "644".into() };
        if deb.get(&path) != Some(&want) {
            say(format!("{path} must be {BUILT}{so}, mode 644: {:?}", deb.get(&path)));
        }
        if !lists(&deb_meta["depends"]).contains(&interface) {
            say(format!("its Debian package must depend on {interface}"));
        }
        if rpm_meta["requires"].get(&rpm_interface).is_none() {
            say(format!("its RPM must require {rpm_interface}"));
        }
    }
    if p.host {
        if name != "virt-hooks" {
            say("the host package is named virt-hooks".into());
        }
        let binary = Installed { source: Source::Built("virt-hook".into()), mode: "755".into() };
        if deb.get("/usr/bin/virt-hook") != Some(&binary) {
            say(format!("/usr/bin/virt-hook must be {BUILT}virt-hook, mode 755"));
        }
        for page in std::fs::read_dir(root.join("man")).unwrap() {
            let page = page.unwrap().file_name().into_string().unwrap();
            let section = page.rsplit('.').next().unwrap();
            let path = format!("/usr/share/man/man{section}/{page}");
            if !deb.contains_key(&path) {
                say(format!("man/{page} is not installed as {path}"));
            }
        }
        for completion in [
            "/usr/share/bash-completion/completions/virt-hook",
            "/usr/share/zsh/vendor-completions/_virt-hook",
            "/usr/share/fish/vendor_completions.d/virt-hook.fish",
        ] {
            if !deb.contains_key(completion) {
                say(format!("{completion} is missing"));
            }
        }
        for config in ["/etc/virt-hooks/virt-hooks.toml", "/etc/logrotate.d/virt-hooks"] {
            if !deb.contains_key(config) {
                say(format!("{config} is missing"));
            }
            let noreplace = rpm_meta["assets"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["dest"] == config && a["config"] == "noreplace");
            if !noreplace {
                say(format!("{config} must be an RPM config file, noreplace"));
            }
        }
        if !lists(&deb_meta["provides"]).contains(&interface) {
            say(format!("the Debian package must provide {interface}"));
        }
        if rpm_meta["provides"].get(&rpm_interface).is_none() {
            say(format!("the RPM must provide {rpm_interface}"));
        }
        // Both make the history's directory on install.
        let scripts = deb_meta["maintainer-scripts"].as_str().unwrap_or("");
        let postinst =
            std::fs::read_to_string(p.dir.join(scripts).join("postinst")).unwrap_or_default();
        let post = rpm_meta["post_install_script"].as_str().unwrap_or("");
        for (format, script) in [("Debian postinst", postinst.as_str()), ("RPM %post", post)] {
            if !script.contains("mkdir -m 0750 /var/log/virt-hooks") {
                say(format!("the {format} does not make /var/log/virt-hooks (mode 0750)"));
            }
        }
    }
    if std::env::var(CHECK_RELEASE_ENV).is_ok_and(|v| v == "1") {
        let built = target_directory().join("release");
        for file in deb.values().chain(rpm.values()) {
            let missing = match &file.source {
                Source::Built(name) => Some(name).filter(|name| !built.join(name).is_file()),
                _ => None,
            };
            if let Some(name) = missing {
                say(format!("{} has not been built", built.join(name).display()));
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

#[test]
fn every_driver_plugin_and_the_host_are_packaged_alike_in_both_formats() {
    let meta = metadata();
    let shipped = shipped(&meta);
    let major = abi_major(&meta);
    assert!(shipped.iter().any(|p| p.host), "no package builds virt-hook");
    let drivers: Vec<&str> = shipped.iter().filter_map(|p| p.plugin_lib.as_deref()).collect();
    for driver in ["daemon", "qemu", "lxc", "network"] {
        let lib = format!("virt_hooks_driver_{driver}");
        assert!(drivers.contains(&lib.as_str()), "{lib}: {drivers:?}");
    }
    let mut all = Vec::new();
    for p in &shipped {
        if p.plugin_lib.is_none() && !p.host {
            all.push(format!(
                "{}: package metadata, but neither the host nor a driver",
                p.crate_name
            ));
        }
        all.extend(problems(p, &major));
    }
    assert!(all.is_empty(), "the package metadata is wrong:\n{}", all.join("\n"));
}

#[test]
fn a_missing_or_mismatched_file_is_caught() {
    let meta = metadata();
    let major = abi_major(&meta);
    let mut qemu =
        shipped(&meta).into_iter().find(|p| p.crate_name == "virt-hooks-driver-qemu").unwrap();
    assert_eq!(problems(&qemu, &major), Vec::<String>::new());

    // A licence that does not exist.
    let mut broken = qemu.metadata.clone();
    broken["deb"]["assets"][1][0] = "../../LICENSE-MIT.missing".into();
    let original = std::mem::replace(&mut qemu.metadata, broken);
    let found = problems(&qemu, &major).join("\n");
    assert!(found.contains("LICENSE-MIT.missing: no such file"), "{found}");

    // The RPM installs the plugin elsewhere than the Debian package.
    qemu.metadata = original.clone();
    qemu.metadata["generate-rpm"]["assets"][0]["dest"] = "/usr/lib64/virt-hooks/plugins/".into();
    let found = problems(&qemu, &major).join("\n");
    assert!(
        found.contains(
            "/usr/lib/virt-hooks/plugins/libvirt_hooks_driver_qemu.so is in the Debian package only"
        ),
        "{found}"
    );

    // No dependency on the plugin interface, or on another major.
    qemu.metadata = original.clone();
    qemu.metadata["deb"]["depends"] = "$auto, virt-hooks-plugin-abi-2".into();
    let found = problems(&qemu, &major).join("\n");
    assert!(found.contains(&format!("must depend on virt-hooks-plugin-abi-{major}")), "{found}");

    // A world-writable plugin is refused by the loader: the mode is checked.
    qemu.metadata = original;
    qemu.metadata["deb"]["assets"][0][2] = "666".into();
    let found = problems(&qemu, &major).join("\n");
    assert!(found.contains("mode 644"), "{found}");
}

#[test]
fn as_deb_path_maps_only_the_two_known_differences() {
    assert_eq!(
        as_deb_path("/usr/share/licenses/x/LICENSE-MIT", "x"),
        "/usr/share/doc/x/LICENSE-MIT"
    );
    assert_eq!(
        as_deb_path("/usr/share/licenses/y/LICENSE-MIT", "x"),
        "/usr/share/licenses/y/LICENSE-MIT"
    );
    assert_eq!(
        as_deb_path("/usr/share/zsh/site-functions/_v", "x"),
        "/usr/share/zsh/vendor-completions/_v"
    );
    assert_eq!(as_deb_path("/usr/bin/v", "x"), "/usr/bin/v");
}
