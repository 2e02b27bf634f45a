//! Attributes: their syntax, their names, duplicates (in time linear in the
//! number of attributes), the references in their values; and the XML
//! declaration, whose pseudo-attributes have the same syntax.

use std::collections::HashSet;

use crate::XmlErrorKind;
use crate::chars::{is_name, is_space};
use crate::dtd::Entities;

/// One attribute: its name, its raw value (between the quotes) and the
/// offset of its name in the bytes scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attr<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) value: &'a [u8],
    pub(crate) at: usize,
    /// The offset of the value's first byte.
    pub(crate) value_at: usize,
}

/// A syntax problem in a list of attributes: where, and what.
pub(crate) type AttrProblem = (usize, String);

/// The attributes in `raw`, what follows an element's name up to `>` or
/// `/>`: `(S Attribute)* S?`. Names are not checked here.
#[derive(Debug, Clone)]
pub(crate) struct Attrs<'a> {
    raw: &'a [u8],
    i: usize,
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(raw: &'a [u8]) -> Attrs<'a> {
        Attrs { raw, i: 0 }
    }

    fn spaces(&mut self) -> bool {
        let skipped = self.raw[self.i..].iter().take_while(|&&b| is_space(b)).count();
        self.i += skipped;
        skipped > 0
    }

    fn next_attr(&mut self) -> Result<Option<Attr<'a>>, AttrProblem> {
        let spaced = self.spaces();
        if self.i == self.raw.len() {
            return Ok(None);
        }
        if !spaced {
            return Err((self.i, "attributes must be separated by white space".to_owned()));
        }
        let at = self.i;
        let len = self.raw[at..]
            .iter()
            .take_while(|&&b| !is_space(b) && !matches!(b, b'=' | b'"' | b'\''))
            .count();
        self.i += len;
        let name = &self.raw[at..self.i];
        let shown = || String::from_utf8_lossy(name);
        if name.is_empty() {
            return Err((at, "an attribute value without a name".to_owned()));
        }
        self.spaces();
        if self.raw.get(self.i) != Some(&b'=') {
            return Err((self.i, format!("attribute '{}' has no '=' and value", shown())));
        }
        self.i += 1;
        self.spaces();
        let quote = match self.raw.get(self.i) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => {
                return Err((
                    self.i,
                    format!("the value of attribute '{}' is not quoted", shown()),
                ));
            }
        };
        let value_at = self.i + 1;
        let Some(len) = memchr::memchr(quote, &self.raw[value_at..]) else {
            return Err((self.i, format!("the value of attribute '{}' is not closed", shown())));
        };
        self.i = value_at + len + 1;
        Ok(Some(Attr { name, value: &self.raw[value_at..value_at + len], at, value_at }))
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, AttrProblem>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_attr() {
            Ok(attr) => attr.map(Ok),
            Err(e) => {
                // One error ends the list.
                self.i = self.raw.len();
                Some(Err(e))
            }
        }
    }
}

/// The names seen in one tag. Up to [`Seen::FEW`] are compared one by one
/// (no allocation: almost every tag); past that they go into a hash set, so
/// that a tag with 150,000 attributes costs 150,000 hash lookups, not
/// 150,000² / 2 comparisons.
#[derive(Debug)]
struct Seen<'a> {
    few: [&'a [u8]; Seen::FEW],
    len: usize,
    many: Option<HashSet<&'a [u8]>>,
}

impl<'a> Seen<'a> {
    const FEW: usize = 8;

    fn new() -> Seen<'a> {
        Seen { few: [&[]; Seen::FEW], len: 0, many: None }
    }

    /// Adds `name`; false if it was there already.
    fn insert(&mut self, name: &'a [u8]) -> bool {
        if let Some(many) = &mut self.many {
            return many.insert(name);
        }
        if self.few[..self.len].contains(&name) {
            return false;
        }
        if self.len < Seen::FEW {
            self.few[self.len] = name;
            self.len += 1;
        } else {
            let mut many: HashSet<&[u8]> = self.few.iter().copied().collect();
            many.insert(name);
            self.many = Some(many);
        }
        true
    }
}

/// Checks the attributes of one start tag of `element`: syntax, names,
/// no duplicates, values. `raw` starts at offset `at`; errors carry the
/// offset of the attribute at fault.
pub(crate) fn check_attributes(
    element: &str,
    raw: &[u8],
    at: usize,
    entities: &mut Entities,
) -> Result<(), (usize, XmlErrorKind)> {
    let attribute =
        |reason: String| XmlErrorKind::Attribute { element: element.to_owned(), reason };
    let mut seen = Seen::new();
    for attr in Attrs::new(raw) {
        let attr = attr.map_err(|(i, reason)| (at + i, attribute(reason)))?;
        let shown = || String::from_utf8_lossy(attr.name).into_owned();
        if !is_name(attr.name) {
            return Err((
                at + attr.at,
                attribute(format!("'{}' is not a valid attribute name", shown())),
            ));
        }
        if !seen.insert(attr.name) {
            return Err((
                at + attr.at,
                XmlErrorKind::DuplicateAttribute {
                    element: element.to_owned(),
                    attribute: shown(),
                },
            ));
        }
        check_value(attr.value, entities).map_err(|(i, reason)| {
            (
                at + attr.value_at + i,
                XmlErrorKind::AttributeValue {
                    element: element.to_owned(),
                    reason: Box::new(reason),
                },
            )
        })?;
    }
    Ok(())
}

