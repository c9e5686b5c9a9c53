//! The clients' entity capabilities (XEP-0115): one disco#info for every
//! client, its `ver` (the SHA-1 of §5.1's verification string, base64),
//! the presence that announces it, and the answer to the servers'
//! disco#info queries, which PEP services send from the account's bare
//! JID to learn which `NODE+notify` features a client has.

use crate::xml;

pub const NS_CAPS: &str = "http://jabber.org/protocol/caps";
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_TUNE: &str = "http://jabber.org/protocol/tune";
/// The software's URI in `<c node=…/>`.
pub const CAPS_NODE: &str = "https://perch.example/perch-load";

/// What every client says it is: an identity and its features.
pub struct Info {
    /// category, type, name
    pub identity: (&'static str, &'static str, &'static str),
    /// Sorted (i;octet), as §5.1 hashes them.
    pub features: Vec<String>,
    pub ver: String,
}

impl Info {
    /// A client that wants the notifications of `notify` (a node name).
    pub fn wanting(notify: &str) -> Info {
        let mut features = vec![
            NS_CAPS.to_string(),
            NS_DISCO_INFO.to_string(),
            notify.to_string(),
            format!("{notify}+notify"),
        ];
        features.sort();
        features.dedup();
        let identity = ("client", "pc", "perch-load");
        let ver = ver(&[identity], &features);
        Info {
            identity,
            features,
            ver,
        }
    }

    /// The initial presence announcing these capabilities.
    pub fn presence(&self) -> String {
        format!(
            "<presence><c xmlns='{NS_CAPS}' hash='sha-1' node='{CAPS_NODE}' ver='{}'/></presence>",
            xml::escape(&self.ver)
        )
    }

    /// `node#ver`, the disco node a server asks for.
    pub fn disco_node(&self) -> String {
        format!("{CAPS_NODE}#{}", self.ver)
    }

    /// The result of a disco#info query: `id` and `to` from the query,
    /// `node` echoed when it had one.
    pub fn answer(&self, id: &str, to: Option<&str>, node: Option<&str>) -> String {
        let mut s = String::with_capacity(512);
        s.push_str("<iq type='result' id='");
        s.push_str(&xml::escape(id));
        s.push('\'');
        if let Some(to) = to {
            s.push_str(" to='");
            s.push_str(&xml::escape(to));
            s.push('\'');
        }
        s.push_str("><query xmlns='");
        s.push_str(NS_DISCO_INFO);
        s.push('\'');
        if let Some(node) = node {
            s.push_str(" node='");
            s.push_str(&xml::escape(node));
            s.push('\'');
        }
        let (category, kind, name) = self.identity;
        s.push_str(&format!(
            "><identity category='{category}' type='{kind}' name='{name}'/>"
        ));
        for f in &self.features {
            s.push_str("<feature var='");
            s.push_str(&xml::escape(f));
            s.push_str("'/>");
        }
        s.push_str("</query></iq>");
        s
    }
}

/// XEP-0115 §5.1 with sha-1: identities `category/type/lang/name<`
/// (no xml:lang here), then each feature and `<`, all sorted.
pub fn ver(identities: &[(&str, &str, &str)], features: &[String]) -> String {
    let mut ids: Vec<String> = identities
        .iter()
        .map(|(c, t, n)| format!("{c}/{t}//{n}<"))
        .collect();
    ids.sort();
    let mut feats: Vec<&String> = features.iter().collect();
    feats.sort();
    let mut s = ids.concat();
    for f in feats {
        s.push_str(f);
        s.push('<');
    }
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, s.as_bytes());
    crate::base64::encode(digest.as_ref())
}

/// What an iq asking something of a client wants answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Ask {
    /// disco#info, with the query's `node` if any.
    DiscoInfo(Option<String>),
    /// A roster push (RFC 6121 §2.1.6) or a ping (XEP-0199): answered
    /// with an empty result.
    Empty,
    /// Anything else: `service-unavailable`.
    Other,
}

