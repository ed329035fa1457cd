//! Outgoing mail: composing a draft into RFC 5322 bytes with lettre, and handing it to the
//! configured relay (Postfix) over SMTP submission.

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use palisade_config::{SubmissionConfig, SubmissionTls};
use palisade_model::{Address, AutocryptHeader, Draft, DraftAttachment, Message, OwnAutocrypt};
use std::time::SystemTime;

/// Why a message could not be composed or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The draft cannot become a valid message (bad address, no recipients).
    #[error("{0}")]
    Invalid(String),
    /// The relay refused the message for good.
    #[error("relay refused the message: {0}")]
    Refused(String),
    /// The relay could not be reached or failed temporarily.
    #[error("relay unavailable: {0}")]
    Unavailable(String),
}

/// A composed message: what goes on the wire, and the copy kept in the sender's mailbox
/// (which alone keeps the Bcc header).
pub struct Composed {
    /// Bytes handed to the relay.
    pub wire: Vec<u8>,
    /// Bytes stored as the sent copy.
    pub sent_copy: Vec<u8>,
    /// The generated Message-ID, without angle brackets.
    pub message_id: String,
    /// Envelope recipients: To, Cc and Bcc.
    pub recipients: Vec<Address>,
}

/// What a reply or forward refers to.
#[derive(Default)]
pub struct Context<'a> {
    /// The message replied to, for In-Reply-To and References.
    pub reply_to: Option<&'a Message>,
    /// The message forwarded and its raw bytes, attached as `message/rfc822`.
    pub forward: Option<(&'a Message, Vec<u8>)>,
    /// Files uploaded to the draft, with their bytes, attached in this order.
    pub attachments: &'a [(DraftAttachment, Vec<u8>)],
    /// The sender's own Autocrypt key, announced in an `Autocrypt:` header when set.
    pub autocrypt: Option<&'a OwnAutocrypt>,
}

/// The `Autocrypt:` header as lettre writes it: already folded, since lettre folds only at
/// spaces and the key has none.
#[derive(Debug, Clone)]
struct AutocryptField(AutocryptHeader);

impl Header for AutocryptField {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Autocrypt")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutocryptField(AutocryptHeader::parse(s)?))
    }

    fn display(&self) -> HeaderValue {
        // Safe to pass pre-encoded: an address has no whitespace or control characters and
        // a checked key is canonical base64, so nothing can end the field early.
        let folded = self.0.folded_value();
        HeaderValue::dangerous_new_pre_encoded(Self::name(), folded.clone(), folded)
    }
}

fn mailbox(a: &Address) -> Result<Mailbox, MailError> {
    a.as_str()
        .parse()
        .map_err(|e| MailError::Invalid(format!("address {a}: {e}")))
}

fn angle(id: &str) -> String {
    format!("<{id}>")
}

