//! The account key and the JSON Web Signatures (RFC 7515) every ACME POST
//! carries (RFC 8555 §6.2): ES256 over P-256 with ring, the public key as a
//! JWK (RFC 7517), its thumbprint (RFC 7638) and the HTTP-01 key
//! authorization built from it (RFC 8555 §8.1).

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

use super::AcmeError;

/// The account's P-256 key, which signs every request after the directory.
pub struct AccountKey {
    pair: EcdsaKeyPair,
    /// PKCS#8 DER, as stored on disk.
    pkcs8: Vec<u8>,
    rng: SystemRandom,
}

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        write!(f, "AccountKey({})", self.thumbprint())
    }
}

/// How a request names its signer: new accounts show their key, later
/// requests name the account URL the CA gave (RFC 8555 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer<'a> {
    Jwk,
    Kid(&'a str),
}

impl AccountKey {
    /// A fresh random key.
    pub fn generate() -> Result<AccountKey, AcmeError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| AcmeError::Key("cannot generate a P-256 key".to_owned()))?;
        AccountKey::from_pkcs8(pkcs8.as_ref())
    }

    /// A key read back from its PKCS#8 DER.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<AccountKey, AcmeError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|err| AcmeError::Key(format!("not a P-256 PKCS#8 key: {err}")))?;
        Ok(AccountKey {
            pair,
            pkcs8: pkcs8.to_vec(),
            rng,
        })
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as a JWK. serde_json's maps keep keys sorted, so this
    /// serializes in the canonical member order RFC 7638 hashes.
    pub fn jwk(&self) -> Value {
        // An uncompressed point: 0x04, then x and y of 32 bytes each.
        let coordinates = self.pair.public_key().as_ref().get(1..).unwrap_or_default();
        let (x, y) = coordinates.split_at(coordinates.len() / 2);
        json!({ "crv": "P-256", "kty": "EC", "x": base64url(x), "y": base64url(y) })
    }

    /// RFC 7638 thumbprint: base64url(SHA-256(canonical JWK)).
    pub fn thumbprint(&self) -> String {
        let canonical = self.jwk().to_string();
        base64url(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    /// What `/.well-known/acme-challenge/TOKEN` must answer (RFC 8555 §8.1).
    pub fn key_authorization(&self, token: &str) -> String {
        format!("{token}.{}", self.thumbprint())
    }

    /// The flattened JWS JSON body of a POST to `url`. `payload` `None` is
    /// POST-as-GET (RFC 8555 §6.3): an empty payload.
    pub fn sign(
        &self,
        url: &str,
        nonce: &str,
        signer: Signer<'_>,
        payload: Option<&Value>,
    ) -> Result<Vec<u8>, AcmeError> {
        let mut protected = json!({ "alg": "ES256", "nonce": nonce, "url": url });
        match signer {
            Signer::Jwk => protected["jwk"] = self.jwk(),
            Signer::Kid(kid) => protected["kid"] = Value::from(kid),
        }
        let protected = base64url(protected.to_string().as_bytes());
        let payload = payload.map_or_else(String::new, |p| base64url(p.to_string().as_bytes()));
        let signing_input = format!("{protected}.{payload}");
        let signature = self
            .pair
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| AcmeError::Key("signing failed".to_owned()))?;
        let body = json!({
            "protected": protected,
            "payload": payload,
            "signature": base64url(signature.as_ref()),
        });
        Ok(body.to_string().into_bytes())
    }
}

/// base64url without padding (RFC 7515 §2).
pub fn base64url(bytes: &[u8]) -> String {
    crate::sasl::base64::encode(bytes)
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect()
}

