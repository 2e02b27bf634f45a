use std::fmt;

use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};

/// What [`summarize`] found in a well-formed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    root: String,
    wanted: Vec<(String, Option<String>)>,
}

impl Summary {
    /// The root element's name, prefix included (`domain`, `hookData`).
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The text of the first element at `path` (see [`summarize`]), with
    /// entities resolved and CDATA included; `None` when no such element
    /// exists or `path` was not asked for.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.wanted.iter().find(|(p, _)| p == path).and_then(|(_, text)| text.as_deref())
    }

    /// Returns true if and only if an element exists at `path` (which must
    /// have been asked for).
    pub fn contains(&self, path: &str) -> bool {
        self.text(path).is_some()
    }
}

/// Why a document is not well-formed XML. The message is lowercase and the
/// position is where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    message: String,
    line: usize,
    offset: usize,
}

impl XmlError {
    fn at(doc: &[u8], offset: usize, message: impl Into<String>) -> XmlError {
        let offset = offset.min(doc.len());
        let line = 1 + doc[..offset].iter().filter(|&&b| b == b'\n').count();
        XmlError { message: message.into(), line, offset }
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The 1-based line of the problem.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The 0-based byte offset of the problem.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at line {}, byte {}", self.message, self.line, self.offset)
    }
}

impl std::error::Error for XmlError {}

/// Checks that `doc` is one well-formed UTF-8 XML document and returns its
/// root element's name and the text of the elements named in `wanted`.
///
/// A path in `wanted` is relative to the root and separated by `/`: `name` is
/// `<name>` directly under the root, `network/name` is `<name>` under
/// `<network>` under the root. Only the first element at each path counts;
/// its text is the concatenation of all the text inside it.
///
/// Checked: valid UTF-8 (and no other declared encoding), exactly one root
/// element, matching end tags, no text other than whitespace outside the
/// root, well-formed attributes without duplicates, and only the predefined
/// entities (`&lt;` `&gt;` `&amp;` `&apos;` `&quot;`) and valid character
/// references. A DTD is allowed before the root but its entities are not
/// expanded.
///
/// # Errors
///
/// An [`XmlError`] naming the first problem and where it is.
pub fn summarize(doc: &[u8], wanted: &[&str]) -> Result<Summary, XmlError> {
    scan(doc, wanted, false)
}

/// [`summarize`] for a document already checked (by [`summarize`],
/// earlier): it stops reading as soon as every path in `wanted` has been
/// found, and reads to the end only when one is missing. What it reads is
/// checked as [`summarize`] does, except that text outside the wanted
/// elements is not checked as UTF-8; what comes after is not read at all.
/// A driver's check of a filter's output uses it to get the name and uuid
/// of the input document without parsing 64 MiB again.
///
/// # Errors
///
/// An [`XmlError`] naming the first problem found and where it is.
pub fn summarize_prefix(doc: &[u8], wanted: &[&str]) -> Result<Summary, XmlError> {
    scan(doc, wanted, true)
}

fn scan(doc: &[u8], wanted: &[&str], stop_early: bool) -> Result<Summary, XmlError> {
    if !stop_early {
        // The whole document at once: element names, attribute values and
        // the wanted text are decoded again below, but the bulk (text no
        // one asked for) only here.
        simdutf8::compat::from_utf8(doc)
            .map_err(|e| XmlError::at(doc, e.valid_up_to(), "the document is not valid UTF-8"))?;
    }
    let mut reader = Reader::from_reader(doc);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;

    let mut scan = Scan::new(wanted);
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => {
                return Err(XmlError::at(doc, to_usize(reader.error_position()), e.to_string()));
            }
        };
        let here = to_usize(reader.buffer_position());
        let fail = |message: String| XmlError::at(doc, here, message);
        match event {
            Event::Start(start) => {
                scan.start(&start).map_err(fail)?;
            }
            Event::Empty(start) => {
                scan.start(&start).map_err(fail)?;
                scan.end();
            }
            Event::End(_) => {
                scan.end();
                if stop_early && scan.all_found() {
                    return scan.finish_early().map_err(|m| XmlError::at(doc, here, m));
                }
            }
            Event::Text(t) if scan.wants_text() => {
                let content = t.xml10_content().map_err(|e| fail(e.to_string()))?;
                scan.text(&content).map_err(fail)?;
            }
            // Text inside the root that no wanted element holds: the whole
            // document was checked as UTF-8 above and entities come as their
            // own events, so there is nothing to decode or check. This is
            // most of a big document (a long <description>, say).
            Event::Text(_) => {}
            Event::CData(t) => {
                let content = t.decode().map_err(|e| fail(e.to_string()))?;
                scan.cdata(&content).map_err(fail)?;
            }
            Event::GeneralRef(r) => {
                let c = resolve(&r).map_err(fail)?;
                scan.text(c.encode_utf8(&mut [0; 4])).map_err(fail)?;
            }
            Event::Decl(decl) => {
                if let Some(Ok(enc)) = decl.encoding() {
                    if !enc.eq_ignore_ascii_case(b"utf-8") {
                        let enc = String::from_utf8_lossy(&enc).into_owned();
                        return Err(fail(format!(
                            "the document declares encoding '{enc}'; only UTF-8 is supported"
                        )));
                    }
                }
            }
            Event::DocType(_) if scan.seen_root => {
                return Err(fail("a DOCTYPE after the root element".to_owned()));
            }
            Event::DocType(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    scan.finish().map_err(|message| XmlError::at(doc, doc.len(), message))
}

fn to_usize(pos: u64) -> usize {
    usize::try_from(pos).unwrap_or(usize::MAX)
}

fn resolve(r: &BytesRef<'_>) -> Result<char, String> {
    let name = r.decode().map_err(|e| e.to_string())?;
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) => Ok(c),
            _ => Err(format!("invalid character reference '&{name};'")),
        };
    }
    match &*name {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        _ => Err(format!("unknown entity '&{name};'")),
    }
}

