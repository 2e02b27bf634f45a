//! `virt-hook drivers`: the loaded drivers and the plugins that failed.

use std::io::Write;

use serde_json::{Value, json};
use virt_hooks::{Driver, ExtraRule, InputSpec, OperationSpec, Registry};

use crate::{Format, exit};

/// Prints the registry; exit 1 when any plugin failed to load.
pub(crate) fn print(
    registry: &Registry,
    format: Format,
    out: &mut impl Write,
) -> std::io::Result<u8> {
    match format {
        Format::Json => {
            crate::print_json(out, &to_json(registry))?;
            // The JSON is for programs; a person still sees what failed.
            for error in registry.errors() {
                log::error!("{error}");
            }
        }
        Format::Text => print_text(registry, out)?,
    }
    Ok(if registry.errors().is_empty() { exit::OK } else { exit::REFUSED })
}

fn print_text(registry: &Registry, out: &mut impl Write) -> std::io::Result<()> {
    for driver in registry.drivers() {
        let info = driver.info();
        writeln!(out, "{} {} ({})", info.name, info.version, file_of(driver))?;
        writeln!(out, "  {}", info.description)?;
        let width = driver.operations().iter().map(|op| op.name.len()).max().unwrap_or(0);
        for op in driver.operations() {
            let mut flags = vec![format!("on failure {}", op.on_failure)];
            if op.filter {
                flags.push("filter".to_owned());
            }
            writeln!(
                out,
                "  {:width$}  {:9}  extra {}; {}; {}",
                op.name,
                op.sub_operations.join("|"),
                op.extra,
                op.input,
                flags.join(", "),
            )?;
        }
    }
    if !registry.errors().is_empty() {
        writeln!(out, "plugins that failed to load:")?;
        for error in registry.errors() {
            writeln!(out, "  {error}")?;
        }
    }
    Ok(())
}

fn file_of(driver: &Driver) -> String {
    driver.file().map_or_else(|| "compiled in".to_owned(), |p| p.display().to_string())
}

fn to_json(registry: &Registry) -> Value {
    json!({
        "drivers": registry.drivers().iter().map(|d| json!({
            "name": d.info().name,
            "version": d.info().version,
            "description": d.info().description,
            "file": d.file(),
            "operations": d.operations().iter().map(operation_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "errors": registry.errors().iter().map(|e| json!({
            "file": e.file,
            "message": e.reason.to_string(),
        })).collect::<Vec<_>>(),
    })
}

/// One row of an operation table as JSON; `plan` and `run` reuse it.
pub(crate) fn operation_json(op: &OperationSpec) -> Value {
    let extra = match &op.extra {
        ExtraRule::Dash => json!({ "rule": "dash", "values": ["-"] }),
        ExtraRule::Fixed(v) => json!({ "rule": "fixed", "values": [v] }),
        ExtraRule::OneOf(vs) => json!({ "rule": "one-of", "values": vs }),
        _ => json!({ "rule": "free", "values": [] }),
    };
    let input = match &op.input {
        InputSpec::Xml { root } => json!({ "kind": "xml", "root": root }),
        _ => json!({ "kind": "none" }),
    };
    json!({
        "name": op.name,
        "description": op.description,
        "sub_operations": op.sub_operations,
        "extra": extra,
        "input": input,
        "on_failure": op.on_failure.as_str(),
        "filter": op.filter,
    })
}
