//! The validation rules of the API's text fields, each stated once.
//!
//! A rule is a pattern (plus a format and length bounds where they apply). The OpenAPI
//! document shows the same pattern the server checks with, so a request is valid by the
//! document exactly when the server accepts it, and the web client's generated types say what
//! the server wants. Fields take the rule's type ([`Checked`]), which parses only JSON strings
//! (never a coerced number or boolean) that pass the rule.

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use regex::Regex;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::LazyLock;

/// Characters `char::is_control` matches (Unicode category Cc), as a regex class body. They
/// are refused in names and headers: a newline would forge a header or a log line.
const CONTROL: &str = r"\x00-\x1F\x7F-\x9F";

/// One text field's rule: what the document states and the server enforces.
pub trait Rule: Send + Sync + 'static {
    /// Anchored pattern, in the common subset of ECMA-262, Python and Rust regex syntax.
    fn pattern() -> &'static str;
    /// The pattern, compiled once; `None` only if the pattern were broken, which the tests
    /// rule out (and then the rule refuses everything rather than panicking).
    fn regex() -> Option<&'static Regex>;
    /// JSON Schema `format`, when every value the pattern matches also has that format.
    const FORMAT: Option<&'static str> = None;
    /// Fewest characters (Unicode scalar values, as JSON Schema counts them).
    const MIN_CHARS: usize = 0;
    /// Most characters.
    const MAX_CHARS: usize;
    /// What a valid value is, for error messages.
    const EXPECTED: &'static str;

    /// Whether `value` passes the rule.
    fn accepts(value: &str) -> bool {
        let chars = value.chars().count();
        (Self::MIN_CHARS..=Self::MAX_CHARS).contains(&chars)
            && Self::regex().is_some_and(|re| re.is_match(value))
    }

    /// The rule as a JSON Schema.
    fn schema() -> MetaSchema {
        let mut schema = match Self::FORMAT {
            Some(format) => MetaSchema::new_with_format("string", format),
            None => MetaSchema::new("string"),
        };
        schema.pattern = Some(Self::pattern().to_string());
        schema.min_length = (Self::MIN_CHARS > 0).then_some(Self::MIN_CHARS);
        schema.max_length = Some(Self::MAX_CHARS);
        schema
    }
}

/// Declares a [`Rule`] from its pattern, so the pattern text and its compiled form cannot
/// drift apart.
macro_rules! rule {
    ($(#[$doc:meta])* $name:ident, $pattern:expr, $min:expr, $max:expr, $format:expr, $expected:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name;

        impl Rule for $name {
            fn pattern() -> &'static str {
                static PATTERN: LazyLock<String> = LazyLock::new(|| $pattern);
                &PATTERN
            }
            fn regex() -> Option<&'static Regex> {
                static RE: LazyLock<Option<Regex>> =
                    LazyLock::new(|| Regex::new(<$name as Rule>::pattern()).ok());
                RE.as_ref()
            }
            const FORMAT: Option<&'static str> = $format;
            const MIN_CHARS: usize = $min;
            const MAX_CHARS: usize = $max;
            const EXPECTED: &'static str = $expected;
        }
    };
}

/// `atext` of RFC 5322: the characters of an unquoted local part.
const ATEXT: &str = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-";
/// One DNS label: letters, digits and inner hyphens, at most 63 characters, and no `--` in
/// the third and fourth places (IDNA reserves those for `xn--` labels, and JSON Schema's
/// `email` format refuses them unless they are valid punycode).
const LABEL: &str = concat!(
    r"[A-Za-z0-9](?:[A-Za-z0-9]|[A-Za-z0-9\-](?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,59}[A-Za-z0-9])?",
    r"|-[A-Za-z0-9](?:[A-Za-z0-9\-]{0,58}[A-Za-z0-9])?))?"
);

