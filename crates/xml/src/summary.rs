use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::chars::{self, is_name, is_space};
use crate::dtd::{self, Entities, MAX_ENTITY_EXPANSION, Resolved};
use crate::encoding::Source;
use crate::markup;
use crate::{XmlError, XmlErrorKind};

/// What [`summarize`] found in a well-formed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    root: String,
    wanted: Vec<Wanted>,
}

/// One path [`summarize`] was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    path: String,
    /// The text of the first element at `path`.
    text: Option<String>,
    /// Where a second element at `path` starts, if there is one.
    repeated: Option<XmlError>,
}

impl Summary {
    /// The root element's name, prefix included (`domain`, `hookData`).
    pub fn root(&self) -> &str {
        &self.root
    }

    fn wanted(&self, path: &str) -> Option<&Wanted> {
        self.wanted.iter().find(|w| w.path == path)
    }

    /// The text of the first element at `path` (see [`summarize`]), with
    /// entities resolved and CDATA included; `None` when no such element
    /// exists or `path` was not asked for.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.wanted(path).and_then(|w| w.text.as_deref())
    }

    /// Returns true if and only if an element exists at `path` (which must
    /// have been asked for).
    pub fn contains(&self, path: &str) -> bool {
        self.text(path).is_some()
    }

    /// The text of the one element at `path`: `Ok(None)` when there is none
    /// (or `path` was not asked for), an error when there are two or more.
    /// A check that compares this text with something (a domain's name
    /// with the hook's object) uses it, so that no second element can say
    /// something else to whoever reads the document next.
    ///
    /// # Errors
    ///
    /// [`XmlErrorKind::Repeated`] at the second element.
    pub fn only(&self, path: &str) -> Result<Option<&str>, XmlError> {
        match self.wanted(path) {
            Some(Wanted { repeated: Some(e), .. }) => Err(e.clone()),
            Some(w) => Ok(w.text.as_deref()),
            None => Ok(None),
        }
    }
}

/// Checks that `doc` is one well-formed XML 1.0 document and returns its
/// root element's name and the text of the elements named in `wanted`.
///
/// A path in `wanted` is relative to the root and separated by `/`: `name` is
/// `<name>` directly under the root, `network/name` is `<name>` under
/// `<network>` under the root. [`Summary::text`] gives the text of the
/// first element at a path, the concatenation of all the text inside it;
/// [`Summary::only`] refuses a path with two elements.
///
/// Checked: the encoding (see the [crate] documentation) and that every
/// character is one XML allows (no NUL or other C0 control but tab, LF and
/// CR; no U+FFFE or U+FFFF); an XML declaration only at the start, with
/// version 1.x; at most one DOCTYPE, before the root; exactly one root
/// element; valid names; matching end tags; no text other than white space
/// outside the root; no `]]>` in text; attributes separated by white space,
/// quoted, without `<` and without duplicates; comments without `--`;
/// references only to valid characters, the predefined entities and
/// internal entities of the DTD (expanded with bounds); no processing
/// instruction named `xml`.
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
/// elements is checked neither as UTF-8 nor for forbidden characters; what
/// comes after is not read at all (so [`Summary::only`] sees no element
/// after that point). A driver's check of a filter's output uses it to get
/// the name and uuid of the input document without parsing 64 MiB again.
///
/// # Errors
///
/// An [`XmlError`] naming the first problem found and where it is.
pub fn summarize_prefix(doc: &[u8], wanted: &[&str]) -> Result<Summary, XmlError> {
    scan(doc, wanted, true)
}

/// A reader of `text` from `base` on (0, or after a DOCTYPE). quick-xml
/// would skip a byte order mark there as if it started a document; here it
/// is a second one (the [`Source`] took off the first), the character
/// U+FEFF, which is text outside the root element.
fn reader_at<'t>(
    text: &'t [u8],
    base: usize,
    source: &Source<'_>,
) -> Result<Reader<&'t [u8]>, XmlError> {
    let rest = &text[base..];
    if rest.starts_with(b"\xEF\xBB\xBF") {
        return Err(source.error(base, XmlErrorKind::TextOutsideRoot { place: "before" }));
    }
    let mut reader = Reader::from_reader(rest);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    Ok(reader)
}

