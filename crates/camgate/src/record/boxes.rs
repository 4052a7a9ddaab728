//! Just enough of reading our own fMP4 files (ISO/IEC 14496-12) to index and repair them:
//! walk the top-level boxes (§4.2: 32-bit size, or 1 = 64-bit largesize), and in each `moof`
//! read `tfdt` (§8.8.12) and `trun` (§8.8.8) for the fragment's decode time, sample count,
//! duration and whether it starts with a sync sample. Anything else in a box is skipped.
//! A box whose declared size runs past the end of the data is a torn tail: reading stops
//! before it, and the caller truncates the file there.
//!
//! Pure functions over bytes; no I/O.

/// One `moof` + `mdat` pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Offset of the `moof` in the file.
    pub offset: u64,
    /// Length of `moof` + `mdat`.
    pub len: u64,
    /// `tfdt` baseMediaDecodeTime (90 kHz).
    pub base_dts: u64,
    /// Sum of the samples' durations (90 kHz).
    pub duration: u64,
    pub samples: u32,
    /// The first sample is a sync sample (decoding can start here).
    pub starts_with_sync: bool,
}

/// What a file holds, as far as it is whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileLayout {
    /// Length of `ftyp` + `moov` (0 when they are missing or torn).
    pub init_len: u64,
    pub fragments: Vec<Fragment>,
    /// Bytes up to the end of the last whole fragment (or the init segment): where a torn file
    /// is cut.
    pub whole_len: u64,
}

impl FileLayout {
    pub fn samples(&self) -> u64 {
        self.fragments.iter().map(|f| u64::from(f.samples)).sum()
    }

    /// Decode-time span from the first fragment's start to the last one's end (90 kHz).
    pub fn duration(&self) -> u64 {
        match (self.fragments.first(), self.fragments.last()) {
            (Some(a), Some(b)) => (b.base_dts + b.duration).saturating_sub(a.base_dts),
            _ => 0,
        }
    }
}

const SYNC_FLAG_MASK: u32 = 0x0001_0000; // sample_is_non_sync_sample

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(be32(b, at)?) << 32 | u64::from(be32(b, at + 4)?))
}

/// A box header at `at`: (type, header length, total length). `None` when the header itself
/// is incomplete or the size is impossible.
fn header(b: &[u8], at: usize) -> Option<([u8; 4], usize, u64)> {
    let size = be32(b, at)?;
    let kind: [u8; 4] = b.get(at + 4..at + 8)?.try_into().ok()?;
    let (hlen, total) = match size {
        1 => (16, be64(b, at + 8)?),
        // 0 = "to the end of the file": never written by us, treated as torn.
        0 => return None,
        n => (8, u64::from(n)),
    };
    (total >= hlen as u64).then_some((kind, hlen, total))
}

/// Children of a container box body.
fn children(body: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let (kind, hlen, total) = header(body, at)?;
        let end = at.checked_add(usize::try_from(total).ok()?)?;
        let inner = body.get(at + hlen..end)?;
        at = end;
        Some((kind, inner))
    })
}

/// Reads a `moof` body: (base_dts, samples, duration, starts with sync).
fn read_moof(body: &[u8]) -> Option<(u64, u32, u64, bool)> {
    let (_, traf) = children(body).find(|(k, _)| k == b"traf")?;
    let mut base = None;
    let mut run = None;
    let mut default_duration = 0u32;
    let mut default_flags = 0u32;
    for (kind, b) in children(traf) {
        match &kind {
            b"tfhd" => {
                let flags = be32(b, 0)? & 0x00ff_ffff;
                let mut at = 8; // version/flags, track_ID
                if flags & 0x01 != 0 {
                    at += 8;
                }
                if flags & 0x02 != 0 {
                    at += 4;
                }
                if flags & 0x08 != 0 {
                    default_duration = be32(b, at)?;
                    at += 4;
                }
                if flags & 0x10 != 0 {
                    at += 4;
                }
                if flags & 0x20 != 0 {
                    default_flags = be32(b, at)?;
                }
            }
            b"tfdt" => {
                let version = *b.first()?;
                base = Some(if version == 1 {
                    be64(b, 4)?
                } else {
                    u64::from(be32(b, 4)?)
                });
            }
            b"trun" => run = Some(b),
            _ => {}
        }
    }
    let b = run?;
    let flags = be32(b, 0)? & 0x00ff_ffff;
    let count = be32(b, 4)?;
    let mut at = 8;
    if flags & 0x01 != 0 {
        at += 4; // data_offset
    }
    let mut first_flags = None;
    if flags & 0x04 != 0 {
        first_flags = Some(be32(b, at)?);
        at += 4;
    }
    let per = [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|&&f| flags & f != 0)
        .count()
        * 4;
    let mut duration = 0u64;
    for i in 0..count as usize {
        let mut p = at + i * per;
        let d = if flags & 0x100 != 0 {
            let d = be32(b, p)?;
            p += 4;
            d
        } else {
            default_duration
        };
        duration += u64::from(d);
        if flags & 0x200 != 0 {
            p += 4;
        }
        if i == 0 && first_flags.is_none() {
            first_flags = Some(if flags & 0x400 != 0 {
                be32(b, p)?
            } else {
                default_flags
            });
        }
    }
    let sync = first_flags.is_some_and(|f| f & SYNC_FLAG_MASK == 0);
    Some((base?, count, duration, sync))
}

