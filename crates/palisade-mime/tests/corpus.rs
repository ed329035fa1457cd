//! Parses the shared development corpus (real-world and deliberately broken mail).
//!
//! The corpus lives outside the repository: `PALISADE_CORPUS`, or `<workspace>/../shared/corpus`.
//! A missing corpus fails the test; a test that skips silently could never catch anything.

use std::collections::BTreeMap;
use std::path::PathBuf;

use palisade_mime::{ParseLimits, TrustBoundary, parse_message};
use palisade_model::{CryptoKind, MessageContent, ParticipantRole};
use sha2::{Digest, Sha256};

struct Entry {
    file: String,
    features: Vec<String>,
    sha256: String,
}

fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("PALISADE_CORPUS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
        PathBuf::from,
    );
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "corpus not found: {} has no MANIFEST.tsv; set PALISADE_CORPUS to the corpus directory",
        dir.display()
    );
    dir
}

fn manifest(dir: &std::path::Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("MANIFEST.tsv is readable");
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .expect("MANIFEST.tsv has a header")
        .split('\t')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("MANIFEST.tsv has no `{name}` column"))
    };
    let (file, features, sha256) = (col("file"), col("features"), col("sha256"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let get = |i: usize| cols.get(i).copied().unwrap_or_default();
            Entry {
                file: get(file).to_string(),
                features: get(features)
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_string)
                    .collect(),
                sha256: get(sha256).to_string(),
            }
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Header fields as a person would count them: unindented `name:` lines before the first blank line.
fn raw_field_count(raw: &[u8]) -> u32 {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_start_matches('\u{feff}');
    let mut count = 0;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        let mbox_line =
            i == 0 && line.starts_with("From ") && !line[5..].trim_start().starts_with(':');
        if !mbox_line && !line.starts_with([' ', '\t']) && line.contains(':') {
            count += 1;
        }
    }
    count
}

/// Every corpus file by path: manifest entry, raw bytes and what we parsed.
type Corpus = BTreeMap<String, (Entry, Vec<u8>, MessageContent)>;

/// Parses everything once; the individual checks below share the result.
fn parsed() -> &'static Corpus {
    static PARSED: std::sync::OnceLock<Corpus> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| {
        let dir = corpus_dir();
        let entries = manifest(&dir);
        assert!(
            entries.len() > 4000,
            "MANIFEST.tsv lists only {} files",
            entries.len()
        );
        entries
            .into_iter()
            .map(|entry| {
                let raw = std::fs::read(dir.join(&entry.file))
                    .unwrap_or_else(|e| panic!("{}: {e}", entry.file));
                assert_eq!(
                    hex(&Sha256::digest(&raw)),
                    entry.sha256,
                    "{} changed",
                    entry.file
                );
                let content = parse_message(&raw, &ParseLimits::default());
                (entry.file.clone(), (entry, raw, content))
            })
            .collect()
    })
}

fn get(name: &str) -> &'static MessageContent {
    let key = format!("tricky/{name}");
    &parsed()
        .get(&key)
        .unwrap_or_else(|| panic!("{key} is not in the corpus"))
        .2
}

fn with_feature(feature: &str) -> impl Iterator<Item = (&'static str, &'static MessageContent)> {
    parsed()
        .values()
        .filter(move |(e, _, _)| e.features.iter().any(|f| f == feature))
        .map(|(e, _, c)| (e.file.as_str(), c))
}

#[test]
fn every_message_parses_without_panicking() {
    let panicked: Vec<_> = parsed()
        .iter()
        .filter(|(_, (_, _, c))| {
            c.parse_error
                .as_deref()
                .is_some_and(|e| e.contains("panicked"))
        })
        .map(|(file, _)| file.as_str())
        .collect();
    // mail-parser's debug assertions are off in every profile (see the root Cargo.toml), so
    // no real message may reach the catch_unwind fallback.
    assert!(
        panicked.is_empty(),
        "unexpected parser panics: {panicked:?}"
    );
}

