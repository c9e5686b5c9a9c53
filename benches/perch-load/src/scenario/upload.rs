//! `upload`: HTTP File Upload (XEP-0363). One client logs in (over
//! `--transport`), finds the upload service (`--upload-service`, or
//! disco#items on the domain and disco#info of each item for
//! `urn:xmpp:http:upload:0`, with its `max-file-size`), asks it for a slot
//! of `--upload-mib` MiB, PUTs a body generated on the fly over HTTP/1.1
//! (never held whole: one 256 KiB buffer), then GETs the file back and
//! checks its length and checksum. Per direction: MiB/s, the server's CPU,
//! and its peak RSS growth over the RSS before the transfer (RSS sampled
//! every 100 ms, and `VmHWM` when it rose: the exact peak then).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::conn::{Conn, Login};
use crate::ctx::{Ctx, PeakSampler, merge, meter_json, round};
use crate::http::{self, Url};
use crate::procfs::{Meter, Snapshot};
use crate::xml;

pub const NS_UPLOAD: &str = "urn:xmpp:http:upload:0";
const NS_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const NS_INFO: &str = "http://jabber.org/protocol/disco#info";
const MIB: u64 = 1024 * 1024;
const CONTENT_TYPE: &str = "application/octet-stream";
/// The generated body repeats a block this long, each copy stamped with
/// its index (so a chunk lost, repeated or reordered changes the checksum).
const BLOCK: usize = 256 * 1024;
/// Items of the domain asked about at most.
const MAX_ITEMS: usize = 50;

/// The slot the service handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub put: String,
    pub put_headers: Vec<(String, String)>,
    pub get: String,
}

pub async fn run(ctx: &Ctx) -> Result<(), String> {
    let opts = &ctx.opts;
    let size = opts.upload_mib * MIB;
    let user = opts.user(0);
    let mech = opts
        .mechanisms
        .first()
        .copied()
        .unwrap_or(crate::sasl::Mechanism::Plain);
    let login = Login {
        user: &user,
        password: &opts.password,
        mechanism: mech,
        resource: "upload",
        presence: true,
        sm: false,
    };
    let mut conn = Conn::login(&ctx.target, &login)
        .await
        .map_err(|e| format!("upload: logging in {user}: {e}"))?;
    let result = transfer(ctx, &mut conn, size).await;
    conn.close().await;
    let fields = result?;
    ctx.emit("upload", fields);
    Ok(())
}

