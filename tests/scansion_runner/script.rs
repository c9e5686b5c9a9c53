//! The `.scs` script parser (FORMAT.md §1–2): client declarations, actions,
//! their indented data blocks, `${Name's JID}` substitution and the XML of a
//! block.

use std::fmt;

use super::tree::{CLIENT_NS, SCANSION_NS, STREAM_NS, XElem, XNode};

/// A parsed script. XML blocks are kept as text: they are parsed at the step
/// that uses them, after `${…}` substitution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// The first `#` comment, if the file starts with one.
    pub title: Option<String>,
    /// Perch's own extension: the text after `# perch-config:` on each such
    /// comment line, in order, as TOML lines for the test server's config
    /// (e.g. `# perch-config: [im]` then `# perch-config: roster_max_items = 3`).
    /// Other runners see ordinary comments.
    pub server_config: Vec<String>,
    pub clients: Vec<ClientDecl>,
    pub steps: Vec<Step>,
}

/// A `[Client] Name` declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientDecl {
    pub name: String,
    /// As written, possibly with a resource.
    pub jid: String,
    pub password: String,
    /// The `resource:` key.
    pub resource: Option<String>,
    pub line: usize,
}

impl ClientDecl {
    /// The JID without its resource.
    pub fn bare_jid(&self) -> &str {
        self.jid.split_once('/').map_or(&self.jid, |(bare, _)| bare)
    }

    /// The localpart (the SASL authentication identity).
    pub fn localpart(&self) -> &str {
        self.bare_jid()
            .split_once('@')
            .map_or("", |(local, _)| local)
    }

    /// The domain part: the stream's `to`.
    pub fn domain(&self) -> &str {
        let bare = self.bare_jid();
        bare.split_once('@').map_or(bare, |(_, domain)| domain)
    }

    /// The resource to request at bind time: `resource:` first, then the
    /// JID's own resource; `None` lets the server choose.
    pub fn requested_resource(&self) -> Option<&str> {
        self.resource
            .as_deref()
            .or_else(|| self.jid.split_once('/').map(|(_, r)| r))
    }
}

/// One action line and its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// 1-based line of the action.
    pub line: usize,
    /// The action line as written (trimmed), for messages.
    pub source: String,
    pub client: String,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Connects,
    Disconnects,
    Sends(Block),
    Receives(Block),
    /// `X receives: nothing`.
    ReceivesNothing,
}

/// The raw text of a data block; line `k` (1-based) of `text` is script line
/// `first_line + k - 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub first_line: usize,
    pub text: String,
}

/// A syntax error with its 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ScriptError {}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, ScriptError> {
    Err(ScriptError {
        line,
        message: message.into(),
    })
}

/// Marks a comment line that carries a line of server configuration.
pub const SERVER_CONFIG_PREFIX: &str = "perch-config:";

/// What the last non-indented line opened, i.e. who owns indented lines.
enum Owner {
    Nothing,
    Client(usize),
    Step { index: usize, takes_data: bool },
}

