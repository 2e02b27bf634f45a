//! The document type declaration (`<!DOCTYPE ...>`) and the entities its
//! internal subset declares.
//!
//! libvirt parses with libxml2 and `XML_PARSE_NONET | XML_PARSE_NOWARNING`:
//! no `XML_PARSE_NOENT`, no `XML_PARSE_DTDLOAD`. So it keeps references to
//! internal entities in the tree and reads them through (its XPath string
//! of `<name>` includes the entity's text), and it never loads an external
//! entity or DTD. This module does the same, with bounds:
//!
//! * internal general entities are expanded where a driver reads text, up
//!   to [`MAX_ENTITY_EXPANSION`] bytes per entity and per document, nested
//!   at most [`MAX_ENTITY_DEPTH`] deep (no "billion laughs"); a recursive
//!   entity is an error;
//! * external entities (`SYSTEM`, `PUBLIC`) and the external DTD subset are
//!   never opened: a reference to an external entity is an error (libvirt
//!   would read it as empty text);
//! * an entity whose text holds markup (`<`) is an error where it is used;
//! * parameter-entity references (`%name;`) are an error: the internal
//!   subset may only use them between declarations, no libvirt document
//!   does, and reading past an unread one could hide a declaration.
//!
//! `ELEMENT`, `ATTLIST` and `NOTATION` declarations are skipped (quoted
//! strings respected); nothing validates against them.

use std::collections::HashMap;

use crate::XmlErrorKind;
use crate::chars::{char_ref, is_name, is_space};

/// The most bytes one entity may expand to, and the most bytes of entity
/// text one document may add to the elements a driver reads.
pub const MAX_ENTITY_EXPANSION: usize = 1 << 20;

/// How deep entity references may nest in entity text.
pub const MAX_ENTITY_DEPTH: usize = 16;

#[derive(Debug, Clone)]
enum Entity {
    /// The replacement text: the literal value with character references
    /// replaced and entity references kept.
    Internal(String),
    External,
    Unparsed,
}

#[derive(Debug, Clone, Copy)]
enum Memo {
    /// Being measured: met again, the entity refers to itself.
    Busy,
    /// Its full expansion is `len` bytes, and references in it nest
    /// `height` entities deep (1: none).
    Done { len: usize, height: usize },
}

/// The general entities a document declares, and what is known about their
/// expansions.
#[derive(Debug, Default)]
pub(crate) struct Entities {
    decls: HashMap<String, Entity>,
    memo: HashMap<String, Memo>,
}

/// What a reference (`&...;`) stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// A character: a character reference or a predefined entity.
    Char(char),
    /// An internal entity, whose expansion is this many bytes.
    Entity { name: String, len: usize },
}