/// The local part: a dot-atom of at most 64 characters. Without lookahead (Rust's regex has
/// none) the length is bounded by the shape: up to four dot-separated atoms, each short
/// enough that the whole never passes 64.
fn local_part() -> String {
    let a = |n: usize| format!("[{ATEXT}]{{1,{n}}}");
    let alternatives = [
        a(64),
        format!("{}\\.{}", a(31), a(32)),
        format!("(?:{}\\.){{2}}{}", a(20), a(22)),
        format!("(?:{}\\.){{3}}{}", a(15), a(16)),
    ];
    format!("(?:{})", alternatives.join("|"))
}

rule!(
    /// A mail address: an unquoted local part and a host name with at least two labels.
    /// Narrower than RFC 5321 on purpose (no quoted local parts, address literals or
    /// non-ASCII), so every accepted address is one the relay and every client handle alike.
    AddressRule,
    format!("^{}@{LABEL}(?:\\.{LABEL})+$", local_part()),
    3,
    254,
    Some("email"),
    "a mail address such as name@example.org"
);

rule!(
    /// A domain name: at least two labels, letters, digits and inner hyphens.
    DomainRule,
    format!("^{LABEL}(?:\\.{LABEL})+$"),
    3,
    253,
    None,
    "a domain name such as example.org"
);

rule!(
    /// Free text on one line: anything but control characters.
    LineRule,
    format!("^[^{CONTROL}]*$"),
    0,
    998,
    None,
    "text without control characters"
);

rule!(
    /// A display name: up to 200 characters, no control characters.
    DisplayNameRule,
    format!("^[^{CONTROL}]*$"),
    0,
    200,
    None,
    "a name of at most 200 characters without control characters"
);

/// White space as `str::trim` sees it (Unicode `White_Space`) outside the control
/// characters, which names exclude anyway.
const SPACE: &str = r"\x20\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

rule!(
    /// A tag name: 1 to 64 characters, no control characters, not only spaces (names are
    /// stored trimmed, and an empty name could not be told apart).
    TagNameRule,
    format!("^[^{CONTROL}]*[^{CONTROL}{SPACE}][^{CONTROL}]*$"),
    1,
    64,
    None,
    "a tag name of 1 to 64 characters, not only spaces, without control characters"
);

rule!(
    /// A colour as `#rrggbb`, hexadecimal digits in either case.
    ColourRule,
    r"^#[0-9a-fA-F]{6}$".to_string(),
    7,
    7,
    None,
    "a colour as #rrggbb"
);

rule!(
    /// An ASCII-armored OpenPGP public key block (RFC 4880 §6.2), optionally surrounded by
    /// ASCII white space.
    PublicKeyRule,
    r"^[\t\n\r ]*-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*-----END PGP PUBLIC KEY BLOCK-----[\t\n\r ]*$".to_string(),
    0,
    100_000,
    None,
    "an ASCII-armored OpenPGP public key block"
);

rule!(
    /// The `next` of a previous page of a newest-first list: a millisecond timestamp and an
    /// id, or empty for the first page.
    ListCursorRule,
    r"^(?:-?[0-9]{1,18}:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$".to_string(),
    0,
    56,
    None,
    "the `next` of a previous page"
);

rule!(
    /// The `next` of a previous page of contacts: a contact id, or empty for the first page.
    IdCursorRule,
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"
        .to_string(),
    0,
    36,
    None,
    "the `next` of a previous page"
);

rule!(
    /// The `next` of a previous page of search results: how many results it skips, at most
    /// 5000 (search pages no deeper, so a client cannot make the index sort everything).
    SearchCursorRule,
    r"^(?:[0-4]?[0-9]{1,3}|5000)?$".to_string(),
    0,
    4,
    None,
    "the `next` of a previous page"
);

