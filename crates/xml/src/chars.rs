//! The characters XML 1.0 allows (its `Char` and `Name` productions), and the
//! one pass over a whole document that checks them together with UTF-8.

use crate::XmlErrorKind;

/// The bytes looked at together by [`check_document`]: small enough to stay
/// in the first-level cache, large enough that the per-block work is lost
/// in the per-byte work.
const BLOCK: usize = 4096;

/// The blocks of the last bytes, fewer than [`BLOCK`]: small documents are
/// not scanned as a whole block of padding.
const SMALL_BLOCK: usize = 512;

/// The bytes [`scan`] handles side by side, as vector lanes.
const LANES: usize = 64;

/// A problem [`check_document`] found, and where (a byte offset in the
/// checked text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CharProblem {
    pub(crate) at: usize,
    pub(crate) kind: XmlErrorKind,
}

/// What [`check_document`] learnt on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    /// Whether the document holds a `]` at all: without one, no text can
    /// hold the forbidden `]]>`, and no text needs searching for it.
    pub(crate) has_bracket: bool,
}

/// Documents from this size on are checked in two halves at once, one on
/// a second thread: the check then takes about the time the parse that
/// follows it would have taken anyway on a 64 MiB document.
const PARALLEL_FROM: usize = 4 << 20;

/// Checks that `doc` is UTF-8 (unless `utf8_known`) and holds only
/// characters XML 1.0 allows, in one pass; the first problem is the one
/// with the lowest offset among those found.
///
/// The common case is cheap: one vectorised loop per block of [`BLOCK`]
/// bytes finds whether any byte is suspect (not ASCII, or a control
/// character other than `\n`) and whether any is `]`. Only suspect blocks
/// are looked at again: controls byte by byte (tab and CR are allowed), runs
/// of non-ASCII blocks by simdutf8 and a search for U+FFFE and U+FFFF.
pub(crate) fn check_document(doc: &[u8], utf8_known: bool) -> Result<Facts, CharProblem> {
    // Split at a character boundary (not a UTF-8 continuation byte), so
    // that each half is a text of its own.
    let half = doc.len() / 2;
    let split = doc[half..].iter().position(|&b| b & 0xC0 != 0x80).map(|i| half + i);
    let Some(split) = split.filter(|_| doc.len() >= PARALLEL_FROM) else {
        return check_part(doc, 0, utf8_known);
    };
    let (first, second) = doc.split_at(split);
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("xml-check".to_owned())
            .spawn_scoped(scope, || check_part(second, split, utf8_known));
        let first = check_part(first, 0, utf8_known)?;
        let second = match spawned {
            Ok(handle) => handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had: the same work here.
            Err(_) => check_part(second, split, utf8_known),
        }?;
        Ok(Facts { has_bracket: first.has_bracket || second.has_bracket })
    })
}

/// [`check_document`] of `part`, the part of a document that starts at
/// `base`.
fn check_part(part: &[u8], base: usize, utf8_known: bool) -> Result<Facts, CharProblem> {
    check_text_of(part, utf8_known).map_err(|p| CharProblem { at: base + p.at, kind: p.kind })
}

/// `slice.as_chunks::<N>()`, which needs Rust 1.88 (the declared minimum is
/// older): the whole blocks of `N` bytes, and the rest.
fn as_chunks<const N: usize>(slice: &[u8]) -> (impl Iterator<Item = &[u8; N]>, &[u8]) {
    let blocks = slice.chunks_exact(N);
    let rest = blocks.remainder();
    // `chunks_exact` yields exactly `N` bytes each time: the conversion
    // cannot fail, and the compiler drops its check.
    (blocks.filter_map(|block| <&[u8; N]>::try_from(block).ok()), rest)
}

