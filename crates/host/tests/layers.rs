//! The shape of the sources: no two files of `src/` import each other, and
//! no longer cycle of imports exists either. Each folder is a layer; a file
//! that needs another names it (`crate::hooks::security`, `super::driver`)
//! and the dependency must point one way.
//!
//! An import is any `crate::`, `super::` or `self::` path in the code (not
//! in comments): `use` trees, inline paths and paths in attribute strings
//! such as `serialize_with`. A path to a name re-exported by a folder's
//! `mod.rs` or by `lib.rs` counts as an import of the file that defines it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// One source file: its path under `src/`, its module path and its code.
#[derive(Debug)]
struct Source {
    rel: String,
    module: Vec<String>,
    code: String,
}

impl Source {
    fn new(rel: &str, text: &str) -> Source {
        let mut module: Vec<String> =
            rel.trim_end_matches(".rs").split('/').map(str::to_owned).collect();
        if module.last().is_some_and(|m| m == "mod" || m == "lib") {
            module.pop();
        }
        // Comment lines (doc links included) are not imports.
        let code = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        Source { rel: rel.to_owned(), module, code }
    }

    /// The names this file defines at its top level.
    fn items(&self) -> BTreeSet<String> {
        const KINDS: [&str; 9] =
            ["struct", "enum", "fn", "const", "static", "trait", "type", "union", "macro_rules!"];
        let mut out = BTreeSet::new();
        for line in self.code.lines().filter(|l| !l.starts_with([' ', '\t', '}'])) {
            let mut words = line.split_whitespace().skip_while(|w| w.starts_with("pub"));
            let (kind, name) = (words.next(), words.next());
            if let Some(name) = name.filter(|_| kind.is_some_and(|k| KINDS.contains(&k))) {
                let name: String =
                    name.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.insert(name);
            }
        }
        out
    }
}

fn sources() -> Vec<Source> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<Source>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).expect("under src").to_str().expect("UTF-8");
                let text = fs::read_to_string(&path).expect("a readable source file");
                out.push(Source::new(rel, &text));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

/// Every `crate::`/`super::`/`self::` path of `code`, `use` trees expanded.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    // `use` declarations, possibly over several lines.
    let mut plain = String::new();
    while let Some(at) = find_use(rest) {
        plain.push_str(&rest[..at]);
        let end = rest[at..].find(';').map_or(rest.len(), |e| at + e);
        let tree: String = rest[at..end]
            .trim_start_matches(|c: char| c != ' ')
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        expand(&tree, "", &mut out);
        rest = &rest[(end + 1).min(rest.len())..];
    }
    plain.push_str(rest);
    // Inline paths: `crate::hooks::message::strerror(..)`, attribute strings.
    let bytes = plain.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = plain[from..].find(start).map(|a| from + a) {
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let len = plain[at..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(plain.len() - at);
            out.push(plain[at..at + len].trim_end_matches(':').to_owned());
        }
    }
    out
}

/// Where the next `use` declaration starts (`use`, `pub use`,
/// `pub(crate) use`, at the start of a line).
fn find_use(code: &str) -> Option<usize> {
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let body = trimmed
            .strip_prefix("pub(crate) ")
            .or_else(|| trimmed.strip_prefix("pub(super) "))
            .or_else(|| trimmed.strip_prefix("pub "))
            .unwrap_or(trimmed);
        if body.starts_with("use ") {
            return Some(offset + (line.len() - trimmed.len()) + (trimmed.len() - body.len()));
        }
        offset += line.len();
    }
    None
}

/// Expands a use tree (`a::{b, c::{self, D}}`) into full paths under `prefix`.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let join = |p: &str| {
        if prefix.is_empty() { p.to_owned() } else { format!("{prefix}::{p}") }
    };
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let inner = &tree[open + 1..tree.rfind('}').expect("a closed use group")];
        let prefix = join(head);
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..i], &prefix, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&inner[start..], &prefix, out);
    } else if !tree.is_empty() {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        out.push(match path {
            "self" => prefix.to_owned(),
            _ => join(path),
        });
    }
}

/// The import graph: for each file, the other files it imports.
fn graph(files: &[Source]) -> BTreeMap<&str, BTreeSet<&str>> {
    let by_module: BTreeMap<&[String], &Source> =
        files.iter().map(|f| (f.module.as_slice(), f)).collect();
    let items: Vec<(BTreeSet<String>, &Source)> = files.iter().map(|f| (f.items(), f)).collect();
    let mut edges = BTreeMap::new();
    for file in files {
        let targets: &mut BTreeSet<&str> = edges.entry(file.rel.as_str()).or_default();
        for path in paths(&file.code) {
            if path == "super::*" {
                continue; // a unit test module reaching its own file
            }
            if let Some(target) =
                resolve(&path, file, &by_module, &items).filter(|&t| t != file.rel)
            {
                targets.insert(target);
            }
        }
    }
    edges
}