/// A calendar date that exists (`YYYY-MM-DD`, leap years included).
const DATE: &str = concat!(
    r"(?:[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])",
    r"|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)",
    r"|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)"
);
/// An RFC 3339 time of day with its offset, upper-case `T` and `Z`, no leap second.
const TIME: &str = concat!(
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?",
    r"(?:Z|[+\-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
);

rule!(
    /// A search bound: a date (`YYYY-MM-DD`, midnight UTC) or an RFC 3339 date-time.
    DateBoundRule,
    format!("^(?:{DATE}(?:{TIME})?)?$"),
    0,
    35,
    None,
    "YYYY-MM-DD or an RFC 3339 date-time"
);

/// A text value that passed rule `R`.
pub struct Checked<R: Rule>(String, PhantomData<R>);

impl<R: Rule> Checked<R> {
    /// Checks `value` against the rule.
    pub fn new(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        if R::accepts(&value) {
            Ok(Checked(value, PhantomData))
        } else {
            Err(format!("expected {}", R::EXPECTED))
        }
    }

    /// The checked text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The checked text, owned.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl<R: Rule> fmt::Debug for Checked<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<R: Rule> Clone for Checked<R> {
    fn clone(&self) -> Self {
        Checked(self.0.clone(), PhantomData)
    }
}

impl<R: Rule> std::ops::Deref for Checked<R> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<R: Rule> Type for Checked<R> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(R::schema()))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<R: Rule> ParseFromJSON for Checked<R> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        // Only a JSON string: poem-openapi's `String` would turn `false` into "false".
        match value {
            Some(Value::String(s)) => Checked::new(s).map_err(ParseError::custom),
            Some(other) => Err(ParseError::expected_type(other)),
            None => Err(ParseError::expected_input()),
        }
    }
}

impl<R: Rule> ParseFromParameter for Checked<R> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Checked::new(value).map_err(ParseError::custom)
    }
}

