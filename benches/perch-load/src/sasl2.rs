//! SASL2 (XEP-0388) with Bind 2 (XEP-0386) and FAST (XEP-0484) for the
//! client side: a SCRAM login that binds inline and asks for a token, and
//! a token login (HT-SHA-256-NONE, no channel binding) that binds inline.
//! Neither restarts the stream: `<success/>` ends with the session bound.
//! Both check the server's proof (SCRAM's verifier, HT's responder
//! message), so a server that skipped the work cannot look faster.

use ring::hmac;

use crate::base64;
use crate::conn::{ClientError, Conn, Target, random_bytes};
use crate::sasl::{Mechanism, ScramClient};
use crate::xml;

pub const NS_SASL2: &str = "urn:xmpp:sasl:2";
pub const NS_BIND2: &str = "urn:xmpp:bind:0";
pub const NS_FAST: &str = "urn:xmpp:fast:0";
/// The FAST mechanism used: HMAC-SHA-256 over the token, no channel
/// binding (the only one a client without TLS exporter support can use).
pub const HT_MECHANISM: &str = "HT-SHA-256-NONE";

/// What a `<stream:features>` offers of SASL2.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offer {
    pub mechanisms: Vec<String>,
    pub bind2: bool,
    pub fast: Vec<String>,
}

/// The SASL2 offer in `features`, if there is one.
pub fn offer(features: &[u8]) -> Option<Offer> {
    xml::with_parsed(features, |n| {
        let auth = n.children().find(|c| is(c, "authentication", NS_SASL2))?;
        let inline = auth.children().find(|c| is(c, "inline", NS_SASL2));
        let texts = |parent: Option<roxmltree::Node<'_, '_>>, ns: &str| -> Vec<String> {
            parent
                .map(|p| {
                    p.children()
                        .filter(|c| is(c, "mechanism", ns))
                        .filter_map(|c| c.text().map(|t| t.trim().to_string()))
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(Offer {
            mechanisms: texts(Some(auth), NS_SASL2),
            bind2: inline.is_some_and(|i| i.children().any(|c| is(&c, "bind", NS_BIND2))),
            fast: texts(
                inline.and_then(|i| i.children().find(|c| is(c, "fast", NS_FAST))),
                NS_FAST,
            ),
        })
    })
    .ok()
    .flatten()
}

fn is(node: &roxmltree::Node<'_, '_>, name: &str, ns: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(ns)
}

/// A new client installation's id: a random (version 4) UUID.
pub fn user_agent_id() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn user_agent(id: &str) -> String {
    format!(
        "<user-agent id='{}'><software>perch-load</software><device>bench</device></user-agent>",
        xml::escape(id)
    )
}

fn bind2(tag: &str) -> String {
    format!(
        "<bind xmlns='{NS_BIND2}'><tag>{}</tag></bind>",
        xml::escape(tag)
    )
}

/// A SASL2 `<success/>`, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Success {
    pub additional_data: Vec<u8>,
    pub jid: String,
    pub bound: bool,
    /// A FAST token issued with it.
    pub token: Option<String>,
}

/// Reads a `<success/>`; anything else (a `<failure/>`) is the refusal.
pub fn parse_success(el: &[u8], step: &'static str) -> Result<Success, ClientError> {
    let parsed = xml::with_parsed(el, |n| {
        if !is(&n, "success", NS_SASL2) {
            return None;
        }
        let text = |name: &str| {
            n.children()
                .find(|c| is(c, name, NS_SASL2))
                .and_then(|c| c.text())
                .map(|t| t.trim().to_string())
        };
        Some((
            text("additional-data"),
            text("authorization-identifier").unwrap_or_default(),
            n.children().any(|c| is(&c, "bound", NS_BIND2)),
            n.children()
                .find(|c| is(c, "token", NS_FAST))
                .and_then(|t| t.attribute("token"))
                .map(str::to_string),
        ))
    })?;
    let Some((data, jid, bound, token)) = parsed else {
        return Err(ClientError::Refused(step, lossy(el)));
    };
    let additional_data = match data.as_deref() {
        None | Some("") | Some("=") => Vec::new(),
        Some(b64) => base64::decode(b64)
            .map_err(|_| ClientError::Refused(step, "additional data is not base64".into()))?,
    };
    Ok(Success {
        additional_data,
        jid,
        bound,
        token,
    })
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).chars().take(300).collect()
}

/// `HMAC-SHA-256(token, label)`: the HT mechanisms without channel binding.
pub fn ht(token: &str, label: &str) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    hmac::sign(&key, label.as_bytes()).as_ref().to_vec()
}