/// Where a `<!DOCTYPE` starts, if it is the next thing after white space
/// at `pos`.
fn doctype_start(text: &[u8], pos: usize) -> Option<usize> {
    let rest = text.get(pos..)?;
    let skip = rest.iter().position(|&b| !is_space(b))?;
    rest[skip..].starts_with(b"<!DOCTYPE").then_some(pos + skip)
}

fn scan(doc: &[u8], wanted: &[&str], stop_early: bool) -> Result<Summary, XmlError> {
    let source = Source::new(doc)?;
    let text = source.text();
    // The whole document at once. Element names, attribute values and the
    // wanted text are read again below, but the bulk (text no one asked
    // for) only here. A prefix is not checked as a whole: what is read of
    // it is (see `summarize_prefix`).
    let has_bracket = if stop_early {
        true
    } else {
        let facts = chars::check_document(text, source.utf8_known())
            .map_err(|p| source.error(p.at, p.kind))?;
        facts.has_bracket
    };
    let mut scan = Scan::new(wanted, stop_early);
    let mut base = 0;
    let mut reader = reader_at(text, 0, &source)?;
    loop {
        let before = base + to_usize(reader.buffer_position());
        if let Some(start) = (!scan.seen_root).then(|| doctype_start(text, before)).flatten() {
            if scan.seen_doctype {
                let reason = "may appear only once";
                return Err(source.error(start, XmlErrorKind::MisplacedDoctype { reason }));
            }
            let (entities, end) =
                dtd::parse_doctype(text, start).map_err(|(at, kind)| source.error(at, kind))?;
            scan.entities = entities;
            scan.seen_doctype = true;
            base = end;
            reader = reader_at(text, end, &source)?;
            continue;
        }
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => {
                let at = base + to_usize(reader.error_position());
                return Err(source.error(at, XmlErrorKind::Syntax(e.to_string())));
            }
        };
        let at_before = |kind| source.error(before, kind);
        let located = |(at, kind)| source.error(at, kind);
        match event {
            Event::Start(start) => scan.start(&start, before).map_err(located)?,
            Event::Empty(start) => {
                scan.start(&start, before).map_err(located)?;
                scan.end();
            }
            Event::End(_) => {
                scan.end();
                if stop_early && scan.all_found() {
                    return scan.finish(&source);
                }
            }
            Event::Text(t) => {
                // Most documents have no `]` at all; in the others, `]` is
                // rare in text, and memchr finds it faster than a substring
                // search finds `]]>`.
                let cdata_end = has_bracket
                    .then(|| memchr::memchr_iter(b']', &t).find(|&i| t[i..].starts_with(b"]]>")))
                    .flatten();
                if let Some(i) = cdata_end {
                    return Err(source.error(before + i, XmlErrorKind::CdataEndInText));
                }
                if scan.wants_text() {
                    let content = t
                        .xml10_content()
                        .map_err(|e| at_before(XmlErrorKind::Syntax(e.to_string())))?;
                    scan.text(&content).map_err(|(i, kind)| source.error(before + i, kind))?;
                }
            }
            Event::CData(t) => {
                if scan.marks.is_empty() {
                    return Err(at_before(XmlErrorKind::CdataOutsideRoot));
                }
                if scan.wants_text() {
                    let content =
                        t.decode().map_err(|e| at_before(XmlErrorKind::Syntax(e.to_string())))?;
                    scan.text(&content).map_err(|(_, kind)| at_before(kind))?;
                }
            }
            Event::GeneralRef(r) => scan.reference(&r).map_err(at_before)?,
            Event::Decl(decl) => {
                if before != 0 {
                    let reason = "it must be at the very start of the document".to_owned();
                    return Err(at_before(XmlErrorKind::Declaration { reason }));
                }
                // What follows `<?xml`.
                let raw = decl.get(3..).unwrap_or_default();
                markup::check_declaration(raw)
                    .map_err(|reason| at_before(XmlErrorKind::Declaration { reason }))?;
            }
            Event::PI(pi) => {
                let target = pi.target();
                if target.eq_ignore_ascii_case(b"xml") {
                    let target = String::from_utf8_lossy(target).into_owned();
                    return Err(at_before(XmlErrorKind::ReservedTarget { target }));
                }
                if !is_name(target) {
                    let name = String::from_utf8_lossy(target).into_owned();
                    return Err(at_before(XmlErrorKind::Name { name }));
                }
            }
            Event::DocType(_) => {
                let reason = if scan.seen_root {
                    "after the root element"
                } else {
                    "must be written '<!DOCTYPE'"
                };
                return Err(at_before(XmlErrorKind::MisplacedDoctype { reason }));
            }
            Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !scan.marks.is_empty() {
        // quick-xml reports unclosed elements itself; this is a backstop.
        return Err(source.error(text.len(), XmlErrorKind::Unclosed { root: scan.root }));
    }
    scan.finish(&source)
}

fn to_usize(pos: u64) -> usize {
    usize::try_from(pos).unwrap_or(usize::MAX)
}

/// A problem found by [`Scan`], and its offset in the text.
type Problem = (usize, XmlErrorKind);

/// The state of one pass: where we are and what we collected.
struct Scan<'w> {
    wanted: &'w [&'w str],
    /// Per wanted path: not seen, being captured at a depth, or done.
    found: Vec<Capture>,
    /// Per wanted path: where a second element at that path starts.
    repeated: Vec<Option<usize>>,
    /// The current path below the root, e.g. `devices/disk`.
    path: String,
    /// Where each open element's segment starts in `path`.
    marks: Vec<usize>,
    root: String,
    seen_root: bool,
    seen_doctype: bool,
    entities: Entities,
    /// Bytes of entity text added to the wanted elements so far.
    expanded: usize,
    /// Whether text is checked here, not by a pass over the whole document.
    check_text: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Capture {
    NotSeen,
    Open { depth: usize, text: String },
    Done(String),
}

