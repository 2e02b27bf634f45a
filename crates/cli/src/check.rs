//! `virt-hook check`: the hooks directory, the plugins and the
//! configuration, audited without running anything.

use std::io::Write;

use serde_json::json;
use std::path::Path;

use virt_hooks::{
    CheckOptions, CheckReport, CheckedFile, ConfigError, DriverCheck, Layout, Runner,
};

use crate::install::{Installed, installed};
use crate::{Format, exit};

/// Prints the audit; exit 1 when anything is wrong.
pub(crate) fn check(
    runner: &Runner,
    layout: Option<Layout>,
    config_error: Option<&anyhow::Error>,
    config_warnings: &[String],
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<u8> {
    let exe = std::env::current_exe().ok();
    let is_virt_hook = |path: &Path| {
        exe.as_deref()
            .is_some_and(|exe| matches!(installed(path, exe), Installed::Link | Installed::Copy))
    };
    let report = runner.check_with(&CheckOptions { layout, is_virt_hook: Some(&is_virt_hook) });
    let registry = runner.registry();
    let role = |file: &CheckedFile| match exe.as_deref().map(|exe| installed(&file.path, exe)) {
        Some(Installed::Link) => Some("virt-hook (link): runs the per-object scripts"),
        Some(Installed::Copy) => Some("virt-hook (copy): runs the per-object scripts"),
        _ => None,
    };
    let mut problems = report.problems();
    problems.extend(registry.errors().iter().map(|e| format!("plugin {e}")));
    if let Some(err) = config_error {
        problems.push(describe_config_error(err));
    }
    problems.extend(runner.audit_problem());
    match format {
        Format::Json => {
            let doc = json!({
                "clean": problems.is_empty(),
                "problems": problems,
                "hooks": report,
                "plugins": {
                    "loaded": registry.drivers().iter().map(|d| json!({
                        "name": d.name(), "file": d.file(),
                    })).collect::<Vec<_>>(),
                    "errors": registry.errors().iter().map(|e| json!({
                        "file": e.file, "message": e.reason.to_string(),
                    })).collect::<Vec<_>>(),
                },
                "config_error": config_error.map(describe_config_error),
                "advisories": report.advisories,
                "config_warnings": config_warnings,
            });
            crate::print_json(out, &doc)?;
        }
        Format::Text => print_text(&report, &role, out)?,
    }
    if format == Format::Text {
        for advisory in &report.advisories {
            writeln!(out, "note: {advisory}")?;
        }
        for warning in config_warnings {
            writeln!(out, "warning: {warning}")?;
        }
        if problems.is_empty() {
            writeln!(out, "no problems found")?;
        } else {
            writeln!(out, "{} problem(s):", problems.len())?;
            for problem in &problems {
                writeln!(out, "  {problem}")?;
            }
        }
    }
    Ok(if problems.is_empty() { exit::OK } else { exit::REFUSED })
}

fn print_text(
    report: &CheckReport,
    role: &dyn Fn(&CheckedFile) -> Option<&'static str>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    writeln!(out, "hooks directory {}", report.hooks_dir.display())?;
    for driver in &report.drivers {
        let layout = match driver.layout {
            Layout::Libvirt => "libvirt",
            Layout::PerObject => "per-object",
            _ => "both",
        };
        let plugin = if driver.loaded { "" } else { ", no plugin" };
        writeln!(out, "{} (layout {layout}{plugin}):", driver.driver)?;
        let files = driver.main.iter().chain(&driver.drop_ins).chain(&driver.per_object);
        let mut any = false;
        for file in files {
            any = true;
            let verdict = match (role(file), file.runs, &file.skipped) {
                (Some(role), ..) => role.to_owned(),
                (None, true, _) => "runs".to_owned(),
                (None, false, Some(virt_hooks::SkipReason::Directory))
                    if driver.layout != Layout::Libvirt =>
                {
                    "directory".to_owned()
                }
                (None, false, Some(reason)) => format!("does not run: {reason}"),
                (None, false, None) => "does not run".to_owned(),
            };
            writeln!(out, "  {}  {verdict}", file.path.display())?;
            for warning in &file.warnings {
                writeln!(out, "    warning: {warning}")?;
            }
        }
        if let Some(err) = &driver.drop_in_error {
            any = true;
            writeln!(out, "  {err}")?;
        }
        any |= print_profiles(driver, out)?;
        if !any {
            writeln!(out, "  (no hook scripts)")?;
        }
    }
    Ok(())
}

/// The profiles of one driver; true if there was anything to print.
fn print_profiles(driver: &DriverCheck, out: &mut impl Write) -> anyhow::Result<bool> {
    if let Some(err) = &driver.profiles_error {
        writeln!(out, "  {err}")?;
    }
    for profile in &driver.profiles {
        let about = profile.description.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
        writeln!(out, "  profile {} ({}){about}", profile.name, profile.path.display())?;
        for property in &profile.properties {
            let mut line = format!("    property {}", property.name);
            if property.required {
                line.push_str(" (required)");
            }
            if let Some(pattern) = &property.pattern {
                line.push_str(&format!(" matching {pattern}"));
            }
            if let Some(description) = &property.description {
                line.push_str(&format!(": {description}"));
            }
            writeln!(out, "{line}")?;
        }
        for err in &profile.errors {
            writeln!(out, "    {err}")?;
        }
        for file in &profile.scripts {
            let verdict = match (file.runs, &file.skipped) {
                (true, _) => "runs".to_owned(),
                (false, Some(reason)) => format!("does not run: {reason}"),
                (false, None) => "does not run".to_owned(),
            };
            writeln!(out, "    {}  {verdict}", file.path.display())?;
            for warning in &file.warnings {
                writeln!(out, "      warning: {warning}")?;
            }
        }
    }
    Ok(driver.profiles_error.is_some() || !driver.profiles.is_empty())
}

fn describe_config_error(err: &anyhow::Error) -> String {
    match err.downcast_ref::<ConfigError>() {
        Some(err) => err.to_string(),
        None => format!("configuration: {err:#}"),
    }
}
