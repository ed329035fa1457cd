//! What comes before the first header field: artifacts to drop and the header-section check.

/// How many leading lines may be garbage before we conclude there are no headers at all.
const MAX_HEADER_LINES_CHECKED: usize = 50;

/// Drops a UTF-8 byte-order mark and an mbox `From ` envelope line: neither belongs to the
/// message, and both would otherwise be read as a bogus first header field.
pub(crate) fn strip_envelope_noise(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    match raw.strip_prefix(b"From ") {
        // `From : x` is the obsolete header syntax, not an envelope line.
        Some(rest) if !rest.trim_ascii_start().starts_with(b":") => {
            match rest.iter().position(|&b| b == b'\n') {
                Some(end) => &rest[end + 1..],
                None => raw,
            }
        }
        _ => raw,
    }
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
fn is_field_start(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = line[..colon].trim_ascii_end();
    !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn header_section_detection() {
        assert!(has_header_section(b"Subject: x\n\nbody"));
        assert!(has_header_section(b"garbage line\nSubject : x\r\n\r\nbody"));
        assert!(!has_header_section(b"// Not an RFC-822 Document"));
        assert!(!has_header_section(b"\nSubject: x"));
        assert!(!has_header_section(b"no header here\n\nKey: value"));
        assert!(!has_header_section(b": empty name"));
    }
}
