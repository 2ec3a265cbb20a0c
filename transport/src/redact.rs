//! Hiding credentials in text, before it reaches a log, an error message or a terminal:
//! every redaction of nameko-rs goes through these functions.
//!
//! - [`redact_uri`]: the passwords of the URIs in a text (`amqp://user:***@host/`);
//! - [`redact_secret`]: a known secret wherever it appears, as written or
//!   percent-encoded (what the RabbitMQ transport applies to its client's error messages);
//! - [`redact_line`]: a line of log: URI passwords and `auth_token` values.
//!
//! When in doubt they hide more, never less. The module depends on the standard library
//! alone.

/// Hides the passwords of the URIs in `text`: `amqp://user:secret@host/` becomes
/// `amqp://user:***@host/`.
///
/// Every `scheme://` in the text is handled, so URIs inside a sentence and kombu's failover
/// lists (`amqp://a:x@h1;amqp://a:y@h2`, also with `,`) are covered. A URI without a
/// password (`memory://`, `amqp://host`, `amqp://user@host`, `amqp://user:@host`) and text
/// without a URI come back unchanged.
///
/// When in doubt the function hides more, never less: a password written without
/// percent-encoding may hold `@`, `/`, `?`, `#` or `:`, so everything from the first `:`
/// after `scheme://` up to the last `@` of the URI is treated as the password, and a URI
/// with an `@` in its path or query loses a little more than its password. A URI ends at
/// white space, or at a `;` or `,` followed by another `scheme://` once what comes before
/// it is a complete URI (it has an `@`, or no port, or a numeric one). The one case left
/// is a password that itself holds such a separator and scheme, which no reader of the
/// text could tell from a list of two URIs.
///
/// ```
/// use nameko_transport::redact::redact_uri;
///
/// assert_eq!(redact_uri("amqp://guest:guest@localhost:5672/"), "amqp://guest:***@localhost:5672/");
/// assert_eq!(redact_uri("amqps://svc:p@ss@rabbit/vhost"), "amqps://svc:***@rabbit/vhost");
/// assert_eq!(redact_uri("memory://"), "memory://");
/// assert_eq!(redact_uri("amqp://localhost"), "amqp://localhost");
/// assert_eq!(
///     redact_uri("amqp://a:x@h1;amqp://a:y@h2"),
///     "amqp://a:***@h1;amqp://a:***@h2",
/// );
/// ```
#[must_use]
pub fn redact_uri(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(after_scheme) = find_uri_start(rest) {
        out.push_str(&rest[..after_scheme]);
        let tail = &rest[after_scheme..];
        let end = uri_end(tail);
        out.push_str(&redact_authority(&tail[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Replaces every occurrence of `secret` in `text` by `***`, whether it is written as is or
/// percent-encoded, in whole or in part, with upper- or lower-case hex digits (`p@ss`,
/// `p%40ss`, `p%40%73s`), then hides URI passwords as [`redact_uri`] does. An empty secret
/// hides nothing more.
///
/// ```
/// use nameko_transport::redact::redact_secret;
///
/// assert_eq!(
///     redact_secret("ACCESS_REFUSED for p@ss/w (p%40ss%2Fw)", "p@ss/w"),
///     "ACCESS_REFUSED for *** (***)",
/// );
/// assert_eq!(redact_secret("nothing to hide", ""), "nothing to hide");
/// ```
#[must_use]
pub fn redact_secret(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        return redact_uri(text);
    }
    let secret = secret.as_bytes();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        match secret_len_at(bytes, at, secret) {
            Some(len) => {
                out.push_str(&text[copied..at]);
                out.push_str("***");
                at += len;
                copied = at;
            }
            None => at += 1,
        }
    }
    out.push_str(&text[copied..]);
    redact_uri(&out)
}

/// The length of the longest text at `at` that spells `secret`, each byte as is or as
/// `%XX` (both can match a `%`, so every way is followed).
fn secret_len_at(bytes: &[u8], at: usize, secret: &[u8]) -> Option<usize> {
    let encodes = |i: usize, expected: u8| {
        bytes.get(i) == Some(&b'%')
            && bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                == Some(expected)
    };
    // Where the text can be after each byte of the secret: at most one more place per
    // byte, so this stays linear in the secret's length.
    let mut ends = vec![at];
    for &expected in secret {
        let mut next = Vec::with_capacity(ends.len() + 1);
        for &i in &ends {
            if bytes.get(i) == Some(&expected) {
                next.push(i + 1);
            }
            if encodes(i, expected) {
                next.push(i + 3);
            }
        }
        next.sort_unstable();
        next.dedup();
        if next.is_empty() {
            return None;
        }
        ends = next;
    }
    ends.last().map(|end| end - at)
}

/// Hides the credentials in one line of log: URI passwords ([`redact_uri`]) and the value
/// of every `auth_token`, in the shapes logs write it (`auth_token=x`, `auth_token: x`,
/// `"auth_token": "x"`, escaped quotes, terminal colours around the key).
///
/// ```
/// use nameko_transport::redact::redact_line;
///
/// assert_eq!(
///     redact_line(r#"connected to amqp://app:pw@rabbit/ with {"auth_token": "abc"}"#),
///     r#"connected to amqp://app:***@rabbit/ with {"auth_token": "***"}"#,
/// );
/// assert_eq!(redact_line("auth_token=abc user=1"), "auth_token=*** user=1");
/// ```
#[must_use]
pub fn redact_line(line: &str) -> String {
    let line = redact_uri(line);
    const KEY: &str = "auth_token";
    let mut out = String::with_capacity(line.len());
    let mut rest = line.as_str();
    while let Some(at) = rest.find(KEY) {
        let (before, after_key) = rest.split_at(at + KEY.len());
        out.push_str(before);
        rest = after_key;
        // A closing quote of the key, white space, then `=` or `:`.
        let bytes = rest.as_bytes();
        let mut i = skip(bytes, 0, |b| matches!(b, b'"' | b'\'' | b'\\' | b' '));
        if i >= bytes.len() || !matches!(bytes[i], b'=' | b':') {
            continue;
        }
        i = skip(bytes, i + 1, |b| b == b' ');
        // An optional opening quote (possibly escaped), then the value up to its end.
        let mut quote = None;
        let mut escaped = false;
        if i < bytes.len() && bytes[i] == b'\\' {
            escaped = true;
            i += 1;
        }
        if i < bytes.len() && matches!(bytes[i], b'"' | b'\'') {
            quote = Some(bytes[i]);
            i += 1;
        }
        out.push_str(&rest[..i]);
        let value = &rest[i..];
        let end = match quote {
            Some(q) => {
                let pair = [b'\\', q];
                let single = [q];
                let closing: &[u8] = if escaped { &pair } else { &single };
                value
                    .as_bytes()
                    .windows(closing.len())
                    .position(|w| w == closing)
                    .unwrap_or(value.len())
            }
            None => value
                .find(|c: char| c.is_whitespace() || matches!(c, ',' | '}' | ')' | ']' | ';'))
                .unwrap_or(value.len()),
        };
        if end > 0 {
            out.push_str("***");
        }
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// The index of the first byte from `i` that is neither `skipped` nor part of a terminal
/// colour sequence (`ESC [ ... m`).
fn skip(bytes: &[u8], mut i: usize, skipped: impl Fn(u8) -> bool) -> usize {
    while i < bytes.len() {
        if bytes[i] == 0x1b && bytes.get(i + 1) == Some(&b'[') {
            match bytes[i + 2..].iter().position(|&b| b == b'm') {
                Some(end) => i += end + 3,
                None => return i,
            }
        } else if skipped(bytes[i]) {
            i += 1;
        } else {
            return i;
        }
    }
    i
}

fn is_scheme_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')
}

/// The index just after the first `scheme://` in `text`, if any.
fn find_uri_start(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = text[from..].find("://") {
        let separator = from + offset;
        let mut start = separator;
        while start > 0 && is_scheme_char(bytes[start - 1]) {
            start -= 1;
        }
        // A scheme starts with a letter: skip digits and signs before it.
        while start < separator && !bytes[start].is_ascii_alphabetic() {
            start += 1;
        }
        if start < separator {
            return Some(separator + 3);
        }
        from = separator + 3;
    }
    None
}

/// Whether `text` starts with `scheme://`.
fn starts_with_scheme(text: &str) -> bool {
    let bytes = text.as_bytes();
    if !bytes.first().is_some_and(u8::is_ascii_alphabetic) {
        return false;
    }
    let scheme_len = bytes.iter().take_while(|&&c| is_scheme_char(c)).count();
    text[scheme_len..].starts_with("://")
}

/// Where the URI whose text after `scheme://` starts `tail` ends; see [`redact_uri`].
fn uri_end(tail: &str) -> usize {
    let limit = tail.find(char::is_whitespace).unwrap_or(tail.len());
    let uri = &tail[..limit];
    let is_complete = |before: &str| {
        let authority = &before[..before.find(['/', '?', '#']).unwrap_or(before.len())];
        before.contains('@')
            || authority
                .rfind(':')
                .is_none_or(|colon| is_port(&authority[colon + 1..]))
    };
    uri.char_indices()
        .find(|&(index, c)| {
            matches!(c, ';' | ',')
                && starts_with_scheme(&uri[index + 1..])
                && is_complete(&uri[..index])
        })
        .map_or(limit, |(index, _)| index)
}

/// Whether `text` is a port number: one or more digits.
fn is_port(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|c| c.is_ascii_digit())
}

/// `user:password@rest` becomes `user:***@rest`; see [`redact_uri`].
fn redact_authority(uri: &str) -> String {
    let Some(at) = uri.rfind('@') else {
        return uri.to_owned();
    };
    match uri[..at].find(':') {
        Some(colon) if colon + 1 < at => format!("{}:***{}", &uri[..colon], &uri[at..]),
        _ => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Percent-encodes every byte that is not unreserved, with upper- or lower-case hex.
    fn encode(text: &str, upper: bool) -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    char::from(b).to_string()
                } else if upper {
                    format!("%{b:02X}")
                } else {
                    format!("%{b:02x}")
                }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn redaction_never_shows_the_password(
            user in "[a-z]{1,8}",
            // `;` and `,` before a scheme could start a second URI of a failover list.
            password in "[a-zA-Z0-9@/?#:%!]{1,12}",
            host in "[a-z]{1,8}(:[0-9]{1,5})?",
            path in "(/[a-z]{0,6})?",
        ) {
            let uri = format!("amqp://{user}:{password}@{host}{path}");
            let redacted = redact_uri(&uri);
            prop_assert_eq!(redacted, format!("amqp://{user}:***@{host}{path}"));
        }
    }

    #[test]
    fn redact_uri_hides_passwords_only() {
        let cases = [
            (
                "amqp://guest:guest@localhost:5672/",
                "amqp://guest:***@localhost:5672/",
            ),
            (
                "amqps://svc:s3cret@rabbit.example:5671/vhost?heartbeat=10",
                "amqps://svc:***@rabbit.example:5671/vhost?heartbeat=10",
            ),
            ("pyamqp://u:p@h", "pyamqp://u:***@h"),
            ("memory://", "memory://"),
            ("memory://name", "memory://name"),
            ("amqp://localhost", "amqp://localhost"),
            ("amqp://localhost:5672/%2F", "amqp://localhost:5672/%2F"),
            ("amqp://user@host/", "amqp://user@host/"),
            ("amqp://user:@host/", "amqp://user:@host/"),
            ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
            ("amqp://u:p@ss@host/", "amqp://u:***@host/"),
            ("amqp://u:pa/ss@host/", "amqp://u:***@host/"),
            ("amqp://u:pa?ss@host/", "amqp://u:***@host/"),
            ("amqp://u:pa:ss@host/", "amqp://u:***@host/"),
            ("amqp://u:p%40ss@host/", "amqp://u:***@host/"),
            (
                "amqp://a:x@h1;amqp://b:y@h2",
                "amqp://a:***@h1;amqp://b:***@h2",
            ),
            (
                "amqp://h1:5672,amqp://b:y@h2",
                "amqp://h1:5672,amqp://b:***@h2",
            ),
            ("memory://;amqp://b:y@h2", "memory://;amqp://b:***@h2"),
            // Not a complete URI before `;`: part of the password.
            ("amqp://a:x;amqp://b:y@h2", "amqp://a:***@h2"),
            ("amqp://a://@h", "amqp://a:***@h"),
            ("amqp://u:p@h/vhost@x", "amqp://u:***@x"),
            ("X=amqp://u:p@h", "X=amqp://u:***@h"),
            (
                "connect to amqp://u:p@h now, user:x@y",
                "connect to amqp://u:***@h now, user:x@y",
            ),
            (
                "postgresql+psycopg://app:pw@db/app",
                "postgresql+psycopg://app:***@db/app",
            ),
            ("user:password@host", "user:password@host"),
            ("not a uri", "not a uri"),
            ("://x:y@z", "://x:y@z"),
            ("", ""),
            ("é amqp://ü:ß@ö/", "é amqp://ü:***@ö/"),
        ];
        for (uri, expected) in cases {
            assert_eq!(redact_uri(uri), expected, "{uri}");
        }
    }

    proptest! {
        #[test]
        fn a_uri_password_never_survives_any_entry_point(
            scheme in "(amqp|amqps|pyamqp|redis|postgresql\\+psycopg)",
            user in "[a-z]{1,8}",
            // No `/` nor white space: `;` or `,` then `scheme://` could start a second URI.
            password in "S3cr[a-zA-Z0-9@?#%!:;,._~\\-]{1,12}",
            encoded in any::<Option<bool>>(),
            hosts in prop::collection::vec("[a-z]{1,8}(:[0-9]{1,5})?", 1..4),
            vhost in "(/[a-z]{0,6})?",
        ) {
            let written = match encoded {
                None => password.clone(),
                Some(upper) => encode(&password, upper),
            };
            let uri = format!("{scheme}://{user}:{written}@{}{vhost}", hosts.join(","));
            let sentence = format!("cannot connect to {uri}: refused");
            for text in [
                redact_uri(&sentence),
                redact_secret(&sentence, &password),
                redact_secret(&format!("{sentence} ({password})"), &password),
                redact_line(&sentence),
            ] {
                prop_assert!(!text.contains(&password), "{uri}: {text}");
                prop_assert!(!text.contains(&written), "{uri}: {text}");
                prop_assert!(!text.contains("S3cr"), "{uri}: {text}");
            }
        }

        #[test]
        fn a_known_secret_never_survives_in_any_spelling(
            prefix in "[ -~]{0,10}",
            // Not `*`, which the replacement itself is made of.
            secret in "[ -)+-~]{1,10}",
            spelling in prop::collection::vec(0..3u8, 10),
            suffix in "[ -~]{0,10}",
        ) {
            // Each byte as is, or percent-encoded in lower or upper case.
            let written: String = secret
                .bytes()
                .zip(spelling.iter().cycle())
                .map(|(b, how)| match how {
                    0 => char::from(b).to_string(),
                    1 => format!("%{b:02x}"),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            let text = format!("{prefix}{written}{suffix}");
            let hidden = redact_secret(&text, &secret);
            prop_assert!(!hidden.contains(&written), "{text}: {hidden}");
        }
    }

    #[test]
    fn secrets_are_hidden_as_written_or_percent_encoded() {
        let cases = [
            (
                "login refused for p@ss/w",
                "p@ss/w",
                "login refused for ***",
            ),
            ("p%40ss%2Fw and p%40ss%2fw", "p@ss/w", "*** and ***"),
            ("p%40s%73/w", "p@ss/w", "***"),
            ("no secret here", "p@ss", "no secret here"),
            ("pp@ss", "p@ss", "p***"),
            ("50%", "5", "***0%"),
            // A `%` of the secret may itself be written `%25`.
            ("%25A and %A", "%A", "*** and ***"),
            ("amqp://u:other@h/ x", "", "amqp://u:***@h/ x"),
            ("é p@ss é", "p@ss", "é *** é"),
        ];
        for (text, secret, expected) in cases {
            assert_eq!(redact_secret(text, secret), expected, "{text} / {secret}");
        }
    }

    #[test]
    fn lines_hide_uri_passwords_and_auth_tokens() {
        for (line, expected) in [
            ("amqp://u:secret@h/ up", "amqp://u:***@h/ up"),
            (
                r#"context={"auth_token": "tok-1", "user": 2}"#,
                r#"context={"auth_token": "***", "user": 2}"#,
            ),
            (
                r#"{\"auth_token\": \"tok-1\"}"#,
                r#"{\"auth_token\": \"***\"}"#,
            ),
            ("auth_token: tok-1, next", "auth_token: ***, next"),
            ("auth_token='tok 1' x", "auth_token='***' x"),
            ("no token here", "no token here"),
            ("the auth_token header", "the auth_token header"),
            ("auth_token=", "auth_token="),
            (
                "a auth_token=1 b auth_token=2",
                "a auth_token=*** b auth_token=***",
            ),
            (
                "\x1b[3mauth_token\x1b[0m\x1b[2m=\x1b[0mtok-1 \x1b[3mbroker\x1b[0m\x1b[2m=\x1b[0mamqp://u:pw@h/",
                "\x1b[3mauth_token\x1b[0m\x1b[2m=\x1b[0m*** \x1b[3mbroker\x1b[0m\x1b[2m=\x1b[0mamqp://u:***@h/",
            ),
        ] {
            assert_eq!(redact_line(line), expected, "{line}");
        }
    }
}
