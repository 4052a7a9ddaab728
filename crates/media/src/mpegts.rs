//! A minimal MPEG transport stream (ISO/IEC 13818-1) for one video elementary stream: the
//! muxer that feeds our frames to ffmpeg and the demuxer that reads ffmpeg's output back.
//!
//! Why MPEG-TS: it is the simplest container that keeps both timestamps per access unit and
//! can be read from a pipe by ffmpeg with no seeking and no end-of-fragment delay (fMP4 needs
//! the next frame's decode time to close a fragment). Only what the two directions need is
//! here: PAT, PMT, one video PID, PES with PTS/DTS, PCR on the video PID. Audio and other
//! PIDs of the input are skipped by the demuxer; the muxer writes video only.
//!
//! It owns bytes and 90 kHz timestamps only (no I/O, no clock). Input never panics: a damaged
//! packet is skipped, a PES that grows past `MAX_PES` is dropped.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::{BufMut, Bytes, BytesMut};

use crate::annexb::{is_keyframe_nal, nal_type, split_annexb, split_length_prefixed};
use crate::{Codec, CodecParams, Frame, MediaError, TrackParams};

/// Size of one transport stream packet.
pub const PACKET: usize = 188;
const SYNC: u8 = 0x47;
const PAT_PID: u16 = 0;
const PMT_PID: u16 = 0x1000;
const VIDEO_PID: u16 = 0x100;
/// stream_type values of the PMT (ISO/IEC 13818-1 Table 2-34).
const STREAM_H264: u8 = 0x1b;
const STREAM_H265: u8 = 0x24;
/// A PES larger than this is not a video frame we want (4K intra frames are a few MiB).
const MAX_PES: usize = 16 << 20;
const TS_MASK: i64 = (1 << 33) - 1;

/// MPEG-2 CRC-32 (polynomial 0x04C11DB7, not reflected) of PSI sections.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Writes our video frames as a transport stream.
pub struct TsMuxer {
    codec: Codec,
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
}

impl TsMuxer {
    pub fn new(codec: Codec) -> TsMuxer {
        TsMuxer {
            codec,
            cc_pat: 0,
            cc_pmt: 0,
            cc_video: 0,
        }
    }

    /// The packets of one frame: PAT and PMT before every keyframe (so a reader can start
    /// there), then the PES. Audio frames and frames of another codec give nothing. The frame's
    /// parameter sets are repeated before each keyframe, since cameras often send them out of
    /// band (in the SDP) only.
    pub fn frame(&mut self, frame: &Frame) -> Result<Bytes, MediaError> {
        let Some(params) = frame.video() else {
            return Ok(Bytes::new());
        };
        if params.codec != self.codec {
            return Ok(Bytes::new());
        }
        let nals = split_length_prefixed(&frame.data)?;
        let mut es = BytesMut::with_capacity(frame.data.len() + 64);
        // An access unit delimiter first: ffmpeg's parser then splits pictures exactly.
        match self.codec {
            Codec::H264 => es.put_slice(&[0, 0, 0, 1, 0x09, 0xf0]),
            Codec::H265 => es.put_slice(&[0, 0, 0, 1, 0x46, 0x01, 0x50]),
        }
        if frame.keyframe {
            for ps in params.parameter_sets() {
                es.put_slice(&[0, 0, 0, 1]);
                es.put_slice(&ps);
            }
        }
        for n in &nals {
            let t = nal_type(self.codec, n);
            let is_aud = matches!(
                (self.codec, t),
                (Codec::H264, Some(9)) | (Codec::H265, Some(35))
            );
            if !is_aud {
                es.put_slice(&[0, 0, 0, 1]);
                es.put_slice(n);
            }
        }
        let mut out = BytesMut::with_capacity(es.len() + es.len() / 184 * 4 + 3 * PACKET);
        if frame.keyframe {
            self.psi(&mut out);
        }
        self.pes(&mut out, &es, frame.pts & TS_MASK, frame.dts & TS_MASK);
        Ok(out.freeze())
    }

