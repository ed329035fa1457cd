//! HTML to text for the text body, the snippet and the index: mail-parser's conversion, with
//! the same output, but skipping what cannot change it.
//!
//! mail-parser's `html_to_text` looks at every byte through the same chain of state tests.
//! HTML mail is mostly markup it then drops: long inline `style` attributes, `<style>` and
//! `<head>` blocks, comments. Here those stretches are crossed with `memchr`, and a run of
//! ordinary text bytes in one step; every byte that can change the state or the output still
//! goes through the original rules. The tests compare both conversions on generated markup.

use mail_parser::decoders::html::add_html_token;
use memchr::{memchr, memchr2};
use std::ops::Range;

/// A byte table that holds `bytes`.
const fn table(bytes: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
}

/// Bytes that end a run of text outside tags: whitespace, a tag, an entity's start or end.
static TEXT_BREAKS: [bool; 256] = table(b" \t\r\n<&;");

/// Bytes that matter inside a tag's name: its end, a new tag, a close or comment mark, and
/// whitespace, which ends the name.
static TAG_BREAKS: [bool; 256] = table(b"<>/! \t\r\n");

/// How many bytes `bytes` starts with that are none of [`TEXT_BREAKS`].
///
/// Eight bytes at a time: text runs are most of a document, and testing them byte by byte
/// was the conversion's hottest loop.
fn text_run(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    /// Marks (in the lowest marked byte exactly) a byte of `word` equal to `b`.
    fn equal(word: u64, b: u8) -> u64 {
        let x = word ^ (ONES * u64::from(b));
        x.wrapping_sub(ONES) & !x & HIGHS
    }
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        // Bytes below 0x21 hold every blank (and controls, checked below); then the rest.
        let marks = (word.wrapping_sub(ONES * 0x21) & !word & HIGHS)
            | equal(word, b'<')
            | equal(word, b'&')
            | equal(word, b';');
        if marks != 0 {
            let first = at + (marks.trailing_zeros() / 8) as usize;
            if TEXT_BREAKS[usize::from(bytes[first])] {
                return first;
            }
            // A control byte that is not a blank: go on past it, byte by byte.
            at = first + 1;
            continue;
        }
        at += 8;
    }
    at + bytes[at..]
        .iter()
        .position(|&b| TEXT_BREAKS[usize::from(b)])
        .unwrap_or(bytes.len() - at)
}

/// Whitespace between words.
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// How many blanks `bytes` starts with.
fn blanks(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&b| is_blank(b)).count()
}

/// The text being written. Tokens are appended as ranges of the document, and a range that
/// continues the one before it (a word after the single space before it, mostly) joins it,
/// so a run of plain words is copied in one piece.
struct Text<'a> {
    html: &'a str,
    out: String,
    /// Bytes of `html` still to append to `out`.
    pending: Range<usize>,
}

impl<'a> Text<'a> {
    fn new(html: &'a str) -> Self {
        Text {
            html,
            out: String::with_capacity(html.len()),
            pending: 0..0,
        }
    }

    /// Appends the pending range. Ranges start and end next to ASCII bytes, so slicing needs
    /// no validation, where mail-parser's own `add_html_token` validates every token.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let range = std::mem::replace(&mut self.pending, 0..0);
        match self.html.get(range.clone()) {
            Some(text) => self.out.push_str(text),
            // Unreachable by the above, but never a panic on mail.
            None => self.out.push_str(&String::from_utf8_lossy(
                self.html.as_bytes().get(range).unwrap_or_default(),
            )),
        }
    }

    /// Appends a character of its own: a line break, or a space where the document had other
    /// blanks.
    fn push(&mut self, c: char) {
        self.flush();
        self.out.push(c);
    }

    /// Appends one token of the document, after a space when `add_space`: an entity
    /// decoded, anything else as it is.
    fn token(&mut self, range: Range<usize>, add_space: bool) {
        let bytes = self.html.as_bytes();
        if let Some(token) = bytes.get(range.clone())
            && token.len() >= 2
            && token.starts_with(b"&")
            && token.ends_with(b";")
        {
            self.flush();
            add_html_token(&mut self.out, token, add_space);
            return;
        }
        let start = if !add_space {
            range.start
        } else if range.start > 0 && bytes.get(range.start - 1) == Some(&b' ') {
            // The space is the document's own, right before the token.
            range.start - 1
        } else {
            self.push(' ');
            range.start
        };
        if !self.pending.is_empty() && self.pending.end == start {
            self.pending.end = range.end;
        } else {
            self.flush();
            self.pending = start..range.end;
        }
    }

    fn finish(mut self) -> String {
        self.flush();
        self.out.shrink_to_fit();
        self.out
    }
}

