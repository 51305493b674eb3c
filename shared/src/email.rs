//! Outgoing email through Resend's HTTP API over the [`HttpClient`] port (fetch in the worker,
//! a script in tests): `POST {EMAIL_API_BASE}/emails` with `Authorization: Bearer
//! <EMAIL_API_KEY>` and a JSON body `{from, to, subject, text, html}`.
//!
//! Retries follow the other upstreams (see `billing::stripe`): each attempt times out after
//! 10 s; 429, 5xx, timeouts and network errors are retried twice with backoff (0.5 s, 1 s),
//! after which the send fails as unavailable. Other 4xx are the service refusing the message
//! (its status only is logged). Neither the recipient nor the content is ever logged, and the
//! service's answer is never logged or returned: it may quote the address.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::config::EmailConfig;
use crate::ports::{HttpClient, HttpError, HttpRequest, Mailer, OutgoingEmail, UpstreamError};

/// Per-attempt timeout.
pub const TIMEOUT_MS: u64 = 10_000;
/// Retries after the first attempt.
pub const RETRIES: u32 = 2;

/// A Resend client over the HTTP client `H`.
pub struct ResendClient<H> {
    http: H,
    api_base: Option<String>,
    api_key: Option<SecretString>,
    from: String,
}

impl<H: HttpClient> ResendClient<H> {
    /// A client for `cfg` (not configured without `api_base`).
    pub fn new(http: H, cfg: &EmailConfig) -> Self {
        Self {
            http,
            api_base: cfg
                .api_base
                .as_ref()
                .map(|u| u.as_str().trim_end_matches('/').to_owned()),
            api_key: cfg.api_key.clone(),
            from: cfg.from.clone(),
        }
    }
}

#[async_trait(?Send)]
impl<H: HttpClient> Mailer for ResendClient<H> {
    async fn send(&self, message: &OutgoingEmail) -> Result<(), UpstreamError> {
        let base = self.api_base.as_ref().ok_or(UpstreamError::NotConfigured)?;
        let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        if let Some(key) = &self.api_key {
            headers.push((
                "Authorization".to_owned(),
                format!("Bearer {}", key.expose_secret()),
            ));
        }
        let body = serde_json::json!({
            "from": self.from,
            "to": [message.to.as_str()],
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
        });
        let req = HttpRequest {
            method: "POST",
            url: format!("{base}/emails"),
            headers,
            body: body.to_string().into_bytes(),
            timeout_ms: TIMEOUT_MS,
        };
        let mut attempt = 0;
        loop {
            let outcome = self.http.send(req.clone()).await;
            let retryable = match &outcome {
                Err(HttpError::Timeout | HttpError::Network(_)) => true,
                // The same answer again would be as long.
                Err(HttpError::TooLarge) => false,
                Ok(r) => r.status == 429 || r.status >= 500,
            };
            if retryable && attempt < RETRIES {
                attempt += 1;
                self.http.sleep(500 * u64::from(attempt)).await;
                continue;
            }
            return match outcome {
                Err(e) => Err(UpstreamError::Unavailable(format!("email: {e}"))),
                Ok(r) if r.status == 429 || r.status >= 500 => Err(UpstreamError::Unavailable(
                    format!("email: {} after {} attempts", r.status, attempt + 1),
                )),
                Ok(r) if (200..300).contains(&r.status) => Ok(()),
                Ok(r) => Err(UpstreamError::Rejected(format!("email: {}", r.status))),
            };
        }
    }

    fn configured(&self) -> bool {
        self.api_base.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Email;
    use crate::ports::HttpResponse;
    use crate::testing::ScriptedHttp;

    fn cfg(base: Option<&str>) -> EmailConfig {
        EmailConfig {
            api_base: base.map(|b| url::Url::parse(b).unwrap()),
            api_key: Some(SecretString::from("re_key")),
            from: "Adiuva <no-reply@example.com>".into(),
        }
    }

    fn message() -> OutgoingEmail {
        OutgoingEmail {
            to: Email::parse("ada@example.com").unwrap(),
            subject: "Hello".into(),
            text: "text".into(),
            html: "<p>html</p>".into(),
        }
    }

    #[allow(clippy::unnecessary_wraps)] // the script's item type
    fn answer(status: u16) -> Result<HttpResponse, HttpError> {
        Ok(HttpResponse {
            status,
            body: br#"{"id":"e1","message":"ada@example.com"}"#.to_vec(),
        })
    }

    #[tokio::test]
    async fn a_message_is_posted_as_resend_expects() {
        let http = ScriptedHttp::with(vec![answer(200)]);
        ResendClient::new(&http, &cfg(Some("http://127.0.0.1:9/")))
            .send(&message())
            .await
            .unwrap();
        let req = &http.requests.borrow()[0];
        assert_eq!(req.method, "POST");
        assert_eq!(req.url, "http://127.0.0.1:9/emails");
        assert!(req
            .headers
            .contains(&("Authorization".into(), "Bearer re_key".into())));
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"from": "Adiuva <no-reply@example.com>", "to": ["ada@example.com"],
                "subject": "Hello", "text": "text", "html": "<p>html</p>"})
        );
    }

    #[tokio::test]
    async fn overload_and_outages_are_retried_twice_with_backoff() {
        let http = ScriptedHttp::with(vec![answer(429), answer(503), answer(200)]);
        ResendClient::new(&http, &cfg(Some("http://127.0.0.1:9")))
            .send(&message())
            .await
            .unwrap();
        assert_eq!(*http.slept.borrow(), vec![500, 1000]);
        let http = ScriptedHttp::with(vec![answer(500), answer(500), answer(500), answer(200)]);
        let e = ResendClient::new(&http, &cfg(Some("http://127.0.0.1:9")))
            .send(&message())
            .await
            .unwrap_err();
        assert!(matches!(e, UpstreamError::Unavailable(_)));
        assert_eq!(http.requests.borrow().len(), 3);
    }

    #[tokio::test]
    async fn a_refusal_is_not_retried_and_never_quotes_the_answer() {
        let http = ScriptedHttp::with(vec![answer(422)]);
        let e = ResendClient::new(&http, &cfg(Some("http://127.0.0.1:9")))
            .send(&message())
            .await
            .unwrap_err();
        assert_eq!(http.requests.borrow().len(), 1);
        assert!(!format!("{e:?}").contains("ada@"), "{e:?}");
        assert!(!format!("{:?}", message()).contains("ada@"));
    }

    #[tokio::test]
    async fn without_a_base_nothing_is_sent_and_the_error_is_email_not_configured() {
        let http = ScriptedHttp::with(vec![]);
        let e = ResendClient::new(&http, &cfg(None))
            .send(&message())
            .await
            .unwrap_err();
        assert!(http.requests.borrow().is_empty());
        assert_eq!(
            e.into_app_error(crate::error::Upstream::Email).code(),
            "email_not_configured"
        );
    }
}
