//! Address headers to participants, read from the raw header section.
//!
//! mail-parser 0.11 cuts a quoted local part at a parenthesis (`"john(x)doe"@x`), keeps an
//! obsolete source route as the address, and never sees a field whose name is folded before
//! its colon; so the address lists are parsed here, leniently, as mail clients read them.

use std::borrow::Cow;

use palisade_model::{Participant, ParticipantRole};

use crate::headers::{self, Headers};

/// Most participants kept per message, besides the `From` mailboxes.
const MAX_PARTICIPANTS: usize = 1000;
/// Most `From` mailboxes kept; each is a claimed author the reader must be able to see.
const MAX_FROM: usize = 100;
/// Longest display name or address kept, in bytes.
const MAX_PART_BYTES: usize = 1024;

/// Everyone named in the address fields, and whether authorship is ambiguous.
pub(crate) struct People {
    /// Everyone named in From, Sender, Reply-To, To, Cc and Bcc, in header order.
    pub list: Vec<Participant>,
    /// More than one `From` field, or one naming several mailboxes.
    pub multiple_from: bool,
}

/// Collects everyone named in From, Sender, Reply-To, To, Cc and Bcc, in header order.
///
/// Every occurrence of a field counts: obsolete syntax allows repeated fields, and hiding the
/// second one would hide a recipient, or a second author, from the user.
pub(crate) fn participants(headers: &Headers) -> People {
    let mut out = Vec::new();
    let (mut from, mut others) = (0, 0);
    let mut from_fields = 0;
    for field in &headers.fields {
        let Some(role) = role_of(&field.name) else {
            continue;
        };
        if role == ParticipantRole::From {
            from_fields += 1;
        }
        let text = headers.decode_8bit(&field.value);
        for mailbox in mailboxes(&text) {
            let count = if role == ParticipantRole::From {
                &mut from
            } else {
                &mut others
            };
            let limit = if role == ParticipantRole::From {
                MAX_FROM
            } else {
                MAX_PARTICIPANTS
            };
            if *count >= limit {
                break;
            }
            *count += 1;
            out.push(Participant {
                role,
                name: mailbox.name,
                address: mailbox.address,
            });
        }
    }
    People {
        list: out,
        // With one From field, the From mailboxes kept are all that field's, up to MAX_FROM.
        multiple_from: from_fields > 1 || from > 1,
    }
}

fn role_of(name: &str) -> Option<ParticipantRole> {
    ROLES
        .iter()
        .find(|(field, _)| name.eq_ignore_ascii_case(field))
        .map(|&(_, role)| role)
}

/// The address fields and the role each gives the people it names.
pub(crate) const ROLES: &[(&str, ParticipantRole)] = &[
    ("from", ParticipantRole::From),
    ("sender", ParticipantRole::Sender),
    ("reply-to", ParticipantRole::ReplyTo),
    ("to", ParticipantRole::To),
    ("cc", ParticipantRole::Cc),
    ("bcc", ParticipantRole::Bcc),
];

/// One mailbox of an address list.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Mailbox {
    /// Display name, decoded.
    pub name: Option<String>,
    /// `local@domain`, without route or comments.
    pub address: Option<String>,
}

