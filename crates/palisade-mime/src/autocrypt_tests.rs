//! Autocrypt headers and the authenticated sender, on hand-written mails.

use super::*;
use palisade_model::PreferEncrypt;

const BOB_KEY: &str = include_str!("../../palisade-model/testdata/bob-example-net.key.b64");
const BOB_FINGERPRINT: &str = "A08C283EDF73A42648815C1A7E2EC29FB033B66F";

/// Our MTA's hop and results: DKIM passed for `signer`, DMARC as given.
fn ours(signer: &str, dmarc: &str) -> String {
    format!(
        "Received: from out.example.net (out.example.net [203.0.113.7])\r\n\
         \tby mx.example.test (Postfix) with ESMTPS id 1; Tue, 1 Dec 2026 09:00:00 +0000\r\n\
         Authentication-Results: mx.example.test; dkim=pass header.d={signer} header.s=s1;\r\n\
         \tspf=pass smtp.mailfrom=example.net; dmarc={dmarc} header.from=example.net\r\n"
    )
}

/// An `Autocrypt:` header for `addr`, its key folded the way mail agents fold it.
fn autocrypt(addr: &str, key: &str) -> String {
    let lines: Vec<&str> = key
        .trim()
        .as_bytes()
        .chunks(72)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "Autocrypt: addr={addr}; prefer-encrypt=mutual; keydata=\r\n {}\r\n",
        lines.join("\r\n ")
    )
}

fn mail(top: &str, autocrypt_headers: &[String], from: &str) -> MessageContent {
    let raw = format!(
        "{top}{}From: Bob <{from}>\r\nTo: alice@example.test\r\nSubject: keys\r\n\
         Date: Tue, 1 Dec 2026 08:59:00 +0000\r\n\r\nhello\r\n",
        autocrypt_headers.concat()
    );
    let trust = TrustBoundary::parse("mx.example.test", &["mx.example.test"]).expect("trust");
    parse_message(
        raw.as_bytes(),
        &ParseLimits {
            trust,
            ..ParseLimits::default()
        },
    )
}

#[test]
fn an_authenticated_sender_s_autocrypt_header_is_read_with_its_fingerprint() {
    let m = mail(
        &ours("example.net", "pass"),
        &[autocrypt("bob@example.net", BOB_KEY)],
        "Bob@Example.net",
    );
    assert_eq!(
        m.privacy.authenticated_sender.as_deref(),
        Some("bob@example.net")
    );
    assert!(m.privacy.autocrypt);
    let header = m.autocrypt.expect("header kept");
    assert_eq!(header.key.fingerprint, BOB_FINGERPRINT);
    assert_eq!(header.prefer_encrypt, PreferEncrypt::Mutual);
    assert_eq!(header.key.keydata, BOB_KEY.trim());
}

#[test]
fn a_header_for_another_address_is_ignored() {
    let m = mail(
        &ours("example.net", "pass"),
        &[autocrypt("eve@example.net", BOB_KEY)],
        "bob@example.net",
    );
    assert!(m.privacy.autocrypt, "present, though not used");
    assert_eq!(m.autocrypt, None);
}

#[test]
fn two_headers_void_both() {
    let m = mail(
        &ours("example.net", "pass"),
        &[
            autocrypt("bob@example.net", BOB_KEY),
            autocrypt("bob@example.net", BOB_KEY),
        ],
        "bob@example.net",
    );
    assert_eq!(m.autocrypt, None);
}

#[test]
fn an_oversize_key_is_refused() {
    let huge = "A".repeat(palisade_model::autocrypt::MAX_AUTOCRYPT_KEY_BYTES * 2);
    let m = mail(
        &ours("example.net", "pass"),
        &[autocrypt("bob@example.net", &huge)],
        "bob@example.net",
    );
    assert_eq!(m.autocrypt, None);
    // A header far past any key we keep is not even copied out of the message.
    let endless = "A".repeat(palisade_model::autocrypt::MAX_AUTOCRYPT_HEADER_CHARS * 3);
    let m = mail(
        &ours("example.net", "pass"),
        &[autocrypt("bob@example.net", &endless)],
        "bob@example.net",
    );
    assert_eq!(m.autocrypt, None);
}

#[test]
fn only_our_results_with_an_aligned_pass_authenticate_the_sender() {
    let sender = |top: &str, from: &str| {
        mail(top, &[autocrypt(from, BOB_KEY)], from)
            .privacy
            .authenticated_sender
    };
    let bob = Some("bob@example.net".to_string());
    // DKIM by the From domain or a parent of it, or DMARC alone.
    assert_eq!(sender(&ours("example.net", "fail"), "bob@example.net"), bob);
    assert_eq!(
        sender(&ours("example.net", "none"), "bob@mail.example.net"),
        Some("bob@mail.example.net".into())
    );
    assert_eq!(sender(&ours("mailer.test", "pass"), "bob@example.net"), bob);
    // A signature by another domain, without DMARC, is not the sender's.
    assert_eq!(
        sender(&ours("mailer.test", "fail"), "bob@example.net"),
        None
    );
    assert_eq!(sender(&ours("net", "fail"), "bob@example.net"), None);
    // DMARC that names another From domain does not count for this one.
    assert_eq!(sender(&ours("mailer.test", "pass"), "bob@other.test"), None);
    // Results the sender wrote, under any id but ours, count for nothing.
    let forged = "Authentication-Results: example.net; dkim=pass header.d=example.net; dmarc=pass\r\n\
                  Authentication-Results: mx.example.test.evil; dmarc=pass\r\n";
    assert_eq!(sender(forged, "bob@example.net"), None);
    let m = mail(
        forged,
        &[autocrypt("bob@example.net", BOB_KEY)],
        "bob@example.net",
    );
    assert!(
        m.autocrypt.is_some(),
        "parsed, but its sender is not authenticated"
    );
    // Two From mailboxes: nobody is authenticated.
    let raw = format!(
        "{}From: bob@example.net, eve@example.net\r\n\r\nx\r\n",
        ours("example.net", "pass")
    );
    let trust = TrustBoundary::parse("mx.example.test", &["mx.example.test"]).expect("trust");
    let two = parse_message(
        raw.as_bytes(),
        &ParseLimits {
            trust,
            ..ParseLimits::default()
        },
    );
    assert_eq!(two.privacy.authenticated_sender, None);
}
