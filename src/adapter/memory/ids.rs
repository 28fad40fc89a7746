//! Event ids of the in-memory log, `"{shard}-{sequence}"`, written without formatting.

use crate::adapter::IdPool;
use crate::model::StoredEvent;

/// Gives `events`, all of `shard`, their ids, in strings taken from `pool` where it has some.
pub(in crate::adapter) fn write_ids(events: &mut [StoredEvent], shard: u16, pool: Option<&IdPool>) {
    let mut ids = EventIds::new(shard);
    let write = |recycled: &mut Vec<String>| {
        for event in events {
            let mut id = recycled.pop().unwrap_or_default();
            ids.write(&mut id, event.sequence);
            event.id = id;
        }
    };
    match pool {
        Some(pool) => pool.with_pooled(write),
        None => write(&mut Vec::new()),
    }
}

/// Writes the ids `"{shard}-{sequence}"` of one shard's events, the position of an event in
/// the in-memory log. A poll makes one per event returned, usually for consecutive sequences,
/// so the text of the last id is kept and counted up in place: most ids change one digit.
///
/// The count-up reads and writes the last eight bytes of the text as one word, and the copy
/// into the id takes those eight bytes from that word, not from the buffer. Counting up byte by
/// byte and then copying the buffer made the copy's wide loads wait for the narrow stores to
/// reach the cache (a failed store-to-load forward), once per id: a fifth of `poll_into`.
pub(in crate::adapter) struct EventIds {
    /// `"{shard}-{sequence}"`, right-aligned.
    text: [u8; Self::MAX_LEN],
    /// Where the text starts.
    start: usize,
    shard: u16,
    /// The sequence written last, if any.
    last: Option<u64>,
}

impl EventIds {
    /// `"65535-18446744073709551615"`.
    const MAX_LEN: usize = 26;
    /// Where the last eight bytes, counted up as one word, start.
    const LOW: usize = Self::MAX_LEN - 8;

    pub(in crate::adapter) fn new(shard: u16) -> Self {
        Self { text: [0; Self::MAX_LEN], start: Self::MAX_LEN, shard, last: None }
    }

    /// Writes the id of `sequence` into `id` (emptied first). A new string gets room for at
    /// least eight bytes (what the smallest allocation holds anyway), a recycled one keeps its
    /// own.
    pub(in crate::adapter) fn write(&mut self, id: &mut String, sequence: u64) {
        if self.last.and_then(|last| last.checked_add(1)) != Some(sequence) || !self.count_up() {
            self.format(sequence);
        }
        self.last = Some(sequence);
        let len = Self::MAX_LEN - self.start;
        let room = len.max(8);
        if id.capacity() < room {
            // Allocated outright: growing an empty string takes a slower path to the same place.
            *id = String::with_capacity(room);
        }
        // The last eight bytes go in as one store of the word they were counted up in; a short
        // id is the top of that word, and the bytes past it land in spare capacity.
        let (prefix, word) = if len >= 8 {
            (&self.text[self.start..Self::LOW], self.low())
        } else {
            (&[][..], self.low() << (8 * (8 - len)))
        };
        // SAFETY: `text` only ever holds ASCII digits and a dash, so the string stays UTF-8.
        let id = unsafe { id.as_mut_vec() };
        id.clear();
        id.extend_from_slice(prefix);
        // SAFETY: the capacity is at least `len.max(8)`, and `prefix` is `len - 8` bytes long
        // when `len >= 8`, else empty, so the eight bytes written at its end are inside the
        // allocation; the first `len` bytes, all written, become the string.
        unsafe {
            id.as_mut_ptr().add(prefix.len()).cast::<[u8; 8]>().write_unaligned(word.to_be_bytes());
            id.set_len(len);
        }
    }

    /// The last eight bytes of `text`, the first of them the most significant.
    fn low(&self) -> u64 {
        let mut low = [0; 8];
        low.copy_from_slice(&self.text[Self::LOW..]);
        u64::from_be_bytes(low)
    }

    /// Adds one to the sequence in `text`; false when that needs a digit beyond the last eight
    /// bytes, or one more digit.
    fn count_up(&mut self) -> bool {
        const NINES: u64 = u64::from_be_bytes([b'9'; 8]);
        const ZEROS: u64 = u64::from_be_bytes([b'0'; 8]);
        let low = self.low();
        // Trailing nines become zeros and the digit before them goes up by one. A dash comes
        // before the sequence, so the search for that digit stops there at the latest and
        // never reads what lies before the text's start.
        let nines = ((low ^ NINES).trailing_zeros() / 8) as usize;
        if nines == 8 || !(b'0'..=b'8').contains(&((low >> (8 * nines)) as u8)) {
            return false;
        }
        let trailing = (1u64 << (8 * nines)) - 1;
        let low = ((low & !trailing) | (ZEROS & trailing)) + (1 << (8 * nines));
        self.text[Self::LOW..].copy_from_slice(&low.to_be_bytes());
        true
    }

    fn format(&mut self, sequence: u64) {
        fn prepend_decimal(text: &mut [u8], mut at: usize, mut n: u64) -> usize {
            loop {
                at -= 1;
                text[at] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    return at;
                }
            }
        }
        let mut at = prepend_decimal(&mut self.text, Self::MAX_LEN, sequence);
        at -= 1;
        self.text[at] = b'-';
        self.start = prepend_decimal(&mut self.text, at, u64::from(self.shard));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_shard_dash_sequence() {
        let event_id = |shard, sequence| {
            let mut id = String::from("left over from an earlier page");
            EventIds::new(shard).write(&mut id, sequence);
            id
        };
        assert_eq!(event_id(0, 0), "0-0");
        assert_eq!(event_id(7, 1234567890), "7-1234567890");
        assert_eq!(event_id(u16::MAX, u64::MAX), format!("{}-{}", u16::MAX, u64::MAX));
    }

    #[test]
    fn ids_counted_up_in_place_match_ids_formatted_anew() {
        let runs = [
            (0, 0..25),
            (3, 7..12),
            (3, 95..105),
            (12, 999..1002),
            (65535, 99_998..100_001),
            // Carries that stay within the last eight bytes, reach past them, or need a digit.
            (1, 10_999_990..11_000_010),
            (2, 99_999_990..100_000_010),
            (4, 1_234_599_999_990..1_234_600_000_010),
        ];
        let near_the_top = u64::MAX - 3..u64::MAX;
        for (shard, sequences) in runs.into_iter().chain([(9, near_the_top)]) {
            let mut ids = EventIds::new(shard);
            for sequence in sequences.clone().chain([sequences.start / 2, sequences.start]) {
                let mut id = String::new();
                ids.write(&mut id, sequence);
                assert_eq!(id, format!("{shard}-{sequence}"));
            }
        }
    }
}