/// One lexical token of an address list. Most borrow the field's text: a message's address
/// fields are read on every delivery, and a token needs its own copy only when unescaping
/// changed it.
#[derive(Debug)]
enum Token<'a> {
    /// A run of ordinary characters (atoms, dots, `@`), and whether whitespace preceded it.
    Word(&'a str, bool),
    /// A quoted string's content, unescaped, and whether whitespace preceded it.
    Quoted(Cow<'a, str>, bool),
    /// A comment's content, nested comments flattened.
    Comment(Cow<'a, str>),
    /// The inside of `<...>`.
    Angle(&'a str),
    /// `,` `:` or `;` outside quotes, comments and angle brackets.
    Special(char),
}

/// Splits an address-list value into tokens (RFC 5322 3.2 lexical rules, leniently).
fn tokens(text: &str) -> Vec<Token<'_>> {
    // About one token per eight bytes in address fields: most need no growing.
    let mut out = Vec::with_capacity(text.len() / 8 + 1);
    let mut chars = text.char_indices().peekable();
    let mut spaced = true;
    while let Some((at, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                spaced = true;
                continue;
            }
            '"' => {
                let start = at + 1;
                let mut end = text.len();
                let mut escaped = false;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '"' => {
                            end = i;
                            break;
                        }
                        '\\' => {
                            escaped = true;
                            chars.next();
                        }
                        _ => {}
                    }
                }
                let content = &text[start..end];
                let content = if escaped {
                    Cow::Owned(unescape(content, &[]))
                } else {
                    Cow::Borrowed(content)
                };
                out.push(Token::Quoted(content, spaced));
            }
            '(' => {
                let start = at + 1;
                let mut end = text.len();
                let mut depth = 1usize;
                // Nested parentheses and escapes make the content differ from the text.
                let mut plain = true;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '(' => {
                            depth += 1;
                            plain = false;
                        }
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = i;
                                break;
                            }
                            plain = false;
                        }
                        '\\' => {
                            plain = false;
                            chars.next();
                        }
                        _ => {}
                    }
                }
                let content = &text[start..end];
                out.push(Token::Comment(if plain {
                    Cow::Borrowed(content)
                } else {
                    Cow::Owned(unescape(content, &['(', ')']))
                }));
            }
            '<' => {
                let start = at + 1;
                let mut end = text.len();
                let mut quoted = false;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '>' if !quoted => {
                            end = i;
                            break;
                        }
                        '"' => quoted = !quoted,
                        '\\' if quoted => {
                            chars.next();
                        }
                        _ => {}
                    }
                }
                out.push(Token::Angle(&text[start..end]));
            }
            ',' | ':' | ';' => out.push(Token::Special(c)),
            // A stray closing bracket carries nothing.
            '>' | ')' => {}
            _ => {
                let mut end = text.len();
                while let Some(&(i, n)) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '"' | '(' | '<' | '>' | ',' | ':' | ';') {
                        end = i;
                        break;
                    }
                    chars.next();
                }
                out.push(Token::Word(&text[at..end], spaced));
            }
        }
        spaced = false;
    }
    out
}

/// `text` with its backslash escapes resolved and the unescaped `dropped` characters left
/// out: a quoted string drops none, a comment its nested parentheses (an escaped one stays).
fn unescape(text: &str, dropped: &[char]) -> String {
    let mut s = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => s.extend(chars.next()),
            c if dropped.contains(&c) => {}
            c => s.push(c),
        }
    }
    s
}

/// The mailboxes of an address-list value, groups flattened.
pub(crate) fn mailboxes(text: &str) -> impl Iterator<Item = Mailbox> + '_ {
    let tokens = tokens(text);
    let mut items: Vec<Vec<Token>> = vec![Vec::new()];
    for token in tokens {
        match token {
            Token::Special(',' | ';') => items.push(Vec::new()),
            // A group's name says nothing about who reads the mail.
            Token::Special(_) => {
                if let Some(current) = items.last_mut() {
                    current.clear();
                }
            }
            other => {
                if let Some(current) = items.last_mut() {
                    current.push(other);
                }
            }
        }
    }
    items
        .into_iter()
        .flat_map(split_at_angles)
        .filter_map(mailbox)
}