fn check_text_of(doc: &[u8], utf8_known: bool) -> Result<Facts, CharProblem> {
    let mut check = Check { doc, utf8_known, at: 0, run: None, has_bracket: false };
    let (blocks, tail) = as_chunks::<BLOCK>(doc);
    for block in blocks {
        check.block(block, scan(block))?;
    }
    let (smalls, tail) = as_chunks::<SMALL_BLOCK>(tail);
    for block in smalls {
        check.block(block, scan(block))?;
    }
    // The last bytes, padded with spaces (neither suspect nor `]`).
    let mut last = [b' '; SMALL_BLOCK];
    last[..tail.len()].copy_from_slice(tail);
    check.block(tail, scan(&last))?;
    if let Some(start) = check.run {
        check_non_ascii(&doc[start..], start, utf8_known)?;
    }
    Ok(Facts { has_bracket: check.has_bracket })
}

/// The state of [`check_document`] between blocks.
struct Check<'a> {
    doc: &'a [u8],
    utf8_known: bool,
    /// Where the next block starts.
    at: usize,
    /// The start of a run of blocks holding non-ASCII bytes: a run starts
    /// and ends at character boundaries, since the blocks around it are
    /// ASCII.
    run: Option<usize>,
    has_bracket: bool,
}

impl Check<'_> {
    /// The next `block` of the document, and what [`scan`] found in it.
    fn block(&mut self, block: &[u8], (suspect, bracket): (bool, bool)) -> Result<(), CharProblem> {
        let at = self.at;
        self.at += block.len();
        self.has_bracket |= bracket;
        let non_ascii = suspect && {
            check_controls(block, at)?;
            !block.is_ascii()
        };
        if non_ascii {
            self.run.get_or_insert(at);
        } else if let Some(start) = self.run.take() {
            check_non_ascii(&self.doc[start..at], start, self.utf8_known)?;
        }
        Ok(())
    }
}

/// Whether some byte of `block` is suspect (not ASCII, or a control
/// character other than `\n`), and whether some byte is `]`.
///
/// `b ^ 0x15` maps `\n` to 0x1F, the other controls below it, printable
/// ASCII to 0x20..=0x7F and the rest above, so the bytes that are not
/// suspect become the one range 0x1F..=0x7F, and `- 0x1F` (wrapping) makes
/// them the only values up to 0x60: one maximum finds a suspect byte. The
/// lanes are kept apart until the end so that the loop vectorises (the
/// block's size is a constant for the same reason).
#[inline(always)]
fn scan<const N: usize>(block: &[u8; N]) -> (bool, bool) {
    let mut worst = [0u8; LANES];
    let mut bracket = [0u8; LANES];
    for chunk in block.chunks_exact(LANES) {
        for ((w, br), &b) in worst.iter_mut().zip(&mut bracket).zip(chunk) {
            *w = (*w).max((b ^ 0x15).wrapping_sub(0x1F));
            *br |= 0u8.wrapping_sub(u8::from(b == b']'));
        }
    }
    (worst.iter().fold(0, |a, &b| a.max(b)) > 0x60, bracket.iter().fold(0, |a, &b| a | b) != 0)
}

fn is_forbidden_control(b: u8) -> bool {
    b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')
}

/// The first forbidden control character in `bytes` (which start at `at`).
fn check_controls(bytes: &[u8], at: usize) -> Result<(), CharProblem> {
    // Whole-block test first, vectorised: documents with tabs or CRLF line
    // ends come here for every block.
    if !bytes.iter().fold(false, |any, &b| any | is_forbidden_control(b)) {
        return Ok(());
    }
    match bytes.iter().position(|&b| is_forbidden_control(b)) {
        Some(i) => Err(CharProblem {
            at: at + i,
            kind: XmlErrorKind::ForbiddenCharacter { code: u32::from(bytes[i]) },
        }),
        None => Ok(()),
    }
}

/// UTF-8 (unless known) and no U+FFFE or U+FFFF in `bytes`, which start at
/// `at` and at a character boundary.
fn check_non_ascii(bytes: &[u8], at: usize, utf8_known: bool) -> Result<(), CharProblem> {
    if !utf8_known {
        simdutf8::compat::from_utf8(bytes).map_err(|e| CharProblem {
            at: at + e.valid_up_to(),
            kind: XmlErrorKind::Encoding { encoding: "UTF-8".to_owned() },
        })?;
    }
    // In valid UTF-8, EF BF BE and EF BF BF are exactly U+FFFE and U+FFFF.
    for i in memchr::memchr_iter(0xEF, bytes) {
        if let [0xBF, last @ (0xBE | 0xBF), ..] = bytes[i + 1..] {
            return Err(CharProblem {
                at: at + i,
                kind: XmlErrorKind::ForbiddenCharacter { code: 0xFFFE + u32::from(last - 0xBE) },
            });
        }
    }
    Ok(())
}