    fn psi(&mut self, out: &mut BytesMut) {
        // PAT: program 1 at PMT_PID.
        let mut pat = vec![0x00, 0xb0, 0, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01];
        pat.extend_from_slice(&(0xe000 | PMT_PID).to_be_bytes());
        section(out, PAT_PID, &mut self.cc_pat, pat);
        let stream_type = match self.codec {
            Codec::H264 => STREAM_H264,
            Codec::H265 => STREAM_H265,
        };
        let mut pmt = vec![0x02, 0xb0, 0, 0x00, 0x01, 0xc1, 0x00, 0x00];
        pmt.extend_from_slice(&(0xe000 | VIDEO_PID).to_be_bytes()); // PCR PID
        pmt.extend_from_slice(&[0xf0, 0x00, stream_type]);
        pmt.extend_from_slice(&(0xe000 | VIDEO_PID).to_be_bytes());
        pmt.extend_from_slice(&[0xf0, 0x00]);
        section(out, PMT_PID, &mut self.cc_pmt, pmt);
    }

    fn pes(&mut self, out: &mut BytesMut, es: &[u8], pts: i64, dts: i64) {
        let mut head = vec![0, 0, 1, 0xe0, 0, 0, 0x80];
        if pts == dts {
            head.extend_from_slice(&[0x80, 5]);
            head.extend_from_slice(&timestamp(0x2, pts));
        } else {
            head.extend_from_slice(&[0xc0, 10]);
            head.extend_from_slice(&timestamp(0x3, pts));
            head.extend_from_slice(&timestamp(0x1, dts));
        }
        let payload_len = head.len() + es.len();
        // PES_packet_length 0 ("unbounded") is allowed for video and needed past 65535.
        if payload_len - 6 <= 0xffff {
            let n = (payload_len - 6) as u16;
            head[4..6].copy_from_slice(&n.to_be_bytes());
        }
        let mut data = Vec::with_capacity(payload_len);
        data.extend_from_slice(&head);
        data.extend_from_slice(es);
        let mut pos = 0;
        let mut first = true;
        while pos < data.len() {
            let mut af: Vec<u8> = Vec::new();
            if first {
                // PCR = decode time (a 90 kHz base, no 27 MHz extension), as decoders expect
                // the PCR not to run ahead of the DTS.
                let base = dts as u64;
                af.push(0x10);
                af.extend_from_slice(&[
                    (base >> 25) as u8,
                    (base >> 17) as u8,
                    (base >> 9) as u8,
                    (base >> 1) as u8,
                    ((base & 1) << 7) as u8 | 0x7e,
                    0,
                ]);
            }
            let mut af_present = !af.is_empty();
            let used = 4 + if af_present { 1 + af.len() } else { 0 };
            let take = (PACKET - used).min(data.len() - pos);
            let stuffing = PACKET - used - take;
            if stuffing > 0 {
                if !af_present {
                    // The adaptation field's length byte alone is one byte of stuffing; more
                    // needs its flags byte too.
                    af_present = true;
                    if stuffing > 1 {
                        af.push(0x00);
                        af.resize(stuffing - 1, 0xff);
                    }
                } else {
                    af.resize(af.len() + stuffing, 0xff);
                }
            }
            let af_len = if af_present { 1 + af.len() } else { 0 };
            let afc = if af_len > 0 { 0x30 } else { 0x10 };
            out.put_u8(SYNC);
            out.put_u8(if first { 0x40 } else { 0 } | ((VIDEO_PID >> 8) as u8 & 0x1f));
            out.put_u8(VIDEO_PID as u8);
            out.put_u8(afc | (self.cc_video & 0x0f));
            self.cc_video = self.cc_video.wrapping_add(1);
            if af_len > 0 {
                out.put_u8((af_len - 1) as u8);
                out.put_slice(&af);
            }
            out.put_slice(&data[pos..pos + take]);
            pos += take;
            first = false;
        }
    }
}

/// One PSI section in one packet (ours are tiny): pointer field, the section with its length
/// and CRC, stuffing.
fn section(out: &mut BytesMut, pid: u16, cc: &mut u8, mut sec: Vec<u8>) {
    let len = (sec.len() - 3 + 4) as u16;
    sec[1] = 0xb0 | ((len >> 8) as u8 & 0x0f);
    sec[2] = len as u8;
    let crc = crc32(&sec);
    sec.extend_from_slice(&crc.to_be_bytes());
    out.put_u8(SYNC);
    out.put_u8(0x40 | ((pid >> 8) as u8 & 0x1f));
    out.put_u8(pid as u8);
    out.put_u8(0x10 | (*cc & 0x0f));
    *cc = cc.wrapping_add(1);
    out.put_u8(0); // pointer_field
    out.put_slice(&sec);
    for _ in 0..PACKET - 5 - sec.len() {
        out.put_u8(0xff);
    }
}

