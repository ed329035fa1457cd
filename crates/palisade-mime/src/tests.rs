//! Whole-message tests on small hand-written fixtures.

use super::*;
use palisade_model::{CryptoKind, ParticipantRole, SpamVerdict};

fn parse(raw: &str) -> MessageContent {
    parse_message(raw.as_bytes(), &ParseLimits::default())
}

/// Parses believing `authserv_id` and `relays` as our own hosts.
fn parse_trusting(raw: &str, authserv_id: &str, relays: &[&str]) -> MessageContent {
    let trust = TrustBoundary::parse(authserv_id, relays).expect("trust boundary");
    parse_message(
        raw.as_bytes(),
        &ParseLimits {
            trust,
            ..ParseLimits::default()
        },
    )
}

#[test]
fn encoded_word_subjects_are_decoded() {
    let latin1 = parse("Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?=\r\nFrom: a@x.test\r\n\r\nhi\r\n");
    assert_eq!(latin1.subject.as_deref(), Some("Café crème"));
    assert_eq!(latin1.normalized_subject.as_deref(), Some("café crème"));

    let utf8 = parse("Subject: Re: =?UTF-8?B?0J/RgNC40LLQtdGCLCDQvNC40YAg4pyT?=\n\nhi\n");
    assert_eq!(utf8.subject.as_deref(), Some("Re: Привет, мир ✓"));
    assert_eq!(utf8.normalized_subject.as_deref(), Some("привет, мир ✓"));
    assert_eq!(utf8.parse_error, None);
}

#[test]
fn participants_cover_every_role_and_flatten_groups() {
    let m = parse(concat!(
        "From: =?UTF-8?Q?J=C3=BCrgen?= <juergen@x.test>\n",
        "Sender: list@x.test\n",
        "Reply-To: \"Replies\" <replies@x.test>\n",
        "To: Team: a@x.test, \"B\" <b@x.test>;, c@x.test\n",
        "Cc: undisclosed-recipients:;\n",
        "Bcc: hidden@x.test\n",
        "\n",
        "body\n",
    ));
    let got: Vec<_> = m
        .participants
        .iter()
        .map(|p| (p.role, p.name.as_deref(), p.address.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                ParticipantRole::From,
                Some("Jürgen"),
                Some("juergen@x.test")
            ),
            (ParticipantRole::Sender, None, Some("list@x.test")),
            (
                ParticipantRole::ReplyTo,
                Some("Replies"),
                Some("replies@x.test")
            ),
            (ParticipantRole::To, None, Some("a@x.test")),
            (ParticipantRole::To, Some("B"), Some("b@x.test")),
            (ParticipantRole::To, None, Some("c@x.test")),
            (ParticipantRole::Bcc, None, Some("hidden@x.test")),
        ]
    );
}

#[test]
fn threading_headers_lose_their_brackets() {
    let m = parse(concat!(
        "Message-ID: <abc@x.test>\n",
        "In-Reply-To: <parent@x.test>\n",
        "References: <root@x.test>\n <parent@x.test>\n",
        "Date: Tue, 1 Jul 2003 10:52:37 +0200\n",
        "\n",
        "body\n",
    ));
    assert_eq!(m.message_id_header.as_deref(), Some("abc@x.test"));
    assert_eq!(m.in_reply_to, vec!["parent@x.test"]);
    assert_eq!(m.references, vec!["root@x.test", "parent@x.test"]);
    assert_eq!(
        m.date.map(|d| d.to_rfc3339()).as_deref(),
        Some("2003-07-01T08:52:37+00:00")
    );
    assert_eq!(m.header_count, 4);
}

#[test]
fn invalid_or_missing_dates_are_none() {
    assert_eq!(parse("Date: yesterday-ish\n\nx\n").date, None);
    assert_eq!(
        parse("Date: Mon, 31 Feb 2020 10:00:00 +0000\n\nx\n").date,
        None
    );
    assert_eq!(parse("Subject: x\n\nx\n").date, None);
}

const MIXED: &str = concat!(
    "From: a@x.test\n",
    "Subject: files\n",
    "MIME-Version: 1.0\n",
    "Content-Type: multipart/mixed; boundary=\"outer\"\n",
    "\n",
    "--outer\n",
    "Content-Type: multipart/related; boundary=\"rel\"\n",
    "\n",
    "--rel\n",
    "Content-Type: multipart/alternative; boundary=\"alt\"\n",
    "\n",
    "--alt\n",
    "Content-Type: text/plain; charset=utf-8\n",
    "\n",
    "See the logo.\n",
    "--alt\n",
    "Content-Type: text/html; charset=utf-8\n",
    "\n",
    "<p>See the <img src=\"CID:Logo@x.test\"></p>\n",
    "--alt--\n",
    "--rel\n",
    "Content-Type: image/png; name=\"logo.png\"\n",
    "Content-ID: <Logo@x.test>\n",
    "Content-Transfer-Encoding: base64\n",
    "\n",
    "AAECAwQFBgcICQoLDA0ODw==\n",
    "--rel--\n",
    "--outer\n",
    "Content-Type: application/PDF\n",
    "Content-Disposition: attachment; filename*=iso-8859-1''R%E9sum%E9.pdf\n",
    "Content-Transfer-Encoding: base64\n",
    "\n",
    "JVBERi0xLjQgZmFrZQ==\n",
    "--outer--\n",
);

#[test]
fn multipart_mixed_lists_attachment_and_inline_image() {
    let m = parse(MIXED);
    assert_eq!(m.text_body.as_deref(), Some("See the logo."));
    assert!(m.html_body.as_deref().is_some_and(|h| h.contains("<img")));
    let got: Vec<_> = m
        .attachments
        .iter()
        .map(|a| {
            (
                a.file_name.as_deref(),
                a.content_type.as_str(),
                a.size,
                a.content_id.as_deref(),
                a.inline,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("logo.png"), "image/png", 16, Some("Logo@x.test"), true),
            (Some("Résumé.pdf"), "application/pdf", 13, None, false),
        ]
    );
    // Part ids are mail-parser's, so the store can cut the part out of the raw bytes later.
    assert!(m.attachments.iter().all(|a| a.part_index > 0));
    assert!(m.privacy.crypto.is_empty());
    assert!(!m.privacy.mime_depth_exceeded);
}

#[test]
fn nested_message_is_one_attachment() {
    let m = parse(concat!(
        "Subject: fwd\n",
        "Content-Type: multipart/mixed; boundary=b\n",
        "\n",
        "--b\n",
        "Content-Type: text/plain\n",
        "\n",
        "see attached\n",
        "--b\n",
        "Content-Type: message/rfc822\n",
        "\n",
        "Subject: inner\n",
        "Content-Type: multipart/mixed; boundary=c\n",
        "\n",
        "--c\n",
        "Content-Type: text/plain\n",
        "\n",
        "inner text\n",
        "--c\n",
        "Content-Type: application/zip; name=inner.zip\n",
        "\n",
        "zip\n",
        "--c--\n",
        "--b--\n",
    ));
    assert_eq!(m.text_body.as_deref(), Some("see attached"));
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].content_type, "message/rfc822");
    assert!(m.attachments[0].size > 0);
}