/// Turns a draft into a message from `from`, threaded after `ctx.reply_to` if given.
pub fn compose(
    draft: &Draft,
    from: &Address,
    ctx: &Context<'_>,
    message_id_domain: &str,
) -> Result<Composed, MailError> {
    let recipients: Vec<Address> = draft
        .to
        .iter()
        .chain(&draft.cc)
        .chain(&draft.bcc)
        .cloned()
        .collect();
    if recipients.is_empty() {
        return Err(MailError::Invalid(
            "a message needs at least one recipient".into(),
        ));
    }
    let message_id = format!("{}@{message_id_domain}", uuid::Uuid::new_v4());
    let mut builder = lettre::Message::builder()
        .from(mailbox(from)?)
        .subject(draft.subject.clone())
        .message_id(Some(angle(&message_id)))
        .date(SystemTime::now())
        .user_agent("Palisade".into());
    if let Some(own) = ctx.autocrypt {
        builder = builder.header(AutocryptField(own.header(from)));
    }
    for a in &draft.to {
        builder = builder.to(mailbox(a)?);
    }
    for a in &draft.cc {
        builder = builder.cc(mailbox(a)?);
    }
    for a in &draft.bcc {
        builder = builder.bcc(mailbox(a)?);
    }
    if let Some(parent) = ctx.reply_to
        && let Some(parent_id) = &parent.content.message_id_header
    {
        let mut refs: Vec<String> = parent.content.references.iter().map(|r| angle(r)).collect();
        refs.push(angle(parent_id));
        builder = builder
            .in_reply_to(angle(parent_id))
            .references(refs.join(" "));
    }
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(draft.body.clone());
    let mut files = Vec::new();
    if let Some((original, raw)) = &ctx.forward {
        let name = original
            .content
            .subject
            .as_deref()
            .unwrap_or("message")
            .chars()
            .filter(|c| !c.is_control() && *c != '/' && *c != '\\')
            .take(60)
            .collect::<String>();
        let rfc822 =
            ContentType::parse("message/rfc822").map_err(|e| MailError::Invalid(e.to_string()))?;
        files.push(Attachment::new(format!("{name}.eml")).body(raw.clone(), rfc822));
    }
    for (file, data) in ctx.attachments {
        let kind = ContentType::parse(&file.content_type).map_err(|e| {
            MailError::Invalid(format!(
                "attachment {:?}: content type {:?}: {e}",
                file.file_name, file.content_type
            ))
        })?;
        // Base64 whatever the type: a text file sent as 7bit or quoted-printable would have
        // its line endings rewritten on the way, and the recipient must get the exact bytes.
        let body = Body::new_with_encoding(data.clone(), ContentTransferEncoding::Base64).map_err(
            |_| MailError::Invalid(format!("attachment {:?} cannot be encoded", file.file_name)),
        )?;
        files.push(Attachment::new(file.file_name.clone()).body(body, kind));
    }
    let build = |b: lettre::message::MessageBuilder| -> Result<lettre::Message, MailError> {
        let built = if files.is_empty() {
            b.singlepart(text.clone())
        } else {
            let mixed = files
                .iter()
                .fold(MultiPart::mixed().singlepart(text.clone()), |m, part| {
                    m.singlepart(part.clone())
                });
            b.multipart(mixed)
        };
        built.map_err(|e| MailError::Invalid(e.to_string()))
    };
    let wire = build(builder.clone())?.formatted();
    let sent_copy = build(builder.keep_bcc())?.formatted();
    Ok(Composed {
        wire,
        sent_copy,
        message_id,
        recipients,
    })
}

/// Submits composed messages to the relay.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// Domain of generated Message-IDs.
    pub message_id_domain: String,
}