/// An attribute value: no `<`, and every `&` starts a reference to a
/// character or to an internal entity without markup.
fn check_value(value: &[u8], entities: &mut Entities) -> Result<(), (usize, XmlErrorKind)> {
    let mut i = 0;
    while let Some(j) = memchr::memchr2(b'<', b'&', &value[i..]) {
        let at = i + j;
        if value[at] == b'<' {
            return Err((
                at,
                XmlErrorKind::Syntax("'<' is not allowed in an attribute value".into()),
            ));
        }
        let Some(len) = memchr::memchr(b';', &value[at + 1..]) else {
            return Err((at, XmlErrorKind::Syntax("a '&' that starts no reference".into())));
        };
        entities.resolve(&value[at + 1..at + 1 + len]).map_err(|kind| (at, kind))?;
        i = at + 1 + len + 1;
    }
    Ok(())
}

/// The pseudo-attributes of an XML declaration (what follows `<?xml`), in
/// order.
pub(crate) fn pseudo_attributes(raw: &[u8]) -> Result<Vec<Attr<'_>>, AttrProblem> {
    Attrs::new(raw).collect()
}

/// Checks an XML declaration's pseudo-attributes: `version` (`1.` and
/// digits), then optionally `encoding` (a valid encoding name), then
/// optionally `standalone` (`yes` or `no`), and nothing else.
pub(crate) fn check_declaration(raw: &[u8]) -> Result<(), String> {
    let attrs = pseudo_attributes(raw).map_err(|(_, reason)| reason)?;
    let mut attrs = attrs.into_iter().map(|a| (a.name, a.value)).peekable();
    match attrs.next() {
        Some((b"version", v)) => {
            let digits = v.strip_prefix(b"1.").unwrap_or_default();
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(format!("version '{}' is not 1.x", String::from_utf8_lossy(v)));
            }
        }
        _ => return Err("it must start with version".to_owned()),
    }
    if let Some((_, v)) = attrs.next_if(|(name, _)| name == b"encoding") {
        let ok = v.first().is_some_and(u8::is_ascii_alphabetic)
            && v.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(format!("'{}' is not an encoding name", String::from_utf8_lossy(v)));
        }
    }
    let standalone = attrs.next_if(|(name, _)| name == b"standalone");
    if let Some((_, v)) = standalone.filter(|(_, v)| v != b"yes" && v != b"no") {
        return Err(format!(
            "standalone must be 'yes' or 'no', not '{}'",
            String::from_utf8_lossy(v)
        ));
    }
    match attrs.next() {
        None => Ok(()),
        Some((name, _)) => Err(format!(
            "'{}' is not allowed here (version, encoding, standalone, in this order)",
            String::from_utf8_lossy(name)
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn attrs(raw: &str) -> Result<Vec<(String, String)>, String> {
        Attrs::new(raw.as_bytes())
            .map(|a| {
                a.map(|a| {
                    (
                        String::from_utf8(a.name.to_vec()).unwrap(),
                        String::from_utf8(a.value.to_vec()).unwrap(),
                    )
                })
                .map_err(|(at, reason)| format!("{at}: {reason}"))
            })
            .collect()
    }

    #[test]
    fn attribute_syntax() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
        };
        assert_eq!(attrs(""), Ok(vec![]));
        assert_eq!(attrs("  \n"), Ok(vec![]));
        assert_eq!(attrs(" a='1' b=\"2\""), Ok(pairs(&[("a", "1"), ("b", "2")])));
        assert_eq!(attrs("\ta = '>' \n b\t=\"'\" "), Ok(pairs(&[("a", ">"), ("b", "'")])));
        assert_eq!(
            attrs(" a='1'b='2'").unwrap_err(),
            "6: attributes must be separated by white space"
        );
        assert_eq!(attrs(" a=1").unwrap_err(), "3: the value of attribute 'a' is not quoted");
        assert_eq!(attrs(" a").unwrap_err(), "2: attribute 'a' has no '=' and value");
        assert_eq!(attrs(" a='1").unwrap_err(), "3: the value of attribute 'a' is not closed");
        assert_eq!(attrs(" ='1'").unwrap_err(), "1: an attribute value without a name");
        assert_eq!(attrs(" a='1' /").unwrap_err(), "8: attribute '/' has no '=' and value");
    }

    #[test]
    fn duplicates_are_found_among_few_and_many() {
        for n in [2, Seen::FEW, Seen::FEW + 1, 100] {
            let names: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
            for dup in [0, n / 2, n - 1] {
                let mut seen = Seen::new();
                assert!(names.iter().all(|x| seen.insert(x.as_bytes())));
                assert!(!seen.insert(names[dup].as_bytes()), "{dup} of {n}");
                assert!(seen.insert(b"new"));
            }
        }
    }

    #[test]
    fn declarations() {
        assert_eq!(check_declaration(b" version='1.0'"), Ok(()));
        assert_eq!(
            check_declaration(b" version=\"1.1\" encoding='ISO-8859-1' standalone='no' "),
            Ok(())
        );
        for (bad, reason) in [
            (&b""[..], "it must start with version"),
            (b" encoding='UTF-8'", "it must start with version"),
            (b" version='2.0'", "version '2.0' is not 1.x"),
            (b" version='1.'", "version '1.' is not 1.x"),
            (b" version='1.0' encoding='8bit'", "'8bit' is not an encoding name"),
            (b" version='1.0' standalone='maybe'", "standalone must be 'yes' or 'no', not 'maybe'"),
            (
                b" version='1.0' standalone='no' encoding='UTF-8'",
                "'encoding' is not allowed here (version, encoding, standalone, in this order)",
            ),
            (
                b" version='1.0' foo='x'",
                "'foo' is not allowed here (version, encoding, standalone, in this order)",
            ),
            (b" version='1.0'encoding='x'", "attributes must be separated by white space"),
        ] {
            assert_eq!(
                check_declaration(bad),
                Err(reason.to_owned()),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