#[test]
fn html_only_mail_gets_text_for_snippets_and_text_only_mail_gets_no_html() {
    let html =
        parse("Content-Type: text/html\n\n<html><body><p>Hello <b>there</b></p></body></html>\n");
    assert!(
        html.html_body
            .as_deref()
            .is_some_and(|h| h.contains("<b>there</b>"))
    );
    let text = html.text_body.unwrap_or_default();
    assert!(text.contains("Hello") && text.contains("there") && !text.contains('<'));

    let plain = parse("Subject: x\n\nplain only\n");
    assert_eq!(plain.text_body.as_deref(), Some("plain only\n"));
    assert_eq!(plain.html_body, None);
}

#[test]
fn body_is_recovered_when_the_boundary_never_closes() {
    let m = parse(concat!(
        "Subject: spam\n",
        "Content-Type: multipart/mixed; boundary=\"b\"\n",
        "\n",
        "--b\n",
        "Content-Type: text/html; charset=\"iso-8859-1\"\n",
        "Content-Transfer-Encoding: base64\n",
        "\n",
        "PGI+SGk8L2I+\n",
    ));
    assert!(m.html_body.is_some());
    assert!(m.text_body.as_deref().is_some_and(|t| t.contains("Hi")));
    assert!(m.attachments.is_empty(), "{:?}", m.attachments);
}

#[test]
fn pgp_mime_signed_and_encrypted() {
    let signed = parse(concat!(
        "Content-Type: multipart/signed; micalg=pgp-sha256;\n",
        " protocol=\"application/pgp-signature\"; boundary=\"s\"\n",
        "\n",
        "--s\n",
        "Content-Type: text/plain\n",
        "\n",
        "signed text\n",
        "--s\n",
        "Content-Type: application/pgp-signature; name=\"signature.asc\"\n",
        "\n",
        "-----BEGIN PGP SIGNATURE-----\n",
        "iQ==\n",
        "-----END PGP SIGNATURE-----\n",
        "--s--\n",
    ));
    assert_eq!(signed.privacy.crypto, vec![CryptoKind::PgpSigned]);
    assert_eq!(signed.text_body.as_deref(), Some("signed text"));
    assert_eq!(signed.attachments.len(), 1);
    assert_eq!(
        signed.attachments[0].content_type,
        "application/pgp-signature"
    );

    let encrypted = parse(concat!(
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=e\n",
        "\n",
        "--e\n",
        "Content-Type: application/pgp-encrypted\n",
        "\n",
        "Version: 1\n",
        "--e\n",
        "Content-Type: application/octet-stream; name=encrypted.asc\n",
        "\n",
        "-----BEGIN PGP MESSAGE-----\n",
        "hQ==\n",
        "-----END PGP MESSAGE-----\n",
        "--e--\n",
    ));
    assert_eq!(encrypted.privacy.crypto, vec![CryptoKind::PgpEncrypted]);
}

#[test]
fn pgp_inline_armor_in_the_body() {
    let m = parse(concat!(
        "Subject: x\n\n",
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nhello\n",
        "-----BEGIN PGP SIGNATURE-----\niQ==\n-----END PGP SIGNATURE-----\n",
    ));
    assert_eq!(m.privacy.crypto, vec![CryptoKind::PgpInline]);
}

#[test]
fn smime_variants() {
    let signed = parse(concat!(
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\n",
        " micalg=sha-256; boundary=s\n",
        "\n",
        "--s\n",
        "Content-Type: text/plain\n\nhi\n",
        "--s\n",
        "Content-Type: application/pkcs7-signature; name=smime.p7s\n",
        "Content-Transfer-Encoding: base64\n\nMIAG\n",
        "--s--\n",
    ));
    assert_eq!(signed.privacy.crypto, vec![CryptoKind::SmimeSigned]);

    let opaque = parse(concat!(
        "Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\n",
        "Content-Transfer-Encoding: base64\n\nMIAG\n",
    ));
    assert_eq!(opaque.privacy.crypto, vec![CryptoKind::SmimeSigned]);

    let enveloped = parse(concat!(
        "Content-Type: application/x-pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\n",
        "Content-Transfer-Encoding: base64\n\nMIAG\n",
    ));
    assert_eq!(enveloped.privacy.crypto, vec![CryptoKind::SmimeEncrypted]);
}

#[test]
fn received_headers_record_tls_per_hop_newest_first() {
    // Every hop is ours (relays by name, clients in 192.0.2.0/24) down to the last, whose
    // `by` is empty, so nobody we trust wrote it.
    let m = parse_trusting(
        concat!(
            "Received: from mx.a.test (mx.a.test [192.0.2.1])\n",
            "\tby mail.b.test (Postfix) with ESMTPS id 4F2;\n",
            "\tTue, 1 Jul 2003 10:52:37 +0200\n",
            "Received: from c.test ([192.0.2.3]) by d.test with ESMTP id 1; Tue, 1 Jul 2003 10:52:30 +0200\n",
            "Received: from e.test ([192.0.2.5]) by f.test (8.12/8.12) with ESMTP id h6;\n",
            "\t(version=TLSv1/SSLv3 cipher=EDH-RSA-DES-CBC3-SHA bits=168 verify=NO)\n",
            "\tTue, 1 Jul 2003 10:52:20 +0200\n",
            "Received: from g.test ([192.0.2.7]) by H.Test (Postfix) with SMTP id 2\n",
            "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384); Tue, 1 Jul 2003 10:52:10 +0200\n",
            "Received: from i.test ([192.0.2.9])\n",
            "\tby  with SMTP; 15 Nov 2017 14:16:18 -0000\n",
            "\n",
            "x\n",
        ),
        "mail.b.test",
        &["192.0.2.0/24", "mail.b.test", "d.test", "f.test", "h.test"],
    );
    let hops: Vec<_> = m
        .privacy
        .transport
        .iter()
        .map(|h| (h.by.as_deref(), h.tls))
        .collect();
    assert_eq!(
        hops,
        vec![
            (Some("mail.b.test"), true),
            (Some("d.test"), false),
            (Some("f.test"), true),
            (Some("h.test"), true),
        ]
    );
    assert_eq!(m.privacy.untrusted_headers, 1);
    assert!(!m.privacy.all_hops_tls());
}

#[test]
fn authentication_results_dkim_and_autocrypt() {
    let raw = concat!(
        "Authentication-Results: mx.example.test;\n",
        "\tdkim=pass header.i=@x.test header.s=sel;\n",
        "\tspf=SoftFail (mx.example.test: domain of a@x.test does not designate) smtp.mailfrom=a@x.test;\n",
        "\tdmarc=fail (p=NONE sp=NONE dis=NONE) header.from=x.test\n",
        "Authentication-Results: other.test; spf=pass\n",
        "DKIM-Signature: v=1; a=rsa-sha256; d=x.test; s=sel; b=abc\n",
        "Autocrypt: addr=a@x.test; keydata=mQENBF\n",
        "\n",
        "x\n",
    );
    let m = parse_trusting(raw, "mx.example.test", &[]);
    assert_eq!(
        m.privacy.untrusted_headers, 1,
        "other.test's results are not ours"
    );
    let auth = m.privacy.auth_results.unwrap_or_default();
    assert_eq!(auth.dkim.as_deref(), Some("pass"));
    assert_eq!(auth.spf.as_deref(), Some("softfail"));
    assert_eq!(auth.dmarc.as_deref(), Some("fail"));
    assert!(m.privacy.dkim_signature);
    assert!(m.privacy.autocrypt);
    // With no authserv-id configured, no results are ours.
    let unconfigured = parse(raw);
    assert_eq!(unconfigured.privacy.auth_results, None);
    assert_eq!(unconfigured.privacy.untrusted_headers, 2);

    let none = parse("Subject: x\n\nx\n");
    assert_eq!(none.privacy.auth_results, None);
    assert!(!none.privacy.dkim_signature && !none.privacy.autocrypt);
}

