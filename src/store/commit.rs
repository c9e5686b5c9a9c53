//! Group commit: writes submitted while a transaction is being committed are
//! gathered into the next one, so the disk sees one fsync per batch and the
//! event loop never waits on an fsync (commits run on the blocking pool).

use std::sync::Arc;

use smol::channel::{Receiver, Sender};

use super::StoreError;

/// One unit of work inside a write transaction. Ops from many callers share
/// one transaction; if any op fails, the batch is rolled back and every op is
/// replayed in a transaction of its own, so a bad op cannot take its
/// batch-mates down with it. That replay is why an op is `Fn`, not `FnOnce`.
pub type WriteOp = Box<dyn Fn(&redb::WriteTransaction) -> Result<(), StoreError> + Send>;

type Done = Sender<Result<(), StoreError>>;

pub(crate) struct Committer {
    tx: Sender<(WriteOp, Done)>,
    rx: Receiver<(WriteOp, Done)>,
    db: Arc<redb::Database>,
}

impl Committer {
    pub(crate) fn new(db: Arc<redb::Database>) -> Committer {
        let (tx, rx) = smol::channel::unbounded();
        Committer { tx, rx, db }
    }

    pub(crate) async fn submit(&self, op: WriteOp) -> Result<(), StoreError> {
        let (done_tx, done_rx) = smol::channel::bounded(1);
        self.tx
            .send((op, done_tx))
            .await
            .map_err(|_| StoreError::CommitAborted)?;
        done_rx
            .recv()
            .await
            .unwrap_or(Err(StoreError::CommitAborted))
    }

    pub(crate) async fn flush(&self) {
        let _ = self.submit(Box::new(|_| Ok(()))).await;
    }
}

/// Upper bound on ops per transaction, so one huge burst cannot hold
/// everything in memory until a single giant commit finishes.
const MAX_BATCH: usize = 4096;

pub(crate) async fn run(committer: std::rc::Rc<Committer>) {
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
        let db = committer.db.clone();
        let results = smol::unblock(move || commit_batch(&db, batch)).await;
        for (done, result) in results {
            let _ = done.try_send(result);
        }
    }
}

fn commit_batch(
    db: &redb::Database,
    batch: Vec<(WriteOp, Done)>,
) -> Vec<(Done, Result<(), StoreError>)> {
    let count = batch.len();
    match apply(db, batch.iter().map(|(op, _)| op)) {
        Ok(()) => {
            log::trace!("committed {count} writes in one transaction");
            batch.into_iter().map(|(_, done)| (done, Ok(()))).collect()
        }
        Err(e) if count == 1 => {
            log_failure(&e);
            let mut e = Some(e);
            batch
                .into_iter()
                .map(|(_, done)| (done, Err(e.take().unwrap_or(StoreError::CommitAborted))))
                .collect()
        }
        Err(_) => batch
            .into_iter()
            .map(|(op, done)| {
                let result = apply(db, std::iter::once(&op));
                if let Err(e) = &result {
                    log_failure(e);
                }
                (done, result)
            })
            .collect(),
    }
}

/// Refusals such as "exists already" are answers, not storage trouble.
fn log_failure(e: &StoreError) {
    match e {
        StoreError::AlreadyExists(_) | StoreError::NotFound(_) => log::debug!("write refused: {e}"),
        _ => log::warn!("database write failed: {e}"),
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
