//! Hook profiles: shared script sets an object (a domain, a network) asks
//! for in its own `<metadata>` (read by `virt-hooks-xml`), kept in
//! `<hooks>/<driver>.profiles/<profile>/`.
//!
//! A profile is a directory with the same shape as a per-object one
//! (`<op>/<subop>`, a file or a directory of executables) and an optional
//! `profile.toml` that declares it: a description and its properties
//! (`[properties.NAME]`: `required`, `pattern`, `description`). This module
//! reads the declarations, checks what an object asks for against them and
//! gives each profile that applies its environment additions
//! (`VIRT_HOOKS_PROFILE`, `VIRT_HOOKS_PROP_<NAME>`). Nothing is cached.

use std::{
    collections::BTreeMap,
    fs, io,
    path::{Path, PathBuf},
};

use regex::Regex;
use serde::{Deserialize, Serialize};
use virt_hooks_xml::ProfileRequests;

use super::{
    discovery::{self, DirError, DropIns},
    message,
};

/// The file that declares a profile, in its directory.
pub const PROFILE_FILE: &str = "profile.toml";

/// The variable that names the profile a script runs for.
pub const PROFILE_ENV: &str = "VIRT_HOOKS_PROFILE";

/// The prefix of the variables that carry the properties (the name
/// upper-cased follows).
pub const PROPERTY_ENV_PREFIX: &str = "VIRT_HOOKS_PROP_";

/// `<hooks>/<driver>.profiles`.
pub(crate) fn profiles_dir(hooks: &Path, driver: &str) -> PathBuf {
    hooks.join(format!("{driver}.profiles"))
}

/// A `profile.toml` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("profile file {}, line {line}: {message}", path.display())]
pub struct ProfileFileError {
    /// The file.
    pub path: PathBuf,
    /// The 1-based line of the problem (1 when the file cannot be read).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One property a profile declares.
#[derive(Debug, Clone, Serialize)]
pub struct PropertyInfo {
    /// Its name (`[a-z][a-z0-9_]*`).
    pub name: String,
    /// Whether an object naming the profile must give it.
    pub required: bool,
    /// The pattern the whole value must match, as written.
    pub pattern: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    #[serde(skip)]
    regex: Option<Regex>,
}

// The compiled pattern is the written one's: comparing those is enough.
impl PartialEq for PropertyInfo {
    fn eq(&self, other: &PropertyInfo) -> bool {
        (&self.name, self.required, &self.pattern, &self.description)
            == (&other.name, other.required, &other.pattern, &other.description)
    }
}

impl Eq for PropertyInfo {}

/// A profile's declaration: its `profile.toml`, or nothing declared when
/// there is none (then it takes no properties).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProfileDecl {
    /// What the profile does.
    pub description: Option<String>,
    /// Its properties, by name.
    pub properties: Vec<PropertyInfo>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileToml {
    description: Option<String>,
    #[serde(default)]
    properties: BTreeMap<toml::Spanned<String>, PropertyToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PropertyToml {
    #[serde(default)]
    required: bool,
    pattern: Option<toml::Spanned<String>>,
    description: Option<String>,
}

/// Returns true if and only if `name` is a property name: `[a-z][a-z0-9_]*`.
pub(crate) fn is_property_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Returns true if and only if `name` can name a profile directory: not
/// empty, no `/`, not starting with `.`.
fn is_profile_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\0'])
}

impl ProfileDecl {
    /// Reads `<dir>/profile.toml`; no file declares nothing.
    pub(crate) fn load(dir: &Path) -> Result<ProfileDecl, ProfileFileError> {
        let path = dir.join(PROFILE_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => ProfileDecl::parse(&text, &path),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(ProfileDecl::default()),
            Err(err) => Err(ProfileFileError { path, line: 1, message: message::strerror(&err) }),
        }
    }

