//! Redaction of free text before it reaches a log: email addresses, credentials and anything
//! that looks like a token or key.
//!
//! Logs carry ids, sizes and outcomes by design, but some text must be logged that the service
//! did not write itself — an error chain quoting a platform message, an upstream's error type.
//! [`redact`] is the last line of defence for such text, and the worker runs every log line
//! through it. It replaces:
//! - email addresses (`local@domain.tld`) by `[email]`;
//! - the credential after `Bearer ` / `Basic ` by `[redacted]`;
//! - every run of 32 or more token characters (`A–Z a–z 0–9 _ - . +`) that mixes letters and
//!   digits — API keys (`sk_live_…`, `whsec_…`), JWTs, our refresh tokens and tickets, hex
//!   digests — by `[redacted]`. Canonical UUIDs (the ids logs are made of) are kept, and so are
//!   words of letters only and numbers of digits only.
//!
//! JSON punctuation (`"`, `:`, `,`, braces), `=` and `/` are not token characters, so a log
//! line keeps its structure, its `key=value` pairs and its paths.

/// Shortest run of token characters treated as a secret.
pub const MIN_SECRET_LEN: usize = 32;

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+')
}

fn is_email_local(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn is_email_domain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-')
}

/// Whether `s` is a UUID in its hyphenated form (8-4-4-4-12 hex digits).
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Whether a run of token characters must be hidden.
fn is_secret(run: &str) -> bool {
    run.len() >= MIN_SECRET_LEN
        && run.bytes().any(|b| b.is_ascii_digit())
        && run.bytes().any(|b| b.is_ascii_alphabetic())
        && !run.split('.').all(is_uuid)
}

/// The JSON fields of a log line that [`redact_log_line`] leaves as they are: the request id,
/// which a client may choose (8–64 characters of `[A-Za-z0-9_-]`, so it cannot close the string)
/// and which must stay findable.
pub const KEPT_FIELDS: &[&str] = &["request_id"];

/// A JSON log line with everything but the values of [`KEPT_FIELDS`] redacted.
pub fn redact_log_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    loop {
        let next = KEPT_FIELDS
            .iter()
            .filter_map(|f| {
                let key = format!("\"{f}\":\"");
                rest.find(&key).map(|at| (at, key.len()))
            })
            .min();
        let Some((at, key_len)) = next else {
            out.push_str(&redact(rest));
            return out;
        };
        let value_start = at + key_len;
        out.push_str(&redact(&rest[..value_start]));
        let value_len = rest[value_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len() - value_start);
        out.push_str(&rest[value_start..value_start + value_len]);
        rest = &rest[value_start + value_len..];
    }
}

/// `text` with email addresses, credentials and token-like runs replaced (see the module).
pub fn redact(text: &str) -> String {
    let emails = redact_emails(text);
    let credentials = redact_credentials(&emails);
    redact_tokens(&credentials)
}

fn redact_emails(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    // `out` holds everything before `i`; a local part is taken back out of it when an `@`
    // turns out to start an address.
    while i < chars.len() {
        if chars[i] == '@' {
            let local_len = out.chars().rev().take_while(|c| is_email_local(*c)).count();
            let domain_end = (i + 1..chars.len())
                .find(|&j| !is_email_domain(chars[j]))
                .unwrap_or(chars.len());
            let domain: String = chars[i + 1..domain_end].iter().collect();
            let domain = domain.trim_end_matches(['.', '-']);
            let dotted = domain.split('.').filter(|label| !label.is_empty()).count() >= 2;
            if local_len > 0 && dotted {
                for _ in 0..local_len {
                    out.pop();
                }
                out.push_str("[email]");
                i = i + 1 + domain.chars().count();
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn redact_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let found = ["Bearer ", "bearer ", "Basic ", "basic "]
            .iter()
            .filter_map(|scheme| rest.find(scheme).map(|at| (at, scheme.len())))
            .min();
        let Some((at, len)) = found else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at + len]);
        let after = &rest[at + len..];
        let secret_len = after
            .find(|c: char| !(is_token_char(c) || c == '/'))
            .unwrap_or(after.len());
        if secret_len > 0 {
            out.push_str("[redacted]");
        }
        rest = &after[secret_len..];
    }
}