async fn transfer(ctx: &Ctx, conn: &mut Conn, size: u64) -> Result<Value, String> {
    let opts = &ctx.opts;
    let step = opts.step_timeout();
    let (service, max) = match &opts.upload_service {
        Some(jid) => (jid.clone(), info(conn, jid, step).await?.1),
        None => discover(conn, &opts.domain, step).await?,
    };
    ctx.log(&format!(
        "upload: service {service} (largest file {}); asking for {size} bytes",
        max.map_or("not said".into(), |m| format!("{m} bytes"))
    ));
    if let Some(max) = max.filter(|&m| size > m) {
        return Err(format!(
            "upload: {service} takes files of at most {max} bytes; ask for less (--upload-mib) or raise its limit"
        ));
    }
    let name = format!("perch-load-{}.bin", crate::ctx::now_ns());
    let t_slot = Instant::now();
    let slot = request_slot(conn, &service, &name, size, step).await?;
    let slot_ms = t_slot.elapsed().as_secs_f64() * 1e3;
    let put_url = Url::parse(&slot.put, opts.host, opts.upload_port)?;
    let get_url = Url::parse(&slot.get, opts.host, opts.upload_port)?;
    let limit = Duration::from_secs_f64(opts.max_phase_seconds.max(1.0));

    ctx.settle().await;
    let before_put = ctx.probe.snapshot();
    let sampler = PeakSampler::start(ctx);
    let meter = Meter::start(&ctx.probe);
    let mut body = Body::new(size);
    let put = http::put(
        &put_url,
        &slot.put_headers,
        size,
        |buf| body.fill(buf),
        limit,
    )
    .await;
    let put_meter = meter.stop();
    let put_peak = sampler.stop().await;
    let after_put = ctx.probe.snapshot();
    let put = put?;
    if !(200..300).contains(&put.status) {
        return Err(format!(
            "upload: PUT {} answered {} {}: {}",
            put_url.target, put.status, put.reason, put.body_start
        ));
    }
    let sent_sum = body.sum.finish();

    ctx.settle().await;
    let before_get = ctx.probe.snapshot();
    let sampler = PeakSampler::start(ctx);
    let meter = Meter::start(&ctx.probe);
    let mut sum = Checksum::default();
    let get = http::get(&get_url, |piece| sum.update(piece), limit).await;
    let get_meter = meter.stop();
    let get_peak = sampler.stop().await;
    let after_get = ctx.probe.snapshot();
    let get = get?;
    if !(200..300).contains(&get.status) {
        return Err(format!(
            "upload: GET {} answered {} {}: {}",
            get_url.target, get.status, get.reason, get.body_start
        ));
    }
    let got_sum = sum.finish();
    let length_ok = get.body_bytes == size;
    let checksum_ok = got_sum == sent_sum;
    let mib_per_s = |d: Duration| {
        let s = d.as_secs_f64();
        (s > 0.0).then(|| round(size as f64 / MIB as f64 / s, 1))
    };
    let fields = merge(&[
        json!({
            "size_bytes": size, "size_mib": size / MIB, "service": service,
            "max_file_bytes": max, "mech": login_mech(ctx),
            "slot_ms": round(slot_ms, 2),
            "put_status": put.status, "put_s": round(put.elapsed.as_secs_f64(), 3),
            "put_mib_per_s": mib_per_s(put.elapsed),
            "get_status": get.status, "get_s": round(get.elapsed.as_secs_f64(), 3),
            "get_first_byte_ms": round(get.head_after.as_secs_f64() * 1e3, 2),
            "get_mib_per_s": mib_per_s(get.elapsed),
            "get_bytes": get.body_bytes, "length_ok": length_ok,
            "checksum": format!("{sent_sum:016x}"), "checksum_ok": checksum_ok,
            "put_server_cpu_s": round(put_meter.server_cpu_s, 3),
            "get_server_cpu_s": round(get_meter.server_cpu_s, 3),
            "put_server_cpu_s_per_100_mib": per_100_mib(put_meter.server_cpu_s, size),
            "get_server_cpu_s_per_100_mib": per_100_mib(get_meter.server_cpu_s, size),
        }),
        memory("put", before_put, put_peak, after_put),
        memory("get", before_get, get_peak, after_get),
        json!({ "put_meter": meter_json(&put_meter), "get_meter": meter_json(&get_meter) }),
    ]);
    if !length_ok || !checksum_ok {
        ctx.emit("upload", fields);
        return Err(format!(
            "upload: the GET returned {} bytes with checksum {got_sum:016x}; {size} bytes with {sent_sum:016x} were PUT",
            get.body_bytes
        ));
    }
    Ok(fields)
}

fn login_mech(ctx: &Ctx) -> &'static str {
    ctx.opts.mechanisms.first().map_or("PLAIN", |m| m.name())
}

fn per_100_mib(cpu_s: f64, size: u64) -> f64 {
    round(cpu_s * 100.0 * MIB as f64 / size.max(1) as f64, 4)
}