/// The first character of `text` that XML 1.0 does not allow, with its
/// offset: for small texts not covered by [`check_document`].
pub(crate) fn check_text(text: &str) -> Result<(), CharProblem> {
    match text.char_indices().find(|&(_, c)| !is_xml_char(u32::from(c))) {
        Some((at, c)) => {
            Err(CharProblem { at, kind: XmlErrorKind::ForbiddenCharacter { code: u32::from(c) } })
        }
        None => Ok(()),
    }
}

/// XML 1.0's `Char`: tab, LF, CR, and the code points from U+0020 except
/// the surrogates, U+FFFE and U+FFFF.
pub(crate) fn is_xml_char(c: u32) -> bool {
    matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10_FFFF)
}

/// The character a character reference names, given what is between `&#`
/// and `;`: `[0-9]+` or `x[0-9a-fA-F]+`, naming a [`Char`](is_xml_char).
pub(crate) fn char_ref(digits: &[u8]) -> Option<char> {
    let (digits, radix) = match digits {
        [b'x', hex @ ..] => (hex, 16),
        _ => (digits, 10),
    };
    if digits.is_empty() || !digits.iter().all(|b| char::from(*b).is_digit(radix)) {
        return None;
    }
    let mut code: u32 = 0;
    for &b in digits {
        let digit = char::from(b).to_digit(radix)?;
        code = code.checked_mul(radix)?.checked_add(digit)?;
    }
    if is_xml_char(code) { char::from_u32(code) } else { None }
}

/// For each byte, as a name's first character: may it start a name?
const NAME_START: u8 = 1;
/// For each byte: may it continue a name?
const NAME_CHAR: u8 = 2;

/// [`NAME_START`] and [`NAME_CHAR`] for every ASCII byte (0 for the
/// others, which [`is_name`] looks at as characters).
static ASCII_NAME: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        let byte = b as u8;
        let start = byte.is_ascii_alphabetic() || byte == b'_' || byte == b':';
        let char = start || byte.is_ascii_digit() || byte == b'-' || byte == b'.';
        table[b] = if start {
            NAME_START | NAME_CHAR
        } else if char {
            NAME_CHAR
        } else {
            0
        };
        b += 1;
    }
    table
};