/// Parses a script (FORMAT.md §1) and checks that every block's XML is
/// well-formed and that every `${…}` names a declared client.
pub fn parse_script(text: &str) -> Result<Script, ScriptError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut script = Script {
        title: None,
        server_config: Vec::new(),
        clients: Vec::new(),
        steps: Vec::new(),
    };
    // Lines of the block being collected, as (line number, text).
    let mut block: Vec<(usize, String)> = Vec::new();
    let mut owner = Owner::Nothing;
    let mut seen_anything = false;

    for (index, raw) in text.split('\n').enumerate() {
        let lineno = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);

        if line.trim().is_empty() {
            // Blank lines never end a block; they are kept inside one.
            if matches!(owner, Owner::Step { .. }) {
                block.push((lineno, String::new()));
            }
            continue;
        }

        if line.starts_with([' ', '\t']) {
            match owner {
                Owner::Nothing => {
                    return err(lineno, "indented line that belongs to no client or action");
                }
                Owner::Client(c) => parse_client_key(&mut script.clients[c], lineno, line.trim())?,
                Owner::Step {
                    takes_data: false,
                    index,
                } => {
                    return err(
                        lineno,
                        format!(
                            "indented data after `{}`, which takes none",
                            script.steps[index].source
                        ),
                    );
                }
                Owner::Step { .. } => block.push((lineno, line.to_string())),
            }
            continue;
        }

        // A non-indented line ends the current block.
        finish_block(&mut script, &owner, &mut block)?;
        owner = Owner::Nothing;
        let line = line.trim_end();

        if let Some(comment) = line.strip_prefix('#') {
            if let Some(setting) = comment.trim_start().strip_prefix(SERVER_CONFIG_PREFIX) {
                script.server_config.push(setting.trim().to_string());
            } else if !seen_anything && script.title.is_none() {
                script.title = Some(comment.trim().to_string());
            }
        } else if line.starts_with("//") {
            // comment
        } else if line.starts_with("--") {
            // `-----` separator or `-- comment`: nothing to do either way.
        } else if let Some(rest) = line.strip_prefix('[') {
            let Some((kind, name)) = rest.split_once(']') else {
                return err(lineno, "unterminated `[` in an object declaration");
            };
            if kind.trim() != "Client" {
                return err(
                    lineno,
                    format!("unknown object type [{kind}]: only [Client] is supported"),
                );
            }
            let name = name.trim();
            if name.is_empty() {
                return err(lineno, "[Client] without a name");
            }
            if script.clients.iter().any(|c| c.name == name) {
                return err(lineno, format!("client {name:?} is declared twice"));
            }
            script.clients.push(ClientDecl {
                name: name.to_string(),
                jid: String::new(),
                password: String::new(),
                resource: None,
                line: lineno,
            });
            owner = Owner::Client(script.clients.len() - 1);
        } else {
            let step = parse_action(&script.clients, lineno, line)?;
            let takes_data = matches!(step.action, Action::Sends(_) | Action::Receives(_));
            if let Action::Sends(b) | Action::Receives(b) = &step.action
                && !b.text.is_empty()
            {
                // Data on the action line itself starts the block.
                block.push((lineno, b.text.clone()));
            }
            script.steps.push(step);
            owner = Owner::Step {
                index: script.steps.len() - 1,
                takes_data,
            };
        }
        seen_anything = true;
    }
    finish_block(&mut script, &owner, &mut block)?;

    for c in &script.clients {
        if c.jid.is_empty() {
            return err(c.line, format!("client {:?} has no `jid:`", c.name));
        }
        if !c.bare_jid().contains('@') {
            return err(
                c.line,
                format!("client {:?}: jid {:?} has no localpart", c.name, c.jid),
            );
        }
        if c.password.is_empty() {
            return err(c.line, format!("client {:?} has no `password:`", c.name));
        }
    }
    check_blocks(&script)?;
    Ok(script)
}

fn parse_client_key(client: &mut ClientDecl, lineno: usize, line: &str) -> Result<(), ScriptError> {
    let Some((key, value)) = line.split_once(':') else {
        return err(
            lineno,
            format!("expected `key: value` in [Client] {}", client.name),
        );
    };
    let value = value.trim().to_string();
    match key.trim() {
        "jid" => client.jid = value,
        "password" => client.password = value,
        "resource" => client.resource = Some(value),
        other => {
            return err(
                lineno,
                format!(
                    "unknown key {other:?} in [Client] {} (known: jid, password, resource)",
                    client.name
                ),
            );
        }
    }
    Ok(())
}

