//! SASL2 (XEP-0388) for the test client: `<authenticate/>` with SCRAM or a
//! FAST token (XEP-0484, HT-SHA-256-NONE), the inline requests as raw XML,
//! and the outcome.

use perch::sasl::base64;
use perch::sasl::client::ScramClient;
use perch::xml::Element;
use ring::hmac;

use super::client::Client;

pub const NS_SASL2: &str = "urn:xmpp:sasl:2";
pub const NS_BIND2: &str = "urn:xmpp:bind:0";
pub const NS_FAST: &str = "urn:xmpp:fast:0";
pub const NS_SM: &str = "urn:xmpp:sm:3";

/// A user-agent id, as clients make them (a UUID).
pub const AGENT: &str = "d4565fa7-4d72-4749-b3d3-740edbf87770";

/// `<user-agent/>` with `id`.
pub fn user_agent(id: &str) -> String {
    format!(
        "<user-agent id='{id}'><software>perch tests</software><device>CI</device></user-agent>"
    )
}

/// The text of `<name/>` (in the SASL2 namespace) of `el`.
pub fn child_text(el: &Element, name: &str) -> Option<String> {
    el.get_child(name, NS_SASL2)
        .map(|c| c.text().trim().to_string())
}

/// A SASL2 SCRAM login with `inline` added to `<authenticate/>`; returns
/// the `<success/>` (its additional data checked as the server's proof)
/// or the `<failure/>`.
pub fn authenticate_scram(client: &mut Client, scram: &mut ScramClient, inline: &str) -> Element {
    client.send(&format!(
        "<authenticate xmlns='{NS_SASL2}' mechanism='{}'><initial-response>{}</initial-response>{inline}</authenticate>",
        scram.mechanism().name(),
        base64::encode(&scram.first())
    ));
    let challenge = client.element();
    if !challenge.is("challenge", NS_SASL2) {
        return challenge;
    }
    let server_first = base64::decode(challenge.text().trim()).expect("the challenge is base64");
    let client_final = scram.final_(&server_first).expect("a valid server-first");
    client.send(&format!(
        "<response xmlns='{NS_SASL2}'>{}</response>",
        base64::encode(&client_final)
    ));
    let outcome = client.element();
    if outcome.is("success", NS_SASL2) {
        let data = child_text(&outcome, "additional-data").expect("SCRAM's server-final");
        let data = base64::decode(&data).expect("additional data is base64");
        assert!(
            scram.verify(&data),
            "the server's proof is wrong: {outcome}"
        );
    }
    outcome
}

/// `HMAC-SHA-256(token, label)`: the HT mechanism without channel binding.
pub fn ht(token: &str, label: &str) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    hmac::sign(&key, label.as_bytes()).as_ref().to_vec()
}

/// A FAST login with `token` (HT-SHA-256-NONE) and `inline`; returns the
/// `<success/>` (its responder message checked) or the `<failure/>`.
pub fn authenticate_fast(client: &mut Client, user: &str, token: &str, inline: &str) -> Element {
    let mut response = format!("{user}\0").into_bytes();
    response.extend_from_slice(&ht(token, "Initiator"));
    client.send(&format!(
        "<authenticate xmlns='{NS_SASL2}' mechanism='HT-SHA-256-NONE'><initial-response>{}</initial-response>{}<fast xmlns='{NS_FAST}'/>{inline}</authenticate>",
        base64::encode(&response),
        user_agent(AGENT),
    ));
    let outcome = client.element();
    if outcome.is("success", NS_SASL2) {
        let data = child_text(&outcome, "additional-data").expect("the responder message");
        assert_eq!(
            base64::decode(&data).expect("base64"),
            ht(token, "Responder"),
            "the server's responder message is wrong: {outcome}"
        );
    }
    outcome
}

/// The FAST token in a `<success/>`.
pub fn token(success: &Element) -> Option<String> {
    success
        .get_child("token", NS_FAST)
        .and_then(|t| t.attr("token"))
        .map(str::to_string)
}

/// The SASL condition of a SASL2 `<failure/>`.
pub fn sasl2_condition(failure: &Element) -> String {
    assert!(
        failure.is("failure", NS_SASL2),
        "expected a SASL2 failure, got {failure}"
    );
    super::failure_condition(failure)
}