impl Mailer {
    /// A mailer for the configured relay; connections are made lazily, per send.
    pub fn new(config: &SubmissionConfig) -> Result<Self, MailError> {
        let builder = match config.tls {
            SubmissionTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
            }
            SubmissionTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                    .map_err(|e| MailError::Invalid(e.to_string()))?
            }
            SubmissionTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)
                .map_err(|e| MailError::Invalid(e.to_string()))?,
        };
        let mut builder = builder
            .port(config.port)
            .timeout(Some(std::time::Duration::from_secs(30)));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Mailer {
            transport: builder.build(),
            message_id_domain: config.message_id_domain.clone(),
        })
    }

    /// Hands `composed` to the relay with `from` as the envelope sender.
    pub async fn send(&self, from: &Address, composed: &Composed) -> Result<(), MailError> {
        let parse = |a: &Address| {
            a.as_str()
                .parse::<lettre::Address>()
                .map_err(|e| MailError::Invalid(format!("address {a}: {e}")))
        };
        let to = composed
            .recipients
            .iter()
            .map(parse)
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = lettre::address::Envelope::new(Some(parse(from)?), to)
            .map_err(|e| MailError::Invalid(e.to_string()))?;
        match self.transport.send_raw(&envelope, &composed.wire).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Refused(e.to_string())),
            Err(e) => Err(MailError::Unavailable(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use palisade_model::{DraftId, UserId};

    fn addr(s: &str) -> Address {
        Address::parse(s).expect("address")
    }

    #[test]
    fn bcc_is_kept_only_in_the_sent_copy_and_replies_thread() {
        let draft = Draft {
            id: DraftId::new_random(),
            user_id: UserId::new_random(),
            from: None,
            to: vec![addr("ann@example.test")],
            cc: vec![],
            bcc: vec![addr("hidden@example.test")],
            subject: "Re: plans".into(),
            body: "sounds good".into(),
            in_reply_to: None,
            forward_of: None,
            updated_at: Utc::now(),
        };
        let composed = compose(
            &draft,
            &addr("me@example.test"),
            &Context::default(),
            "x.test",
        )
        .expect("compose");
        let wire = String::from_utf8_lossy(&composed.wire);
        let copy = String::from_utf8_lossy(&composed.sent_copy);
        assert!(!wire.contains("hidden@example.test"));
        assert!(copy.contains("hidden@example.test"));
        assert_eq!(composed.recipients.len(), 2);
        assert!(wire.contains(&format!("Message-ID: <{}>", composed.message_id)));
    }

    #[test]
    fn a_user_with_a_key_announces_it_in_one_folded_autocrypt_header() {
        let draft = Draft {
            id: DraftId::new_random(),
            user_id: UserId::new_random(),
            from: None,
            to: vec![addr("bob@example.net")],
            cc: vec![],
            bcc: vec![],
            subject: "my key".into(),
            body: "hello".into(),
            in_reply_to: None,
            forward_of: None,
            updated_at: Utc::now(),
        };
        let own = OwnAutocrypt {
            key: palisade_model::AutocryptKey::parse(include_str!(
                "../../crates/palisade-model/testdata/alice-example-test.key.b64"
            ))
            .expect("key"),
            prefer_encrypt: palisade_model::PreferEncrypt::Mutual,
        };
        let from = addr("alice@example.test");
        let composed = compose(
            &draft,
            &from,
            &Context {
                autocrypt: Some(&own),
                ..Context::default()
            },
            "x.test",
        )
        .expect("compose");
        for bytes in [&composed.wire, &composed.sent_copy] {
            let text = String::from_utf8_lossy(bytes);
            let head = text.split("\r\n\r\n").next().unwrap_or_default();
            assert_eq!(head.matches("Autocrypt: ").count(), 1, "{head}");
            assert!(head.lines().all(|l| l.len() <= 78), "{head}");
            // Our own parser reads back the header it wrote, with the key's fingerprint.
            let parsed =
                palisade_mime::parse_message(bytes, &palisade_mime::ParseLimits::default());
            let header = parsed.autocrypt.expect("Autocrypt header read back");
            assert_eq!(header.addr, from);
            assert_eq!(header.key, own.key);
            assert_eq!(header.prefer_encrypt, palisade_model::PreferEncrypt::Mutual);
        }
        // Without a key, no header.
        let plain = compose(&draft, &from, &Context::default(), "x.test").expect("compose");
        assert!(!String::from_utf8_lossy(&plain.wire).contains("Autocrypt:"));
    }

    #[test]
    fn draft_files_are_attached_in_order_to_both_copies() {
        let draft = Draft {
            id: DraftId::new_random(),
            user_id: UserId::new_random(),
            from: None,
            to: vec![addr("ann@example.test")],
            cc: vec![],
            bcc: vec![],
            subject: "files".into(),
            body: "two files".into(),
            in_reply_to: None,
            forward_of: None,
            updated_at: Utc::now(),
        };
        let file = |name: &str, kind: &str| DraftAttachment {
            id: palisade_model::DraftAttachmentId::new_random(),
            user_id: draft.user_id,
            draft_id: draft.id,
            file_name: name.into(),
            content_type: kind.into(),
            size: 0,
            created_at: Utc::now(),
        };
        let files = vec![
            (
                file("first.bin", "application/octet-stream"),
                vec![0u8, 1, 2, 255],
            ),
            (file("second.txt", "text/plain"), b"plain\nwords\n".to_vec()),
        ];
        let composed = compose(
            &draft,
            &addr("me@example.test"),
            &Context {
                attachments: &files,
                ..Context::default()
            },
            "x.test",
        )
        .expect("compose");
        for bytes in [&composed.wire, &composed.sent_copy] {
            use mail_parser::MimeHeaders;
            let parsed = mail_parser::MessageParser::default()
                .parse(bytes.as_slice())
                .expect("parses");
            let names: Vec<_> = parsed
                .attachments()
                .map(|a| a.attachment_name().unwrap_or_default().to_string())
                .collect();
            assert_eq!(names, ["first.bin", "second.txt"]);
            let contents: Vec<_> = parsed
                .attachments()
                .map(|a| a.contents().to_vec())
                .collect();
            assert_eq!(contents, [files[0].1.clone(), files[1].1.clone()]);
            assert_eq!(
                parsed.body_text(0).as_deref().map(str::trim),
                Some("two files")
            );
        }
    }
}
