//! Query limits shared by every backend, so a query one backend refuses the other refuses too.

use crate::IndexError;

/// Longest criterion accepted, in characters.
pub(crate) const MAX_QUERY_CHARS: usize = 2048;
/// Deepest bracket nesting accepted in free text; query parsers recurse on it.
pub(crate) const MAX_QUERY_NESTING: usize = 16;

/// The trimmed criterion, `None` when blank; too-long criteria are rejected.
pub(crate) fn criterion<'a>(
    name: &str,
    value: &'a Option<String>,
) -> Result<Option<&'a str>, IndexError> {
    let Some(value) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > MAX_QUERY_CHARS {
        return Err(IndexError::InvalidQuery(format!(
            "{name} is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    Ok(Some(value))
}

/// Rejects free text nested deeper than [`MAX_QUERY_NESTING`].
pub(crate) fn check_nesting(text: &str) -> Result<(), IndexError> {
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_QUERY_NESTING {
                    return Err(IndexError::InvalidQuery(format!(
                        "query nests deeper than {MAX_QUERY_NESTING} levels"
                    )));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}