#[test]
fn spam_headers_and_list_id() {
    let ours = |raw: &str| {
        let hop = "Received: from a.test (a.test [192.0.2.1]) by mx.example.test with ESMTP id 1; Tue, 1 Jul 2003 10:52:37 +0200\n";
        parse_trusting(
            &format!("{hop}{raw}"),
            "mx.example.test",
            &["mx.example.test"],
        )
    };
    let m = ours(concat!(
        "X-Spam-Status: Yes, score=7.9 required=5.0 tests=BAYES_99\n",
        "\tautolearn=no version=3.4.6\n",
        "X-Spam-Flag: YES\n",
        "List-Id: Rust users <users.rust.example>\n",
        "\n",
        "x\n",
    ));
    assert_eq!(m.privacy.spam.is_spam, Some(true));
    assert_eq!(m.privacy.spam.score, Some(7.9));
    assert_eq!(m.privacy.list_id.as_deref(), Some("users.rust.example"));

    let ham = ours("X-Spam-Status: No, hits=-2.6 required=5.0\nX-Spam-Score: -2.5\n\nx\n");
    assert_eq!(ham.privacy.spam.is_spam, Some(false));
    assert_eq!(ham.privacy.spam.score, Some(-2.5));
    // Mail that never passed our relays carries only what its sender wrote.
    let direct = parse("X-Spam-Flag: YES\nX-Spam-Score: 9\n\nx\n");
    assert_eq!(direct.privacy.spam, SpamVerdict::default());
    assert_eq!(direct.privacy.untrusted_headers, 2);
}

/// What a sender writes below the hop where mail entered our relays changes nothing.
#[test]
fn headers_the_sender_wrote_do_not_move_the_privacy_index() {
    let ours = concat!(
        "Received: from lmtp.internal ([10.0.0.5]) by mx.example.test with LMTP id 2;\n",
        "\tTue, 1 Jul 2003 10:52:40 +0200\n",
        "Received: from sender.test (sender.test [203.0.113.9])\n",
        "\tby mx.example.test (Postfix) with ESMTP id 1; Tue, 1 Jul 2003 10:52:37 +0200\n",
        "Authentication-Results: mx.example.test; dkim=none; spf=fail smtp.mailfrom=sender.test\n",
    );
    let forged = concat!(
        "Authentication-Results: sender.test; dkim=pass header.d=bank.test; spf=pass; dmarc=pass\n",
        "Authentication-Results: mx.example.test.sender.test; dkim=pass; spf=pass; dmarc=pass\n",
        "Received: from a.sender.test by mx.example.test with ESMTPS id 0\n",
        "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384); Tue, 1 Jul 2003 10:52:30 +0200\n",
        "X-Spam-Flag: NO\n",
    );
    let body = "From: a@sender.test\nSubject: hello\n\nx\n";
    let relays = ["mx.example.test", "10.0.0.0/8"];
    let honest = parse_trusting(&format!("{ours}{body}"), "mx.example.test", &relays);
    let dressed = parse_trusting(&format!("{ours}{forged}{body}"), "mx.example.test", &relays);
    assert_eq!(honest.privacy.transport.len(), 2, "both hops are ours");
    assert_eq!(
        honest
            .privacy
            .auth_results
            .as_ref()
            .and_then(|a| a.spf.as_deref()),
        Some("fail")
    );
    assert_eq!(dressed.privacy.untrusted_headers, 3);
    assert_eq!(dressed.privacy.authenticated_sender, None);
    assert_eq!(
        dressed.privacy.privacy_factors(),
        honest.privacy.privacy_factors()
    );
    assert_eq!(
        dressed.privacy.privacy_index(),
        honest.privacy.privacy_index()
    );
    // A client that greets with our own name is still outside.
    let helo = parse_trusting(
        concat!(
            "Received: from mx.example.test by mx.example.test with ESMTPS id 1\n",
            "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384); Tue, 1 Jul 2003 10:52:37 +0200\n",
            "Received: from x by mx.example.test with ESMTPS id 0\n",
            "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384); Tue, 1 Jul 2003 10:52:30 +0200\n",
            "\nx\n",
        ),
        "mx.example.test",
        &relays,
    );
    assert_eq!(helo.privacy.transport.len(), 1);
    assert_eq!(helo.privacy.untrusted_headers, 1);
}

/// A message whose single leaf sits `levels` multiparts below the root.
fn nested(levels: usize) -> String {
    let mut raw = String::from("Subject: deep\n");
    for i in 0..levels {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n"
        ));
    }
    raw.push_str("Content-Type: application/octet-stream; name=deep.bin\n\nx\n");
    for i in (0..levels).rev() {
        raw.push_str(&format!("--b{i}--\n"));
    }
    raw
}

#[test]
fn nesting_beyond_the_limit_is_flagged_and_not_extracted() {
    let shallow = parse(&nested(3));
    assert!(!shallow.privacy.mime_depth_exceeded);
    assert_eq!(shallow.attachments.len(), 1);

    let limits = ParseLimits {
        max_mime_depth: 2,
        ..ParseLimits::default()
    };
    let deep = parse_message(nested(3).as_bytes(), &limits);
    assert!(deep.privacy.mime_depth_exceeded);
    assert!(deep.attachments.is_empty());

    let very_deep = parse(&nested(200));
    assert!(very_deep.privacy.mime_depth_exceeded);
    assert!(very_deep.attachments.is_empty());
    assert_eq!(very_deep.subject.as_deref(), Some("deep"));
}

#[test]
fn empty_and_headerless_input_sets_parse_error() {
    for raw in [
        &b""[..],
        b"\n\n",
        b"\0\0\0\0\0\0\0\0",
        b"// Not an RFC-822 Document",
        b"\nSubject: after a blank line\n",
        b"\xEF\xBB\xBF",
    ] {
        let m = parse_message(raw, &ParseLimits::default());
        assert!(m.parse_error.is_some(), "{raw:?}");
    }
}

#[test]
fn bare_lf_crlf_and_nul_bytes_parse() {
    let lf = parse("Subject: lf\nFrom: a@x.test\n\nbody\n");
    let crlf = parse("Subject: lf\r\nFrom: a@x.test\r\n\r\nbody\r\n");
    assert_eq!(lf.parse_error, None);
    assert_eq!(lf.subject, crlf.subject);
    assert_eq!(lf.participants, crlf.participants);

    let nul = parse_message(b"Subject: a\0b\n\nbo\0dy\0\n", &ParseLimits::default());
    assert_eq!(nul.parse_error, None);
    assert!(nul.text_body.is_some());
}

