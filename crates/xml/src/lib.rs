/*!
The XML checks virt-hooks drivers share.

Hook documents are checked in one streaming pass with quick-xml: no tree is
built and the document is never copied, so a 64 MiB domain definition costs one
scan. [`summarize`] checks that a document is well-formed and returns its root
element's name and the text of the few elements a driver asked for; the
[`domain`] module builds the qemu and lxc checks on top of it.

# Example

```
let doc = b"<domain type='kvm'><name>vm1</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid></domain>";
let summary = virt_hooks_xml::summarize(doc, &["name", "uuid"])?;
assert_eq!(summary.root(), "domain");
assert_eq!(summary.text("name"), Some("vm1"));
assert!(summary.contains("uuid"));
# Ok::<(), Box<dyn std::error::Error>>(())
```
*/

pub use crate::profiles::{
    MAX_PROFILES, MAX_PROPERTIES, MAX_VALUE_LEN, MetadataError, PROFILES_NAMESPACE, ProfileRequest,
    ProfileRequests, read_profiles,
};
pub use crate::summary::{Summary, XmlError, summarize, summarize_prefix};

pub mod domain;
mod profiles;
mod summary;
