//! Reading our fragmented MP4 files back (ISO/IEC 14496-12), as `fmp4` writes them and as a
//! crash may leave them: the init segment's tracks and codec configuration, then every
//! fragment's samples with their absolute byte offsets in the file, without reading a byte of
//! payload. Owns parsing only; it never opens a file (sans-IO, like the rest of the crate).
//!
//! ```text
//! file      ftyp moov (moof mdat)* [torn tail]
//! boxes     BoxHeader::parse, top_level_boxes (size/type/offset; a torn last box is
//!           reported, not an error), children (inside a box body)
//! init      InitSegment::parse(moov): tracks (id, handler, timescale, width/height, sample
//!           entry bytes, avcC/hvcC payload), trex defaults; the moov bytes are kept
//! fragment  Fragment::parse(moof, offset, init, ..): tfhd/tfdt/trun -> Sample { offset,
//!           size, dts, duration, composition_offset, flags } (keyframe from the flags)
//! scanner   Scanner: walks a file by asking the caller for byte ranges (Step::Read), reads
//!           only headers, moov and moofs (mdat is skipped), checks each fragment's samples
//!           lie in the mdat that follows it, and ends with where the file's last complete
//!           fragment ends (End::valid_len) and why the rest, if any, is unusable (End::tail)
//! read      the scanner over a file already in memory
//! ```
//!
//! A recorder reconciling a file after a crash runs the `Scanner` with its file's length,
//! truncates to `End::valid_len` when `End::tail` is set, and indexes the fragments it was
//! given. An exporter takes `Sample::offset`/`size` to read payloads itself.
//!
//! Panic policy: no input causes a panic; hostile sizes are bounded (`MAX_HEADER_BOX`,
//! per-`trun` sample counts) before anything is allocated. `fuzz/fuzz_targets/mp4read.rs`
//! and the property tests in `tests/mp4read_properties.rs` hold us to it.

mod boxes;
mod fragment;
mod init;

pub use boxes::{BoxHeader, FourCc, TopBox, top_level_boxes};
pub use fragment::{Fragment, Sample, TrackRun};
pub use init::{InitSegment, InitTrack, SampleDefaults};

use crate::MediaError;
use boxes::show;

/// The largest `moov` or `moof` the scanner reads into memory (a moof of one second of video
/// at 1000 fps is 16 KiB; a moov a few hundred bytes).
pub const MAX_HEADER_BOX: u64 = 16 << 20;

/// Why the bytes from `offset` on cannot be used: a torn write (the file ends inside a box),
/// a fragment without its media data, or bytes that are not what our files hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tail {
    pub offset: u64,
    pub reason: String,
}

/// How a scan ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct End {
    /// Where the last complete unit (the init segment, a whole moof + mdat, or another whole
    /// top-level box) ends: truncating the file here leaves only what was handed out.
    pub valid_len: u64,
    /// `None` when the whole file was read; else where and why reading stopped.
    pub tail: Option<Tail>,
}

/// What the scanner wants next, or what it found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Feed `len` bytes of the file from `offset` with `Scanner::feed` (fewer if the file
    /// has fewer: that is a torn tail, not a caller error).
    Read { offset: u64, len: usize },
    /// The init segment was read: see `Scanner::init`.
    Init,
    /// A complete fragment (its moof and the whole mdat after it).
    Fragment(Fragment),
    /// The scan is over; later calls return the same.
    End(End),
}

#[derive(Clone, Debug)]
enum State {
    /// Wants the box header at `pos`.
    Header,
    /// Wants the whole box (moov or moof) at `pos`.
    Body(BoxHeader, u64),
    /// Has something to hand out before going on.
    Ready(Box<Step>),
    Done(End),
}

