//! One soak client slot: logs in (plaintext, STARTTLS or direct TLS, by
//! slot), maybe joins its room, chats for a lifetime drawn around
//! `--lifetime`, logs out cleanly, and starts over until the run ends.
//! Slot i is resource `s<i>` of account `<prefix><i / per-account + 1>`;
//! it chats with slot i ^ 1 (a full JID: when that one is between two
//! lives, the server routes to another resource of its account or stores
//! the message), or, in a room, sends groupchat.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_lite::future;

use crate::conn::{ClientError, Conn, Login, Target};
use crate::crash::protocol as p;
use crate::rng::Rng;
use crate::sasl::Mechanism;
use crate::xml::{self, Frame};

/// What every client adds to; the sampler reads and resets the deltas.
#[derive(Debug, Default)]
pub struct Counters {
    pub connected: AtomicU64,
    /// Slots that have logged in at least once: the ramp is over when
    /// every slot has.
    pub came_in: AtomicU64,
    pub logins: AtomicU64,
    pub logouts: AtomicU64,
    pub login_errors: AtomicU64,
    /// Connections the server closed, or that broke, mid-life.
    pub lost: AtomicU64,
    pub join_errors: AtomicU64,
    pub sent: AtomicU64,
    pub delivered: AtomicU64,
    pub bounced: AtomicU64,
    pub error_samples: std::sync::Mutex<Vec<String>>,
}

impl Counters {
    fn note(&self, e: &ClientError) {
        if let Ok(mut v) = self.error_samples.lock()
            && v.len() < 5
        {
            v.push(e.to_string());
        }
    }
}

/// Per-run settings every slot reads.
pub struct Plan {
    pub targets: Vec<Target>,
    pub domain: String,
    pub muc_domain: String,
    pub prefix: String,
    pub password: String,
    pub slots: usize,
    pub per_account: usize,
    pub lifetime_s: f64,
    pub msg_interval_s: f64,
    /// Every `room_every`-th slot is in a room (0: none).
    pub room_every: usize,
    pub rooms: usize,
    /// Logins in flight at most (the ramp, and the churn after it).
    pub logins: smol::lock::Semaphore,
    pub end: Instant,
    pub step: Duration,
}

impl Plan {
    pub fn account(&self, slot: usize) -> String {
        format!("{}{}", self.prefix, slot / self.per_account.max(1) + 1)
    }

    pub fn accounts(&self) -> usize {
        self.slots.div_ceil(self.per_account.max(1))
    }

    pub fn room(&self, index: usize) -> String {
        format!("{}room{index}@{}", self.prefix, self.muc_domain)
    }

    fn room_of(&self, slot: usize) -> Option<String> {
        (self.room_every > 0 && self.rooms > 0 && slot.is_multiple_of(self.room_every))
            .then(|| self.room((slot / self.room_every) % self.rooms))
    }

    /// Which target (plaintext, STARTTLS, direct TLS) slot `slot` uses.
    fn target(&self, slot: usize) -> &Target {
        &self.targets[slot % self.targets.len().max(1)]
    }
}

/// Runs slot `slot` until the plan's end.
pub async fn slot(plan: Arc<Plan>, counters: Arc<Counters>, slot: usize, mut rng: Rng) {
    let partner = {
        let other = if (slot ^ 1) < plan.slots {
            slot ^ 1
        } else {
            slot.saturating_sub(1)
        };
        format!("{}@{}/s{other}", plan.account(other), plan.domain)
    };
    let room = plan.room_of(slot);
    let nick = format!("s{slot}");
    let resource = nick.clone();
    let user = plan.account(slot);
    let mut first_life = true;
    while Instant::now() < plan.end {
        let conn = {
            let _permit = plan.logins.acquire().await;
            if Instant::now() >= plan.end {
                return;
            }
            let login = Login {
                user: &user,
                password: &plan.password,
                mechanism: Mechanism::ScramSha256,
                resource: &resource,
                presence: true,
                sm: false,
            };
            Conn::login(plan.target(slot), &login).await
        };
        let mut conn = match conn {
            Ok(c) => c,
            Err(e) => {
                counters.login_errors.fetch_add(1, Ordering::Relaxed);
                counters.note(&e);
                // Not at once: a server that refuses should not be hammered.
                smol::Timer::after(Duration::from_millis(500 + rng.below(1000))).await;
                continue;
            }
        };
        conn.shrink();
        if first_life {
            counters.came_in.fetch_add(1, Ordering::Relaxed);
        }
        counters.logins.fetch_add(1, Ordering::Relaxed);
        counters.connected.fetch_add(1, Ordering::Relaxed);
        let life = Duration::from_secs_f64(if first_life {
            first_life = false;
            residual_life(plan.lifetime_s, &mut rng)
        } else {
            plan.lifetime_s * rng.uniform(0.5, 1.5)
        });
        let until = (Instant::now() + life).min(plan.end);
        let outcome = live(
            &plan,
            &counters,
            &mut conn,
            room.as_deref(),
            &nick,
            &partner,
            until,
            &mut rng,
        )
        .await;
        counters.connected.fetch_sub(1, Ordering::Relaxed);
        match outcome {
            Ok(()) => {
                conn.close().await;
                counters.logouts.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                counters.lost.fetch_add(1, Ordering::Relaxed);
                counters.note(&e);
            }
        }
    }
}

