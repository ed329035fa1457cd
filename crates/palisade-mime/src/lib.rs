//! Turns raw RFC 5322/MIME bytes into Palisade's [`MessageContent`].
//!
//! Parsing never fails: mail that cannot be understood is still stored, so the parser fills
//! what it can and records why it stopped in `parse_error`.
//!
//! Bodies are built as a mail client shows a message: every inline part in tree order.
//! Inline means a `text/plain` or `text/html` leaf not declared an attachment (by
//! disposition, or by a file name without an `inline` disposition), and a multipart whose
//! boundary never occurs, whose content is shown as plain text. Inside a
//! `multipart/alternative`, one alternative feeds each body: the first with plain text for
//! `text_body` and the last with HTML for `html_body`. `text_body` joins the parts a blank
//! line apart, HTML ones converted to text (mail-parser's converter) so snippets and search
//! work. `html_body` exists only when some shown part really is HTML (we never store HTML
//! synthesized from plain-only mail); then it holds every shown part in order, plain ones
//! escaped in a `<pre>`, so a footer or a second text part is not lost in the HTML view.
//! Every other leaf is listed in `attachments`; multipart containers never are. `structure`
//! records, per part, which of the two it is.
//!
//! The header section ends only at an empty line (RFC 5322); input with none is all body.
//!
//! `normalized_subject` is `None` when nothing is left after normalizing, so subject-less
//! mail never threads together by accident.

#![warn(missing_docs)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use mail_parser::{Header, HeaderName, HeaderValue, Message, MessageParser};
use palisade_model::{Address, MessageContent, ParticipantRole};

mod attachments;
mod body;
mod crypto;
mod fields;
mod headers;
mod html_text;
mod participants;
mod preamble;
mod privacy;
mod structure;
mod subject;
mod tree;

pub use subject::normalize_subject;

/// Limits applied while parsing, and whose headers the privacy features believe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLimits {
    /// Deepest MIME nesting (root part = 0) whose parts are still extracted.
    pub max_mime_depth: usize,
    /// Longest text or HTML body kept, in bytes; longer ones are cut (the raw message stays
    /// whole). It bounds what every store must hold per message: Cassandra refuses requests
    /// over 16 MiB, and a body can grow sixfold when encoded as JSON.
    pub max_body_bytes: usize,
    /// Our own hosts: only their `Authentication-Results`, `Received` and spam headers count.
    pub trust: TrustBoundary,
}

pub use palisade_model::{MAX_BODY_BYTES, Relay, TrustBoundary};

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_mime_depth: 20,
            max_body_bytes: MAX_BODY_BYTES,
            trust: TrustBoundary::default(),
        }
    }
}

/// Parses raw bytes; never panics, never fails: on trouble it sets `parse_error` and fills what it could.
pub fn parse_message(raw: &[u8], limits: &ParseLimits) -> MessageContent {
    if raw.is_empty() {
        return with_error(MessageContent::default(), "empty input");
    }
    let preamble::Prepared { bytes, fields } = preamble::prepare(raw);
    let raw = &bytes[..];
    // mail-parser promises not to panic, but it does arithmetic on offsets derived from
    // hostile input; a panic here must cost one message, not the delivery worker.
    match catch_unwind(AssertUnwindSafe(|| parse_full(raw, fields, limits))) {
        Ok(content) => content,
        Err(_) => {
            // Headers alone exercise far less of the parser, so they usually survive.
            let headers_only = catch_unwind(AssertUnwindSafe(|| {
                PARSER
                    .parse_headers(raw)
                    .map(|m| extract(raw, &m, preamble::header_fields(raw), limits))
            }));
            match headers_only {
                Ok(Some(content)) => with_error(
                    content,
                    "the MIME parser panicked; only headers were extracted",
                ),
                _ => with_error(MessageContent::default(), "the MIME parser panicked"),
            }
        }
    }
}

