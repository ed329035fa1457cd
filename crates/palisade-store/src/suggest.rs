//! Contact suggestions for recipients being typed: what a prefix matches, the same on every
//! backend.

use palisade_model::{Address, Contact, ContactId};
use std::collections::BTreeMap;

/// Most characters of a prefix; longer ones match nothing a name word or address would.
pub const MAX_PREFIX_CHARS: usize = 100;

/// One address of a contact that a prefix matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactMatch {
    /// The contact.
    pub contact_id: ContactId,
    /// The contact's name, when it has one.
    pub name: Option<String>,
    /// The address to suggest.
    pub address: Address,
}

/// The form a prefix is compared in: trimmed and lowercased, like the terms.
pub fn normalize_prefix(prefix: &str) -> String {
    prefix.trim().to_lowercase()
}

/// The terms a contact is found by, each with the address it suggests: every word of its
/// name (lowercased, split at anything not a letter or digit) for each of its addresses,
/// and each address itself, lowercased. A prefix of an address's local part is a prefix of
/// the whole address, so the address term covers both.
pub fn contact_terms(name: Option<&str>, addresses: &[Address]) -> Vec<(String, String)> {
    let words: Vec<String> = name
        .unwrap_or_default()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut terms = Vec::new();
    for address in addresses {
        let address = address.as_str().to_string();
        terms.push((address.to_lowercase(), address.clone()));
        for word in &words {
            terms.push((word.clone(), address.clone()));
        }
    }
    terms.sort();
    terms.dedup();
    terms
}

/// The order suggestions come in on every backend: by the first term that matched, then
/// contact id (as text), then address.
pub(crate) type Rank = (String, String, String);

/// Collects the matches of `prefix` (normalized) among contacts, best first, at most
/// `limit`; for backends that scan the address book rather than keep a term index.
#[derive(Default)]
pub(crate) struct Matches {
    found: BTreeMap<(String, String), (String, ContactMatch)>,
}

impl Matches {
    /// Adds the matching addresses of `contact`.
    pub(crate) fn offer(&mut self, prefix: &str, contact: &Contact) {
        for (term, address) in contact_terms(contact.name.as_deref(), &contact.addresses) {
            if !term.starts_with(prefix) {
                continue;
            }
            let Ok(parsed) = Address::parse(&address) else {
                continue;
            };
            let key = (contact.id.to_string(), address);
            let entry = self.found.entry(key).or_insert_with(|| {
                (
                    term.clone(),
                    ContactMatch {
                        contact_id: contact.id,
                        name: contact.name.clone(),
                        address: parsed,
                    },
                )
            });
            if term < entry.0 {
                entry.0 = term;
            }
        }
    }

    /// The best `limit` matches, in [`Rank`] order.
    pub(crate) fn best(self, limit: usize) -> Vec<ContactMatch> {
        let mut ranked: Vec<(Rank, ContactMatch)> = self
            .found
            .into_iter()
            .map(|((id, address), (term, m))| ((term, id, address), m))
            .collect();
        ranked.sort_by(|a, b| a.0.cmp(&b.0));
        ranked.into_iter().take(limit).map(|(_, m)| m).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_name_words_and_addresses_lowercased() {
        let a = Address::parse("Ann.Lee@Example.test").expect("address");
        let terms = contact_terms(Some("Ann-Marie  LEE"), std::slice::from_ref(&a));
        let words: Vec<&str> = terms.iter().map(|(t, _)| t.as_str()).collect();
        assert!(words.contains(&"ann") && words.contains(&"marie") && words.contains(&"lee"));
        assert!(words.contains(&a.as_str().to_lowercase().as_str()));
        assert!(terms.iter().all(|(_, addr)| addr == a.as_str()));
    }
}