/// The sample entry of the init segment (`moov/trak/mdia/minf/stbl/stsd`, §8.5.2): the
/// RFC 6381 codec string (as far as the file tells it: `avc1.PPCCLL` from `avcC`, `hvc1` for
/// H.265), width and height. For indexing a file that lost its row.
pub fn sample_entry(data: &[u8]) -> Option<(String, u16, u16)> {
    let (_, moov) = children(data).find(|(k, _)| k == b"moov")?;
    let mut b = moov;
    for name in [b"trak", b"mdia", b"minf", b"stbl", b"stsd"] {
        b = children(b).find(|(k, _)| k == name)?.1;
    }
    let (kind, entry) = children(b.get(8..)?).next()?;
    let w = u16::from_be_bytes([*entry.get(24)?, *entry.get(25)?]);
    let h = u16::from_be_bytes([*entry.get(26)?, *entry.get(27)?]);
    let codec = match &kind {
        b"avc1" => {
            let (_, avcc) = children(entry.get(78..)?).find(|(k, _)| k == b"avcC")?;
            format!(
                "avc1.{:02x}{:02x}{:02x}",
                avcc.get(1)?,
                avcc.get(2)?,
                avcc.get(3)?
            )
        }
        b"hvc1" => "hvc1".to_owned(),
        _ => return None,
    };
    Some((codec, w, h))
}

/// Walks a file's bytes: the init segment, then every whole `moof` + `mdat` pair. Stops at
/// the first box that is torn or out of place.
pub fn layout(data: &[u8]) -> FileLayout {
    let mut out = FileLayout::default();
    let mut at = 0usize;
    let mut pending_moof: Option<(usize, u64, u32, u64, bool)> = None;
    let mut saw_moov = false;
    while let Some((kind, hlen, total)) = header(data, at) {
        let Some(end) = usize::try_from(total)
            .ok()
            .and_then(|t| at.checked_add(t))
            .filter(|&e| e <= data.len())
        else {
            break; // torn: the box runs past the data
        };
        match &kind {
            b"ftyp" if at == 0 => {}
            b"moov" if !saw_moov => {
                saw_moov = true;
                out.init_len = end as u64;
                out.whole_len = end as u64;
            }
            b"moof" if saw_moov && pending_moof.is_none() => {
                let Some((base, n, d, sync)) = read_moof(&data[at + hlen..end]) else {
                    break;
                };
                pending_moof = Some((at, base, n, d, sync));
            }
            b"mdat" if pending_moof.is_some() => {
                if let Some((start, base_dts, samples, duration, starts_with_sync)) =
                    pending_moof.take()
                {
                    out.fragments.push(Fragment {
                        offset: start as u64,
                        len: (end - start) as u64,
                        base_dts,
                        duration,
                        samples,
                        starts_with_sync,
                    });
                    out.whole_len = end as u64;
                }
            }
            _ => break,
        }
        at = end;
    }
    out
}

