//! The record format: `MAGIC`, the payload length and its CRC-32
//! (little-endian u32 each), then the payload: visible-at and sent-at (i64
//! ms), the stage name (u8 length, bytes) and the message body.

pub(super) const MAGIC: &[u8; 4] = b"STJ1";
pub(super) const HEADER: usize = 12;
/// Largest record payload accepted (queue bodies are a few kilobytes).
pub(super) const MAX_PAYLOAD: usize = 8 * 1024 * 1024;

/// One queue message as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub stage: String,
    pub body: String,
    pub visible_ms: i64,
    pub sent_ms: i64,
}

impl Record {
    pub(super) fn encode(&self) -> Vec<u8> {
        let stage = self.stage.as_bytes();
        let len = 8 + 8 + 1 + stage.len() + self.body.len();
        let mut out = Vec::with_capacity(HEADER + len);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.visible_ms.to_le_bytes());
        out.extend_from_slice(&self.sent_ms.to_le_bytes());
        out.push(stage.len() as u8);
        out.extend_from_slice(stage);
        out.extend_from_slice(self.body.as_bytes());
        let crc = crc32fast::hash(&out[HEADER..]);
        out[8..12].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(payload: &[u8]) -> Option<Self> {
        let visible_ms = i64::from_le_bytes(payload.get(0..8)?.try_into().ok()?);
        let sent_ms = i64::from_le_bytes(payload.get(8..16)?.try_into().ok()?);
        let stage_len = *payload.get(16)? as usize;
        let stage = std::str::from_utf8(payload.get(17..17 + stage_len)?).ok()?.to_owned();
        let body = String::from_utf8(payload.get(17 + stage_len..)?.to_vec()).ok()?;
        Some(Self { stage, body, visible_ms, sent_ms })
    }
}

/// What reading a stretch of a segment found.
pub(super) struct Read {
    pub records: Vec<Record>,
    /// Offset just past the last record read (or skipped).
    pub end: u64,
    /// Bytes skipped over because they were not a valid record.
    pub skipped: u64,
    /// Whether the segment goes on past what was read.
    pub more: bool,
}

/// Parses the records in `bytes` (which start at file offset `from`). An
/// incomplete or damaged record stops the reading of a segment still being
/// written (it may be mid-write); in a finished one, damage is skipped up
/// to the next valid record and a torn last record is dropped.
pub(super) fn parse(bytes: &[u8], from: u64, finished: bool) -> Read {
    let mut out = Read { records: Vec::new(), end: from, skipped: 0, more: false };
    let mut pos = 0;
    while pos < bytes.len() {
        match record_at(&bytes[pos..]) {
            Some((record, size)) => {
                out.records.push(record);
                pos += size;
            }
            None if !finished => break,
            None => {
                // Find the next record that checks out; the rest is lost.
                let next = (pos + 1..bytes.len())
                    .find(|&p| bytes[p..].starts_with(MAGIC) && record_at(&bytes[p..]).is_some())
                    .unwrap_or(bytes.len());
                out.skipped += (next - pos) as u64;
                pos = next;
            }
        }
        out.end = from + pos as u64;
    }
    out
}

/// The record at the start of `bytes` and its size, if complete and intact.
fn record_at(bytes: &[u8]) -> Option<(Record, usize)> {
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(bytes[4..8].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes[8..12].try_into().ok()?);
    let payload = bytes.get(HEADER..HEADER.checked_add(len)?)?;
    if len > MAX_PAYLOAD || crc32fast::hash(payload) != crc {
        return None;
    }
    Some((Record::decode(payload)?, HEADER + len))
}

#[cfg(test)]
mod tests {
    use super::super::tests::record;
    use super::*;

    fn bytes(records: &[Record]) -> Vec<u8> {
        records.iter().flat_map(Record::encode).collect()
    }

    #[test]
    fn records_read_back_as_written() {
        let records: Vec<Record> = (0..5).map(record).collect();
        let all = bytes(&records);
        let read = parse(&all, 100, false);
        assert_eq!(read.records, records);
        assert_eq!(read.end, 100 + all.len() as u64);
        assert_eq!(read.skipped, 0);
    }

    #[test]
    fn an_incomplete_record_waits_while_the_segment_is_written() {
        let mut all = bytes(&[record(1), record(2)]);
        let whole = all.len();
        all.extend_from_slice(&record(3).encode()[..10]);
        let read = parse(&all, 0, false);
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.end, whole as u64, "the partial record is read again later");
        let finished = parse(&all, 0, true);
        assert_eq!(finished.records.len(), 2);
        assert_eq!(finished.skipped, 10, "a torn last record of a dead writer is dropped");
    }

    #[test]
    fn damage_in_a_finished_segment_is_skipped_to_the_next_record() {
        let mut all = record(1).encode();
        let torn = record(2).encode();
        all.extend_from_slice(&torn[..torn.len() - 3]);
        all.extend_from_slice(&bytes(&[record(3), record(4)]));
        let read = parse(&all, 0, true);
        assert_eq!(read.records, vec![record(1), record(3), record(4)]);
        assert_eq!(read.skipped, torn.len() as u64 - 3);
        let live = parse(&all, 0, false);
        assert_eq!(live.records, vec![record(1)], "a live segment stops at the damage");
    }

    #[test]
    fn a_flipped_bit_is_caught() {
        let mut all = record(1).encode();
        let last = all.len() - 1;
        all[last] ^= 1;
        assert!(parse(&all, 0, false).records.is_empty());
    }
}