    /// Parses the text of a `profile.toml`; `path` names it in errors.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<ProfileDecl, ProfileFileError> {
        let at = |offset: usize, message: String| ProfileFileError {
            path: path.to_owned(),
            line: line_of(text, offset),
            message,
        };
        let file: ProfileToml = toml::from_str(text)
            .map_err(|e| at(e.span().map_or(0, |s| s.start), e.message().trim_end().to_owned()))?;
        let mut properties = Vec::with_capacity(file.properties.len());
        for (name, property) in file.properties {
            let span = name.span();
            let name = name.into_inner();
            if !is_property_name(&name) {
                return Err(at(
                    span.start,
                    format!("property name '{name}' is not [a-z][a-z0-9_]*"),
                ));
            }
            let (pattern, regex) = match property.pattern {
                None => (None, None),
                Some(pattern) => {
                    let span = pattern.span();
                    let pattern = pattern.into_inner();
                    // The whole value must match, whether or not the
                    // pattern is anchored. The regex crate runs in linear
                    // time, so no value can make a check slow.
                    let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                        at(span.start, format!("bad pattern of property '{name}': {e}"))
                    })?;
                    (Some(pattern), Some(regex))
                }
            };
            properties.push(PropertyInfo {
                name,
                required: property.required,
                pattern,
                description: property.description,
                regex,
            });
        }
        Ok(ProfileDecl { description: file.description, properties })
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// A profile that applies to an event: where its scripts are and what its
/// scripts get in their environment beyond libvirt's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    /// The profile's name.
    pub(crate) name: String,
    /// `<hooks>/<driver>.profiles/<name>`.
    pub(crate) dir: PathBuf,
    /// `VIRT_HOOKS_PROFILE`, then one `VIRT_HOOKS_PROP_<NAME>` per property
    /// given, in the object's order.
    pub(crate) env: Vec<(String, String)>,
}

impl Applied {
    /// The scripts of this profile for an event: `<dir>/<op>/<subop>`, a
    /// file or a directory of them, as per-object scripts.
    pub(crate) fn scripts(&self, args: [&str; 4]) -> Result<DropIns, DirError> {
        let [_, operation, sub_operation, _] = args;
        if !discovery::is_plain_name(operation) || !discovery::is_plain_name(sub_operation) {
            return Ok(DropIns::default());
        }
        discovery::file_or_dir(self.dir.join(operation).join(sub_operation))
    }
}

/// The profiles of one event: those that apply, in the object's order, and
/// what is wrong with the others (one message each, naming the object, the
/// profile and the property).
#[derive(Debug, Default)]
pub(crate) struct Resolution {
    pub(crate) applied: Vec<Applied>,
    pub(crate) problems: Vec<String>,
}

/// Which profiles the document of an event for `object` asks for, checked
/// against their declarations in `<hooks>/<driver>.profiles/`. `None` when
/// that directory does not exist: then the document is not even read.
/// `vet` judges a `profile.toml` by the trust rule (`Err` with the reason
/// makes that profile's declaration unusable).
pub(crate) fn resolve(
    hooks: &Path,
    driver: &str,
    object: &str,
    document: &[u8],
    vet: &dyn Fn(&Path) -> Result<(), String>,
) -> Option<Resolution> {
    let dir = profiles_dir(hooks, driver);
    if !fs::metadata(&dir).is_ok_and(|m| m.is_dir()) {
        return None;
    }
    let mut out = Resolution::default();
    let requests = match virt_hooks_xml::read_profiles(document) {
        Ok(requests) => requests,
        Err(err) => {
            let owner = if err.owner.is_empty() { driver } else { &err.owner };
            out.problems.push(format!("{owner} '{object}': {err}"));
            return Some(out);
        }
    };
    let ProfileRequests { owner, profiles } = requests;
    let owner = if owner.is_empty() { driver.to_owned() } else { owner };
    for request in profiles {
        let who = format!("{owner} '{object}', profile '{}'", request.name);
        match check(&dir, &request, vet) {
            Ok(applied) => out.applied.push(applied),
            Err(problems) => {
                out.problems.extend(problems.into_iter().map(|p| format!("{who}: {p}")));
            }
        }
    }
    Some(out)
}

