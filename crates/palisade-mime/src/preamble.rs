//! What comes before the body: artifacts to drop, the header-section check, and the fixes
//! that make mail-parser read the header section as RFC 5322 defines it.

use std::borrow::Cow;

use crate::fields;
use crate::headers::{Field, FieldLines};

/// How many leading lines may be garbage before we conclude there are no headers at all.
const MAX_HEADER_LINES_CHECKED: usize = 50;

/// Drops a UTF-8 byte-order mark and an mbox `From ` envelope line: neither belongs to the
/// message, and both would otherwise be read as a bogus first header field.
pub(crate) fn strip_envelope_noise(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    match raw.strip_prefix(b"From ") {
        // `From : x` is the obsolete header syntax, not an envelope line.
        Some(rest) if !rest.trim_ascii_start().starts_with(b":") => {
            match memchr::memchr(b'\n', rest) {
                Some(end) => &rest[end + 1..],
                None => raw,
            }
        }
        _ => raw,
    }
}

/// The bytes handed to mail-parser, identical for parsing and for cutting parts out later so
/// that part ids agree.
///
/// - Envelope noise is dropped ([`strip_envelope_noise`]).
/// - Input without a header section gets an empty one (a leading line break): it is all body.
/// - A line of only spaces or tabs inside the header section is folded into the line before
///   (RFC 5322 obs-FWS): mail-parser would take it as the end of the headers, and only an
///   empty line ends them. The replacement keeps every byte offset.
///
/// The fields read from the header section come with the bytes: the walk that looks for
/// what to fix reads every line of the section, so it gathers them on the way.
pub(crate) fn prepare(raw: &[u8]) -> Prepared<'_> {
    let raw = skip_leading_blank_lines(strip_envelope_noise(raw));
    if !has_header_section(raw) {
        let mut all_body = Vec::with_capacity(raw.len() + 1);
        all_body.push(b'\n');
        all_body.extend_from_slice(raw);
        return Prepared {
            bytes: Cow::Owned(all_body),
            fields: Vec::new(),
        };
    }
    let lines = header_lines(raw);
    let folded = match lines
        .blank_line
        .then(|| fold_blank_header_lines(raw))
        .flatten()
    {
        Some(folded) => Cow::Owned(folded),
        None => Cow::Borrowed(raw),
    };
    // Without a multipart or message type, mail-parser reads the body as one part: there is
    // no boundary parameter to unfold and no header block to cut, and looking for them reads
    // the whole message (half of this preparation's time over the corpus).
    if !lines.structured {
        let lines = of_bytes(&folded, matches!(folded, Cow::Owned(_)), lines);
        let folded = match hideable_charset(&folded, &lines) {
            Some(at) => {
                let mut hidden = folded.into_owned();
                let name = fields::HIDDEN_CHARSET.as_bytes();
                hidden[at..at + name.len()].copy_from_slice(name);
                Cow::Owned(hidden)
            }
            None => folded,
        };
        return with_line_breaks(folded, lines.body_start.into_iter().collect(), lines.fields);
    }
    // Found once, for both fixes: the scan covers the whole message, and unfolding moves only
    // the parameters it fixes, which it updates here.
    let mut parameters: Vec<(usize, usize)> = boundary_parameters(&folded).collect();
    let folded = match unfold_boundary_parameters(&folded, &mut parameters) {
        Some(fixed) => Cow::Owned(fixed),
        None => folded,
    };
    let lines = of_bytes(&folded, matches!(folded, Cow::Owned(_)), lines);
    let mut breaks: Vec<usize> = lines.body_start.into_iter().collect();
    let before = breaks.len();
    breaks.extend(header_blocks_cut_by_a_boundary(&folded, &parameters));
    if breaks.len() > before {
        breaks.sort_unstable();
        breaks.dedup();
    }
    with_line_breaks(folded, breaks, lines.fields)
}

/// The bytes handed to mail-parser, and the fields of their header section that anything
/// reads ([`FieldLines`]).
pub(crate) struct Prepared<'a> {
    /// The message as mail-parser reads it.
    pub bytes: Cow<'a, [u8]>,
    /// The fields anything reads, in the order written.
    pub fields: Vec<Field>,
}

/// The fields anything reads ([`FieldLines`]) of the header section at the start of `raw`,
/// for bytes [`prepare`] did not hand out, found by the same walk.
pub(crate) fn header_fields(raw: &[u8]) -> Vec<Field> {
    if !has_header_section(raw) {
        return Vec::new();
    }
    header_lines(raw).fields.finish(usize::MAX)
}

/// What the walk over the header section of `raw` finds. The first walk's answer (`lines`)
/// holds unless a fix moved the header section's bytes (rare), which made `raw` a copy:
/// `fixed`.
fn of_bytes(raw: &[u8], fixed: bool, lines: HeaderLines) -> HeaderLines {
    if fixed { header_lines(raw) } else { lines }
}

