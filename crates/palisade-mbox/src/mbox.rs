//! mbox: messages separated by `From ` lines, with `From ` lines inside a message escaped.
//!
//! mboxrd escapes every `>*From ` line with one more `>`, so unescaping is exact; mboxo escapes
//! only `From `, so `>From ` in a message comes back as `From `. The writer always writes
//! mboxrd.

use std::io::{self, BufRead, Read, Write};

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::{Entry, MaildirFlags, Message};

/// How `From ` lines inside messages were escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MboxVariant {
    /// `>*From ` lines lost one `>` (mboxrd; exact).
    #[default]
    Rd,
    /// Only `>From ` lines lost their `>` (mboxo; `>From ` written by the sender is changed).
    O,
}

/// Reads an mbox stream message by message.
pub struct MboxReader<R> {
    input: R,
    variant: MboxVariant,
    max_bytes: usize,
    /// The `From ` line that starts the next message, already read.
    next_separator: Option<(Vec<u8>, u64)>,
    line_no: u64,
    index: usize,
    started: bool,
}

/// The longest separator or header line kept whole; longer lines are still read, in pieces.
const LINE_PIECE: u64 = 64 * 1024;

impl<R: BufRead> MboxReader<R> {
    /// A reader of `input`, skipping messages larger than `max_bytes`.
    pub fn new(input: R, variant: MboxVariant, max_bytes: usize) -> Self {
        MboxReader {
            input,
            variant,
            max_bytes,
            next_separator: None,
            line_no: 0,
            index: 0,
            started: false,
        }
    }

    /// One line, or a piece of a very long one; `None` at the end.
    fn line(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
        buf.clear();
        let n = Read::take(&mut self.input, LINE_PIECE).read_until(b'\n', buf)?;
        if n == 0 {
            return Ok(None);
        }
        let whole = buf.ends_with(b"\n");
        if whole {
            self.line_no += 1;
        }
        Ok(Some(whole))
    }

    fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        let mut line = Vec::new();
        if !self.started {
            self.started = true;
            // Anything before the first `From ` line is not a message (an empty file, or a
            // stray blank line).
            loop {
                match self.line(&mut line)? {
                    None => return Ok(None),
                    Some(_) if line.starts_with(b"From ") => {
                        self.next_separator = Some((line.clone(), self.line_no));
                        break;
                    }
                    Some(_) => {}
                }
            }
        }
        let Some((separator, separator_line)) = self.next_separator.take() else {
            return Ok(None);
        };
        let mut raw = Vec::new();
        let mut size: u64 = 0;
        let mut at_line_start = true;
        let mut too_large = false;
        while let Some(whole) = self.line(&mut line)? {
            if at_line_start && line.starts_with(b"From ") {
                self.next_separator = Some((line.clone(), self.line_no));
                break;
            }
            let unescaped: &[u8] = if at_line_start && self.escaped(&line) {
                &line[1..]
            } else {
                &line
            };
            size += unescaped.len() as u64;
            if !too_large && raw.len() + unescaped.len() > self.max_bytes {
                too_large = true;
                raw = Vec::new();
            }
            if !too_large {
                raw.extend_from_slice(unescaped);
            }
            at_line_start = whole;
        }
        let index = self.index;
        self.index += 1;
        let origin = format!("line {separator_line}");
        if too_large {
            return Ok(Some(Entry::TooLarge {
                index,
                origin,
                size,
            }));
        }
        // The blank line that ends each message belongs to the mbox, not the message.
        if raw.ends_with(b"\n\n") {
            raw.truncate(raw.len() - 1);
        } else if raw.ends_with(b"\r\n\r\n") {
            raw.truncate(raw.len() - 2);
        }
        let (sender, delivered_at) = parse_separator(&separator);
        Ok(Some(Entry::Message(Message {
            index,
            origin,
            raw,
            sender,
            delivered_at,
            flags: MaildirFlags::default(),
        })))
    }

    fn escaped(&self, line: &[u8]) -> bool {
        match self.variant {
            MboxVariant::O => line.starts_with(b">From "),
            MboxVariant::Rd => {
                let quotes = line.iter().take_while(|&&b| b == b'>').count();
                quotes > 0 && line[quotes..].starts_with(b"From ")
            }
        }
    }
}