/// XML 1.0's `Name` (fifth edition).
pub(crate) fn is_name(name: &[u8]) -> bool {
    let Some((&first, rest)) = name.split_first() else {
        return false;
    };
    if name.is_ascii() {
        return ASCII_NAME[usize::from(first)] & NAME_START != 0
            && rest.iter().fold(NAME_CHAR, |ok, &b| ok & ASCII_NAME[usize::from(b)]) != 0;
    }
    let Ok(name) = std::str::from_utf8(name) else {
        return false;
    };
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

fn is_name_start(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// XML's white space: space, tab, CR, LF.
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_problem(doc: &[u8]) -> Option<(usize, u32)> {
        match check_document(doc, false) {
            Ok(_) => None,
            Err(CharProblem { at, kind: XmlErrorKind::ForbiddenCharacter { code } }) => {
                Some((at, code))
            }
            Err(CharProblem { at, .. }) => Some((at, u32::MAX)),
        }
    }

    #[test]
    fn every_control_but_tab_lf_cr_is_found_in_every_position() {
        // Around block and lane edges, at the start and in the tail.
        for len in [1, 31, 32, 33, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17] {
            for at in [0, len / 2, len - 1] {
                for b in 0u8..0x20 {
                    let mut doc = vec![b'a'; len];
                    doc[at] = b;
                    let want = (!matches!(b, 9 | 10 | 13)).then_some((at, u32::from(b)));
                    assert_eq!(first_problem(&doc), want, "byte {b:#x} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn the_first_of_several_controls_is_named() {
        let mut doc = vec![b'\n'; 5000];
        doc[4000] = 0;
        doc[4500] = 1;
        assert_eq!(first_problem(&doc), Some((4000, 0)));
    }

    #[test]
    fn large_documents_are_checked_in_halves_with_the_same_results() {
        let len = PARALLEL_FROM + 3;
        let half = len / 2;
        // Multi-byte characters around the split point, valid: accepted.
        let mut doc = "é".repeat(len / 2).into_bytes();
        doc.push(b']');
        assert_eq!(check_document(&doc, false), Ok(Facts { has_bracket: true }));
        doc.pop();
        assert_eq!(check_document(&doc, false), Ok(Facts { has_bracket: false }));
        // A problem in either half, or in both: the first is named.
        for (at, late) in [(10, None), (len - 10, None), (half, None), (10, Some(len - 10))] {
            let mut doc = vec![b'a'; len];
            doc[at] = 0;
            if let Some(late) = late {
                doc[late] = 1;
            }
            assert_eq!(first_problem(&doc), Some((at, 0)), "{at}");
        }
        // A character cut at the split point is still invalid.
        let mut cut = vec![b'a'; len];
        cut[half] = 0xC3;
        assert_eq!(first_problem(&cut), Some((half, u32::MAX)));
    }

    #[test]
    fn noncharacters_and_bad_utf8_in_non_ascii_runs() {
        for len in [10, BLOCK, 5 * BLOCK] {
            for (seq, want) in [
                ("\u{FFFE}", Some(0xFFFE)),
                ("\u{FFFF}", Some(0xFFFF)),
                ("\u{FFFD}", None),
                ("\u{EFFF}", None),
                ("é", None),
            ] {
                let mut doc = vec![b'a'; len];
                doc.extend_from_slice(seq.as_bytes());
                doc.extend_from_slice(&vec![b'b'; len]);
                assert_eq!(first_problem(&doc), want.map(|c| (len, c)), "{seq:?} after {len}");
            }
            let mut doc = vec![b'a'; len];
            doc.extend_from_slice(b"\xC3");
            doc.extend_from_slice(&vec![b'b'; len]);
            assert_eq!(first_problem(&doc), Some((len, u32::MAX)), "truncated after {len}");
        }
        // A surrogate written in UTF-8 is not UTF-8.
        assert_eq!(first_problem(b"a\xED\xA0\x80"), Some((1, u32::MAX)));
        // Known UTF-8: only the characters are checked.
        assert!(check_document("\u{FFFF}".as_bytes(), true).is_err());
    }

    #[test]
    fn chars_and_references() {
        for bad in [0, 1, 8, 0xB, 0xC, 0x1F, 0xD800, 0xDFFF, 0xFFFE, 0xFFFF, 0x11_0000] {
            assert!(!is_xml_char(bad), "{bad:#x}");
        }
        for good in [9, 0xA, 0xD, 0x20, 0xD7FF, 0xE000, 0xFFFD, 0x10000, 0x10_FFFF] {
            assert!(is_xml_char(good), "{good:#x}");
        }
        assert_eq!(char_ref(b"65"), Some('A'));
        assert_eq!(char_ref(b"x41"), Some('A'));
        assert_eq!(char_ref(b"x1F600"), Some('\u{1F600}'));
        for bad in [
            &b""[..],
            b"x",
            b"X41",
            b"0",
            b"x0",
            b"xD800",
            b"xFFFE",
            b"1",
            b"+65",
            b"-65",
            b" 65",
            b"x110000",
            b"99999999999999999999",
        ] {
            assert_eq!(char_ref(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert!(check_text("ok\tok\n").is_ok());
        assert_eq!(check_text("ab\u{1}").unwrap_err().at, 2);
    }

    #[test]
    fn names() {
        for good in
            ["a", "domain", "_x", ":x", "a-b.c1", "qemu:commandline", "é", "名前", "a\u{B7}"]
        {
            assert!(is_name(good.as_bytes()), "{good}");
        }
        for bad in ["", "1a", "-a", ".a", "a$b", "a b", "a>", "\u{B7}a", "a\u{D7}"] {
            assert!(!is_name(bad.as_bytes()), "{bad}");
        }
        assert!(!is_name(b"\xff"));
    }
}
