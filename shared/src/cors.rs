//! CORS policy: which browser origins may call the API, and the headers they get.
//!
//! Allowed: any `app://…` origin (the Electron app), `http://localhost` on any port (developers
//! running the app against `wrangler dev`), and the extra origins of `CORS_ORIGINS` (exact, or
//! `scheme://host:*` for any port), and the worker's own origin (the admin console at `/admin`
//! is served by the same worker: its requests are same-origin, not cross-origin). A request whose
//! `Origin` is anything else is refused with 403 before it reaches a handler, and never gets an
//! `Access-Control-Allow-Origin` header.

/// Methods a preflight may ask for.
pub const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";
/// Request headers a preflight may ask for.
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, If-Match, If-None-Match, \
If-Modified-Since, Idempotency-Key, X-Request-Id, X-Checksum, X-Table, X-Backup-Version, \
X-Backup-Timestamp, X-Backup-Checksum, X-Backup-Prune, X-Part-Checksum, X-Device-Name";
/// Response headers browsers may read.
pub const EXPOSE_HEADERS: &str = "X-Request-Id, ETag, Last-Modified, X-Checksum, X-Next-Cursor, \
X-Sync-Reset, X-RateLimit-Limit, X-RateLimit-Remaining, Retry-After, Location, Content-Disposition, \
X-Backup-Id, X-Backup-Version, X-Backup-Timestamp, X-Backup-Checksum";
/// How long (seconds) a browser may cache a preflight answer.
pub const MAX_AGE_SECS: u32 = 600;

/// The origins allowed to call the API from a browser.
#[derive(Debug, Clone, Default)]
pub struct CorsPolicy {
    extra: Vec<String>,
}

impl CorsPolicy {
    /// A policy allowing the built-in origins plus `extra` (entries as in `CORS_ORIGINS`).
    pub fn new(extra: Vec<String>) -> Self {
        Self { extra }
    }

    /// Whether `origin` (the raw `Origin` header) is allowed on a request to `own_origin`
    /// (the request URL's `scheme://host[:port]`): the origins of [`Self::allows`], or the
    /// worker's own, exactly.
    pub fn allows_from(&self, origin: &str, own_origin: &str) -> bool {
        let opaque = own_origin.is_empty() || own_origin == "null";
        (!opaque && origin == own_origin) || self.allows(origin)
    }

    /// Whether `origin` (the raw `Origin` header) is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        if origin.is_empty() || origin.len() > 255 || !origin.bytes().all(|b| b.is_ascii_graphic())
        {
            return false;
        }
        if let Some(host) = origin.strip_prefix("app://") {
            return is_host(host);
        }
        if origin == "http://localhost" || port_suffix_ok(origin, "http://localhost") {
            return true;
        }
        self.extra
            .iter()
            .any(|allowed| match allowed.strip_suffix(":*") {
                Some(base) => origin == base || port_suffix_ok(origin, base),
                None => origin == allowed,
            })
    }
}

/// `origin` is `base` followed by `:` and a port number.
fn port_suffix_ok(origin: &str, base: &str) -> bool {
    origin
        .strip_prefix(base)
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|port| {
            !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p))
        })
}

