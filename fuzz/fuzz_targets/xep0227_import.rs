//! `perch import` (XEP-0227) fed arbitrary documents: up to three files
//! (cut at 0 bytes: `main.xml`, `h.xml` and `u/u.xml`, so includes between
//! them can be followed), imported as one file or as their directory (bit
//! 0 of the first byte) into a database opened once per process and
//! replaced every few hundred runs, so it stays small.
//!
//! Properties: it never panics; a rejected import says why and changes
//! nothing; an accepted one stores exactly the users it reports, each
//! once, with credentials, and gives a reason for every user it skipped.
#![no_main]

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use perch::portable::{PortableError, import};
use perch::store::Store;

const HOSTS: [&str; 3] = ["capulet.lit", "montague.lit", "localhost"];
/// The files the input fills, in order; includes name them relatively.
const FILES: [&str; 3] = ["main.xml", "h.xml", "u/u.xml"];
/// Runs on one database before it is replaced by an empty one.
const RUNS_PER_DATABASE: u32 = 500;
/// A `password` attribute costs two key derivations (slow on purpose);
/// inputs with more are passed over so the fuzzer keeps its pace.
const MAX_PASSWORDS: usize = 4;

struct Scratch {
    base: PathBuf,
    store: Store,
    generation: u32,
    runs: u32,
}

impl Scratch {
    fn new() -> Scratch {
        // Memory-backed where there is such a place: every import commits.
        let shm = Path::new("/dev/shm");
        let parent = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        remove_leftovers(&parent);
        let base = parent.join(format!("{SCRATCH_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("doc").join("u")).expect("scratch directory");
        let store = open(&base, 0);
        Scratch {
            base,
            store,
            generation: 0,
            runs: 0,
        }
    }

    fn docs(&self) -> PathBuf {
        self.base.join("doc")
    }

    /// A fresh database every [`RUNS_PER_DATABASE`] runs.
    fn rotate(&mut self) {
        self.runs += 1;
        if self.runs < RUNS_PER_DATABASE {
            return;
        }
        self.runs = 0;
        let old = database(&self.base, self.generation);
        self.generation += 1;
        self.store = open(&self.base, self.generation);
        let _ = std::fs::remove_file(old);
    }
}

const SCRATCH_PREFIX: &str = "perch-fuzz-xep0227-";

/// libFuzzer ends the process with `exit`, so no destructor removes the
/// scratch directory: the next run removes those of processes that are
/// gone (where `/proc` tells which are alive).
fn remove_leftovers(parent: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(SCRATCH_PREFIX)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn database(base: &Path, generation: u32) -> PathBuf {
    base.join(format!("db-{generation}.redb"))
}

fn open(base: &Path, generation: u32) -> Store {
    Store::open(&database(base, generation), 1 << 20).expect("open the scratch database")
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

/// Why an import was refused, which must not be empty.
fn reason(e: &PortableError) -> String {
    match e {
        PortableError::Xml(_, why) | PortableError::Format(_, why) => why.clone(),
        PortableError::BadUserData(why) => why.clone(),
        PortableError::Io(_, e) => e.to_string(),
        other => panic!("an import failed for a reason other than its input: {other}"),
    }
}

fn run(scratch: &mut Scratch, data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if rest.windows(8).filter(|w| *w == b"password").count() > MAX_PASSWORDS {
        return;
    }
    scratch.rotate();
    let docs = scratch.docs();
    let mut parts = rest.split(|&b| b == 0);
    for name in FILES {
        let path = docs.join(name);
        match parts.next() {
            Some(bytes) => std::fs::write(&path, bytes).expect("write a document"),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let target = if mode & 1 != 0 {
        docs
    } else {
        docs.join(FILES[0])
    };
    let store = &scratch.store;
    let accounts = || store.accounts().count().expect("count accounts");
    let before = accounts();
    let hosts: Vec<String> = HOSTS.iter().map(|h| h.to_string()).collect();
    match import(store, &target, &hosts) {
        Err(e) => {
            assert!(
                !reason(&e).trim().is_empty(),
                "refused without a reason: {e:?}"
            );
            assert_eq!(accounts(), before, "a refused import stored accounts");
        }
        Ok(report) => {
            let mut unique = report.imported.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), report.imported.len(), "a user imported twice");
            assert_eq!(
                accounts(),
                before + report.imported.len() as u64,
                "stored accounts and the report disagree"
            );
            for jid in &report.imported {
                let credentials = store.accounts().credentials(jid).expect("read");
                assert!(credentials.is_some(), "{jid} reported but not stored");
            }
            for line in report.skipped.iter().chain(&report.notices) {
                assert!(!line.trim().is_empty(), "a user skipped without a reason");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        run(scratch.get_or_insert_with(Scratch::new), data);
    });
});
