//! Group commit: writes submitted while a transaction is being committed are
//! gathered into the next one, so the disk sees one fsync per batch and the
//! event loop never waits on an fsync (commits run on the blocking pool).
//!
//! Every write gets a sequence number when it is submitted. Batches commit in
//! submission order, so "write n is on disk" implies "every write before n is
//! on disk"; [`Committer::committed`] is the highest number known processed.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use smol::channel::{Receiver, Sender};

use super::StoreError;

/// One unit of work inside a write transaction. Ops from many callers share
/// one transaction; if any op fails, the batch is rolled back and every op is
/// replayed in a transaction of its own, so a bad op cannot take its
/// batch-mates down with it. That replay is why an op is `Fn`, not `FnOnce`.
pub type WriteOp = Box<dyn Fn(&redb::WriteTransaction) -> Result<(), StoreError> + Send>;

type Done = Sender<Result<(), StoreError>>;

struct Submitted {
    seq: u64,
    op: WriteOp,
    done: Done,
}

pub(crate) struct Committer {
    tx: Sender<Submitted>,
    rx: Receiver<Submitted>,
    db: Arc<redb::Database>,
    submitted: Cell<u64>,
    committed: Rc<Cell<u64>>,
}

/// A submitted write: await [`WriteTicket::wait`] to learn that it is on
/// disk (or why not). Dropping a ticket does not cancel the write.
pub struct WriteTicket {
    seq: u64,
    outcome: TicketOutcome,
}

enum TicketOutcome {
    Pending(Receiver<Result<(), StoreError>>),
    Ready(Result<(), StoreError>),
}

impl WriteTicket {
    pub(crate) fn ready(seq: u64, result: Result<(), StoreError>) -> WriteTicket {
        WriteTicket {
            seq,
            outcome: TicketOutcome::Ready(result),
        }
    }

    /// The write's place in the commit order.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub async fn wait(self) -> Result<(), StoreError> {
        match self.outcome {
            TicketOutcome::Ready(result) => result,
            TicketOutcome::Pending(rx) => rx.recv().await.unwrap_or(Err(StoreError::CommitAborted)),
        }
    }
}

impl Committer {
    pub(crate) fn new(db: Arc<redb::Database>) -> Committer {
        let (tx, rx) = smol::channel::unbounded();
        Committer {
            tx,
            rx,
            db,
            submitted: Cell::new(0),
            committed: Rc::new(Cell::new(0)),
        }
    }

    /// Queues `op` for the next batch, right now: two submits made one after
    /// the other reach the disk in that order, whoever awaits first.
    pub(crate) fn submit(&self, op: WriteOp) -> WriteTicket {
        let seq = self.submitted.get() + 1;
        self.submitted.set(seq);
        let (done, outcome) = smol::channel::bounded(1);
        match self.tx.try_send(Submitted { seq, op, done }) {
            Ok(()) => WriteTicket {
                seq,
                outcome: TicketOutcome::Pending(outcome),
            },
            Err(_) => WriteTicket::ready(seq, Err(StoreError::CommitAborted)),
        }
    }

    /// The highest sequence number whose batch has been processed.
    pub(crate) fn committed(&self) -> u64 {
        self.committed.get()
    }

    pub(crate) async fn flush(&self) {
        let _ = self.submit(Box::new(|_| Ok(()))).wait().await;
    }
}

/// Upper bound on ops per transaction, so one huge burst cannot hold
/// everything in memory until a single giant commit finishes.
const MAX_BATCH: usize = 4096;

pub(crate) async fn run(committer: Rc<Committer>) {
    loop {
        let Ok(first) = committer.rx.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match committer.rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let last_seq = batch.iter().map(|s| s.seq).max().unwrap_or(0);
        let db = committer.db.clone();
        let results = smol::unblock(move || commit_batch(&db, batch)).await;
        committer
            .committed
            .set(committer.committed.get().max(last_seq));
        for (done, result) in results {
            let _ = done.try_send(result);
        }
    }
}

fn commit_batch(db: &redb::Database, batch: Vec<Submitted>) -> Vec<(Done, Result<(), StoreError>)> {
    let count = batch.len();
    match apply(db, batch.iter().map(|s| &s.op)) {
        Ok(()) => {
            log::trace!("committed {count} writes in one transaction");
            batch.into_iter().map(|s| (s.done, Ok(()))).collect()
        }
        Err(e) if count == 1 => {
            log_failure(&e);
            let mut e = Some(e);
            batch
                .into_iter()
                .map(|s| (s.done, Err(e.take().unwrap_or(StoreError::CommitAborted))))
                .collect()
        }
        Err(_) => batch
            .into_iter()
            .map(|s| {
                let result = apply(db, std::iter::once(&s.op));
                if let Err(e) = &result {
                    log_failure(e);
                }
                (s.done, result)
            })
            .collect(),
    }
}

/// Refusals such as "exists already" are answers, not storage trouble.
fn log_failure(e: &StoreError) {
    if e.is_refusal() {
        log::debug!("write refused: {e}");
    } else {
        log::warn!("database write failed: {e}");
    }
}

fn apply<'a>(
    db: &redb::Database,
    ops: impl Iterator<Item = &'a WriteOp>,
) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    for op in ops {
        op(&txn)?;
    }
    txn.commit()?;
    Ok(())
}
