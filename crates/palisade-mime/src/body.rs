//! Assembling the text and HTML bodies from every inline part, as a mail client shows them.

use crate::fields;
use std::collections::{HashMap, HashSet};

use crate::html_text::html_to_text;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{Message, MessagePart, PartType};

use crate::attachments::content_type;
use crate::preamble::stray_text_in_part_headers;
use crate::tree::Tree;

/// The bodies of a message.
pub(crate) struct Bodies {
    /// Every inline text part in order, HTML ones converted to text.
    pub text: Option<String>,
    /// Every inline part in order when at least one is HTML; `None` for plain-only mail.
    pub html: Option<String>,
    /// Part ids whose content is in `text` or `html`.
    pub shown: HashSet<u32>,
    /// Some inline part was left out because the bodies already exceeded the size limit.
    pub cut: bool,
}

/// One inline part in a body, and whether it holds HTML.
#[derive(Debug, Clone, Copy)]
struct Segment {
    id: u32,
    html: bool,
}

/// What a subtree contributes to the text body and to the HTML body.
#[derive(Debug, Default, Clone)]
struct View {
    text: Vec<Segment>,
    html: Vec<Segment>,
}

/// Builds the bodies from the parts within the depth limit.
///
/// Past the first part, parts are appended only while a body is at most `max` bytes long,
/// so a message of a hundred thousand tiny parts stays bounded.
pub(crate) fn bodies(message: &Message<'_>, tree: &Tree, max: usize) -> Bodies {
    let view = if tree.contains(0) {
        view(message, tree, 0)
    } else {
        View::default()
    };
    let mut shown = HashSet::new();
    let mut cut = false;
    // An HTML part is in both bodies: decoded once, converted for the text body, and kept
    // here for the HTML body.
    let mut html_parts: HashMap<u32, String> = HashMap::new();
    let text = join(&view.text, max, &mut cut, "\n", |seg| {
        let text = contents(message, seg.id)?;
        shown.insert(seg.id);
        Some(if seg.html {
            let converted = html_to_text(&text);
            html_parts.insert(seg.id, text);
            converted
        } else {
            text
        })
    });
    let html = if view.html.iter().any(|s| s.html) {
        join(&view.html, max, &mut cut, "", |seg| {
            let text = match html_parts.remove(&seg.id) {
                Some(text) => text,
                None => contents(message, seg.id)?,
            };
            shown.insert(seg.id);
            Some(if seg.html {
                text
            } else {
                escape_as_html(&text)
            })
        })
    } else {
        None
    };
    Bodies {
        text,
        html,
        shown,
        cut,
    }
}

/// Concatenates rendered segments in order; `separator` (after a line break) goes between them.
fn join(
    segments: &[Segment],
    max: usize,
    cut: &mut bool,
    separator: &str,
    mut render: impl FnMut(Segment) -> Option<String>,
) -> Option<String> {
    let mut out: Option<String> = None;
    for &seg in segments {
        if out.as_ref().is_some_and(|body| body.len() > max) {
            *cut = true;
            break;
        }
        let Some(piece) = render(seg) else {
            continue;
        };
        match &mut out {
            None => out = Some(piece),
            Some(body) => {
                if !body.ends_with('\n') {
                    body.push('\n');
                }
                body.push_str(separator);
                body.push_str(&piece);
            }
        }
    }
    out
}

