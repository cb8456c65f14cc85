//! Walking a JPEG's segments without decoding it: the markers with their
//! data, the coded picture after each start of scan, and the end marker
//! where the picture ends (whatever follows it is not part of it).

/// One segment: its marker, its data (after the length), and all of its
/// bytes. A start of scan's bytes run on to the end of its coded data.
#[derive(Debug, Clone, Copy)]
pub(super) struct Segment<'a> {
    pub marker: u8,
    pub data: &'a [u8],
    pub whole: &'a [u8],
}

/// The segments after the start marker, up to and including the end
/// marker; the walk stops early at anything malformed or cut off, which the
/// caller tells by the missing end marker (0xD9).
pub(super) fn segments(bytes: &[u8]) -> impl Iterator<Item = Segment<'_>> {
    let mut at = if bytes.starts_with(&[0xFF, 0xD8]) { 2 } else { bytes.len() };
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        // Fill bytes (0xFF repeated) may sit before a marker.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if bytes.get(at) != Some(&0xFF) {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        let start = at;
        if marker == 0xD9 {
            done = true;
            return Some(Segment { marker, data: &[], whole: &bytes[start..start + 2] });
        }
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            at += 2;
            return Some(Segment { marker, data: &[], whole: &bytes[start..at] });
        }
        let len = u16::from_be_bytes([*bytes.get(at + 2)?, *bytes.get(at + 3)?]) as usize;
        if len < 2 || at + 2 + len > bytes.len() {
            return None;
        }
        let data = &bytes[at + 4..at + 2 + len];
        at += 2 + len;
        if marker == 0xDA {
            at = end_of_coded_data(bytes, at)?;
        }
        Some(Segment { marker, data, whole: &bytes[start..at] })
    })
}

/// Where a scan's coded data ends: at the first marker that is neither a
/// stuffed zero nor a restart.
fn end_of_coded_data(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        i += memchr_ff(&bytes[i..])?;
        match *bytes.get(i + 1)? {
            0x00 | 0xD0..=0xD7 => i += 2,
            0xFF => i += 1,
            _ => return Some(i),
        }
    }
}

fn memchr_ff(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == 0xFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_run_from_the_start_to_the_end_marker_and_no_further() {
        // SOI, APP0 "JF", SOS with coded data holding a stuffed zero and a
        // restart, EOI, then a trailer that looks like more segments.
        let bytes = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, b'J', b'F', 0xFF, 0xDA, 0x00, 0x03, 0x01, 0x12, 0xFF, 0x00, 0x34, 0xFF,
            0xD0, 0x56, 0xFF, 0xD9, 0xFF, 0xFE, 0x00, 0x03, 0x00,
        ];
        let found: Vec<_> = segments(&bytes).map(|s| (s.marker, s.whole.len())).collect();
        assert_eq!(found, [(0xE0, 6), (0xDA, 12), (0xD9, 2)]);
    }

    #[test]
    fn a_cut_off_segment_ends_the_walk_without_an_end_marker() {
        let bytes = [0xFF, 0xD8, 0xFF, 0xE1, 0x10, 0x00, 1, 2, 3];
        assert!(segments(&bytes).all(|s| s.marker != 0xD9));
        assert_eq!(segments(b"not a jpeg").count(), 0);
    }
}