#[test]
fn ordinary_mail_is_fully_understood() {
    let ordinary: Vec<_> = parsed()
        .values()
        .filter(|(e, _, _)| e.file.starts_with("ordinary/"))
        .collect();
    let mut with_from_and_date = 0;
    for (entry, raw, c) in &ordinary {
        assert_eq!(c.parse_error, None, "{}", entry.file);
        assert!(
            c.text_body.is_some() || c.html_body.is_some(),
            "{} has no body",
            entry.file
        );
        // Catches a header parser that swallows the following field.
        assert_eq!(c.header_count, raw_field_count(raw), "{}", entry.file);
        if c.from().is_some() && c.date.is_some() {
            with_from_and_date += 1;
        }
    }
    // The few without are spam with `From:` left empty or dates like `Date:______`.
    assert!(
        with_from_and_date * 1000 >= ordinary.len() * 998,
        "{with_from_and_date}/{}",
        ordinary.len()
    );
}

#[test]
fn pgp_and_smime_features_are_detected() {
    // Tagged by a regex that also matched quoted or forwarded text, or certificate-only parts.
    let not_really = [
        "ordinary/sa_easy_ham__01128.48db2981ac933d672bcc5203a7063305.eml", // armor quoted with "> "
        "tricky/postal-mime__mimetorture.eml", // signed part inside message/rfc822
        "ordinary/sa_easy_ham__01542.ed72bf2cd81ccd4c076533fb0af004e5.eml", // signature in a bounced message
        "tricky/mimekit-mbox__content-length.mbox.txt_08.eml", // .p7c certificates only
        "tricky/mimekit-mbox__content-length.mbox.txt_16.eml", // encrypted inside message/rfc822
        "tricky/mimekit-mbox__content-length.mbox.txt_24.eml", // .p7s in multipart/mixed
    ];
    let expectations: [(&str, &[CryptoKind]); 5] = [
        ("pgp-mime-signed", &[CryptoKind::PgpSigned]),
        ("pgp-mime-encrypted", &[CryptoKind::PgpEncrypted]),
        ("pgp-inline-signed", &[CryptoKind::PgpInline]),
        ("smime-signed", &[CryptoKind::SmimeSigned]),
        (
            "smime-pkcs7-mime",
            &[CryptoKind::SmimeEncrypted, CryptoKind::SmimeSigned],
        ),
    ];
    for (feature, kinds) in expectations {
        let mut seen = 0;
        for (file, c) in with_feature(feature) {
            seen += 1;
            let found = c.privacy.crypto.iter().any(|k| kinds.contains(k));
            assert_eq!(
                found,
                !not_really.contains(&file),
                "{file} ({feature}): {:?}",
                c.privacy.crypto
            );
        }
        assert!(seen > 0, "no file tagged {feature}");
    }
}

#[test]
fn attachment_features_produce_attachments() {
    for (file, c) in with_feature("pgp-mime-signed")
        .filter(|(_, c)| c.privacy.crypto.contains(&CryptoKind::PgpSigned))
    {
        assert!(
            c.attachments
                .iter()
                .any(|a| a.content_type == "application/pgp-signature"),
            "{file}: {:?}",
            c.attachments
        );
    }
    for (file, c) in with_feature("tnef") {
        assert!(
            c.attachments
                .iter()
                .any(|a| a.content_type == "application/ms-tnef"),
            "{file}"
        );
    }
    for (file, c) in with_feature("report/dsn") {
        // A report whose boundary parameter is broken is one text body, as mail clients show it.
        let unsplit = c.structure.len() == 1 && c.text_body.is_some();
        assert!(!c.attachments.is_empty() || unsplit, "{file}");
    }
    // Four "message-rfc822" hits are mailing-list posts that merely mention the type.
    let forwarded = with_feature("message-rfc822")
        .filter(|(_, c)| {
            c.attachments
                .iter()
                .any(|a| a.content_type == "message/rfc822")
        })
        .count();
    assert!(
        forwarded >= 40,
        "only {forwarded} message/rfc822 attachments"
    );
}

#[test]
fn deep_nesting_in_the_corpus_stays_within_the_default_limit() {
    for (file, c) in with_feature("deep-nesting") {
        assert!(!c.privacy.mime_depth_exceeded, "{file}");
    }
    let (_, raw, _) = &parsed()["tricky/postal-mime__mimetorture.eml"];
    let tight = parse_message(
        raw,
        &ParseLimits {
            max_mime_depth: 1,
            ..ParseLimits::default()
        },
    );
    assert!(tight.privacy.mime_depth_exceeded);
}