/// The text of an HTML document, exactly as `mail_parser::decoders::html::html_to_text`
/// gives it.
pub(crate) fn html_to_text(html: &str) -> String {
    let mut text = Text::new(html);
    let input = html.as_bytes();

    let mut in_tag = false;
    let mut in_head = false;
    let mut in_style = false;
    let mut in_script = false;
    let mut in_template = false;
    let mut in_comment = false;

    let mut is_token_start = true;
    let mut is_after_space = false;
    let mut is_tag_close = false;
    let mut is_new_line = true;

    let mut token_start = 0;
    let mut token_end = 0;

    let mut tag_token_pos = 0u32;
    // Where the current comment's text starts: a `-->` is two dashes after it at least.
    let mut comment_start = 0;

    let mut pos = 0;
    while pos < input.len() {
        let hidden = in_head || in_style || in_script || in_template;
        if in_comment {
            // A comment ends at a `>` preceded by exactly two dashes inside it.
            let Some(at) = memchr(b'>', &input[pos..]) else {
                break;
            };
            let close = pos + at;
            let dashes = input[comment_start..close]
                .iter()
                .rev()
                .take_while(|&&b| b == b'-')
                .count();
            if dashes == 2 {
                in_comment = false;
                in_tag = false;
                is_token_start = true;
            }
            pos = close + 1;
            continue;
        }
        if in_tag && tag_token_pos >= 2 {
            // Past a tag's name only its end, or a new tag, matters.
            match memchr2(b'<', b'>', &input[pos..]) {
                Some(at) => pos += at,
                None => break,
            }
        } else if !in_tag && hidden {
            // Nothing inside head, style, script or template is shown.
            match memchr(b'<', &input[pos..]) {
                Some(at) => pos += at,
                None => break,
            }
        } else if !in_tag {
            // Words and the blanks between them are most of a text, and change no state:
            // they are taken here until markup or an entity's edge, not one per pass.
            loop {
                let run = text_run(&input[pos..]);
                if run > 0 {
                    if is_token_start {
                        token_start = pos;
                        is_token_start = false;
                    }
                    token_end = pos + run - 1;
                    pos += run;
                }
                if !input.get(pos).is_some_and(|&b| is_blank(b)) {
                    break;
                }
                if !is_token_start {
                    text.token(token_start..token_end + 1, is_after_space && !is_new_line);
                    is_new_line = false;
                }
                is_after_space = true;
                is_token_start = true;
                pos += 1 + blanks(&input[pos + 1..]);
            }
            if pos >= input.len() {
                break;
            }
        } else if tag_token_pos < 2 {
            // A tag's name: its ordinary bytes only extend it, or start it.
            while let Some(&b) = input.get(pos)
                && !TAG_BREAKS[usize::from(b)]
            {
                if is_token_start {
                    token_start = pos;
                    is_token_start = false;
                    tag_token_pos = tag_token_pos.saturating_add(1);
                }
                token_end = pos;
                pos += 1;
                if tag_token_pos >= 2 {
                    break;
                }
            }
            if tag_token_pos >= 2 || pos >= input.len() {
                continue;
            }
        }

        let ch = input[pos];
        match ch {
            b'<' => {
                if !in_tag && !hidden && !is_token_start {
                    text.token(token_start..token_end + 1, is_after_space);
                    is_after_space = false;
                }
                tag_token_pos = 0;
                in_tag = true;
                is_token_start = true;
                is_tag_close = false;
                pos += 1;
                continue;
            }
            b'>' if in_tag => {
                if tag_token_pos == 1 {
                    match input.get(token_start..token_end + 1) {
                        Some(tag)
                            if tag.eq_ignore_ascii_case(b"br")
                                || (tag.eq_ignore_ascii_case(b"p") && is_tag_close) =>
                        {
                            text.push('\n');
                            is_after_space = false;
                            is_new_line = true;
                        }
                        Some(tag) if tag.eq_ignore_ascii_case(b"head") => in_head = !is_tag_close,
                        Some(tag) if tag.eq_ignore_ascii_case(b"style") => in_style = !is_tag_close,
                        Some(tag) if tag.eq_ignore_ascii_case(b"script") => {
                            in_script = !is_tag_close
                        }
                        Some(tag) if tag.eq_ignore_ascii_case(b"template") => {
                            in_template = !is_tag_close
                        }
                        _ => (),
                    }
                }
                in_tag = false;
                is_token_start = true;
                pos += 1;
                continue;
            }
            b'/' if in_tag => {
                if tag_token_pos == 0 {
                    is_tag_close = true;
                }
                pos += 1;
                continue;
            }
            b'!' if in_tag && tag_token_pos == 0 && input.get(pos + 1..pos + 3) == Some(b"--") => {
                in_comment = true;
                comment_start = pos + 1;
                pos += 1;
                continue;
            }
            // Only a tag's name meets a blank here: shown text takes its blanks in the word loop
            // above, and hidden text is crossed to its next `<`. A blank ends the name, and the
            // rest of the run changes nothing more.
            b' ' | b'\t' | b'\r' | b'\n' => {
                is_token_start = true;
                pos += 1 + blanks(&input[pos + 1..]);
                continue;
            }
            // Shown text only, for the same reason.
            b'&' | b';' if !in_tag && !is_token_start => {
                // `&` ends the token before it and starts its own; `;` ends the token it is in.
                let end = if ch == b';' { pos } else { token_end };
                text.token(token_start..end + 1, is_after_space && !is_new_line);
                is_new_line = false;
                is_token_start = true;
                is_after_space = false;
                if ch == b';' {
                    pos += 1;
                    continue;
                }
            }
            _ => (),
        }
        if is_token_start {
            token_start = pos;
            is_token_start = false;
            if in_tag {
                tag_token_pos = tag_token_pos.saturating_add(1);
            }
        }
        token_end = pos;
        pos += 1;
    }

    if !in_tag && !is_token_start && !in_head && !in_style && !in_script && !in_template {
        text.token(token_start..token_end + 1, is_after_space && !is_new_line);
    }

    text.finish()
}