/// The state of one pass: where we are and what we collected.
struct Scan<'w> {
    wanted: &'w [&'w str],
    /// Per wanted path: not seen, being captured at a depth, or done.
    found: Vec<Capture>,
    /// The current path below the root, e.g. `devices/disk`.
    path: String,
    /// Where each open element's segment starts in `path`.
    marks: Vec<usize>,
    root: String,
    seen_root: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Capture {
    NotSeen,
    Open { depth: usize, text: String },
    Done(String),
}

impl<'w> Scan<'w> {
    fn new(wanted: &'w [&'w str]) -> Scan<'w> {
        Scan {
            wanted,
            found: vec![Capture::NotSeen; wanted.len()],
            path: String::new(),
            marks: Vec::new(),
            root: String::new(),
            seen_root: false,
        }
    }

    fn start(&mut self, start: &BytesStart<'_>) -> Result<(), String> {
        let name = std::str::from_utf8(start.name().into_inner())
            .map_err(|_| "an element name is not valid UTF-8".to_owned())?;
        for attr in start.attributes() {
            let attr = attr.map_err(|e| format!("bad attribute in <{name}>: {e}"))?;
            attr.unescape_value().map_err(|e| format!("bad attribute value in <{name}>: {e}"))?;
        }
        if self.marks.is_empty() {
            if self.seen_root {
                return Err(format!(
                    "a second root element <{name}> after <{}>; a document has exactly one",
                    self.root
                ));
            }
            self.seen_root = true;
            self.root = name.to_owned();
            self.marks.push(0);
            return Ok(());
        }
        self.marks.push(self.path.len());
        if self.marks.len() > 2 {
            self.path.push('/');
        }
        self.path.push_str(name);
        let depth = self.marks.len();
        for (want, found) in self.wanted.iter().zip(&mut self.found) {
            if *found == Capture::NotSeen && *want == self.path {
                *found = Capture::Open { depth, text: String::new() };
            }
        }
        Ok(())
    }

    fn end(&mut self) {
        let depth = self.marks.len();
        for found in &mut self.found {
            if let Capture::Open { depth: d, text } = found {
                if *d == depth {
                    *found = Capture::Done(std::mem::take(text));
                }
            }
        }
        if let Some(mark) = self.marks.pop() {
            self.path.truncate(mark);
        }
    }

    fn text(&mut self, content: &str) -> Result<(), String> {
        if self.marks.is_empty() {
            if !content.trim_matches(|c: char| c.is_ascii_whitespace()).is_empty() {
                let what = if self.seen_root { "after" } else { "before" };
                return Err(format!("text {what} the root element"));
            }
            return Ok(());
        }
        for found in &mut self.found {
            if let Capture::Open { text, .. } = found {
                text.push_str(content);
            }
        }
        Ok(())
    }

    /// Whether text at the current position matters: outside the root it
    /// must be whitespace, inside a wanted element it is kept.
    fn wants_text(&self) -> bool {
        self.marks.is_empty() || self.found.iter().any(|f| matches!(f, Capture::Open { .. }))
    }

    /// Whether every wanted path has been found and closed.
    fn all_found(&self) -> bool {
        self.seen_root && self.found.iter().all(|f| matches!(f, Capture::Done(_)))
    }

    /// [`finish`](Scan::finish) in the middle of the document, once
    /// [`all_found`](Scan::all_found).
    fn finish_early(mut self) -> Result<Summary, String> {
        self.marks.clear();
        self.finish()
    }

    fn cdata(&mut self, content: &str) -> Result<(), String> {
        if self.marks.is_empty() {
            return Err("a CDATA section outside the root element".to_owned());
        }
        self.text(content)
    }

    fn finish(self) -> Result<Summary, String> {
        if !self.seen_root {
            return Err("the document has no root element".to_owned());
        }
        if !self.marks.is_empty() {
            // quick-xml reports unclosed elements itself; this is a backstop.
            return Err(format!("the root element <{}> is not closed", self.root));
        }
        let wanted = self
            .wanted
            .iter()
            .zip(self.found)
            .map(|(path, found)| {
                let text = match found {
                    Capture::Done(text) => Some(text),
                    _ => None,
                };
                ((*path).to_owned(), text)
            })
            .collect();
        Ok(Summary { root: self.root, wanted })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn err(doc: &str) -> String {
        summarize(doc.as_bytes(), &[]).unwrap_err().to_string()
    }

    #[test]
    fn finds_root_and_wanted_text() {
        let doc = "<?xml version='1.0' encoding='UTF-8'?>\n<!-- c -->\n<domain type='kvm'>\n\
                   <name>vm &amp; co&#x21;</name><uuid><![CDATA[abc]]>-1</uuid>\
                   <devices><name>not this</name></devices><name>second</name></domain>\n";
        let s = summarize(doc.as_bytes(), &["name", "uuid", "devices/name", "missing"]).unwrap();
        assert_eq!(s.root(), "domain");
        assert_eq!(s.text("name"), Some("vm & co!"));
        assert_eq!(s.text("uuid"), Some("abc-1"));
        assert_eq!(s.text("devices/name"), Some("not this"));
        assert!(!s.contains("missing"));
        assert!(!s.contains("not-asked"));
    }

    #[test]
    fn nested_paths_and_empty_elements() {
        let doc = b"<hookData><network><name>default</name></network><networkport/></hookData>";
        let s = summarize(doc, &["network/name", "networkport", "network"]).unwrap();
        assert_eq!(s.root(), "hookData");
        assert_eq!(s.text("network/name"), Some("default"));
        assert_eq!(s.text("networkport"), Some(""));
        assert_eq!(s.text("network"), Some("default"));
    }

    #[test]
    fn mismatched_end_tag_names_the_position() {
        let e = summarize(b"<domain>\n<name>x</nmae>\n</domain>", &[]).unwrap_err();
        assert_eq!(e.line(), 2);
        assert!(e.to_string().contains("nmae"), "{e}");
        assert!(e.to_string().ends_with("at line 2, byte 16"), "{e}");
    }

    #[test]
    fn unclosed_root_is_an_error() {
        assert!(err("<domain><name>x</name>").contains("not closed"));
    }

    #[test]
    fn exactly_one_root() {
        assert!(err("").contains("no root element"));
        assert!(err("  \n<!-- only a comment -->").contains("no root element"));
        assert!(err("<a/><b/>").contains("a second root element <b> after <a>"));
    }

    #[test]
    fn stray_text_outside_the_root() {
        assert!(err("junk<a/>").starts_with("text before the root element"));
        assert!(err("<a/>junk").starts_with("text after the root element"));
        assert!(summarize(b"\n\t <a/>\n\n", &[]).is_ok());
    }

    #[test]
    fn bad_entities_and_attributes() {
        assert!(err("<a>&nbsp;</a>").contains("unknown entity '&nbsp;'"));
        assert!(err("<a>&#0;</a>").contains("invalid character reference"));
        assert!(err("<a x='1' x='2'/>").contains("bad attribute in <a>"));
        assert!(err("<a x='&bogus;'/>").contains("bad attribute value in <a>"));
    }

    #[test]
    fn encoding_must_be_utf8() {
        let e = summarize(b"<a>\xff</a>", &[]).unwrap_err();
        assert_eq!(e.to_string(), "the document is not valid UTF-8 at line 1, byte 3");
        assert!(err("<?xml version='1.0' encoding='ISO-8859-1'?><a/>").contains("only UTF-8"));
    }

    #[test]
    fn prefix_stops_once_everything_wanted_is_found() {
        let doc = b"<domain><name>a</name><uuid>u</uuid><x>unclosed</domain>";
        assert!(summarize(doc, &["name", "uuid"]).is_err());
        let s = summarize_prefix(doc, &["name", "uuid"]).unwrap();
        assert_eq!((s.root(), s.text("name"), s.text("uuid")), ("domain", Some("a"), Some("u")));
        // Something missing: read to the end, and checked all the way.
        assert!(summarize_prefix(doc, &["name", "missing"]).is_err());
        let ok = b"<domain><name>a</name></domain>";
        assert_eq!(summarize_prefix(ok, &["name", "uuid"]), summarize(ok, &["name", "uuid"]));
        // What it reads is checked.
        assert!(summarize_prefix(b"<d><name>\xff</name></d>", &["name"]).is_err());
        assert!(summarize_prefix(b"<d><name>a</nam></d>", &["name"]).is_err());
    }

    #[test]
    fn text_outside_wanted_elements_is_still_checked() {
        assert!(err("<a><b>x &bogus; y</b></a>").contains("unknown entity"));
        assert!(summarize(b"<a><b>\xff</b></a>", &[]).is_err());
        assert!(err("<a>x</a>tail").starts_with("text after the root element"));
    }

    #[test]
    fn large_documents_in_one_pass() {
        let mut doc = String::from("<domain><name>big</name><devices>");
        while doc.len() < 8 << 20 {
            doc.push_str("<disk type='file'><source file='/var/lib/x.img'/></disk>\n");
        }
        doc.push_str("</devices></domain>");
        let s = summarize(doc.as_bytes(), &["name"]).unwrap();
        assert_eq!(s.text("name"), Some("big"));
    }
}
