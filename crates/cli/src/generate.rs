//! What a distribution ships besides the binary, generated from the clap
//! definitions so that it never drifts from `--help`: the manual pages
//! (`virt-hook generate man DIR`), the shell completions (`virt-hook
//! completions SHELL`, `virt-hook generate completions DIR`) and the long
//! `--version`, which names what this build was configured with.
//!
//! The checked-in copies under `man/` and `completions/` are compared with
//! this output by `crates/cli/tests/generated.rs`.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use anyhow::Context;
use clap::{CommandFactory, Subcommand, ValueEnum};
use clap_complete::Generator;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};
use virt_hooks::{ABI_VERSION, DEFAULT_CONFIG_FILE, DEFAULT_HOOKS_DIR, SYSTEM_PLUGIN_DIR};

use crate::{Cli, NAME, exit};

/// The name of the man page section-5 page, written by hand in `man/`.
const CONFIG_PAGE: &str = "virt-hooks.toml(5)";

/// The shells `virt-hook completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Shell {
    /// GNU bash (bash-completion).
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

impl Shell {
    const ALL: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

    fn generator(self) -> clap_complete::Shell {
        match self {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// `virt-hook generate ...` (hidden): files for packaging.
#[derive(Debug, Subcommand)]
pub(crate) enum Generate {
    /// Write virt-hook(1) and one page per command (virt-hook-run(1), ...)
    /// into DIR, and remove pages of commands that no longer exist.
    Man {
        /// The directory (created if missing); the checked-in copies are in `man/`.
        dir: PathBuf,
    },
    /// Write the bash, zsh and fish completion scripts into DIR.
    Completions {
        /// The directory (created if missing); the checked-in copies are in `completions/`.
        dir: PathBuf,
    },
}

/// The text after `virt-hook ` in `virt-hook --version`: the version, then
/// what this build was configured with.
pub(crate) fn long_version() -> &'static str {
    static TEXT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{}\nplugin directory: {SYSTEM_PLUGIN_DIR}\nplugin interface: virt-hooks-abi \
             {ABI_VERSION}\nconfiguration file: {DEFAULT_CONFIG_FILE}",
            env!("CARGO_PKG_VERSION")
        )
    });
    &TEXT
}

/// `virt-hook completions SHELL`: the script on `out`.
pub(crate) fn completions(shell: Shell, out: &mut impl Write) -> anyhow::Result<u8> {
    out.write_all(&completion(shell))?;
    Ok(exit::OK)
}

/// `virt-hook generate ...`: writes the files and names each on `out`.
pub(crate) fn generate(what: &Generate, out: &mut impl Write) -> anyhow::Result<u8> {
    let (dir, files) = match what {
        Generate::Man { dir } => (dir, man_pages()?),
        Generate::Completions { dir } => (dir, completion_files()),
    };
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, bytes) in &files {
        let path = dir.join(name);
        fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(out, "wrote {}", path.display())?;
    }
    if let Generate::Man { dir } = what {
        let written: BTreeSet<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
        for stale in stale_pages(dir, &written)? {
            fs::remove_file(&stale)
                .with_context(|| format!("cannot remove {}", stale.display()))?;
            writeln!(out, "removed {} (no such command)", stale.display())?;
        }
    }
    Ok(exit::OK)
}

/// Section-1 pages in `dir` named after virt-hook that were not just written.
fn stale_pages(dir: &Path, written: &BTreeSet<&str>) -> anyhow::Result<Vec<PathBuf>> {
    let mut stale = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = name == format!("{NAME}.1")
            || (name.starts_with(&format!("{NAME}-")) && name.ends_with(".1"));
        if ours && !written.contains(name) {
            stale.push(dir.join(name));
        }
    }
    stale.sort();
    Ok(stale)
}

/// The completion script for one shell.
fn completion(shell: Shell) -> Vec<u8> {
    let mut buf = Vec::new();
    clap_complete::generate(shell.generator(), &mut visible_command(), NAME, &mut buf);
    if shell != Shell::Bash {
        return buf;
    }
    // clap_complete 4.6 spells the states of a hyphenated binary two ways
    // (clap-rs/clap#6421): `virt__hook__subcmd__run` in its dispatch loop,
    // `virt__subcmd__hook__subcmd__run` in the case arms, so nothing after a
    // command completes. Spell them alike (a no-op once fixed upstream).
    let broken = NAME.replace('-', "__subcmd__");
    String::from_utf8_lossy(&buf).replace(&broken, &NAME.replace('-', "__")).into_bytes()
}

