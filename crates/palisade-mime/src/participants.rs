//! Address headers to participants.

use mail_parser::{Header, HeaderName, HeaderValue};
use palisade_model::{Participant, ParticipantRole};

/// Collects everyone named in From, Sender, Reply-To, To, Cc and Bcc, in header order.
///
/// Every occurrence of a header counts: obsolete syntax allows repeated To/Cc, and hiding the
/// second one would hide a recipient from the user.
pub(crate) fn participants(headers: &[Header<'_>]) -> Vec<Participant> {
    let mut out = Vec::new();
    for header in headers {
        let Some(role) = role_of(&header.name) else {
            continue;
        };
        let HeaderValue::Address(address) = &header.value else {
            continue;
        };
        // Groups are flattened: the group name says nothing about who reads the mail.
        for addr in address.iter() {
            let name = clean(addr.name());
            let address = clean(addr.address());
            if name.is_some() || address.is_some() {
                out.push(Participant {
                    role,
                    name,
                    address,
                });
            }
        }
    }
    out
}

fn role_of(name: &HeaderName<'_>) -> Option<ParticipantRole> {
    Some(match name {
        HeaderName::From => ParticipantRole::From,
        HeaderName::Sender => ParticipantRole::Sender,
        HeaderName::ReplyTo => ParticipantRole::ReplyTo,
        HeaderName::To => ParticipantRole::To,
        HeaderName::Cc => ParticipantRole::Cc,
        HeaderName::Bcc => ParticipantRole::Bcc,
        _ => return None,
    })
}

fn clean(value: Option<&str>) -> Option<String> {
    let trimmed = value?.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}