/// `raw` with a line break inserted at each of `breaks` (sorted, distinct), and the fields
/// of its header section, which the first break ends if it comes before the empty line.
fn with_line_breaks<'a>(
    raw: Cow<'a, [u8]>,
    breaks: Vec<usize>,
    fields: FieldLines,
) -> Prepared<'a> {
    let fields = fields.finish(breaks.first().copied().unwrap_or(usize::MAX));
    if breaks.is_empty() {
        return Prepared { bytes: raw, fields };
    }
    let mut separated = Vec::with_capacity(raw.len() + 2 * breaks.len());
    let mut from = 0;
    for at in breaks {
        separated.extend_from_slice(&raw[from..at]);
        // The same line break as the line before, so CRLF mail stays CRLF.
        let crlf = at >= 2 && raw[at - 2] == b'\r';
        separated.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        from = at;
    }
    separated.extend_from_slice(&raw[from..]);
    Prepared {
        bytes: Cow::Owned(separated),
        fields,
    }
}

/// Most boundaries collected from one message; more is hostile input, not mail.
const MAX_BOUNDARIES: usize = 256;

/// Where an empty line is missing because a boundary line interrupts a header block.
///
/// A part's header block, or that of an attached message, must end with an empty line
/// (RFC 2046 section 5.1.1, RFC 5322 section 2.1). When a declared boundary comes first,
/// mail-parser reads on past it as more header fields: the attached message swallows the
/// parts after it, and they are lost. The block ends at the boundary instead, as CPython
/// and mail clients read it, leaving the part (or attached message) with an empty body.
///
/// `parameters` are the message's [`boundary_parameters`].
fn header_blocks_cut_by_a_boundary(raw: &[u8], parameters: &[(usize, usize)]) -> Vec<usize> {
    let boundaries = declared_boundaries(raw, parameters);
    let mut cuts = Vec::new();
    if boundaries.is_empty() {
        return cuts;
    }
    // The top-level header section comes first; the empty line that ends it is not ours to
    // find, so it counts as a block with lines in it only after its first line.
    let mut in_headers = true;
    let mut block_lines = 0usize;
    let mut attached_message = false;
    // Whether the current line belongs to a `Content-Type` field, whose type may come on
    // a continuation line.
    let mut in_content_type = false;
    let mut nested_next = false;
    let mut start = 0;
    while start < raw.len() {
        // Outside a header block only a boundary line matters: jump to the next line that
        // could be one instead of walking the body line by line.
        if !in_headers && !nested_next && !raw[start..].starts_with(b"--") {
            match memchr::memmem::find(&raw[start..], b"\n--") {
                Some(nl) => start += nl + 1,
                None => break,
            }
        }
        let end = memchr::memchr(b'\n', &raw[start..]).map_or(raw.len(), |nl| start + nl + 1);
        let line = raw[start..end].trim_ascii_end();
        if nested_next {
            nested_next = false;
            in_headers = true;
            block_lines = 0;
            attached_message = false;
            in_content_type = false;
        }
        if let Some(closing) = delimiter(line, &boundaries) {
            if in_headers && block_lines > 0 {
                cuts.push(start);
            }
            in_headers = !closing;
            block_lines = 0;
            attached_message = false;
            in_content_type = false;
        } else if in_headers {
            if raw[start..end].trim_ascii_end().is_empty() && !matches!(raw[start], b' ' | b'\t') {
                in_headers = false;
                nested_next = attached_message;
            } else {
                block_lines += 1;
                if !matches!(line.first(), Some(b' ' | b'\t')) {
                    in_content_type = is_field(line, b"content-type");
                }
                if in_content_type && find_ignore_case(line, b"message/rfc822").is_some() {
                    attached_message = true;
                }
            }
        }
        start = end;
    }
    cuts
}

