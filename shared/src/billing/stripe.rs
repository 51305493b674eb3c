//! Stripe's REST API over the [`HttpClient`] port (fetch in the worker, a script in tests).
//!
//! Form-encoded POSTs with `Authorization: Bearer <secret key>` and an `Idempotency-Key` on
//! every one (the same key on every retry). Each attempt times out after 10 s; 429, 5xx,
//! timeouts and network errors are retried twice with backoff (0.5 s, 1 s), after which the
//! call fails as unavailable (503). Other 4xx are Stripe refusing the request (502, details in
//! the logs only).

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::form_urlencoded;

use crate::ports::{
    CheckoutRequest, CheckoutSession, HttpClient, HttpError, HttpRequest, Payments,
    TransferRequest, UpstreamError,
};

/// Per-attempt timeout.
pub const TIMEOUT_MS: u64 = 10_000;
/// Retries after the first attempt.
pub const RETRIES: u32 = 2;

/// A Stripe client over the HTTP client `H`.
pub struct StripeClient<H> {
    http: H,
    api_base: String,
    secret_key: Option<SecretString>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
struct StripeErrorBody {
    error: StripeErrorDetail,
}

#[derive(Deserialize)]
struct StripeErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

impl<H: HttpClient> StripeClient<H> {
    /// A client for `api_base` (e.g. `https://api.stripe.com`); `None` key: not configured.
    pub fn new(http: H, api_base: &str, secret_key: Option<SecretString>) -> Self {
        Self {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            secret_key,
        }
    }

    /// POSTs `form` to `path`; returns the created object's id and url.
    async fn post(
        &self,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<Created, UpstreamError> {
        let key = self
            .secret_key
            .as_ref()
            .ok_or(UpstreamError::NotConfigured)?;
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish()
            .into_bytes();
        let req = HttpRequest {
            method: "POST",
            url: format!("{}{path}", self.api_base),
            headers: vec![
                (
                    "Authorization".to_owned(),
                    format!("Bearer {}", key.expose_secret()),
                ),
                (
                    "Content-Type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned(),
                ),
                ("Idempotency-Key".to_owned(), idempotency_key.to_owned()),
            ],
            body,
            timeout_ms: TIMEOUT_MS,
        };
        let mut attempt = 0;
        loop {
            let outcome = self.http.send(req.clone()).await;
            let retryable = match &outcome {
                Err(HttpError::Timeout | HttpError::Network(_)) => true,
                Ok(r) => r.status == 429 || r.status >= 500,
            };
            if retryable && attempt < RETRIES {
                attempt += 1;
                self.http.sleep(500 * u64::from(attempt)).await;
                continue;
            }
            return match outcome {
                Err(e) => Err(UpstreamError::Unavailable(format!("stripe {path}: {e}"))),
                Ok(r) if r.status == 429 || r.status >= 500 => Err(UpstreamError::Unavailable(
                    format!("stripe {path}: {} after {} attempts", r.status, attempt + 1),
                )),
                Ok(r) if !(200..300).contains(&r.status) => {
                    let detail = serde_json::from_slice::<StripeErrorBody>(&r.body)
                        .map(|b| {
                            format!(
                                "{}: {}",
                                b.error.kind.unwrap_or_default(),
                                b.error.message.unwrap_or_default()
                            )
                        })
                        .unwrap_or_default();
                    Err(UpstreamError::Rejected(format!(
                        "stripe {path}: {} {detail}",
                        r.status
                    )))
                }
                Ok(r) => serde_json::from_slice::<Created>(&r.body).map_err(|e| {
                    UpstreamError::BadResponse(format!("stripe {path}: unreadable body: {e}"))
                }),
            };
        }
    }
}

#[async_trait(?Send)]
impl<H: HttpClient> Payments for StripeClient<H> {
    async fn create_checkout_session(
        &self,
        req: &CheckoutRequest,
    ) -> Result<CheckoutSession, UpstreamError> {
        let user = req.user_id.to_string();
        let mut form: Vec<(&str, String)> = vec![
            ("mode", "subscription".to_owned()),
            ("line_items[0][price]", req.price_id.clone()),
            ("line_items[0][quantity]", req.seats.to_string()),
            ("client_reference_id", user.clone()),
            ("success_url", req.success_url.clone()),
            ("cancel_url", req.cancel_url.clone()),
            ("metadata[user_id]", user.clone()),
            ("metadata[tier]", req.tier.as_str().to_owned()),
            ("metadata[seats]", req.seats.to_string()),
            ("subscription_data[metadata][user_id]", user),
            (
                "subscription_data[metadata][tier]",
                req.tier.as_str().to_owned(),
            ),
        ];
        match &req.customer_id {
            Some(c) => form.push(("customer", c.clone())),
            None => form.push(("customer_email", req.email.to_string())),
        }
        let created = self
            .post("/v1/checkout/sessions", &form, &req.idempotency_key)
            .await?;
        let url = created.url.ok_or_else(|| {
            UpstreamError::BadResponse("stripe checkout session without a url".to_owned())
        })?;
        Ok(CheckoutSession {
            id: created.id,
            url,
        })
    }