/// The command tree without its hidden commands: clap_complete would offer
/// them (it ignores `hide` on subcommands), and `generate` is for packagers.
fn visible_command() -> clap::Command {
    let cmd = Cli::command();
    clap::Command::new(NAME)
        .version(env!("CARGO_PKG_VERSION"))
        .about(cmd.get_about().cloned().unwrap_or_default())
        .args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// Every completion script, by its conventional file name.
fn completion_files() -> Vec<(String, Vec<u8>)> {
    Shell::ALL.iter().map(|&s| (s.generator().file_name(NAME), completion(s))).collect()
}

/// The command tree as the pages describe it: built (so subcommands know
/// their full names) and without clap's `help` subcommand.
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The DESCRIPTION of virt-hook(1), longer than `--help`'s one line.
const DESCRIPTION: &str = "\
virt-hook runs libvirt's synchronous hook scripts exactly as libvirt does: the same arguments, \
standard input, environment, ordering and error text. Each driver (daemon, qemu, lxc, network, \
...) is a plugin. It adds what libvirt lacks: timeouts, bounded output, a drain window for \
processes left in the background, security checks and an audit record of every run.

As a command, it lists the drivers, runs or plans the scripts of one event, audits a hooks \
directory and shows the configuration: see the commands below.

As libvirt's hook script (virt-hook install --libvirt makes <hooks>/<driver> a link to it), \
it is run under the driver's name with libvirt's four arguments and runs the event's per-object \
scripts, <driver>.d/<object>/<operation>/<sub-operation>/: see virt-hook-dispatch(1).";

/// virt-hook(1) and one page per visible command, by file name.
fn man_pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let root = command();
    let mut pages = vec![(format!("{NAME}.1"), page(&root.clone().long_about(DESCRIPTION), None)?)];
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_display_name().unwrap_or_else(|| sub.get_name()).to_owned();
        pages.push((format!("{name}.1"), page(sub, Some(sub.get_name()))?));
    }
    Ok(pages)
}

/// One page: clap_mangen's sections, then EXIT STATUS, the main page's
/// ENVIRONMENT and FILES, and SEE ALSO.
fn page(cmd: &clap::Command, sub: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let man = Man::new(cmd.clone());
    // By hand: clap_mangen's title drops the empty date argument, which
    // shifts the source and manual into the wrong places.
    let title = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let mut buf = format!(
        ".TH {title} 1 \"\" \"virt-hooks {}\" \"virt-hooks manual\"\n",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes();
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut buf)?;
    }
    let statuses = exit_statuses(sub).with_context(|| {
        format!(
            "the command `{}` has no EXIT STATUS: add it to exit_statuses() in {}",
            sub.unwrap_or(NAME),
            file!()
        )
    })?;
    let mut roff = Roff::new();
    section(&mut roff, "EXIT STATUS", statuses);
    if sub.is_none() {
        section(&mut roff, "ENVIRONMENT", ENVIRONMENT);
        section(&mut roff, "FILES", &files());
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text(see_also(cmd, sub));
    roff.to_writer(&mut buf)?;
    Ok(one_preamble(buf))
}

/// A section of tagged paragraphs: (tag, text).
fn section<T: AsRef<str>>(roff: &mut Roff, title: &str, items: &[(T, T)]) {
    roff.control("SH", [title]);
    for (tag, text) in items {
        roff.control("TP", []);
        roff.text([bold(tag.as_ref())]);
        roff.text([roman(text.as_ref())]);
    }
}

fn see_also(cmd: &clap::Command, sub: Option<&str>) -> Vec<clap_mangen::roff::Inline> {
    let mut refs: Vec<String> = match sub {
        Some(_) => vec![format!("{NAME}(1)")],
        None => cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| format!("{NAME}-{}(1)", s.get_name()))
            .collect(),
    };
    refs.push(CONFIG_PAGE.to_owned());
    refs.push("libvirtd(8)".to_owned());
    let mut inlines = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        if i > 0 {
            inlines.push(roman(", "));
        }
        inlines.push(bold(r.as_str()));
    }
    inlines.push(roman(". The reference documentation, from writing hook scripts to packaging: "));
    inlines.push(italic("/usr/share/doc/virt-hooks/"));
    inlines.push(roman(" and the project's docs/ directory."));
    inlines
}

/// What every `Roff::to_writer` starts with (it defines `\*(Aq`, the
/// apostrophe): a page made of several needs it once, at the top.
const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

fn one_preamble(buf: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&buf);
    if !text.contains(PREAMBLE) {
        return buf;
    }
    format!("{PREAMBLE}{}", text.replace(PREAMBLE, "")).into_bytes()
}

