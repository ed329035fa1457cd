//! End-to-end cryptography: PGP/MIME, inline PGP and S/MIME.

use crate::fields;
use mail_parser::{HeaderName, Message, MessagePart};
use palisade_model::CryptoKind;

use crate::attachments::content_type;
use crate::privacy::raw_value;

/// End-to-end cryptography visible in the structure or, as inline armor, in the bodies.
pub(crate) fn crypto(
    raw: &[u8],
    message: &Message<'_>,
    visible: &[u32],
    bodies: &[&str],
) -> Vec<CryptoKind> {
    let mut kinds = Vec::new();
    let mut add = |kind| {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    };
    for part in visible
        .iter()
        .filter_map(|&id| message.parts.get(id as usize))
    {
        if let Some(kind) = part_crypto(raw, message, part) {
            add(kind);
        }
    }
    if bodies.iter().any(|b| armored(b)) {
        add(CryptoKind::PgpInline);
    }
    kinds
}

/// Whether `body` holds an inline PGP message or signed message. One pass over the body for
/// the prefix both armor lines share: bodies are the largest thing a message has.
fn armored(body: &str) -> bool {
    const PREFIX: &[u8] = b"-----BEGIN PGP ";
    let body = body.as_bytes();
    memchr::memmem::find_iter(body, PREFIX).any(|at| {
        let rest = &body[at + PREFIX.len()..];
        rest.starts_with(b"MESSAGE-----") || rest.starts_with(b"SIGNED MESSAGE-----")
    })
}

fn part_crypto(raw: &[u8], message: &Message<'_>, part: &MessagePart<'_>) -> Option<CryptoKind> {
    let mime = content_type(part);
    let attr = |name: &str| {
        fields::content_type(part)
            .and_then(|ct| ct.attribute(name))
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    // The raw header as a second opinion: a parameter folded right after `=` defeats
    // mail-parser, and the protocol name is all we need from it. Read only for the two
    // multipart types that have one: every part of every message comes through here.
    let protocol = || {
        attr("protocol")
            + " "
            + &part
                .headers
                .iter()
                .find(|h| fields::same_name(&h.name, &HeaderName::ContentType))
                .map(|h| raw_value(raw, h).to_ascii_lowercase())
                .unwrap_or_default()
    };
    let children = || {
        part.sub_parts()
            .unwrap_or_default()
            .iter()
            .filter_map(|&id| message.parts.get(id as usize))
            .map(content_type)
    };
    match mime.as_str() {
        "multipart/signed" => {
            // Some signers omit `protocol`; the signature part's own type then tells.
            let has_child = |t: &[&str]| children().any(|c| t.contains(&c.as_str()));
            let protocol = protocol();
            if protocol.contains("pgp-signature") || has_child(&["application/pgp-signature"]) {
                Some(CryptoKind::PgpSigned)
            } else if protocol.contains("pkcs7-signature")
                || has_child(&[
                    "application/pkcs7-signature",
                    "application/x-pkcs7-signature",
                ])
            {
                Some(CryptoKind::SmimeSigned)
            } else {
                None
            }
        }
        "multipart/encrypted"
            if protocol().contains("pgp-encrypted")
                || children().any(|c| c == "application/pgp-encrypted") =>
        {
            Some(CryptoKind::PgpEncrypted)
        }
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => {
            match attr("smime-type").as_str() {
                "signed-data" => Some(CryptoKind::SmimeSigned),
                "enveloped-data" | "authenveloped-data" => Some(CryptoKind::SmimeEncrypted),
                // Old clients omit smime-type; a bare .p7m is enveloped data, .p7c only certificates.
                "" if !fields::attachment_name(part)
                    .is_some_and(|n| n.to_ascii_lowercase().ends_with(".p7c")) =>
                {
                    Some(CryptoKind::SmimeEncrypted)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::armored;

    #[test]
    fn armor_is_an_inline_message_or_signed_message_anywhere_in_a_body() {
        assert!(armored("hi\n-----BEGIN PGP MESSAGE-----\nhQ=="));
        assert!(armored(
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n-----BEGIN PGP SIGNED MESSAGE-----"
        ));
        assert!(!armored("-----BEGIN PGP PUBLIC KEY BLOCK-----\nmQ=="));
        assert!(!armored("-----BEGIN PGP SIGNATURE-----\n"));
        assert!(!armored("-----BEGIN PGP MESSAGE----"));
        assert!(!armored(""));
    }
}