fn predefined(name: &[u8]) -> Option<char> {
    match name {
        b"lt" => Some('<'),
        b"gt" => Some('>'),
        b"amp" => Some('&'),
        b"apos" => Some('\''),
        b"quot" => Some('"'),
        _ => None,
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Entities {
    /// What `&body;` stands for, checked: a valid character reference, a
    /// predefined entity or an internal entity whose expansion is bounded,
    /// not recursive and free of markup.
    pub(crate) fn resolve(&mut self, body: &[u8]) -> Result<Resolved, XmlErrorKind> {
        if let Some(digits) = body.strip_prefix(b"#") {
            return char_ref(digits)
                .map(Resolved::Char)
                .ok_or_else(|| XmlErrorKind::CharacterReference { reference: lossy(body) });
        }
        if let Some(c) = predefined(body) {
            return Ok(Resolved::Char(c));
        }
        let name = lossy(body);
        if !is_name(body) {
            return Err(XmlErrorKind::Name { name });
        }
        let len = measure(&self.decls, &mut self.memo, &name, 0)?;
        Ok(Resolved::Entity { name, len })
    }

    /// Appends the expansion of `name`, which [`Self::resolve`] accepted.
    pub(crate) fn expand(&self, name: &str, out: &mut String) {
        let Some(Entity::Internal(text)) = self.decls.get(name) else {
            return;
        };
        let mut rest = text.as_str();
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            let Some(len) = rest[amp + 1..].find(';') else {
                return;
            };
            let body = &rest[amp + 1..amp + 1 + len];
            if let Some(c) = body.strip_prefix('#').and_then(|d| char_ref(d.as_bytes())) {
                out.push(c);
            } else if let Some(c) = predefined(body.as_bytes()) {
                out.push(c);
            } else {
                self.expand(body, out);
            }
            rest = &rest[amp + 1 + len + 1..];
        }
        out.push_str(rest);
    }
}

/// The length of the full expansion of `name`, checking every reference in
/// it, when `name` is referenced `depth` entities deep; memoised, so that
/// each entity's text is read once per document.
fn measure(
    decls: &HashMap<String, Entity>,
    memo: &mut HashMap<String, Memo>,
    name: &str,
    depth: usize,
) -> Result<usize, XmlErrorKind> {
    let too_deep =
        || XmlErrorKind::EntityTooDeep { name: name.to_owned(), limit: MAX_ENTITY_DEPTH };
    match memo.get(name) {
        Some(Memo::Done { len, height }) if depth + height <= MAX_ENTITY_DEPTH => return Ok(*len),
        Some(Memo::Done { .. }) => return Err(too_deep()),
        Some(Memo::Busy) => return Err(XmlErrorKind::RecursiveEntity { name: name.to_owned() }),
        None => {}
    }
    let text = match decls.get(name) {
        None => return Err(XmlErrorKind::UnknownEntity { name: name.to_owned() }),
        Some(Entity::External) => {
            return Err(XmlErrorKind::ExternalEntity { name: name.to_owned() });
        }
        Some(Entity::Unparsed) => {
            return Err(XmlErrorKind::UnparsedEntity { name: name.to_owned() });
        }
        Some(Entity::Internal(text)) => text.as_bytes(),
    };
    if depth >= MAX_ENTITY_DEPTH {
        return Err(too_deep());
    }
    memo.insert(name.to_owned(), Memo::Busy);
    let measured = measure_text(decls, memo, name, text, depth);
    match measured {
        Ok((len, height)) => {
            memo.insert(name.to_owned(), Memo::Done { len, height });
            Ok(len)
        }
        Err(e) => {
            memo.remove(name);
            Err(e)
        }
    }
}

/// [`measure`] of the replacement text `text` of `name`: its length and
/// height.
fn measure_text(
    decls: &HashMap<String, Entity>,
    memo: &mut HashMap<String, Memo>,
    name: &str,
    text: &[u8],
    depth: usize,
) -> Result<(usize, usize), XmlErrorKind> {
    let mut len = 0usize;
    let mut height = 1;
    let mut i = 0;
    while let Some(j) = memchr::memchr2(b'<', b'&', &text[i..]) {
        let at = i + j;
        if text[at] == b'<' {
            return Err(XmlErrorKind::EntityMarkup { name: name.to_owned() });
        }
        len += j;
        let Some(end) = memchr::memchr(b';', &text[at + 1..]) else {
            return Err(XmlErrorKind::Syntax(format!(
                "entity '&{name};' has a '&' that starts no reference"
            )));
        };
        let body = &text[at + 1..at + 1 + end];
        len = len.saturating_add(if let Some(digits) = body.strip_prefix(b"#") {
            char_ref(digits)
                .ok_or_else(|| XmlErrorKind::CharacterReference { reference: lossy(body) })?
                .len_utf8()
        } else if predefined(body).is_some() {
            1
        } else if is_name(body) {
            let inner = lossy(body);
            let inner_len = measure(decls, memo, &inner, depth + 1)?;
            if let Some(Memo::Done { height: h, .. }) = memo.get(&inner) {
                height = height.max(h + 1);
            }
            inner_len
        } else {
            return Err(XmlErrorKind::Name { name: lossy(body) });
        });
        if len > MAX_ENTITY_EXPANSION {
            break;
        }
        i = at + 1 + end + 1;
    }
    len = len.saturating_add(text.len() - i);
    if len > MAX_ENTITY_EXPANSION {
        return Err(XmlErrorKind::EntityTooLarge {
            name: name.to_owned(),
            limit: MAX_ENTITY_EXPANSION,
        });
    }
    Ok((len, height))
}

/// A problem in a DOCTYPE and its offset.
pub(crate) type DtdProblem = (usize, XmlErrorKind);

/// Reads the document type declaration that starts at `start` in `text`
/// (with `<!DOCTYPE`): returns its entities and the offset just after it.
pub(crate) fn parse_doctype(text: &[u8], start: usize) -> Result<(Entities, usize), DtdProblem> {
    let mut c = Cursor { s: text, i: start };
    let mut entities = Entities::default();
    c.expect(b"<!DOCTYPE")?;
    c.required_spaces("after <!DOCTYPE")?;
    c.name("the root element name")?;
    let spaced = c.spaces();
    if spaced && (c.at(b"SYSTEM") || c.at(b"PUBLIC")) {
        c.external_id()?;
        c.spaces();
    }
    if c.eat(b"[") {
        internal_subset(&mut c, &mut entities)?;
        c.spaces();
    }
    c.expect(b">")?;
    Ok((entities, c.i))
}

fn internal_subset(c: &mut Cursor<'_>, entities: &mut Entities) -> Result<(), DtdProblem> {
    loop {
        c.spaces();
        if c.eat(b"]") {
            return Ok(());
        }
        if c.eat(b"%") {
            let name = c.name("a parameter entity name")?;
            return Err((c.i, XmlErrorKind::ParameterEntity { name: lossy(name) }));
        }
        if c.eat(b"<!--") {
            c.comment()?;
        } else if c.eat(b"<?") {
            c.processing_instruction()?;
        } else if c.eat(b"<!ENTITY") {
            entity_declaration(c, entities)?;
        } else if c.eat(b"<!ELEMENT") || c.eat(b"<!ATTLIST") || c.eat(b"<!NOTATION") {
            c.skip_declaration()?;
        } else if c.i >= c.s.len() {
            return Err(c.problem("the internal subset is not closed with ']>'"));
        } else {
            return Err(c.problem("the internal subset holds something that is not a declaration"));
        }
    }
}

fn entity_declaration(c: &mut Cursor<'_>, entities: &mut Entities) -> Result<(), DtdProblem> {
    c.required_spaces("after <!ENTITY")?;
    let parameter = c.eat(b"%");
    if parameter {
        c.required_spaces("after '%'")?;
    }
    let name = c.name("an entity name")?;
    c.required_spaces("after the entity name")?;
    let entity = if matches!(c.peek(), Some(b'"' | b'\'')) {
        let (at, literal) = c.quoted()?;
        Entity::Internal(replacement_text(literal, at)?)
    } else if c.at(b"SYSTEM") || c.at(b"PUBLIC") {
        c.external_id()?;
        let spaced = c.spaces();
        if spaced && !parameter && c.eat(b"NDATA") {
            c.required_spaces("after NDATA")?;
            c.name("a notation name")?;
            c.spaces();
            Entity::Unparsed
        } else {
            Entity::External
        }
    } else {
        return Err(c.problem("an entity needs a quoted value, SYSTEM or PUBLIC"));
    };
    c.spaces();
    c.expect(b">")?;
    // The first declaration binds; the predefined entities keep their
    // meaning; parameter entities cannot be referenced (see the module doc).
    if !parameter && predefined(name).is_none() {
        entities.decls.entry(lossy(name)).or_insert(entity);
    }
    Ok(())
}

/// An entity's replacement text: its literal value with character
/// references replaced. Parameter-entity references are an error in the
/// internal subset; general entity references stay, checked for syntax.
fn replacement_text(literal: &[u8], at: usize) -> Result<String, DtdProblem> {
    let mut out = Vec::with_capacity(literal.len());
    let mut i = 0;
    while let Some(j) = memchr::memchr2(b'%', b'&', &literal[i..]) {
        let here = i + j;
        out.extend_from_slice(&literal[i..here]);
        let Some(end) = memchr::memchr(b';', &literal[here + 1..]) else {
            return Err((
                at + here,
                XmlErrorKind::Syntax("a reference without ';' in an entity value".into()),
            ));
        };
        let body = &literal[here + 1..here + 1 + end];
        if literal[here] == b'%' {
            return Err((at + here, XmlErrorKind::ParameterEntity { name: lossy(body) }));
        }
        if let Some(digits) = body.strip_prefix(b"#") {
            let c = char_ref(digits).ok_or_else(|| {
                (at + here, XmlErrorKind::CharacterReference { reference: lossy(body) })
            })?;
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        } else if is_name(body) {
            out.extend_from_slice(&literal[here..here + 1 + end + 1]);
        } else {
            return Err((at + here, XmlErrorKind::Name { name: lossy(body) }));
        }
        i = here + 1 + end + 1;
    }
    out.extend_from_slice(&literal[i..]);
    String::from_utf8(out)
        .map_err(|_| (at, XmlErrorKind::Encoding { encoding: "UTF-8".to_owned() }))
}

/// A position in the text of a DOCTYPE.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn problem(&self, reason: &str) -> DtdProblem {
        (self.i, XmlErrorKind::Doctype { reason: reason.to_owned() })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn at(&self, lit: &[u8]) -> bool {
        self.s[self.i.min(self.s.len())..].starts_with(lit)
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        let found = self.at(lit);
        if found {
            self.i += lit.len();
        }
        found
    }

    fn expect(&mut self, lit: &[u8]) -> Result<(), DtdProblem> {
        if self.eat(lit) {
            Ok(())
        } else {
            Err(self.problem(&format!("expected '{}'", String::from_utf8_lossy(lit))))
        }
    }

    fn spaces(&mut self) -> bool {
        let start = self.i;
        while self.peek().is_some_and(is_space) {
            self.i += 1;
        }
        self.i > start
    }

    fn required_spaces(&mut self, place: &str) -> Result<(), DtdProblem> {
        if self.spaces() {
            Ok(())
        } else {
            Err(self.problem(&format!("white space is needed {place}")))
        }
    }

    fn name(&mut self, what: &str) -> Result<&'a [u8], DtdProblem> {
        let start = self.i;
        while self.peek().is_some_and(|b| {
            !is_space(b)
                && !matches!(b, b'>' | b'[' | b']' | b'%' | b';' | b'"' | b'\'' | b'?' | b'<')
        }) {
            self.i += 1;
        }
        let name = &self.s[start..self.i];
        if is_name(name) {
            Ok(name)
        } else {
            self.i = start;
            Err(self.problem(&format!("expected {what}")))
        }
    }

    /// A quoted literal: the offset of its first byte, and its bytes.
    fn quoted(&mut self) -> Result<(usize, &'a [u8]), DtdProblem> {
        let Some(quote @ (b'"' | b'\'')) = self.peek() else {
            return Err(self.problem("expected a quoted string"));
        };
        let at = self.i + 1;
        let Some(len) = memchr::memchr(quote, &self.s[at..]) else {
            return Err(self.problem("a quoted string is not closed"));
        };
        self.i = at + len + 1;
        Ok((at, &self.s[at..at + len]))
    }

    /// `SYSTEM "uri"` or `PUBLIC "id" "uri"`. The URI is never opened.
    fn external_id(&mut self) -> Result<(), DtdProblem> {
        if self.eat(b"PUBLIC") {
            self.required_spaces("after PUBLIC")?;
            let (at, id) = self.quoted()?;
            let pubid =
                |b: &u8| b.is_ascii_alphanumeric() || b" \r\n-'()+,./:=?;!*#@$_%".contains(b);
            if let Some(bad) = id.iter().position(|b| !pubid(b)) {
                return Err((
                    at + bad,
                    XmlErrorKind::Doctype {
                        reason: "a character not allowed in a public identifier".to_owned(),
                    },
                ));
            }
        } else {
            self.expect(b"SYSTEM")?;
        }
        self.required_spaces("before the system identifier")?;
        self.quoted()?;
        Ok(())
    }

    /// After `<!--`: up to `-->`, without `--` inside.
    fn comment(&mut self) -> Result<(), DtdProblem> {
        let Some(end) = memchr::memmem::find(&self.s[self.i..], b"--") else {
            return Err(self.problem("a comment is not closed"));
        };
        self.i += end;
        if !self.eat(b"-->") {
            return Err(self.problem("'--' is not allowed in a comment"));
        }
        Ok(())
    }

    /// After `<?`: a target that is not `xml`, then up to `?>`.
    fn processing_instruction(&mut self) -> Result<(), DtdProblem> {
        let target = self.name("a processing instruction target")?;
        if target.eq_ignore_ascii_case(b"xml") {
            return Err((self.i, XmlErrorKind::ReservedTarget { target: lossy(target) }));
        }
        let Some(end) = memchr::memmem::find(&self.s[self.i..], b"?>") else {
            return Err(self.problem("a processing instruction is not closed"));
        };
        if end > 0 && !self.peek().is_some_and(is_space) {
            return Err(self.problem("white space is needed after a processing instruction target"));
        }
        self.i += end + 2;
        Ok(())
    }

    /// The rest of an `ELEMENT`, `ATTLIST` or `NOTATION` declaration, up to
    /// its `>`, skipping quoted strings.
    fn skip_declaration(&mut self) -> Result<(), DtdProblem> {
        while let Some(j) = memchr::memchr3(b'>', b'"', b'\'', &self.s[self.i..]) {
            let here = self.i + j;
            if let Some(lt) = memchr::memchr(b'<', &self.s[self.i..here]) {
                self.i += lt;
                return Err(self.problem("'<' inside a declaration"));
            }
            self.i = here;
            if self.s[here] == b'>' {
                self.i += 1;
                return Ok(());
            }
            self.quoted()?;
        }
        Err(self.problem("a declaration is not closed with '>'"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn doctype(dtd: &str) -> Result<(Entities, usize), String> {
        parse_doctype(dtd.as_bytes(), 0).map_err(|(at, kind)| format!("{at}: {kind}"))
    }

    fn expanded(dtd: &str, name: &str) -> Result<String, String> {
        let (mut e, _) = doctype(dtd)?;
        match e.resolve(name.as_bytes()).map_err(|k| k.to_string())? {
            Resolved::Char(c) => Ok(c.to_string()),
            Resolved::Entity { name, len } => {
                let mut out = String::new();
                e.expand(&name, &mut out);
                assert_eq!(out.len(), len);
                Ok(out)
            }
        }
    }

    #[test]
    fn doctype_forms() {
        for ok in [
            "<!DOCTYPE domain>",
            "<!DOCTYPE domain >",
            "<!DOCTYPE domain SYSTEM 'domain.dtd'>",
            "<!DOCTYPE domain PUBLIC '-//x//EN' \"http://example.invalid/d.dtd\">",
            "<!DOCTYPE domain []>",
            "<!DOCTYPE domain SYSTEM 'x' [ ]>",
            "<!DOCTYPE domain [\n<!-- a > b -->\n<?pi a > b?>\n<!ELEMENT domain ANY>\n\
             <!ATTLIST domain type CDATA 'a>b' id ID #IMPLIED>\n<!NOTATION n SYSTEM 'x>y'>\n]>",
        ] {
            let (_, end) = doctype(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(end, ok.len(), "{ok}");
        }
        for (bad, reason) in [
            ("<!DOCTYPE>", "9: bad DOCTYPE: white space is needed after <!DOCTYPE"),
            ("<!DOCTYPE 1a>", "10: bad DOCTYPE: expected the root element name"),
            (
                "<!DOCTYPE a SYSTEM>",
                "18: bad DOCTYPE: white space is needed before the system identifier",
            ),
            (
                "<!DOCTYPE a PUBLIC '{' 'x'>",
                "20: bad DOCTYPE: a character not allowed in a public identifier",
            ),
            ("<!DOCTYPE a [", "13: bad DOCTYPE: the internal subset is not closed with ']>'"),
            (
                "<!DOCTYPE a [ junk ]>",
                "14: bad DOCTYPE: the internal subset holds something that is not a declaration",
            ),
            (
                "<!DOCTYPE a [ <!-- a -- b --> ]>",
                "21: bad DOCTYPE: '--' is not allowed in a comment",
            ),
            (
                "<!DOCTYPE a [ <?xml version='1.0'?> ]>",
                "19: a processing instruction may not be named 'xml'",
            ),
            ("<!DOCTYPE a [ <!ELEMENT a <b> ]>", "26: bad DOCTYPE: '<' inside a declaration"),
            (
                "<!DOCTYPE a [ %pe; ]>",
                "17: parameter entity reference '%pe;' in the DTD is not supported",
            ),
            (
                "<!DOCTYPE a [ <!ENTITY % pe 'x'> <!ENTITY e '%pe;'> ]>",
                "45: parameter entity reference '%pe;' in the DTD is not supported",
            ),
            ("<!DOCTYPE a [ <!ENTITY e 'x'", "28: bad DOCTYPE: expected '>'"),
            (
                "<!DOCTYPE a [ <!ENTITY e x> ]>",
                "25: bad DOCTYPE: an entity needs a quoted value, SYSTEM or PUBLIC",
            ),
            ("<!DOCTYPE a [ <!ENTITY e '&#0;'> ]>", "26: invalid character reference '&#0;'"),
            ("<!DOCTYPE a [ <!ENTITY e '&1;'> ]>", "26: '1' is not a valid XML name"),
            ("<!DOCTYPE a ] >", "12: bad DOCTYPE: expected '>'"),
        ] {
            assert_eq!(doctype(bad).map(|_| ()).unwrap_err(), reason, "{bad}");
        }
    }

    #[test]
    fn internal_entities_expand() {
        let dtd = "<!DOCTYPE d [ <!ENTITY a 'x&#x41;y'> <!ENTITY b \"[&a;&amp;&a;]\"> \
                   <!ENTITY a 'ignored: the first declaration binds'> <!ENTITY lt 'redefined'> \
                   <!ENTITY amp2 '&#38;#38;'> ]>";
        assert_eq!(expanded(dtd, "a").unwrap(), "xAy");
        assert_eq!(expanded(dtd, "b").unwrap(), "[xAy&xAy]");
        assert_eq!(expanded(dtd, "lt").unwrap(), "<");
        assert_eq!(expanded(dtd, "amp2").unwrap(), "&");
        assert_eq!(expanded(dtd, "#x20AC").unwrap(), "€");
        assert_eq!(expanded(dtd, "zz").unwrap_err(), "unknown entity '&zz;'");
        assert_eq!(expanded(dtd, "#0").unwrap_err(), "invalid character reference '&#0;'");
    }

    #[test]
    fn external_unparsed_recursive_and_markup_entities_are_refused() {
        let dtd = "<!DOCTYPE d [ <!NOTATION n SYSTEM 'n'> \
                   <!ENTITY ext SYSTEM 'file:///etc/passwd'> \
                   <!ENTITY pub PUBLIC '-//x//EN' 'http://example.invalid/x'> \
                   <!ENTITY un SYSTEM 'x.gif' NDATA n> <!ENTITY uses-ext 'a&ext;'> \
                   <!ENTITY r1 '&r2;'> <!ENTITY r2 '&r1;'> <!ENTITY self 'x&self;'> \
                   <!ENTITY tag '<b>bold</b>'> <!ENTITY tag2 '&#60;b/>'> <!ENTITY bad-amp '&#38;'> ]>";
        for (name, reason) in [
            ("ext", "entity '&ext;' is external; external entities are never loaded"),
            ("pub", "entity '&pub;' is external; external entities are never loaded"),
            ("uses-ext", "entity '&ext;' is external; external entities are never loaded"),
            ("un", "entity '&un;' is an unparsed entity and cannot be referenced"),
            ("r1", "entity '&r1;' refers to itself"),
            ("self", "entity '&self;' refers to itself"),
            ("tag", "entity '&tag;' contains markup ('<'), which is not supported"),
            ("tag2", "entity '&tag2;' contains markup ('<'), which is not supported"),
            ("bad-amp", "entity '&bad-amp;' has a '&' that starts no reference"),
        ] {
            assert_eq!(expanded(dtd, name).unwrap_err(), reason, "{name}");
        }
    }

    #[test]
    fn billion_laughs_is_bounded_in_size_and_depth() {
        let mut dtd = String::from("<!DOCTYPE d [ <!ENTITY l0 'lol'>");
        for i in 1..=9 {
            let prev = format!("&l{};", i - 1);
            dtd.push_str(&format!(" <!ENTITY l{i} '{}'>", prev.repeat(10)));
        }
        dtd.push_str(" ]>");
        // 3 * 10^5 bytes fit; 3 * 10^6 do not, and nothing is built to say so.
        assert_eq!(expanded(&dtd, "l5").unwrap().len(), 300_000);
        assert_eq!(
            expanded(&dtd, "l9").unwrap_err(),
            format!("entity '&l6;' expands to more than {MAX_ENTITY_EXPANSION} bytes")
        );
        let mut deep = String::from("<!DOCTYPE d [ <!ENTITY d0 'x'>");
        for i in 1..=MAX_ENTITY_DEPTH {
            deep.push_str(&format!(" <!ENTITY d{i} '&d{};'>", i - 1));
        }
        deep.push_str(" ]>");
        assert_eq!(expanded(&deep, &format!("d{}", MAX_ENTITY_DEPTH - 1)).unwrap(), "x");
        assert_eq!(
            expanded(&deep, &format!("d{MAX_ENTITY_DEPTH}")).unwrap_err(),
            format!("entity '&d0;' nests entities more than {MAX_ENTITY_DEPTH} deep")
        );
        // Measured in steps, each entity once: the nesting still counts.
        let (mut e, _) = doctype(&deep).unwrap();
        for i in 0..MAX_ENTITY_DEPTH {
            assert!(e.resolve(format!("d{i}").as_bytes()).is_ok(), "d{i}");
        }
        assert_eq!(
            e.resolve(format!("d{MAX_ENTITY_DEPTH}").as_bytes()).unwrap_err().to_string(),
            format!(
                "entity '&d{};' nests entities more than {MAX_ENTITY_DEPTH} deep",
                MAX_ENTITY_DEPTH - 1
            )
        );
    }
}
