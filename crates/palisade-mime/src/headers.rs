//! Header fields read from the raw bytes, and the decoding of their text.
//!
//! mail-parser 0.11 loses what a mail client shows in three places, so the top-level header
//! section is scanned again here: a field name folded before its colon (`From` then ` : x`)
//! is dropped, each RFC 2047 encoded-word is decoded alone (a character split across two
//! words becomes replacement characters), and raw 8-bit bytes are read as lossy UTF-8 only.

use crate::fields;
use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{HeaderName, Message, MessagePart};

use crate::participants;

/// Most header fields kept from one header section; real mail has well under a thousand.
const MAX_FIELDS: usize = 10_000;
/// Most distinct declared charsets tried on raw 8-bit header bytes.
const MAX_DECLARED_CHARSETS: usize = 8;
/// Longest decoded subject kept, in bytes.
pub(crate) const MAX_SUBJECT_BYTES: usize = 16 * 1024;
/// Longest file name kept, in bytes.
const MAX_FILE_NAME_BYTES: usize = 1024;

/// One field of a header section: its name as written and its unfolded value bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    /// Field name without the whitespace the obsolete syntax allows before the colon.
    pub name: String,
    /// Value after the colon, unfolded (each fold and its indentation is one space).
    pub value: Vec<u8>,
}

/// The top-level header section, and how to turn its 8-bit bytes into text.
#[derive(Debug, Default)]
pub(crate) struct Headers {
    /// Fields in the order written.
    pub fields: Vec<Field>,
    /// Charsets the message declares (its parts' `Content-Type` charsets), UTF-8 excluded.
    declared: Vec<&'static Encoding>,
}

impl Headers {
    /// The header section's `fields` ([`FieldLines`]), with the charsets `message` declares.
    pub(crate) fn new(fields: Vec<Field>, message: &Message<'_>) -> Headers {
        let mut declared = Vec::new();
        for part in &message.parts {
            if declared.len() >= MAX_DECLARED_CHARSETS {
                break;
            }
            let Some(label) = fields::charset(part) else {
                continue;
            };
            if let Some(encoding) = usable_encoding(label.trim().as_bytes())
                && !declared.contains(&encoding)
            {
                declared.push(encoding);
            }
        }
        Headers { fields, declared }
    }

    /// Values of every field called `name` (ASCII case-insensitive), in order.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_slice())
    }

    /// The value of the first field called `name`, as text (8-bit bytes decoded, no RFC 2047).
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.all(name).next().map(|v| self.decode_8bit(v))
    }

    /// The decoded subject, trimmed and bounded; `None` when missing or empty.
    pub(crate) fn subject(&self) -> Option<String> {
        let text = self.text("subject")?;
        let subject = decode_words(text.trim());
        let subject = subject.trim();
        (!subject.is_empty()).then(|| cut(subject.to_string(), MAX_SUBJECT_BYTES))
    }

    /// Raw header bytes as text: UTF-8 when valid, else the first declared charset that
    /// decodes them without error, else windows-1252 (which maps every byte).
    pub(crate) fn decode_8bit(&self, bytes: &[u8]) -> String {
        decode_8bit(bytes, &self.declared)
    }
}

/// The encoding for a charset label, with the vendor spellings seen in real mail.
fn encoding_for(label: &[u8]) -> Option<&'static Encoding> {
    Encoding::for_label(label).or_else(|| {
        let lower = String::from_utf8_lossy(label).trim().to_ascii_lowercase();
        let bare = ["x-", "chinese", "cs"]
            .iter()
            .find_map(|prefix| lower.strip_prefix(prefix))?;
        Encoding::for_label(bare.trim_start_matches('-').as_bytes())
    })
}

/// The encoding for a charset label, unless it cannot apply to raw header bytes.
fn usable_encoding(label: &[u8]) -> Option<&'static Encoding> {
    let encoding = encoding_for(label)?;
    // UTF-8 is always tried first; UTF-16 cannot be mixed with ASCII field syntax.
    (encoding != UTF_8
        && encoding.output_encoding() == encoding
        && encoding != encoding_rs::REPLACEMENT)
        .then_some(encoding)
}