/// The server's memory over one direction: RSS before, the peak (VmHWM
/// when it rose during the transfer, which is exact, else the highest
/// 100-ms sample) and the growth; `{}` without `--server-pid`.
fn memory(
    dir: &str,
    before: Option<Snapshot>,
    sampled: Option<u64>,
    after: Option<Snapshot>,
) -> Value {
    let (Some(b), Some(a)) = (before, after) else {
        return json!({});
    };
    let mut peak = sampled.unwrap_or(0).max(a.rss_kib);
    if a.hwm_kib > b.hwm_kib {
        peak = peak.max(a.hwm_kib);
    }
    let mut out = serde_json::Map::new();
    out.insert(format!("{dir}_rss_before_kib"), json!(b.rss_kib));
    out.insert(format!("{dir}_peak_rss_kib"), json!(peak));
    out.insert(
        format!("{dir}_peak_rss_growth_kib"),
        json!(peak.saturating_sub(b.rss_kib)),
    );
    out.insert(format!("{dir}_rss_after_kib"), json!(a.rss_kib));
    Value::Object(out)
}

/// The generated file: `BLOCK`-long copies of a pseudo-random block, each
/// with its index in its first 8 bytes; summed as it is handed out.
struct Body {
    block: Vec<u8>,
    size: u64,
    offset: u64,
    sum: Checksum,
}

impl Body {
    fn new(size: u64) -> Body {
        let mut rng = crate::rng::Rng::new(0x5EED_F11E);
        let block = (0..BLOCK / 8)
            .flat_map(|_| rng.next_u64().to_le_bytes())
            .collect();
        Body {
            block,
            size,
            offset: 0,
            sum: Checksum::default(),
        }
    }

    /// Writes the next bytes of the body into `buf`; how many.
    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() && self.offset < self.size {
            let index = self.offset / BLOCK as u64;
            let at = (self.offset % BLOCK as u64) as usize;
            let left = usize::try_from(self.size - self.offset).unwrap_or(usize::MAX);
            let take = (BLOCK - at).min(buf.len() - n).min(left);
            let out = &mut buf[n..n + take];
            out.copy_from_slice(&self.block[at..at + take]);
            // The stamp: the block index over the first 8 bytes.
            for (i, b) in index.to_le_bytes().iter().enumerate() {
                if let Some(k) = i.checked_sub(at).filter(|&k| k < take) {
                    out[k] ^= b;
                }
            }
            n += take;
            self.offset += take as u64;
        }
        self.sum.update(&buf[..n]);
        n
    }
}

/// A 64-bit checksum over 8-byte words (how the bytes arrive in pieces
/// does not change it); several GB/s, so it never limits a transfer.
#[derive(Debug, Default, Clone)]
pub struct Checksum {
    h: u64,
    carry: [u8; 8],
    carried: usize,
    len: u64,
}

impl Checksum {
    fn word(&mut self, w: u64) {
        self.h = (self.h.rotate_left(5) ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.carried > 0 {
            let take = (8 - self.carried).min(data.len());
            self.carry[self.carried..self.carried + take].copy_from_slice(&data[..take]);
            self.carried += take;
            data = &data[take..];
            if self.carried < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.carry));
            self.carried = 0;
        }
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.word(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carried = rest.len();
    }

    pub fn finish(&self) -> u64 {
        let mut c = self.clone();
        let mut tail = [0u8; 8];
        tail[..c.carried].copy_from_slice(&c.carry[..c.carried]);
        c.word(u64::from_le_bytes(tail));
        c.word(c.len);
        c.h
    }
}

/// disco#items on the domain, then disco#info of each item until one
/// offers XEP-0363: (its JID, its `max-file-size`).
async fn discover(
    conn: &mut Conn,
    domain: &str,
    step: Duration,
) -> Result<(String, Option<u64>), String> {
    let answer = ask(
        conn,
        domain,
        "items1",
        &format!("<query xmlns='{NS_ITEMS}'/>"),
        step,
    )
    .await?;
    let items: Vec<String> = xml::with_parsed(&answer, |n| {
        n.descendants()
            .filter(|c| c.tag_name().name() == "item" && c.tag_name().namespace() == Some(NS_ITEMS))
            .filter_map(|c| c.attribute("jid").map(str::to_string))
            .collect()
    })
    .map_err(|e| format!("upload: disco#items of {domain}: {e}"))?;
    let mut asked = Vec::new();
    for jid in items.into_iter().take(MAX_ITEMS) {
        let (offered, max) = info(conn, &jid, step).await?;
        if offered {
            return Ok((jid, max));
        }
        asked.push(jid);
    }
    Err(format!(
        "upload: no item of {domain} offers {NS_UPLOAD} (asked: {}); name the service with --upload-service",
        if asked.is_empty() {
            "none listed".to_string()
        } else {
            asked.join(", ")
        }
    ))
}