#[test]
fn attachment_file_names_are_decoded() {
    let rfc2231 = get("stalwart__legacy_045.eml");
    assert_eq!(rfc2231.attachments.len(), 1);
    assert_eq!(
        rfc2231.attachments[0].file_name.as_deref(),
        Some("HasenundFrösche.txt")
    );
    assert_eq!(rfc2231.attachments[0].content_type, "text/plain");

    let nodemailer = get("nodemailer-mailparser__nodemailer.eml");
    let nyan = nodemailer
        .attachments
        .iter()
        .find(|a| a.content_id.as_deref() == Some("nyan@example.com"))
        .expect("the nyan cat image is listed");
    assert_eq!(nyan.file_name.as_deref(), Some("nyan cat ✔.gif"));
    assert_eq!(nyan.content_type, "image/gif");
    assert!(nyan.inline);
    let notes = nodemailer
        .attachments
        .iter()
        .find(|a| a.file_name.as_deref() == Some("notes.txt"));
    assert!(notes.is_some_and(|a| !a.inline));

    let word = get("enmime__testdata_mail_attachment-application.eml");
    assert_eq!(word.attachments[0].file_name.as_deref(), Some("some.doc"));
    assert_eq!(word.attachments[0].content_type, "application/msword");
}

#[test]
fn non_utf8_charsets_are_decoded() {
    assert_eq!(
        get("stalwart__legacy_012.eml").subject.as_deref(),
        Some("Die Hasen und die Frösche (Microsoft Outlook 00)") // Windows-1252
    );
    let japanese = get("mimekit__messages_japanese.eml"); // ISO-2022-JP
    assert_eq!(
        japanese.subject.as_deref(),
        Some("日本語メールテスト (testing Japanese emails)")
    );
    assert!(
        japanese
            .text_body
            .as_deref()
            .is_some_and(|t| t.contains("日本語が"))
    );
    let to = get("stalwart__legacy_045.eml")
        .participants
        .iter()
        .find(|p| {
            p.role == ParticipantRole::To && p.address.as_deref() == Some("mueller@example.com")
        });
    assert_eq!(to.and_then(|p| p.name.as_deref()), Some("Heinz Müller"));
}

#[test]
fn threading_ids() {
    let m = get("mimekit__messages_issue358.eml");
    assert_eq!(
        m.message_id_header.as_deref(),
        Some("AM4PR01MB1444B3F21AE7DA9C8128C28FF7290@AM4PR01MB1444.eurprd01.prod.exchangelabs.com")
    );
    let parent =
        "5185e377-81c5-4361-91ba-11d42f4c5cc9@AM5EUR02FT056.eop-EUR02.prod.protection.outlook.com";
    assert_eq!(m.in_reply_to, vec![parent]);
    assert_eq!(
        m.references,
        vec![
            "AM4PR01MB1444920F2AF5B6F4856FEA13F7290@AM4PR01MB1444.eurprd01.prod.exchangelabs.com",
            parent
        ]
    );
    let usenet = get("mimekit__messages_epilogue.eml");
    assert_eq!(usenet.references.len(), 4);
    assert_eq!(usenet.references[0], "3ohapq$h3b@gandalf.rutgers.edu");
}

