//! Reading DATA: dot-unstuffing with a strict end marker.
//!
//! Only `CRLF . CRLF` ends the data, and a dot is only unstuffed at the start of a line that
//! followed a CRLF (or the very start of the data). A bare `LF . LF` is content, never an
//! end: accepting it is what makes SMTP smuggling possible between lenient and strict hops.

/// Where the unstuffer is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line (after CRLF, or at the start of data).
    LineStart,
    /// Saw a dot at the start of a line.
    Dot,
    /// Saw `.` then `CR` at the start of a line.
    DotCr,
    /// Inside a line.
    Text,
    /// Inside a line, just after a CR.
    Cr,
}

/// Incremental DATA decoder that keeps at most `limit` bytes and counts the rest.
#[derive(Debug)]
pub(crate) struct Unstuffer {
    state: State,
    limit: usize,
    out: Vec<u8>,
    total: usize,
    /// Set when the bytes may not be kept (the memory budget is spent): count, keep nothing.
    discarding: bool,
}

impl Unstuffer {
    /// A decoder that keeps at most `limit` bytes of message; `expected` (the declared SIZE)
    /// sizes the buffer once, instead of doubling it, and copying it, as the data arrives.
    pub(crate) fn new(limit: usize, expected: usize) -> Self {
        Unstuffer {
            state: State::LineStart,
            limit,
            out: Vec::with_capacity(expected.min(limit)),
            total: 0,
            discarding: false,
        }
    }

    /// Consumes bytes up to and including the end marker; returns how many were used and
    /// whether the end was found.
    pub(crate) fn feed(&mut self, input: &[u8]) -> (usize, bool) {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            i += 1;
            match self.state {
                State::Text => {
                    // Fast path: copy up to the next CR in one go.
                    let run_end = input[i - 1..]
                        .iter()
                        .position(|&c| c == b'\r')
                        .map_or(input.len(), |p| i - 1 + p);
                    self.push(&input[i - 1..run_end]);
                    if run_end < input.len() {
                        self.push(b"\r");
                        self.state = State::Cr;
                        i = run_end + 1;
                    } else {
                        i = run_end;
                    }
                }
                State::LineStart => {
                    if b == b'.' {
                        self.state = State::Dot;
                    } else {
                        self.push(&[b]);
                        self.state = if b == b'\r' { State::Cr } else { State::Text };
                    }
                }
                State::Dot => {
                    if b == b'\r' {
                        self.state = State::DotCr;
                    } else {
                        // The stuffed dot is dropped; the byte after it is content.
                        self.push(&[b]);
                        self.state = State::Text;
                    }
                }
                State::DotCr => {
                    if b == b'\n' {
                        return (i, true);
                    }
                    // ".\r" followed by something else: the dot was stuffing, "\r" is content.
                    self.push(b"\r");
                    self.push(&[b]);
                    self.state = if b == b'\r' { State::Cr } else { State::Text };
                }
                State::Cr => {
                    self.push(&[b]);
                    self.state = match b {
                        b'\n' => State::LineStart,
                        b'\r' => State::Cr,
                        _ => State::Text,
                    };
                }
            }
        }
        (i, false)
    }

    fn push(&mut self, bytes: &[u8]) {
        self.total = self.total.saturating_add(bytes.len());
        if self.discarding {
            return;
        }
        if self.total <= self.limit {
            self.out.extend_from_slice(bytes);
        } else {
            // Refused anyway: free the memory now rather than at the end of the data.
            self.discard();
        }
    }

    /// Whether the message exceeded the limit (its bytes were then discarded).
    pub(crate) fn oversize(&self) -> bool {
        self.total > self.limit
    }

    /// Bytes of buffer this decoder holds, kept or allocated ahead.
    pub(crate) fn footprint(&self) -> usize {
        self.out.capacity()
    }

    /// Drops what was kept and keeps nothing more; the end marker is still found.
    pub(crate) fn discard(&mut self) {
        self.discarding = true;
        self.out = Vec::new();
    }

    /// Bytes kept in memory right now.
    pub(crate) fn kept(&self) -> usize {
        self.out.len()
    }

    /// The kept bytes, for a spool to take them away (see `Spool::spill`).
    pub(crate) fn kept_mut(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// The decoded message.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut u = Unstuffer::new(1 << 20, 0);
        let mut rest = Vec::new();
        let mut done = false;
        for chunk in chunks {
            if done {
                rest.extend_from_slice(chunk);
                continue;
            }
            let (used, end) = u.feed(chunk);
            if end {
                done = true;
                rest.extend_from_slice(&chunk[used..]);
            }
        }
        done.then(|| (u.into_bytes(), rest))
    }

    #[test]
    fn unstuffs_and_stops_at_crlf_dot_crlf() {
        let (msg, rest) = decode(&[b"a\r\n..b\r\n.", b"\r\nNOOP\r\n"]).expect("end found");
        assert_eq!(msg, b"a\r\n.b\r\n");
        assert_eq!(rest, b"NOOP\r\n");
    }

    #[test]
    fn empty_message_and_leading_dot_line() {
        assert_eq!(decode(&[b".\r\n"]).expect("end").0, b"");
        assert_eq!(decode(&[b"..x\r\n.\r\n"]).expect("end").0, b".x\r\n");
    }

    #[test]
    fn bare_lf_dot_is_content_not_an_end() {
        let (msg, _) = decode(&[b"x\n.\nMAIL FROM:<a@b>\r\n.\r\n"]).expect("end");
        assert_eq!(msg, b"x\n.\nMAIL FROM:<a@b>\r\n");
        assert!(decode(&[b"x\n.\n", b"y\r.\r\n"]).is_none());
    }

    #[test]
    fn end_marker_split_across_reads() {
        for split in 1..7 {
            let input = b"hi\r\n.\r\n";
            let (a, b) = input.split_at(split);
            assert_eq!(
                decode(&[a, b]).expect("end").0,
                b"hi\r\n",
                "split at {split}"
            );
        }
    }

    #[test]
    fn binary_bytes_pass_through() {
        let (msg, _) = decode(&[b"\x00\xff\r\r\n.\r\n"]).expect("end");
        assert_eq!(msg, b"\x00\xff\r\r\n");
    }

    #[test]
    fn over_limit_is_counted_not_kept() {
        let mut u = Unstuffer::new(4, 0);
        let (_, end) = u.feed(b"0123456789\r\n.\r\n");
        assert!(end);
        assert!(u.oversize());
        assert_eq!(
            u.footprint(),
            0,
            "a refused message's bytes are freed at once"
        );
    }

    #[test]
    fn declared_size_is_allocated_once_and_discarding_still_finds_the_end() {
        let mut u = Unstuffer::new(1 << 20, 1000);
        assert!(u.footprint() >= 1000);
        u.feed(b"some text\r\n");
        u.discard();
        assert_eq!(u.footprint(), 0);
        let (_, end) = u.feed(b"more text\r\n.\r\n");
        assert!(end);
        assert!(!u.oversize());
        assert!(u.into_bytes().is_empty());
    }
}
