//! The hook profiles an object asks for in its own `<metadata>`: the one
//! element of a domain's (or network's) document that the virt-hooks host,
//! not the driver, interprets.
//!
//! ```xml
//! <metadata>
//!   <hooks:profiles xmlns:hooks="http://virt-hooks.org/xmlns/profiles/1.0">
//!     <hooks:profile name="vfio-gpu">
//!       <hooks:property name="gpu">0000:01:00.0</hooks:property>
//!     </hooks:profile>
//!   </hooks:profiles>
//! </metadata>
//! ```
//!
//! Elements are matched by namespace URI ([`PROFILES_NAMESPACE`]), never by
//! prefix: `virsh metadata --key` picks the prefix, so the namespace may
//! come under any prefix (or as the default namespace), and `hooks:` may
//! name another namespace. Elements of other namespaces are ignored.
//!
//! The metadata read is the `<metadata>` child of the root element, or,
//! when the root is libvirt's network `<hookData>`, of its `<network>` child
//! (never the `<domain>` a network port event also carries). The reader
//! streams the document once and stops when that `<metadata>` ends, so the
//! cost is linear in the bytes before its end, and what it keeps is
//! bounded ([`MAX_VALUE_LEN`], [`MAX_PROPERTIES`]).

use std::borrow::Cow;

use quick_xml::{
    NsReader,
    events::{BytesRef, BytesStart, Event},
    name::{Namespace, ResolveResult},
};

/// The namespace URI of virt-hooks profiles in an object's `<metadata>`.
pub const PROFILES_NAMESPACE: &str = "http://virt-hooks.org/xmlns/profiles/1.0";

/// The longest property value accepted, in bytes (it becomes an
/// environment variable).
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// The most properties accepted over all profiles of one document.
pub const MAX_PROPERTIES: usize = 1024;

/// The most profiles one document may list.
pub const MAX_PROFILES: usize = 64;

/// One profile an object asks for, with its properties in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRequest {
    /// The profile's name (its `name` attribute), as written.
    pub name: String,
    /// `(name, value)` of each property, in document order; no name twice.
    pub properties: Vec<(String, String)>,
}

/// What a document asks for: the profiles in document order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfileRequests {
    /// The local name of the element whose `<metadata>` was read
    /// (`domain`, `network`), empty for a document without a root element.
    pub owner: String,
    /// The profiles, in document order; no name twice.
    pub profiles: Vec<ProfileRequest>,
}

/// Malformed profile metadata, or a document that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("profile metadata, line {line}: {message}")]
pub struct MetadataError {
    /// The local name of the element whose `<metadata>` was being read
    /// (`domain`, `network`), empty if the root was not reached.
    pub owner: String,
    /// The 1-based line of the problem.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Where the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Before the element that owns the metadata (depth counts it).
    Outside,
    /// Inside `<metadata>`, outside our `<profiles>`.
    Metadata,
    /// Inside our `<profiles>`.
    Profiles,
    /// Inside one `<profile>`.
    Profile,
    /// Inside one `<property>`: its text is the value.
    Property,
}

/// Reads the profiles `doc` asks for.
///
/// # Errors
///
/// A [`MetadataError`] with the line: the document is not well-formed up to
/// the end of its `<metadata>`, or the profiles element is malformed: a
/// property outside a profile, a profile or property without a name, the
/// same profile twice, the same property twice in a profile, two profiles
/// elements, an unknown element or text in the namespace, a nested element
/// in a property, or too much ([`MAX_PROFILES`], [`MAX_PROPERTIES`],
/// [`MAX_VALUE_LEN`]). Elements of other namespaces are never an error.
pub fn read_profiles(doc: &[u8]) -> Result<ProfileRequests, MetadataError> {
    let mut out = ProfileRequests::default();
    match read(doc, &mut out) {
        Ok(()) => Ok(out),
        Err(mut err) => {
            err.owner = out.owner;
            Err(err)
        }
    }
}