/// mail-parser reading only the fields we take from it: the MIME fields (the part tree) and
/// the message ids. Every other field is skipped, keeping only its name and offsets, since we
/// read it ourselves from the raw bytes:
///
/// - addresses, subject and date come from our own scan of the header section
///   ([`headers::FieldLines`]), which reads what mail-parser 0.11 loses (see there); its date
///   parser also reads two bytes past a one- or two-letter zone (`UT`, `Z`) or an `AM` token,
///   swallowing the newline and with it the next field, typically `From`;
/// - `Received` is parsed one field at a time, for our own hops only (privacy::parse_received);
/// - the privacy fields are read from their raw values.
static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .with_mime_headers()
        .with_message_ids()
        .default_header_ignore()
});

/// The decoded bytes of the part that [`Attachment::part_index`](palisade_model::Attachment)
/// or [`MimePart::index`](palisade_model::MimePart) names, cut out of the raw message on
/// demand; `None` when there is no such part.
pub fn attachment_bytes(raw: &[u8], part_index: u32) -> Option<Vec<u8>> {
    let prepared = preamble::prepare(raw).bytes;
    catch_unwind(AssertUnwindSafe(|| {
        let message = PARSER.parse(&prepared[..])?;
        let part = message.parts.get(usize::try_from(part_index).ok()?)?;
        Some(part.contents().to_vec())
    }))
    .ok()
    .flatten()
}

/// Parses the prepared bytes `raw`, whose header section holds `fields`.
fn parse_full(raw: &[u8], fields: Vec<headers::Field>, limits: &ParseLimits) -> MessageContent {
    let Some(message) = PARSER.parse(raw) else {
        return with_error(MessageContent::default(), "no header section found");
    };
    let content = extract(raw, &message, fields, limits);
    if content.header_count == 0 || !preamble::has_header_section(raw) {
        return with_error(content, "no header section found");
    }
    content
}

fn with_error(mut content: MessageContent, reason: &str) -> MessageContent {
    content
        .parse_error
        .get_or_insert_with(|| reason.to_string());
    content
}

/// The model of `message`, parsed from `raw`, whose header section holds `fields`.
fn extract(
    raw: &[u8],
    message: &Message<'_>,
    fields: Vec<headers::Field>,
    limits: &ParseLimits,
) -> MessageContent {
    let headers = message.parts.first().map_or(&[][..], |p| &p.headers[..]);
    let tree = tree::walk(message, limits.max_mime_depth);
    let body::Bodies {
        text: text_body,
        html: html_body,
        shown,
        cut: parts_cut,
    } = body::bodies(message, &tree, limits.max_body_bytes);
    let bodies: Vec<&str> = text_body
        .iter()
        .chain(&html_body)
        .map(String::as_str)
        .collect();
    let (mut privacy, evidence) =
        privacy::privacy(raw, message, &tree.visible, &bodies, &limits.trust);
    privacy.mime_depth_exceeded = tree.depth_exceeded;
    // Subject, date and addresses come from our own scan of the raw header section.
    let raw_headers = headers::Headers::new(fields, message);
    let people = participants::participants(&raw_headers);
    privacy.multiple_from = people.multiple_from;
    let participants = people.list;
    // Only a single, well-formed From can be authenticated or own an Autocrypt key.
    let from = participants
        .iter()
        .find(|p| p.role == ParticipantRole::From)
        .and_then(|p| p.address.as_deref())
        .and_then(|a| Address::parse(a).ok())
        .filter(|_| !privacy.multiple_from);
    privacy.authenticated_sender = from.as_ref().and_then(|f| evidence.authenticated(f));
    let autocrypt = from.as_ref().and_then(|f| evidence.autocrypt(f));
    let subject = raw_headers.subject();
    let normalized_subject = subject
        .as_deref()
        .map(normalize_subject)
        .filter(|s| !s.is_empty());
    // Privacy and attachments have read the whole bodies; only what is kept is bounded.
    let attachments = attachments::attachments(message, &tree, html_body.as_deref(), &shown);
    let structure = structure::structure(message, &tree, &shown, &attachments);
    let (text_body, text_cut) = bounded(text_body, limits.max_body_bytes);
    let (html_body, html_cut) = bounded(html_body, limits.max_body_bytes);
    MessageContent {
        message_id_header: ids(headers, HeaderName::MessageId).into_iter().next(),
        in_reply_to: ids(headers, HeaderName::InReplyTo),
        references: ids(headers, HeaderName::References),
        subject,
        normalized_subject,
        date: raw_headers.text("date").as_deref().and_then(parse_date),
        participants,
        attachments,
        structure,
        text_body,
        html_body,
        body_truncated: text_cut || html_cut || parts_cut,
        privacy,
        autocrypt,
        header_count: u32::try_from(headers.len()).unwrap_or(u32::MAX),
        parse_error: None,
    }
}