#[cfg(test)]
mod tests {
    use super::html_to_text;
    use mail_parser::decoders::html::html_to_text as reference;

    /// Pieces that exercise every rule: tags that switch state, comments (closed well, badly,
    /// and not at all), entities, whitespace, attributes and stray markup characters.
    const PIECES: &[&str] = &[
        "<",
        ">",
        "/",
        "!",
        "-",
        "--",
        "&",
        ";",
        " ",
        "\t",
        "\r\n",
        "\n",
        "a",
        "Zé",
        "x y",
        "<br>",
        "<BR/>",
        "<p>",
        "</p>",
        "</P >",
        "<head>",
        "</head>",
        "<style>",
        "</style>",
        "<script>",
        "</script>",
        "<template>",
        "</template>",
        "<!--",
        "-->",
        "--->",
        "<!-- c -->",
        "<!-->",
        "<b>",
        "</b>",
        "<a href=\"x\">",
        "<div style=\"color:red; a>b\">",
        "&amp;",
        "&lt;",
        "&#65;",
        "&#x42;",
        "&#xZZ;",
        "&nosuch;",
        "&nbsp;",
        "&amp",
        "a;b",
        "<p/>",
        "< br>",
        "<b/r>",
        "<!x>",
        "<!-x-->",
        "&;",
        "€",
        "\u{1F600}",
        // Controls that are not blanks, and runs longer than the eight bytes read at once.
        "\u{0}",
        "\u{b}",
        "\u{c}",
        "\u{7f}",
        "abcdefghijkl",
        "wordé€\u{1F600}more",
    ];

    /// A small deterministic generator, so a failure can be replayed.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as usize
        }
    }

    #[test]
    fn gives_what_mail_parser_gives_on_generated_markup() {
        let mut rng = Lcg(12345);
        for case in 0..200_000 {
            let len = rng.next() % 24;
            let html: String = (0..len)
                .map(|_| PIECES[rng.next() % PIECES.len()])
                .collect();
            assert_eq!(
                html_to_text(&html),
                reference(&html),
                "case {case}: {html:?}"
            );
        }
    }

    #[test]
    fn gives_what_mail_parser_gives_on_a_mail_like_document() {
        let html = "<html><head><title>T</title><style>p { color: red; }</style></head>\
            <body><!-- hidden --><p style=\"margin:0;padding:0\">Hello&nbsp;there,<br>\
            friend &amp; co;</p><script>var a = '<p>';</script><p>Bye</p></body></html>";
        assert_eq!(html_to_text(html), reference(html));
        assert_eq!(html_to_text(""), reference(""));
    }
}