fn timestamp(prefix: u8, ts: i64) -> [u8; 5] {
    let ts = ts as u64;
    [
        (prefix << 4) | (((ts >> 30) & 7) as u8) << 1 | 1,
        (ts >> 22) as u8,
        (((ts >> 15) & 0x7f) as u8) << 1 | 1,
        (ts >> 7) as u8,
        ((ts & 0x7f) as u8) << 1 | 1,
    ]
}

fn read_timestamp(b: &[u8]) -> i64 {
    (i64::from(b[0] >> 1 & 7) << 30)
        | (i64::from(b[1]) << 22)
        | (i64::from(b[2] >> 1) << 15)
        | (i64::from(b[3]) << 7)
        | i64::from(b[4] >> 1)
}

/// One video access unit as the demuxer found it: Annex B bytes, timestamps in 90 kHz,
/// unwrapped past the 33-bit rollover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pes {
    pub codec: Codec,
    pub pts: i64,
    pub dts: i64,
    pub data: Bytes,
}

/// Reads the first H.264 or H.265 stream of a transport stream fed in arbitrary chunks.
#[derive(Default)]
pub struct TsDemuxer {
    pending: BytesMut,
    pmt_pid: Option<u16>,
    video: Option<(u16, Codec)>,
    pes: BytesMut,
    in_pes: bool,
    last_dts: Option<i64>,
    /// Packets or PES headers that made no sense (garbage from the pipe), for diagnostics.
    pub skipped: u64,
}

impl TsDemuxer {
    pub fn new() -> TsDemuxer {
        TsDemuxer::default()
    }

    /// Feeds bytes; returns the access units completed by them (a PES is complete when the
    /// next one starts, or at [`TsDemuxer::flush`]).
    pub fn push(&mut self, data: &[u8]) -> Vec<Pes> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            // Resynchronise on the sync byte; bytes before it are garbage.
            match self.pending.iter().position(|&b| b == SYNC) {
                Some(0) => {}
                Some(n) => {
                    self.skipped += 1;
                    let _ = self.pending.split_to(n);
                }
                None => {
                    if !self.pending.is_empty() {
                        self.skipped += 1;
                    }
                    self.pending.clear();
                    break;
                }
            }
            if self.pending.len() < PACKET {
                break;
            }
            let pkt = self.pending.split_to(PACKET);
            self.packet(&pkt, &mut out);
        }
        out
    }

    /// The access unit still being collected, at the end of the input.
    pub fn flush(&mut self) -> Option<Pes> {
        self.in_pes = false;
        let data = std::mem::take(&mut self.pes).freeze();
        self.finish(data)
    }

    fn packet(&mut self, p: &[u8], out: &mut Vec<Pes>) {
        let pusi = p[1] & 0x40 != 0;
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let afc = (p[3] >> 4) & 3;
        let mut start = 4;
        if afc & 2 != 0 {
            start += 1 + usize::from(p[4]);
        }
        if afc & 1 == 0 || start > PACKET {
            if start > PACKET {
                self.skipped += 1;
            }
            return;
        }
        let payload = &p[start..];
        if pid == PAT_PID && pusi {
            self.pat(payload);
        } else if Some(pid) == self.pmt_pid && pusi {
            self.pmt(payload);
        } else if self.video.is_some_and(|(v, _)| v == pid) {
            if pusi {
                if self.in_pes {
                    let data = std::mem::take(&mut self.pes).freeze();
                    if let Some(f) = self.finish(data) {
                        out.push(f);
                    }
                }
                self.in_pes = true;
            }
            if self.in_pes {
                if self.pes.len() + payload.len() > MAX_PES {
                    self.skipped += 1;
                    self.pes.clear();
                    self.in_pes = false;
                    return;
                }
                self.pes.extend_from_slice(payload);
            }
        }
    }

    /// The PSI section after the pointer field, checked by its CRC.
    fn psi_section(payload: &[u8]) -> Option<&[u8]> {
        let ptr = usize::from(*payload.first()?);
        let sec = payload.get(1 + ptr..)?;
        let len = usize::from(u16::from_be_bytes([*sec.get(1)?, *sec.get(2)?]) & 0x0fff);
        let sec = sec.get(..3 + len)?;
        (len >= 9 && crc32(sec) == 0).then_some(sec)
    }

    fn pat(&mut self, payload: &[u8]) {
        let Some(sec) = Self::psi_section(payload) else {
            self.skipped += 1;
            return;
        };
        for entry in sec[8..sec.len() - 4].chunks_exact(4) {
            let program = u16::from_be_bytes([entry[0], entry[1]]);
            if program != 0 {
                self.pmt_pid = Some(u16::from_be_bytes([entry[2], entry[3]]) & 0x1fff);
                return;
            }
        }
    }

    fn pmt(&mut self, payload: &[u8]) {
        let Some(sec) = Self::psi_section(payload) else {
            self.skipped += 1;
            return;
        };
        let info_len = usize::from(u16::from_be_bytes([sec[10], sec[11]]) & 0x0fff);
        let mut i = 12 + info_len;
        let end = sec.len() - 4;
        while i + 5 <= end {
            let stream_type = sec[i];
            let pid = u16::from_be_bytes([sec[i + 1], sec[i + 2]]) & 0x1fff;
            let es_len = usize::from(u16::from_be_bytes([sec[i + 3], sec[i + 4]]) & 0x0fff);
            let codec = match stream_type {
                STREAM_H264 => Some(Codec::H264),
                STREAM_H265 => Some(Codec::H265),
                _ => None,
            };
            if let Some(codec) = codec {
                if self.video != Some((pid, codec)) {
                    self.video = Some((pid, codec));
                    self.pes.clear();
                    self.in_pes = false;
                }
                return;
            }
            i += 5 + es_len;
        }
    }

    fn finish(&mut self, pes: Bytes) -> Option<Pes> {
        let (_, codec) = self.video?;
        if pes.len() < 9 || pes[..3] != [0, 0, 1] {
            if !pes.is_empty() {
                self.skipped += 1;
            }
            return None;
        }
        let flags = pes[7] >> 6;
        let header_len = usize::from(pes[8]);
        let body = 9 + header_len;
        if body > pes.len() || flags & 2 == 0 || header_len < 5 {
            self.skipped += 1;
            return None;
        }
        let pts = read_timestamp(&pes[9..14]);
        let dts = if flags == 3 && header_len >= 10 {
            read_timestamp(&pes[14..19])
        } else {
            pts
        };
        let dts = self.unwrap(dts);
        // pts is within a few seconds of dts: unwrap it the same way.
        let pts = dts + ((pts - dts).rem_euclid(1 << 33) + (1 << 32)) % (1 << 33) - (1 << 32);
        Some(Pes {
            codec,
            pts,
            dts,
            data: pes.slice(body..),
        })
    }

    /// Extends a 33-bit decode time to the value nearest the previous one.
    fn unwrap(&mut self, ts: i64) -> i64 {
        let v = match self.last_dts {
            None => ts,
            Some(last) => {
                let base = last & !TS_MASK;
                [base - (1 << 33), base, base + (1 << 33)]
                    .into_iter()
                    .map(|b| b + ts)
                    .min_by_key(|c| (c - last).abs())
                    .unwrap_or(ts)
            }
        };
        self.last_dts = Some(v);
        v
    }
}

