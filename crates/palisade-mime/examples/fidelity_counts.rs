//! Counts parse-fidelity problems over a corpus directory (issue 10).
//!
//! `cargo run -p palisade-mime --example fidelity_counts --release -- <corpus dir>`
//!
//! It judges Palisade's parsed view against mail-parser's raw part list, independently of the
//! body logic it checks: an inline-eligible part (a `text/plain` or `text/html` leaf that is
//! not declared an attachment, or a multipart whose boundary never occurs) must have its text
//! in the text or HTML body, or be listed among the attachments.

use std::collections::HashSet;
use std::path::PathBuf;

#[path = "shared/corpus.rs"]
mod corpus;

use corpus::files;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use palisade_mime::{ParseLimits, parse_message};

/// RFC 5322: some `name:` line before the first empty line.
fn has_header_section(raw: &[u8]) -> bool {
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    raw.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
        .take(50)
        .any(|l| {
            l.iter().position(|&b| b == b':').is_some_and(|c| {
                let name = l[..c].trim_ascii_end();
                !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b))
            })
        })
}

/// A line of only spaces or tabs before the first empty line, after some header field.
fn header_whitespace_line(raw: &[u8]) -> bool {
    raw.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
        .skip(1)
        .any(|l| l.iter().all(|&b| b == b' ' || b == b'\t'))
}

/// Unindented `name:` lines before the first empty line, mbox `From ` line excepted.
fn raw_field_count(raw: &[u8]) -> u32 {
    let raw = strip_noise(raw);
    let mut count = 0;
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if !line.starts_with(b" ") && !line.starts_with(b"\t") && line.contains(&b':') {
            count += 1;
        }
    }
    count
}

fn strip_noise(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    match raw.strip_prefix(b"From ") {
        Some(rest) if !rest.trim_ascii_start().starts_with(b":") => {
            match rest.iter().position(|&b| b == b'\n') {
                Some(end) => &rest[end + 1..],
                None => raw,
            }
        }
        _ => raw,
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("../shared/corpus"), PathBuf::from);
    let verbose = std::env::var_os("VERBOSE").is_some();
    let (mut parsed, mut with_headers, mut errors) = (0, 0, 0);
    let (mut missing_msgs, mut missing_parts) = (0, 0);
    let (mut ws_headers, mut ws_lost) = (0, 0);
    let (mut multipart_msgs, mut multipart_atts) = (0, 0);
    for path in files(&dir) {
        let Ok(raw) = std::fs::read(&path) else {
            continue;
        };
        parsed += 1;
        let content = parse_message(&raw, &ParseLimits::default());
        if has_header_section(&raw) {
            with_headers += 1;
            if let Some(e) = &content.parse_error {
                errors += 1;
                if verbose {
                    println!("parse error: {} ({e})", path.display());
                }
            }
        }
        let multis = content
            .attachments
            .iter()
            .filter(|a| a.content_type.starts_with("multipart/"))
            .count();
        if multis > 0 {
            multipart_msgs += 1;
            multipart_atts += multis;
            if verbose {
                println!("multipart attachment: {}", path.display());
            }
        }
        if header_whitespace_line(&raw) {
            ws_headers += 1;
            if content.header_count < raw_field_count(&raw) {
                ws_lost += 1;
            }
        }
        if content.body_truncated {
            continue;
        }
        let Some(message) = MessageParser::default().parse(strip_noise(&raw)) else {
            continue;
        };
        let listed: HashSet<u32> = content.attachments.iter().map(|a| a.part_index).collect();
        let text = collapse(content.text_body.as_deref().unwrap_or_default());
        let html = collapse(content.html_body.as_deref().unwrap_or_default());
        let mut missing_here = 0;
        // Top-level parts only: a nested message is one attachment.
        let mut stack = vec![0u32];
        while let Some(id) = stack.pop() {
            let Some(part) = message.parts.get(id as usize) else {
                continue;
            };
            let ct = part.content_type();
            let ctype = ct.map(|c| c.ctype().to_ascii_lowercase());
            let sub = ct.and_then(|c| c.subtype()).map(str::to_ascii_lowercase);
            let body = match &part.body {
                PartType::Multipart(children) => {
                    stack.extend(children.iter().rev().filter(|&&c| c > id));
                    continue;
                }
                PartType::Text(t) | PartType::Html(t) => t.as_ref(),
                _ => continue,
            };
            let eligible = matches!(
                (ctype.as_deref(), sub.as_deref()),
                (None, _) | (Some("text"), Some("plain" | "html")) | (Some("multipart"), _)
            );
            let declared_attachment = part
                .content_disposition()
                .is_some_and(|d| d.is_attachment())
                || part.attachment_name().is_some();
            if !eligible || declared_attachment || listed.contains(&id) {
                continue;
            }
            let is_html = sub.as_deref() == Some("html");
            let want: String = collapse(body).chars().take(60).collect();
            let found = want.is_empty()
                || if is_html {
                    html.contains(&want)
                } else {
                    text.contains(&want) || html.contains(&want)
                }
                || part.is_encoding_problem && (!text.is_empty() || !html.is_empty());
            if !found {
                missing_here += 1;
                if verbose {
                    println!("missing part {id}: {}", path.display());
                }
            }
        }
        if missing_here > 0 {
            missing_msgs += 1;
            missing_parts += missing_here;
        }
    }
    println!("messages parsed: {parsed}");
    println!("messages with a header section: {with_headers}");
    println!("parse errors among messages with a header section: {errors}");
    println!(
        "messages with an inline part missing from body and attachments: {missing_msgs} ({missing_parts} parts)"
    );
    println!(
        "messages with a whitespace-only line in the header section: {ws_headers} ({ws_lost} with header fields lost)"
    );
    println!(
        "multipart containers listed as attachments: {multipart_atts} (in {multipart_msgs} messages)"
    );
}