/// A body cut to at most `max` bytes, at a character boundary, and whether it was cut.
fn bounded(body: Option<String>, max: usize) -> (Option<String>, bool) {
    match body {
        Some(mut text) if text.len() > max => {
            let mut end = max;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            (Some(text), true)
        }
        other => (other, false),
    }
}

fn first<'a, 'x>(headers: &'a [Header<'x>], name: HeaderName<'_>) -> Option<&'a HeaderValue<'x>> {
    headers
        .iter()
        .find(|h| fields::same_name(&h.name, &name))
        .map(|h| &h.value)
}

/// Message ids of the first header called `name`, without angle brackets.
fn ids(headers: &[Header<'_>], name: HeaderName<'_>) -> Vec<String> {
    let values: Vec<&str> = match first(headers, name) {
        Some(HeaderValue::Text(id)) => vec![id.as_ref()],
        Some(HeaderValue::TextList(ids)) => ids.iter().map(AsRef::as_ref).collect(),
        _ => Vec::new(),
    };
    values
        .into_iter()
        .map(|id| {
            id.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
        })
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses an RFC 5322 date (obsolete forms included), or gives `None`: never a wrong instant.
///
/// Comments are CFWS and may sit anywhere, even inside the time (`09(c):55:06`), so they are
/// removed first. What remains must be `[day-name ,] day month year time [zone]`; like the
/// reference parser (CPython's `email.utils`) we also accept the month before the day and the
/// time before the year (asctime order), but nothing is guessed from a malformed value.
fn parse_date(value: &str) -> Option<DateTime<Utc>> {
    let text = without_comments(value)?;
    // RFC 5322 obs-time allows CFWS around the colons.
    let mut text = text.replace(',', " , ");
    while text.contains(" :") || text.contains(": ") {
        text = text.replace(" :", ":").replace(": ", ":");
    }
    let mut tokens: Vec<&str> = text.split_whitespace().filter(|t| *t != ",").collect();
    if let Some(first) = tokens.first()
        && first.chars().all(|c| c.is_ascii_alphabetic() || c == '.')
        && month(first).is_none()
    {
        if !DAY_NAMES.iter().any(|d| day_name(first, d)) {
            return None;
        }
        tokens.remove(0);
    }
    let (mut day, mut mon, mut year, mut time, zone) = match tokens.as_slice() {
        [d, m, y, t, rest @ ..] => (*d, *m, *y, *t, rest.first().copied()),
        _ => return None,
    };
    if month(mon).is_none() {
        // `Jan 1 ...`: month first.
        std::mem::swap(&mut day, &mut mon);
    }
    let mut zone = zone;
    if year.contains(':') {
        // asctime: `Jan 1 10:00:00 2002`, the zone (if any) after or before the year.
        std::mem::swap(&mut year, &mut time);
        if !year.starts_with(|c: char| c.is_ascii_digit()) {
            std::mem::swap(&mut year, zone.get_or_insert(""));
        }
    }
    let month = month(mon)?;
    let day: u32 = digits(day, 1, 2)?;
    let year = match (digits::<i32>(year, 2, 4)?, year.len()) {
        // RFC 5322 4.3: two-digit years below 50 are 20xx, other two- and three-digit ones
        // 19xx; Y2K-era mailers printed `tm_year` (years since 1900) as the year: `0102`.
        (y, 2) if y < 50 => y + 2000,
        (y, _) if y < 1000 => y + 1900,
        (y, _) => y,
    };
    if !(1900..=3000).contains(&year) {
        return None;
    }
    let mut hms = time.split(':');
    let hour: u32 = digits(hms.next()?, 1, 2)?;
    let minute: u32 = digits(hms.next()?, 1, 2)?;
    let second: u32 = match hms.next() {
        Some(s) => digits(s, 1, 2)?,
        None => 0,
    };
    if hms.next().is_some() {
        return None;
    }
    // A leap second names the last second of the minute.
    let second = if second == 60 { 59 } else { second };
    let offset = match zone {
        None | Some("") => 0,
        Some(z) => zone_offset(z)?,
    };
    let naive = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, minute, second)?;
    let local = FixedOffset::east_opt(offset)?
        .from_local_datetime(&naive)
        .single()?;
    Some(local.with_timezone(&Utc))
}

const DAY_NAMES: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Whether `token` is the day `name` or a longer form of it (`Tuesday`), ignoring case.
fn day_name(token: &str, name: &str) -> bool {
    token.get(..3).is_some_and(|p| p.eq_ignore_ascii_case(name))
}

fn month(token: &str) -> Option<u32> {
    let token = token.trim_end_matches('.');
    if token.len() < 3 || !token.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let prefix = token.get(..3)?.to_ascii_lowercase();
    let index = MONTHS.iter().position(|m| *m == prefix)?;
    u32::try_from(index + 1).ok()
}

/// A number of `min..=max` ASCII digits.
fn digits<T: std::str::FromStr>(token: &str, min: usize, max: usize) -> Option<T> {
    ((min..=max).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_digit()))
        .then(|| token.parse().ok())
        .flatten()
}

