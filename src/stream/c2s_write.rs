//! What the c2s stream writes as bytes rather than as element trees: the
//! replies every login sends (see `write_features` in `c2s.rs`). The test
//! `login_replies_are_the_serialized_elements` pins the bytes to what the
//! serializer makes of the same elements.

use crate::jid::Jid;
use crate::sasl;

use super::super::{NS_BIND, NS_SASL};

/// `<challenge/>` or `<success/>` with `data` in base64, written as bytes
/// like the features (test: `login_replies_are_the_serialized_elements`).
pub(super) fn write_sasl_element(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    open_tag(out, name, NS_SASL);
    if data.is_empty() {
        out.extend_from_slice(b"/>");
        return;
    }
    out.push(b'>');
    // The base64 alphabet needs no escaping.
    sasl::base64::encode_into(data, out);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
}

/// The result of a successful bind, written as bytes like the features.
pub(super) fn write_bind_result(out: &mut Vec<u8>, iq_id: &str, full: &Jid) {
    out.extend_from_slice(b"<iq type='result' id='");
    crate::xml::escape_attr_into(iq_id, out);
    out.extend_from_slice(b"'>");
    open_tag(out, "bind", NS_BIND);
    out.extend_from_slice(b"><jid>");
    crate::xml::escape_text_into(full.as_str(), out);
    out.extend_from_slice(b"</jid></bind></iq>");
}

/// `<name xmlns='ns'`, for a child of the features (names and namespaces
/// are constants that need no escaping).
pub(super) fn open_tag(out: &mut Vec<u8>, name: &str, ns: &str) {
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b" xmlns='");
    out.extend_from_slice(ns.as_bytes());
    out.push(b'\'');
}
