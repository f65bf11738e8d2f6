//! `pattern` and format regexes, compiled once per thread and matched like Go's
//! `regexp.MatchString`.

use std::cell::RefCell;
use std::collections::HashMap;

type RegexCache = HashMap<String, Result<regex::Regex, String>>;

thread_local! {
    static REGEX_CACHE: RefCell<RegexCache> = RefCell::new(HashMap::new());
}

fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 22)
        .dfa_size_limit(1 << 22)
        .build()
        .map_err(|e| {
            // Flatten the multi-line diagnostic into one line.
            e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
        })
}

/// Unanchored match like Go's `regexp.MatchString`; `Err` holds the compile error.
pub(super) fn regex_is_match(pattern: &str, text: &str) -> Result<bool, String> {
    let cached = REGEX_CACHE
        .try_with(|c| {
            let mut cache = c.try_borrow_mut().ok()?;
            if cache.len() > 512 {
                cache.clear();
            }
            let re = cache
                .entry(pattern.to_string())
                .or_insert_with(|| compile_regex(pattern));
            Some(re.as_ref().map(|r| r.is_match(text)).map_err(Clone::clone))
        })
        .ok()
        .flatten();
    match cached {
        Some(r) => r,
        None => compile_regex(pattern).map(|r| r.is_match(text)),
    }
}