#[test]
fn bom_and_mbox_from_line_are_not_headers() {
    let m =
        parse("\u{feff}From a@x.test  Fri Feb 22 17:06:23 2008\nFrom: a@x.test\nSubject: s\n\nb\n");
    assert_eq!(m.header_count, 2);
    assert_eq!(
        m.from().and_then(|p| p.address.as_deref()),
        Some("a@x.test")
    );
}

/// A small xorshift generator: deterministic, so a failure reproduces.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

#[test]
fn random_bytes_never_panic() {
    for seed in 1..500u64 {
        let raw = noise(seed, (seed as usize * 37) % 4096);
        let m = parse_message(&raw, &ParseLimits::default());
        if raw.is_empty() {
            assert!(m.parse_error.is_some());
        }
    }
}

#[test]
fn every_truncation_and_corruption_of_a_real_message_is_survived() {
    let raw = MIXED.as_bytes();
    for end in 0..raw.len() {
        let m = parse_message(&raw[..end], &ParseLimits::default());
        if end == 0 {
            assert!(m.parse_error.is_some());
        }
    }
    for (i, seed) in (0..raw.len()).step_by(7).zip(1u64..) {
        let mut bad = raw.to_vec();
        let junk = noise(seed, 8);
        let stop = (i + junk.len()).min(bad.len());
        bad[i..stop].copy_from_slice(&junk[..stop - i]);
        let _ = parse_message(&bad, &ParseLimits::default());
    }
}

#[test]
fn a_body_past_the_limit_is_cut_at_a_character_and_flagged() {
    let body = "é".repeat(600);
    let raw = format!("Subject: long\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n");
    let limits = ParseLimits {
        max_body_bytes: 1001,
        ..ParseLimits::default()
    };
    let m = parse_message(raw.as_bytes(), &limits);
    let text = m.text_body.as_deref().expect("a body");
    assert_eq!(text.len(), 1000, "cut at the last whole character");
    assert!(m.body_truncated);
    let whole = parse_message(raw.as_bytes(), &ParseLimits::default());
    assert!(!whole.body_truncated);
    assert!(whole.text_body.is_some_and(|t| t.starts_with(&body)));
}

/// One structure entry as `(index, parent, depth, type, shown_inline, attachment)`.
type Shape<'a> = (u32, Option<u32>, u32, &'a str, bool, bool);

fn shape(m: &MessageContent) -> Vec<Shape<'_>> {
    m.structure
        .iter()
        .map(|p| {
            (
                p.index,
                p.parent,
                p.depth,
                p.content_type.as_str(),
                p.shown_inline,
                p.attachment,
            )
        })
        .collect()
}

/// Every leaf is shown or listed, no container is listed, and the flags match the lists.
fn assert_nothing_dropped(m: &MessageContent) {
    for part in &m.structure {
        let listed = m.attachments.iter().any(|a| a.part_index == part.index);
        assert_eq!(part.attachment, listed, "{part:?}");
        if part.content_type.starts_with("multipart/") && part.size == 0 {
            assert!(!part.attachment, "container listed: {part:?}");
        } else {
            assert!(part.shown_inline ^ part.attachment, "{part:?}");
        }
    }
    assert!(
        m.attachments
            .iter()
            .all(|a| !a.content_type.starts_with("multipart/"))
    );
}

#[test]
fn a_second_text_part_follows_the_first_after_a_blank_line() {
    let m = parse(concat!(
        "Subject: two\n",
        "Content-Type: multipart/mixed; boundary=b\n",
        "\n",
        "--b\n",
        "Content-Type: text/plain\n",
        "\n",
        "first part\n",
        "--b\n",
        "Content-Type: text/plain; charset=utf-8\n",
        "\n",
        "second part\n",
        "--b--\n",
    ));
    assert_eq!(m.text_body.as_deref(), Some("first part\n\nsecond part"));
    assert_eq!(m.html_body, None);
    assert!(m.attachments.is_empty());
    assert_nothing_dropped(&m);
}

#[test]
fn text_after_a_message_partial_and_a_uuencoded_block_is_shown() {
    let m = parse(concat!(
        "Subject: partial\n",
        "Content-Type: multipart/mixed; boundary=b\n",
        "\n",
        "--b\n",
        "Content-Type: text/plain\n",
        "\n",
        "before\n",
        "begin 644 hello.txt\n",
        "%:&5L;&\\*\n",
        "`\n",
        "end\n",
        "--b\n",
        "Content-Type: message/partial; id=\"x@y\"; number=1; total=2\n",
        "\n",
        "Subject: fragment\n\nfragment\n",
        "--b\n",
        "Content-Type: text/plain\n",
        "\n",
        "after the partial\n",
        "--b--\n",
    ));
    let text = m.text_body.as_deref().unwrap_or_default();
    assert!(text.starts_with("before\nbegin 644"), "{text}");
    assert!(text.ends_with("after the partial"), "{text}");
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].content_type, "message/partial");
    assert_nothing_dropped(&m);
}

#[test]
fn a_final_html_part_makes_an_html_body_of_every_part() {
    let m = parse(concat!(
        "Subject: footer\n",
        "Content-Type: multipart/mixed; boundary=b\n",
        "\n",
        "--b\n",
        "Content-Type: text/plain\n",
        "\n",
        "plain <first>\n",
        "--b\n",
        "Content-Type: text/html\n",
        "\n",
        "<p>html <b>footer</b></p>\n",
        "--b--\n",
    ));
    let text = m.text_body.as_deref().unwrap_or_default();
    assert!(text.starts_with("plain <first>\n\n"), "{text}");
    assert!(text.contains("footer") && !text.contains("<b>"), "{text}");
    // Plain parts are escaped into the HTML body, in order.
    assert_eq!(
        m.html_body.as_deref(),
        Some("<pre>plain &lt;first&gt;</pre>\n<p>html <b>footer</b></p>")
    );
    assert!(m.attachments.is_empty());
    assert_nothing_dropped(&m);
}

#[test]
fn an_alternative_keeps_its_html_and_shows_one_text() {
    // The HTML alternative sits in a related part; mail-parser listed it as a nameless
    // text/html attachment.
    let m = parse(concat!(
        "Subject: alt\n",
        "Content-Type: multipart/alternative; boundary=a\n",
        "\n",
        "--a\n",
        "Content-Type: text/plain\n",
        "\n",
        "plain version\n",
        "--a\n",
        "Content-Type: multipart/related; boundary=r\n",
        "\n",
        "--r\n",
        "Content-Type: text/html\n",
        "\n",
        "<p>html version</p>\n",
        "--r\n",
        "Content-Type: image/gif; name=dot.gif\n",
        "Content-ID: <dot@x>\n",
        "\n",
        "GIF\n",
        "--r--\n",
        "--a--\n",
    ));
    assert_eq!(m.text_body.as_deref(), Some("plain version"));
    assert_eq!(m.html_body.as_deref(), Some("<p>html version</p>"));
    let types: Vec<_> = m
        .attachments
        .iter()
        .map(|a| a.content_type.as_str())
        .collect();
    assert_eq!(types, ["image/gif"]);
    assert_nothing_dropped(&m);

    let html_only = parse(concat!(
        "Content-Type: multipart/alternative; boundary=a\n\n",
        "--a\nContent-Type: text/html\n\n<i>only html</i>\n--a--\n",
    ));
    assert_eq!(html_only.html_body.as_deref(), Some("<i>only html</i>"));
    assert!(
        html_only
            .text_body
            .is_some_and(|t| t.contains("only html") && !t.contains('<'))
    );
}