/// Walks a fragmented MP4 file of known length, asking for the byte ranges it needs.
///
/// ```text
/// let mut scan = Scanner::new(file_len);
/// loop {
///     match scan.step() {
///         Step::Read { offset, len } => { let bytes = read_at(offset, len); scan.feed(&bytes) }
///         Step::Init => { let init = scan.init(); .. }
///         Step::Fragment(f) => index(f),
///         Step::End(end) => break end,
///     }
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Scanner {
    file_len: u64,
    pos: u64,
    state: State,
    init: Option<InitSegment>,
    /// A parsed moof whose mdat has not been seen yet.
    pending: Option<Fragment>,
    /// Where each track's last fragment ended (for a traf without tfdt).
    next_dts: Vec<(u32, u64)>,
    valid_len: u64,
}

impl Scanner {
    /// A scanner for a file of `file_len` bytes.
    pub fn new(file_len: u64) -> Scanner {
        Scanner {
            file_len,
            pos: 0,
            state: State::Header,
            init: None,
            pending: None,
            next_dts: Vec::new(),
            valid_len: 0,
        }
    }

    /// The init segment, once `Step::Init` was returned.
    pub fn init(&self) -> Option<&InitSegment> {
        self.init.as_ref()
    }

    /// Takes the init segment out (for a caller done scanning).
    pub fn into_init(self) -> Option<InitSegment> {
        self.init
    }

    /// What to do next.
    pub fn step(&mut self) -> Step {
        match std::mem::replace(&mut self.state, State::Header) {
            State::Ready(step) => *step,
            State::Done(end) => {
                self.state = State::Done(end.clone());
                Step::End(end)
            }
            State::Body(h, len) => {
                self.state = State::Body(h, len);
                // The length was bounded by MAX_HEADER_BOX when the header was read.
                Step::Read {
                    offset: h.offset,
                    len: len as usize,
                }
            }
            State::Header => {
                let remaining = self.file_len.saturating_sub(self.pos);
                if remaining == 0 {
                    return self.finish_at_eof();
                }
                Step::Read {
                    offset: self.pos,
                    len: remaining.min(16) as usize,
                }
            }
        }
    }

    /// The bytes asked for by the last `Step::Read`.
    pub fn feed(&mut self, bytes: &[u8]) {
        match std::mem::replace(&mut self.state, State::Header) {
            State::Header => self.feed_header(bytes),
            State::Body(h, len) => self.feed_body(h, len, bytes),
            other => self.state = other,
        }
    }

    fn stop(&mut self, offset: u64, reason: String) {
        // A moof waiting for its mdat is lost with whatever stopped us.
        let offset = self.pending.take().map_or(offset, |p| p.offset);
        self.state = State::Done(End {
            valid_len: self.valid_len.min(offset),
            tail: Some(Tail { offset, reason }),
        });
    }

    fn finish_at_eof(&mut self) -> Step {
        if let Some(p) = &self.pending {
            let offset = p.offset;
            self.stop(offset, format!("moof at {offset} has no mdat"));
        } else if self.init.is_none() {
            let at = self.pos;
            self.stop(at, format!("the file ends at {at} before any moov"));
        } else {
            self.state = State::Done(End {
                valid_len: self.valid_len,
                tail: None,
            });
        }
        self.step()
    }

