//! Choosing the text and HTML bodies.

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::html::html_to_text;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

use crate::attachments::content_type;
use crate::tree::Tree;

/// The bodies of a message.
pub(crate) struct Bodies {
    /// First plain-text body, or the HTML body converted to text.
    pub text: Option<String>,
    /// First real HTML body.
    pub html: Option<String>,
    /// A part mail-parser filed as an attachment that we took as the body instead.
    pub recovered_part: Option<u32>,
}

/// Picks the bodies from mail-parser's body lists, recovering one when they are empty.
pub(crate) fn bodies(message: &Message<'_>, tree: &Tree) -> Bodies {
    let text = text_body(message, tree);
    let html = html_body(message, tree);
    if text.is_some() || html.is_some() {
        return Bodies {
            text,
            html,
            recovered_part: None,
        };
    }
    recover(message, tree).unwrap_or(Bodies {
        text: None,
        html: None,
        recovered_part: None,
    })
}

/// The first plain-text body part, else the first HTML body part converted to text.
fn text_body(message: &Message<'_>, tree: &Tree) -> Option<String> {
    let candidates = || {
        message
            .text_body
            .iter()
            .enumerate()
            .filter(|(_, id)| tree.contains(**id))
            .filter_map(|(pos, &id)| Some((pos, message.parts.get(id as usize)?)))
    };
    if let Some((_, part)) = candidates().find(|(_, p)| matches!(p.body, PartType::Text(_))) {
        return part.text_contents().map(str::to_string);
    }
    candidates()
        .find(|(_, p)| matches!(p.body, PartType::Html(_)))
        .and_then(|(pos, _)| message.body_text(pos))
        .map(|text| text.into_owned())
}

/// The first real HTML body part; mail-parser's text-to-HTML stand-ins are skipped.
fn html_body(message: &Message<'_>, tree: &Tree) -> Option<String> {
    message
        .html_body
        .iter()
        .filter(|id| tree.contains(**id))
        .filter_map(|&id| message.parts.get(id as usize))
        .find_map(|part| match &part.body {
            PartType::Html(html) => Some(html.to_string()),
            _ => None,
        })
}

/// Takes the first unnamed, non-attachment text/plain or text/html part as the body.
///
/// mail-parser files a part as an attachment when its boundary never closes or its
/// Content-Type is mangled; that is common in spam, and without a body such mail gets no
/// snippet and cannot be searched.
fn recover(message: &Message<'_>, tree: &Tree) -> Option<Bodies> {
    tree.visible.iter().find_map(|&id| {
        let part = message.parts.get(id as usize)?;
        let (PartType::Text(text) | PartType::Html(text)) = &part.body else {
            return None;
        };
        let declared_attachment = part
            .content_disposition()
            .is_some_and(|d| d.is_attachment())
            || part.attachment_name().is_some();
        if declared_attachment {
            return None;
        }
        let is_html = match content_type(part).as_str() {
            "text/plain" => false,
            "text/html" => true,
            _ => return None,
        };
        let text = if part.is_encoding_problem {
            redecode(part, text)
        } else {
            text.to_string()
        };
        let (text, html) = if is_html {
            (html_to_text(&text), Some(text))
        } else {
            (text, None)
        };
        Some(Bodies {
            text: Some(text),
            html,
            recovered_part: Some(id),
        })
    })
}

/// Decodes a part mail-parser gave up on and left as raw transfer-encoded text.
///
/// Base64 is decoded up to the first byte outside its alphabet, which is where a stray
/// boundary or trailing junk starts; anything undecodable stays as it was.
fn redecode(part: &MessagePart<'_>, raw: &str) -> String {
    let encoding = part
        .content_transfer_encoding()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let decoded = match encoding.as_str() {
        "base64" => {
            let clean: Vec<u8> = raw
                .bytes()
                .filter(|b| !b.is_ascii_whitespace())
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
                .collect();
            base64_decode(&clean)
        }
        "quoted-printable" => quoted_printable_decode(raw.as_bytes()),
        _ => None,
    };
    let Some(bytes) = decoded else {
        return raw.to_string();
    };
    let charset = part.content_type().and_then(|ct| ct.attribute("charset"));
    match charset.and_then(|c| charset_decoder(c.as_bytes())) {
        Some(decode) => decode(&bytes),
        None => String::from_utf8_lossy(&bytes).into_owned(),
    }
}