/// Whether `text` is a non-empty base64url string without padding, as
/// RFC 8555 §8.3 requires of a challenge token (it ends up in a URL path).
pub fn is_base64url(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    fn decode_base64url(text: &str) -> Vec<u8> {
        let mut standard: String = text
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                other => other,
            })
            .collect();
        while !standard.len().is_multiple_of(4) {
            standard.push('=');
        }
        crate::sasl::base64::decode(standard).expect("base64url")
    }

    #[test]
    fn base64url_has_no_padding_and_url_safe_letters() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert!(is_base64url("abc-_09"));
        assert!(!is_base64url(""));
        assert!(!is_base64url("a/b"));
        assert!(!is_base64url("ab=="));
        assert!(!is_base64url("../x"));
    }

    #[test]
    fn a_signature_verifies_with_the_jwk_public_key() {
        let key = AccountKey::generate().expect("key");
        let payload = json!({ "identifiers": [{ "type": "dns", "value": "example.org" }] });
        let body = key
            .sign(
                "https://ca.test/new-order",
                "NONCE",
                Signer::Kid("https://ca.test/acct/1"),
                Some(&payload),
            )
            .expect("signed");
        let jws: Value = serde_json::from_slice(&body).expect("JSON");
        let protected = jws["protected"].as_str().expect("protected");
        let payload_b64 = jws["payload"].as_str().expect("payload");
        let header: Value = serde_json::from_slice(&decode_base64url(protected)).expect("header");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["nonce"], "NONCE");
        assert_eq!(header["url"], "https://ca.test/new-order");
        assert_eq!(header["kid"], "https://ca.test/acct/1");
        assert!(header.get("jwk").is_none(), "kid and jwk are exclusive");
        let decoded: Value =
            serde_json::from_slice(&decode_base64url(payload_b64)).expect("payload");
        assert_eq!(decoded, payload);

        // Verify with the public key rebuilt from the JWK alone.
        let jwk = key.jwk();
        let mut point = vec![4u8];
        point.extend(decode_base64url(jwk["x"].as_str().expect("x")));
        point.extend(decode_base64url(jwk["y"].as_str().expect("y")));
        assert_eq!(point.len(), 65);
        let signature = decode_base64url(jws["signature"].as_str().expect("signature"));
        assert_eq!(signature.len(), 64, "ES256 signatures are r || s");
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point);
        let input = format!("{protected}.{payload_b64}");
        assert!(public.verify(input.as_bytes(), &signature).is_ok());
        assert!(public.verify(b"something else", &signature).is_err());
    }

    #[test]
    fn new_account_requests_carry_the_jwk_and_post_as_get_has_an_empty_payload() {
        let key = AccountKey::generate().expect("key");
        let body = key
            .sign("https://ca.test/a", "N", Signer::Jwk, None)
            .expect("signed");
        let jws: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(jws["payload"], "");
        let header: Value =
            serde_json::from_slice(&decode_base64url(jws["protected"].as_str().expect("p")))
                .expect("h");
        assert_eq!(header["jwk"], key.jwk());
        assert!(header.get("kid").is_none());
    }

    #[test]
    fn thumbprint_and_key_authorization_follow_rfc_7638() {
        let key = AccountKey::generate().expect("key");
        let jwk = key.jwk();
        // The canonical form: members sorted, no white space.
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().expect("x"),
            jwk["y"].as_str().expect("y")
        );
        assert_eq!(jwk.to_string(), canonical);
        let expected =
            base64url(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref());
        assert_eq!(key.thumbprint(), expected);
        assert_eq!(key.thumbprint().len(), 43);
        assert_eq!(
            key.key_authorization("tok_EN-1"),
            format!("tok_EN-1.{expected}")
        );
        // Stored and read back, it is the same key.
        let again = AccountKey::from_pkcs8(key.pkcs8()).expect("reload");
        assert_eq!(again.thumbprint(), key.thumbprint());
        assert!(AccountKey::from_pkcs8(b"not a key").is_err());
    }

    #[test]
    fn rfc_7638_example_thumbprint_shape() {
        // The RFC's own example is RSA; check the hash step with its
        // published result on its canonical text.
        let canonical = r#"{"e":"AQAB","kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}"#;
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
        assert_eq!(
            base64url(digest.as_ref()),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
