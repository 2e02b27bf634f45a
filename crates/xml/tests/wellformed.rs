//! The promises of the crate documentation, each attacked through the public
//! API: what libvirt can write is read, what is not XML is refused with the
//! reason and the position, and no input makes a check slow.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use virt_hooks_xml::domain::{check_input, check_output};
use virt_hooks_xml::{MAX_ENTITY_EXPANSION, XmlErrorKind, summarize};

const UUID: &str = "c7a5fdbd-edaf-9455-926a-d65c16db1809";

fn domain(inner: &str) -> String {
    format!("<domain type='kvm'><name>vm1</name><uuid>{UUID}</uuid>{inner}</domain>")
}

/// The message of the error `summarize` gives for `doc`.
fn refused(doc: &[u8]) -> String {
    match summarize(doc, &["name"]) {
        Ok(s) => panic!("accepted (root <{}>): {}", s.root(), String::from_utf8_lossy(doc)),
        Err(e) => e.to_string(),
    }
}

fn kind(doc: &[u8]) -> XmlErrorKind {
    summarize(doc, &["name"]).unwrap_err().kind().clone()
}

/// Runs `f` on another thread; fails if it has not returned after `limit`
/// (it blocks, or loops), else returns its result and the CPU time it
/// used: unlike the time on the clock, that does not depend on how busy the
/// machine is.
fn within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> (T, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let cpu = || {
            let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
            Duration::new(t.tv_sec.unsigned_abs(), u32::try_from(t.tv_nsec).unwrap_or(0))
        };
        let start = cpu();
        let result = f();
        let _ = tx.send((result, cpu() - start));
    });
    rx.recv_timeout(limit).unwrap_or_else(|_| panic!("not done within {limit:?}"))
}

#[test]
fn nul_and_control_characters_are_refused_anywhere() {
    let between = domain("\0<memory>1</memory>");
    assert_eq!(
        refused(between.as_bytes()),
        format!(
            "character U+0000 is not allowed in XML at line 1, byte {}",
            between.find('\0').unwrap()
        )
    );
    for doc in [
        "<domain><name>vm\0x</name></domain>",
        "<domain a='\0'><name>vm1</name></domain>",
        "<domain><!-- \0 --><name>vm1</name></domain>",
        "<domain><![CDATA[\0]]><name>vm1</name></domain>",
        "<domain><?pi \0?><name>vm1</name></domain>",
        "<domain><name>vm1</name></domain>\0",
        "\0<domain><name>vm1</name></domain>",
        "<domain><name>vm1</name>\u{1}</domain>",
        "<domain><name>vm1</name>\u{1B}[31m</domain>",
        "<domain><name>vm1</name>\u{FFFF}</domain>",
        "<domain><name>vm1\u{FFFE}</name></domain>",
    ] {
        assert!(
            matches!(kind(doc.as_bytes()), XmlErrorKind::ForbiddenCharacter { .. }),
            "{doc:?}: {}",
            refused(doc.as_bytes())
        );
    }
    // Tab, CR and LF are characters like any other.
    assert!(summarize(b"<domain>\t\r\n<name>vm1</name>\r\n</domain>\r\n", &[]).is_ok());
}

#[test]
fn references_to_forbidden_code_points_are_refused() {
    for reference in [
        "#0", "#x0", "#1", "#x1F", "#xD800", "#xDFFF", "#55296", "#xFFFE", "#xFFFF", "#x110000",
        "#X41",
    ] {
        for doc in [
            format!("<domain><name>vm&{reference};</name></domain>"),
            format!("<domain><description>&{reference};</description></domain>"),
            format!("<domain a='&{reference};'><name>vm1</name></domain>"),
            format!("<!DOCTYPE domain [<!ENTITY e '&{reference};'>]><domain/>"),
        ] {
            let message = refused(doc.as_bytes());
            assert!(
                message.contains(&format!("invalid character reference '&{reference};'")),
                "{doc}: {message}"
            );
        }
    }
    let s = summarize(b"<domain><name>&#x76;&#109;&#x31;&#x1F600;&#9;</name></domain>", &["name"])
        .unwrap();
    assert_eq!(s.text("name"), Some("vm1\u{1F600}\t"));
}

#[test]
fn a_second_name_is_refused() {
    let two = domain("<name>vm2</name>");
    let e = check_input(two.as_bytes(), "vm1").unwrap_err().to_string();
    assert!(e.contains("a second <name> element"), "{e}");
    assert!(e.ends_with(&format!("byte {}", two.find("<name>vm2").unwrap())), "{e}");
    let e = check_input(domain(&format!("<uuid>{UUID}</uuid>")).as_bytes(), "vm1").unwrap_err();
    assert!(e.to_string().contains("a second <uuid> element"), "{e}");
    // Also in a filter's output, where a second name could rename the domain.
    let out = domain("<name>evil</name>");
    let e = check_output(domain("").as_bytes(), out.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("the hook output is not valid: a second <name> element"), "{e}");
}

