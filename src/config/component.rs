//! `[[component]]`: external components (XEP-0114), programs such as an
//! IRC gateway that connect to the `component` listener and answer for a
//! domain of their own.

use super::addresses::check_domain;
use super::toml_reader::TableReader;

/// Shortest secret accepted: the handshake is a SHA-1 over it, so a short
/// one can be guessed offline from one captured handshake.
const MIN_SECRET_LEN: usize = 12;

#[derive(Clone, PartialEq, Eq)]
pub struct ComponentConfig {
    /// The domain the component answers for (`irc.example.org`).
    pub domain: String,
    /// The shared secret of the handshake.
    pub secret: String,
    /// The user host whose disco#items lists the component; by default the
    /// host the domain is a subdomain of, else the first host.
    pub parent: Option<String>,
    /// The name shown in disco#items.
    pub name: String,
}

/// The secret stays out of logs and `Debug` output.
impl std::fmt::Debug for ComponentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentConfig")
            .field("domain", &self.domain)
            .field("parent", &self.parent)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ComponentConfig {
    pub(super) fn read(table: &mut TableReader<'_, '_>) -> Option<ComponentConfig> {
        let domain = table.required_string("domain");
        let secret = table.required_string("secret");
        let parent = table.string("host");
        let name = table.string("name");
        let domain_text = domain?;
        let domain = match check_domain(domain_text.get_ref()) {
            Ok(d) => d,
            Err(why) => {
                table.problem(
                    domain_text.span(),
                    format_args!("component.domain: {:?} {why}", domain_text.get_ref()),
                );
                return None;
            }
        };
        let secret = secret?;
        if secret.get_ref().len() < MIN_SECRET_LEN {
            table.problem(
                secret.span(),
                format_args!(
                    "component.secret: use at least {MIN_SECRET_LEN} characters (for example the output of `openssl rand -hex 16`)"
                ),
            );
            return None;
        }
        Some(ComponentConfig {
            name: name.map_or_else(|| domain.clone(), |n| n.into_inner()),
            domain,
            secret: secret.into_inner(),
            parent: parent.map(|p| p.into_inner().to_ascii_lowercase()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, problems};

    #[test]
    fn a_component_needs_a_domain_and_a_long_secret() {
        let config = parse(
            "[[component]]\ndomain = \"IRC.localhost\"\nsecret = \"0123456789abcdef\"\nname = \"IRC\"\n",
        )
        .unwrap();
        assert_eq!(config.components[0].domain, "irc.localhost");
        assert_eq!(config.components[0].name, "IRC");
        assert!(!format!("{:?}", config.components[0]).contains("0123456789"));
        let found = problems("[[component]]\ndomain = \"a b\"\nsecret = \"short\"\n").join("\n");
        assert!(found.contains("component.domain"), "{found}");
        let found =
            problems("[[component]]\ndomain = \"x.localhost\"\nsecret = \"short\"\n").join("\n");
        assert!(found.contains("component.secret"), "{found}");
    }
}