    fn feed_header(&mut self, bytes: &[u8]) {
        let pos = self.pos;
        let h = match BoxHeader::parse(bytes, pos) {
            Ok(h) if h.kind == [0; 4] => {
                return self.stop(pos, format!("zero-filled bytes at {pos}"));
            }
            Ok(h) => h,
            Err(MediaError::Truncated { .. }) => {
                return self.stop(pos, format!("torn box header at {pos}"));
            }
            Err(e) => return self.stop(pos, e.to_string()),
        };
        let len = h.len_within(self.file_len);
        let end = pos.saturating_add(len);
        if end > self.file_len {
            return self.stop(
                pos,
                format!(
                    "{} box of {len} bytes at {pos} is torn: the file ends at {}",
                    show(h.kind),
                    self.file_len
                ),
            );
        }
        match &h.kind {
            b"moov" | b"moof" => {
                if &h.kind == b"moov" && self.init.is_some() {
                    return self.stop(pos, format!("a second moov at {pos}"));
                }
                if &h.kind == b"moof" && self.init.is_none() {
                    return self.stop(pos, format!("moof at {pos} before any moov"));
                }
                if let Some(p) = &self.pending {
                    let at = p.offset;
                    return self.stop(at, format!("moof at {at} has no mdat"));
                }
                if len > MAX_HEADER_BOX {
                    return self.stop(pos, format!("{} box of {len} bytes", show(h.kind)));
                }
                self.state = State::Body(h, len);
            }
            b"mdat" => {
                if let Some(f) = self.pending.take() {
                    let payload = h.body_offset()..end;
                    match f.data_range() {
                        Some(r) if r.start < payload.start || r.end > payload.end => {
                            let at = f.offset;
                            self.pending = Some(f);
                            return self.stop(
                                at,
                                format!("samples of the moof at {at} lie outside its mdat"),
                            );
                        }
                        _ => {}
                    }
                    for t in &f.tracks {
                        let end_dts = t.end_decode_time();
                        match self.next_dts.iter_mut().find(|(id, _)| *id == t.track_id) {
                            Some(slot) => slot.1 = end_dts,
                            None => self.next_dts.push((t.track_id, end_dts)),
                        }
                    }
                    self.state = State::Ready(Box::new(Step::Fragment(f)));
                }
                self.valid_len = end;
                self.pos = end;
            }
            _ => {
                // ftyp, styp, sidx, free, ...: complete, not ours to read. Between a moof and
                // its mdat they do not make the fragment complete.
                if self.pending.is_none() {
                    self.valid_len = end;
                }
                self.pos = end;
            }
        }
    }

    fn feed_body(&mut self, h: BoxHeader, len: u64, bytes: &[u8]) {
        let pos = h.offset;
        if (bytes.len() as u64) < len {
            return self.stop(
                pos,
                format!("{} box at {pos} is torn: short read", show(h.kind)),
            );
        }
        let end = pos + len;
        if &h.kind == b"moov" {
            match InitSegment::parse(bytes) {
                Ok(init) => {
                    self.init = Some(init);
                    self.valid_len = end;
                    self.pos = end;
                    self.state = State::Ready(Box::new(Step::Init));
                }
                Err(e) => self.stop(pos, e.to_string()),
            }
            return;
        }
        let Some(init) = &self.init else {
            return self.stop(pos, format!("moof at {pos} before any moov"));
        };
        let next = &self.next_dts;
        let continue_from = |id: u32| next.iter().find(|(t, _)| *t == id).map_or(0, |(_, d)| *d);
        match Fragment::parse(bytes, pos, init, continue_from) {
            Ok(f) => {
                self.pending = Some(f);
                self.pos = end;
            }
            Err(e) => self.stop(pos, format!("moof at {pos}: {e}")),
        }
    }
}

/// Everything a scan of a whole file found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileContents {
    pub init: Option<InitSegment>,
    pub fragments: Vec<Fragment>,
    pub end: End,
}

/// Scans a file held in memory (tests, small files; a server scans files with `Scanner`
/// so it never reads the media data).
pub fn read(data: &[u8]) -> FileContents {
    let mut scan = Scanner::new(data.len() as u64);
    let mut fragments = Vec::new();
    let end = loop {
        match scan.step() {
            Step::Read { offset, len } => {
                // offset <= data.len() (the scanner never asks past file_len), so the casts
                // are lossless and the slice is in bounds.
                let start = offset as usize;
                let stop = start.saturating_add(len).min(data.len());
                scan.feed(data.get(start..stop).unwrap_or_default());
            }
            Step::Init => {}
            Step::Fragment(f) => fragments.push(f),
            Step::End(end) => break end,
        }
    };
    FileContents {
        init: scan.into_init(),
        fragments,
        end,
    }
}

#[cfg(test)]
mod tests;
