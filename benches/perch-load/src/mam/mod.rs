//! `mam`: what a message archive (XEP-0313) costs, on any server that has
//! one. One account (`<prefix><first-user>`, the owner) and one persistent
//! room get their archives filled over XMPP to each of `--sizes` (10 000,
//! 100 000, 1 000 000 messages), and at each size the tool times queries a
//! client makes: the newest page, the newest page with one contact (in the
//! room: one occupant), the page after an id, the first page since a date,
//! and the count alone. Then it writes more messages with 50 senders, with
//! one sender and in the room, counting the server's fsyncs.
//!
//! How the archives are filled:
//! - 1:1: the `--contacts` (100) accounts send chat messages to the owner's
//!   bare JID, each writing chunks of 100 with at most `--fill-window`
//!   (500) not yet received by the owner, who is online and reads them.
//!   When both parties are local accounts a server archives a message
//!   twice, in the sender's archive and the recipient's; the contacts set
//!   their archiving preference to `never` first (XEP-0313 `<prefs
//!   default='never'/>`, the owner's to `always`), so each message is
//!   archived once, in the owner's archive, and the figures are per
//!   archived message.
//! - The room: the owner creates `--room` (mambench) at the MUC service,
//!   configures it persistent with archiving on
//!   (`muc#roomconfig_persistentroom`, `muc#roomconfig_enablearchiving`)
//!   and leaves; `--room-senders` (5) contacts join and send groupchat
//!   messages, each confirmed by its reflection.
//!
//! A fill tops the archive up to the size from what the server says it
//! holds (`<count/>` of a query with `<max>0</max>`), so a second run on a
//! server that counts goes on where the first stopped. A server may leave
//! the count out (Perch does past 250 messages); then the tool counts what
//! it confirmed itself, which needs an archive that was empty when the run
//! began (it fails otherwise), and the records say `counted_by: tool`.
//!
//! Records (JSON lines, as every scenario prints them):
//! - `mam_fill` per archive and size: messages, msg/s, server CPU per 1 000
//!   archived messages, fsyncs (with `--fsyncs perf`).
//! - `mam_size` per size: the messages in both archives, the bytes of
//!   `--data-path` (Perch: its `perch.redb`), the bytes it grew by per
//!   archived message, beside the mean size of the stanzas as the server
//!   delivered them (what it archives, with its `from` and stanza id).
//! - `mam_query` per size, archive and kind: server CPU per query (the
//!   server's utime + stime from /proc/PID/stat over all the queries of
//!   that kind ÷ their number, also per round, and from the scheduler's
//!   nanosecond counts), latency from sending the iq to its result
//!   (median, p99), results per query, and for `with` the share of results
//!   that matched (a server that ignores `with` in rooms shows < 1).
//! - `mam_write`: `--write-msgs` (10 000) messages from `--write-senders`
//!   (50) senders as fast as they can, the same from one sender, and the
//!   same to the room from the room's senders: msg/s, CPU per 1 000 and
//!   fsync + fdatasync calls per 1 000 archived messages (`--fsyncs perf`
//!   or `strace`; perf also counts during the fills).
//!
//! Fails (exit status 1) when logins, preferences or the room cannot be
//! set up, or a query's connection breaks; query errors are counted in the
//! records.

pub mod fill;
pub mod fsync;
pub mod measure;
pub mod query;
pub mod report;
pub mod stamp;

use std::path::Path;

use serde_json::{Value, json};

use crate::conn::{ClientError, Conn, timeout};
use crate::ctx::{Ctx, merge, meter_json, round};
use crate::rng::Rng;
use crate::xml;

use fill::{Dest, Filled};
use fsync::FsyncTool;
use measure::{Archive, Seq};

pub use crate::mam_settings::{self as settings, MAM_HELP, MamSettings};

const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";

/// Bytes of a file, or of every file under a directory.
pub fn path_bytes(path: &Path) -> Option<u64> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_dir() {
        return Some(meta.len());
    }
    let mut total = 0;
    let mut todo = vec![path.to_path_buf()];
    // Bounded: a data directory of a benchmark, not a file system.
    let mut seen = 0;
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            seen += 1;
            if seen > 1_000_000 {
                return Some(total);
            }
            match entry.metadata() {
                Ok(m) if m.is_dir() => todo.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    Some(total)
}

/// Running sums of what the fills delivered, for the mean stanza size.
#[derive(Default)]
struct Bytes {
    user: (u64, u64),
    room: (u64, u64),
    sent: (u64, u64),
}

