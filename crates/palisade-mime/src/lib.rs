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
use palisade_model::MessageContent;

mod attachments;
mod body;
mod crypto;
mod participants;
mod preamble;
mod privacy;
mod structure;
mod subject;
mod tree;

pub use subject::normalize_subject;

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Deepest MIME nesting (root part = 0) whose parts are still extracted.
    pub max_mime_depth: usize,
    /// Longest text or HTML body kept, in bytes; longer ones are cut (the raw message stays
    /// whole). It bounds what every store must hold per message: Cassandra refuses requests
    /// over 16 MiB, and a body can grow sixfold when encoded as JSON.
    pub max_body_bytes: usize,
}

pub use palisade_model::MAX_BODY_BYTES;

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_mime_depth: 20,
            max_body_bytes: MAX_BODY_BYTES,
        }
    }
}

/// Parses raw bytes; never panics, never fails: on trouble it sets `parse_error` and fills what it could.
pub fn parse_message(raw: &[u8], limits: &ParseLimits) -> MessageContent {
    if raw.is_empty() {
        return with_error(MessageContent::default(), "empty input");
    }
    let prepared = preamble::prepare(raw);
    let raw = &prepared[..];
    // mail-parser promises not to panic, but it does arithmetic on offsets derived from
    // hostile input; a panic here must cost one message, not the delivery worker.
    match catch_unwind(AssertUnwindSafe(|| parse_full(raw, limits))) {
        Ok(content) => content,
        Err(_) => {
            // Headers alone exercise far less of the parser, so they usually survive.
            let headers_only = catch_unwind(AssertUnwindSafe(|| {
                PARSER.parse_headers(raw).map(|m| extract(raw, &m, limits))
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

/// mail-parser's default header table, except that `Date` is kept raw and parsed by us.
///
/// Its date parser reads two bytes past a one- or two-letter zone (`UT`, `Z`) or an `AM`
/// token, swallowing the newline and with it the next header field, typically `From`.
/// On an isolated value that overrun is harmless, so we parse the value separately.
static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    use HeaderName::*;
    let mut parser = MessageParser::new()
        .with_mime_headers()
        .with_address_headers()
        .with_message_ids()
        .header_text(Subject)
        .header_text(Comments)
        .header_id(ReturnPath)
        .header_comma_separated(Keywords)
        .header_comma_separated(ContentLanguage)
        .header_received(Received)
        .header_raw(MimeVersion);
    for list in [
        ListArchive,
        ListHelp,
        ListId,
        ListOwner,
        ListPost,
        ListSubscribe,
        ListUnsubscribe,
    ] {
        parser = parser.header_address(list);
    }
    parser
});

/// The decoded bytes of the part that [`Attachment::part_index`](palisade_model::Attachment)
/// or [`MimePart::index`](palisade_model::MimePart) names, cut out of the raw message on
/// demand; `None` when there is no such part.
pub fn attachment_bytes(raw: &[u8], part_index: u32) -> Option<Vec<u8>> {
    let prepared = preamble::prepare(raw);
    catch_unwind(AssertUnwindSafe(|| {
        let message = PARSER.parse(&prepared[..])?;
        let part = message.parts.get(usize::try_from(part_index).ok()?)?;
        Some(part.contents().to_vec())
    }))
    .ok()
    .flatten()
}

fn parse_full(raw: &[u8], limits: &ParseLimits) -> MessageContent {
    let Some(message) = PARSER.parse(raw) else {
        return with_error(MessageContent::default(), "no header section found");
    };
    let content = extract(raw, &message, limits);
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

fn extract(raw: &[u8], message: &Message<'_>, limits: &ParseLimits) -> MessageContent {
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
    let mut privacy = privacy::privacy(raw, message, &tree.visible, &bodies);
    privacy.mime_depth_exceeded = tree.depth_exceeded;
    let subject = first(headers, HeaderName::Subject).and_then(HeaderValue::as_text);
    let normalized_subject = subject.map(normalize_subject).filter(|s| !s.is_empty());
    // Privacy and attachments have read the whole bodies; only what is kept is bounded.
    let attachments = attachments::attachments(message, &tree, html_body.as_deref(), &shown);
    let structure = structure::structure(message, &tree, &shown, &attachments);
    let (text_body, text_cut) = bounded(text_body, limits.max_body_bytes);
    let (html_body, html_cut) = bounded(html_body, limits.max_body_bytes);
    MessageContent {
        message_id_header: ids(headers, HeaderName::MessageId).into_iter().next(),
        in_reply_to: ids(headers, HeaderName::InReplyTo),
        references: ids(headers, HeaderName::References),
        subject: subject.map(str::to_string),
        normalized_subject,
        date: first(headers, HeaderName::Date)
            .and_then(HeaderValue::as_text)
            .and_then(parse_date),
        participants: participants::participants(headers),
        attachments,
        structure,
        text_body,
        html_body,
        body_truncated: text_cut || html_cut || parts_cut,
        privacy,
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
    headers.iter().find(|h| h.name == name).map(|h| &h.value)
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

fn parse_date(value: &str) -> Option<DateTime<Utc>> {
    // The trailing space makes mail-parser finish the last token (the seconds, when a
    // sloppy sender omits the zone, which RFC 5322 then reads as UTC).
    let mut dt = mail_parser::DateTime::parse_rfc822(&format!("{} ", value.trim()))?;
    // Y2K-era mailers printed `tm_year` (years since 1900) as the year: `0102` is 2002.
    if (100..200).contains(&dt.year) {
        dt.year += 1900;
    }
    if !dt.is_valid() {
        return None;
    }
    let naive = NaiveDate::from_ymd_opt(dt.year.into(), dt.month.into(), dt.day.into())?
        .and_hms_opt(dt.hour.into(), dt.minute.into(), dt.second.into())?;
    let offset = (i32::from(dt.tz_hour) * 3600 + i32::from(dt.tz_minute) * 60)
        * if dt.tz_before_gmt { -1 } else { 1 };
    let local = FixedOffset::east_opt(offset)?
        .from_local_datetime(&naive)
        .single()?;
    Some(local.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