/// Seconds east of UTC for a numeric zone or an RFC 5322 zone name; `None` when malformed.
///
/// Besides `+hhmm`, accepted forms seen from real mailers: `+hh:mm`, an unsigned `hhmm`
/// (read as east, as CPython does), `+-hhmm` (a negative offset printed after a `+`), and
/// `GMT+h` or `UTC+hhmm` (the offset from UTC, as people write it).
fn zone_offset(zone: &str) -> Option<i32> {
    let upper = zone.to_ascii_uppercase();
    if let Some(rest) = ["GMT", "UTC", "UT"]
        .iter()
        .find_map(|p| upper.strip_prefix(p))
        .filter(|r| r.starts_with(['+', '-']))
    {
        let (sign, digits_part) = rest.split_at(1);
        let digits_only: String = digits_part.chars().filter(|c| *c != ':').collect();
        let value: i32 = digits(&digits_only, 1, 4)?;
        let value = if digits_only.len() <= 2 {
            value * 100
        } else {
            value
        };
        return signed_offset(sign == "-", value);
    }
    let (negative, number) = match zone.as_bytes().first()? {
        b'+' => match zone[1..].strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, &zone[1..]),
        },
        b'-' => (true, &zone[1..]),
        b'0'..=b'9' => (false, zone),
        _ => {
            if !zone.chars().all(|c| c.is_ascii_alphabetic()) {
                return None;
            }
            let hours = match upper.as_str() {
                "EDT" => -4,
                "EST" | "CDT" => -5,
                "CST" | "MDT" => -6,
                "MST" | "PDT" => -7,
                "PST" => -8,
                // UT, GMT, Z, and (RFC 5322 4.3) every other name: offset unknown, read as UTC.
                _ => 0,
            };
            return Some(hours * 3600);
        }
    };
    let digits_only: String = number.chars().filter(|c| *c != ':').collect();
    signed_offset(negative, digits(&digits_only, 4, 4)?)
}

/// `hhmm` as seconds, negated when `negative`; `None` when it is not a real offset.
fn signed_offset(negative: bool, hhmm: i32) -> Option<i32> {
    let (hours, minutes) = (hhmm / 100, hhmm % 100);
    if minutes >= 60 || hours > 23 {
        return None;
    }
    let seconds = hours * 3600 + minutes * 60;
    Some(if negative { -seconds } else { seconds })
}

/// `value` with its comments removed (each becomes a space); `None` when one is unclosed.
fn without_comments(value: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
            '\\' if depth > 0 => {
                chars.next();
            }
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    (depth == 0).then_some(out)
}

#[cfg(test)]
mod autocrypt_tests;
#[cfg(test)]
mod tests;
