//! The systemd journal's native protocol as a test receives it: a datagram
//! socket bound where a hook looks for the journal, and the fields of each
//! record.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// The fields of one native-protocol journal datagram, in order:
/// `NAME=value\n`, or `NAME\n`, a 64-bit little-endian length, the value
/// and `\n` for a value that holds a newline.
///
/// # Panics
///
/// On a datagram that is not in the native protocol.
pub fn journal_fields(datagram: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut fields = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let nl = rest.iter().position(|&b| b == b'\n').expect("a field ends with a newline");
        let line = &rest[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            fields.push((text(&line[..eq]), line[eq + 1..].to_vec()));
            rest = &rest[nl + 1..];
        } else {
            let name = text(line);
            let len = u64::from_le_bytes(rest[nl + 1..nl + 9].try_into().unwrap()) as usize;
            let value = rest[nl + 9..nl + 9 + len].to_vec();
            assert_eq!(rest[nl + 9 + len], b'\n', "binary field {name} ends with a newline");
            fields.push((name, value));
            rest = &rest[nl + 10 + len..];
        }
    }
    fields
}

/// The value of the field `name` of a record from [`journal_fields`], as
/// text.
pub fn journal_field(fields: &[(String, Vec<u8>)], name: &str) -> Option<String> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| text(v))
}

/// Every datagram received on `socket` until it stays quiet for 300 ms.
pub fn receive_datagrams(socket: &UnixDatagram) -> Vec<Vec<u8>> {
    socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut all = Vec::new();
    let mut buf = vec![0; 1 << 20];
    while let Ok(n) = socket.recv(&mut buf) {
        if n > 0 {
            all.push(buf[..n].to_vec());
        }
    }
    all
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