#[test]
fn privacy_spot_checks() {
    // Read as Gmail would read its own mail: its authserv-id, and its relays (an internal
    // 10.x hop above mx.google.com, where the mail entered).
    let key = "tricky/nodemailer-mailparser__nodemailer.eml";
    let raw = &parsed().get(key).unwrap_or_else(|| panic!("{key}")).1;
    let m = &parse_message(
        raw,
        &trusting("mx.google.com", &["10.0.0.0/8", "mx.google.com"]),
    );
    assert!(m.privacy.dkim_signature);
    assert_eq!(m.privacy.transport.len(), 2, "{:?}", m.privacy.transport);
    assert_eq!(
        m.privacy.untrusted_headers, 1,
        "ZoneMTA's hop is not Gmail's"
    );
    assert_eq!(
        get(key.trim_start_matches("tricky/")).privacy.auth_results,
        None
    );
    let auth = m.privacy.auth_results.clone().unwrap_or_default();
    assert_eq!(
        (
            auth.spf.as_deref(),
            auth.dkim.as_deref(),
            auth.dmarc.as_deref()
        ),
        (Some("pass"), Some("pass"), Some("fail"))
    );
    assert!(
        m.privacy
            .transport
            .iter()
            .any(|h| h.by.as_deref() == Some("mx.google.com") && h.tls)
    );

    assert!(
        get("autocrypt-spec__example-simple-autocrypt.eml")
            .privacy
            .autocrypt
    );
    // multipart/signed without a `protocol` parameter: the signature part's type decides.
    assert_eq!(
        get("enmime__testdata_mail_mime-signed.eml").privacy.crypto,
        vec![CryptoKind::PgpSigned]
    );
    // `boundary=` folded onto the next line defeats mail-parser; the raw header still names S/MIME.
    assert_eq!(
        get("mimekit-mbox__content-length.mbox.txt_12.eml")
            .privacy
            .crypto,
        vec![CryptoKind::SmimeSigned]
    );
    let listed = parsed()
        .values()
        .filter(|(_, _, c)| c.privacy.list_id.is_some())
        .count();
    assert!(listed > 1900, "only {listed} messages with List-Id");
}

#[test]
fn headerless_files_report_a_parse_error() {
    for name in ["cpython__msg_19.eml", "enmime__testdata_mail_erroneous.eml"] {
        assert!(get(name).parse_error.is_some(), "{name}");
    }
    // A BOM before the first header is not "no headers".
    let bom = get("mimekit__messages_feedback-report.eml");
    assert_eq!(bom.parse_error, None);
    assert_eq!(
        bom.from().and_then(|p| p.address.as_deref()),
        Some("abusedesk@example.com")
    );
}

/// Every corpus message, as our MTA would hand it over (its own entry hop and results on top),
/// dressed with what a sender can add: results under another or a look-alike authserv-id, a
/// hop claiming TLS and a spam verdict. The privacy index and its factors do not move, and no
/// sender is authenticated (the social rules and Autocrypt stay closed). The
/// corpus's own Received and Authentication-Results are the sender's side too.
#[test]
fn forged_headers_never_move_the_privacy_index_on_the_corpus() {
    let limits = trusting("mx.palisade.test", &["mx.palisade.test", "10.0.0.0/8"]);
    let ours: &[u8] = b"Received: from relay.sender.test (relay.sender.test [203.0.113.9])\r\n\
        \tby mx.palisade.test (Postfix) with ESMTPS id 1\r\n\
        \t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384); Mon, 2 Mar 2026 10:00:00 +0000\r\n\
        Authentication-Results: mx.palisade.test; spf=none smtp.mailfrom=sender.test\r\n";
    let forged: &[u8] = b"Authentication-Results: sender.test; dkim=pass; spf=pass; dmarc=pass\r\n\
        Authentication-Results: mx.palisade.test.sender.test; dkim=pass; spf=pass; dmarc=pass\r\n\
        Received: from a.sender.test by mx.palisade.test with ESMTPS id 0\r\n\
        \t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384); Mon, 2 Mar 2026 09:59:00 +0000\r\n\
        X-Spam-Flag: NO\r\n";
    let mut moved = Vec::new();
    for (file, (_, raw, _)) in parsed() {
        let honest = parse_message(&[ours, raw].concat(), &limits).privacy;
        let dressed = parse_message(&[ours, forged, raw].concat(), &limits).privacy;
        if dressed.privacy_factors() != honest.privacy_factors()
            || dressed.authenticated_sender.is_some()
            || honest.authenticated_sender.is_some()
            || dressed.untrusted_headers < honest.untrusted_headers + 3
        {
            moved.push(file.as_str());
        }
    }
    assert!(moved.is_empty(), "{} moved: {moved:?}", moved.len());
}

/// Parse limits believing `authserv_id` and `relays` as our own hosts.
fn trusting(authserv_id: &str, relays: &[&str]) -> ParseLimits {
    ParseLimits {
        trust: TrustBoundary::parse(authserv_id, relays).expect("trust boundary"),
        ..ParseLimits::default()
    }
}