/// What the subtree under part `id` shows; recursion is bounded by the tree's depth limit.
fn view(message: &Message<'_>, tree: &Tree, id: u32) -> View {
    let Some(part) = message.parts.get(id as usize) else {
        return View::default();
    };
    let PartType::Multipart(children) = &part.body else {
        return match inline_kind(part, id) {
            Some(html) => {
                let seg = Segment { id, html };
                View {
                    text: vec![seg],
                    html: vec![seg],
                }
            }
            None => View::default(),
        };
    };
    let kids: Vec<View> = children
        .iter()
        .filter(|&&c| c > id && tree.contains(c))
        .map(|&c| view(message, tree, c))
        .collect();
    if content_type(part) == "multipart/alternative" {
        // One alternative each: plain text preferred for the text body, HTML (the last,
        // richest one, per RFC 2046) for the HTML body.
        let text = kids
            .iter()
            .find(|v| v.text.iter().any(|s| !s.html))
            .or_else(|| kids.iter().rev().find(|v| !v.text.is_empty()));
        let html = kids
            .iter()
            .rev()
            .find(|v| v.html.iter().any(|s| s.html))
            .or(text);
        return View {
            text: text.map(|v| v.text.clone()).unwrap_or_default(),
            html: html.map(|v| v.html.clone()).unwrap_or_default(),
        };
    }
    let mut all = View::default();
    for kid in kids {
        all.text.extend(kid.text);
        all.html.extend(kid.html);
    }
    all
}

/// Whether a leaf part is shown in the body: `Some(true)` for HTML, `Some(false)` for text.
///
/// Shown are `text/plain` and `text/html` parts not declared attachments (by disposition, or
/// by a file name without an `inline` disposition), and a multipart whose boundary never
/// occurs: mail clients show its content as plain text.
fn inline_kind(part: &MessagePart<'_>, id: u32) -> Option<bool> {
    let disposition = fields::content_disposition(part);
    if disposition.is_some_and(|d| d.is_attachment()) {
        return None;
    }
    let named = fields::attachment_name(part).is_some_and(|n| !n.trim().is_empty());
    // The root part is the message itself: a name on it does not make it an attachment.
    if named && id != 0 && !disposition.is_some_and(|d| d.is_inline()) {
        return None;
    }
    let ctype = content_type(part);
    let is_text = matches!(part.body, PartType::Text(_) | PartType::Html(_));
    match ctype.as_str() {
        "text/plain" if is_text => Some(false),
        "text/html" if is_text => Some(true),
        _ if ctype.starts_with("multipart/") => Some(false),
        _ => None,
    }
}

/// The decoded text of a part shown inline, after any text the sender put where its
/// header block belongs ([`stray_text_in_part_headers`]).
fn contents(message: &Message<'_>, id: u32) -> Option<String> {
    let text = decoded(message, id)?;
    let part = message.parts.get(id as usize)?;
    let block = message
        .raw_message
        .get(part.offset_header as usize..part.offset_body as usize);
    match block {
        // Only a block that starts a line: a part cut mid-line is mis-split structure.
        Some(block) if id != 0 && starts_line(&message.raw_message, part.offset_header) => {
            match stray_text_in_part_headers(block) {
                Some(at) => {
                    let stray = String::from_utf8_lossy(&block[at..]);
                    Some(format!("{}\n{text}", stray.trim_end()))
                }
                None => Some(text),
            }
        }
        _ => Some(text),
    }
}

/// Whether `offset` is the start of a line of `raw`.
fn starts_line(raw: &[u8], offset: u32) -> bool {
    offset == 0 || raw.get(offset as usize - 1) == Some(&b'\n')
}

/// The decoded content of a part shown inline.
fn decoded(message: &Message<'_>, id: u32) -> Option<String> {
    let part = message.parts.get(id as usize)?;
    match &part.body {
        PartType::Text(text) | PartType::Html(text) if part.is_encoding_problem => {
            Some(redecode(part, text))
        }
        PartType::Text(text) | PartType::Html(text) if is_quoted_printable(part) => {
            let raw = message
                .raw_message
                .get(part.offset_body as usize..part.offset_end as usize)?;
            // Decoding again costs as much as parsing did: only when mail-parser's strict
            // reading may differ from the lenient one.
            if strictly_encoded(raw) {
                Some(text.to_string())
            } else {
                Some(in_charset(part, &lenient_quoted_printable(raw)))
            }
        }
        PartType::Text(text) | PartType::Html(text) => Some(text.to_string()),
        // A multipart without a usable boundary parameter stays undecoded bytes.
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
        _ => None,
    }
}