/// The first life of a slot: what is left of a life drawn uniformly from
/// 0.5 to 1.5 × `mean` at a random moment of it (the residual life of a
/// renewal process in its steady state), so that logouts, and with them
/// logins, run at their steady rate from the end of the ramp on instead
/// of all coming in one wave a lifetime later.
fn residual_life(mean: f64, rng: &mut Rng) -> f64 {
    // Its density is 1/mean up to 0.5 × mean, then falls linearly to 0
    // at 1.5 × mean: half the mass each side.
    if rng.chance(0.5) {
        rng.uniform(0.0, 0.5 * mean)
    } else {
        1.5 * mean - mean * rng.uniform(0.0, 1.0).sqrt()
    }
}

#[allow(clippy::too_many_arguments)]
async fn live(
    plan: &Plan,
    counters: &Counters,
    conn: &mut Conn,
    room: Option<&str>,
    nick: &str,
    partner: &str,
    until: Instant,
    rng: &mut Rng,
) -> Result<(), ClientError> {
    let mut in_room = false;
    if let Some(room) = room {
        conn.send(p::join(room, nick).as_bytes()).await?;
        match p::await_self_presence(conn, room, nick, plan.step).await {
            Ok(true) => in_room = true,
            Ok(false) | Err(ClientError::Timeout(_)) => {
                counters.join_errors.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => return Err(e),
        }
    }
    let head = match (in_room, room) {
        (true, Some(room)) => format!("<message type='groupchat' to='{}'>", xml::escape(room)),
        _ => format!("<message type='chat' to='{}'>", xml::escape(partner)),
    };
    let gap = |rng: &mut Rng| Duration::from_secs_f64(plan.msg_interval_s * rng.uniform(0.0, 2.0));
    let mut next_send = Instant::now() + gap(rng);
    let mut seq = 0u64;
    loop {
        let mut got = 0;
        while let Some(frame) = conn.next_frame()? {
            match frame {
                Frame::Element(a, b) => {
                    let el = conn.bytes(a, b);
                    if xml::local_name(el) == b"message" {
                        if xml::start_tag_attr(el, "type") == Some(b"error") {
                            counters.bounced.fetch_add(1, Ordering::Relaxed);
                        } else {
                            got += 1;
                        }
                    }
                }
                Frame::End => return Err(ClientError::Closed("soak")),
                Frame::Header(..) => {}
            }
        }
        if got > 0 {
            counters.delivered.fetch_add(got, Ordering::Relaxed);
        }
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        if now >= next_send {
            seq += 1;
            conn.send(format!("{head}<body>soak {seq}</body></message>").as_bytes())
                .await?;
            counters.sent.fetch_add(1, Ordering::Relaxed);
            next_send = now + gap(rng);
            continue;
        }
        let wake_at = until.min(next_send);
        let input = future::or(async { Some(conn.fill().await) }, async {
            smol::Timer::at(wake_at).await;
            None
        })
        .await;
        if let Some(r) = input {
            r?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_lives_are_the_steady_state_residuals() {
        let mut rng = Rng::new(3);
        let n = 20_000;
        let lives: Vec<f64> = (0..n).map(|_| residual_life(60.0, &mut rng)).collect();
        assert!(lives.iter().all(|&l| (0.0..=90.0).contains(&l)));
        // E[L²] / (2 E[L]) for L uniform on [30, 90]: (60² + 60²/12) / 120 = 32.5.
        let mean = lives.iter().sum::<f64>() / n as f64;
        assert!((mean - 32.5).abs() < 1.0, "{mean}");
        let early = lives.iter().filter(|&&l| l < 30.0).count() as f64 / n as f64;
        assert!((early - 0.5).abs() < 0.02, "{early}");
    }
}
