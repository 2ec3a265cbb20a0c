//! Hiding credentials: the passwords of URIs in any text, and in every string of a config.

use serde_json::Value;

use super::Config;

impl Config {
    /// A copy with the password of every URI in every string value replaced by `***` (see
    /// [`redact_uri`]), for printing and logging.
    ///
    /// ```
    /// use nameko_core::config::Config;
    ///
    /// let config = Config::new()
    ///     .with("AMQP_URI", "amqp://guest:guest@localhost:5672/")
    ///     .with("DB_URIS", serde_json::json!({"svc:Base": "postgresql://app:pw@db/app"}));
    /// assert_eq!(
    ///     config.redacted().to_yaml_string(),
    ///     "AMQP_URI: amqp://guest:***@localhost:5672/\nDB_URIS:\n  svc:Base: postgresql://app:***@db/app\n",
    /// );
    /// ```
    #[must_use]
    pub fn redacted(&self) -> Config {
        Config {
            values: self
                .values
                .iter()
                .map(|(key, value)| (key.clone(), redact_value(value)))
                .collect(),
        }
    }
}

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
/// use nameko_core::config::redact_uri;
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

fn redact_value(value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(redact_uri(text)),
        Value::Array(items) => Value::Array(items.iter().map(redact_value).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), redact_value(value)))
                .collect(),
        ),
        other => other.clone(),
    }
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
    use serde_json::json;

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

    #[test]
    fn redacted_config_hides_passwords_everywhere() {
        let config = Config::new()
            .with("AMQP_URI", "amqp://guest:guest@localhost:5672/")
            .with("DB_URIS", json!({"svc:Base": "postgresql://app:pw@db/app"}))
            .with("list", json!(["amqp://a:b@c", 5]))
            .with("plain", "amqp://localhost");
        assert_eq!(
            config.redacted().to_value(),
            json!({
                "AMQP_URI": "amqp://guest:***@localhost:5672/",
                "DB_URIS": {"svc:Base": "postgresql://app:***@db/app"},
                "list": ["amqp://a:***@c", 5],
                "plain": "amqp://localhost",
            })
        );
    }
}