/// A plausible host (with optional port) for an `app://` origin: no path, no user info.
fn is_host(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;

    /// Every quoted header name in the worker's sources that a call named `call` takes.
    fn headers_named_by(call: &str) -> Vec<String> {
        fn walk(dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        let mut sources = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../workers/src"),
            &mut sources,
        );
        let needle = format!("{call}(\"");
        let mut names: Vec<String> = sources
            .iter()
            .flat_map(|src| {
                src.match_indices(&needle)
                    .map(|(i, _)| &src[i + needle.len()..])
            })
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn listed(list: &str) -> Vec<String> {
        list.split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect()
    }

    #[test]
    fn every_request_header_the_worker_reads_may_be_sent_by_a_browser() {
        // Headers a browser sets itself or that never come from a page.
        let exempt = [
            "content-length",
            "accept-encoding",
            "cf-connecting-ip",
            "upgrade",
            "stripe-signature",
        ];
        let allowed = listed(ALLOW_HEADERS);
        let read = headers_named_by(".header");
        assert!(read.iter().any(|h| h == "X-Part-Checksum"), "{read:?}");
        for h in read {
            let lower = h.to_ascii_lowercase();
            assert!(
                allowed.contains(&lower) || exempt.contains(&lower.as_str()),
                "{h} is read by the worker but a preflight refuses it"
            );
        }
    }

    #[test]
    fn every_response_header_the_worker_sets_may_be_read_by_a_browser() {
        // Safelisted by the Fetch standard, or not for pages to read.
        let exempt = [
            "content-type",
            "content-length",
            "cache-control",
            "x-content-type-options",
            "vary",
            "allow",
            "content-encoding",
        ];
        let exposed = listed(EXPOSE_HEADERS);
        let set = headers_named_by(".set");
        assert!(set.iter().any(|h| h == "X-Backup-Id"), "{set:?}");
        for h in set.iter().filter(|h| !h.starts_with("Access-Control-")) {
            let lower = h.to_ascii_lowercase();
            assert!(
                exposed.contains(&lower) || exempt.contains(&lower.as_str()),
                "{h} is set by the worker but hidden from pages"
            );
        }
    }

    #[test]
    fn the_electron_app_origin_is_allowed() {
        let p = CorsPolicy::default();
        assert!(p.allows("app://adiuva"));
        assert!(p.allows("app://localhost"));
        assert!(p.allows("app://-"));
    }

    #[test]
    fn localhost_on_any_port_is_allowed() {
        let p = CorsPolicy::default();
        assert!(p.allows("http://localhost"));
        assert!(p.allows("http://localhost:5173"));
        assert!(p.allows("http://localhost:65535"));
    }

    #[test]
    fn look_alike_origins_are_refused() {
        let p = CorsPolicy::default();
        for origin in [
            "",
            "null",
            "app://",
            "app://evil/path",
            "app://user@host",
            "http://localhost.evil.com",
            "http://localhost:",
            "http://localhost:0",
            "http://localhost:99999",
            "http://localhost:80/",
            "http://localhostx",
            "https://localhost",
            "http://127.0.0.1:8787",
            "https://evil.example",
            "http://localhost:80 ",
        ] {
            assert!(!p.allows(origin), "{origin:?} should be refused");
        }
    }

    #[test]
    fn extra_origins_match_exactly_or_on_any_port() {
        let p = CorsPolicy::new(vec![
            "https://web.example.com".into(),
            "http://127.0.0.1:*".into(),
        ]);
        assert!(p.allows("https://web.example.com"));
        assert!(!p.allows("https://web.example.com:8443"));
        assert!(!p.allows("https://web.example.com.evil"));
        assert!(p.allows("http://127.0.0.1:3000"));
        assert!(p.allows("http://127.0.0.1"));
        assert!(!p.allows("http://127.0.0.10:3000"));
    }

    #[test]
    fn the_workers_own_origin_is_allowed_and_nothing_like_it() {
        let p = CorsPolicy::default();
        let own = "https://api.adiuva.app";
        assert!(p.allows_from("https://api.adiuva.app", own));
        assert!(p.allows_from("app://adiuva", own));
        for origin in [
            "https://api.adiuva.app.evil",
            "http://api.adiuva.app",
            "https://api.adiuva.app:8443",
            "https://evil.api.adiuva.app",
            "",
        ] {
            assert!(!p.allows_from(origin, own), "{origin:?} should be refused");
        }
        assert!(!p.allows_from("", ""));
        assert!(
            !p.allows_from("null", "null"),
            "an opaque origin is no one's own"
        );
    }

    proptest! {
        #[test]
        fn no_origin_with_a_path_or_whitespace_is_ever_allowed(s in "[ -~]{0,40}") {
            let p = CorsPolicy::new(vec!["https://web.example.com".into()]);
            let origin = format!("http://localhost:1/{s}");
            prop_assert!(!p.allows(&origin));
            let spaced = format!("app://a {s}");
            prop_assert!(!p.allows(&spaced));
        }
    }
}