/// Turns Annex B access units (an encoder's output) into [`Frame`]s: parameter sets in the
/// stream become the frames' shared `CodecParams` (rebuilt only when they change), the rest
/// becomes the length-prefixed payload.
#[derive(Default)]
pub struct AnnexBFrames {
    params: Option<Arc<CodecParams>>,
    vps: Option<Bytes>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
}

impl AnnexBFrames {
    pub fn new() -> AnnexBFrames {
        AnnexBFrames::default()
    }

    /// The frame of one access unit, or `None` while no parameter sets have been seen (or for
    /// an access unit with no picture). A parameter set that does not parse is an error.
    pub fn frame(&mut self, pes: &Pes, wallclock: SystemTime) -> Result<Option<Frame>, MediaError> {
        let codec = pes.codec;
        let nals = split_annexb(&pes.data);
        let mut changed = false;
        let mut keep = Vec::with_capacity(nals.len());
        let mut keyframe = false;
        for n in nals {
            let t = nal_type(codec, &n);
            let slot = match (codec, t) {
                (Codec::H265, Some(32)) => Some(&mut self.vps),
                (Codec::H264, Some(7)) | (Codec::H265, Some(33)) => Some(&mut self.sps),
                (Codec::H264, Some(8)) | (Codec::H265, Some(34)) => Some(&mut self.pps),
                (Codec::H264, Some(9)) | (Codec::H265, Some(35)) => continue,
                _ => None,
            };
            match slot {
                Some(s) => {
                    if s.as_ref() != Some(&n) {
                        *s = Some(n);
                        changed = true;
                    }
                }
                None => {
                    keyframe |= is_keyframe_nal(codec, &n);
                    keep.push(n);
                }
            }
        }
        if changed || self.params.is_none() {
            let built = match (codec, &self.vps, &self.sps, &self.pps) {
                (Codec::H264, _, Some(sps), Some(pps)) => Some(CodecParams::h264(sps, pps)?),
                (Codec::H265, Some(vps), Some(sps), Some(pps)) => {
                    Some(CodecParams::h265(vps, sps, pps)?)
                }
                _ => None,
            };
            if let Some(p) = built {
                self.params = Some(Arc::new(p));
            }
        }
        let Some(params) = self.params.clone() else {
            return Ok(None);
        };
        if keep.is_empty() {
            return Ok(None);
        }
        Ok(Some(Frame {
            data: crate::annexb::to_length_prefixed(&keep),
            pts: pes.pts,
            dts: pes.dts,
            keyframe,
            params: TrackParams::Video(params),
            wallclock,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util;

    #[test]
    fn crc_of_a_known_pat() {
        // The check value of CRC-32/MPEG-2 for "123456789".
        assert_eq!(crc32(b"123456789"), 0x0376_e6e7);
    }

    #[test]
    fn frames_round_trip_through_mux_and_demux() {
        let params = test_util::h264_params();
        // The builders' payloads are not escaped NAL units (they hold start-code-like bytes),
        // which Annex B cannot carry; give each frame a slice that is.
        let frames: Vec<Frame> = test_util::gop(&params, 30, 10)
            .into_iter()
            .enumerate()
            .map(|(i, mut f)| {
                let head = if f.keyframe { 0x65 } else { 0x41 };
                let mut nal = vec![head, 0x88, i as u8 | 0x80];
                nal.extend(std::iter::repeat_n(0x5a, 300 + i * 97));
                f.data = crate::annexb::to_length_prefixed(&[nal]);
                f
            })
            .collect();
        let mut mux = TsMuxer::new(Codec::H264);
        let mut ts = Vec::new();
        for f in &frames {
            ts.extend_from_slice(&mux.frame(f).unwrap());
        }
        assert_eq!(ts.len() % PACKET, 0);
        let mut demux = TsDemuxer::new();
        let mut got = Vec::new();
        // Odd chunk sizes: the demuxer must not care where reads end.
        for chunk in ts.chunks(1000) {
            got.extend(demux.push(chunk));
        }
        got.extend(demux.flush());
        assert_eq!(got.len(), frames.len());
        assert_eq!(demux.skipped, 0);
        let mut rebuild = AnnexBFrames::new();
        for (pes, f) in got.iter().zip(&frames) {
            assert_eq!((pes.pts, pes.dts), (f.pts, f.dts));
            let back = rebuild.frame(pes, f.wallclock).unwrap().unwrap();
            assert_eq!(back.keyframe, f.keyframe);
            assert_eq!(back.data, f.data);
            assert_eq!(back.video().unwrap().sps, params.sps);
        }
    }

    #[test]
    fn timestamps_unwrap_past_33_bits() {
        let params = test_util::h264_params();
        let mut mux = TsMuxer::new(Codec::H264);
        let mut demux = TsDemuxer::new();
        let start = (1i64 << 33) - 3000;
        let mut got = Vec::new();
        for i in 0..4 {
            let mut f = test_util::gop_frame(&params, i, 2);
            f.pts = start + i64::from(i) * 3000;
            f.dts = f.pts;
            got.extend(demux.push(&mux.frame(&f).unwrap()));
        }
        got.extend(demux.flush());
        let dts: Vec<i64> = got.iter().map(|p| p.dts).collect();
        assert_eq!(dts, vec![start, start + 3000, start + 6000, start + 9000]);
    }

    #[test]
    fn garbage_is_skipped_without_panic() {
        let mut demux = TsDemuxer::new();
        let mut seed = 12345u32;
        let junk: Vec<u8> = (0..100_000)
            .map(|i| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 188 == 0 {
                    SYNC
                } else {
                    (seed >> 16) as u8
                }
            })
            .collect();
        let _ = demux.push(&junk);
        let _ = demux.flush();
        let mut rebuild = AnnexBFrames::new();
        let pes = Pes {
            codec: Codec::H264,
            pts: 0,
            dts: 0,
            data: Bytes::from_static(&[0, 0, 1, 0x67, 0xff, 0, 0, 1, 0x68]),
        };
        assert!(rebuild.frame(&pes, SystemTime::UNIX_EPOCH).is_err());
    }
}