/// Splits `A <a@x> B <b@x>` (a missing comma) into one item per angle address, so a second
/// mailbox, often a second author, is never hidden inside the first.
fn split_at_angles(item: Vec<Token<'_>>) -> Vec<Vec<Token<'_>>> {
    let angles = item.iter().filter(|t| matches!(t, Token::Angle(_))).count();
    if angles < 2 {
        return vec![item];
    }
    let mut out = vec![Vec::new()];
    let mut seen = 0;
    for token in item {
        let is_angle = matches!(token, Token::Angle(_));
        if let Some(current) = out.last_mut() {
            current.push(token);
        }
        if is_angle {
            seen += 1;
            if seen < angles {
                out.push(Vec::new());
            }
        }
    }
    out
}

fn mailbox(item: Vec<Token<'_>>) -> Option<Mailbox> {
    let comment = || {
        item.iter().find_map(|t| match t {
            Token::Comment(c) if !c.trim().is_empty() => Some(c.as_ref()),
            _ => None,
        })
    };
    let (name, address) = match item.iter().position(|t| matches!(t, Token::Angle(_))) {
        Some(angle) => {
            let Token::Angle(inner) = &item[angle] else {
                return None;
            };
            let before = phrase(&item[..angle]);
            let name = if before.is_empty() {
                phrase(&item[angle + 1..])
            } else {
                before
            };
            let name = if name.is_empty() {
                comment().unwrap_or_default().to_string()
            } else {
                name
            };
            (name, angle_address(inner))
        }
        None => {
            // The address is the run of tokens, not separated by whitespace, that holds `@`.
            let words: Vec<&Token> = item
                .iter()
                .filter(|t| matches!(t, Token::Word(..) | Token::Quoted(..)))
                .collect();
            let at = words
                .iter()
                .position(|t| matches!(t, Token::Word(w, _) if w.contains('@')));
            match at {
                Some(at) => {
                    let mut start = at;
                    while start > 0 && !spaced(words[start]) {
                        start -= 1;
                    }
                    let mut end = at + 1;
                    while end < words.len() && !spaced(words[end]) {
                        end += 1;
                    }
                    // `"Name"local@host`: a quoted string not followed by `@` or `.` is a name.
                    while start < at
                        && matches!(words[start], Token::Quoted(..))
                        && matches!(words[start + 1], Token::Word(w, _) if !w.starts_with(['@', '.']))
                    {
                        start += 1;
                    }
                    let address = addr_spec(&words[start..end]);
                    let rest: Vec<Token<'_>> = item
                        .iter()
                        .filter(|t| matches!(t, Token::Word(..) | Token::Quoted(..)))
                        .enumerate()
                        .filter(|(i, _)| *i < start || *i >= end)
                        .map(|(_, t)| clone_token(t))
                        .collect();
                    let name = comment()
                        .map(str::to_string)
                        .unwrap_or_else(|| phrase(&rest));
                    (name, address)
                }
                // No `@`: a lone word is a local address (`root`), several are a name.
                None if words.len() == 1 => {
                    (comment().unwrap_or_default().to_string(), addr_spec(&words))
                }
                None => (
                    phrase(&words.into_iter().map(clone_token).collect::<Vec<_>>()),
                    String::new(),
                ),
            }
        }
    };
    let name = clean(headers::decode_words(&name));
    let address = clean(address);
    (name.is_some() || address.is_some()).then_some(Mailbox { name, address })
}

fn spaced(token: &Token) -> bool {
    matches!(token, Token::Word(_, true) | Token::Quoted(_, true))
}

fn clone_token<'a>(token: &Token<'a>) -> Token<'a> {
    match token {
        Token::Word(w, s) => Token::Word(w, *s),
        Token::Quoted(q, s) => Token::Quoted(q.clone(), *s),
        Token::Comment(c) => Token::Comment(c.clone()),
        Token::Angle(a) => Token::Angle(a),
        Token::Special(c) => Token::Special(*c),
    }
}