/// disco#info of `jid`: whether it offers XEP-0363, and its `max-file-size`.
async fn info(conn: &mut Conn, jid: &str, step: Duration) -> Result<(bool, Option<u64>), String> {
    let answer = ask(
        conn,
        jid,
        "info1",
        &format!("<query xmlns='{NS_INFO}'/>"),
        step,
    )
    .await?;
    Ok(parse_info(&answer))
}

fn parse_info(answer: &[u8]) -> (bool, Option<u64>) {
    xml::with_parsed(answer, |n| {
        if n.attribute("type") != Some("result") {
            return (false, None);
        }
        let offered = n
            .descendants()
            .any(|c| c.tag_name().name() == "feature" && c.attribute("var") == Some(NS_UPLOAD));
        // The form whose FORM_TYPE is the upload namespace (XEP-0363 §4).
        let max = n
            .descendants()
            .filter(|c| {
                c.tag_name().name() == "x" && c.tag_name().namespace() == Some("jabber:x:data")
            })
            .find(|x| field(*x, "FORM_TYPE").as_deref() == Some(NS_UPLOAD))
            .and_then(|x| field(x, "max-file-size"))
            .and_then(|v| v.trim().parse().ok());
        (offered, max)
    })
    .unwrap_or((false, None))
}

fn field(form: roxmltree::Node<'_, '_>, var: &str) -> Option<String> {
    form.children()
        .find(|f| f.tag_name().name() == "field" && f.attribute("var") == Some(var))?
        .children()
        .find(|v| v.tag_name().name() == "value")?
        .text()
        .map(str::to_string)
}

/// Sends an iq get with `payload` to `to` and returns its answer.
async fn ask(
    conn: &mut Conn,
    to: &str,
    id: &str,
    payload: &str,
    step: Duration,
) -> Result<Vec<u8>, String> {
    conn.send(
        format!(
            "<iq type='get' id='{id}' to='{}'>{payload}</iq>",
            xml::escape(to)
        )
        .as_bytes(),
    )
    .await
    .map_err(|e| format!("upload: asking {to}: {e}"))?;
    crate::conn::timeout(step, "iq", conn.await_iq(id))
        .await
        .map_err(|e| format!("upload: asking {to}: {e}"))
}

async fn request_slot(
    conn: &mut Conn,
    service: &str,
    name: &str,
    size: u64,
    step: Duration,
) -> Result<Slot, String> {
    let request = format!(
        "<request xmlns='{NS_UPLOAD}' filename='{}' size='{size}' content-type='{CONTENT_TYPE}'/>",
        xml::escape(name)
    );
    let answer = ask(conn, service, "slot1", &request, step).await?;
    parse_slot(&answer).ok_or_else(|| {
        format!(
            "upload: {service} gave no slot: {}",
            String::from_utf8_lossy(&answer)
                .chars()
                .take(400)
                .collect::<String>()
        )
    })
}

