//! Mail addresses as Palisade keys them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not an address we can route.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    /// Missing `@`, empty local part or empty domain.
    #[error("address must look like local@domain")]
    Malformed,
    /// Longer than RFC 5321 allows.
    #[error("address is longer than 254 octets")]
    TooLong,
}

/// A normalized mailbox address: trimmed, angle brackets removed, domain lowercased.
///
/// The local part is lowercased too: case-sensitive local parts exist in theory, but two
/// users differing only by case would be a phishing gift, so we refuse to tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Address(String);

impl Address {
    /// Parses and normalizes an address.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let trimmed = input
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        if trimmed.len() > 254 {
            return Err(AddressError::TooLong);
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or(AddressError::Malformed)?;
        let domain = domain.trim_end_matches('.');
        let valid = !local.is_empty()
            && !domain.is_empty()
            && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            return Err(AddressError::Malformed);
        }
        Ok(Address(format!(
            "{}@{}",
            local.to_lowercase(),
            domain.to_lowercase()
        )))
    }

    /// The normalized text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Address {
    type Error = AddressError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Address::parse(&s)
    }
}

impl From<Address> for String {
    fn from(a: Address) -> Self {
        a.0
    }
}

/// `text` with every word that holds an `@` replaced by `<address>`: how error text from a
/// backend or a relay, which often quotes addresses, is written to the log.
pub fn without_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.contains('@') {
                "<address>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_and_brackets() {
        assert_eq!(
            Address::parse(" <Alice@Example.TEST.> ").map(|a| a.to_string()),
            Ok("alice@example.test".to_string())
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Address::parse("nobody"), Err(AddressError::Malformed));
        assert_eq!(Address::parse("@x"), Err(AddressError::Malformed));
        assert_eq!(Address::parse("a b@x"), Err(AddressError::Malformed));
    }

    #[test]
    fn log_text_loses_the_addresses_it_quotes() {
        let reply = "450 4.2.0 <bob@example.test>: Recipient address rejected: try later";
        assert_eq!(
            without_addresses(reply),
            "450 4.2.0 <address> Recipient address rejected: try later"
        );
        assert_eq!(
            without_addresses("address a@b: bad"),
            "address <address> bad"
        );
    }
}
