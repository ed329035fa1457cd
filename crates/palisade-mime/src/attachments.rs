//! Attachment metadata; the bytes stay in the raw message and are cut out on demand.

use crate::fields;
use std::cell::OnceCell;
use std::collections::HashSet;

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};
use palisade_model::Attachment;

use crate::tree::Tree;

/// Lists every part within the depth limit that is neither a multipart container nor shown
/// in the bodies (`shown`), so nothing a reader could want is silently dropped.
///
/// Inline images are listed too (flagged `inline`): the HTML body only refers to them. Nested
/// messages are a single part in the top-level list, so their own attachments are never reached.
pub(crate) fn attachments(
    message: &Message<'_>,
    tree: &Tree,
    html_body: Option<&str>,
    shown: &HashSet<u32>,
) -> Vec<Attachment> {
    // Lowercased once, and only for a part with a Content-ID, so every cid lookup is a plain
    // substring search.
    let html_lower = OnceCell::new();
    let html_lower = || {
        html_lower
            .get_or_init(|| html_body.map(str::to_lowercase))
            .as_deref()
    };
    tree.visible
        .iter()
        .filter(|&&id| !shown.contains(&id))
        .filter_map(|&id| {
            let part = message.parts.get(id as usize)?;
            if matches!(part.body, PartType::Multipart(_)) {
                return None;
            }
            Some(describe(&message.raw_message, id, part, html_lower))
        })
        .collect()
}

fn describe<'h>(
    raw: &[u8],
    id: u32,
    part: &MessagePart<'_>,
    html_lower: impl FnOnce() -> Option<&'h str>,
) -> Attachment {
    let content_id = part
        .content_id()
        .map(|cid| {
            cid.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
        })
        .filter(|cid| !cid.is_empty())
        .map(str::to_string);
    let disposition_inline = fields::content_disposition(part).is_some_and(|d| d.is_inline());
    let referenced = content_id.as_ref().is_some_and(|cid| {
        html_lower().is_some_and(|html| html.contains(&format!("cid:{}", cid.to_lowercase())))
    });
    Attachment {
        part_index: id,
        file_name: crate::headers::file_name(raw, part),
        content_type: content_type(part),
        size: decoded_size(part),
        content_id,
        inline: disposition_inline || referenced,
    }
}

/// The declared type as `type/subtype`, lowercased; RFC 2045 defaults where it is missing or broken.
pub(crate) fn content_type(part: &MessagePart<'_>) -> String {
    let Some(ct) = fields::content_type(part) else {
        // A digest's parts default to message/rfc822, which mail-parser already applied.
        return if part.is_message() {
            "message/rfc822"
        } else {
            "text/plain"
        }
        .to_string();
    };
    let ctype = token(ct.ctype());
    // Only the leading token: `TEXT/PLAIN charset=US-ASCII` (no `;`) is real-world spam.
    match ct.subtype().map(token) {
        Some(sub) if !sub.is_empty() && !ctype.is_empty() => {
            // Called for every part, several times: one allocation, no formatting machinery.
            let mut mime = String::with_capacity(ctype.len() + 1 + sub.len());
            mime.push_str(ctype);
            mime.push('/');
            mime.push_str(sub);
            mime.make_ascii_lowercase();
            mime
        }
        _ if ctype.eq_ignore_ascii_case("text") => "text/plain".to_string(),
        _ => "application/octet-stream".to_string(),
    }
}

/// The leading token of a type or subtype, before any blank or `;`.
fn token(s: &str) -> &str {
    let s = s.trim();
    s.find(|c: char| c.is_whitespace() || c == ';')
        .map_or(s, |end| &s[..end])
}

/// Decoded size; text parts count their UTF-8 form, which is what a download will produce.
pub(crate) fn decoded_size(part: &MessagePart<'_>) -> u64 {
    let len = match &part.body {
        // Guarded because `Message::raw_message` indexes its first part unchecked.
        PartType::Message(nested) if nested.parts.is_empty() => 0,
        _ => part.len(),
    };
    u64::try_from(len).unwrap_or(u64::MAX)
}