#[test]
fn a_whitespace_only_line_does_not_end_the_headers() {
    for sep in ["\n", "\r\n"] {
        let raw = [
            "Subject: kept",
            " \t",
            "From: a@x.test",
            "   ",
            "Content-Type: multipart/mixed; boundary=b",
            "",
            "--b",
            "Content-Type: text/plain",
            "",
            "the body",
            "--b",
            "Content-Type: application/pdf; name=a.pdf",
            "",
            "pdf",
            "--b--",
            "",
        ]
        .join(sep);
        let m = parse(&raw);
        assert_eq!(m.parse_error, None);
        assert_eq!(m.subject.as_deref(), Some("kept"));
        assert_eq!(
            m.from().and_then(|p| p.address.as_deref()),
            Some("a@x.test")
        );
        assert_eq!(m.header_count, 3);
        assert_eq!(m.text_body.as_deref(), Some("the body"));
        assert_eq!(m.attachments.len(), 1);
        // The part ids the store keeps cut out the same bytes.
        let index = m.attachments[0].part_index;
        assert_eq!(
            attachment_bytes(raw.as_bytes(), index).as_deref(),
            Some(&b"pdf"[..])
        );
    }
    // A whitespace line followed by prose is where the sender meant the body to start.
    for raw in [
        "Subject: s\n  \nHello there\n",
        "Subject: s\r\n\t \r\nHello there\r\n",
    ] {
        let m = parse(raw);
        assert_eq!(m.subject.as_deref(), Some("s"));
        assert_eq!(m.header_count, 1);
        assert!(m.text_body.is_some_and(|t| t.starts_with("Hello there")));
    }
}

#[test]
fn input_without_a_header_section_is_all_body() {
    let m = parse("Just some text,\nno headers at all.\n\nSecond paragraph.\n");
    assert_eq!(
        m.text_body.as_deref(),
        Some("Just some text,\nno headers at all.\n\nSecond paragraph.\n")
    );
    assert_eq!(m.header_count, 0);
    assert_eq!(m.subject, None);
    assert_eq!(m.parse_error.as_deref(), Some("no header section found"));
    assert_eq!(shape(&m), [(0, None, 0, "text/plain", true, false)]);
}

#[test]
fn a_multipart_whose_boundary_never_occurs_is_shown_as_text() {
    let m = parse(concat!(
        "Subject: lost boundary\n",
        "Content-Type: multipart/mixed; boundary=\"never-used\"\n",
        "\n",
        "--other\n",
        "Content-Type: text/plain\n",
        "\n",
        "the real text\n",
        "--other--\n",
    ));
    assert!(
        m.text_body
            .as_deref()
            .is_some_and(|t| t.contains("the real text")),
        "{:?}",
        m.text_body
    );
    assert!(m.attachments.is_empty(), "{:?}", m.attachments);
    assert_eq!(shape(&m), [(0, None, 0, "multipart/mixed", true, false)]);
    assert_eq!(m.parse_error, None);

    let no_parameter = parse("Content-Type: multipart/mixed\n\nsome text\n");
    assert!(no_parameter.attachments.is_empty());
    assert!(
        no_parameter
            .text_body
            .is_some_and(|t| t.contains("some text"))
    );
}

#[test]
fn structure_lists_every_part_in_tree_order() {
    let m = parse(MIXED);
    assert_eq!(
        shape(&m),
        [
            (0, None, 0, "multipart/mixed", false, false),
            (1, Some(0), 1, "multipart/related", false, false),
            (2, Some(1), 2, "multipart/alternative", false, false),
            (3, Some(2), 3, "text/plain", true, false),
            (4, Some(2), 3, "text/html", true, false),
            (5, Some(1), 2, "image/png", false, true),
            (6, Some(0), 1, "application/pdf", false, true),
        ]
    );
    let pdf = &m.structure[6];
    assert_eq!(pdf.disposition.as_deref(), Some("attachment"));
    assert_eq!(pdf.file_name.as_deref(), Some("Résumé.pdf"));
    assert_eq!(pdf.size, 13);
    assert_eq!(m.structure[3].charset.as_deref(), Some("utf-8"));
    assert_eq!(m.structure[0].size, 0);
    assert_nothing_dropped(&m);
    // Every leaf can be cut out by its index, shown or not.
    assert_eq!(
        attachment_bytes(MIXED.as_bytes(), 3).as_deref(),
        Some(&b"See the logo."[..])
    );
}

#[test]
fn structure_fields_and_length_are_capped() {
    let long_name = "é".repeat(300);
    let long_type = "x".repeat(300);
    let mut raw = String::from("Subject: wide\nContent-Type: multipart/mixed; boundary=b\n\n");
    raw.push_str(&format!(
        "--b\nContent-Type: application/{long_type}; charset={long_type}\n\
         Content-Disposition: attachment; filename=\"{long_name}\"\n\nx\n"
    ));
    for i in 0..700 {
        raw.push_str(&format!("--b\nContent-Type: text/plain\n\npart {i}\n"));
    }
    raw.push_str("--b--\n");
    let m = parse(&raw);
    assert_eq!(m.structure.len(), palisade_model::MAX_STRUCTURE_PARTS);
    let first = &m.structure[1];
    assert!(first.content_type.len() <= palisade_model::MAX_MIME_PART_FIELD_BYTES);
    assert!(first.content_type.starts_with("application/xxx"));
    assert_eq!(first.charset.as_ref().map(String::len), Some(200));
    let name = first.file_name.as_deref().unwrap_or_default();
    assert_eq!(name.len(), 200, "cut at a character boundary");
    // The body still has every part, a blank line apart.
    let text = m.text_body.unwrap_or_default();
    assert!(text.starts_with("part 0\n\npart 1\n\n") && text.ends_with("part 699"));
}

#[test]
fn hostile_wide_and_deep_trees_stay_bounded() {
    // Thousands of tiny parts: the assembled body stops near the limit and says so.
    let mut raw = String::from("Content-Type: multipart/mixed; boundary=b\n\n");
    for _ in 0..20_000 {
        raw.push_str("--b\n\nsome words here\n");
    }
    raw.push_str("--b--\n");
    let limits = ParseLimits {
        max_body_bytes: 10_000,
        ..ParseLimits::default()
    };
    let m = parse_message(raw.as_bytes(), &limits);
    assert!(m.body_truncated);
    assert!(m.text_body.is_some_and(|t| t.len() <= 10_000));
    assert!(m.structure.len() <= palisade_model::MAX_STRUCTURE_PARTS);

    let deep = parse(&nested(200));
    assert!(deep.privacy.mime_depth_exceeded);
    assert!(deep.structure.len() <= ParseLimits::default().max_mime_depth + 1);
    assert!(
        deep.structure
            .iter()
            .all(|p| p.depth as usize <= ParseLimits::default().max_mime_depth)
    );
    assert_nothing_dropped(&deep);
}

