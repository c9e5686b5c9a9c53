//! Group commit: writes submitted while a transaction is being committed are
//! gathered into the next one, so the disk sees one fsync per batch and the
//! event loop never waits on an fsync (commits run on the blocking pool).
//!
//! Every write gets a sequence number when it is submitted. Batches commit in
//! submission order, so "write n is on disk" implies "every write before n is
//! on disk"; [`Committer::committed`] is the highest number known processed.
//!
//! Output that reports a write waits behind a [`Waiter`] (the outbound
//! queues' gates): after each batch the committer tells the waiters of its
//! failed writes, then settles every waiter whose writes are all processed.
//! That is what releases held stanzas, so no task sits between the disk and
//! the clients' queues.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
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

/// What the failure hook is told after a batch in which a write failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    /// The highest sequence number processed.
    pub processed: u64,
    /// The sequence numbers of the writes that failed (refusals aside).
    pub failed: Vec<u64>,
    /// A failure of the storage itself (see
    /// [`StoreError::is_storage_failure`]): no later write will succeed.
    pub storage_failed: bool,
    /// ... because the disk is full (it may have room again later).
    pub disk_full: bool,
}

pub type FailureHook = Box<dyn Fn(&BatchFailure)>;

/// Output waiting for writes (see the module documentation).
pub trait Waiter {
    /// The sequence number after which it may be settled.
    fn required(&self) -> u64;
    /// One of its writes failed.
    fn write_failed(&self, error: &StoreError);
    /// Everything it waits for is processed.
    fn settle(&self);
}

/// Who learns the outcome of a write.
enum Notify {
    Ticket(Done),
    Waiter(Rc<dyn Waiter>),
}

struct Submitted {
    seq: u64,
    op: WriteOp,
    notify: Notify,
}

/// A waiter in the committer's queue, ordered by what it waits for, then
/// by arrival.
struct Watched {
    required: u64,
    arrival: u64,
    waiter: Rc<dyn Waiter>,
}

impl PartialEq for Watched {
    fn eq(&self, other: &Self) -> bool {
        (self.required, self.arrival) == (other.required, other.arrival)
    }
}

impl Eq for Watched {}

impl PartialOrd for Watched {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Watched {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.required, self.arrival).cmp(&(other.required, other.arrival))
    }
}

