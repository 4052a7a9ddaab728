//! Arbitrary bytes as an RTSP connection's stream of messages and `$`-interleaved frames,
//! fed to the decoder in arbitrary pieces: it never panics, gives the same items (or the
//! same error) whatever the pieces, holds a bounded amount, and every frame it yields
//! re-frames to the bytes it came from.

use rtsp::framing::{Decoder, Item, MAX_FRAME, interleave};
use rtsp::message::{MAX_BODY, MAX_HEAD, ParseError};

fn drain(d: &mut Decoder, out: &mut Vec<Result<Item, ParseError>>) {
    loop {
        match d.next_item() {
            Ok(Some(i)) => out.push(Ok(i)),
            Ok(None) => return,
            Err(e) => {
                out.push(Err(e));
                return;
            }
        }
    }
}

/// The fuzz target's body: `fuzz/fuzz_targets/rtsp_framing.rs` runs it under libFuzzer, and the
/// owning crate's `tests/fuzz_corpus.rs` replays `fuzz/corpus/rtsp_framing/` through it.
pub fn run(data: &[u8]) {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let (mut whole, mut pieces) = (Decoder::new(), Decoder::new());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    whole.feed(data);
    drain(&mut whole, &mut a);
    for piece in data.chunks(chunk) {
        if matches!(b.last(), Some(Err(_))) {
            break;
        }
        pieces.feed(piece);
        drain(&mut pieces, &mut b);
        assert!(pieces.buffered() <= MAX_HEAD + MAX_BODY + MAX_FRAME + chunk);
    }
    assert_eq!(a, b);
    for item in a.iter().flatten() {
        if let Item::Data { channel, payload } = item {
            let framed = interleave(*channel, payload);
            assert_eq!(framed.len(), 4 + payload.len());
            assert_eq!(&framed[4..], &payload[..]);
        }
    }
}
