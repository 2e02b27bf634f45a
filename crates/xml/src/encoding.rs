//! The encoding of a document: detected from its byte order mark or first
//! bytes, else taken from its XML declaration (UTF-8 when it has none), as
//! XML 1.0 appendix F describes. A document in another encoding than UTF-8
//! is decoded to UTF-8 once, before any check; a UTF-8 one is read in place.

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE};

use crate::chars::is_space;
use crate::{XmlError, XmlErrorKind};

/// The text the checks read, and how to report a position in it as one in
/// the document as given.
#[derive(Debug)]
pub(crate) struct Source<'a> {
    text: Text<'a>,
    /// Bytes of a byte order mark before `text`.
    bom: usize,
}

#[derive(Debug)]
enum Text<'a> {
    /// The document itself (after a UTF-8 BOM): UTF-8, not yet validated.
    Utf8(&'a [u8]),
    /// The document decoded from another encoding.
    Decoded { text: String, from: Decoding },
}

#[derive(Debug, Clone, Copy)]
enum Decoding {
    /// ISO-8859-1, byte for code point: what libxml2 does, where the Encoding
    /// Standard (and encoding_rs) would read windows-1252.
    Latin1,
    /// US-ASCII: bytes above 0x7F are errors.
    Ascii,
    /// UTF-16 (little- or big-endian): 2 bytes per code unit.
    Utf16,
    /// Another encoding encoding_rs knows.
    Other(&'static Encoding),
}

impl<'a> Source<'a> {
    /// Finds the encoding of `doc` and decodes it if it is not UTF-8.
    ///
    /// # Errors
    ///
    /// An encoding that is not supported, a UTF-16 declaration without a
    /// UTF-16 byte order, or bytes that are not valid in the encoding.
    pub(crate) fn new(doc: &'a [u8]) -> Result<Source<'a>, XmlError> {
        let unsupported = |encoding: &str| {
            XmlError::new(XmlErrorKind::UnsupportedEncoding { encoding: encoding.to_owned() }, 1, 0)
        };
        match doc {
            [0xEF, 0xBB, 0xBF, rest @ ..] => return Ok(Source { text: Text::Utf8(rest), bom: 3 }),
            [0xFF, 0xFE, 0, 0, ..] | [0, 0, 0xFE, 0xFF, ..] => return Err(unsupported("UCS-4")),
            [0xFE, 0xFF, rest @ ..] => return decode_utf16(rest, UTF_16BE, 2),
            [0xFF, 0xFE, rest @ ..] => return decode_utf16(rest, UTF_16LE, 2),
            [0, 0, 0, b'<', ..]
            | [b'<', 0, 0, 0, ..]
            | [0, 0, b'<', 0, ..]
            | [0, b'<', 0, 0, ..] => {
                return Err(unsupported("UCS-4"));
            }
            [b'<', 0, b'?', 0, ..] => return decode_utf16(doc, UTF_16LE, 0),
            [0, b'<', 0, b'?', ..] => return decode_utf16(doc, UTF_16BE, 0),
            [0x4C, 0x6F, 0xA7, 0x94, ..] => return Err(unsupported("EBCDIC")),
            _ => {}
        }
        let Some(label) = declared_encoding(doc) else {
            return Ok(Source { text: Text::Utf8(doc), bom: 0 });
        };
        let label = label.to_ascii_lowercase();
        let shown = String::from_utf8_lossy(&label).into_owned();
        let utf16_without_bom =
            |encoding: String| XmlError::new(XmlErrorKind::Utf16WithoutBom { encoding }, 1, 0);
        let (text, from) = match &label[..] {
            b"utf-8" | b"utf8" => return Ok(Source { text: Text::Utf8(doc), bom: 0 }),
            b"utf-16" | b"utf-16le" | b"utf-16be" | b"utf16" | b"ucs-2" | b"iso-10646-ucs-2" => {
                return Err(utf16_without_bom(shown));
            }
            b"iso-8859-1" | b"iso8859-1" | b"iso_8859-1" | b"iso_8859-1:1987" | b"latin1"
            | b"latin-1" | b"l1" | b"cp819" | b"ibm819" | b"iso-ir-100" | b"csisolatin1"
            | b"iso88591" => (doc.iter().map(|&b| char::from(b)).collect(), Decoding::Latin1),
            b"us-ascii" | b"ascii" | b"ansi_x3.4-1968" | b"ansi_x3.4-1986" | b"iso646-us"
            | b"iso_646.irv:1991" | b"us" | b"ibm367" | b"cp367" | b"csascii" | b"iso-ir-6" => {
                if let Some(at) = doc.iter().position(|b| !b.is_ascii()) {
                    return Err(invalid(doc, at, "US-ASCII"));
                }
                (doc.iter().map(|&b| char::from(b)).collect(), Decoding::Ascii)
            }
            _ => match Encoding::for_label_no_replacement(&label) {
                Some(enc) if enc == UTF_16LE || enc == UTF_16BE => {
                    return Err(utf16_without_bom(shown));
                }
                Some(enc) if enc == encoding_rs::UTF_8 => {
                    return Ok(Source { text: Text::Utf8(doc), bom: 0 });
                }
                Some(enc) if enc != encoding_rs::X_USER_DEFINED => {
                    (decode(doc, enc)?, Decoding::Other(enc))
                }
                _ => return Err(unsupported(&shown)),
            },
        };
        Ok(Source { text: Text::Decoded { text, from }, bom: 0 })
    }

    /// The text to check, in UTF-8 (validated only if [`Self::utf8_known`]).
    pub(crate) fn text(&self) -> &[u8] {
        match &self.text {
            Text::Utf8(doc) => doc,
            Text::Decoded { text, .. } => text.as_bytes(),
        }
    }

    /// Whether [`Self::text`] is known to be UTF-8 (it was decoded).
    pub(crate) fn utf8_known(&self) -> bool {
        matches!(self.text, Text::Decoded { .. })
    }

    /// Where `offset` in [`Self::text`] is in the document as given: its
    /// line and byte offset.
    pub(crate) fn locate(&self, offset: usize) -> (usize, usize) {
        let text = self.text();
        let mut offset = offset.min(text.len());
        let line = 1 + memchr::memchr_iter(b'\n', &text[..offset]).count();
        let original = match &self.text {
            Text::Utf8(_) => offset,
            Text::Decoded { text, from } => {
                while !text.is_char_boundary(offset) {
                    offset -= 1;
                }
                let before = &text[..offset];
                match from {
                    Decoding::Latin1 | Decoding::Ascii => before.chars().count(),
                    Decoding::Utf16 => before.chars().map(|c| 2 * c.len_utf16()).sum(),
                    Decoding::Other(enc) => enc.encode(before).0.len(),
                }
            }
        };
        (line, self.bom + original)
    }

    /// An error at `offset` in [`Self::text`].
    pub(crate) fn error(&self, offset: usize, kind: XmlErrorKind) -> XmlError {
        let (line, offset) = self.locate(offset);
        XmlError::new(kind, line, offset)
    }
}

fn decode_utf16<'a>(
    doc: &[u8],
    enc: &'static Encoding,
    bom: usize,
) -> Result<Source<'a>, XmlError> {
    let text = decode(doc, enc).map_err(|e| {
        // `decode` counts from the start of `doc`, which is after the BOM.
        XmlError::new(e.kind().clone(), e.line(), e.offset() + bom)
    })?;
    Ok(Source { text: Text::Decoded { text, from: Decoding::Utf16 }, bom })
}