const ENVIRONMENT: &[(&str, &str)] = &[
    ("VIRT_HOOKS_CONFIG", "The configuration file, like --config."),
    ("VIRT_HOOKS_DIR", "The hooks directory, like --hooks-dir."),
    (
        "VIRT_HOOKS_PLUGIN_PATH",
        "Driver plugin directories (colon-separated), searched after --plugin-dir.",
    ),
    ("RUST_LOG", "The log filter (for example debug), over -v."),
];

fn files() -> Vec<(String, String)> {
    vec![
        (
            DEFAULT_CONFIG_FILE.to_owned(),
            format!("The configuration file, read when it exists: see {CONFIG_PAGE}."),
        ),
        (
            DEFAULT_HOOKS_DIR.to_owned(),
            "The hooks directory: <driver> and <driver>.d/ as libvirt runs them, and the \
             per-object scripts in <driver>.d/<object>/<operation>/<sub-operation>/."
                .to_owned(),
        ),
        (
            "/usr/lib/virt-hooks/plugins".to_owned(),
            "The system plugin directory, last on the search path: one \
             libvirt_hooks_driver_<name>.so per driver. This is the default; a \
             distribution may set another when it builds virt-hook, and \
             virt-hook --version shows the one in use."
                .to_owned(),
        ),
    ]
}