fn people(m: &MessageContent) -> Vec<(ParticipantRole, Option<&str>, Option<&str>)> {
    m.participants
        .iter()
        .map(|p| (p.role, p.name.as_deref(), p.address.as_deref()))
        .collect()
}

#[test]
fn a_quoted_local_part_with_parentheses_is_kept_whole() {
    let m = parse("From: \"john(x)doe\"@example.com\nTo: Jo <\"j(o)\"@x.test>\n\nhi\n");
    assert_eq!(
        people(&m),
        vec![
            (
                ParticipantRole::From,
                None,
                Some("\"john(x)doe\"@example.com")
            ),
            (ParticipantRole::To, Some("Jo"), Some("\"j(o)\"@x.test")),
        ]
    );
    // A quoted local part that needs no quotes loses them, as in every client.
    let plain = parse("From: \"john\"@example.com\n\nhi\n");
    assert_eq!(
        plain.from().and_then(|p| p.address.as_deref()),
        Some("john@example.com")
    );
}

#[test]
fn escapes_and_nested_comments_in_address_fields_are_resolved() {
    let m = parse(concat!(
        "From: \"Doe, \\\"J\\\"\" <j@x.test>\n",
        "To: t@x.test (Team (ops) \\) lead)\n",
        "Cc: <\"a\\\"b\"@x.test>, \"unterminated <u@x.test>\n",
        "\nhi\n"
    ));
    assert_eq!(
        people(&m),
        vec![
            (ParticipantRole::From, Some("Doe, \"J\""), Some("j@x.test")),
            (
                ParticipantRole::To,
                Some("Team ops ) lead"),
                Some("t@x.test")
            ),
            (ParticipantRole::Cc, None, Some("\"a\\\"b\"@x.test")),
            // An unterminated quote runs to the end: one quoted word, read as a local address.
            (
                ParticipantRole::Cc,
                None,
                Some("\"unterminated <u@x.test>\"")
            ),
        ]
    );
}

#[test]
fn an_obsolete_source_route_is_dropped_from_the_address() {
    let m = parse("From: Old <@a.test,@b.test:user@host.test>\nCc: <@relay.test:c@x.test>\n\nhi\n");
    assert_eq!(
        people(&m),
        vec![
            (ParticipantRole::From, Some("Old"), Some("user@host.test")),
            (ParticipantRole::Cc, None, Some("c@x.test")),
        ]
    );
}

#[test]
fn a_field_name_folded_before_its_colon_is_read_and_flags_a_second_from() {
    let m = parse(concat!(
        "From: Real <real@bank.test>\r\n",
        "From\r\n",
        " : <evil@x.test>\r\n",
        "To\r\n",
        "  : a@x.test\r\n",
        "Subject: hi\r\n",
        "\r\n",
        "body\r\n",
    ));
    assert_eq!(
        people(&m),
        vec![
            (ParticipantRole::From, Some("Real"), Some("real@bank.test")),
            (ParticipantRole::From, None, Some("evil@x.test")),
            (ParticipantRole::To, None, Some("a@x.test")),
        ]
    );
    assert!(m.privacy.multiple_from);
    assert_eq!(m.subject.as_deref(), Some("hi"));
}

#[test]
fn every_from_mailbox_counts_and_one_from_is_not_flagged() {
    let one = parse("From: a@x.test\n\nhi\n");
    assert!(!one.privacy.multiple_from);
    let none = parse("Subject: x\n\nhi\n");
    assert!(!none.privacy.multiple_from);
    let list = parse("From: a@x.test, B <b@x.test>\n\nhi\n");
    assert!(list.privacy.multiple_from);
    assert_eq!(list.participants.len(), 2);
    // A missing comma between two mailboxes must not hide the second one.
    let glued = parse("From: Bob <bob@x.test> Eve <eve@x.test>\n\nhi\n");
    assert!(glued.privacy.multiple_from);
    assert_eq!(
        people(&glued),
        vec![
            (ParticipantRole::From, Some("Bob"), Some("bob@x.test")),
            (ParticipantRole::From, Some("Eve"), Some("eve@x.test")),
        ]
    );
    let two_fields = parse("From: a@x.test\nFrom: b@x.test\n\nhi\n");
    assert!(two_fields.privacy.multiple_from);
    assert_eq!(two_fields.participants.len(), 2);
}

#[test]
fn what_already_worked_better_than_the_reference_still_works() {
    let m = parse("From : x@y.test (John Doe)\nTo: ILUG (Request) <ilug@x.test>\n\nhi\n");
    assert_eq!(
        people(&m),
        vec![
            (ParticipantRole::From, Some("John Doe"), Some("x@y.test")),
            (
                ParticipantRole::To,
                Some("ILUG (Request)"),
                Some("ilug@x.test")
            ),
        ]
    );
}

#[test]
fn adjacent_encoded_words_are_joined_before_decoding() {
    // "é" (C3 A9) split across two words, in the subject, a display name and a file name.
    let m = parse(concat!(
        "Subject: =?UTF-8?Q?caf=C3?= =?UTF-8?Q?=A9?= ok\n",
        "From: =?UTF-8?B?Sm/Dq2wg?= =?UTF-8?B?w6k=?= <j@x.test>\n",
        "Content-Type: multipart/mixed; boundary=b\n",
        "\n",
        "--b\n",
        "Content-Type: text/plain\n\nhi\n",
        "--b\n",
        "Content-Type: application/octet-stream\n",
        "Content-Disposition: attachment; filename=\"=?UTF-8?Q?r=C3?= =?UTF-8?Q?=A9sum=C3=A9.pdf?=\"\n",
        "\n",
        "x\n",
        "--b--\n",
    ));
    assert_eq!(m.subject.as_deref(), Some("café ok"));
    assert_eq!(m.from().and_then(|p| p.name.as_deref()), Some("Joël é"));
    assert_eq!(
        m.attachments.first().and_then(|a| a.file_name.as_deref()),
        Some("résumé.pdf")
    );
    // A UTF-8 sequence split in base64 words.
    let b = parse("Subject: =?utf-8?b?4oK=?= =?utf-8?b?rA==?=\n\nhi\n");
    assert_eq!(b.subject.as_deref(), Some("€"));
}

#[test]
fn stateful_charsets_are_decoded_word_by_word() {
    // Each ISO-2022-JP word returns to ASCII at its end; both decode alone.
    let m = parse(concat!(
        "Subject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\n",
        " =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\n",
        "\n",
        "hi\n",
    ));
    assert_eq!(m.subject.as_deref(), Some("こんにちはこんにちは"));
}

