//! Text normalisation shared by indexing and querying, so both engines see the same tokens.

/// Most query words used.
pub(crate) const MAX_QUERY_WORDS: usize = 8;
/// Longest word kept.
const MAX_WORD_CHARS: usize = 64;

/// Splits text into lowercase words of letters and digits (anything else separates words),
/// each cut to 64 characters, joined by single spaces.
pub fn normalize_search_text(text: &str) -> String {
    words(text).collect::<Vec<_>>().join(" ")
}

pub(crate) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.chars()
                .take(MAX_WORD_CHARS)
                .flat_map(char::to_lowercase)
                .collect()
        })
}

/// FTS5 query: every word as a quoted prefix phrase (`"word"*`), implicitly ANDed.
pub(crate) fn fts5_query(query: &str) -> Option<String> {
    let q: Vec<String> = words(query)
        .take(MAX_QUERY_WORDS)
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!q.is_empty()).then(|| q.join(" "))
}

/// PostgreSQL `to_tsquery('simple', ...)` text: `word:* & word:*`.
pub(crate) fn tsquery(query: &str) -> Option<String> {
    let q: Vec<String> = words(query)
        .take(MAX_QUERY_WORDS)
        .map(|w| format!("{w}:*"))
        .collect();
    (!q.is_empty()).then(|| q.join(" & "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(
            normalize_search_text("Chest X-ray v1.2 (CT)"),
            "chest x ray v1 2 ct"
        );
        assert_eq!(
            fts5_query("x-ray \"drop"),
            Some("\"x\"* \"ray\"* \"drop\"*".into())
        );
        assert_eq!(tsquery("Ab  c'd"), Some("ab:* & c:* & d:*".into()));
        assert_eq!(tsquery("--"), None);
    }
}