impl<'w> Scan<'w> {
    fn new(wanted: &'w [&'w str], check_text: bool) -> Scan<'w> {
        Scan {
            wanted,
            found: vec![Capture::NotSeen; wanted.len()],
            repeated: vec![None; wanted.len()],
            path: String::new(),
            marks: Vec::new(),
            root: String::new(),
            seen_root: false,
            seen_doctype: false,
            entities: Entities::default(),
            expanded: 0,
            check_text,
        }
    }

    /// A start tag at offset `at` (its `<`).
    fn start(&mut self, start: &BytesStart<'_>, at: usize) -> Result<(), Problem> {
        let raw = start.name().into_inner();
        let bad_name =
            || (at + 1, XmlErrorKind::Name { name: String::from_utf8_lossy(raw).into_owned() });
        let name = std::str::from_utf8(raw).map_err(|_| bad_name())?;
        if !is_name(raw) {
            return Err(bad_name());
        }
        let attrs_at = at + 1 + raw.len();
        markup::check_attributes(name, start.attributes_raw(), attrs_at, &mut self.entities)?;
        if self.marks.is_empty() {
            if self.seen_root {
                let (first, second) = (self.root.clone(), name.to_owned());
                return Err((at, XmlErrorKind::SecondRoot { first, second }));
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
        for ((want, found), repeated) in
            self.wanted.iter().zip(&mut self.found).zip(&mut self.repeated)
        {
            if *want == self.path {
                if *found == Capture::NotSeen {
                    *found = Capture::Open { depth, text: String::new() };
                } else if repeated.is_none() {
                    *repeated = Some(at);
                }
            }
        }
        Ok(())
    }

    fn end(&mut self) {
        let depth = self.marks.len();
        for found in &mut self.found {
            match found {
                Capture::Open { depth: d, text } if *d == depth => {
                    *found = Capture::Done(std::mem::take(text));
                }
                _ => {}
            }
        }
        if let Some(mark) = self.marks.pop() {
            self.path.truncate(mark);
        }
    }

    /// Text (or CDATA) content; errors carry an offset in `content`.
    fn text(&mut self, content: &str) -> Result<(), Problem> {
        if self.marks.is_empty() {
            if let Some(i) = content.bytes().position(|b| !is_space(b)) {
                let place = if self.seen_root { "after" } else { "before" };
                return Err((i, XmlErrorKind::TextOutsideRoot { place }));
            }
            return Ok(());
        }
        if self.check_text {
            chars::check_text(content).map_err(|p| (p.at, p.kind))?;
        }
        for found in &mut self.found {
            if let Capture::Open { text, .. } = found {
                text.push_str(content);
            }
        }
        Ok(())
    }

    /// A reference in content (`&...;`).
    fn reference(&mut self, body: &[u8]) -> Result<(), XmlErrorKind> {
        if self.marks.is_empty() {
            let place = if self.seen_root { "after" } else { "before" };
            return Err(XmlErrorKind::TextOutsideRoot { place });
        }
        let resolved = self.entities.resolve(body)?;
        if !self.wants_text() {
            return Ok(());
        }
        match resolved {
            Resolved::Char(c) => self.text(c.encode_utf8(&mut [0; 4])).map_err(|(_, kind)| kind),
            Resolved::Entity { name, len } => {
                self.expanded = self.expanded.saturating_add(len);
                if self.expanded > MAX_ENTITY_EXPANSION {
                    return Err(XmlErrorKind::ExpansionBudget { limit: MAX_ENTITY_EXPANSION });
                }
                let mut expansion = String::with_capacity(len);
                self.entities.expand(&name, &mut expansion);
                self.text(&expansion).map_err(|(_, kind)| kind)
            }
        }
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

    fn finish(self, source: &Source<'_>) -> Result<Summary, XmlError> {
        if !self.seen_root {
            return Err(source.error(source.text().len(), XmlErrorKind::NoRoot));
        }
        let wanted = self
            .wanted
            .iter()
            .zip(self.found)
            .zip(self.repeated)
            .map(|((path, found), repeated)| Wanted {
                path: (*path).to_owned(),
                text: match found {
                    Capture::Done(text) => Some(text),
                    _ => None,
                },
                repeated: repeated.map(|at| {
                    source.error(at, XmlErrorKind::Repeated { path: (*path).to_owned() })
                }),
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
    fn a_second_byte_order_mark_is_text() {
        assert!(summarize(b"\xEF\xBB\xBF<a/>", &[]).is_ok());
        assert_eq!(
            summarize(b"\xEF\xBB\xBF\xEF\xBB\xBF<a/>", &[]).unwrap_err().to_string(),
            "text before the root element at line 1, byte 3"
        );
        assert!(err("<!DOCTYPE a>\u{FEFF}<a/>").starts_with("text before the root element"));
        assert!(err("<a/>\u{FEFF}").starts_with("text after the root element"));
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
    fn utf8_unless_another_encoding_is_declared() {
        let e = summarize(b"<a>\xff</a>", &[]).unwrap_err();
        assert_eq!(e.to_string(), "the document is not valid UTF-8 at line 1, byte 3");
        let latin1 = b"<?xml version='1.0' encoding='ISO-8859-1'?><a><b>\xff</b></a>";
        assert_eq!(summarize(latin1, &["b"]).unwrap().text("b"), Some("\u{FF}"));
        assert!(
            err("<?xml version='1.0' encoding='ISO-8859-15'?>\n<a>\0</a>")
                .starts_with("character U+0000 is not allowed in XML at line 2")
        );
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