fn decode_8bit(bytes: &[u8], declared: &[&'static Encoding]) -> String {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return text.to_string();
    }
    for encoding in declared {
        if let Some(text) = encoding.decode_without_bom_handling_and_without_replacement(bytes) {
            return text.into_owned();
        }
    }
    WINDOWS_1252
        .decode_without_bom_handling(bytes)
        .0
        .into_owned()
}

/// The fields anything reads ([`is_read`]), gathered from a header section one line at a time.
///
/// Only an empty line ends the section (RFC 5322 2.1): a line of spaces is folding. A field is
/// unfolded before its name is read, so a name folded before its colon is still found; each
/// fold with the whitespace around it becomes one space.
#[derive(Debug, Default)]
pub(crate) struct FieldLines {
    /// Each field kept, unfolded, with the offset of its first line.
    logical: Vec<(usize, Vec<u8>)>,
    /// Fields seen, read or not.
    seen: usize,
    /// Whether the current field is skipped.
    skipping: bool,
}

impl FieldLines {
    /// Takes the next line of the section, which starts at `start`: its content without the
    /// line break, never empty (an empty line ends the section).
    pub(crate) fn line(&mut self, start: usize, line: &[u8]) {
        if self.seen > MAX_FIELDS {
            return;
        }
        if matches!(line[0], b' ' | b'\t') && self.seen > 0 {
            if self.skipping {
                return;
            }
            if let Some((_, current)) = self.logical.last_mut() {
                // A fold and the indentation after it read as one space, as clients show it.
                if !current.last().is_some_and(|b| matches!(b, b' ' | b'\t')) {
                    current.push(b' ');
                }
                current.extend_from_slice(line.trim_ascii_start());
            }
            return;
        }
        self.seen += 1;
        if self.seen > MAX_FIELDS {
            return;
        }
        // A name is known once its colon is; one folded before its colon is kept to be read.
        self.skipping =
            memchr::memchr(b':', line).is_some_and(|colon| !is_read(line[..colon].trim_ascii()));
        if !self.skipping {
            self.logical.push((start, line.to_vec()));
        }
    }

    /// The fields of the lines before offset `end`, where the section was found to end.
    pub(crate) fn finish(self, end: usize) -> Vec<Field> {
        self.logical
            .into_iter()
            .take_while(|&(start, _)| start < end)
            .filter_map(|(_, mut line)| {
                let colon = memchr::memchr(b':', &line)?;
                let name = line[..colon].trim_ascii();
                if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
                    return None;
                }
                let name = String::from_utf8_lossy(name).into_owned();
                let value = line.split_off(colon + 1);
                Some(Field { name, value })
            })
            .collect()
    }
}

/// Whether anything reads the field called `name`: the address fields, the subject and the
/// date. The others (long `Received` chains, signatures) are skipped rather than copied.
fn is_read(name: &[u8]) -> bool {
    participants::ROLES
        .iter()
        .map(|(field, _)| field.as_bytes())
        .chain([&b"subject"[..], b"date"])
        .any(|field| name.eq_ignore_ascii_case(field))
}

/// One piece of header text: literal text or the bytes of an RFC 2047 encoded-word.
enum Piece<'a> {
    Text(&'a str),
    Word {
        /// Lowercased charset label without its RFC 2231 `*language`.
        charset: String,
        base64: bool,
        bytes: Vec<u8>,
    },
}

