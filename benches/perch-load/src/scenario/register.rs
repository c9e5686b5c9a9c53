//! `register`: creates accounts by in-band registration (XEP-0077), for
//! servers that allow it (the comparison script uses it for Prosody and
//! ejabberd). An account that already exists (`conflict`) counts as done.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::conn::{Conn, timeout};
use crate::ctx::{Ctx, merge, meter_json, round};
use crate::procfs::Meter;
use crate::xml;

const NS_REGISTER: &str = "jabber:iq:register";
/// Registrations sent on one stream before it is replaced (servers may
/// limit registrations per stream).
const PER_STREAM: usize = 50;

pub async fn run(ctx: &Ctx) {
    let n = ctx.opts.clients_or_default();
    let next = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    let existed = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    ctx.log(&format!("register: {n} accounts from {}", ctx.opts.user(0)));
    let meter = Meter::start(&ctx.probe);
    let workers: Vec<_> = (0..ctx.opts.concurrency.min(n.max(1)))
        .map(|_| {
            let (next, created, existed, errors) =
                (next.clone(), created.clone(), existed.clone(), errors.clone());
            let (target, opts) = (ctx.target.clone(), ctx.opts.clone());
            ctx.ex.spawn(async move {
                let mut conn: Option<(Conn, usize)> = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    if errors.lock().map(|e| e.len() > 20).unwrap_or(true) {
                        break;
                    }
                    let (mut c, used) = match conn.take() {
                        Some(pair) if pair.1 < PER_STREAM => pair,
                        old => {
                            if let Some((c, _)) = old {
                                c.close().await;
                            }
                            match Conn::open(&target).await {
                                Ok((c, _)) => (c, 0),
                                Err(e) => {
                                    if let Ok(mut v) = errors.lock() {
                                        v.push(format!("{}: {e}", opts.user(i)));
                                    }
                                    continue;
                                }
                            }
                        }
                    };
                    let id = format!("reg{i}");
                    let req = format!(
                        "<iq type='set' id='{id}'><query xmlns='{NS_REGISTER}'><username>{}</username>\
                         <password>{}</password></query></iq>",
                        xml::escape(&opts.user(i)),
                        xml::escape(&opts.password)
                    );
                    let answer = async {
                        c.send(req.as_bytes()).await?;
                        timeout(opts.step_timeout(), "register", c.await_iq(&id)).await
                    }
                    .await;
                    match answer {
                        Ok(el) if xml::start_tag_attr(&el, "type") == Some(b"result") => {
                            created.fetch_add(1, Ordering::Relaxed);
                            conn = Some((c, used + 1));
                        }
                        Ok(el) if xml::find_seq(b"<conflict", &el, 0).is_some() => {
                            existed.fetch_add(1, Ordering::Relaxed);
                            conn = Some((c, used + 1));
                        }
                        Ok(el) => {
                            if let Ok(mut v) = errors.lock() {
                                v.push(format!("{}: {}", opts.user(i), String::from_utf8_lossy(&el)));
                            }
                        }
                        Err(e) => {
                            if let Ok(mut v) = errors.lock() {
                                v.push(format!("{}: {e}", opts.user(i)));
                            }
                        }
                    }
                }
                if let Some((c, _)) = conn {
                    c.close().await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await;
    }
    let m = meter.stop();
    let errors = errors.lock().map(|e| e.clone()).unwrap_or_default();
    let done = created.load(Ordering::Relaxed) + existed.load(Ordering::Relaxed);
    ctx.emit(
        "register",
        merge(&[
            json!({
                "requested": n, "created": created.load(Ordering::Relaxed),
                "existed": existed.load(Ordering::Relaxed), "errors": errors.len(),
                "error_samples": errors.iter().take(3).collect::<Vec<_>>(),
                "per_s": if m.wall_s > 0.0 { round(done as f64 / m.wall_s, 1) } else { 0.0 },
            }),
            meter_json(&m),
        ]),
    );
}