/// Plain text as HTML, for a plain part shown among HTML ones.
fn escape_as_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    out.push_str("<pre>");
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out.push_str("</pre>");
    out
}

/// Decodes a part mail-parser gave up on and left as raw transfer-encoded text.
///
/// Base64 is decoded up to the first byte outside its alphabet, which is where a stray
/// boundary or trailing junk starts; anything undecodable stays as it was.
fn redecode(part: &MessagePart<'_>, raw: &str) -> String {
    let encoding = fields::transfer_encoding(part)
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
        "quoted-printable" => Some(lenient_quoted_printable(raw.as_bytes())),
        _ => None,
    };
    let Some(bytes) = decoded else {
        return raw.to_string();
    };
    in_charset(part, &bytes)
}

/// Decoded bytes as text in the part's declared charset, UTF-8 (lossy) when it has none we know.
fn in_charset(part: &MessagePart<'_>, bytes: &[u8]) -> String {
    let charset = fields::charset(part);
    // Most re-decoded text is ASCII in a charset that maps ASCII to itself, which reads as
    // UTF-8; mail-parser's table decoders would still push it a character at a time.
    let decoder = charset
        .filter(|label| !(fields::keeps_ascii(label.as_bytes()) && bytes.is_ascii()))
        .and_then(|label| charset_decoder(label.as_bytes()));
    match decoder {
        Some(decode) => decode(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Whether a part declares the quoted-printable transfer encoding.
fn is_quoted_printable(part: &MessagePart<'_>) -> bool {
    fields::transfer_encoding(part)
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("quoted-printable"))
}

/// Whether quoted-printable text reads the same strictly and leniently: every `=` starts an
/// escape of two hex digits or ends its line (a soft break), and no decoded line ends in
/// blanks, which the lenient reading drops as transport padding.
fn strictly_encoded(raw: &[u8]) -> bool {
    let escapes_ok = memchr::memchr_iter(b'=', raw).all(|at| match raw.get(at + 1..) {
        Some([b'\n', ..] | [b'\r', b'\n', ..]) => true,
        Some([hi, lo, ..]) => hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit(),
        _ => false,
    });
    // What a decoded line ends with: the encoded line before its break, and before any soft
    // breaks that joined it.
    let ends_in_blank = |mut line: &[u8]| {
        line = line.strip_suffix(b"\r").unwrap_or(line);
        while let Some(joined) = line
            .strip_suffix(b"=\n")
            .or_else(|| line.strip_suffix(b"=\r\n"))
        {
            line = joined;
        }
        matches!(line.last(), Some(b' ' | b'\t'))
    };
    let line_ends_ok = || {
        memchr::memchr_iter(b'\n', raw).all(|at| {
            let line = &raw[..at];
            let soft = line.strip_suffix(b"\r").unwrap_or(line).ends_with(b"=");
            soft || !ends_in_blank(line)
        }) && !ends_in_blank(raw)
    };
    escapes_ok && line_ends_ok()
}

/// Quoted-printable decoding as mail clients do it, never failing.
///
/// mail-parser gives up on (or garbles) a whole part at the first `=` that is not followed
/// by two hex digits or a line break, which leaves every `=3D` of the part undecoded. RFC
/// 2045 section 6.7 (note 1) suggests the robust reading instead: such an `=` is kept as it
/// is. A soft line break (`=` then optional blanks then the line break) joins the lines;
/// blanks at the end of an encoded line are transport padding and are dropped.
pub(crate) fn lenient_quoted_printable(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    // Decoded bytes end here at the earliest: an encoded `=20` is content, not padding.
    let mut kept = 0;
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'=' => {
                let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
                if let (Some(hi), Some(lo)) = (hex(raw.get(i + 1)), hex(raw.get(i + 2))) {
                    out.push((hi * 16 + lo) as u8);
                    kept = out.len();
                    i += 3;
                    continue;
                }
                let mut j = i + 1;
                while matches!(raw.get(j), Some(b' ' | b'\t')) {
                    j += 1;
                }
                match raw.get(j) {
                    Some(b'\n') => i = j + 1,
                    Some(b'\r') if raw.get(j + 1) == Some(&b'\n') => i = j + 2,
                    None => i = j,
                    _ => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b'\r' | b'\n' => {
                while out.len() > kept && matches!(out.last(), Some(b' ' | b'\t')) {
                    out.pop();
                }
                out.push(raw[i]);
                kept = out.len();
                i += 1;
            }
            _ => {
                // Up to the next byte with a rule, in one copy: most text is plain.
                let run = memchr::memchr3(b'=', b'\r', b'\n', &raw[i..]).unwrap_or(raw.len() - i);
                out.extend_from_slice(&raw[i..i + run]);
                i += run;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_quoted_printable_decodes_as_the_byte_by_byte_reading_did() {
        // The decoder as it was written before plain runs were copied at once.
        fn by_byte(raw: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            let mut kept = 0;
            let mut i = 0;
            while i < raw.len() {
                match raw[i] {
                    b'=' => {
                        let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
                        if let (Some(hi), Some(lo)) = (hex(raw.get(i + 1)), hex(raw.get(i + 2))) {
                            out.push((hi * 16 + lo) as u8);
                            kept = out.len();
                            i += 3;
                            continue;
                        }
                        let mut j = i + 1;
                        while matches!(raw.get(j), Some(b' ' | b'\t')) {
                            j += 1;
                        }
                        match raw.get(j) {
                            Some(b'\n') => i = j + 1,
                            Some(b'\r') if raw.get(j + 1) == Some(&b'\n') => i = j + 2,
                            None => i = j,
                            _ => {
                                out.push(b'=');
                                i += 1;
                            }
                        }
                    }
                    b'\r' | b'\n' => {
                        while out.len() > kept && matches!(out.last(), Some(b' ' | b'\t')) {
                            out.pop();
                        }
                        out.push(raw[i]);
                        kept = out.len();
                        i += 1;
                    }
                    b => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            out
        }
        let pieces: [&[u8]; 13] = [
            b"=",
            b"=2",
            b"=20",
            b"=3D",
            b"=\r\n",
            b"=\n",
            b" ",
            b"\t",
            b"\r\n",
            b"\n",
            b"ab",
            "é".as_bytes(),
            b"= \r\n",
        ];
        // Every sequence of up to five pieces.
        let mut raw = Vec::new();
        for len in 0..=5u32 {
            for mut n in 0..pieces.len().pow(len) {
                raw.clear();
                for _ in 0..len {
                    raw.extend_from_slice(pieces[n % pieces.len()]);
                    n /= pieces.len();
                }
                assert_eq!(lenient_quoted_printable(&raw), by_byte(&raw), "{raw:?}");
            }
        }
    }

    /// The strict reading is taken only where it equals the lenient one.
    #[test]
    fn strictly_encoded_text_is_recognised() {
        for clean in [
            &b"caf=C3=A9 and =3d\r\nsoft =\r\nbreak=\nend"[..],
            b"",
            b"a =\r\nb\r\n",
        ] {
            assert!(
                strictly_encoded(clean),
                "{:?}",
                String::from_utf8_lossy(clean)
            );
        }
        for lenient in [
            &b"a stray = sign"[..],
            b"bad =ZZ escape",
            b"cut at the end =",
            b"blank before the break \r\nx",
            b"blank carried over a soft break =\r\n\r\nx",
            b"blanks after a soft break =  \r\nx",
            b"trailing blank ",
        ] {
            assert!(
                !strictly_encoded(lenient),
                "{:?}",
                String::from_utf8_lossy(lenient)
            );
        }
    }
}
