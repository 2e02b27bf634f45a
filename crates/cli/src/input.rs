//! Input documents, read in bounded memory: never more than `max_input`
//! bytes (the configuration's cap) plus one, to tell that there is more.

use std::io::Read;

use anyhow::Context;

/// Reads all of `reader` (`from` names it in errors: `standard input`,
/// `input file <path>`), at most `max` bytes.
pub(crate) fn read_capped(reader: impl Read, max: u64, from: &str) -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    reader
        .take(max.saturating_add(1))
        .read_to_end(&mut data)
        .with_context(|| format!("cannot read the input document from {from}"))?;
    if u64::try_from(data.len()).unwrap_or(u64::MAX) > max {
        anyhow::bail!(
            "the input document from {from} is larger than max_input ({max} bytes); raise \
             max_input in the configuration file if such a document is real"
        );
    }
    Ok(data)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_cap_is_read() {
        assert_eq!(read_capped(&b"12345"[..], 5, "x").unwrap(), b"12345");
        let err = read_capped(&b"123456"[..], 5, "standard input").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the input document from standard input is larger than max_input (5 bytes); \
             raise max_input in the configuration file if such a document is real"
        );
        // An endless source stops at the cap plus one.
        let err = read_capped(std::io::repeat(0), 1 << 20, "zeros").unwrap_err();
        assert!(err.to_string().contains("larger than max_input (1048576 bytes)"), "{err}");
    }
}