#[test]
fn iso_8859_1_names_are_read() {
    let doc = b"<?xml version='1.0' encoding='ISO-8859-1'?>\n\
                <domain><name>caf\xE9-\xC5</name><description>\xA9 \xFF</description></domain>";
    assert_eq!(check_input(doc, "café-Å"), Ok(()));
    assert_eq!(summarize(doc, &["name"]).unwrap().text("name"), Some("café-Å"));
    assert!(check_input(doc, "caf\u{FFFD}-\u{FFFD}").is_err());
    // Positions are in the bytes given: one byte per character here.
    let bad = b"<?xml version='1.0' encoding='latin1'?><domain><name>\xE9\xE9\x01</name></domain>";
    let e = summarize(bad, &[]).unwrap_err();
    assert_eq!(e.kind(), &XmlErrorKind::ForbiddenCharacter { code: 1 });
    assert_eq!(e.offset(), bad.iter().position(|&b| b == 1).unwrap());
    // Without the declaration, the same bytes are not UTF-8.
    let undeclared = b"<domain><name>caf\xE9</name></domain>";
    assert_eq!(
        summarize(undeclared, &[]).unwrap_err().to_string(),
        "the document is not valid UTF-8 at line 1, byte 17"
    );
}

#[test]
fn other_encodings_are_decoded() {
    let utf16le = |s: &str| -> Vec<u8> {
        let mut v = vec![0xFF, 0xFE];
        v.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
        v
    };
    let doc =
        utf16le("<?xml version='1.0' encoding='UTF-16'?>\n<domain><name>虚拟机</name></domain>");
    assert_eq!(check_input(&doc, "虚拟机"), Ok(()));
    let nul = utf16le("<domain><name>a\0</name></domain>");
    let e = summarize(&nul, &[]).unwrap_err();
    assert_eq!(e.kind(), &XmlErrorKind::ForbiddenCharacter { code: 0 });
    assert_eq!(e.offset(), 2 + 2 * "<domain><name>a".len());
    let koi8 = b"<?xml version='1.0' encoding='KOI8-R'?><domain><name>\xD7\xCD</name></domain>";
    assert_eq!(check_input(koi8, "вм"), Ok(()));
    let sjis = b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><domain><name>\x83\x65\x83\x58\x83\x67</name></domain>";
    assert_eq!(check_input(sjis, "テスト"), Ok(()));
    assert_eq!(
        refused(b"<?xml version='1.0' encoding='x-no-such'?><domain/>"),
        "the document is in encoding 'x-no-such', which is not supported at line 1, byte 0"
    );
}

#[test]
fn an_internal_dtd_subset_is_read_and_its_entities_expanded() {
    let doc = "<?xml version='1.0'?>\n<!DOCTYPE domain [\n  <!ENTITY n 'vm1'>\n  \
               <!ENTITY desc \"a &amp; b &n;\">\n  <!ATTLIST domain type CDATA 'kvm'>\n]>\n\
               <domain type='&n;'><name>&n;</name><description>&desc;</description></domain>";
    assert_eq!(check_input(doc.as_bytes(), "vm1"), Ok(()));
    let s = summarize(doc.as_bytes(), &["description"]).unwrap();
    assert_eq!(s.text("description"), Some("a & b vm1"));
    // A DOCTYPE with quotes and brackets where quick-xml alone would end it.
    let tricky = "<!DOCTYPE domain [<!ENTITY gt2 'a>b'><!ENTITY br ']>'>]><domain><name>&gt2;&br;</name></domain>";
    assert_eq!(summarize(tricky.as_bytes(), &["name"]).unwrap().text("name"), Some("a>b]>"));
    assert!(
        refused(b"<!DOCTYPE domain [<!ENTITY n 'vm1'>]><domain><name>&m;</name></domain>")
            .starts_with("unknown entity '&m;'")
    );
}

