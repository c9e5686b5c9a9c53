//! `perch check --compliance`: how far the configured server meets the XMPP
//! Compliance Suites 2023 (XEP-0479), from the configuration itself — a
//! feature the configuration turns off (no HTTP listener, no upload
//! service, no chat rooms) counts as missing, so the report describes the
//! server people will actually reach, not the program's capabilities.
//!
//! Only the rows that bind a server are listed (XEP-0479's "Server" and
//! "Advanced Server" columns); client-only rows (`/me`, chat states,
//! message correction…) are N/A for a server.

use crate::config::{Config, ListenerKind};

/// The suites of XEP-0479 §3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    Core,
    Web,
    Im,
    Mobile,
    Av,
}

impl Suite {
    pub const ALL: [Suite; 5] = [Suite::Core, Suite::Web, Suite::Im, Suite::Mobile, Suite::Av];

    pub fn name(self) -> &'static str {
        match self {
            Suite::Core => "Core",
            Suite::Web => "Web",
            Suite::Im => "IM",
            Suite::Mobile => "Mobile",
            Suite::Av => "A/V Calling",
        }
    }
}

/// The level a row is first required at: `Server` rows are required at
/// both levels, `Advanced` rows only at "Advanced Server".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Server,
    Advanced,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Server => "Server",
            Level::Advanced => "Advanced Server",
        }
    }
}

/// One feature row of a suite and whether this configuration offers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub suite: Suite,
    pub feature: &'static str,
    pub specs: &'static str,
    pub required_from: Level,
    /// `Err` says what is missing and how to get it.
    pub offered: Result<(), String>,
}

/// Every server row of XEP-0479, judged against `config`.
pub fn evaluate(config: &Config) -> Vec<Row> {
    use Level::{Advanced, Server};
    use Suite::{Av, Core, Im, Mobile, Web};
    let has_listener =
        |kinds: &[ListenerKind]| config.listeners.iter().any(|l| kinds.contains(&l.kind));
    let clients = if has_listener(&[ListenerKind::C2s, ListenerKind::C2sTls]) {
        Ok(())
    } else {
        Err("no c2s or c2s-tls listener: add a [[listener]] kind = \"c2s\"".to_string())
    };
    let direct_tls = if has_listener(&[ListenerKind::C2sTls]) {
        Ok(())
    } else {
        Err("no c2s-tls listener: add a [[listener]] kind = \"c2s-tls\" (port 5223)".to_string())
    };
    let components = if has_listener(&[ListenerKind::Component]) {
        Ok(())
    } else {
        Err("no component listener: add a [[listener]] kind = \"component\" on loopback and a [[component]]".to_string())
    };
    let web = if has_listener(&[ListenerKind::Http, ListenerKind::Https]) {
        Ok(())
    } else {
        Err(
            "no http or https listener: add a [[listener]] kind = \"http\" (WebSocket and BOSH)"
                .to_string(),
        )
    };
    let rooms = if config.hosts.iter().any(|h| h.muc.is_some()) {
        Ok(())
    } else {
        Err("no host has chat rooms: set muc = \"conference.DOMAIN\" in a [[host]]".to_string())
    };
    let upload = match (config.hosts.iter().any(|h| h.upload.is_some()), &web) {
        (true, Ok(())) => Ok(()),
        (false, _) => Err(
            "no host has an upload service: set upload = \"upload.DOMAIN\" in a [[host]]"
                .to_string(),
        ),
        (true, Err(_)) => Err(
            "the upload service needs an http or https listener for its PUT and GET URLs"
                .to_string(),
        ),
    };
    let turn = if config.external_services.is_empty() {
        Err(
            "no [[external_service]]: name your STUN/TURN server so clients can place calls"
                .to_string(),
        )
    } else {
        Ok(())
    };
    let yes = || Ok(());
    let row = |suite, feature, specs, required_from, offered| Row {
        suite,
        feature,
        specs,
        required_from,
        offered,
    };
    vec![
        row(Core, "Core features", "RFC 6120", Server, clients.clone()),
        row(Core, "TLS", "RFC 7590", Server, clients),
        row(Core, "Direct TLS", "XEP-0368", Advanced, direct_tls),
        row(Core, "Feature discovery", "XEP-0030", Server, yes()),
        row(Core, "Feature broadcasts", "XEP-0115", Advanced, yes()),
        row(Core, "Server extensibility", "XEP-0114", Server, components),
        row(Core, "Event publishing", "XEP-0163", Advanced, yes()),
        row(
            Web,
            "Web connection mechanisms",
            "RFC 7395, XEP-0206",
            Server,
            web,
        ),
        row(Im, "Core features", "RFC 6121", Server, yes()),
        row(
            Im,
            "User avatar compatibility",
            "XEP-0398, XEP-0153",
            Advanced,
            yes(),
        ),
        row(Im, "vcard-temp", "XEP-0054", Server, yes()),
        row(
            Im,
            "Outbound message synchronization",
            "XEP-0280",
            Server,
            yes(),
        ),
        row(Im, "User blocking", "XEP-0191", Advanced, yes()),
        row(
            Im,
            "Group chat",
            "XEP-0045, XEP-0249",
            Server,
            rooms.clone(),
        ),
        row(
            Im,
            "Advanced group chat",
            "XEP-0048, XEP-0313, XEP-0402, XEP-0410",
            Advanced,
            rooms,
        ),
        row(Im, "Private data via PubSub", "XEP-0223", Advanced, yes()),
        row(Im, "Private XML storage", "XEP-0049", Advanced, yes()),
        row(Im, "Stream management", "XEP-0198", Advanced, yes()),
        row(
            Im,
            "History storage / retrieval",
            "XEP-0313",
            Advanced,
            yes(),
        ),
        row(Im, "File upload", "XEP-0363", Server, upload),
        row(Mobile, "Stream management", "XEP-0198", Server, yes()),
        row(Mobile, "Client state indication", "XEP-0352", Server, yes()),
        row(
            Mobile,
            "Third-party push notifications",
            "XEP-0357",
            Advanced,
            yes(),
        ),
        row(Av, "STUN/TURN server discovery", "XEP-0215", Server, turn),
    ]
}