impl<R: BufRead> Iterator for MboxReader<R> {
    type Item = io::Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

/// The envelope sender and date of `From sender Thu Nov 12 10:00:00 2026`.
fn parse_separator(line: &[u8]) -> (Option<String>, Option<DateTime<Utc>>) {
    let text = String::from_utf8_lossy(line);
    let mut words = text.split_whitespace().skip(1);
    let sender = words
        .next()
        .filter(|s| !s.is_empty() && *s != "MAILER-DAEMON" && *s != "-")
        .map(str::to_string);
    let rest: Vec<&str> = words.collect();
    // asctime: "Thu Nov 12 10:00:00 2026", possibly followed by a zone or more.
    let date = rest.get(..5).and_then(|d| {
        NaiveDateTime::parse_from_str(&d.join(" "), "%a %b %e %H:%M:%S %Y")
            .ok()
            .map(|t| t.and_utc())
    });
    (sender, date)
}

/// Appends one message to an mboxrd stream: a `From ` line, the message with `>*From ` lines
/// escaped, and the blank line that ends it. A message that does not end with a newline gets
/// one, which a reader cannot tell from the message's own; keep the size beside the mbox
/// (the export's metadata does) to restore such a message exactly.
pub fn write_mbox_message<W: Write + ?Sized>(
    out: &mut W,
    sender: Option<&str>,
    delivered_at: DateTime<Utc>,
    raw: &[u8],
) -> io::Result<()> {
    let sender = sender
        .filter(|s| !s.is_empty() && !s.bytes().any(|b| b.is_ascii_whitespace()))
        .unwrap_or("MAILER-DAEMON");
    writeln!(
        out,
        "From {sender} {}",
        delivered_at.format("%a %b %e %H:%M:%S %Y")
    )?;
    let mut rest = raw;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        let quotes = line.iter().take_while(|&&b| b == b'>').count();
        if line[quotes..].starts_with(b"From ") {
            out.write_all(b">")?;
        }
        out.write_all(line)?;
        rest = tail;
    }
    if !raw.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8], variant: MboxVariant, max: usize) -> Vec<Entry> {
        MboxReader::new(input, variant, max)
            .collect::<io::Result<Vec<_>>>()
            .expect("read")
    }

    fn messages(entries: &[Entry]) -> Vec<&[u8]> {
        entries
            .iter()
            .filter_map(|e| match e {
                Entry::Message(m) => Some(m.raw.as_slice()),
                Entry::TooLarge { .. } => None,
            })
            .collect()
    }

    #[test]
    fn written_messages_read_back_byte_for_byte() {
        let originals: [&[u8]; 5] = [
            b"Subject: a\r\n\r\nFrom the start\r\n>From quoted\r\n>>From twice\r\n",
            b"Subject: b\n\nno newline at the end\n",
            b"Subject: c\n\n\n\nblank lines at the end\n\n\n",
            b"From: x@y\n\nFrom \n",
            b"S: e\n\n",
        ];
        let at = DateTime::from_timestamp(1_700_000_000, 0).expect("date");
        let mut mbox = Vec::new();
        for raw in originals {
            write_mbox_message(&mut mbox, Some("a@b.test"), at, raw).expect("write");
        }
        let entries = read(&mbox, MboxVariant::Rd, 1 << 20);
        assert_eq!(messages(&entries), originals.to_vec());
        let Entry::Message(first) = &entries[0] else {
            panic!("{entries:?}")
        };
        assert_eq!(first.sender.as_deref(), Some("a@b.test"));
        assert_eq!(first.delivered_at, Some(at));

        // Without a final newline, the message gains one: mbox cannot say otherwise.
        let mut mbox = Vec::new();
        write_mbox_message(&mut mbox, None, at, b"S: f\n\nno newline").expect("write");
        assert_eq!(
            messages(&read(&mbox, MboxVariant::Rd, 1 << 20)),
            vec![&b"S: f\n\nno newline\n"[..]]
        );
    }

    #[test]
    fn mboxo_unescapes_one_level_only() {
        let mbox = b"From a Thu Nov 12 10:00:00 2026\nS: 1\n\n>From x\n>>From y\n";
        assert_eq!(
            messages(&read(mbox, MboxVariant::O, 1 << 20)),
            vec![&b"S: 1\n\nFrom x\n>>From y\n"[..]]
        );
        assert_eq!(
            messages(&read(mbox, MboxVariant::Rd, 1 << 20)),
            vec![&b"S: 1\n\nFrom x\n>From y\n"[..]]
        );
    }

    #[test]
    fn oversized_messages_are_skipped_and_counted() {
        let mut mbox = b"From a Thu Nov 12 10:00:00 2026\nS: big\n\n".to_vec();
        mbox.extend(std::iter::repeat_n(b'x', 300_000));
        mbox.extend_from_slice(b"\n\nFrom b Thu Nov 12 10:00:01 2026\nS: small\n\nok\n");
        let entries = read(&mbox, MboxVariant::Rd, 1000);
        assert!(
            matches!(&entries[0], Entry::TooLarge { index: 0, size, .. } if *size > 300_000),
            "{:?}",
            entries[0]
        );
        assert_eq!(messages(&entries), vec![&b"S: small\n\nok\n"[..]]);
    }

    #[test]
    fn junk_before_the_first_separator_and_odd_dates_are_tolerated() {
        let entries = read(
            b"\n\nFrom MAILER-DAEMON not a date\nS: 1\n\nx\n",
            MboxVariant::Rd,
            100,
        );
        let Entry::Message(m) = &entries[0] else {
            panic!("{entries:?}")
        };
        assert_eq!((m.sender.as_deref(), m.delivered_at), (None, None));
        assert_eq!(m.raw, b"S: 1\n\nx\n");
        assert!(read(b"", MboxVariant::Rd, 100).is_empty());
        assert!(read(b"no separator\n", MboxVariant::Rd, 100).is_empty());
    }
}