/// One request against its profile: the profile applied, or every problem.
fn check(
    dir: &Path,
    request: &virt_hooks_xml::ProfileRequest,
    vet: &dyn Fn(&Path) -> Result<(), String>,
) -> Result<Applied, Vec<String>> {
    let name = &request.name;
    if !is_profile_name(name) {
        return Err(vec!["not a valid profile name (empty, with a '/', or hidden)".to_owned()]);
    }
    let dir = dir.join(name);
    if !fs::metadata(&dir).is_ok_and(|m| m.is_dir()) {
        return Err(vec![format!("no such profile ({} is not a directory)", dir.display())]);
    }
    let decl_file = dir.join(PROFILE_FILE);
    if decl_file.exists() {
        vet(&decl_file).map_err(|reason| vec![format!("{PROFILE_FILE} is unsafe: {reason}")])?;
    }
    let decl = ProfileDecl::load(&dir).map_err(|err| vec![err.to_string()])?;
    let mut problems = Vec::new();
    let mut env = vec![(PROFILE_ENV.to_owned(), name.clone())];
    for (property, value) in &request.properties {
        let Some(declared) = decl.properties.iter().find(|p| p.name == *property) else {
            problems.push(format!("property '{property}' is not declared by the profile"));
            continue;
        };
        if let Some(regex) = &declared.regex {
            if !regex.is_match(value) {
                problems.push(format!(
                    "property '{property}': value '{}' does not match the pattern '{}'",
                    value.escape_default(),
                    declared.pattern.as_deref().unwrap_or_default()
                ));
                continue;
            }
        }
        env.push((
            format!("{PROPERTY_ENV_PREFIX}{}", property.to_ascii_uppercase()),
            value.clone(),
        ));
    }
    for declared in decl.properties.iter().filter(|p| p.required) {
        if !request.properties.iter().any(|(name, _)| *name == declared.name) {
            problems.push(format!("required property '{}' is not given", declared.name));
        }
    }
    if problems.is_empty() { Ok(Applied { name: name.clone(), dir, env }) } else { Err(problems) }
}

/// One profile directory of `<hooks>/<driver>.profiles/`, for `check`.
#[derive(Debug)]
pub(crate) struct Listed {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) decl: Result<ProfileDecl, ProfileFileError>,
    /// Every script path of the profile and the entries that do not run.
    pub(crate) found: DropIns,
    /// Directories that cannot be listed.
    pub(crate) errors: Vec<String>,
}

/// Every profile of `<hooks>/<driver>.profiles/` in byte order, with its
/// declaration and every `<op>/<subop>` script. A missing directory has
/// none; one that cannot be listed is the error.
pub(crate) fn list(hooks: &Path, driver: &str) -> Result<Vec<Listed>, String> {
    let dir = profiles_dir(hooks, driver);
    let mut names = match sorted_entries(&dir) {
        Ok(names) => names,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(message::cannot_open_dir(&dir, &err)),
    };
    names.retain(|(_, path)| path.is_dir());
    let mut out = Vec::new();
    for (name, dir) in names {
        let decl = ProfileDecl::load(&dir);
        let mut found = DropIns::default();
        let mut errors = Vec::new();
        let ops = sorted_entries(&dir).unwrap_or_default();
        for (_, op) in ops.into_iter().filter(|(_, p)| p.is_dir()) {
            for (_, sub) in sorted_entries(&op).unwrap_or_default() {
                match discovery::file_or_dir(sub) {
                    Ok(f) => {
                        found.scripts.extend(f.scripts);
                        found.skipped.extend(f.skipped);
                        // Its deferred scripts are judged as the others.
                        match f.deferred.as_deref().map(discovery::drop_ins) {
                            Some(Ok(d)) => {
                                found.scripts.extend(d.scripts);
                                found.skipped.extend(d.skipped);
                            }
                            Some(Err(err)) => errors.push(err.message),
                            None => {}
                        }
                    }
                    Err(err) => errors.push(err.message),
                }
            }
        }
        out.push(Listed { name, dir, decl, found, errors });
    }
    Ok(out)
}

fn sorted_entries(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out: Vec<(String, PathBuf)> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .collect();
    out.sort();
    Ok(out)
}
