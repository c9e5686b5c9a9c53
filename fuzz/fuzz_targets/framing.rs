//! The WebSocket/BOSH framing translator (`perch::net::framing`) on
//! arbitrary bytes: the output splitter fed in arbitrary pieces and the
//! input translator on arbitrary frames never panic and never loop.
//!
//! Input: the first byte picks the chunk size; the rest is both the server
//! output given to `OutputSplitter` and one client frame given to
//! `InputTranslator::frame` (and so is every piece the splitter returns).
//!
//! Properties: every payload is bounded by the input (an element gains
//! at most a namespace declaration; an `<open/>` re-escapes attribute values,
//! at most 6 bytes per input byte, as `'` becomes `&apos;`); the pieces
//! other than keepalives are the same however the bytes are split (a
//! whitespace run is reported once per push); everything pushed is consumed
//! or still pending (no piece lost); an element piece is one element to the
//! input side too; a refused frame appends nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch::net::framing::{FrameKind, FramingError, InputTranslator, OutPiece, OutputSplitter};

/// Fixed overhead of a payload: the `<open/>` element and its attribute
/// names, or an inserted namespace declaration.
const OVERHEAD: usize = 160;

/// Every non-keepalive piece of `chunks`, with its payload.
fn pieces<'a>(chunks: impl Iterator<Item = &'a [u8]>, total: usize) -> Vec<(OutPiece, Vec<u8>)> {
    let mut splitter = OutputSplitter::new();
    let mut payload = Vec::new();
    let mut out = Vec::new();
    for chunk in chunks {
        splitter.push(chunk);
        // Each piece consumes at least one byte, so this ends.
        let mut guard = 0;
        while let Some(piece) = splitter.next_piece(&mut payload) {
            guard += 1;
            assert!(guard <= total + 1, "more pieces than bytes");
            match piece {
                OutPiece::Keepalive => assert!(payload.is_empty(), "a keepalive with a payload"),
                OutPiece::Open(_) => assert!(payload.len() <= 6 * total + OVERHEAD, "open grew"),
                OutPiece::Element | OutPiece::Close => {
                    assert!(payload.len() <= total + OVERHEAD, "element grew")
                }
            }
            if piece != OutPiece::Keepalive {
                out.push((piece, payload.clone()));
            }
        }
        splitter.release();
    }
    out
}

fn check_frame(text: &[u8]) -> Result<FrameKind, FramingError> {
    let mut into = b"x".to_vec();
    let result = InputTranslator::frame(text, &mut into);
    let appended = into.len() - 1;
    match &result {
        Err(_) | Ok(FrameKind::Empty) => assert_eq!(appended, 0, "appended on {result:?}"),
        Ok(FrameKind::Element) => {
            // The element as it came, without what surrounds it.
            let element = &into[1..];
            assert!(
                !element.is_empty() && element.len() <= text.len(),
                "element changed"
            );
            assert!(
                text.windows(element.len()).any(|w| w == element),
                "element changed"
            );
        }
        Ok(FrameKind::Open) => assert!(appended <= 6 * text.len() + OVERHEAD, "header grew"),
        Ok(FrameKind::Close) => assert_eq!(&into[1..], b"</stream:stream>"),
    }
    result
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let whole = pieces(std::iter::once(input), input.len());
    let size = usize::from(split % 16) + 1;
    let chunked = pieces(input.chunks(size), input.len());
    assert_eq!(whole, chunked, "split into pieces of {size} bytes");
    for (piece, payload) in &whole {
        if *piece == OutPiece::Element {
            // Only an `<open>`/`<close>` (parsed as such) may be refused.
            match check_frame(payload) {
                Ok(_) | Err(FramingError::BadOpen(_) | FramingError::BadClose(_)) => {}
                Err(e) => panic!("an element piece was refused: {e}"),
            }
        }
    }
    let _ = check_frame(input);
});