/// Where `needle` (lowercase ASCII) first occurs in `haystack`, in any case. Candidates are
/// found with memchr on the first byte: these scans cover whole messages on every delivery.
fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(pos) = memchr::memchr2(first, first.to_ascii_uppercase(), &haystack[from..]) {
        let at = from + pos;
        let tail = haystack.get(at + 1..at + needle.len())?;
        if tail.eq_ignore_ascii_case(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Whether `line` is `--boundary` (`Some(false)`) or `--boundary--` (`Some(true)`).
fn delimiter(line: &[u8], boundaries: &[Vec<u8>]) -> Option<bool> {
    let rest = line.strip_prefix(b"--")?;
    boundaries.iter().find_map(|b| {
        let after = rest.strip_prefix(b.as_slice())?;
        match after {
            b"" => Some(false),
            b"--" => Some(true),
            _ => None,
        }
    })
}

/// The values of the `boundary` parameters (`parameters`, from [`boundary_parameters`]) in the
/// message, quoted or not.
fn declared_boundaries(raw: &[u8], parameters: &[(usize, usize)]) -> Vec<Vec<u8>> {
    let mut found: Vec<Vec<u8>> = Vec::new();
    for &(name_start, eq) in parameters {
        if name_start + BOUNDARY.len() != eq {
            continue;
        }
        let value = &raw[eq + 1..];
        let value = match value.strip_prefix(b"\"") {
            Some(quoted) => quoted.split(|&b| b == b'"' || b == b'\n').next(),
            None => value
                .split(|&b| b == b';' || b.is_ascii_whitespace())
                .next(),
        };
        if let Some(v) = value.map(|v| v.trim_ascii_end())
            && !v.is_empty()
            && !found.iter().any(|f| f == v)
        {
            found.push(v.to_vec());
        }
        if found.len() >= MAX_BOUNDARIES {
            break;
        }
    }
    found
}

/// The parameter name both scans look for.
const BOUNDARY: &[u8] = b"boundary";

/// Each `boundary` (any case) followed by an `=`, with blanks or line breaks allowed between:
/// where the name starts and where the `=` is. Found from the `=` signs, which are far rarer
/// than the name's first letter in base64: these scans cover whole messages on every delivery.
fn boundary_parameters(raw: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    memchr::memchr_iter(b'=', raw).filter_map(move |eq| {
        // Most `=` are quoted-printable escapes: the byte before rules them out.
        let before = raw[eq.checked_sub(1)?];
        if !(before.eq_ignore_ascii_case(&b'y') || is_blank(before)) {
            return None;
        }
        let gap = raw[..eq].iter().rev().take_while(|&&b| is_blank(b)).count();
        let name_start = eq.checked_sub(gap + BOUNDARY.len())?;
        raw[name_start..eq - gap]
            .eq_ignore_ascii_case(BOUNDARY)
            .then_some((name_start, eq))
    })
}

/// Whitespace a parameter's tokens may be folded across.
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Where text starts inside a body part's header block, when the part has none.
///
/// A part must open with its (possibly empty) header block and an empty line (RFC 2046
/// section 5.1.1). When the first line after the boundary is prose and no field follows,
/// the sender left both out: mail clients (and CPython) show that text as the part's
/// content, where mail-parser would take it as a field name and drop it.
pub(crate) fn stray_text_in_part_headers(block: &[u8]) -> Option<usize> {
    let mut start = 0;
    let mut candidate = None;
    while start < block.len() {
        let end = memchr::memchr(b'\n', &block[start..]).map_or(block.len(), |nl| start + nl + 1);
        let line = &block[start..end];
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() {
            break;
        }
        if content.starts_with(b"--") {
            // A boundary line: MIME structure the parser mis-split, not the sender's text.
            return None;
        }
        let field = is_field_start(content);
        match candidate {
            Some(_) if field => return None,
            None if !field && !matches!(content[0], b' ' | b'\t') => candidate = Some(start),
            _ => {}
        }
        start = end;
    }
    candidate
}

/// `boundary` parameters with whitespace or a fold around their `=` made readable.
///
/// RFC 2045 allows CFWS between a parameter's tokens, so `boundary=\r\n "x"` is valid, but
/// mail-parser then finds no boundary and shows the whole multipart as text. The whitespace
/// is moved before the parameter name (`\r\n boundary="x"`), which is still a valid fold
/// and keeps every other byte where it was. Only inside `Content-Type` fields. Each fixed
/// entry of `parameters` (the message's [`boundary_parameters`]) is moved to where the
/// parameter now is.
fn unfold_boundary_parameters(raw: &[u8], parameters: &mut [(usize, usize)]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for parameter in parameters.iter_mut() {
        let (start, j) = *parameter;
        let before_eq = j - start - BOUNDARY.len();
        let after_eq = raw[j + 1..].iter().take_while(|&&b| is_blank(b)).count();
        let end = j + 1 + after_eq;
        if before_eq + after_eq == 0 || !in_content_type(raw, start) {
            continue;
        }
        let gap = [&raw[start + BOUNDARY.len()..j], &raw[j + 1..end]].concat();
        // Each line break must be a fold (followed by a blank), or the field would end there.
        let folds_ok = gap
            .iter()
            .enumerate()
            .all(|(k, &b)| b != b'\n' || matches!(gap.get(k + 1), Some(b' ' | b'\t')));
        if !folds_ok || gap.last().is_some_and(|&b| b == b'\r' || b == b'\n') {
            continue;
        }
        let buf = out.get_or_insert_with(|| raw.to_vec());
        let mut moved = gap;
        moved.extend_from_slice(&raw[start..start + BOUNDARY.len()]);
        moved.push(b'=');
        buf[start..end].copy_from_slice(&moved);
        *parameter = (end - 1 - BOUNDARY.len(), end - 1);
    }
    out
}

/// Whether `at` lies in a `Content-Type` field: the line holding it, or the nearest line
/// before it that is not a continuation, starts that field ([`is_field`]).
fn in_content_type(raw: &[u8], at: usize) -> bool {
    let mut line_start = memchr::memrchr(b'\n', &raw[..at]).map_or(0, |p| p + 1);
    loop {
        let line = &raw[line_start..];
        match line.first() {
            Some(b' ' | b'\t') if line_start > 0 => {
                line_start = memchr::memrchr(b'\n', &raw[..line_start - 1]).map_or(0, |p| p + 1);
            }
            _ => {
                let end = memchr::memchr(b'\n', line).unwrap_or(line.len());
                return is_field(&line[..end], b"content-type");
            }
        }
    }
}

/// Drops lines of only spaces or tabs before the first field.
///
/// Only an empty line ends the header section (RFC 5322 section 2.1), so such a line cannot
/// be the separator; mail-parser would take it as one and show the headers as body.
fn skip_leading_blank_lines(mut raw: &[u8]) -> &[u8] {
    while let Some(nl) = memchr::memchr(b'\n', raw) {
        let line = raw[..nl].strip_suffix(b"\r").unwrap_or(&raw[..nl]);
        let blank = !line.is_empty() && line.iter().all(|&b| b == b' ' || b == b'\t');
        if !blank || !has_header_section(&raw[nl + 1..]) {
            break;
        }
        raw = &raw[nl + 1..];
    }
    raw
}

/// What one walk over the header section's lines finds: they are kilobytes of `Received`
/// and signatures in most mail, so all three questions are answered together.
struct HeaderLines {
    /// Some `Content-Type` field names a multipart or message type: only then does
    /// mail-parser look for boundaries, and header blocks, in the body.
    structured: bool,
    /// Some line of only spaces or tabs ends with a line break ([`fold_blank_header_lines`]).
    blank_line: bool,
    /// Where the body starts when the sender left out the empty line after the headers.
    ///
    /// That is a line in the header section that is neither a field nor a continuation,
    /// after which no further field comes before the end of the section or a MIME boundary
    /// line. Mail clients (and CPython) show such a line and the rest as the body;
    /// mail-parser would take the prose as field names and show no body. A stray line
    /// followed by further fields is a broken field instead, and the header section goes on.
    body_start: Option<usize>,
    /// Where the walk stopped: the empty line after the section, or the end of the input.
    section_end: usize,
    /// The `Content-Type` fields.
    content_type: FieldSpan,
    /// The `Content-Transfer-Encoding` fields.
    transfer_encoding: FieldSpan,
    /// The fields anything reads, gathered on the same walk.
    fields: FieldLines,
}

/// Walks the header section's lines once for [`HeaderLines`].
fn header_lines(raw: &[u8]) -> HeaderLines {
    let mut blank_line = false;
    let mut structured = false;
    // The MIME field the current line belongs to, if it is one of the two read here.
    let mut current = None;
    let mut content_type = FieldSpan::default();
    let mut transfer_encoding = FieldSpan::default();
    let mut seen_field = false;
    let mut candidate = None;
    // Whether a later line can still change `candidate`.
    let mut deciding = true;
    let mut fields = FieldLines::default();
    let mut start = 0;
    while start < raw.len() {
        let (end, terminated) = match memchr::memchr(b'\n', &raw[start..]) {
            Some(nl) => (start + nl + 1, true),
            None => (raw.len(), false),
        };
        let line = &raw[start..end];
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() {
            break;
        }
        let continuation = matches!(content[0], b' ' | b'\t');
        if continuation && terminated && content.iter().all(|&b| b == b' ' || b == b'\t') {
            blank_line = true;
        }
        let mut value = content;
        if !continuation {
            current = None;
            if matches!(content[0], b'c' | b'C') {
                let colon = memchr::memchr(b':', content).unwrap_or(content.len());
                let name = &content[..colon];
                if is_name(name, b"content-type") {
                    current = Some(MimeField::ContentType);
                    content_type.opens(start);
                } else if is_name(name, b"content-transfer-encoding") {
                    current = Some(MimeField::TransferEncoding);
                    transfer_encoding.opens(start);
                }
                value = &content[colon..];
            }
        }
        match current {
            Some(MimeField::ContentType) => {
                content_type.end = end;
                structured |= find_ignore_case(value, b"multipart").is_some()
                    || find_ignore_case(value, b"message/").is_some();
            }
            Some(MimeField::TransferEncoding) => transfer_encoding.end = end,
            None => {}
        }
        if deciding {
            match candidate {
                None if is_field_start(content) => seen_field = true,
                None if seen_field && !continuation => candidate = Some(start),
                Some(_) if content.starts_with(b"--") => deciding = false,
                Some(_) if is_field_start(content) => {
                    candidate = None;
                    deciding = false;
                }
                _ => {}
            }
        }
        fields.line(start, content);
        start = end;
    }
    HeaderLines {
        structured,
        blank_line,
        body_start: candidate,
        section_end: start,
        content_type,
        transfer_encoding,
        fields,
    }
}

/// The two MIME fields whose lines [`header_lines`] notes.
#[derive(Debug, Clone, Copy)]
enum MimeField {
    ContentType,
    TransferEncoding,
}

/// How many fields of one name a header section has, and where the first one's lines are.
#[derive(Debug, Default)]
struct FieldSpan {
    count: usize,
    start: usize,
    end: usize,
}

impl FieldSpan {
    /// A field of this name starts at `start`.
    fn opens(&mut self, start: usize) {
        self.count += 1;
        if self.count == 1 {
            self.start = start;
        }
    }

    /// The lines of the one field of this name, or `None` when there are none or several.
    fn only<'a>(&self, raw: &'a [u8]) -> Option<&'a [u8]> {
        (self.count == 1).then(|| &raw[self.start..self.end.max(self.start)])
    }
}