fn read(doc: &[u8], out: &mut ProfileRequests) -> Result<(), MetadataError> {
    let mut reader = NsReader::from_reader(doc);
    let config = reader.config_mut();
    config.check_end_names = true;
    // `<a/>` as `<a></a>`: one path for both.
    config.expand_empty_elements = true;
    let mut at = At::Outside;
    // Element depth: the root is 1 while inside it.
    let mut depth = 0usize;
    // The depth of the element that owns the metadata (1, or 2 under
    // `<hookData>`), once known.
    let mut owner_depth = None;
    // The depth of the element being read in `at`; deeper ones are skipped.
    let mut level = 0usize;
    let mut seen_profiles = false;
    let mut properties = 0usize;
    let mut value = String::new();
    loop {
        let pos = reader.buffer_position();
        let fail = |message: String| MetadataError {
            owner: String::new(),
            line: line_of(doc, pos),
            message,
        };
        let (ns, event) = match reader.read_resolved_event() {
            Ok(pair) => pair,
            Err(err) => {
                let line = line_of(doc, reader.error_position());
                return Err(MetadataError { owner: String::new(), line, message: err.to_string() });
            }
        };
        let ours = is_ours(&ns);
        match event {
            Event::Start(start) if at == At::Outside => {
                depth += 1;
                let local = local_name(&start).map_err(fail)?;
                if depth == 1 {
                    out.owner = local.to_owned();
                    if local != "hookData" {
                        owner_depth = Some(1);
                    }
                } else if depth == 2 && owner_depth.is_none() && local == "network" {
                    out.owner = local.to_owned();
                    owner_depth = Some(2);
                } else if Some(depth - 1) == owner_depth
                    && local == "metadata"
                    && matches!(ns, ResolveResult::Unbound)
                {
                    at = At::Metadata;
                    level = depth;
                }
            }
            Event::End(_) if at == At::Outside => {
                if owner_depth == Some(depth) || depth <= 1 {
                    // The owner ended without metadata.
                    return Ok(());
                }
                depth -= 1;
            }
            Event::Start(start) => {
                depth += 1;
                if depth != level + 1 || (!ours && at != At::Property) {
                    // Deeper than what is being read, or another
                    // namespace's: skipped.
                    continue;
                }
                let local = local_name(&start).map_err(fail)?;
                match (at, local) {
                    (At::Property, _) => {
                        return Err(fail(format!("an element <{local}> inside a property")));
                    }
                    (At::Metadata, "profiles") => {
                        if seen_profiles {
                            return Err(fail("a second profiles element".to_owned()));
                        }
                        seen_profiles = true;
                        at = At::Profiles;
                    }
                    (At::Metadata, _) => {
                        // Only <profiles> is ours at this level; an element
                        // of ours elsewhere is a mistake worth naming.
                        return Err(fail(format!(
                            "<{local}> outside a profiles element (only <profiles> belongs in \
                             <metadata>)"
                        )));
                    }
                    (At::Profiles, "profile") => {
                        let name = name_attribute(&start, "profile").map_err(fail)?;
                        if out.profiles.iter().any(|p| p.name == name) {
                            return Err(fail(format!("profile '{name}' is listed twice")));
                        }
                        if out.profiles.len() == MAX_PROFILES {
                            return Err(fail(format!("more than {MAX_PROFILES} profiles")));
                        }
                        out.profiles.push(ProfileRequest { name, properties: Vec::new() });
                        at = At::Profile;
                    }
                    (At::Profiles, "property") => {
                        let name = name_attribute(&start, "property").unwrap_or_default();
                        return Err(fail(format!("property '{name}' outside a profile")));
                    }
                    (At::Profile, "property") => {
                        let name = name_attribute(&start, "property").map_err(fail)?;
                        let Some(profile) = out.profiles.last_mut() else {
                            return Err(fail(format!("property '{name}' outside a profile")));
                        };
                        if profile.properties.iter().any(|(n, _)| *n == name) {
                            return Err(fail(format!(
                                "property '{name}' is given twice in profile '{}'",
                                profile.name
                            )));
                        }
                        properties += 1;
                        if properties > MAX_PROPERTIES {
                            return Err(fail(format!("more than {MAX_PROPERTIES} properties")));
                        }
                        profile.properties.push((name, String::new()));
                        value.clear();
                        at = At::Property;
                    }
                    (_, other) => {
                        return Err(fail(format!(
                            "unknown element <{other}> in {}",
                            if at == At::Profile { "a profile" } else { "the profiles element" }
                        )));
                    }
                }
                level = depth;
            }
            Event::End(_) => {
                depth -= 1;
                if depth + 1 != level {
                    continue;
                }
                at = match at {
                    At::Metadata | At::Outside => return Ok(()),
                    At::Profiles => At::Metadata,
                    At::Profile => At::Profiles,
                    At::Property => {
                        if let Some((_, v)) =
                            out.profiles.last_mut().and_then(|p| p.properties.last_mut())
                        {
                            *v = std::mem::take(&mut value);
                        }
                        At::Profile
                    }
                };
                level -= 1;
            }
            Event::Text(text) if at == At::Property && depth == level => {
                let text = text.xml10_content().map_err(|e| fail(e.to_string()))?;
                push_value(&mut value, &text).map_err(fail)?;
            }
            Event::CData(text) if at == At::Property && depth == level => {
                let text = text.decode().map_err(|e| fail(e.to_string()))?;
                push_value(&mut value, &text).map_err(fail)?;
            }
            Event::GeneralRef(r) if at == At::Property && depth == level => {
                let c = resolve(&r).map_err(fail)?;
                push_value(&mut value, c.encode_utf8(&mut [0; 4])).map_err(fail)?;
            }
            Event::Text(text)
                if matches!(at, At::Profiles | At::Profile)
                    && depth == level
                    && !text.iter().all(u8::is_ascii_whitespace) =>
            {
                return Err(fail("text outside a property".to_owned()));
            }
            Event::CData(_) | Event::GeneralRef(_)
                if matches!(at, At::Profiles | At::Profile) && depth == level =>
            {
                return Err(fail("text outside a property".to_owned()));
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

fn is_ours(ns: &ResolveResult<'_>) -> bool {
    matches!(ns, ResolveResult::Bound(Namespace(uri)) if *uri == PROFILES_NAMESPACE.as_bytes())
}

fn local_name<'a>(start: &'a BytesStart<'_>) -> Result<&'a str, String> {
    std::str::from_utf8(start.local_name().into_inner())
        .map_err(|_| "an element name is not valid UTF-8".to_owned())
}

/// The `name` attribute (no prefix) of a `<profile>` or `<property>`.
fn name_attribute(start: &BytesStart<'_>, what: &str) -> Result<String, String> {
    let attr = start
        .try_get_attribute("name")
        .map_err(|e| format!("bad attribute in a {what}: {e}"))?
        .ok_or_else(|| format!("a {what} without a name attribute"))?;
    let name = attr.unescape_value().map_err(|e| format!("bad name of a {what}: {e}"))?;
    if name.is_empty() {
        return Err(format!("a {what} with an empty name"));
    }
    Ok(name.into_owned())
}

fn push_value(value: &mut String, text: &str) -> Result<(), String> {
    if value.len() + text.len() > MAX_VALUE_LEN {
        return Err(format!("a property value longer than {MAX_VALUE_LEN} bytes"));
    }
    value.push_str(text);
    Ok(())
}

fn resolve(r: &BytesRef<'_>) -> Result<char, String> {
    let name: Cow<'_, str> = r.decode().map_err(|e| e.to_string())?;
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

fn line_of(doc: &[u8], offset: u64) -> usize {
    let end = usize::try_from(offset).unwrap_or(usize::MAX).min(doc.len());
    doc[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: &str = PROFILES_NAMESPACE;

    fn domain(metadata: &str) -> String {
        format!(
            "<domain type='kvm'><name>vm1</name><metadata>{metadata}</metadata>\
             <memory>1</memory></domain>"
        )
    }

    fn read(doc: &str) -> Result<ProfileRequests, MetadataError> {
        read_profiles(doc.as_bytes())
    }

    fn names(requests: &ProfileRequests) -> Vec<&str> {
        requests.profiles.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn profiles_and_properties_in_document_order() {
        let doc = domain(&format!(
            "<hooks:profiles xmlns:hooks='{NS}'>\
               <hooks:profile name='vfio-gpu'>\
                 <hooks:property name='gpu'>0000:01:00.0</hooks:property>\
                 <hooks:property name='audio'>0000:01:00.1</hooks:property>\
               </hooks:profile>\
               <hooks:profile name='cpu-pin'/>\
             </hooks:profiles>"
        ));
        let requests = read(&doc).unwrap();
        assert_eq!(requests.owner, "domain");
        assert_eq!(names(&requests), ["vfio-gpu", "cpu-pin"]);
        assert_eq!(
            requests.profiles[0].properties,
            [
                ("gpu".to_owned(), "0000:01:00.0".to_owned()),
                ("audio".into(), "0000:01:00.1".into())
            ]
        );
        assert!(requests.profiles[1].properties.is_empty());
    }

    #[test]
    fn the_namespace_counts_never_the_prefix() {
        for open in [
            format!("<x:profiles xmlns:x='{NS}'><x:profile name='a'/></x:profiles>"),
            format!("<profiles xmlns='{NS}'><profile name='a'/></profiles>"),
        ] {
            assert_eq!(names(&read(&domain(&open)).unwrap()), ["a"], "{open}");
        }
        // `hooks:` bound to another namespace: not ours, ignored.
        let other = "<hooks:profiles xmlns:hooks='http://example.org/other'>\
                     <hooks:profile name='a'/><hooks:property name='x'>1</hooks:property>\
                     </hooks:profiles>";
        assert!(read(&domain(other)).unwrap().profiles.is_empty());
        // No namespace at all: not ours either.
        let none = "<profiles><profile name='a'/></profiles>";
        assert!(read(&domain(none)).unwrap().profiles.is_empty());
        // Ours next to another namespace's element of the same local name.
        let both = format!(
            "<o:profiles xmlns:o='http://example.org/o'><o:profile name='z'/></o:profiles>\
             <h:profiles xmlns:h='{NS}'><h:profile name='a'/></h:profiles>"
        );
        assert_eq!(names(&read(&domain(&both)).unwrap()), ["a"]);
    }

    #[test]
    fn foreign_elements_inside_ours_are_ignored() {
        let doc = domain(&format!(
            "<h:profiles xmlns:h='{NS}' xmlns:o='urn:o'><o:note>x<h:profile name='no'/></o:note>\
             <h:profile name='a'><o:x/><h:property name='p'>v</h:property></h:profile>\
             </h:profiles>"
        ));
        let requests = read(&doc).unwrap();
        assert_eq!(names(&requests), ["a"]);
        assert_eq!(requests.profiles[0].properties, [("p".to_owned(), "v".to_owned())]);
    }

    #[test]
    fn malformed_metadata_is_an_error_with_its_line() {
        let cases = [
            (
                format!(
                    "<h:profiles xmlns:h='{NS}'>\n<h:property name='gpu'>1</h:property>\
                         </h:profiles>"
                ),
                "property 'gpu' outside a profile",
            ),
            (
                format!(
                    "<h:profiles xmlns:h='{NS}'><h:profile name='a'/>\n<h:profile name='a'/>\
                         </h:profiles>"
                ),
                "profile 'a' is listed twice",
            ),
            (
                format!(
                    "<h:profiles xmlns:h='{NS}'><h:profile name='a'>\
                         <h:property name='p'>1</h:property><h:property name='p'>2</h:property>\
                         </h:profile></h:profiles>"
                ),
                "property 'p' is given twice in profile 'a'",
            ),
            (
                format!("<h:profiles xmlns:h='{NS}'/><g:profiles xmlns:g='{NS}'/>"),
                "a second profiles element",
            ),
            (format!("<h:profiles xmlns:h='{NS}'><h:profile/></h:profiles>"), "without a name"),
            (
                format!(
                    "<h:profiles xmlns:h='{NS}'><h:profile name='a'>\
                         <h:property>1</h:property></h:profile></h:profiles>"
                ),
                "a property without a name",
            ),
            (
                format!(
                    "<h:profiles xmlns:h='{NS}'><h:profile name='a'>\
                         <h:property name='p'>1<b/></h:property></h:profile></h:profiles>"
                ),
                "an element <b> inside a property",
            ),
            (
                format!("<h:profiles xmlns:h='{NS}'><h:profil name='a'/></h:profiles>"),
                "unknown element <profil>",
            ),
            (
                format!(
                    "<h:profiles xmlns:h='{NS}'><h:profile name='a'>stray</h:profile></h:profiles>"
                ),
                "text outside a property",
            ),
            (format!("<h:profile xmlns:h='{NS}' name='a'/>"), "outside a profiles element"),
        ];
        for (metadata, want) in cases {
            let err = read(&domain(&metadata)).unwrap_err();
            assert!(err.message.contains(want), "{metadata}: {err}");
            assert!(err.to_string().starts_with("profile metadata, line "), "{err}");
        }
        let err = read(&domain(&format!(
            "<h:profiles xmlns:h='{NS}'>\n\n<h:property name='gpu'/></h:profiles>"
        )))
        .unwrap_err();
        assert_eq!(err.line, 3, "{err}");
    }

    #[test]
    fn values_are_unescaped_and_kept_exactly() {
        let doc = domain(&format!(
            "<h:profiles xmlns:h='{NS}'><h:profile name='a'>\
             <h:property name='p'> a&amp;b&#x41;<![CDATA[<c>]]> </h:property>\
             <h:property name='e'/></h:profile></h:profiles>"
        ));
        let requests = read(&doc).unwrap();
        assert_eq!(
            requests.profiles[0].properties,
            [("p".to_owned(), " a&bA<c> ".to_owned()), ("e".to_owned(), String::new())]
        );
    }

    #[test]
    fn only_the_owners_own_metadata_is_read() {
        // A <metadata> deeper in the document is not the domain's.
        let deep = format!(
            "<domain><devices><metadata><h:profiles xmlns:h='{NS}'><h:profile name='a'/>\
             </h:profiles></metadata></devices></domain>"
        );
        assert!(read(&deep).unwrap().profiles.is_empty());
        // A network hook: the network's metadata, never the domain's.
        let hook_data = format!(
            "<hookData><interface/><network><name>n</name><metadata><h:profiles xmlns:h='{NS}'>\
             <h:profile name='net'/></h:profiles></metadata></network>\
             <domain><metadata><h:profiles xmlns:h='{NS}'><h:profile name='dom'/></h:profiles>\
             </metadata></domain></hookData>"
        );
        let requests = read(&hook_data).unwrap();
        assert_eq!((requests.owner.as_str(), names(&requests)), ("network", vec!["net"]));
        // No metadata, no document: nothing asked for.
        assert!(read("<domain><name>x</name></domain>").unwrap().profiles.is_empty());
        assert!(read("").unwrap().profiles.is_empty());
    }

    #[test]
    fn reading_stops_at_the_end_of_the_metadata() {
        // Whatever follows the metadata is not even looked at.
        let doc = format!(
            "<domain><metadata><h:profiles xmlns:h='{NS}'><h:profile name='a'/></h:profiles>\
             </metadata><devices><<<not xml"
        );
        assert_eq!(names(&read(&doc).unwrap()), ["a"]);
    }

    #[test]
    fn what_is_kept_is_bounded() {
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        let doc = domain(&format!(
            "<h:profiles xmlns:h='{NS}'><h:profile name='a'><h:property name='p'>{long}\
             </h:property></h:profile></h:profiles>"
        ));
        assert!(read(&doc).unwrap_err().message.contains("longer than"));
        let many: String =
            (0..=MAX_PROFILES).map(|i| format!("<h:profile name='p{i}'/>")).collect();
        let doc = domain(&format!("<h:profiles xmlns:h='{NS}'>{many}</h:profiles>"));
        assert!(read(&doc).unwrap_err().message.contains("more than"));
        let props: String = (0..=MAX_PROPERTIES)
            .map(|i| format!("<h:property name='p{i}'>v</h:property>"))
            .collect();
        let doc = domain(&format!(
            "<h:profiles xmlns:h='{NS}'><h:profile name='a'>{props}</h:profile></h:profiles>"
        ));
        assert!(read(&doc).unwrap_err().message.contains("more than"));
    }

    #[test]
    fn a_document_that_is_not_well_formed_is_an_error() {
        let err = read(&format!("<domain><metadata><h:profiles xmlns:h='{NS}'></x>")).unwrap_err();
        assert_eq!(err.line, 1, "{err}");
    }
}
