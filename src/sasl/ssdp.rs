//! SASL downgrade protection (XEP-0474, SSDP): the server puts a hash of
//! the mechanisms and channel binding types it advertised into its SCRAM
//! server-first message (the attribute `h`), where the client's proof
//! covers it, so a man in the middle who removed a mechanism or a
//! channel binding type from the stream features is caught.

use ring::digest;

use super::{Mechanism, ScramHash, base64};

/// The base64 hash of XEP-0474 §4.1: the advertised mechanisms sorted
/// bytewise and joined by 0x1E; if channel binding types were advertised
/// (XEP-0440), 0x1F and those types, sorted and joined likewise; hashed
/// with the SCRAM mechanism's own hash.
pub fn hash(scram: ScramHash, mechanisms: &[Mechanism], cb_types: &[&str]) -> String {
    let mut names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
    names.sort_unstable();
    let mut text = names.join("\u{1e}");
    if !cb_types.is_empty() {
        let mut types = cb_types.to_vec();
        types.sort_unstable();
        text.push('\u{1f}');
        text.push_str(&types.join("\u{1e}"));
    }
    let algorithm = match scram {
        ScramHash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        ScramHash::Sha256 => &digest::SHA256,
    };
    base64::encode(digest::digest(algorithm, text.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_xep_example_and_an_independent_computation() {
        // XEP-0474 §5's example hashes 'SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS
        // \x1ftls-exporter\x1etls-server-end-point' with SHA-1.
        assert_eq!(
            hash(
                ScramHash::Sha1,
                &[Mechanism::ScramSha1Plus, Mechanism::ScramSha1],
                &["tls-server-end-point", "tls-exporter"],
            ),
            "G6k/rBLDqgOhRRaCuuatSDFkJ08="
        );
        // Computed with Python: base64(sha256(b'PLAIN\x1eSCRAM-SHA-1\x1eSCRAM-SHA-256')).
        assert_eq!(
            hash(
                ScramHash::Sha256,
                &[
                    Mechanism::ScramSha256,
                    Mechanism::ScramSha1,
                    Mechanism::Plain
                ],
                &[],
            ),
            "J++Diu+JubnE6dLVvZjjI5KHnheOLsUSQWiw/prdbAA="
        );
    }
}
