//! A note's MCP resource URI, `note:///<path>`, and back: shared by the resource methods and
//! by the hub, which matches subscriptions against changed notes.

use crate::error::VaultError;

pub const SCHEME: &str = "note:///";

/// The URI of the note at `path`; characters outside the URI grammar are percent-encoded.
pub fn note_uri(path: &str) -> String {
    let mut out = String::with_capacity(SCHEME.len() + path.len());
    out.push_str(SCHEME);
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The note path named by a `note:///` URI.
pub fn path_of(uri: &str) -> Result<String, VaultError> {
    let rest = uri
        .strip_prefix(SCHEME)
        .ok_or_else(|| VaultError::InvalidUri(format!("{uri:?} is not a note:/// URI")))?;
    let mut bytes = Vec::with_capacity(rest.len());
    let raw = rest.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| VaultError::InvalidUri(format!("bad percent-escape in {uri:?}")))?;
            bytes.push(hex);
            i += 3;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(bytes).map_err(|_| VaultError::InvalidUri(format!("{uri:?} is not UTF-8")))
}