pub(crate) struct Committer {
    tx: Sender<Submitted>,
    rx: Receiver<Submitted>,
    db: Arc<redb::Database>,
    submitted: Cell<u64>,
    committed: Rc<Cell<u64>>,
    waiting: RefCell<BinaryHeap<Reverse<Watched>>>,
    arrivals: Cell<u64>,
    /// Called after a batch in which a write failed (not a refusal), with
    /// the highest sequence number processed (the server reloads from
    /// disk what it keeps in memory, where no later write is in flight).
    on_failure: RefCell<Option<FailureHook>>,
    #[cfg(test)]
    failures_to_inject: Cell<usize>,
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
            waiting: RefCell::new(BinaryHeap::new()),
            arrivals: Cell::new(0),
            on_failure: RefCell::new(None),
            #[cfg(test)]
            failures_to_inject: Cell::new(0),
        }
    }

    /// Queues `op` for the next batch, right now: two submits made one after
    /// the other reach the disk in that order, whoever awaits first.
    pub(crate) fn submit(&self, op: WriteOp) -> WriteTicket {
        self.submit_ticket(self.injected(op))
    }

    fn submit_ticket(&self, op: WriteOp) -> WriteTicket {
        let (done, outcome) = smol::channel::bounded(1);
        let seq = self.next_seq();
        match self.tx.try_send(Submitted {
            seq,
            op,
            notify: Notify::Ticket(done),
        }) {
            Ok(()) => WriteTicket {
                seq,
                outcome: TicketOutcome::Pending(outcome),
            },
            Err(_) => WriteTicket::ready(seq, Err(StoreError::CommitAborted)),
        }
    }

    /// Queues `op`; `waiter` hears if it fails. Returns its sequence
    /// number (for the waiter to require).
    pub(crate) fn submit_for(&self, op: WriteOp, waiter: Rc<dyn Waiter>) -> u64 {
        let seq = self.next_seq();
        let op = self.injected(op);
        if let Err(e) = self.tx.try_send(Submitted {
            seq,
            op,
            notify: Notify::Waiter(waiter),
        }) && let Notify::Waiter(waiter) = e.into_inner().notify
        {
            waiter.write_failed(&StoreError::CommitAborted);
        }
        seq
    }

    fn next_seq(&self) -> u64 {
        let seq = self.submitted.get() + 1;
        self.submitted.set(seq);
        seq
    }

    /// Tests: the next `count` writes submitted (not flushes) fail, as a
    /// write the disk cannot take would, but without latching the database.
    #[cfg(test)]
    pub(crate) fn fail_next_writes(&self, count: usize) {
        self.failures_to_inject.set(count);
    }

    #[cfg(test)]
    fn injected(&self, op: WriteOp) -> WriteOp {
        match self.failures_to_inject.get() {
            0 => op,
            n => {
                self.failures_to_inject.set(n - 1);
                Box::new(|_| Err(StoreError::WriteFailed("injected by a test".into())))
            }
        }
    }

    #[cfg(not(test))]
    fn injected(&self, op: WriteOp) -> WriteOp {
        op
    }

    /// Settles `waiter` once every write it requires is processed (now,
    /// if they are, or if the committer has stopped).
    pub(crate) fn watch(&self, waiter: Rc<dyn Waiter>) {
        let required = waiter.required();
        if required <= self.committed.get() || self.tx.is_closed() {
            waiter.settle();
            return;
        }
        let arrival = self.arrivals.get() + 1;
        self.arrivals.set(arrival);
        self.waiting.borrow_mut().push(Reverse(Watched {
            required,
            arrival,
            waiter,
        }));
    }

    pub(crate) fn on_failure(&self, hook: FailureHook) {
        *self.on_failure.borrow_mut() = Some(hook);
    }

    /// Settles the waiters whose writes are all processed, in order.
    fn settle_through(&self, committed: u64) {
        loop {
            let next = {
                let mut waiting = self.waiting.borrow_mut();
                match waiting.peek() {
                    Some(Reverse(w)) if w.required <= committed => waiting.pop(),
                    _ => None,
                }
            };
            match next {
                Some(Reverse(watched)) => watched.waiter.settle(),
                None => return,
            }
        }
    }

    /// The highest sequence number whose batch has been processed.
    pub(crate) fn committed(&self) -> u64 {
        self.committed.get()
    }

    pub(crate) async fn flush(&self) {
        let _ = self.submit_ticket(Box::new(|_| Ok(()))).wait().await;
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
        let mut ops = Vec::new();
        let mut notify = Vec::new();
        let mut seqs = Vec::new();
        let mut next = Some(first);
        while let Some(item) = next {
            seqs.push(item.seq);
            ops.push(item.op);
            notify.push(item.notify);
            // Bounded: one huge burst must not become one giant commit.
            next = if ops.len() < MAX_BATCH {
                committer.rx.try_recv().ok()
            } else {
                None
            };
        }
        let db = committer.db.clone();
        let results = smol::unblock(move || commit_batch(&db, &ops)).await;
        let last_seq = seqs.iter().copied().max().unwrap_or(0);
        committer
            .committed
            .set(committer.committed.get().max(last_seq));
        let mut failure = BatchFailure {
            processed: committer.committed.get(),
            failed: Vec::new(),
            storage_failed: false,
            disk_full: false,
        };
        for ((notify, result), seq) in notify.into_iter().zip(results).zip(seqs) {
            if let Err(e) = &result
                && !e.is_refusal()
            {
                failure.failed.push(seq);
                failure.storage_failed |= e.is_storage_failure();
                failure.disk_full |= e.is_disk_full();
            }
            match notify {
                Notify::Ticket(done) => {
                    let _ = done.try_send(result);
                }
                Notify::Waiter(waiter) => {
                    if let Err(e) = &result {
                        waiter.write_failed(e);
                    }
                }
            }
        }
        if !failure.failed.is_empty()
            && let Some(hook) = &*committer.on_failure.borrow()
        {
            hook(&failure);
        }
        committer.settle_through(last_seq);
    }
}

fn commit_batch(db: &redb::Database, ops: &[WriteOp]) -> Vec<Result<(), StoreError>> {
    let count = ops.len();
    match apply(db, ops.iter()) {
        Ok(()) => {
            log::trace!("committed {count} writes in one transaction");
            ops.iter().map(|_| Ok(())).collect()
        }
        Err(e) if count == 1 => {
            log_failure(&e);
            vec![Err(e)]
        }
        Err(_) => ops
            .iter()
            .map(|op| {
                let result = apply(db, std::iter::once(op));
                if let Err(e) = &result {
                    log_failure(e);
                }
                result
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