/// What each command's exit status means; `None` is virt-hook itself.
fn exit_statuses(sub: Option<&str>) -> Option<&'static [(&'static str, &'static str)]> {
    const USAGE: (&str, &str) = (
        "2",
        "Usage error (an unknown option or a missing argument), or a configuration file that \
         cannot be used.",
    );
    const SIGINT: (&str, &str) =
        ("130", "Interrupted by SIGINT: the running script's process group was killed first.");
    const SIGTERM: (&str, &str) =
        ("143", "Interrupted by SIGTERM: the running script's process group was killed first.");
    Some(match sub {
        None => &[
            ("0", "The operation may go on (run, dispatch), or the command found nothing wrong."),
            (
                "1",
                "The operation was refused (a hook script failed, timed out, was refused by the \
                 security rules or gave a document that was rejected), or something is wrong \
                 (a plugin failed to load, check found a problem, install left a hook alone).",
            ),
            (
                "2",
                "Usage error, an invalid event (unknown driver, operation, sub-operation or \
                 extra argument, or a bad document), or a configuration file that cannot be used.",
            ),
            SIGINT,
            SIGTERM,
            (
                "other",
                "Invoked as libvirt's hook script (under a driver's name), the failing script's \
                 own exit status; see virt-hook-dispatch(1).",
            ),
        ],
        Some("drivers") => &[
            ("0", "Every plugin file found was loaded."),
            ("1", "A plugin failed to load (it is listed, with the reason)."),
            USAGE,
        ],
        Some("run") => &[
            (
                "0",
                "The operation may go on: no script failed, or only scripts whose failures the \
                 operation's policy ignores.",
            ),
            (
                "1",
                "The operation is refused: a script failed, timed out, was refused by the \
                 security rules, or a filter's document was rejected.",
            ),
            (
                "2",
                "Invalid event (unknown driver, operation, sub-operation or extra argument, or \
                 a bad document); usage error; a configuration file that cannot be used.",
            ),
            SIGINT,
            SIGTERM,
        ],
        Some("plan") => &[
            ("0", "The plan was printed (it may be empty)."),
            ("1", "The hooks directory could not be read."),
            (
                "2",
                "Invalid event (unknown driver, operation, sub-operation or extra argument, or \
                 a bad document); usage error; a configuration file that cannot be used.",
            ),
        ],
        Some("demo") => &[
            ("0", "The whole lifecycle was played."),
            (
                "2",
                "It could not be played (a needed driver plugin is missing, or a file could not \
                 be written); usage error.",
            ),
        ],
        Some("check") => &[
            ("0", "No problem found."),
            (
                "1",
                "At least one problem (each is listed), including a configuration file that \
                 cannot be used.",
            ),
            ("2", "Usage error."),
        ],
        Some("config") => &[("0", "The configuration was printed."), USAGE],
        Some("dispatch") => &[
            (
                "0",
                "The operation may go on. An operation or a driver this host does not know (a \
                 newer libvirt, a missing plugin) runs only the per-object scripts made for \
                 exactly that event, logged as such; with none, nothing runs.",
            ),
            (
                "other",
                "The failing script's own exit status, which libvirt reports with the script's \
                 stderr; 1 when it has none (it was killed, timed out or was refused), and for \
                 an event or document that cannot be validated, with the reason on stderr.",
            ),
            (
                "2",
                "Not four arguments after the driver, or a configuration file that cannot be used.",
            ),
            SIGINT,
            SIGTERM,
        ],
        Some("install") => &[
            ("0", "Every hook is installed, or already was."),
            (
                "1",
                "An existing hook script that is not virt-hook was left alone (--force \
                 replaces it).",
            ),
            (
                "2",
                "A file could not be changed; usage error; a configuration file that cannot be \
                 used.",
            ),
        ],
        Some("log") => &[
            (
                "0",
                "The records asked for were printed (none, when the history is empty or \
                 missing); unreadable lines are skipped with a warning.",
            ),
            (
                "2",
                "The history cannot be read (audit_log is off, or the file cannot be opened), \
                 --since cannot be understood; usage error.",
            ),
        ],
        Some("uninstall") => &[
            ("0", "virt-hook is uninstalled for every driver named (or was not installed)."),
            ("1", "A named hook is not virt-hook: nothing was changed."),
            (
                "2",
                "A file could not be changed; an unknown driver name; usage error; a \
                 configuration file that cannot be used.",
            ),
        ],
        Some("completions") => {
            &[("0", "The script was printed."), ("2", "Usage error (an unknown shell).")]
        }
        Some(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visible_command_has_a_page_with_an_exit_status() {
        let root = command();
        let visible: Vec<&str> =
            root.get_subcommands().filter(|s| !s.is_hide_set()).map(|s| s.get_name()).collect();
        assert!(visible.contains(&"run") && visible.contains(&"completions"), "{visible:?}");
        assert!(!visible.contains(&"generate"), "generate is for packagers: hidden");
        let pages = man_pages().unwrap();
        assert_eq!(pages.len(), visible.len() + 1);
        for (name, bytes) in &pages {
            let text = String::from_utf8(bytes.clone()).unwrap();
            assert!(text.contains("\n.SH \"EXIT STATUS\"\n"), "{name}: no EXIT STATUS\n{text}");
            assert!(text.contains(".SH NAME"), "{name}");
            assert!(text.starts_with(PREAMBLE), "{name}: the preamble first");
            assert_eq!(text.matches(PREAMBLE).count(), 1, "{name}: one preamble");
        }
        assert!(pages.iter().any(|(n, _)| n == "virt-hook-run.1"));
    }

    #[test]
    fn a_command_without_exit_statuses_is_an_error_naming_it() {
        assert!(exit_statuses(Some("no-such-command")).is_none());
        let cmd = clap::Command::new("virt-hook-bogus").name("bogus");
        let err = page(&cmd, Some("bogus")).unwrap_err().to_string();
        assert!(err.contains("`bogus` has no EXIT STATUS"), "{err}");
    }

    #[test]
    fn the_pages_do_not_depend_on_the_build_s_plugin_directory() {
        // A distribution's build (VIRT_HOOKS_PLUGIN_DIR) must produce the
        // same pages as the checked-in ones: they name the default and
        // send the reader to --version.
        for (name, bytes) in man_pages().unwrap() {
            let text = String::from_utf8(bytes).unwrap();
            if SYSTEM_PLUGIN_DIR != "/usr/lib/virt-hooks/plugins" {
                assert!(!text.contains(SYSTEM_PLUGIN_DIR), "{name}");
            }
            assert!(!text.contains("plugin directory: "), "{name}: the long version leaked");
        }
    }

    #[test]
    fn the_long_version_names_the_plugin_directory_and_interface() {
        let text = long_version();
        assert!(text.starts_with(env!("CARGO_PKG_VERSION")), "{text}");
        assert!(text.contains(&format!("plugin directory: {SYSTEM_PLUGIN_DIR}\n")), "{text}");
        assert!(text.contains(&format!("virt-hooks-abi {ABI_VERSION}")), "{text}");
    }

    #[test]
    fn one_preamble_moves_it_to_the_top_once() {
        assert_eq!(one_preamble(b".TH x 1\n".to_vec()), b".TH x 1\n");
        let twice = format!(".TH x\n{PREAMBLE}.SH A\n{PREAMBLE}.SH B\n");
        let once = format!("{PREAMBLE}.TH x\n.SH A\n.SH B\n");
        assert_eq!(one_preamble(twice.into_bytes()), once.into_bytes());
    }

    #[test]
    fn stale_pages_are_only_virt_hook_section_1_pages_not_written() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["virt-hook.1", "virt-hook-run.1", "virt-hook-gone.1", "virt-hooks.toml.5"] {
            fs::write(dir.path().join(name), "").unwrap();
        }
        fs::write(dir.path().join("other.1"), "").unwrap();
        let written = BTreeSet::from(["virt-hook.1", "virt-hook-run.1"]);
        assert_eq!(
            stale_pages(dir.path(), &written).unwrap(),
            [dir.path().join("virt-hook-gone.1")]
        );
    }
}