/// How a SASL2 login authenticates.
pub enum Credentials<'a> {
    /// SCRAM-SHA-256 with the password; asks for a FAST token.
    Scram { password: &'a str },
    /// A FAST token (HT-SHA-256-NONE); asks for no new one.
    Fast { token: &'a str },
}

/// One SASL2 login on an open stream whose features are `features`:
/// authenticate with Bind 2 inline (resource tag `tag`) as the client
/// installation `agent`. The session is bound when this returns.
pub async fn login(
    conn: &mut Conn,
    target: &Target,
    features: &[u8],
    user: &str,
    agent: &str,
    tag: &str,
    credentials: Credentials<'_>,
) -> Result<Success, ClientError> {
    let offered = offer(features)
        .ok_or_else(|| ClientError::NotOffered("SASL2 (XEP-0388)".into(), Vec::new()))?;
    if !offered.bind2 {
        return Err(ClientError::NotOffered(
            "Bind 2 (XEP-0386)".into(),
            offered.mechanisms,
        ));
    }
    let t = target.step_timeout;
    let inline = format!("{}{}", user_agent(agent), bind2(tag));
    match credentials {
        Credentials::Scram { password } => {
            let mech = Mechanism::ScramSha256;
            if !offered.mechanisms.iter().any(|m| m == mech.name()) {
                return Err(ClientError::NotOffered(
                    mech.name().into(),
                    offered.mechanisms,
                ));
            }
            if !offered.fast.iter().any(|m| m == HT_MECHANISM) {
                return Err(ClientError::NotOffered(
                    format!("FAST {HT_MECHANISM}"),
                    offered.fast,
                ));
            }
            let nonce = base64::encode(&random_bytes::<18>());
            let mut scram = ScramClient::new(mech, user, &nonce);
            conn.send(
                format!(
                    "<authenticate xmlns='{NS_SASL2}' mechanism='{}'><initial-response>{}</initial-response>\
                     {inline}<request-token xmlns='{NS_FAST}' mechanism='{HT_MECHANISM}'/></authenticate>",
                    mech.name(),
                    base64::encode(&scram.first_message())
                )
                .as_bytes(),
            )
            .await?;
            let challenge = crate::conn::timeout(t, "sasl2", conn.next_element()).await?;
            if xml::local_name(&challenge) != b"challenge" {
                return Err(ClientError::Refused("sasl2", lossy(&challenge)));
            }
            let text = xml::with_parsed(&challenge, |n| n.text().unwrap_or("").trim().to_string())?;
            let server_first = base64::decode(&text)
                .map_err(|_| ClientError::Refused("sasl2", "challenge is not base64".into()))?;
            let fin = scram.final_message(&server_first, password)?;
            conn.send(
                format!(
                    "<response xmlns='{NS_SASL2}'>{}</response>",
                    base64::encode(&fin)
                )
                .as_bytes(),
            )
            .await?;
            let answer = crate::conn::timeout(t, "sasl2", conn.next_element()).await?;
            let success = parse_success(&answer, "sasl2")?;
            scram.verify(&success.additional_data)?;
            finish(success, "sasl2")
        }
        Credentials::Fast { token } => {
            if !offered.fast.iter().any(|m| m == HT_MECHANISM) {
                return Err(ClientError::NotOffered(
                    format!("FAST {HT_MECHANISM}"),
                    offered.fast,
                ));
            }
            let mut response = format!("{user}\0").into_bytes();
            response.extend_from_slice(&ht(token, "Initiator"));
            conn.send(
                format!(
                    "<authenticate xmlns='{NS_SASL2}' mechanism='{HT_MECHANISM}'><initial-response>{}</initial-response>\
                     {inline}<fast xmlns='{NS_FAST}'/></authenticate>",
                    base64::encode(&response)
                )
                .as_bytes(),
            )
            .await?;
            let answer = crate::conn::timeout(t, "fast", conn.next_element()).await?;
            let success = parse_success(&answer, "fast")?;
            if success.additional_data != ht(token, "Responder") {
                return Err(ClientError::Refused(
                    "fast",
                    "the server's responder message is wrong".into(),
                ));
            }
            finish(success, "fast")
        }
    }
}

fn finish(success: Success, step: &'static str) -> Result<Success, ClientError> {
    if !success.bound || success.jid.is_empty() {
        return Err(ClientError::Refused(
            step,
            format!("<success/> without a bound resource ({})", success.jid),
        ));
    }
    Ok(success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offer_is_read_from_the_features() {
        let features = format!(
            "<stream:features><authentication xmlns='{NS_SASL2}'><mechanism>SCRAM-SHA-256</mechanism>\
             <mechanism>PLAIN</mechanism><inline><bind xmlns='{NS_BIND2}'/><fast xmlns='{NS_FAST}'>\
             <mechanism>HT-SHA-256-NONE</mechanism></fast></inline></authentication></stream:features>"
        );
        let o = offer(features.as_bytes()).expect("an offer");
        assert_eq!(o.mechanisms, ["SCRAM-SHA-256", "PLAIN"]);
        assert!(o.bind2);
        assert_eq!(o.fast, ["HT-SHA-256-NONE"]);
        assert_eq!(offer(b"<stream:features/>"), None);
    }

    #[test]
    fn success_carries_the_jid_the_token_and_the_data() {
        let el = format!(
            "<success xmlns='{NS_SASL2}'><additional-data>{}</additional-data>\
             <authorization-identifier>a@b/t/x</authorization-identifier><bound xmlns='{NS_BIND2}'/>\
             <token xmlns='{NS_FAST}' token='tok' expiry='2030-01-01T00:00:00Z'/></success>",
            base64::encode(b"v=abc")
        );
        let s = parse_success(el.as_bytes(), "t").expect("success");
        assert_eq!(s.additional_data, b"v=abc");
        assert_eq!(s.jid, "a@b/t/x");
        assert!(s.bound);
        assert_eq!(s.token.as_deref(), Some("tok"));
        let failure = format!("<failure xmlns='{NS_SASL2}'><not-authorized/></failure>");
        assert!(parse_success(failure.as_bytes(), "t").is_err());
        assert!(finish(Success::default(), "t").is_err());
    }

    #[test]
    fn user_agent_ids_are_version_4_uuids() {
        let id = user_agent_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert!(id.split('-').map(str::len).eq([8, 4, 4, 4, 12]));
        assert_ne!(id, user_agent_id());
    }

    #[test]
    fn ht_is_hmac_sha256_keyed_by_the_token() {
        // RFC 4231 test case 2: key "Jefe".
        let mac = ht("Jefe", "what do ya want for nothing?");
        assert_eq!(
            mac.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