/// Parses `<Name> <verb>[:] [data]`. The name must be a declared client; the
/// longest matching name wins, so `Juliet's phone` is not read as `Juliet`.
fn parse_action(clients: &[ClientDecl], lineno: usize, line: &str) -> Result<Step, ScriptError> {
    let mut best: Option<(&ClientDecl, &str)> = None;
    for c in clients {
        if let Some(rest) = line.strip_prefix(c.name.as_str())
            && rest.starts_with([' ', '\t'])
            && best.is_none_or(|(b, _)| b.name.len() < c.name.len())
        {
            best = Some((c, rest.trim()));
        }
    }
    let Some((client, rest)) = best else {
        return err(
            lineno,
            format!("not a comment, declaration or action of a declared client: {line:?}"),
        );
    };
    let (verb, data) = match rest.split_once(char::is_whitespace) {
        Some((verb, data)) => (verb, data.trim()),
        None => (rest, ""),
    };
    let (verb, data) = match verb.split_once(':') {
        // `receives:nothing` or `sends:<presence/>`
        Some((verb, after)) if !after.is_empty() => {
            (verb, format!("{after} {data}").trim().to_string())
        }
        Some((verb, _)) => (verb, data.to_string()),
        None => (verb, data.to_string()),
    };
    let block = Block {
        first_line: lineno,
        text: data.clone(),
    };
    let action = match verb {
        "connects" | "disconnects" if !data.is_empty() => {
            return err(lineno, format!("`{verb}` takes no data, found {data:?}"));
        }
        "connects" => Action::Connects,
        "disconnects" => Action::Disconnects,
        "sends" => Action::Sends(block),
        "receives" if data == "nothing" => Action::ReceivesNothing,
        "receives" => Action::Receives(block),
        other => {
            return err(
                lineno,
                format!(
                    "unknown action {other:?} (expected connects, disconnects, sends: or receives:)"
                ),
            );
        }
    };
    Ok(Step {
        line: lineno,
        source: line.trim().to_string(),
        client: client.name.clone(),
        action,
    })
}

/// Stores the collected lines into the step that owns them.
fn finish_block(
    script: &mut Script,
    owner: &Owner,
    lines: &mut Vec<(usize, String)>,
) -> Result<(), ScriptError> {
    let Owner::Step {
        index,
        takes_data: true,
    } = *owner
    else {
        lines.clear();
        return Ok(());
    };
    let step = &mut script.steps[index];
    while lines.last().is_some_and(|(_, l)| l.trim().is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        return err(step.line, format!("`{}` has no data block", step.source));
    }
    if let Action::Sends(block) | Action::Receives(block) = &mut step.action {
        block.first_line = lines[0].0;
        block.text = lines
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n");
    }
    lines.clear();
    Ok(())
}

/// Parses every block once with placeholder JIDs, so that malformed XML and
/// unknown `${…}` names are reported before anything connects.
fn check_blocks(script: &Script) -> Result<(), ScriptError> {
    for step in &script.steps {
        if let Action::Sends(block) | Action::Receives(block) = &step.action {
            let text = substitute(&block.text, |name, full| {
                let client = script
                    .clients
                    .iter()
                    .find(|c| c.name == name)
                    .ok_or_else(|| format!("no client named {name:?}"))?;
                Ok(if full {
                    format!("{}/placeholder", client.bare_jid())
                } else {
                    client.bare_jid().to_string()
                })
            })
            .map_err(|message| ScriptError {
                line: block.first_line,
                message,
            })?;
            parse_block(&text, block.first_line)?;
        }
    }
    Ok(())
}

/// Replaces each `${<Name>'s JID}` / `${<Name>'s full JID}`, splitting at the
/// last `'s `. `lookup(name, full)` gives the value, which is XML-escaped.
pub fn substitute(
    text: &str,
    mut lookup: impl FnMut(&str, bool) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unterminated variable `${{{after}`"));
        };
        let expr = &after[..end];
        let Some(split) = expr.rfind("'s ") else {
            return Err(format!(
                "unknown variable `${{{expr}}}`: expected `${{Name's JID}}` or `${{Name's full JID}}`"
            ));
        };
        let (name, what) = (&expr[..split], &expr[split + 3..]);
        let full = match what {
            "JID" => false,
            "full JID" => true,
            _ => {
                return Err(format!(
                    "unknown variable `${{{expr}}}`: expected `${{Name's JID}}` or `${{Name's full JID}}`"
                ));
            }
        };
        out.push_str(&super::tree::escape(&lookup(name, full)?));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses a (substituted) block into its top-level elements. The block is