/// [`layout`] of a file on disk, reading only box headers and `moof`s (the media data is
/// skipped with seeks), up to `limit` bytes (the indexed extent).
pub fn scan_file(path: &std::path::Path, limit: u64) -> std::io::Result<FileLayout> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len().min(limit);
    let mut out = FileLayout::default();
    let mut at = 0u64;
    let mut pending: Option<(u64, u64, u32, u64, bool)> = None;
    let mut saw_moov = false;
    let mut head = [0u8; 16];
    while at + 8 <= len {
        f.seek(SeekFrom::Start(at))?;
        let n = (len - at).min(16) as usize;
        f.read_exact(&mut head[..n])?;
        let Some((kind, hlen, total)) = header(&head[..n], 0) else {
            break;
        };
        let end = at.saturating_add(total);
        if end > len {
            break;
        }
        match &kind {
            b"ftyp" if at == 0 => {}
            b"moov" if !saw_moov => {
                saw_moov = true;
                out.init_len = end;
                out.whole_len = end;
            }
            b"moof" if saw_moov && pending.is_none() && total <= 16 << 20 => {
                let mut body = vec![0u8; (total - hlen as u64) as usize];
                f.seek(SeekFrom::Start(at + hlen as u64))?;
                f.read_exact(&mut body)?;
                let Some((base, count, d, sync)) = read_moof(&body) else {
                    break;
                };
                pending = Some((at, base, count, d, sync));
            }
            b"mdat" if pending.is_some() => {
                if let Some((start, base_dts, samples, duration, starts_with_sync)) = pending.take()
                {
                    out.fragments.push(Fragment {
                        offset: start,
                        len: end - start,
                        base_dts,
                        duration,
                        samples,
                        starts_with_sync,
                    });
                    out.whole_len = end;
                }
            }
            _ => break,
        }
        at = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::fmp4;
    use media::test_util;

    fn file(frames_per_fragment: usize, fragments: usize) -> (Vec<u8>, Vec<u64>) {
        let params = test_util::h264_params();
        let mut out = fmp4::init_segment(&params).unwrap().to_vec();
        let mut ends = vec![out.len() as u64];
        let mut dts = 9000i64;
        for seq in 0..fragments {
            let frames: Vec<_> = (0..frames_per_fragment)
                .map(|i| {
                    let t = dts + i as i64 * 3000;
                    test_util::frame(&params, i as u32, t, t, i == 0)
                })
                .collect();
            dts += frames_per_fragment as i64 * 3000;
            for c in fmp4::fragment(seq as u32 + 1, &frames, dts).unwrap() {
                out.extend_from_slice(&c);
            }
            ends.push(out.len() as u64);
        }
        (out, ends)
    }

    #[test]
    fn reads_what_the_writer_wrote() {
        let (data, ends) = file(30, 3);
        let l = layout(&data);
        assert_eq!(l.init_len, ends[0]);
        assert_eq!(l.fragments.len(), 3);
        assert_eq!(l.whole_len, data.len() as u64);
        assert_eq!(l.samples(), 90);
        assert_eq!(l.duration(), 90 * 3000);
        assert_eq!(l.fragments[1].base_dts, 9000 + 30 * 3000);
        assert!(l.fragments.iter().all(|f| f.starts_with_sync));
        assert_eq!(l.fragments[2].offset, ends[2]);
        let params = test_util::h264_params();
        assert_eq!(
            sample_entry(&data),
            Some((params.rfc6381.clone(), 320, 240))
        );
    }

    #[test]
    fn scanning_a_file_agrees_with_reading_it_whole() {
        let (data, _) = file(7, 4);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("1.mp4");
        for cut in [data.len(), data.len() - 3, data.len() / 2, 100, 0] {
            std::fs::write(&p, &data[..cut]).unwrap();
            assert_eq!(
                scan_file(&p, u64::MAX).unwrap(),
                layout(&data[..cut]),
                "{cut}"
            );
        }
        std::fs::write(&p, &data).unwrap();
        assert_eq!(scan_file(&p, 500).unwrap(), layout(&data[..500]));
    }

    #[test]
    fn a_torn_tail_is_left_out_at_every_cut() {
        let (data, ends) = file(5, 3);
        for cut in 0..data.len() {
            let l = layout(&data[..cut]);
            let whole = ends.iter().copied().filter(|&e| e <= cut as u64).max();
            assert_eq!(l.whole_len, whole.unwrap_or(0), "cut at {cut}");
            assert!(l.whole_len <= cut as u64);
        }
    }

    #[test]
    fn garbage_does_not_panic() {
        for seed in 0..200u32 {
            let data: Vec<u8> = (0..300u32)
                .map(|i| (i.wrapping_mul(seed).wrapping_add(seed >> 1) % 251) as u8)
                .collect();
            let l = layout(&data);
            assert!(l.whole_len <= data.len() as u64);
        }
    }
}
