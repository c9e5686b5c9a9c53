//! The XML framer fed arbitrary bytes in arbitrary pieces: it never
//! panics, and the pieces do not matter (the same events, the same error,
//! whether the input came at once or a few bytes at a time).
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch::xml::{Framer, Limits};

fn limits() -> Limits {
    Limits {
        max_stanza_bytes: 4096,
        max_depth: 8,
    }
}

/// Every event (or the error that ended the stream) from `pieces`.
fn events<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    let mut framer = Framer::new(limits());
    let mut out = Vec::new();
    for piece in pieces {
        framer.push(piece);
        loop {
            match framer.next_event() {
                Ok(Some(event)) => out.push(format!("{event:?}")),
                Ok(None) => break,
                Err(e) => {
                    out.push(format!("error {e:?}"));
                    return out;
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let whole = events(std::iter::once(input));
    let size = usize::from(split % 16) + 1;
    let pieces = events(input.chunks(size));
    assert_eq!(whole, pieces, "split into pieces of {size} bytes");
});