/// wrapped in an element that makes `jabber:client` the default namespace
/// and binds the `scansion:` and `stream:` prefixes.
pub fn parse_block(text: &str, first_line: usize) -> Result<Vec<XElem>, ScriptError> {
    let wrapped = format!(
        "<scansion-block xmlns='{CLIENT_NS}' xmlns:scansion='{SCANSION_NS}' xmlns:stream='{STREAM_NS}'>\n{text}\n</scansion-block>"
    );
    let doc = roxmltree::Document::parse(&wrapped).map_err(|e| {
        let row = e.pos().row as usize;
        ScriptError {
            line: (first_line + row).saturating_sub(2).max(first_line),
            message: format!("malformed XML: {e} (row {row} of the block counted from 2)"),
        }
    })?;
    let mut out = Vec::new();
    for node in doc.root_element().children() {
        if node.is_element() {
            let mut elem = XElem::from_roxml(node).map_err(|message| ScriptError {
                line: first_line + node_row(&doc, node).saturating_sub(2),
                message,
            })?;
            elem.drop_whitespace_text();
            out.push(elem);
        } else if node.is_text() && !node.text().unwrap_or("").trim().is_empty() {
            return Err(ScriptError {
                line: first_line + node_row(&doc, node).saturating_sub(2),
                message: format!(
                    "text outside any element: {:?}",
                    node.text().unwrap_or("").trim()
                ),
            });
        }
    }
    if out.is_empty() {
        return err(first_line, "data block holds no element");
    }
    Ok(out)
}

fn node_row(doc: &roxmltree::Document<'_>, node: roxmltree::Node<'_, '_>) -> usize {
    doc.text_pos_at(node.range().start).row as usize
}

