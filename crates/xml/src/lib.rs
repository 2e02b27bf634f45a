/*!
The XML checks virt-hooks drivers share.

Hook documents are checked in one streaming pass with quick-xml: no tree is
built and a UTF-8 document is never copied, so a 64 MiB domain definition
costs one scan. [`summarize`] checks that a document is well-formed XML 1.0
and returns its root element's name and the text of the few elements a
driver asked for; the [`domain`] module builds the qemu and lxc checks on top
of it.

# What is accepted

Every well-formed document libvirt can produce or accept (libvirt parses
with libxml2, flags `XML_PARSE_NONET | XML_PARSE_NOWARNING`), with these
choices:

* **Encodings.** UTF-8 is read in place and checked in one pass with the
  forbidden characters. A document in another encoding is decoded to UTF-8
  first: the encoding comes from a byte order mark (UTF-8, UTF-16LE/BE),
  from the first bytes of a UTF-16 document without one, or from the XML
  declaration (`encoding="ISO-8859-1"`, `windows-1252`, `KOI8-R`,
  `Shift_JIS`, ... every encoding encoding_rs knows; ISO-8859-1 maps each
  byte to the same code point and US-ASCII refuses bytes above 0x7F, as
  libxml2 does). A byte order mark wins over the declaration. UCS-4, EBCDIC
  and unknown encodings are errors that name the encoding. Positions in
  errors are in the document as given.
* **DTD.** An internal subset is read. Internal general entities are
  expanded where a driver reads text, as libvirt's XPath reads them, up to
  [`MAX_ENTITY_EXPANSION`] bytes per entity and per document and
  [`MAX_ENTITY_DEPTH`] levels of nesting: a "billion laughs" document is an
  error, found without building its text. External entities and the
  external subset are never opened, fetched or expanded: referencing an
  external entity is an error. An entity holding markup, a recursive one
  and parameter-entity references are errors too.
* **Not well-formed** (errors): NUL and the other C0 controls except tab,
  LF and CR, U+FFFE and U+FFFF, anywhere, written or as a character
  reference (`&#0;`, `&#xD800;`); a second root, text outside the root,
  mismatched tags, invalid names, bad or duplicate attributes, `<` in an
  attribute value, `]]>` in text, a misplaced XML declaration or DOCTYPE.
  See [`summarize`] for the full list.
* **One element where one is read.** [`Summary::only`] refuses a second
  element at a path; the domain checks refuse a second `<name>` or
  `<uuid>`.

Every check takes time linear in the size of the document (duplicate
attributes are found with a hash set; entities are measured once each).
The characters of a document of 4 MiB or more are checked in two halves at
once, the second on a scoped thread that ends before [`summarize`] returns.

# Example

```
let doc = b"<domain type='kvm'><name>vm1</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid></domain>";
let summary = virt_hooks_xml::summarize(doc, &["name", "uuid"])?;
assert_eq!(summary.root(), "domain");
assert_eq!(summary.text("name"), Some("vm1"));
assert_eq!(summary.only("uuid")?, Some("c7a5fdbd-edaf-9455-926a-d65c16db1809"));
assert!(summary.contains("uuid"));
# Ok::<(), Box<dyn std::error::Error>>(())
```
*/

pub use crate::dtd::{MAX_ENTITY_DEPTH, MAX_ENTITY_EXPANSION};
pub use crate::error::{XmlError, XmlErrorKind};
pub use crate::profiles::{
    MAX_PROFILES, MAX_PROPERTIES, MAX_VALUE_LEN, MetadataError, PROFILES_NAMESPACE, ProfileRequest,
    ProfileRequests, read_profiles,
};
pub use crate::summary::{Summary, summarize, summarize_prefix};

mod chars;
pub mod domain;
mod dtd;
mod encoding;
mod error;
mod markup;
mod profiles;
mod summary;