impl<R: Rule> ToJSON for Checked<R> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// A mail address a client sends.
pub type AddressText = Checked<AddressRule>;
/// One line of free text (a subject).
pub type Line = Checked<LineRule>;
/// A domain name, checked.
pub type DomainName = Checked<DomainRule>;
/// A contact's display name.
pub type DisplayName = Checked<DisplayNameRule>;
/// A tag name.
pub type TagName = Checked<TagNameRule>;
/// A tag's colour.
pub type Colour = Checked<ColourRule>;
/// An armored OpenPGP public key.
pub type PublicKey = Checked<PublicKeyRule>;
/// The cursor of a newest-first list.
pub type ListCursor = Checked<ListCursorRule>;
/// The cursor of the contact list.
pub type IdCursor = Checked<IdCursorRule>;
/// The cursor of search results.
pub type SearchCursor = Checked<SearchCursorRule>;
/// A search date bound.
pub type DateBound = Checked<DateBoundRule>;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;
    use palisade_model::Address;

    #[test]
    fn every_rule_compiles() {
        for p in [
            AddressRule::pattern(),
            LineRule::pattern(),
            DisplayNameRule::pattern(),
            TagNameRule::pattern(),
            ColourRule::pattern(),
            PublicKeyRule::pattern(),
            ListCursorRule::pattern(),
            IdCursorRule::pattern(),
            SearchCursorRule::pattern(),
            DateBoundRule::pattern(),
        ] {
            assert!(Regex::new(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn addresses_the_rule_accepts_are_addresses_the_model_parses() {
        for ok in [
            "a@b.co",
            "first.last@example.test",
            "x+tag@sub.example.test",
            "o'brien@example.test",
            &format!("{}@example.test", "a".repeat(64)),
            &format!("{}.{}@example.test", "a".repeat(31), "b".repeat(32)),
        ] {
            assert!(AddressRule::accepts(ok), "{ok}");
            assert!(Address::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "a@b@c.test",
            "a..b@example.test",
            ".a@example.test",
            "a.@example.test",
            "a b@example.test",
            "<a@example.test>",
            "a@-x.test",
            "a@x-.test",
            "a@x..test",
            "a@ab--c.test",
            "é@example.test",
            "a@example.test\n",
            &format!("{}@example.test", "a".repeat(65)),
            &format!("a@{}.test", "x".repeat(64)),
        ] {
            assert!(!AddressRule::accepts(bad), "{bad:?}");
        }
    }

    #[test]
    fn tag_names_need_a_visible_character_and_no_control_characters() {
        for c in (0u32..0x3100).filter_map(char::from_u32) {
            let name = c.to_string();
            let expected = !c.is_control() && !c.is_whitespace();
            assert_eq!(TagNameRule::accepts(&name), expected, "U+{:04X}", c as u32);
            let padded = format!(" {c} x ");
            assert_eq!(
                TagNameRule::accepts(&padded),
                !c.is_control(),
                "U+{:04X}",
                c as u32
            );
        }
        assert!(!TagNameRule::accepts(""));
        assert!(!TagNameRule::accepts(&"x".repeat(65)));
        assert!(TagNameRule::accepts(&"é".repeat(64)));
    }

    #[test]
    fn colours_are_a_hash_and_six_hex_digits() {
        for ok in ["#000000", "#ffffff", "#A1b2C3"] {
            assert!(ColourRule::accepts(ok), "{ok}");
        }
        for bad in [
            "", "#fff", "000000", "#0000000", "#00000g", "#00000\n", " #000000", "red",
        ] {
            assert!(!ColourRule::accepts(bad), "{bad:?}");
        }
    }

    #[test]
    fn lines_refuse_exactly_the_control_characters() {
        for c in (0u32..0x3100).filter_map(char::from_u32) {
            assert_eq!(
                LineRule::accepts(&format!("a{c}b")),
                !c.is_control(),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn date_bounds_are_exactly_the_dates_and_times_chrono_reads() {
        for ok in [
            "2024-02-29",
            "2000-02-29",
            "2023-12-31",
            "2024-01-31T23:59:59Z",
            "2024-01-31T00:00:00.123456789+23:59",
            "",
        ] {
            assert!(DateBoundRule::accepts(ok), "{ok}");
        }
        for bad in [
            "2023-02-29",
            "1900-02-29",
            "2024-04-31",
            "2024-13-01",
            "2024-1-01",
            "yesterday",
            "2024-01-31t00:00:00z",
            "2024-01-31T24:00:00Z",
            "2024-01-31T00:00:60Z",
            "2024-01-31 00:00:00Z",
        ] {
            assert!(!DateBoundRule::accepts(bad), "{bad}");
        }
        // Every day of four years, leap years included, agrees with chrono.
        let mut day = chrono::NaiveDate::from_ymd_opt(1999, 1, 1).expect("date");
        while day.year() < 2004 {
            assert!(DateBoundRule::accepts(&day.format("%Y-%m-%d").to_string()));
            day = day.succ_opt().expect("next day");
        }
        for m in 1..=12 {
            for d in 29..=32 {
                let text = format!("2023-{m:02}-{d:02}");
                let real = chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d").is_ok();
                assert_eq!(DateBoundRule::accepts(&text), real, "{text}");
            }
        }
    }

    #[test]
    fn search_cursors_go_no_deeper_than_5000() {
        for n in 0..=9999 {
            assert_eq!(SearchCursorRule::accepts(&n.to_string()), n <= 5000, "{n}");
        }
        assert!(SearchCursorRule::accepts("0042"));
        assert!(!SearchCursorRule::accepts("-1"));
    }

    #[test]
    fn json_values_that_are_not_strings_are_refused() {
        for v in [
            serde_json::json!(false),
            serde_json::json!(1),
            serde_json::json!(null),
        ] {
            assert!(TagName::parse_from_json(Some(v)).is_err());
        }
        assert!(TagName::parse_from_json(Some(serde_json::json!("work"))).is_ok());
    }
}
