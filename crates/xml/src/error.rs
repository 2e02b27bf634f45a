/// Why a document is not well-formed XML (or not one these checks can
/// read), and where: the 1-based line and the 0-based byte offset in the
/// document as it was given, before any decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at line {line}, byte {offset}")]
pub struct XmlError {
    kind: XmlErrorKind,
    line: usize,
    offset: usize,
}

impl XmlError {
    pub(crate) fn new(kind: XmlErrorKind, line: usize, offset: usize) -> XmlError {
        XmlError { kind, line, offset }
    }

    /// What is wrong.
    pub fn kind(&self) -> &XmlErrorKind {
        &self.kind
    }

    /// What is wrong, as text (lowercase, no position).
    pub fn message(&self) -> String {
        self.kind.to_string()
    }

    /// The 1-based line of the problem.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The 0-based byte offset of the problem in the document as given.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// The reasons an [`XmlError`] names. Messages are lowercase and name the
/// thing at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlErrorKind {
    /// Bytes that are not valid in the document's encoding.
    #[error("the document is not valid {encoding}")]
    Encoding {
        /// The encoding the document is in (declared or detected).
        encoding: String,
    },
    /// A declared or detected encoding these checks cannot decode.
    #[error("the document is in encoding '{encoding}', which is not supported")]
    UnsupportedEncoding {
        /// The encoding, as declared or detected.
        encoding: String,
    },
    /// The declaration names an encoding the bytes contradict.
    #[error("the document declares encoding '{encoding}' but has no UTF-16 byte order mark")]
    Utf16WithoutBom {
        /// The declared encoding.
        encoding: String,
    },
    /// A character XML 1.0 does not allow (NUL, most C0 controls,
    /// U+FFFE, U+FFFF), written as itself.
    #[error("character U+{code:04X} is not allowed in XML")]
    ForbiddenCharacter {
        /// The code point.
        code: u32,
    },
    /// A character reference that is malformed or names a character XML 1.0
    /// does not allow (`&#0;`, `&#xD800;`, `&#xFFFE;`).
    #[error("invalid character reference '&{reference};'")]
    CharacterReference {
        /// The reference between `&` and `;`.
        reference: String,
    },
    /// An entity reference to no declared entity.
    #[error("unknown entity '&{name};'")]
    UnknownEntity {
        /// The entity's name.
        name: String,
    },
    /// A reference to an external entity (`SYSTEM` or `PUBLIC`): never
    /// loaded.
    #[error("entity '&{name};' is external; external entities are never loaded")]
    ExternalEntity {
        /// The entity's name.
        name: String,
    },
    /// A reference to an unparsed (`NDATA`) entity in content.
    #[error("entity '&{name};' is an unparsed entity and cannot be referenced")]
    UnparsedEntity {
        /// The entity's name.
        name: String,
    },
    /// An entity whose replacement text refers back to itself.
    #[error("entity '&{name};' refers to itself")]
    RecursiveEntity {
        /// The entity's name.
        name: String,
    },
    /// An entity that expands to more than [`MAX_ENTITY_EXPANSION`](crate::MAX_ENTITY_EXPANSION)
    /// bytes.
    #[error("entity '&{name};' expands to more than {limit} bytes")]
    EntityTooLarge {
        /// The entity's name.
        name: String,
        /// The limit.
        limit: usize,
    },
    /// Entities nested deeper than [`MAX_ENTITY_DEPTH`](crate::MAX_ENTITY_DEPTH).
    #[error("entity '&{name};' nests entities more than {limit} deep")]
    EntityTooDeep {
        /// The entity's name.
        name: String,
        /// The limit.
        limit: usize,
    },
    /// An entity whose replacement text holds markup (`<`), used in content
    /// or in an attribute value.
    #[error("entity '&{name};' contains markup ('<'), which is not supported")]
    EntityMarkup {
        /// The entity's name.
        name: String,
    },
    /// More entity text read into the wanted elements than
    /// [`MAX_ENTITY_EXPANSION`](crate::MAX_ENTITY_EXPANSION) bytes.
    #[error("entities expand to more than {limit} bytes in the elements read")]
    ExpansionBudget {
        /// The limit.
        limit: usize,
    },
    /// A parameter-entity reference in the internal DTD subset.
    #[error("parameter entity reference '%{name};' in the DTD is not supported")]
    ParameterEntity {
        /// The entity's name.
        name: String,
    },
    /// A malformed `<!DOCTYPE ...>`.
    #[error("bad DOCTYPE: {reason}")]
    Doctype {
        /// What is wrong.
        reason: String,
    },
    /// A malformed or misplaced XML declaration (`<?xml ...?>`).
    #[error("bad XML declaration: {reason}")]
    Declaration {
        /// What is wrong.
        reason: String,
    },
    /// An attribute given twice in one tag.
    #[error("bad attribute in <{element}>: '{attribute}' is given twice")]
    DuplicateAttribute {
        /// The element.
        element: String,
        /// The attribute.
        attribute: String,
    },
    /// Attribute syntax that is not XML.
    #[error("bad attribute in <{element}>: {reason}")]
    Attribute {
        /// The element.
        element: String,
        /// What is wrong.
        reason: String,
    },
    /// An attribute value that is not well-formed.
    #[error("bad attribute value in <{element}>: {reason}")]
    AttributeValue {
        /// The element.
        element: String,
        /// What is wrong with the value.
        reason: Box<XmlErrorKind>,
    },
    /// An element, attribute, entity or processing-instruction name that is
    /// not an XML name.
    #[error("'{name}' is not a valid XML name")]
    Name {
        /// The name.
        name: String,
    },
    /// A processing instruction named `xml` (any case) anywhere but at the
    /// start.
    #[error("a processing instruction may not be named '{target}'")]
    ReservedTarget {
        /// The target.
        target: String,
    },
    /// `]]>` in text.
    #[error("']]>' is not allowed in text")]
    CdataEndInText,
    /// A second root element.
    #[error("a second root element <{second}> after <{first}>; a document has exactly one")]
    SecondRoot {
        /// The root element.
        first: String,
        /// The element after it.
        second: String,
    },
    /// Text (or a reference) other than whitespace outside the root element.
    #[error("text {place} the root element")]
    TextOutsideRoot {
        /// `before` or `after`.
        place: &'static str,
    },
    /// A CDATA section outside the root element.
    #[error("a CDATA section outside the root element")]
    CdataOutsideRoot,
    /// A DOCTYPE after the root element, a second one, or a lowercase one.
    #[error("a DOCTYPE {reason}")]
    MisplacedDoctype {
        /// Where or what it is.
        reason: &'static str,
    },
    /// No root element.
    #[error("the document has no root element")]
    NoRoot,
    /// The root element is never closed.
    #[error("the root element <{root}> is not closed")]
    Unclosed {
        /// The root element.
        root: String,
    },
    /// A second element at a path whose text is read, where one is expected
    /// (see [`Summary::only`](crate::Summary::only)).
    #[error("a second <{path}> element; the document must have at most one")]
    Repeated {
        /// The path below the root.
        path: String,
    },
    /// A syntax error found by the XML reader.
    #[error("{0}")]
    Syntax(String),
}