/// The file a path leads to, if it leads into this crate.
fn resolve<'a>(
    path: &str,
    from: &Source,
    by_module: &BTreeMap<&[String], &'a Source>,
    items: &[(BTreeSet<String>, &'a Source)],
) -> Option<&'a str> {
    let mut segments = path.split("::").filter(|s| !s.is_empty() && *s != "*");
    let mut module: Vec<String> = match segments.next()? {
        "crate" => Vec::new(),
        "self" => from.module.clone(),
        "super" => from.module[..from.module.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    for segment in segments {
        let mut deeper = module.clone();
        deeper.push(segment.to_owned());
        if by_module.contains_key(deeper.as_slice()) {
            module = deeper;
            continue;
        }
        // A module re-imported under a short name (`use self::hooks::message;`).
        let aliased: Vec<&&Source> =
            by_module.values().filter(|f| f.module.last().is_some_and(|m| m == segment)).collect();
        if let Some(only) =
            aliased.first().filter(|o| aliased.len() == 1 && o.module.starts_with(&module))
        {
            module = only.module.clone();
            continue;
        }
        // An item: the file under `module` that defines it.
        let defining: Vec<&str> = items
            .iter()
            .filter(|(names, f)| names.contains(segment) && f.module.starts_with(&module))
            .map(|(_, f)| f.rel.as_str())
            .collect();
        let here = by_module.get(module.as_slice());
        return match defining[..] {
            [only] => Some(only),
            // A name `lib.rs` or a `mod.rs` re-exports from another crate.
            [] if here.is_some_and(|f| f.rel == "lib.rs" || f.rel.ends_with("/mod.rs")) => None,
            [] => here.map(|f| f.rel.as_str()),
            _ => panic!("{path} in {}: {segment} is defined in {defining:?}", from.rel),
        };
    }
    by_module.get(module.as_slice()).map(|f| f.rel.as_str())
}

/// A cycle of imports, if there is one, as the files along it.
fn cycle<'a>(edges: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Option<Vec<&'a str>> {
    fn visit<'a>(
        node: &'a str,
        edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let mut found = stack[at..].to_vec();
            found.push(node);
            return Some(found);
        }
        if !done.insert(node) {
            return None;
        }
        stack.push(node);
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, stack, done) {
                return Some(found);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_source_files_import_each_other() {
    let files = sources();
    let edges = graph(&files);
    assert!(cycle(&edges).is_none(), "import cycle: {:?}", cycle(&edges).unwrap_or_default());
    // The graph is really read: the registry uses the loader, not the
    // other way round; the runner uses the drivers and the hooks.
    let uses = |a: &str, b: &str| edges.get(a).is_some_and(|t| t.contains(b));
    assert!(uses("drivers/registry.rs", "drivers/plugin.rs"), "{edges:#?}");
    assert!(!uses("drivers/plugin.rs", "drivers/registry.rs"), "{edges:#?}");
    assert!(uses("run/runner.rs", "drivers/registry.rs"), "{edges:#?}");
    assert!(uses("run/runner.rs", "hooks/security.rs"), "{edges:#?}");
    assert!(uses("run/audit.rs", "run/outcome.rs"), "{edges:#?}");
    assert!(uses("config.rs", "hooks/discovery.rs"), "{edges:#?}");
}

#[test]
fn the_check_finds_a_pair_and_a_longer_cycle() {
    let pair = [
        Source::new("a.rs", "use crate::b::B;\npub struct A;\n"),
        Source::new("b.rs", "pub struct B;\nfn f() { crate::A; }\n"),
        Source::new("lib.rs", "pub use crate::a::A;\nmod a;\nmod b;\n"),
    ];
    assert_eq!(cycle(&graph(&pair)), Some(vec!["a.rs", "b.rs", "a.rs"]));
    let longer = [
        Source::new("x/mod.rs", "mod one;\nmod two;\npub(crate) use self::{one::One, two::Two};\n"),
        Source::new("x/one.rs", "use super::two::{self, Two};\npub struct One;\n"),
        Source::new("x/two.rs", "// use crate::y::Y; is a comment\npub struct Two(crate::y::Y);\n"),
        Source::new("y.rs", "#[serde(with = \"crate::x::one\")]\npub struct Y;\n"),
    ];
    assert_eq!(cycle(&graph(&longer)), Some(vec!["x/one.rs", "x/two.rs", "y.rs", "x/one.rs"]));
    let fine = [
        Source::new("a.rs", "use crate::b::B;\n// crate::a\npub struct A;\n"),
        Source::new("b.rs", "pub struct B;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n"),
    ];
    assert_eq!(cycle(&graph(&fine)), None);
}