/// Whether `line` starts a field called `want` ([`is_name`]).
fn is_field(line: &[u8], want: &[u8]) -> bool {
    memchr::memchr(b':', line).is_some_and(|colon| is_name(&line[..colon], want))
}

/// Whether a field name is `want` as mail-parser reads names: in any case, and with blanks
/// left out.
fn is_name(name: &[u8], want: &[u8]) -> bool {
    let mut name = name.iter().filter(|b| !b.is_ascii_whitespace());
    want.iter()
        .all(|c| name.next().is_some_and(|b| b.eq_ignore_ascii_case(c)))
        && name.next().is_none()
}

/// Where the `charset` parameter of a single-part message's `Content-Type` starts, when
/// mail-parser reading the body without it gives the same text.
///
/// mail-parser decodes text in its declared charset one character at a time, even when every
/// byte is ASCII: most text in real mail is ASCII declared `us-ascii` or `iso-8859-1`, and
/// that decoding was about a quarter of `parse_message`'s instructions. Without a charset it
/// reads the text as UTF-8, which is the same text when the charset maps ASCII to itself
/// ([`fields::keeps_ascii`]) and the transfer-decoded body is ASCII: a body of ASCII bytes,
/// not base64, and quoted-printable without an escape of a byte past 127.
fn hideable_charset(raw: &[u8], lines: &HeaderLines) -> Option<usize> {
    let field = lines.content_type.only(raw)?;
    let encoding = match lines.transfer_encoding.count {
        0 => Some(b"7bit".as_slice()),
        _ => lines.transfer_encoding.only(raw).map(|f| {
            let colon = memchr::memchr(b':', f).map_or(f.len(), |c| c + 1);
            f[colon..].trim_ascii()
        }),
    }?;
    let quoted_printable = encoding.eq_ignore_ascii_case(b"quoted-printable");
    if !quoted_printable
        && ![&b"7bit"[..], b"8bit", b"binary"]
            .iter()
            .any(|e| encoding.eq_ignore_ascii_case(e))
    {
        return None;
    }
    let body = &raw[lines.body_start.unwrap_or(lines.section_end).min(raw.len())..];
    if !body.is_ascii()
        || quoted_printable
            && memchr::memchr_iter(b'=', body).any(|at| {
                body.get(at + 1)
                    .is_some_and(|b| matches!(b, b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F'))
            })
    {
        return None;
    }
    let name = find_ignore_case(field, b"charset")?;
    // One parameter of that name, so the one hidden is the one mail-parser would read.
    if find_ignore_case(&field[name + 1..], b"charset").is_some() {
        return None;
    }
    let before = field[..name].trim_ascii_end();
    let after = field[name + b"charset".len()..].trim_ascii_start();
    let value = after.strip_prefix(b"=")?.trim_ascii_start();
    let quoted = value.strip_prefix(b"\"");
    let value = quoted.unwrap_or(value);
    let label_len = value
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        .count();
    let (label, rest) = value.split_at(label_len);
    let closed = match quoted {
        Some(_) => rest.first() == Some(&b'"'),
        None => rest
            .first()
            .is_none_or(|&b| b == b';' || b.is_ascii_whitespace()),
    };
    (before.ends_with(b";") && closed && fields::keeps_ascii(label))
        .then_some(lines.content_type.start + name)
}

/// One line: where it starts, where its content ends (before `\r\n` or `\n`), where it ends.
struct Line {
    content_end: usize,
    end: usize,
    blank: bool,
    continues_headers: bool,
}

/// The header section with its whitespace-only lines made unambiguous, or `None` when it has none.
///
/// Such a line is folded into the line before when what follows still reads as the header
/// section (a field, a continuation or the empty line). When prose follows, the sender meant
/// it as the separator, as RFC 5322 readers such as CPython's also conclude: it becomes the
/// empty line, so the body starts where it did.
fn fold_blank_header_lines(raw: &[u8]) -> Option<Vec<u8>> {
    let mut lines = Vec::new();
    let mut start = 0;
    while let Some(nl) = raw
        .get(start..)
        .and_then(|rest| memchr::memchr(b'\n', rest))
    {
        let end = start + nl + 1;
        let content_end = if nl > 0 && raw[start + nl - 1] == b'\r' {
            start + nl - 1
        } else {
            start + nl
        };
        let content = &raw[start..content_end];
        if content.is_empty() {
            break;
        }
        let blank = content.iter().all(|&b| b == b' ' || b == b'\t');
        lines.push(Line {
            content_end,
            end,
            blank,
            continues_headers: blank
                || content[0] == b' '
                || content[0] == b'\t'
                || is_field_start(content),
        });
        start = end;
    }
    // Whether the first non-blank line after each line still belongs to the headers; the
    // empty line (or the end) does. Computed backwards so the scan stays linear.
    let mut next_is_header = vec![true; lines.len()];
    let mut following = true;
    for (i, line) in lines.iter().enumerate().rev() {
        next_is_header[i] = following;
        if !line.blank {
            following = line.continues_headers;
        }
    }
    let mut out: Option<Vec<u8>> = None;
    for i in 1..lines.len() {
        if !lines[i].blank {
            continue;
        }
        let (previous, line) = (&lines[i - 1], &lines[i]);
        let buf = out.get_or_insert_with(|| raw.to_vec());
        if next_is_header[i] {
            buf[previous.content_end..previous.end].fill(b' ');
        } else {
            // `<previous break><blanks><break>` becomes `<blanks><previous break><break>`.
            let region = &raw[previous.content_end..line.end];
            let blanks = line.content_end - previous.end;
            let mut moved = vec![b' '; blanks];
            moved.extend_from_slice(&region[..previous.end - previous.content_end]);
            moved.extend_from_slice(&raw[line.content_end..line.end]);
            buf[previous.content_end..line.end].copy_from_slice(&moved);
            break;
        }
    }
    out
}

/// Whether the input starts with something that looks like a header section.
///
/// mail-parser accepts almost anything as a header (a line without a colon becomes a field
/// name), so we check ourselves: some line before the first blank line must be `name:`.
pub(crate) fn has_header_section(raw: &[u8]) -> bool {
    raw.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
        .take(MAX_HEADER_LINES_CHECKED)
        .any(is_field_start)
}

/// RFC 5322 `field-name ":"`, with the obsolete whitespace before the colon allowed.
///
/// Read from the start and stopped at the first byte a name cannot hold: prose and folded
/// lines are told apart after a word, not after a scan of the whole line for a colon.
fn is_field_start(line: &[u8]) -> bool {
    let name = line
        .iter()
        .take_while(|&&b| b != b':' && (33..=126).contains(&b))
        .count();
    name > 0 && line[name..].trim_ascii_start().first() == Some(&b':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessagePart, PartType};

    /// The text mail-parser gives part 0, and the charset the model reads for it.
    fn text_and_charset(bytes: &[u8]) -> (String, Option<String>) {
        let message = crate::PARSER.parse(bytes).expect("a message");
        let part: &MessagePart<'_> = &message.parts[0];
        let text = match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.to_string(),
            other => format!("{other:?}"),
        };
        (text, fields::charset(part).map(str::to_string))
    }

    /// Over the corpus, every message whose charset the preparation hides gets from
    /// mail-parser the text and charset it gets with the parameter's name put back.
    #[test]
    fn hidden_charsets_change_no_text_in_the_corpus() {
        let dir = std::env::var_os("PALISADE_CORPUS").map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
            std::path::PathBuf::from,
        );
        let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv"))
            .expect("the corpus (set PALISADE_CORPUS to its directory)");
        let alias = fields::HIDDEN_CHARSET.as_bytes();
        let (mut messages, mut hidden) = (0, 0);
        for line in manifest.lines().skip(1) {
            let Some(path) = line.split('\t').next() else {
                continue;
            };
            let raw = std::fs::read(dir.join(path)).expect("a corpus message");
            messages += 1;
            let prepared = prepare(&raw).bytes.into_owned();
            let mut shown = prepared.clone();
            for at in memchr::memmem::find_iter(&prepared, alias) {
                shown[at..at + alias.len()].copy_from_slice(b"charset");
            }
            if shown != prepared {
                hidden += 1;
                assert_eq!(
                    text_and_charset(&prepared),
                    text_and_charset(&shown),
                    "{path}"
                );
            }
        }
        // 2,163 of 4,280 on 2026-12-05: most mail is single-part ASCII.
        assert!(messages > 4_000 && hidden > 1_500, "{hidden} of {messages}");
    }

    /// Hiding the charset from mail-parser never changes the text it gives, nor the charset
    /// the model reads; and it is hidden where the text is ASCII in an ASCII-keeping charset.
    #[test]
    fn a_hidden_charset_leaves_the_text_as_mail_parser_decodes_it() {
        let types = [
            "text/plain; charset=us-ascii",
            "text/plain; charset=\"ISO-8859-1\"",
            "text/html;\r\n\tCharSet = windows-1252; format=flowed",
            "text/plain; charset=utf-16",
            "text/plain; charset=koi8-r",
            "text/plain; charset=us-ascii; x-charset=latin1",
            "text/plain; name=\"charset=latin1\"",
            "text/plain; charset=us-ascii(comment)",
        ];
        let encodings = [
            None,
            Some("7bit"),
            Some(" 8BIT "),
            Some("quoted-printable"),
            Some("base64"),
            Some("x-uuencode"),
        ];
        let bodies: [&[u8]; 6] = [
            b"plain ascii\r\nsecond line\r\n",
            b"caf\xe9 in latin1\r\n",
            b"caf=E9 escaped\r\n",
            b"caf=e9 lower, a=3D b, soft=\r\nbreak\r\n",
            b"Y2Fm6Q==\r\n",
            b"aGVsbG8=\r\n",
        ];
        let mut hidden = 0;
        for ct in types {
            for encoding in encodings {
                for body in bodies {
                    let mut raw = format!("Subject: s\r\nContent-Type: {ct}\r\n").into_bytes();
                    if let Some(e) = encoding {
                        raw.extend_from_slice(
                            format!("Content-Transfer-Encoding:{e}\r\n").as_bytes(),
                        );
                    }
                    raw.extend_from_slice(b"\r\n");
                    raw.extend_from_slice(body);
                    let prepared = prepare(&raw).bytes;
                    if prepared[..] != raw[..] {
                        hidden += 1;
                        assert!(
                            body.is_ascii() && encoding != Some("base64"),
                            "{}",
                            String::from_utf8_lossy(&raw)
                        );
                    }
                    assert_eq!(
                        text_and_charset(&prepared),
                        text_and_charset(&raw),
                        "{}",
                        String::from_utf8_lossy(&raw)
                    );
                }
            }
        }
        // The three types with one ASCII-keeping charset, each with its five ASCII bodies
        // under no encoding, 7bit, 8bit or quoted-printable, but for the two bodies with an
        // escape past 127 read as quoted-printable.
        assert_eq!(hidden, 3 * (5 * 4 - 2));
    }

    #[test]
    fn case_blind_search_finds_the_first_match_anywhere() {
        assert_eq!(
            find_ignore_case(b"xx BoUnDaRy=1 boundary", b"boundary"),
            Some(3)
        );
        assert_eq!(find_ignore_case(b"bounda", b"boundary"), None);
        assert_eq!(find_ignore_case(b"", b"boundary"), None);
        assert_eq!(find_ignore_case(b"bbboundary", b"boundary"), Some(2));
        assert_eq!(find_ignore_case(b"ab", b""), None);
    }

    #[test]
    fn unfolding_moves_the_parameters_it_fixes_to_where_a_new_scan_finds_them() {
        let raw: &[u8] = b"Content-Type: multipart/mixed; boundary=\r\n \"a\"; x=1\r\n\
            Content-Type: multipart/alternative;\r\n\tBOUNDARY = b\r\n\
            X-Note: boundary = not in a content type\r\n\r\n--a\r\n";
        let mut parameters: Vec<_> = boundary_parameters(raw).collect();
        let fixed = unfold_boundary_parameters(raw, &mut parameters).expect("two are fixed");
        assert_eq!(fixed.len(), raw.len());
        assert_eq!(parameters, boundary_parameters(&fixed).collect::<Vec<_>>());
        assert_eq!(
            declared_boundaries(&fixed, &parameters),
            [b"a".to_vec(), b"b".to_vec()]
        );
    }

    #[test]
    fn boundary_parameters_are_found_from_their_equals_sign() {
        let raw = b"a=1; BoUnDaRy=x\r\n boundary \r\n\t= \"y\" xboundary=z boundary: q=";
        let found: Vec<_> = boundary_parameters(raw).collect();
        assert_eq!(found, [(5, 13), (18, 30), (37, 45)]);
        assert_eq!(boundary_parameters(b"=boundary").count(), 0);
        assert_eq!(boundary_parameters(b"ndary=").count(), 0);
        assert_eq!(
            declared_boundaries(raw, &found),
            [b"x".to_vec(), b"z".to_vec()]
        );
    }

    #[test]
    fn strips_bom_and_mbox_line() {
        assert_eq!(strip_envelope_noise(b"\xEF\xBB\xBFFrom: a"), b"From: a");
        assert_eq!(
            strip_envelope_noise(b"From a@b  Fri Feb 22 17:06:23 2008\nFrom: a\n"),
            b"From: a\n"
        );
        assert_eq!(strip_envelope_noise(b"From : a\n"), b"From : a\n");
        assert_eq!(strip_envelope_noise(b"From nowhere"), b"From nowhere");
    }

    #[test]
    fn field_starts_read_as_the_colon_first_definition_reads_them() {
        // RFC 5322's definition, as it was written before reading stopped early.
        fn by_first_colon(line: &[u8]) -> bool {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return false;
            };
            let name = line[..colon].trim_ascii_end();
            !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b))
        }
        let alphabet = b"a:Z \t\r\n\x0c-\x7f\x80";
        // Every line of up to five bytes over an alphabet holding each kind of byte.
        let mut line = Vec::new();
        let mut count = 0u32;
        for len in 0..=5u32 {
            for mut n in 0..alphabet.len().pow(len) {
                line.clear();
                for _ in 0..len {
                    line.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                assert_eq!(is_field_start(&line), by_first_colon(&line), "{line:?}");
                count += 1;
            }
        }
        assert!(count > 100_000);
    }

    #[test]
    fn one_walk_over_the_header_lines_answers_as_the_two_walks_did() {
        // The two walks as they were written before they were joined.
        fn has_blank_header_line(raw: &[u8]) -> bool {
            let mut rest = raw;
            while let Some(nl) = memchr::memchr(b'\n', rest) {
                let line = &rest[..nl];
                let content = line.strip_suffix(b"\r").unwrap_or(line);
                match content.first() {
                    None => return false,
                    Some(b' ' | b'\t') if content.iter().all(|&b| b == b' ' || b == b'\t') => {
                        return true;
                    }
                    _ => {}
                }
                rest = &rest[nl + 1..];
            }
            false
        }
        fn body_start_without_blank_line(raw: &[u8]) -> Option<usize> {
            let (mut start, mut seen_field, mut candidate) = (0, false, None);
            while start < raw.len() {
                let end =
                    memchr::memchr(b'\n', &raw[start..]).map_or(raw.len(), |nl| start + nl + 1);
                let line = &raw[start..end];
                let content = line.strip_suffix(b"\n").unwrap_or(line);
                let content = content.strip_suffix(b"\r").unwrap_or(content);
                if content.is_empty() {
                    break;
                }
                let continuation = matches!(content[0], b' ' | b'\t');
                match candidate {
                    None if is_field_start(content) => seen_field = true,
                    None if seen_field && !continuation => candidate = Some(start),
                    Some(_) if content.starts_with(b"--") => break,
                    Some(_) if is_field_start(content) => return None,
                    _ => {}
                }
                start = end;
            }
            candidate
        }
        // Every kind of line either walk tells apart, with both line breaks and none.
        let kinds: [&[u8]; 8] = [
            b"A: b", b" folded", b"  ", b"\t", b"prose", b"--x", b"", b"B : c",
        ];
        let breaks: [&[u8]; 3] = [b"\n", b"\r\n", b""];
        let choices = kinds.len() * breaks.len();
        let mut raw = Vec::new();
        let mut count = 0u32;
        for len in 0..=4u32 {
            for mut n in 0..choices.pow(len) {
                raw.clear();
                for _ in 0..len {
                    raw.extend_from_slice(kinds[n % kinds.len()]);
                    raw.extend_from_slice(breaks[(n / kinds.len()) % breaks.len()]);
                    n /= choices;
                }
                let walked = header_lines(&raw);
                assert_eq!(walked.blank_line, has_blank_header_line(&raw), "{raw:?}");
                assert_eq!(
                    walked.body_start,
                    body_start_without_blank_line(&raw),
                    "{raw:?}"
                );
                count += 1;
            }
        }
        assert!(count > 300_000);
    }

    #[test]
    fn header_section_detection() {
        assert!(has_header_section(b"Subject: x\n\nbody"));
        assert!(has_header_section(b"garbage line\nSubject : x\r\n\r\nbody"));
        assert!(!has_header_section(b"// Not an RFC-822 Document"));
        assert!(!has_header_section(b"\nSubject: x"));
        assert!(!has_header_section(b"no header here\n\nKey: value"));
        assert!(!has_header_section(b": empty name"));
    }
}
