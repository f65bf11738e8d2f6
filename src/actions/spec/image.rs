//! Image references as a container runtime pulls them, checked before `set image` writes
//! anything: the grammar of the distribution project's `reference` package
//! (`[HOST[:PORT]/]PATH[:TAG][@DIGEST]`), so that a typo is refused on the command line rather
//! than reported by the controller as an invalid spec, or by the kubelet as a pull error.

/// Most characters of a reference's name (host and path), as the distribution project allows.
const NAME_MAX: usize = 255;
/// Most characters of a tag.
const TAG_MAX: usize = 128;
/// Fewest hex digits of a digest.
const DIGEST_HEX_MIN: usize = 32;

/// Why a string is not an image reference (docker's `invalid reference format`, with the part
/// at fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("invalid reference format: it is empty")]
    Empty,
    #[error("invalid reference format: it contains whitespace")]
    Whitespace,
    #[error("invalid reference format: repository name must be lowercase")]
    Uppercase,
    #[error("invalid reference format: repository name must not be more than {NAME_MAX} characters")]
    TooLong,
    #[error(
        "invalid reference format: invalid tag {0:?} (up to {TAG_MAX} letters, digits, '_', '.' or '-', not starting with '.' or '-')"
    )]
    Tag(String),
    #[error("invalid reference format: invalid digest {0:?} (ALGORITHM:HEX, at least {DIGEST_HEX_MIN} hex digits)")]
    Digest(String),
    #[error(
        "invalid reference format: invalid repository name {0:?} (lowercase letters and digits, separated by '.', '_', '__', '-' or '/', after an optional HOST[:PORT]/)"
    )]
    Name(String),
}

/// Check that `image` is an image reference; the parts are not needed, only the verdict.
pub fn validate(image: &str) -> Result<(), ImageError> {
    if image.is_empty() {
        return Err(ImageError::Empty);
    }
    if image.chars().any(char::is_whitespace) {
        return Err(ImageError::Whitespace);
    }
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(d) = digest.filter(|d| !is_digest(d)) {
        return Err(ImageError::Digest(d.to_string()));
    }
    // A tag follows the last ':' after the last '/' (the ':' of `host:5000/app` is a port's).
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if rest.rfind('/').is_none_or(|slash| colon > slash) => (&rest[..colon], Some(&rest[colon + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag.filter(|t| !is_tag(t)) {
        return Err(ImageError::Tag(t.to_string()));
    }
    validate_name(name)
}

fn validate_name(name: &str) -> Result<(), ImageError> {
    if name.len() > NAME_MAX {
        return Err(ImageError::TooLong);
    }
    if is_name(name) {
        return Ok(());
    }
    if is_name(&lowercase_path(name)) {
        return Err(ImageError::Uppercase);
    }
    Err(ImageError::Name(name.to_string()))
}

/// `[HOST[:PORT]/]PATH`: the first component is a host when it can be one and the rest is a
/// path (the grammar tries the host first).
fn is_name(name: &str) -> bool {
    if let Some((host, path)) = name.split_once('/') {
        if is_host(host) && is_path(path) {
            return true;
        }
    }
    is_path(name)
}

/// `name` with its path lowercased (a host may have capitals): what it would be were only the
/// case wrong.
fn lowercase_path(name: &str) -> String {
    match name.split_once('/') {
        Some((host, path)) if is_host(host) => format!("{host}/{}", path.to_ascii_lowercase()),
        _ => name.to_ascii_lowercase(),
    }
}

/// `HOST[:PORT]`: a domain name (or IPv4 address) or a bracketed IPv6 address.
fn is_host(s: &str) -> bool {
    let (host, port) = match s.rfind(':') {
        Some(i) if !s[i..].contains(']') => (&s[..i], Some(&s[i + 1..])),
        _ => (s, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    !host.is_empty() && host.split('.').all(is_domain_component)
}

/// `[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        }
        _ => false,
    }
}

/// Path components separated by '/'.
fn is_path(p: &str) -> bool {
    p.split('/').all(is_path_component)
}

/// `[a-z0-9]+` runs separated by `.`, `_`, `__` or one or more `-`.
fn is_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if !b.first().is_some_and(|&f| alnum(f)) || !b.last().is_some_and(|&l| alnum(l)) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|s| s == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    b.len() <= TAG_MAX && b.first().is_some_and(|&f| word(f)) && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `ALGORITHM:HEX`: algorithm components `[A-Za-z][A-Za-z0-9]*` separated by `+`, `.`, `-` or
/// `_`; at least 32 hex digits.
fn is_digest(d: &str) -> bool {
    let Some((algorithm, hex)) = d.split_once(':') else {
        return false;
    };
    let component = |c: &str| {
        c.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) && c.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    algorithm.split(['+', '.', '-', '_']).all(component)
        && hex.len() >= DIGEST_HEX_MIN
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_a_runtime_pulls_are_accepted() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for ok in [
            "svc",
            "svc:v8",
            "svc:V8_final.2-rc",
            "library/svc:latest",
            "registry:5000/team/app:v2.1",
            "localhost/app",
            "Registry.Example.com/team/app:v2",
            "my.registry.io:443/a__b/c-d/e--f:1",
            "[::1]:5000/app:v1",
            "192.168.0.1:5000/app",
            &format!("svc@{digest}"),
            &format!("registry:5000/svc:v1@{digest}"),
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn what_is_not_a_reference_is_refused_saying_which_part() {
        assert_eq!(validate(""), Err(ImageError::Empty));
        assert_eq!(validate("svc:v8 bad"), Err(ImageError::Whitespace));
        assert_eq!(validate(" svc:v8"), Err(ImageError::Whitespace));
        assert_eq!(validate("Svc:v8"), Err(ImageError::Uppercase));
        assert_eq!(validate("registry:5000/Team/app"), Err(ImageError::Uppercase));
        assert_eq!(validate("svc:v8!"), Err(ImageError::Tag("v8!".into())));
        assert_eq!(validate("svc:-v8"), Err(ImageError::Tag("-v8".into())));
        assert_eq!(validate("svc:"), Err(ImageError::Tag(String::new())));
        assert_eq!(
            validate(&format!("svc:{}", "v".repeat(129))),
            Err(ImageError::Tag("v".repeat(129)))
        );
        assert_eq!(validate("svc@sha256:abc"), Err(ImageError::Digest("sha256:abc".into())));
        assert_eq!(validate("svc@abc"), Err(ImageError::Digest("abc".into())));
        assert_eq!(validate("a//b"), Err(ImageError::Name("a//b".into())));
        assert_eq!(validate("a/b/"), Err(ImageError::Name("a/b/".into())));
        assert_eq!(validate("-svc"), Err(ImageError::Name("-svc".into())));
        assert_eq!(validate("s..vc"), Err(ImageError::Name("s..vc".into())));
        assert_eq!(validate("s___vc"), Err(ImageError::Name("s___vc".into())));
        assert_eq!(validate("host:port/app"), Err(ImageError::Name("host:port/app".into())));
        assert_eq!(validate(&"a".repeat(256)), Err(ImageError::TooLong));
    }
}