    async fn cancel_subscription(
        &self,
        subscription_id: &str,
        idempotency_key: &str,
    ) -> Result<(), UpstreamError> {
        let path = format!(
            "/v1/subscriptions/{}",
            form_urlencoded::byte_serialize(subscription_id.as_bytes()).collect::<String>()
        );
        self.post(
            &path,
            &[("cancel_at_period_end", "true".to_owned())],
            idempotency_key,
        )
        .await
        .map(|_| ())
    }

    async fn create_transfer(&self, req: &TransferRequest) -> Result<String, UpstreamError> {
        let form = [
            ("amount", req.amount_cents.to_string()),
            ("currency", req.currency.clone()),
            ("destination", req.destination.clone()),
            ("transfer_group", req.transfer_group.clone()),
        ];
        self.post("/v1/transfers", &form, &req.idempotency_key)
            .await
            .map(|c| c.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, Tier, UserId};
    use crate::ports::HttpResponse;
    use crate::testing::ScriptedHttp;

    fn checkout(customer: Option<&str>) -> CheckoutRequest {
        CheckoutRequest {
            user_id: UserId(uuid::Uuid::from_u128(1)),
            email: Email::parse("ada@example.com").unwrap(),
            customer_id: customer.map(str::to_owned),
            tier: Tier::Team,
            price_id: "price_team".into(),
            seats: 3,
            success_url: "https://app.example/ok".into(),
            cancel_url: "https://app.example/no".into(),
            idempotency_key: "idem-1".into(),
        }
    }

    #[allow(clippy::unnecessary_wraps)] // scripts hold results
    fn ok(body: &str) -> Result<HttpResponse, HttpError> {
        Ok(HttpResponse {
            status: 200,
            body: body.as_bytes().to_vec(),
        })
    }

    fn form_of(body: &[u8]) -> Vec<(String, String)> {
        form_urlencoded::parse(body).into_owned().collect()
    }

    #[tokio::test]
    async fn checkout_posts_the_subscription_form_with_auth_and_idempotency() {
        let http = ScriptedHttp::with(vec![ok(r#"{"id":"cs_1","url":"https://pay/cs_1"}"#)]);
        let c = StripeClient::new(
            &http,
            "https://stripe.test/",
            Some("sk_test".to_owned().into()),
        );
        let s = c.create_checkout_session(&checkout(None)).await.unwrap();
        assert_eq!(s.url, "https://pay/cs_1");
        let reqs = http.requests.borrow();
        let r = &reqs[0];
        assert_eq!(r.url, "https://stripe.test/v1/checkout/sessions");
        assert!(r
            .headers
            .contains(&("Authorization".into(), "Bearer sk_test".into())));
        assert!(r
            .headers
            .contains(&("Idempotency-Key".into(), "idem-1".into())));
        let form = form_of(&r.body);
        for (k, v) in [
            ("mode", "subscription"),
            ("line_items[0][price]", "price_team"),
            ("line_items[0][quantity]", "3"),
            (
                "client_reference_id",
                "00000000-0000-0000-0000-000000000001",
            ),
            ("metadata[tier]", "team"),
            ("customer_email", "ada@example.com"),
        ] {
            assert!(form.contains(&(k.into(), v.into())), "{k}={v} in {form:?}");
        }
    }

    #[tokio::test]
    async fn an_existing_customer_is_reused() {
        let http = ScriptedHttp::with(vec![ok(r#"{"id":"cs_1","url":"u"}"#)]);
        let c = StripeClient::new(&http, "https://s", Some("sk".to_owned().into()));
        c.create_checkout_session(&checkout(Some("cus_9")))
            .await
            .unwrap();
        let form = form_of(&http.requests.borrow()[0].body);
        assert!(form.contains(&("customer".into(), "cus_9".into())));
        assert!(!form.iter().any(|(k, _)| k == "customer_email"));
    }

    #[tokio::test]
    async fn overload_and_timeouts_are_retried_with_the_same_key() {
        let http = ScriptedHttp::with(vec![
            Ok(HttpResponse {
                status: 503,
                body: vec![],
            }),
            Err(HttpError::Timeout),
            ok(r#"{"id":"tr_1"}"#),
        ]);
        let c = StripeClient::new(&http, "https://s", Some("sk".to_owned().into()));
        let id = c
            .create_transfer(&TransferRequest {
                amount_cents: 700,
                currency: "eur".into(),
                destination: "acct_1".into(),
                transfer_group: "plugin-x".into(),
                idempotency_key: "k".into(),
            })
            .await
            .unwrap();
        assert_eq!(id, "tr_1");
        let reqs = http.requests.borrow();
        assert_eq!(reqs.len(), 3);
        assert!(reqs
            .iter()
            .all(|r| r.headers.contains(&("Idempotency-Key".into(), "k".into()))));
        assert_eq!(*http.slept.borrow(), vec![500, 1000]);
    }

    #[tokio::test]
    async fn persistent_overload_is_unavailable_and_4xx_is_rejected() {
        let http = ScriptedHttp::with(vec![
            Ok(HttpResponse {
                status: 500,
                body: vec![],
            }),
            Ok(HttpResponse {
                status: 502,
                body: vec![],
            }),
            Ok(HttpResponse {
                status: 429,
                body: vec![],
            }),
        ]);
        let c = StripeClient::new(&http, "https://s", Some("sk".to_owned().into()));
        let e = c.cancel_subscription("sub_1", "k").await.unwrap_err();
        assert!(matches!(e, UpstreamError::Unavailable(_)), "{e:?}");

        let http = ScriptedHttp::with(vec![Ok(HttpResponse {
            status: 400,
            body: br#"{"error":{"type":"invalid_request_error","message":"No such price"}}"#
                .to_vec(),
        })]);
        let c = StripeClient::new(&http, "https://s", Some("sk".to_owned().into()));
        let e = c
            .create_checkout_session(&checkout(None))
            .await
            .unwrap_err();
        let UpstreamError::Rejected(detail) = e else {
            panic!("rejected expected")
        };
        assert!(detail.contains("No such price"));
        assert_eq!(http.requests.borrow().len(), 1, "4xx is not retried");
    }

    #[tokio::test]
    async fn without_a_key_nothing_is_sent() {
        let http = ScriptedHttp::with(vec![]);
        let c = StripeClient::new(&http, "https://s", None);
        assert!(matches!(
            c.cancel_subscription("sub_1", "k").await,
            Err(UpstreamError::NotConfigured)
        ));
        assert!(http.requests.borrow().is_empty());
    }

    #[tokio::test]
    async fn a_body_that_is_not_an_object_is_a_bad_response() {
        let http = ScriptedHttp::with(vec![ok("<html>")]);
        let c = StripeClient::new(&http, "https://s", Some("sk".to_owned().into()));
        assert!(matches!(
            c.cancel_subscription("sub_1", "k").await,
            Err(UpstreamError::BadResponse(_))
        ));
    }
}