/// Whether an element tree contains text anywhere (used by tests).
#[cfg(test)]
fn has_text(e: &XElem) -> bool {
    e.nodes.iter().any(|n| match n {
        XNode::Text(_) => true,
        XNode::Elem(c) => has_text(c),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[&str] = &[
        "# Title here",
        "",
        "[Client] Romeo",
        "\tjid: romeo@localhost",
        "\tpassword: password",
        "",
        "[Client] Juliet's phone",
        "  jid: juliet@localhost/laptop",
        "  password: secret",
        "  resource: mobile",
        "",
        "// a comment",
        "-- another comment",
        "--",
        "-----",
        "---------",
        "Romeo connects",
        "Juliet's phone connects",
        "",
        "# comment between actions",
        "Romeo sends:",
        "\t<presence/>",
        "",
        "\t<iq type='get' id='1'>",
        "\t\t<query xmlns='jabber:iq:version'/>",
        "\t</iq>",
        "",
        "Juliet's phone receives",
        "\t<message from=\"${Romeo's full JID}\" to=\"${Juliet's phone's JID}\">",
        "\t\t<body>It&apos;s me</body>",
        "\t</message>",
        "Romeo receives: nothing",
        "Romeo disconnects",
        "Romeo disconnects",
    ];

    fn parsed() -> Script {
        parse_script(&(SAMPLE.join("\n") + "\n")).expect("sample script parses")
    }

    #[test]
    fn perch_config_comments_are_collected() {
        let s = parse_script(
            "# Title\n# perch-config: [im]\n#perch-config:  roster_max_items = 3 \n# plain\n[Client] A\n\tjid: a@localhost\n\tpassword: p\n",
        )
        .expect("parses");
        assert_eq!(s.title.as_deref(), Some("Title"));
        assert_eq!(s.server_config, vec!["[im]", "roster_max_items = 3"]);
        assert!(parsed().server_config.is_empty());
    }

    #[test]
    fn parses_title_and_clients() {
        let s = parsed();
        assert_eq!(s.title.as_deref(), Some("Title here"));
        assert_eq!(s.clients.len(), 2);
        assert_eq!(s.clients[0].name, "Romeo");
        assert_eq!(s.clients[0].requested_resource(), None);
        let phone = &s.clients[1];
        assert_eq!(phone.name, "Juliet's phone");
        assert_eq!(phone.password, "secret");
        assert_eq!(phone.bare_jid(), "juliet@localhost");
        assert_eq!(phone.localpart(), "juliet");
        assert_eq!(phone.domain(), "localhost");
        assert_eq!(phone.requested_resource(), Some("mobile"));
        let mut laptop = phone.clone();
        laptop.resource = None;
        assert_eq!(laptop.requested_resource(), Some("laptop"));
    }

    #[test]
    fn parses_actions_with_optional_colon_and_names_with_spaces() {
        let s = parsed();
        let kinds: Vec<(&str, &str, usize)> = s
            .steps
            .iter()
            .map(|st| {
                let k = match st.action {
                    Action::Connects => "connects",
                    Action::Disconnects => "disconnects",
                    Action::Sends(_) => "sends",
                    Action::Receives(_) => "receives",
                    Action::ReceivesNothing => "nothing",
                };
                (st.client.as_str(), k, st.line)
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("Romeo", "connects", 17),
                ("Juliet's phone", "connects", 18),
                ("Romeo", "sends", 21),
                ("Juliet's phone", "receives", 28),
                ("Romeo", "nothing", 32),
                ("Romeo", "disconnects", 33),
                ("Romeo", "disconnects", 34),
            ]
        );
        assert_eq!(s.steps[3].source, "Juliet's phone receives");
    }

    #[test]
    fn multi_element_blocks_keep_blank_lines_and_line_numbers() {
        let s = parsed();
        let Action::Sends(block) = &s.steps[2].action else {
            panic!("step 3 is a send");
        };
        assert_eq!(block.first_line, 22);
        let elems = parse_block(&block.text, block.first_line).expect("block parses");
        assert_eq!(elems.len(), 2);
        assert_eq!(elems[0].name, "presence");
        assert_eq!(elems[0].ns, "jabber:client");
        assert_eq!(elems[1].name, "iq");
        let q = elems[1].children().next().expect("iq has a query");
        assert_eq!(q.ns, "jabber:iq:version");
        assert!(!has_text(&elems[1]), "indentation is dropped");
    }

    #[test]
    fn substitution_splits_at_last_s_and_escapes() {
        let out = substitute(
            "a ${Juliet's phone's full JID} b ${Romeo's JID} $x",
            |name, full| Ok(format!("{name}|{full}|<&'\">")),
        )
        .expect("substitutes");
        assert_eq!(
            out,
            "a Juliet&apos;s phone|true|&lt;&amp;&apos;&quot;&gt; b Romeo|false|&lt;&amp;&apos;&quot;&gt; $x"
        );
        assert!(substitute("${Romeo's nick}", |_, _| Ok(String::new())).is_err());
        assert!(substitute("${Romeo}", |_, _| Ok(String::new())).is_err());
        assert!(substitute("${Romeo's JID", |_, _| Ok(String::new())).is_err());
        assert!(substitute("${Nobody's JID}", |n, _| Err(format!("no {n}"))).is_err());
    }

    #[test]
    fn entities_strict_and_stream_prefix() {
        let elems = parse_block(
            "\t<presence xmlns:stream='http://etherx.jabber.org/streams' id='a'>\n\t\t<x xmlns='urn:x' scansion:strict='true'><y>It&apos;s</y></x>\n\t</presence>",
            5,
        )
        .expect("parses");
        let p = &elems[0];
        assert_eq!(p.attrs, vec![("id".to_string(), "a".to_string())]);
        let x = p.child("x", "urn:x").expect("x");
        assert_eq!(x.strict, Some(true));
        assert!(x.attrs.is_empty());
        let y = x.child("y", "urn:x").expect("y inherits the namespace");
        assert_eq!(y.text(), "It's");
        let sample = parse_block("<stream:error><x/></stream:error>", 1).expect("parses");
        assert_eq!(sample[0].ns, STREAM_NS);
    }

    #[test]
    fn xml_errors_point_at_the_script_line() {
        let e = parse_script(
            "[Client] A\n\tjid: a@localhost\n\tpassword: p\nA sends:\n\t<presence>\n\t</iq>\n",
        )
        .expect_err("mismatched tags");
        assert_eq!(e.line, 6, "{e}");
    }

    #[test]
    fn rejects_malformed_scripts() {
        let bad = [
            ("\tjid: a@localhost\n", 1),
            (
                "[Client] A\n\tjid: a@localhost\n\tpassword: p\nB connects\n",
                4,
            ),
            (
                "[Client] A\n\tjid: a@localhost\n\tpassword: p\nA jumps\n",
                4,
            ),
            (
                "[Client] A\n\tjid: a@localhost\n\tpassword: p\nA sends:\n\nA connects\n",
                4,
            ),
            (
                "[Client] A\n\tjid: a@localhost\n\tpassword: p\nA connects\n\t<presence/>\n",
                5,
            ),
            (
                "[Client] A\n\tjid: a@localhost\n\tpassword: p\nA receives: nothing\n\t<presence/>\n",
                5,
            ),
            (
                "[Client] A\n\tjid: a@localhost\n\tpassword: p\n\tcolour: red\n",
                4,
            ),
            ("[Client] A\n\tpassword: p\n", 1),
            ("[Client] A\n\tjid: a@localhost\n", 1),
            (
                "[Client] A\n\tjid: a@localhost\n\tpassword: p\n[Client] A\n",
                4,
            ),
            ("[Server] A\n", 1),
            (
                "[Client] A\n\tjid: a@localhost\n\tpassword: p\nA sends:\n\t<presence to='${B's JID}'/>\n",
                5,
            ),
            (
                "[Client] A\n\tjid: a@localhost\n\tpassword: p\nA sends:\n\tjust text\n",
                5,
            ),
        ];
        for (text, line) in bad {
            let e = parse_script(text).expect_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
    }

    #[test]
    fn crlf_and_inline_data() {
        let s = parse_script("[Client] A\r\n\tjid: a@localhost\r\n\tpassword: p\r\nA sends: <presence/>\r\nA receives:\t<presence/>\r\n")
            .expect("parses");
        let Action::Sends(b) = &s.steps[0].action else {
            panic!("a send");
        };
        assert_eq!((b.first_line, b.text.as_str()), (4, "<presence/>"));
        assert!(matches!(&s.steps[1].action, Action::Receives(b) if b.text == "<presence/>"));
    }

    #[test]
    fn longest_client_name_wins() {
        let s = parse_script(
            "[Client] Juliet\n\tjid: j@localhost\n\tpassword: p\n[Client] Juliet's phone\n\tjid: j@localhost\n\tpassword: p\nJuliet's phone connects\nJuliet connects\n",
        )
        .expect("parses");
        assert_eq!(s.steps[0].client, "Juliet's phone");
        assert_eq!(s.steps[1].client, "Juliet");
    }

    /// Every script in the shared corpus must parse.
    #[test]
    fn shared_corpus_parses() {
        let Some(dir) = super::super::shared_dir() else {
            return;
        };
        let mut count = 0;
        for path in super::super::scs_files(&dir).expect("shared scansion folder is readable") {
            let text = std::fs::read_to_string(&path).expect("script is readable UTF-8");
            if let Err(e) = parse_script(&text) {
                panic!("{}: {e}", path.display());
            }
            count += 1;
        }
        assert!(count > 0, "no script in {}", dir.display());
    }
}