/// The words and quoted strings of a display name, joined by single spaces.
///
/// A comment among the words stays, in its parentheses (`ILUG (Request)`), as clients show
/// it; comments alone are not a phrase.
fn phrase(tokens: &[Token<'_>]) -> String {
    if !tokens
        .iter()
        .any(|t| matches!(t, Token::Word(..) | Token::Quoted(..)))
    {
        return String::new();
    }
    let mut out = String::new();
    for token in tokens {
        let (open, word, close) = match token {
            Token::Word(w, _) => ("", w.trim(), ""),
            Token::Quoted(w, _) => ("", w.trim(), ""),
            Token::Comment(c) => ("(", c.trim(), ")"),
            _ => continue,
        };
        // An empty word or comment adds nothing, nor does a word that reads as one.
        if word.is_empty() || (open.is_empty() && word == "()") {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(open);
        out.push_str(word);
        out.push_str(close);
    }
    out
}

/// An addr-spec from adjacent tokens; a quoted local part stays quoted unless it need not be.
///
/// Whitespace between two words is kept (`<Undisclosed Recipients@x>` is no address, but it
/// is what the sender wrote) unless a `.` or `@` joins them (obsolete CFWS around them).
fn addr_spec(tokens: &[&Token<'_>]) -> String {
    let mut out = String::new();
    for token in tokens {
        let (text, spaced) = match token {
            Token::Word(w, s) => (Cow::Borrowed(*w), *s),
            Token::Quoted(q, s) => (Cow::Owned(quote_local(q)), *s),
            _ => continue,
        };
        if spaced && !out.is_empty() && !out.ends_with(['.', '@']) && !text.starts_with(['.', '@'])
        {
            out.push(' ');
        }
        out.push_str(&text);
    }
    out
}

/// What is inside `<...>`: comments and whitespace dropped, an obsolete route removed.
fn angle_address(inner: &str) -> String {
    let tokens = tokens(inner);
    let mut parts: Vec<&Token> = Vec::new();
    for token in &tokens {
        match token {
            // `@a,@b:user@host` (RFC 5322 4.4 obs-route): everything before the colon is route.
            Token::Special(':') => parts.clear(),
            Token::Special(_) => {}
            Token::Word(..) | Token::Quoted(..) => parts.push(token),
            _ => {}
        }
    }
    // A route without its colon, or a lone `@`, is not an address.
    let address = addr_spec(&parts);
    if address.starts_with('@') && tokens.iter().any(|t| matches!(t, Token::Special(','))) {
        return String::new();
    }
    address
}

/// A local part as an address shows it: bare when it is a dot-atom, quoted otherwise.
fn quote_local(local: &str) -> String {
    let atext = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let dot_atom = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| atext(c) || c == '.');
    if dot_atom {
        local.to_string()
    } else {
        let escaped = local.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    }
}

fn clean(value: String) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return None;
    }
    // Most values need no trimming, and keep their own allocation.
    let value = if trimmed.len() == value.len() {
        value
    } else {
        trimmed.to_string()
    };
    Some(headers::cut(value, MAX_PART_BYTES))
}

#[cfg(test)]
mod tests {
    use super::{Token, phrase};
    use std::borrow::Cow;

    #[test]
    fn phrase_joins_as_the_collected_words_did() {
        // The phrase as it was written before it was built in place.
        fn collected(tokens: &[Token<'_>]) -> String {
            if !tokens
                .iter()
                .any(|t| matches!(t, Token::Word(..) | Token::Quoted(..)))
            {
                return String::new();
            }
            let words: Vec<String> = tokens
                .iter()
                .filter_map(|t| match t {
                    Token::Word(w, _) => Some(w.trim().to_string()),
                    Token::Quoted(w, _) => Some(w.trim().to_string()),
                    Token::Comment(c) => Some(format!("({})", c.trim())),
                    _ => None,
                })
                .filter(|w| !w.is_empty() && w != "()")
                .collect();
            words.join(" ")
        }
        let texts = ["", " ", "a", " b ", "()", " () ", "(x)"];
        let kinds = 4;
        let pick = |n: usize| -> Token<'static> {
            let text = texts[n / kinds % texts.len()];
            match n % kinds {
                0 => Token::Word(text, false),
                1 => Token::Quoted(Cow::Borrowed(text), true),
                2 => Token::Comment(Cow::Borrowed(text)),
                _ => Token::Special(','),
            }
        };
        let alphabet = texts.len() * kinds;
        // Every sequence of up to three tokens.
        for len in 0..=3u32 {
            for mut n in 0..alphabet.pow(len) {
                let mut tokens = Vec::new();
                for _ in 0..len {
                    tokens.push(pick(n % alphabet));
                    n /= alphabet;
                }
                assert_eq!(phrase(&tokens), collected(&tokens), "{tokens:?}");
            }
        }
    }
}