/// Decodes the RFC 2047 encoded-words in `text` as a mail client does.
///
/// Whitespace between two encoded-words is dropped (RFC 2047 6.2), and adjacent words of one
/// charset and encoding are joined before the charset is applied, because senders split
/// multibyte characters across words. Stateful charsets (ISO-2022-*, UTF-7) return to their
/// initial state at the end of every word, so there each word is decoded alone.
pub(crate) fn decode_words(text: &str) -> String {
    if !text.contains("=?") {
        return text.to_string();
    }
    let pieces = split_words(text);
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < pieces.len() {
        match &pieces[i] {
            Piece::Text(t) => {
                let between_words = t.chars().all(char::is_whitespace)
                    && i > 0
                    && matches!(pieces.get(i + 1), Some(Piece::Word { .. }))
                    && matches!(pieces[i - 1], Piece::Word { .. });
                if !between_words {
                    out.push_str(t);
                }
                i += 1;
            }
            Piece::Word {
                charset,
                base64,
                bytes,
            } => {
                let mut joined = bytes.clone();
                let mut next = i + 1;
                if !stateful(charset) {
                    // Skip over the whitespace the join drops anyway.
                    loop {
                        let after_space = match pieces.get(next) {
                            Some(Piece::Text(t)) if t.chars().all(char::is_whitespace) => next + 1,
                            _ => next,
                        };
                        match pieces.get(after_space) {
                            Some(Piece::Word {
                                charset: c,
                                base64: b,
                                bytes: more,
                            }) if c == charset && b == base64 => {
                                joined.extend_from_slice(more);
                                next = after_space + 1;
                            }
                            _ => break,
                        }
                    }
                }
                out.push_str(&decode_charset(charset, &joined));
                i = next;
            }
        }
    }
    out
}

fn stateful(charset: &str) -> bool {
    charset.starts_with("iso-2022") || charset == "utf-7" || charset == "csiso2022jp"
}

/// Splits text into literal runs and encoded-words; anything malformed stays literal.
fn split_words(text: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut literal_start = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("=?") {
        let start = search + found;
        match encoded_word(&text[start..]) {
            Some((len, piece)) => {
                if literal_start < start {
                    pieces.push(Piece::Text(&text[literal_start..start]));
                }
                pieces.push(piece);
                search = start + len;
                literal_start = search;
            }
            None => search = start + 2,
        }
    }
    if literal_start < text.len() {
        pieces.push(Piece::Text(&text[literal_start..]));
    }
    pieces
}

/// Parses `=?charset?e?data?=` at the start of `s`: its length and decoded bytes.
fn encoded_word(s: &str) -> Option<(usize, Piece<'static>)> {
    let rest = s.strip_prefix("=?")?;
    let charset_end = rest.find('?')?;
    let charset = &rest[..charset_end];
    if charset.is_empty() || charset.len() > 64 || charset.contains(char::is_whitespace) {
        return None;
    }
    let rest = &rest[charset_end + 1..];
    let mut chars = rest.chars();
    let base64 = match chars.next()? {
        'b' | 'B' => true,
        'q' | 'Q' => false,
        _ => return None,
    };
    let data_and_end = rest.get(1..)?.strip_prefix('?')?;
    let data_end = data_and_end.find('?')?;
    if !data_and_end[data_end..].starts_with("?=") {
        return None;
    }
    let data = &data_and_end[..data_end];
    let charset = charset
        .split('*')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bytes = if base64 {
        // Characters outside the alphabet mean this is no base64 word: keep it as written.
        if !data
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b' ' | b'\t'))
        {
            return None;
        }
        base64_lenient(data.as_bytes())
    } else if data.is_ascii() {
        q_decode(data.as_bytes())
    } else {
        // Raw 8-bit bytes inside a "Q" word were already read as text; put them back in the
        // word's charset so that decoding the word gives them back unchanged.
        match encoding_for(charset.as_bytes()) {
            Some(encoding) => q_decode(&encoding.encode(data).0),
            None => q_decode(data.as_bytes()),
        }
    };
    // `=?` + charset + `?e?` + data + `?=`
    let len = 2 + charset_end + 3 + data_end + 2;
    Some((
        len,
        Piece::Word {
            charset,
            base64,
            bytes,
        },
    ))
}