#[test]
fn undecodable_file_names_fall_back_to_their_raw_value() {
    let with = |disposition: &str| {
        let raw = format!(
            "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; {disposition}\n\nx\n--b--\n"
        );
        parse(&raw)
            .attachments
            .first()
            .and_then(|a| a.file_name.clone())
    };
    // Latin-1 bytes declared as UTF-8: read as 8-bit text, not replacement characters.
    assert_eq!(
        with("filename*=utf-8''%E9t%E9.txt").as_deref(),
        Some("été.txt")
    );
    assert_eq!(
        with("filename*=iso-8859-1''%E9t%E9.txt").as_deref(),
        Some("été.txt")
    );
    // Parameter names are case-insensitive (RFC 2045 section 5.1).
    assert_eq!(
        with("FileName*=utf-8''%E9t%E9.txt").as_deref(),
        Some("été.txt")
    );
    // An unknown charset and a broken escape: the raw text, never nothing.
    assert_eq!(
        with("filename*=x-bogus''%ZZ.txt").as_deref(),
        Some("%ZZ.txt")
    );
    assert_eq!(
        with("filename*0*=utf-8''a%20b; filename*1=c.txt").as_deref(),
        Some("a bc.txt")
    );
    // Not base64 at all: the word is kept as written, like any malformed encoded-word.
    assert_eq!(
        with("filename=\"=?utf-8?b?@@@?=\"").as_deref(),
        Some("=?utf-8?b?@@@?=")
    );
    assert_eq!(with("filename=\"\"").as_deref(), None);
}

#[test]
fn raw_8bit_headers_use_utf8_then_declared_charsets_then_windows_1252() {
    let utf8 = parse_message(
        "Subject: Grüße\nFrom: Jürgen <j@x.test>\n\nhi\n".as_bytes(),
        &ParseLimits::default(),
    );
    assert_eq!(utf8.subject.as_deref(), Some("Grüße"));
    assert_eq!(utf8.from().and_then(|p| p.name.as_deref()), Some("Jürgen"));
    // KOI8-R bytes, declared by the body part.
    let mut koi8 =
        b"Subject: \xf0\xd2\xc9\xd7\xc5\xd4\nContent-Type: text/plain; charset=koi8-r\n\nhi\n"
            .to_vec();
    let declared = parse_message(&koi8, &ParseLimits::default());
    assert_eq!(declared.subject.as_deref(), Some("Привет"));
    // Nothing declared: windows-1252.
    koi8 = b"Subject: caf\xe9 \x80\nFrom: S\xe9bastien <s@x.test>\n\nhi\n".to_vec();
    let fallback = parse_message(&koi8, &ParseLimits::default());
    assert_eq!(fallback.subject.as_deref(), Some("café €"));
    assert_eq!(
        fallback.from().and_then(|p| p.name.as_deref()),
        Some("Sébastien")
    );
}

#[test]
fn comments_in_dates_are_removed_before_parsing() {
    let date = |value: &str| {
        parse(&format!("Date: {value}\n\nhi\n"))
            .date
            .map(|d| d.to_rfc3339())
    };
    let expected = Some("2002-01-01T09:55:06+00:00".to_string());
    assert_eq!(date("Tue, 1 Jan 2002 09(comment):55:06 +0000"), expected);
    assert_eq!(date("Tue, 1 Jan 2002 09 : 55 : 06 +0000"), expected);
    assert_eq!(
        date("Tue, 1 Jan 2002 (Tuesday) 10:00:00 +0000"),
        Some("2002-01-01T10:00:00+00:00".to_string())
    );
    assert_eq!(
        date("(a (nested) comment) Tue, 1 Jan 2002 10:00:00 -0500 (EST)"),
        Some("2002-01-01T15:00:00+00:00".to_string())
    );
}

#[test]
fn dates_that_cannot_be_read_correctly_give_no_date() {
    let date = |value: &str| parse(&format!("Date: {value}\n\nhi\n")).date;
    for bad in [
        "Tue, 1 Jan 2002 09(unclosed:55:06 +0000",
        "Tue, 7 Apr 2026 10:00:t <x@y.test>",
        "Tue, 31 Feb 2002 10:00:00 +0000",
        "Tue, 1 Jan 2002 25:00:00 +0000",
        "Tue, 1 Jan 2002 10:00:00 +9999",
        "Tue, 1 Jan 2002 10:00:00 +0000000",
        "Someday, 1 Jan 2002 10:00:00 +0000",
        "1 Foo 2002 10:00:00 +0000",
        "next tuesday",
        "",
    ] {
        assert_eq!(date(bad), None, "{bad}");
    }
    // Obsolete and common variants that do have one meaning.
    let ok = |value: &str| date(value).map(|d| d.to_rfc3339());
    assert_eq!(
        ok("1 Jan 02 10:00 EST"),
        Some("2002-01-01T15:00:00+00:00".into())
    );
    assert_eq!(
        ok("Wed, 01 May 0102 08:40:01 +0800"),
        Some("2002-05-01T00:40:01+00:00".into())
    );
    assert_eq!(
        ok("Sat Sep 21 08:18:08 2002"),
        Some("2002-09-21T08:18:08+00:00".into())
    );
    assert_eq!(
        ok("Mon, 22 Jul 2002 8:52:26 +-0500"),
        Some("2002-07-22T13:52:26+00:00".into())
    );
}

#[test]
fn hostile_headers_stay_bounded_and_never_panic() {
    // Thousands of encoded-words in one subject.
    let words = "=?utf-8?q?a?= ".repeat(20_000);
    let m = parse(&format!("Subject: {words}\n\nhi\n"));
    let subject = m.subject.unwrap_or_default();
    assert!(subject.len() <= 16 * 1024 && subject.starts_with("aaaa"));
    // A very long folded header.
    let long = format!("Subject: {}\n\nhi\n", "x ".repeat(500_000));
    assert!(parse(&long).subject.is_some_and(|s| s.len() <= 16 * 1024));
    // Many From fields and a huge address list.
    let mut raw = "From: a@x.test\n".repeat(5_000);
    raw.push_str(&format!("To: {}\n\nhi\n", "b@x.test, ".repeat(50_000)));
    let m = parse(&raw);
    assert!(m.privacy.multiple_from);
    let froms = m
        .participants
        .iter()
        .filter(|p| p.role == ParticipantRole::From)
        .count();
    assert_eq!(froms, 100);
    assert!(m.participants.len() <= 1100);
    // Deeply nested comments, unbalanced brackets and quotes.
    for value in [
        "(".repeat(100_000),
        "<".repeat(100_000),
        "\"".repeat(100_001),
        "=?".repeat(100_000),
        "=?utf-8?b?".repeat(10_000),
        ":".repeat(100_000),
    ] {
        let m = parse(&format!(
            "From: {value}\nTo: {value}\nSubject: {value}\nDate: {value}\n\nhi\n"
        ));
        assert!(m.participants.len() <= 1100);
        assert_eq!(m.date, None);
    }
}