/// `doc` decoded from `enc`, or where it is not valid in `enc`.
fn decode(doc: &[u8], enc: &'static Encoding) -> Result<String, XmlError> {
    let mut decoder = enc.new_decoder_without_bom_handling();
    let capacity = decoder
        .max_utf8_buffer_length_without_replacement(doc.len())
        .ok_or_else(|| invalid(doc, 0, enc.name()))?;
    let mut text = String::with_capacity(capacity);
    match decoder.decode_to_string_without_replacement(doc, &mut text, true) {
        (encoding_rs::DecoderResult::InputEmpty, _) => Ok(text),
        (encoding_rs::DecoderResult::Malformed(bad, extra), read) => {
            let at = read.saturating_sub(usize::from(bad) + usize::from(extra));
            Err(invalid(doc, at, enc.name()))
        }
        (encoding_rs::DecoderResult::OutputFull, read) => Err(invalid(doc, read, enc.name())),
    }
}

fn invalid(doc: &[u8], at: usize, encoding: &str) -> XmlError {
    let at = at.min(doc.len());
    let line = 1 + memchr::memchr_iter(b'\n', &doc[..at]).count();
    XmlError::new(XmlErrorKind::Encoding { encoding: encoding.to_owned() }, line, at)
}

/// The `encoding` of an XML declaration at the start of `doc`, read as
/// ASCII (every encoding that reaches here agrees with ASCII on it). A
/// malformed declaration yields `None` here and an error later, when the
/// declaration is checked.
fn declared_encoding(doc: &[u8]) -> Option<&[u8]> {
    let rest = doc.strip_prefix(b"<?xml")?;
    if !rest.first().is_some_and(|&b| is_space(b)) {
        return None;
    }
    let end = memchr::memmem::find(rest, b"?>")?;
    crate::markup::pseudo_attributes(&rest[..end])
        .ok()?
        .into_iter()
        .find_map(|a| (a.name == b"encoding").then_some(a.value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn text(doc: &[u8]) -> String {
        String::from_utf8(Source::new(doc).unwrap().text().to_vec()).unwrap()
    }

    fn kind(doc: &[u8]) -> XmlErrorKind {
        Source::new(doc).unwrap_err().kind().clone()
    }

    #[test]
    fn utf8_is_read_in_place() {
        let doc = b"<?xml version='1.0' encoding='utf-8'?><a/>";
        let s = Source::new(doc).unwrap();
        assert!(std::ptr::eq(s.text(), &doc[..]));
        assert!(!s.utf8_known());
        let s = Source::new(b"\xEF\xBB\xBF<a/>").unwrap();
        assert_eq!(s.text(), b"<a/>");
        assert_eq!(s.locate(1), (1, 4));
        assert_eq!(text(b"<a/>"), "<a/>");
    }

    #[test]
    fn latin1_is_byte_for_code_point() {
        let doc = b"<?xml version='1.0' encoding='ISO-8859-1'?><a>\xE9\x80</a>";
        assert_eq!(text(doc), "<?xml version='1.0' encoding='ISO-8859-1'?><a>\u{E9}\u{80}</a>");
        let s = Source::new(doc).unwrap();
        // After the two-byte é and \u{80}, decoded offsets are two ahead.
        let close = memchr::memmem::rfind(s.text(), b"</a>").unwrap();
        assert_eq!(s.locate(close), (1, doc.len() - 4));
    }

    #[test]
    fn other_encodings_by_label() {
        let doc = b"<?xml version='1.0' encoding='windows-1252'?><a>\x80</a>";
        assert!(text(doc).contains("<a>\u{20AC}</a>"));
        let doc = b"<?xml version=\"1.0\" encoding=\"KOI8-R\"?><a>\xC1</a>";
        assert!(text(doc).contains("<a>\u{0430}</a>"));
        let doc = b"<?xml version='1.0' encoding='US-ASCII'?><a>\xE9</a>";
        assert_eq!(kind(doc), XmlErrorKind::Encoding { encoding: "US-ASCII".into() });
        assert_eq!(Source::new(doc).unwrap_err().offset(), 44);
    }

    #[test]
    fn utf16_with_and_without_bom() {
        let utf16 = |s: &str, be: bool| -> Vec<u8> {
            s.encode_utf16()
                .flat_map(|u| if be { u.to_be_bytes() } else { u.to_le_bytes() })
                .collect()
        };
        let doc = "<?xml version='1.0' encoding='UTF-16'?><a>é</a>";
        for be in [false, true] {
            let mut with_bom = if be { vec![0xFE, 0xFF] } else { vec![0xFF, 0xFE] };
            with_bom.extend(utf16(doc, be));
            assert_eq!(text(&with_bom), doc);
            let s = Source::new(&with_bom).unwrap();
            assert_eq!(s.locate(3), (1, 2 + 6));
            assert_eq!(text(&utf16(doc, be)), doc);
        }
        // An unpaired surrogate is not UTF-16.
        let mut bad = vec![0xFF, 0xFE];
        bad.extend(utf16("<a>", false));
        bad.extend([0x00, 0xD8]);
        bad.extend(utf16("</a>", false));
        assert_eq!(kind(&bad), XmlErrorKind::Encoding { encoding: "UTF-16LE".into() });
        assert_eq!(Source::new(&bad).unwrap_err().offset(), 8);
        // Declared UTF-16, written in ASCII.
        assert_eq!(
            kind(b"<?xml version='1.0' encoding='UTF-16'?><a/>"),
            XmlErrorKind::Utf16WithoutBom { encoding: "utf-16".into() }
        );
    }

    #[test]
    fn unsupported_encodings_are_named() {
        for (doc, name) in [
            (&b"<?xml version='1.0' encoding='EBCDIC-US'?><a/>"[..], "ebcdic-us"),
            (b"<?xml version='1.0' encoding='x-user-defined'?><a/>", "x-user-defined"),
            (b"<?xml version='1.0' encoding='ISO-2022-KR'?><a/>", "iso-2022-kr"),
            (b"\0\0\0<\0\0\0a", "UCS-4"),
            (b"\x4C\x6F\xA7\x94", "EBCDIC"),
        ] {
            assert_eq!(kind(doc), XmlErrorKind::UnsupportedEncoding { encoding: name.into() });
        }
    }
}