fn parse_slot(answer: &[u8]) -> Option<Slot> {
    xml::with_parsed(answer, |n| {
        if n.attribute("type") != Some("result") {
            return None;
        }
        let slot = n.descendants().find(|c| {
            c.tag_name().name() == "slot" && c.tag_name().namespace() == Some(NS_UPLOAD)
        })?;
        let child = |name: &str| slot.children().find(|c| c.tag_name().name() == name);
        let put = child("put")?;
        let get = child("get")?;
        // Only the headers XEP-0363 §5 lets a service ask for.
        let put_headers = put
            .children()
            .filter(|h| h.tag_name().name() == "header")
            .filter_map(|h| {
                Some((
                    h.attribute("name")?.to_string(),
                    h.text()?.trim().to_string(),
                ))
            })
            .filter(|(k, _)| {
                ["authorization", "cookie", "expires"].contains(&k.to_ascii_lowercase().as_str())
            })
            .chain([("Content-Type".to_string(), CONTENT_TYPE.to_string())])
            .collect();
        Some(Slot {
            put: put.attribute("url")?.to_string(),
            put_headers,
            get: get.attribute("url")?.to_string(),
        })
    })
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_and_service_answers() {
        let slot = parse_slot(
            b"<iq type='result' id='slot1' from='upload.localhost'><slot xmlns='urn:xmpp:http:upload:0'>\
              <put url='http://upload.localhost:5280/upload/ab/f.bin?v=1&amp;s=2'>\
              <header name='Authorization'>Bearer x</header><header name='X-Evil'>y</header></put>\
              <get url='http://upload.localhost:5280/upload/ab/f.bin'/></slot></iq>",
        )
        .expect("a slot");
        assert_eq!(
            slot.put,
            "http://upload.localhost:5280/upload/ab/f.bin?v=1&s=2"
        );
        assert_eq!(slot.get, "http://upload.localhost:5280/upload/ab/f.bin");
        assert_eq!(
            slot.put_headers,
            [
                ("Authorization".to_string(), "Bearer x".to_string()),
                ("Content-Type".to_string(), CONTENT_TYPE.to_string())
            ]
        );
        assert_eq!(parse_slot(b"<iq type='error' id='slot1'/>"), None);
        let info =
            b"<iq type='result' id='info1'><query xmlns='http://jabber.org/protocol/disco#info'>\
            <identity category='store' type='file'/><feature var='urn:xmpp:http:upload:0'/>\
            <x xmlns='jabber:x:data' type='result'>\
            <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>\
            <field var='max-file-size'><value>104857600</value></field></x></query></iq>";
        assert_eq!(parse_info(info), (true, Some(104_857_600)));
        assert_eq!(
            parse_info(b"<iq type='result' id='info1'><query xmlns='http://jabber.org/protocol/disco#info'><feature var='x'/></query></iq>"),
            (false, None)
        );
    }

    #[test]
    fn body_is_stamped_per_block_and_summed_whatever_the_pieces() {
        let size = 3 * BLOCK as u64 + 11;
        let mut whole = vec![0u8; size as usize];
        let mut body = Body::new(size);
        assert_eq!(body.fill(&mut whole), size as usize);
        assert_eq!(body.fill(&mut [0u8; 10]), 0);
        // Blocks differ only in their stamps.
        assert_eq!(whole[8..BLOCK], whole[BLOCK + 8..2 * BLOCK]);
        assert_ne!(whole[..8], whole[BLOCK..BLOCK + 8]);
        let sum = body.sum.finish();
        // Filled in odd pieces: the same bytes, the same sum.
        let mut pieces = Body::new(size);
        let mut again = Vec::new();
        let mut buf = vec![0u8; 100_003];
        loop {
            let n = pieces.fill(&mut buf[..(again.len() % 7919) + 1]);
            if n == 0 {
                break;
            }
            again.extend_from_slice(&buf[..n]);
        }
        assert_eq!(again, whole);
        assert_eq!(pieces.sum.finish(), sum);
        let mut read = Checksum::default();
        for piece in whole.chunks(13) {
            read.update(piece);
        }
        assert_eq!(read.finish(), sum);
        // One byte changed, or one missing: another sum.
        whole[BLOCK + 3] ^= 1;
        let mut changed = Checksum::default();
        changed.update(&whole);
        assert_ne!(changed.finish(), sum);
        let mut short = Checksum::default();
        short.update(&whole[..whole.len() - 1]);
        assert_ne!(short.finish(), sum);
    }
}