#[test]
fn quoted_printable_with_a_stray_equals_sign_is_still_decoded() {
    // `=8` and `==` are invalid, yet the rest of the part must not stay encoded: the stray
    // `=` is kept and every valid escape and soft break is decoded, as mail clients do.
    let m = parse(
        "Subject: qp\r\nContent-Type: text/html; charset=iso-8859-1\r\n\
         Content-Transfer-Encoding: Quoted-Printable\r\n\r\n\
         <a href=3D\"x?id=8\">caf=E9 =\r\nau lait</a> a==b =20\r\n",
    );
    let html = m.html_body.unwrap_or_default();
    assert!(
        html.contains("<a href=\"x?id=8\">café au lait</a>"),
        "{html:?}"
    );
    assert!(html.contains("a==b  "), "{html:?}");
}

#[test]
fn quoted_printable_keeps_an_equals_sign_before_one_hex_digit() {
    let m = parse(
        "Subject: qp\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\n\
         https://x.test/?a=1\r\n\r\nStuff=E2=80=99s summary\r\n",
    );
    let text = m.text_body.unwrap_or_default();
    assert!(
        text.starts_with("https://x.test/?a=1\r\n\r\nStuff’s summary"),
        "{text:?}"
    );
}

#[test]
fn body_starts_at_prose_when_the_blank_line_after_the_headers_is_missing() {
    let m = parse("From: a@b.test\nSubject: no separator\nthis line is the body\nand this\n");
    assert_eq!(m.subject.as_deref(), Some("no separator"));
    assert_eq!(
        m.text_body.as_deref(),
        Some("this line is the body\nand this\n")
    );
    // A stray line followed by more fields is a broken field, and the headers go on.
    let m = parse("Subject: x\nbroken line\nFrom: a@b.test\n\nbody\n");
    assert_eq!(m.text_body.as_deref(), Some("body\n"));
    assert_eq!(m.participants.len(), 1, "{:?}", m.participants);
}

#[test]
fn a_whitespace_only_first_line_does_not_void_the_header_section() {
    let m = parse(" \t\r\nFrom: a@b.test\r\nSubject: ws first\r\n\r\nthe body\r\n");
    assert_eq!(m.parse_error, None);
    assert_eq!(m.subject.as_deref(), Some("ws first"));
    assert_eq!(m.text_body.as_deref(), Some("the body\r\n"));
}

#[test]
fn a_body_part_without_a_header_block_keeps_its_text() {
    let m = parse(concat!(
        "Subject: parts\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n",
        "--B\r\nContent-Type: text/plain\r\n\r\nSection one\r\n",
        "--B\r\nI'm a section without headers\r\n\r\n",
        "--B\r\nContent-Type: text/plain\r\n\r\nSection two\r\n",
        "--B--\r\n",
    ));
    let text = m.text_body.unwrap_or_default();
    assert!(
        text.contains("Section one") && text.contains("I'm a section without headers"),
        "{text:?}"
    );
    assert!(text.contains("Section two"), "{text:?}");
    assert!(!text.contains("--B"), "{text:?}");
}

#[test]
fn a_boundary_parameter_folded_after_its_equals_sign_is_found() {
    let m = parse(concat!(
        "Subject: folded\r\nContent-Type: multipart/mixed; boundary=\r\n \"==x y==\"\r\n\r\n",
        "--==x y==\r\nContent-Type: text/plain\r\n\r\nhello\r\n",
        "--==x y==\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n\r\n%PDF\r\n",
        "--==x y==--\r\n",
    ));
    assert_eq!(m.text_body.as_deref(), Some("hello"));
    let names: Vec<_> = m.attachments.iter().map(|a| a.file_name.clone()).collect();
    assert_eq!(names, [Some("a.pdf".to_string())]);
}

#[test]
fn a_multipart_type_is_recognised_however_its_field_is_spelled_and_folded() {
    // Field names as mail-parser reads them (any case, blanks ignored), and the type on a
    // continuation line: the folded boundary parameter is still made readable.
    let m = parse(concat!(
        "Subject: spelled\r\ncontent-TYPE :\r\n Multipart/Mixed;\r\n boundary =\r\n \"b\"\r\n\r\n",
        "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n",
        "--b\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n\r\n%PDF\r\n",
        "--b--\r\n",
    ));
    assert_eq!(m.text_body.as_deref(), Some("hello"));
    assert_eq!(m.attachments.len(), 1);
}

#[test]
fn an_attached_message_typed_on_a_continuation_line_keeps_the_parts_after_it() {
    // The type of the attached message is on the field's second line, where mail-parser
    // reads it: its header block still ends at the boundary.
    let m = parse(concat!(
        "Subject: forwards\r\nContent-Type: multipart/mixed; boundary=\"OUT\"\r\n\r\n",
        "--OUT\r\nContent-Type: text/plain\r\n\r\nsee the two mails\r\n",
        "--OUT\r\nContent-Type:\r\n message/rfc822; name=one.eml\r\n",
        "Content-Disposition: attachment; filename=one.eml\r\n\r\n",
        "Subject: one\r\nContent-Type: multipart/alternative; boundary=IN\r\n",
        "--OUT\r\nContent-Type: application/pdf; name=two.pdf\r\n",
        "Content-Disposition: attachment; filename=two.pdf\r\n\r\n%PDF\r\n",
        "--OUT--\r\n",
    ));
    let names: Vec<_> = m
        .attachments
        .iter()
        .map(|a| a.file_name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["one.eml", "two.pdf"]);
}

#[test]
fn a_single_part_body_that_quotes_mime_headers_is_shown_as_sent() {
    // The boundary fixes are for MIME structure. In a text/plain message, mail-parser reads
    // no boundary, so a quoted folded parameter and lines that look like its delimiters are
    // the sender's text: neither unfolded nor cut.
    let body = concat!(
        "The header was:\r\n",
        "Content-Type: multipart/mixed; boundary =\r\n \"x\"\r\n\r\n",
        "--x\r\nContent-Type: text/plain\r\n--x\r\nend\r\n",
    );
    let m = parse(&format!(
        "Subject: quoting\r\nContent-Type: text/plain\r\n\r\n{body}"
    ));
    assert_eq!(m.text_body.as_deref(), Some(body));
}

#[test]
fn an_attached_message_whose_headers_run_into_the_boundary_keeps_the_parts_after_it() {
    let m = parse(concat!(
        "Subject: forwards\r\nContent-Type: multipart/mixed; boundary=\"OUT\"\r\n\r\n",
        "--OUT\r\nContent-Type: text/plain\r\n\r\nsee the three mails\r\n",
        "--OUT\r\nContent-Type: message/rfc822; name=one.eml\r\n",
        "Content-Disposition: attachment; filename=one.eml\r\n\r\n",
        "Subject: one\r\nContent-Type: multipart/alternative; boundary=IN\r\n",
        "--OUT\r\nContent-Type: message/rfc822; name=two.eml\r\n",
        "Content-Disposition: attachment; filename=two.eml\r\n\r\n",
        "Subject: two\r\n\r\nsecond body\r\n",
        "--OUT\r\nContent-Type: application/pdf; name=three.pdf\r\n",
        "Content-Disposition: attachment; filename=three.pdf\r\n\r\n%PDF\r\n",
        "--OUT--\r\n",
    ));
    let names: Vec<_> = m
        .attachments
        .iter()
        .map(|a| a.file_name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["one.eml", "two.eml", "three.pdf"]);
    assert_eq!(m.text_body.as_deref(), Some("see the three mails"));
}
