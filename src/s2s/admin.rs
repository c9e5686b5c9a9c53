//! `perch s2s list`: one line per federation link (direction, domains,
//! how the peer was authenticated, address, age, stanzas) and per
//! configured component, then the totals.

use crate::server::Server;
use crate::stream::s2s_in::AuthMethod;
use crate::upload::admin::age;

fn method(method: Option<AuthMethod>) -> &'static str {
    match method {
        Some(AuthMethod::SaslExternal) => "certificate",
        Some(AuthMethod::Dialback) => "dialback",
        None => "connecting",
    }
}

pub fn list(server: &Server) -> Vec<String> {
    let federation = server.federation();
    let mut lines = Vec::new();
    let mut outgoing = federation.outgoing_links();
    outgoing.sort_by(|a, b| (&a.remote, &a.local).cmp(&(&b.remote, &b.local)));
    for link in &outgoing {
        let state = if link.is_ready() {
            method(link.method())
        } else {
            "connecting"
        };
        lines.push(format!(
            "out {} → {} {state} {} {} {} stanzas",
            link.local,
            link.remote,
            link.address().map_or("-".to_string(), |a| a.to_string()),
            age(link.started.elapsed().as_secs(), 0),
            link.stanzas_out(),
        ));
    }
    let incoming = federation.incoming_links();
    for link in &incoming {
        let (peer, local) = link.domains().unwrap_or_else(|| ("?".into(), "?".into()));
        lines.push(format!(
            "in  {peer} → {local} {} {} {} {} stanzas",
            method(link.method()),
            link.address,
            age(link.started.elapsed().as_secs(), 0),
            link.stanzas_in(),
        ));
    }
    let mut components = 0;
    for component in server.components().iter() {
        let state = match component.connected_since() {
            Some(since) => {
                components += 1;
                format!("connected {}", age(since.elapsed().as_secs(), 0))
            }
            None => "not connected".to_string(),
        };
        lines.push(format!(
            "component {} {state} {} stanzas",
            component.domain,
            component.delivered.get()
        ));
    }
    lines.push(format!(
        "{} outgoing, {} incoming links; {components} of {} components connected",
        outgoing.len(),
        incoming.len(),
        server.components().iter().count()
    ));
    lines
}