/// The answer a client owes an iq of type get or set, `None` for results
/// and errors (nothing owed).
pub fn answer_iq(info: &Info, el: &[u8]) -> Option<String> {
    let ty = xml::start_tag_attr(el, "type")?;
    if ty != b"get" && ty != b"set" {
        return None;
    }
    let id = String::from_utf8_lossy(xml::start_tag_attr(el, "id").unwrap_or_default());
    let from = xml::start_tag_attr(el, "from").map(|f| String::from_utf8_lossy(f).into_owned());
    let ask = xml::with_parsed(el, |n| {
        let Some(q) = n.first_element_child() else {
            return Ask::Other;
        };
        match (q.tag_name().namespace(), q.tag_name().name()) {
            (Some(NS_DISCO_INFO), "query") if ty == b"get" => {
                Ask::DiscoInfo(q.attribute("node").map(str::to_string))
            }
            (Some("jabber:iq:roster"), "query") if ty == b"set" => Ask::Empty,
            (Some("urn:xmpp:ping"), "ping") if ty == b"get" => Ask::Empty,
            _ => Ask::Other,
        }
    })
    .unwrap_or(Ask::Other);
    let to_attr = from
        .as_deref()
        .map(|f| format!(" to='{}'", xml::escape(f)))
        .unwrap_or_default();
    Some(match ask {
        Ask::DiscoInfo(node) => info.answer(&id, from.as_deref(), node.as_deref()),
        Ask::Empty => format!("<iq type='result' id='{}'{to_attr}/>", xml::escape(&id)),
        Ask::Other => format!(
            "<iq type='error' id='{}'{to_attr}><error type='cancel'>\
             <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
            xml::escape(&id)
        ),
    })
}

/// Is this iq a disco#info query (cheap test before `answer_iq`)?
pub fn is_disco_info_get(el: &[u8]) -> bool {
    xml::start_tag_attr(el, "type") == Some(b"get")
        && xml::find_seq(NS_DISCO_INFO.as_bytes(), el, 0).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xep_example_hashes_to_its_ver() {
        // XEP-0115 §5.2.
        let features: Vec<String> = [
            "http://jabber.org/protocol/caps",
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/disco#items",
            "http://jabber.org/protocol/muc",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            ver(&[("client", "pc", "Exodus 0.9.1")], &features),
            "QgayPKawpkPSDYmwT/WM94uAlu0="
        );
    }

    #[test]
    fn the_answer_hashes_to_the_presence_ver() {
        let info = Info::wanting(NS_TUNE);
        let presence = info.presence();
        assert!(presence.contains(&info.ver), "{presence}");
        let query = format!(
            "<iq type='get' id='disco' from='a@localhost' to='b@localhost/r'>\
             <query xmlns='{NS_DISCO_INFO}' node='{}'/></iq>",
            info.disco_node()
        );
        assert!(is_disco_info_get(query.as_bytes()));
        let answer = answer_iq(&info, query.as_bytes()).expect("owed");
        // Hash the answer's identities and features again, as a server does.
        let (ids, feats) = xml::with_parsed(answer.as_bytes(), |n| {
            let q = n.first_element_child().expect("query");
            assert_eq!(q.attribute("node"), Some(info.disco_node().as_str()));
            let ids: Vec<(String, String, String)> = q
                .children()
                .filter(|c| c.tag_name().name() == "identity")
                .map(|c| {
                    let a = |k| c.attribute(k).unwrap_or("").to_string();
                    (a("category"), a("type"), a("name"))
                })
                .collect();
            let feats: Vec<String> = q
                .children()
                .filter(|c| c.tag_name().name() == "feature")
                .filter_map(|c| c.attribute("var").map(str::to_string))
                .collect();
            (ids, feats)
        })
        .expect("parses");
        let ids: Vec<(&str, &str, &str)> = ids
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
            .collect();
        assert_eq!(ver(&ids, &feats), info.ver);
        assert!(feats.contains(&format!("{NS_TUNE}+notify")));
        assert!(answer.contains("to='a@localhost'") && answer.contains("id='disco'"));
    }

    #[test]
    fn other_iqs_get_what_they_are_owed() {
        let info = Info::wanting(NS_TUNE);
        let push = b"<iq type='set' id='p1'><query xmlns='jabber:iq:roster'><item jid='x@y'/></query></iq>";
        assert_eq!(
            answer_iq(&info, push).as_deref(),
            Some("<iq type='result' id='p1'/>")
        );
        let ping = b"<iq type='get' id='q' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>";
        assert_eq!(
            answer_iq(&info, ping).as_deref(),
            Some("<iq type='result' id='q' to='localhost'/>")
        );
        let time = b"<iq type='get' id='q' from='localhost'><time xmlns='urn:xmpp:time'/></iq>";
        let a = answer_iq(&info, time).expect("owed");
        assert!(
            a.contains("service-unavailable") && a.contains("to='localhost'"),
            "{a}"
        );
        assert_eq!(answer_iq(&info, b"<iq type='result' id='x'/>"), None);
    }
}