/// RFC 2047 "Q" decoding: `_` is a space, `=XX` a byte; a stray `=` stays as it is.
fn q_decode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'_' => out.push(b' '),
            b'=' if i + 2 < data.len() && hex_pair(data[i + 1], data[i + 2]).is_some() => {
                out.extend(hex_pair(data[i + 1], data[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex_pair(high: u8, low: u8) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    Some(u8::try_from(digit(high)? * 16 + digit(low)?).unwrap_or(0))
}

/// Base64 that skips whitespace and tolerates missing padding.
fn base64_lenient(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in data {
        let value = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xFF) as u8);
        }
    }
    out
}

/// Decodes bytes in the named charset; an unknown charset is read as raw 8-bit header bytes.
fn decode_charset(charset: &str, bytes: &[u8]) -> String {
    match charset_decoder(charset.as_bytes()) {
        Some(decoder) => decoder(bytes),
        None => match encoding_for(charset.as_bytes()) {
            Some(encoding) => encoding.decode_without_bom_handling(bytes).0.into_owned(),
            None => decode_8bit(bytes, &[]),
        },
    }
}

/// The file name a part declares, decoded; never `None` when the part declares one.
///
/// Read from the raw `Content-Disposition` `filename` and `Content-Type` `name` parameters
/// (RFC 2231 and RFC 2047 forms); when a value cannot be decoded, its raw text is the name.
/// mail-parser's own reading is the fallback for what our parameter reader does not find.
pub(crate) fn file_name(raw: &[u8], part: &MessagePart<'_>) -> Option<String> {
    let raw_value = |name: HeaderName<'_>| {
        part.headers
            .iter()
            .find(|h| fields::same_name(&h.name, &name))
            .and_then(|h| raw.get(h.offset_start as usize..h.offset_end as usize))
    };
    let ours = [
        (HeaderName::ContentDisposition, "filename"),
        (HeaderName::ContentType, "name"),
    ]
    .into_iter()
    .find_map(|(header, param)| {
        parameter(raw_value(header)?, param, || {
            fields::charset(part)
                .and_then(|label| usable_encoding(label.trim().as_bytes()))
                .into_iter()
                .collect()
        })
    });
    ours.or_else(|| fields::attachment_name(part).map(str::to_string))
        .map(|n| cut(n.trim().to_string(), MAX_FILE_NAME_BYTES))
        .filter(|n| !n.is_empty())
}

/// Whether `needle` occurs in `haystack`, ASCII letters compared without case.
fn contains_ignoring_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The decoded value of parameter `name` in a raw `Content-*` header value.
///
/// RFC 2231: `name*=charset'lang'%XX`, and continuations `name*0`, `name*1*`, ... joined in
/// order; a plain `name=` value may carry RFC 2047 encoded-words (common, if not standard).
///
/// `declared` gives the charsets to try on undeclared 8-bit bytes; it is asked only once the
/// parameter is found.
fn parameter(
    value: &[u8],
    name: &str,
    declared: impl FnOnce() -> Vec<&'static Encoding>,
) -> Option<String> {
    // Most values (every text part's type) hold no such parameter: a key that matches must
    // spell the name, so without its letters there is nothing to parse.
    if !contains_ignoring_ascii_case(value, name.as_bytes()) {
        return None;
    }
    let params = parameters(value);
    let mut plain = None;
    let mut extended: Vec<(u32, bool, Vec<u8>)> = Vec::new();
    for (key, val) in params {
        let key = key.to_ascii_lowercase();
        if key == name {
            plain.get_or_insert(val);
            continue;
        }
        let Some(rest) = key.strip_prefix(name).and_then(|r| r.strip_prefix('*')) else {
            continue;
        };
        let (index, encoded) = match rest {
            "" => (0, true),
            _ => match rest.strip_suffix('*') {
                Some(n) => (n.parse().ok()?, true),
                None => (rest.parse().ok()?, false),
            },
        };
        if extended.len() < 1000 && !extended.iter().any(|(i, _, _)| *i == index) {
            extended.push((index, encoded, val));
        }
    }
    if extended.is_empty() && plain.is_none() {
        return None;
    }
    let declared = declared();
    if !extended.is_empty() {
        extended.sort_by_key(|(i, _, _)| *i);
        if let Some(decoded) = rfc2231(&extended, &declared) {
            return Some(decoded);
        }
    }
    let plain = plain?;
    Some(decode_words(&decode_8bit(&plain, &declared)))
}

