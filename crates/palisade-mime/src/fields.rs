//! A part's MIME fields, found by their name's variant.
//!
//! mail-parser's `MimeHeaders` lookups compare names through a function call per field, and
//! the model asks each part for its type, disposition and encoding from several places:
//! those lookups were about 4% of `parse_message`. The answers are mail-parser's: the value
//! of the last field of that name.

use mail_parser::{ContentType, HeaderName, HeaderValue, MessagePart};

/// Whether two field names are the same, as `HeaderName`'s `==` says: names mail-parser
/// knows by their variant (`==` compares their ids through a call), others by their text.
pub(crate) fn same_name(a: &HeaderName<'_>, b: &HeaderName<'_>) -> bool {
    match (a, b) {
        (HeaderName::Other(_), _) | (_, HeaderName::Other(_)) => a == b,
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// The value of the last field called `name`.
fn last<'a, 'x>(part: &'a MessagePart<'x>, name: &HeaderName<'_>) -> Option<&'a HeaderValue<'x>> {
    part.headers
        .iter()
        .rev()
        .find(|h| same_name(&h.name, name))
        .map(|h| &h.value)
}

/// `Content-Type`, as `MimeHeaders::content_type` gives it.
pub(crate) fn content_type<'a, 'x>(part: &'a MessagePart<'x>) -> Option<&'a ContentType<'x>> {
    last(part, &HeaderName::ContentType).and_then(HeaderValue::as_content_type)
}

/// `Content-Disposition`, as `MimeHeaders::content_disposition` gives it.
pub(crate) fn content_disposition<'a, 'x>(
    part: &'a MessagePart<'x>,
) -> Option<&'a ContentType<'x>> {
    last(part, &HeaderName::ContentDisposition).and_then(HeaderValue::as_content_type)
}

/// `Content-Transfer-Encoding`, as `MimeHeaders::content_transfer_encoding` gives it.
pub(crate) fn transfer_encoding<'a>(part: &'a MessagePart<'_>) -> Option<&'a str> {
    last(part, &HeaderName::ContentTransferEncoding).and_then(HeaderValue::as_text)
}

/// The file name mail-parser reads, as `MimeHeaders::attachment_name` gives it.
pub(crate) fn attachment_name<'a>(part: &'a MessagePart<'_>) -> Option<&'a str> {
    content_disposition(part)
        .and_then(|cd| cd.attribute("filename"))
        .or_else(|| content_type(part).and_then(|ct| ct.attribute("name")))
}

/// What the preparation renames a `charset` parameter to where mail-parser need not decode
/// the text ([`crate::preamble::prepare`]). As long as `charset`, so every offset holds, and
/// no parameter name in real mail.
pub(crate) const HIDDEN_CHARSET: &str = "charse%";

/// The charset a part declares, also where the preparation hid it from mail-parser.
pub(crate) fn charset<'a>(part: &'a MessagePart<'_>) -> Option<&'a str> {
    content_type(part).and_then(|ct| {
        ct.attribute("charset")
            .or_else(|| ct.attribute(HIDDEN_CHARSET))
    })
}

/// Charset labels whose decoder maps every ASCII byte to itself (a test checks each).
const ASCII_KEEPING_CHARSETS: [&str; 6] = [
    "us-ascii",
    "ascii",
    "iso-8859-1",
    "latin1",
    "windows-1252",
    "cp1252",
];

/// Whether text in the charset `label` reads as its bytes when they are all ASCII.
pub(crate) fn keeps_ascii(label: &[u8]) -> bool {
    ASCII_KEEPING_CHARSETS
        .iter()
        .any(|c| c.as_bytes().eq_ignore_ascii_case(label))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::decoders::charsets::map::charset_decoder;
    use mail_parser::{MessageParser, MimeHeaders};

    /// Reading ASCII text in these charsets as UTF-8 holds only while mail-parser decodes ASCII as itself.
    #[test]
    fn ascii_keeping_charsets_decode_ascii_as_itself() {
        let ascii: Vec<u8> = (0..=127).collect();
        for label in ASCII_KEEPING_CHARSETS {
            let decode = charset_decoder(label.as_bytes());
            assert!(
                decode.is_some(),
                "{label}: mail-parser knows no such charset"
            );
            assert_eq!(
                decode.map(|d| d(&ascii)).as_deref().map(str::as_bytes),
                Some(&ascii[..]),
                "{label}"
            );
            assert!(keeps_ascii(label.to_uppercase().as_bytes()));
        }
        assert!(!keeps_ascii(b"utf-7"));
    }

    #[test]
    fn names_compare_as_mail_parser_compares_them() {
        let names = [
            HeaderName::ContentType,
            HeaderName::ContentDisposition,
            HeaderName::From,
            HeaderName::Other("X-A".into()),
            HeaderName::Other("x-a".into()),
            HeaderName::Other("X-B".into()),
        ];
        for a in &names {
            for b in &names {
                assert_eq!(same_name(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn answers_as_mail_parser_does() {
        let raw = concat!(
            "Content-Type: multipart/mixed; boundary=b\n\n",
            "--b\nContent-Type: text/plain; charset=us-ascii\n",
            "Content-Transfer-Encoding: 7bit\nX-Other: x\n\nhi\n",
            "--b\nContent-Type: application/pdf; name=a.pdf\n",
            "Content-Disposition: attachment\nContent-Type: application/x-later; name=b.pdf\n\n%PDF\n",
            "--b\ncontent-disposition: inline; filename=c.txt\n",
            "CONTENT-TRANSFER-ENCODING: quoted-printable\n\nc\n",
            "--b\nX-Content-Type: text/html\n\nnone\n",
            "--b--\n",
        );
        let message = MessageParser::new()
            .with_mime_headers()
            .default_header_ignore()
            .parse(raw.as_bytes())
            .expect("parsed");
        assert!(message.parts.len() >= 5);
        for part in &message.parts {
            assert_eq!(content_type(part), part.content_type());
            assert_eq!(content_disposition(part), part.content_disposition());
            assert_eq!(transfer_encoding(part), part.content_transfer_encoding());
            assert_eq!(attachment_name(part), part.attachment_name());
        }
    }
}