/// The highest level of `suite` this configuration reaches: every row of
/// the Core suite and of `suite` required at that level is offered (XEP-0479
/// §3: each suite includes the Core one).
pub fn level(rows: &[Row], suite: Suite) -> Option<Level> {
    let reaches = |level: Level| {
        rows.iter()
            .filter(|r| r.suite == suite || r.suite == Suite::Core)
            .filter(|r| r.required_from <= level)
            .all(|r| r.offered.is_ok())
    };
    [Level::Advanced, Level::Server]
        .into_iter()
        .find(|&l| reaches(l))
}

/// What keeps `suite` from the next level up: the missing rows of Core and
/// of `suite` required at that level.
pub fn missing_for(rows: &[Row], suite: Suite, level: Level) -> Vec<&Row> {
    rows.iter()
        .filter(|r| r.suite == suite || r.suite == Suite::Core)
        .filter(|r| r.required_from <= level && r.offered.is_err())
        .collect()
}

/// The report as lines for a terminal: one table per suite, then the
/// verdicts with what is missing named.
pub fn render(rows: &[Row]) -> Vec<String> {
    let mut out = vec![
        "XMPP Compliance Suites 2023 (XEP-0479), server columns, for this configuration"
            .to_string(),
    ];
    let width = rows.iter().map(|r| r.feature.len()).max().unwrap_or(0);
    let specs_width = rows.iter().map(|r| r.specs.len()).max().unwrap_or(0);
    for suite in Suite::ALL {
        out.push(String::new());
        out.push(suite.name().to_string());
        for r in rows.iter().filter(|r| r.suite == suite) {
            let needed = match r.required_from {
                Level::Server => "Server+",
                Level::Advanced => "Advanced",
            };
            let mark = if r.offered.is_ok() { "yes" } else { "NO " };
            let mut line = format!(
                "  {mark}  {:width$}  {:specs_width$}  {needed}",
                r.feature, r.specs
            );
            if let Err(why) = &r.offered {
                line.push_str(&format!("\n         ({why})"));
            }
            out.push(line);
        }
    }
    out.push(String::new());
    out.push("Result".to_string());
    for suite in Suite::ALL {
        let reached = level(rows, suite);
        let name = reached.map_or("not compliant", Level::name);
        let next = match reached {
            Some(Level::Advanced) => None,
            Some(Level::Server) => Some(Level::Advanced),
            None => Some(Level::Server),
        };
        let mut line = format!("  {:12} {name}", suite.name());
        if let Some(next) = next {
            let missing: Vec<&str> = missing_for(rows, suite, next)
                .iter()
                .map(|r| r.feature)
                .collect();
            line.push_str(&format!(" (for {}: {})", next.name(), missing.join(", ")));
        }
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ListenerConfig;

    fn config(text: &str) -> Config {
        Config::from_toml_str(text, "perch.toml").expect("valid configuration")
    }

    #[test]
    fn defaults_lack_only_components_and_calls() {
        let rows = evaluate(&Config::default());
        let missing: Vec<&str> = rows
            .iter()
            .filter(|r| r.offered.is_err())
            .map(|r| r.specs)
            .collect();
        assert_eq!(missing, ["XEP-0114", "XEP-0215"]);
        // Without a component listener even Core is not met.
        assert_eq!(level(&rows, Suite::Core), None);
        assert_eq!(level(&rows, Suite::Web), None);
    }

    #[test]
    fn a_full_configuration_is_advanced_in_every_suite() {
        let mut c = Config::default();
        c.listeners.push(ListenerConfig {
            kind: ListenerKind::Component,
            address: "127.0.0.1:5347".parse().unwrap(),
        });
        c.external_services = config(
            "[[external_service]]\ntype = \"stun\"\nhost = \"turn.example.org\"\nport = 3478\n",
        )
        .external_services;
        let rows = evaluate(&c);
        for suite in Suite::ALL {
            assert_eq!(level(&rows, suite), Some(Level::Advanced), "{suite:?}");
            assert!(missing_for(&rows, suite, Level::Advanced).is_empty());
        }
        let text = render(&rows).join("\n");
        assert!(!text.contains("NO "), "{text}");
        assert!(text.contains("Mobile       Advanced Server\n"), "{text}");
        assert!(text.contains("IM           Advanced Server\n"), "{text}");
    }

    #[test]
    fn switched_off_services_are_missing_with_the_fix_named() {
        let mut c = Config::default();
        c.listeners.retain(|l| l.kind != ListenerKind::Http);
        for h in &mut c.hosts {
            h.muc = None;
        }
        let rows = evaluate(&c);
        let why = |specs: &str| {
            rows.iter()
                .find(|r| r.specs == specs)
                .and_then(|r| r.offered.clone().err())
                .unwrap_or_default()
        };
        assert!(why("RFC 7395, XEP-0206").contains("kind = \"http\""));
        assert!(why("XEP-0363").contains("needs an http or https listener"));
        assert!(why("XEP-0045, XEP-0249").contains("muc = "));
        assert!(why("XEP-0368").is_empty(), "direct TLS is on by default");
        let missing = missing_for(&rows, Suite::Im, Level::Server);
        let names: Vec<&str> = missing.iter().map(|r| r.feature).collect();
        assert_eq!(
            names,
            ["Server extensibility", "Group chat", "File upload"],
            "Core's rows count for every suite"
        );
    }

    #[test]
    fn no_client_listener_fails_core() {
        let mut c = Config::default();
        c.listeners
            .retain(|l| !matches!(l.kind, ListenerKind::C2s | ListenerKind::C2sTls));
        let rows = evaluate(&c);
        assert!(rows[0].offered.is_err() && rows[1].offered.is_err());
        assert_eq!(level(&rows, Suite::Core), None);
    }
}