/// Joins RFC 2231 continuations and decodes them; falls back to their raw text.
fn rfc2231(sections: &[(u32, bool, Vec<u8>)], declared: &[&'static Encoding]) -> Option<String> {
    let mut charset = None;
    let mut bytes = Vec::new();
    let mut raw_text = Vec::new();
    for (n, (_, encoded, value)) in sections.iter().enumerate() {
        raw_text.extend_from_slice(value);
        let mut value = value.as_slice();
        if n == 0 && *encoded {
            // `charset'language'value`; a value without the quotes is taken as it is.
            let mut split = value.splitn(3, |&b| b == b'\'');
            if let (Some(cs), Some(_lang), Some(rest)) = (split.next(), split.next(), split.next())
            {
                charset = Some(String::from_utf8_lossy(cs).to_ascii_lowercase());
                value = rest;
            }
        }
        if *encoded {
            bytes.extend(percent_decode(value));
        } else {
            bytes.extend_from_slice(value);
        }
    }
    if bytes.is_empty() {
        return None;
    }
    let strict = match charset.as_deref() {
        Some(label) if !label.is_empty() => match Encoding::for_label(label.as_bytes()) {
            Some(encoding) => encoding.decode_without_bom_handling_and_without_replacement(&bytes),
            None => charset_decoder(label.as_bytes()).map(|d| d(&bytes).into()),
        },
        _ => std::str::from_utf8(&bytes).ok().map(Into::into),
    };
    Some(match strict {
        Some(text) => text.into_owned(),
        // Mislabelled bytes (often Latin-1 declared as UTF-8) are read as 8-bit header text;
        // that never fails, so the raw value is the name at worst.
        None => decode_8bit(&bytes, declared),
    })
    .filter(|s| !s.is_empty())
    .or_else(|| (!raw_text.is_empty()).then(|| decode_8bit(&raw_text, declared)))
}

fn percent_decode(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%'
            && let (Some(&h), Some(&l)) = (value.get(i + 1), value.get(i + 2))
            && let Some(byte) = hex_pair(h, l)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(value[i]);
        i += 1;
    }
    out
}

/// `key=value` parameters after the first `;` of a raw `Content-*` value, values unquoted.
fn parameters(value: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = match value.iter().position(|&b| b == b';') {
        Some(p) => p + 1,
        None => return out,
    };
    while i < value.len() && out.len() < 1000 {
        while i < value.len() && (value[i].is_ascii_whitespace() || value[i] == b';') {
            i += 1;
        }
        let key_start = i;
        while i < value.len() && !matches!(value[i], b'=' | b';') {
            i += 1;
        }
        let key = String::from_utf8_lossy(value[key_start..i].trim_ascii()).into_owned();
        if i >= value.len() || value[i] == b';' {
            continue;
        }
        i += 1; // '='
        while i < value.len() && matches!(value[i], b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        let mut val = Vec::new();
        if value.get(i) == Some(&b'"') {
            i += 1;
            while i < value.len() && value[i] != b'"' {
                if value[i] == b'\\' && i + 1 < value.len() {
                    i += 1;
                }
                if !matches!(value[i], b'\r' | b'\n') {
                    val.push(value[i]);
                }
                i += 1;
            }
            i += 1;
            while i < value.len() && value[i] != b';' {
                i += 1;
            }
        } else {
            let start = i;
            while i < value.len() && value[i] != b';' {
                i += 1;
            }
            val.extend(
                value[start..i]
                    .trim_ascii()
                    .iter()
                    .filter(|&&b| !matches!(b, b'\r' | b'\n')),
            );
        }
        if !key.is_empty() {
            out.push((key, val));
        }
    }
    out
}

/// `text` cut to at most `max` bytes, at a character boundary.
pub(crate) fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