impl Bytes {
    fn add(&mut self, room: bool, f: &Filled) {
        let slot = if room { &mut self.room } else { &mut self.user };
        slot.0 += f.stanza_bytes;
        slot.1 += f.confirmed;
        self.sent.0 += f.sent_bytes;
        self.sent.1 += f.sent;
    }
}

fn mean((bytes, n): (u64, u64)) -> Option<f64> {
    (n > 0).then(|| round(bytes as f64 / n as f64, 1))
}

/// Sets an account's default archiving preference.
async fn set_prefs(ctx: &Ctx, conn: &mut Conn, default: &str) -> Result<(), String> {
    conn.send(
        format!(
            "<iq type='set' id='prefs1'><prefs xmlns='{}' default='{default}'><always/><never/></prefs></iq>",
            query::NS_MAM
        )
        .as_bytes(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let answer = timeout(ctx.opts.step_timeout(), "prefs", conn.await_iq("prefs1"))
        .await
        .map_err(|e| e.to_string())?;
    if xml::start_tag_attr(&answer, "type") != Some(b"result") {
        return Err(String::from_utf8_lossy(&answer).chars().take(300).collect());
    }
    Ok(())
}

/// Joins `room` as `nick` and waits for the self-presence; true if the
/// room was created by this join (status 201).
async fn join(conn: &mut Conn, room: &str, nick: &str) -> Result<bool, ClientError> {
    conn.send(
        format!(
            "<presence to='{}/{}'><x xmlns='{NS_MUC}'><history maxstanzas='0'/></x></presence>",
            xml::escape(room),
            xml::escape(nick)
        )
        .as_bytes(),
    )
    .await?;
    loop {
        let el = conn.next_element().await?;
        if xml::local_name(&el) != b"presence" {
            continue;
        }
        let from = xml::start_tag_attr(&el, "from").unwrap_or_default();
        if !from.eq_ignore_ascii_case(format!("{room}/{nick}").as_bytes()) {
            continue;
        }
        if xml::start_tag_attr(&el, "type") == Some(b"error") {
            return Err(ClientError::Refused(
                "join",
                String::from_utf8_lossy(&el).chars().take(300).collect(),
            ));
        }
        let has = |code: &str| {
            xml::find_seq(format!("code='{code}'").as_bytes(), &el, 0).is_some()
                || xml::find_seq(format!("code=\"{code}\"").as_bytes(), &el, 0).is_some()
        };
        if has("110") {
            return Ok(has("201"));
        }
    }
}

/// The owner creates (or rejoins) the room, makes it persistent with
/// archiving on, and leaves.
async fn set_up_room(ctx: &Ctx, owner: &mut Conn, room: &str) -> Result<(), ClientError> {
    let step = ctx.opts.step_timeout();
    timeout(step, "room join", join(owner, room, "owner")).await?;
    let field =
        |var: &str, value: &str| format!("<field var='{var}'><value>{value}</value></field>");
    owner
        .send(
            format!(
                "<iq type='set' id='roomcfg' to='{}'><query xmlns='{NS_MUC_OWNER}'>\
                 <x xmlns='jabber:x:data' type='submit'>{}{}{}</x></query></iq>",
                xml::escape(room),
                field("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"),
                field("muc#roomconfig_persistentroom", "1"),
                field("muc#roomconfig_enablearchiving", "1"),
            )
            .as_bytes(),
        )
        .await?;
    let answer = timeout(step, "room configuration", owner.await_iq("roomcfg")).await?;
    if xml::start_tag_attr(&answer, "type") != Some(b"result") {
        return Err(ClientError::Refused(
            "room configuration",
            String::from_utf8_lossy(&answer).chars().take(300).collect(),
        ));
    }
    owner
        .send(
            format!(
                "<presence type='unavailable' to='{}/owner'/>",
                xml::escape(room)
            )
            .as_bytes(),
        )
        .await?;
    // Our own unavailable presence comes back; then nothing more.
    timeout(step, "leaving the room", async {
        loop {
            let el = owner.next_element().await?;
            if xml::local_name(&el) == b"presence"
                && xml::start_tag_attr(&el, "type") == Some(b"unavailable")
            {
                return Ok(());
            }
        }
    })
    .await
}

fn fill_fields(what: &str, archive: &str, f: &Filled, senders: usize, window: usize) -> Value {
    let per_1000 = |x: f64| round(1000.0 * x / f.confirmed.max(1) as f64, 4);
    merge(&[
        json!({
            "phase": what, "archive": archive, "senders": senders, "window": window,
            "sent": f.sent, "confirmed": f.confirmed, "bounced": f.bounced,
            "fill_s": round(f.seconds, 3),
            "msgs_per_s": (f.seconds > 0.0).then(|| round(f.confirmed as f64 / f.seconds, 1)),
            "server_cpu_s_per_1000": per_1000(f.meter.server_cpu_s),
            "server_kernel_s_per_1000": per_1000(f.meter.server_kernel_cpu_s),
            "fsyncs": f.fsyncs,
            "fsyncs_per_1000": f.fsyncs.map(|n| per_1000(n as f64)),
            "fsync_error": f.fsync_error,
            "stanza_bytes": mean((f.stanza_bytes, f.confirmed)),
            "client_failures": f.failures.len(),
            "failure_samples": f.failures.iter().take(3).collect::<Vec<_>>(),
        }),
        meter_json(&f.meter),
    ])
}

/// Runs the scenario; `Err` when it cannot set up or a connection breaks.
pub async fn run(ctx: &Ctx) -> Result<(), String> {
    let s = &ctx.opts.mam;
    s.check()?;
    let mech = ctx
        .opts
        .mechanisms
        .first()
        .copied()
        .unwrap_or(crate::sasl::Mechanism::Plain);
    let n = s.contacts + 1;
    ctx.log(&format!(
        "mam: logging in the owner and {} contacts",
        s.contacts
    ));
    let batch = ctx.login_many(0..n, mech, "mam").await;
    if batch.error_count() > 0 || batch.conns.len() < n {
        let samples: Vec<_> = batch.errors.iter().take(3).cloned().collect();
        ctx.close_all(batch.conns).await;
        return Err(format!("mam: logins failed: {samples:?}"));
    }
    let mut conns = Conns {
        contacts: batch.conns,
        owner: None,
    };
    conns.owner = Some(conns.contacts.remove(0));
    let result = session(ctx, &mut conns).await;
    let mut all = conns.contacts;
    all.extend(conns.owner);
    ctx.close_all(all).await;
    result
}

/// The run's connections: the owner's (`None` once its stream broke) and
/// the contacts', in account order; the first `--room-senders` contacts
/// are also in the room.
struct Conns {
    owner: Option<Conn>,
    contacts: Vec<Conn>,
}

impl Conns {
    fn owner(&mut self) -> Result<&mut Conn, String> {
        self.owner
            .as_mut()
            .ok_or_else(|| "mam: the owner's stream broke".to_string())
    }
}

fn broke(e: ClientError) -> String {
    format!("mam: the owner's stream: {e}")
}

/// The archives, their JIDs and what they hold now.
struct Plan {
    user: Archive,
    room: Archive,
    owner_jid: String,
    room_jid: String,
    /// Messages in the user and the room archive.
    counts: [u64; 2],
    /// Who counted them: "server" (its `<count/>`) or "tool" (the
    /// messages it had confirmed); "" before the first count.
    counted: [&'static str; 2],
    bytes: Bytes,
    phase: u32,
    seq: Seq,
}

impl Plan {
    fn archive(&self, k: usize) -> &Archive {
        if k == 0 { &self.user } else { &self.room }
    }

    fn dest(&self, k: usize) -> Dest {
        if k == 0 {
            Dest::Owner(self.owner_jid.clone())
        } else {
            Dest::Room(self.room_jid.clone())
        }
    }

    /// Asks the server how many messages archive `k` holds. A server may
    /// leave `<count/>` out (it is optional, XEP-0059 §2.6; Perch gives
    /// none past 2 000): then the tool's own tally stands, which starts at
    /// 0 and so needs an archive that was empty when the run began.
    async fn recount(&mut self, ctx: &Ctx, conns: &mut Conns, k: usize) -> Result<(), String> {
        let owner = conns.owner()?;
        let a = if k == 0 { &self.user } else { &self.room };
        let answer = measure::count(ctx, owner, a, &mut self.seq)
            .await
            .map_err(broke)?;
        if let Some(e) = answer.error {
            return Err(format!("mam: counting the {} archive: {e}", a.name));
        }
        match answer.count {
            Some(n) => {
                self.counts[k] = n;
                self.counted[k] = "server";
            }
            None if self.counted[k].is_empty() && ctx.opts.mam.no_fill => {
                self.counted[k] = "nobody";
            }
            None if self.counted[k].is_empty() => {
                // The first look: is the archive empty?
                let p = query::Params {
                    max: 1,
                    ..query::Params::default()
                };
                let step = ctx.opts.step_timeout();
                let any = query::ask(owner, self.seq.bump(), a.to.as_deref(), &p, step)
                    .await
                    .map_err(broke)?;
                if any.results > 0 {
                    return Err(format!(
                        "mam: the server does not count the {} archive and it is not empty: \
                         start from an empty archive",
                        a.name
                    ));
                }
                self.counts[k] = 0;
                self.counted[k] = "tool";
            }
            None => self.counted[k] = "tool",
        }
        Ok(())
    }

    /// Sends `n` messages into archive `k` from the first `senders`
    /// contacts (to the room: its senders).
    #[allow(clippy::too_many_arguments)]
    async fn fill(
        &mut self,
        ctx: &Ctx,
        conns: &mut Conns,
        k: usize,
        senders: usize,
        n: u64,
        window: usize,
        fsyncs: FsyncTool,
    ) -> Filled {
        self.phase += 1;
        let dest = self.dest(k);
        let pool = &mut conns.contacts;
        let mut chosen: Vec<Conn> = pool.drain(..senders.min(pool.len())).collect();
        let f = fill::fill(
            ctx,
            &dest,
            &mut chosen,
            &mut conns.owner,
            n,
            window,
            self.phase,
            fsyncs,
        )
        .await;
        chosen.append(pool);
        *pool = chosen;
        self.bytes.add(k == 1, &f);
        self.counts[k] += f.confirmed;
        f
    }
}

async fn session(ctx: &Ctx, conns: &mut Conns) -> Result<(), String> {
    let s = &ctx.opts.mam;
    set_prefs(ctx, conns.owner()?, "always")
        .await
        .map_err(|e| format!("mam: the owner's archiving preference: {e}"))?;
    for c in conns.contacts.iter_mut() {
        set_prefs(ctx, c, "never")
            .await
            .map_err(|e| format!("mam: a contact's archiving preference: {e}"))?;
    }
    let owner_jid = format!("{}@{}", ctx.opts.user(0), ctx.opts.domain);
    let room_jid = format!("{}@{}", s.room, ctx.opts.muc_domain());
    if s.archives.room {
        set_up_room(ctx, conns.owner()?, &room_jid)
            .await
            .map_err(|e| format!("mam: setting up {room_jid}: {e}"))?;
        // The room's senders are the first contacts; they send 1:1
        // messages too (fills run one at a time).
        for i in 0..s.room_senders {
            let c = &mut conns.contacts[i];
            timeout(
                ctx.opts.step_timeout(),
                "join",
                join(c, &room_jid, &format!("s{i}")),
            )
            .await
            .map_err(|e| format!("mam: sender s{i} joining {room_jid}: {e}"))?;
        }
    }
    let mut plan = Plan {
        user: Archive {
            name: "user",
            to: None,
            withs: (1..=s.contacts)
                .map(|i| format!("{}@{}", ctx.opts.user(i), ctx.opts.domain))
                .collect(),
        },
        room: Archive {
            name: "room",
            to: Some(room_jid.clone()),
            withs: (0..s.room_senders)
                .map(|i| format!("{room_jid}/s{i}"))
                .collect(),
        },
        owner_jid,
        room_jid,
        counts: [0; 2],
        counted: [""; 2],
        bytes: Bytes::default(),
        phase: 0,
        seq: Seq(0),
    };
    let on = [s.archives.user, s.archives.room];
    for (k, &wanted) in on.iter().enumerate() {
        if wanted {
            plan.recount(ctx, conns, k).await?;
        }
    }
    let start_counts = plan.counts;
    let start_bytes = s.data_path.as_deref().and_then(path_bytes);
    ctx.log(&format!(
        "mam: the archives hold {} (user) and {} (room) messages",
        plan.counts[0], plan.counts[1]
    ));
    // perf costs the server nothing; strace would slow the fills down.
    let fill_fsyncs = if s.fsyncs == FsyncTool::Perf {
        FsyncTool::Perf
    } else {
        FsyncTool::None
    };
    let mut rng = Rng::new(s.seed);
    let sizes = if s.no_fill {
        &s.sizes[..1]
    } else {
        &s.sizes[..]
    };
    for &size in sizes {
        for (k, &wanted) in on.iter().enumerate() {
            if !wanted || plan.counts[k] >= size || s.no_fill {
                continue;
            }
            let need = size - plan.counts[k];
            let name = plan.archive(k).name;
            ctx.log(&format!(
                "mam: filling the {name} archive to {size} ({need} messages)"
            ));
            let t0 = std::time::Instant::now();
            let senders = if k == 0 { s.contacts } else { s.room_senders };
            let f = plan
                .fill(ctx, conns, k, senders, need, s.fill_window, fill_fsyncs)
                .await;
            ctx.log(&format!(
                "mam: filled in {:.1} s",
                t0.elapsed().as_secs_f64()
            ));
            let mut fields = fill_fields("fill", name, &f, senders, s.fill_window);
            fields["size"] = json!(size);
            fields["before"] = json!(plan.counts[k]);
            ctx.emit("mam_fill", fields);
            if let Some(e) = f.failures.first() {
                return Err(format!("mam: filling the {name} archive: {e}"));
            }
            plan.recount(ctx, conns, k).await?;
        }
        ctx.settle().await;
        let db = s.data_path.as_deref().and_then(path_bytes);
        let archived = plan.counts[0] + plan.counts[1];
        let grown = archived.saturating_sub(start_counts[0] + start_counts[1]);
        let per_msg = match (db, start_bytes) {
            (Some(now), Some(then)) if grown > 0 => {
                Some(round(now.saturating_sub(then) as f64 / grown as f64, 1))
            }
            _ => None,
        };
        let b = &plan.bytes;
        let delivered = mean((b.user.0 + b.room.0, b.user.1 + b.room.1));
        ctx.emit(
            "mam_size",
            json!({
                "size": size, "user_archived": plan.counts[0], "room_archived": plan.counts[1],
                "counted_by": plan.counted,
                "data_path": s.data_path.as_ref().map(|p| p.display().to_string()),
                "db_bytes": db, "db_bytes_at_start": start_bytes,
                "archived_since_start": grown,
                "db_bytes_per_msg": per_msg,
                "db_bytes_per_msg_total": db.map(|d| round(d as f64 / archived.max(1) as f64, 1)),
                "user_stanza_bytes": mean(b.user),
                "room_stanza_bytes": mean(b.room),
                "stanza_bytes": delivered,
                "sent_stanza_bytes": mean(b.sent),
                "db_over_stanza": match (per_msg, delivered) {
                    (Some(p), Some(d)) if d > 0.0 => Some(round(p / d, 2)),
                    _ => None,
                },
                "rss_kib": ctx.probe.snapshot().map(|x| x.rss_kib),
            }),
        );
        for (k, &wanted) in on.iter().enumerate() {
            if !wanted {
                continue;
            }
            let a = if k == 0 { &plan.user } else { &plan.room };
            ctx.log(&format!(
                "mam: timing queries of the {} archive at {}",
                a.name, plan.counts[k]
            ));
            let t0 = std::time::Instant::now();
            let owner = conns.owner()?;
            let v = measure::view(ctx, owner, a, plan.counts[k], &mut plan.seq)
                .await
                .map_err(broke)?;
            let records = measure::measure(ctx, owner, a, &v, size, s, &mut rng, &mut plan.seq)
                .await
                .map_err(broke)?;
            for r in records {
                ctx.emit("mam_query", r);
            }
            ctx.log(&format!(
                "mam: queries took {:.1} s",
                t0.elapsed().as_secs_f64()
            ));
            ctx.settle().await;
        }
    }
    if s.write_msgs > 0 {
        write_phases(ctx, conns, &mut plan, on).await?;
    }
    Ok(())
}

/// Messages written as fast as the senders can, with the server's fsyncs
/// counted: `--write-senders` (50) senders, then one, to the owner; then
/// the room's senders to the room.
async fn write_phases(
    ctx: &Ctx,
    conns: &mut Conns,
    plan: &mut Plan,
    on: [bool; 2],
) -> Result<(), String> {
    let s = &ctx.opts.mam;
    let n = s.write_msgs;
    let mut phases = Vec::new();
    if on[0] {
        phases.push((0, s.write_senders));
        phases.push((0, 1));
    }
    if on[1] {
        phases.push((1, s.room_senders));
    }
    for (k, senders) in phases {
        ctx.settle().await;
        let name = plan.archive(k).name;
        ctx.log(&format!(
            "mam: {n} messages to the {name} archive from {senders} sender(s), fsyncs counted by {}",
            s.fsyncs.name()
        ));
        // No window to speak of: each sender writes all it has at once.
        let window = n.div_ceil(senders as u64) as usize;
        let f = plan.fill(ctx, conns, k, senders, n, window, s.fsyncs).await;
        let mut fields = fill_fields("write", name, &f, senders, window);
        fields["fsync_tool"] = json!(s.fsyncs.name());
        ctx.emit("mam_write", fields);
        if let Some(e) = f.failures.first() {
            return Err(format!("mam: writing to the {name} archive: {e}"));
        }
        plan.recount(ctx, conns, k).await?;
    }
    Ok(())
}