fn redact_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run_start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        match (is_token_char(c), run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(start)) => {
                push_run(&mut out, &text[start..i]);
                run_start = None;
                out.push(c);
            }
            (false, None) => out.push(c),
            (true, Some(_)) => {}
        }
    }
    if let Some(start) = run_start {
        push_run(&mut out, &text[start..]);
    }
    out
}

fn push_run(out: &mut String, run: &str) {
    if is_secret(run) {
        out.push_str("[redacted]");
    } else {
        out.push_str(run);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn email_addresses_are_hidden_wherever_they_stand() {
        assert_eq!(
            redact(r#"{"message":"No such customer: ada.lovelace+bills@example.co.uk."}"#),
            r#"{"message":"No such customer: [email]."}"#
        );
        assert_eq!(redact("to=bob@example.com,cc"), "to=[email],cc");
        assert_eq!(redact("a @ b, user@localhost"), "a @ b, user@localhost");
    }

    #[test]
    fn keys_tokens_and_credentials_are_hidden() {
        let key = concat!("sk_live_", "51NQZp2LkdIwHu7ixQ2b5nX9JabcdEFGH");
        assert_eq!(
            redact(&format!("invalid key {key} given")),
            "invalid key [redacted] given"
        );
        assert_eq!(
            redact("Authorization: Bearer abc.def-ghi_jkl"),
            "Authorization: Bearer [redacted]"
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r";
        assert_eq!(redact(&format!("token={jwt}")), "token=[redacted]");
        let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(redact(digest), "[redacted]");
        assert_eq!(redact("whsec_0123456789abcdefghijklmnopqrst"), "[redacted]");
    }

    #[test]
    fn ids_paths_words_and_json_structure_survive() {
        let line = r#"{"timestamp":"2026-12-03T13:45:54.123Z","level":"INFO","request_id":"3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8","path":"/api/v1/storage/records/3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8","event":"checkout.session.async_payment_succeeded","subscription":"sub_1NQZp2LkdIwHu7ixQ2b5nX9J","status":200}"#;
        assert_eq!(redact(line), line);
    }

    #[test]
    fn a_log_lines_request_id_survives_but_nothing_else_secret() {
        let id = "vanish-m40ee1f7df3ca44d0b6628ff5f7f8466e";
        let key = "sk_live_0123456789abcdefghijklmnopqrstuv";
        let line = format!(
            r#"{{"request_id":"{id}","error":"bad key {key}","spans":[{{"request_id":"{id}"}}]}}"#
        );
        assert_eq!(
            redact_log_line(&line),
            format!(
                r#"{{"request_id":"{id}","error":"bad key [redacted]","spans":[{{"request_id":"{id}"}}]}}"#
            )
        );
        // A value that is not an id ends at its first other character; the rest is redacted.
        assert_eq!(
            redact_log_line(&format!(r#"{{"request_id":"ok\" {key}"}}"#)),
            r#"{"request_id":"ok\" [redacted]"}"#
        );
    }

    proptest! {
        #[test]
        fn no_long_mixed_token_survives(prefix in "[ :,\"]{0,3}", secret in "[a-z]{8}[0-9]{8}[A-Za-z0-9_]{16,40}", suffix in "[ :,\"]{0,3}") {
            let text = format!("{prefix}{secret}{suffix}");
            let out = redact(&text);
            prop_assert!(!out.contains(&secret));
            prop_assert_eq!(out, format!("{prefix}[redacted]{suffix}"));
        }

        #[test]
        fn redaction_never_panics_and_is_idempotent(text in "\\PC{0,200}") {
            let once = redact(&text);
            prop_assert_eq!(redact(&once), once.clone());
        }
    }
}