#[test]
fn external_entities_are_never_read() {
    let dir = std::env::temp_dir().join(format!("virt-hooks-xml-xxe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("name");
    std::fs::write(&file, "vm1").unwrap();
    let uri = format!("file://{}", file.display());
    let doc =
        format!("<!DOCTYPE domain [<!ENTITY n SYSTEM '{uri}'>]><domain><name>&n;</name></domain>");
    assert_eq!(
        check_input(doc.as_bytes(), "vm1").unwrap_err().to_string(),
        "the domain XML is not well-formed: entity '&n;' is external; external entities are never \
         loaded at line 1, byte 76"
            .replace("76", &doc.find("&n;").unwrap().to_string())
    );
    let public = format!(
        "<!DOCTYPE domain [<!ENTITY n PUBLIC '-//x//EN' '{uri}'>]><domain a='&n;'><name>vm1</name></domain>"
    );
    assert!(refused(public.as_bytes()).contains("entity '&n;' is external"));
    let parameter = format!("<!DOCTYPE domain [<!ENTITY % p SYSTEM '{uri}'> %p;]><domain/>");
    assert!(refused(parameter.as_bytes()).starts_with("parameter entity reference '%p;'"));

    // A FIFO nobody writes to: opening it to read would block forever, so
    // returning at all shows it was never opened. Declared but unused, and
    // as the external DTD subset, it is simply accepted.
    let fifo = dir.join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        let uri = format!("file://{}", fifo.display());
        let unused = format!(
            "<!DOCTYPE domain SYSTEM '{uri}' [<!ENTITY x SYSTEM '{uri}'>]><domain><name>vm1</name></domain>"
        );
        let used = unused.replace("<name>vm1", "<name>vm1&x;");
        let ((a, b), _) = within(Duration::from_secs(60), move || {
            (check_input(unused.as_bytes(), "vm1"), check_input(used.as_bytes(), "vm1"))
        });
        assert_eq!(a, Ok(()));
        assert!(b.unwrap_err().to_string().contains("is external"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn entity_expansion_is_bounded() {
    let mut dtd = String::from("<!DOCTYPE domain [<!ENTITY l0 'lollollollol'>");
    for i in 1..=12 {
        dtd.push_str(&format!("<!ENTITY l{i} '{}'>", format!("&l{};", i - 1).repeat(10)));
    }
    dtd.push_str("]>");
    let laughs = format!("{dtd}<domain><name>vm1</name><description>&l12;</description></domain>");
    let (e, _) = within(Duration::from_secs(60), move || summarize(laughs.as_bytes(), &[]));
    assert!(
        e.unwrap_err()
            .to_string()
            .contains(&format!("expands to more than {MAX_ENTITY_EXPANSION} bytes")),
    );
    // Many references to an entity just under the limit: measured once,
    // and never built where no one reads it.
    let big = "x".repeat(MAX_ENTITY_EXPANSION);
    let many = format!(
        "<!DOCTYPE domain [<!ENTITY big '{big}'>]><domain><name>vm1</name><description>{}</description></domain>",
        "&big;".repeat(100_000)
    );
    let (many, took) =
        within(Duration::from_secs(60), move || summarize(many.as_bytes(), &["name"]));
    assert!(many.is_ok());
    assert!(took < Duration::from_secs(5), "{took:?} of CPU");
    // Where it is read, the document's budget is the limit.
    let read = format!(
        "<!DOCTYPE domain [<!ENTITY big '{big}'>]><domain><name>&big;&big;</name></domain>"
    );
    assert_eq!(
        summarize(read.as_bytes(), &["name"]).unwrap_err().kind(),
        &XmlErrorKind::ExpansionBudget { limit: MAX_ENTITY_EXPANSION }
    );
}

#[test]
fn what_is_not_well_formed_is_refused() {
    for (doc, reason) in [
        (
            "<domain><name>vm1</domain></name>",
            "ill-formed document: expected `</name>`, but `</domain>` was found",
        ),
        ("<domain/><domain/>", "a second root element <domain> after <domain>"),
        ("<domain/>text", "text after the root element"),
        ("text<domain/>", "text before the root element"),
        ("<domain/>&#32;", "text after the root element"),
        (
            "<domain a='1'b='2'/>",
            "bad attribute in <domain>: attributes must be separated by white space",
        ),
        ("<domain a=1/>", "bad attribute in <domain>: the value of attribute 'a' is not quoted"),
        ("<domain a/>", "bad attribute in <domain>: attribute 'a' has no '=' and value"),
        ("<domain a='1' a='2'/>", "bad attribute in <domain>: 'a' is given twice"),
        ("<domain 1a='1'/>", "bad attribute in <domain>: '1a' is not a valid attribute name"),
        (
            "<domain a='<'/>",
            "bad attribute value in <domain>: '<' is not allowed in an attribute value",
        ),
        ("<domain a='&'/>", "bad attribute value in <domain>: a '&' that starts no reference"),
        ("<domain a='&x;'/>", "bad attribute value in <domain>: unknown entity '&x;'"),
        ("<domain>]]></domain>", "']]>' is not allowed in text"),
        ("<1domain/>", "'1domain' is not a valid XML name"),
        ("<do$main/>", "'do$main' is not a valid XML name"),
        (
            "<domain><!-- a -- b --></domain>",
            "ill-formed document: forbidden string `--` was found in a comment",
        ),
        (
            " <?xml version='1.0'?><domain/>",
            "bad XML declaration: it must be at the very start of the document",
        ),
        (
            "<domain><?xml version='1.0'?></domain>",
            "bad XML declaration: it must be at the very start",
        ),
        ("<domain><?XmL x?></domain>", "a processing instruction may not be named 'XmL'"),
        ("<?xml version='2.0'?><domain/>", "bad XML declaration: version '2.0' is not 1.x"),
        ("<?xml encoding='UTF-8'?><domain/>", "bad XML declaration: it must start with version"),
        ("<!DOCTYPE domain><!DOCTYPE domain><domain/>", "a DOCTYPE may appear only once"),
        ("<domain/><!DOCTYPE domain>", "a DOCTYPE after the root element"),
        ("<!doctype domain><domain/>", "a DOCTYPE must be written '<!DOCTYPE'"),
        ("<![CDATA[x]]><domain/>", "a CDATA section outside the root element"),
        ("<!-- only a comment -->", "the document has no root element"),
        ("<domain><name>vm1</name>", "the root element <domain> is not closed"),
    ] {
        let message = refused(doc.as_bytes());
        assert!(message.starts_with(reason), "{doc}: {message}");
    }
}

#[test]
fn errors_name_the_line_and_byte() {
    let doc = "<domain>\n  <name>vm1</name>\n  <a x='1' x='2'/>\n</domain>";
    let e = summarize(doc.as_bytes(), &[]).unwrap_err();
    assert_eq!((e.line(), e.offset()), (3, doc.find("x='2'").unwrap()));
    assert_eq!(
        e.kind(),
        &XmlErrorKind::DuplicateAttribute { element: "a".into(), attribute: "x".into() }
    );
    assert_eq!(e.to_string(), "bad attribute in <a>: 'x' is given twice at line 3, byte 39");
}

/// 150,000 attributes on one element of `<metadata>` (libvirt keeps foreign
/// metadata and hands it to every hook) took 23 s when duplicates were
/// found by comparing each attribute with all before it.
#[test]
fn many_attributes_take_linear_time() {
    const N: usize = 150_000;
    let mut attrs = String::with_capacity(N * 16);
    for i in 0..N {
        attrs.push_str(&format!(" a{i}='{i}'"));
    }
    let doc = domain(&format!("<metadata><app:x xmlns:app='urn:x'{attrs}/></metadata>"));
    let dup = doc.replace(" a149999='149999'", " a0='149999'");
    let ((ok, refused), took) = within(Duration::from_secs(300), move || {
        (check_input(doc.as_bytes(), "vm1"), summarize(dup.as_bytes(), &[]).unwrap_err())
    });
    assert_eq!(ok, Ok(()));
    assert_eq!(
        refused.kind(),
        &XmlErrorKind::DuplicateAttribute { element: "app:x".into(), attribute: "a0".into() }
    );
    // Well under a second in a release build; the bound is generous for
    // debug builds, so that only a return to quadratic time (minutes)
    // fails it.
    assert!(took < Duration::from_secs(5), "{took:?} of CPU for {N} attributes, twice");
}

#[test]
fn deep_nesting_and_huge_texts_take_linear_time() {
    const DEPTH: usize = 200_000;
    let deep = domain(&format!("{}{}", "<a>".repeat(DEPTH), "</a>".repeat(DEPTH)));
    let unbalanced = domain(&format!("{}{}", "<a>".repeat(DEPTH), "</a>".repeat(DEPTH - 1)));
    let text = "x".repeat(32 << 20);
    let huge = domain(&format!("<description>{text}</description><metadata a='{text}'/>"));
    let huge_name = format!("<domain><name>{text}</name></domain>");
    let ((deep, unbalanced, huge, huge_name), took) = within(Duration::from_secs(300), move || {
        (
            check_input(deep.as_bytes(), "vm1"),
            summarize(unbalanced.as_bytes(), &[]).map(|_| ()),
            check_input(huge.as_bytes(), "vm1"),
            summarize(huge_name.as_bytes(), &["name"]).map(|s| s.text("name").map(str::len)),
        )
    });
    assert_eq!(deep, Ok(()));
    assert!(unbalanced.is_err());
    assert_eq!(huge, Ok(()));
    assert_eq!(huge_name, Ok(Some(32 << 20)));
    assert!(took < Duration::from_secs(30), "{took:?} of CPU");
}
