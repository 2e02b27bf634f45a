//! What the benchmark measures: `virt-hook` and the driver plugins its
//! scenarios need, chosen by name.
//!
//! Cargo builds them (a nested `cargo build --release` of exactly the
//! packages that make those files; nothing to do after
//! `cargo build --release --workspace`), and reports where each file is.
//! They are then copied into a private directory, which is the plugin
//! directory of every scenario and the directory of the `virt-hook` that
//! scenario 7 runs: whatever else the target directory holds (other
//! drivers, a stray `libvirt_hooks_driver_*.so`) is never loaded, and
//! nothing in the target directory is changed but by cargo itself.

use std::{
    ffi::OsString,
    io::BufRead,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use serde::Deserialize;
use virt_hooks::{PLUGIN_PREFIX, PLUGIN_SUFFIX};

use crate::{
    fail::{Context, Result, fail},
    fixtures::{install, new_dir},
};

/// The drivers whose plugins the scenarios load, by name.
pub(crate) const DRIVERS: [&str; 3] = ["daemon", "lxc", "qemu"];

/// The command-line program scenario 7 runs.
const BINARY: &str = "virt-hook";

/// The file name of the plugin of `driver`: `libvirt_hooks_driver_<driver>.so`.
pub(crate) fn plugin_file(driver: &str) -> String {
    format!("{PLUGIN_PREFIX}{driver}{PLUGIN_SUFFIX}")
}

/// The workspace, as `cargo metadata` sees it.
#[derive(Debug, Deserialize)]
pub(crate) struct Workspace {
    pub(crate) target_directory: PathBuf,
    pub(crate) workspace_root: PathBuf,
    packages: Vec<Package>,
}

#[derive(Debug, Deserialize)]
struct Package {
    name: String,
    targets: Vec<Target>,
}

#[derive(Debug, Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

/// One line of `cargo build --message-format=json`; only artifacts matter.
#[derive(Debug, Deserialize)]
struct Message {
    reason: String,
    target: Option<Target>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
    executable: Option<PathBuf>,
    #[serde(default)]
    fresh: bool,
}

impl Target {
    fn is(&self, kind: &str) -> bool {
        self.kind.iter().any(|k| k == kind)
    }

    /// The file a `cdylib` target writes: `lib<name>.so`.
    fn library_file(&self) -> String {
        format!("lib{}{PLUGIN_SUFFIX}", self.name.replace('-', "_"))
    }

    /// What this target builds that the benchmark needs, if anything.
    fn wanted(&self) -> Option<Wanted> {
        if self.is("bin") && self.name == BINARY {
            return Some(Wanted::Binary);
        }
        if !self.is("cdylib") {
            return None;
        }
        let file = self.library_file();
        DRIVERS.into_iter().find(|d| plugin_file(d) == file).map(Wanted::Plugin)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Binary,
    Plugin(&'static str),
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

impl Workspace {
    /// `cargo metadata` of the workspace this benchmark belongs to. Its
    /// `target_directory` honours `CARGO_TARGET_DIR` and cargo's config.
    pub(crate) fn find() -> Result<Workspace> {
        // At run time cargo sets the package's directory; the compile-time
        // one serves when the binary is run by hand.
        let package = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        let out = Command::new(cargo())
            .args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"])
            .arg(package.join("Cargo.toml"))
            .stderr(Stdio::inherit())
            .output()
            .context("cannot run cargo metadata")?;
        if !out.status.success() {
            return Err(fail(format!("cargo metadata failed ({})", out.status)));
        }
        serde_json::from_slice(&out.stdout).context("cannot read cargo metadata's output")
    }

    /// The packages that build what [`Wanted`] names, or an error naming
    /// the first thing no package builds.
    fn packages(&self) -> Result<Vec<&str>> {
        let builds = |w: Wanted| {
            self.packages
                .iter()
                .find(|p| p.targets.iter().any(|t| t.wanted() == Some(w)))
                .map(|p| p.name.as_str())
        };
        let mut names = vec![
            builds(Wanted::Binary)
                .with_context(|| format!("no workspace package builds the program {BINARY}"))?,
        ];
        for d in DRIVERS {
            let name = builds(Wanted::Plugin(d)).with_context(|| {
                format!("no workspace package builds the plugin {}", plugin_file(d))
            })?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }
}

/// `virt-hook` and the plugins of [`DRIVERS`], alone in a private directory.
#[derive(Debug)]
pub(crate) struct Installed {
    /// The directory: plugin directory of every scenario, and the
    /// directory of `virt_hook`.
    pub(crate) dir: PathBuf,
    /// The copy of `virt-hook`.
    pub(crate) virt_hook: PathBuf,
}

impl Installed {
    /// The copy of the plugin of `driver`.
    pub(crate) fn plugin(&self, driver: &str) -> PathBuf {
        self.dir.join(plugin_file(driver))
    }
}

/// Has cargo build (or find up to date) the release `virt-hook` and the
/// plugins of [`DRIVERS`], then copies them into `dir` (made afresh).
pub(crate) fn build_and_install(ws: &Workspace, dir: &Path) -> Result<Installed> {
    let packages = ws.packages()?;
    println!(
        "release build of {} (nested cargo; it reports only when done, after minutes from an \
         empty target directory)...",
        packages.join(", ")
    );
    let started = Instant::now();
    let mut cmd = Command::new(cargo());
    cmd.args(["build", "--release", "--locked", "--message-format=json-render-diagnostics"])
        .current_dir(&ws.workspace_root)
        .env("CARGO_TARGET_DIR", &ws.target_directory)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for p in &packages {
        cmd.args(["-p", p]);
    }
    let mut child = cmd.spawn().context("cannot run cargo build")?;
    let stdout = child.stdout.take().context("cargo build has no stdout")?;
    let mut found: Vec<(Wanted, PathBuf)> = Vec::new();
    let mut rebuilt = 0;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.context("cannot read cargo build's output")?;
        let Ok(m) = serde_json::from_str::<Message>(&line) else { continue };
        let Some(wanted) = m.target.as_ref().and_then(Target::wanted) else { continue };
        if m.reason != "compiler-artifact" {
            continue;
        }
        rebuilt += usize::from(!m.fresh);
        let file = match wanted {
            Wanted::Binary => m.executable,
            Wanted::Plugin(d) => {
                m.filenames.into_iter().find(|f| f.file_name() == Some(plugin_file(d).as_ref()))
            }
        };
        if let Some(file) = file {
            found.push((wanted, file));
        }
    }
    let status = child.wait().context("cannot wait for cargo build")?;
    if !status.success() {
        return Err(fail(format!("the nested release build failed ({status})")));
    }
    println!(
        "  done in {:.1} s ({rebuilt} of {} artifacts rebuilt)",
        started.elapsed().as_secs_f64(),
        found.len()
    );
    let built = |w: Wanted| {
        found.iter().find(|(f, _)| *f == w).map(|(_, p)| p.as_path()).with_context(|| {
            let what = match w {
                Wanted::Binary => BINARY.to_owned(),
                Wanted::Plugin(d) => plugin_file(d),
            };
            format!("cargo build reported no file for {what}")
        })
    };
    let dir = new_dir(dir)?;
    let virt_hook = dir.join(BINARY);
    install(built(Wanted::Binary)?, &virt_hook)?;
    let installed = Installed { dir, virt_hook };
    for d in DRIVERS {
        install(built(Wanted::Plugin(d))?, &installed.plugin(d))?;
    }
    Ok(installed)
}
