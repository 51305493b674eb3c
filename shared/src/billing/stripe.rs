//! Stripe's REST API over the [`HttpClient`] port (fetch in the worker, a script in tests).
//!
//! `Authorization: Bearer <secret key>` on every request; POSTs are form-encoded and carry an
//! `Idempotency-Key` (the same key on every retry). Each attempt times out after 10 s; 429,
//! 5xx, timeouts and network errors are retried twice with backoff (0.5 s, 1 s), after which
//! the call fails as unavailable (503). Other 4xx are Stripe refusing the request (502, details
//! in the logs only), except a 402 while charging a card: that is the card being declined.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use url::form_urlencoded;

use crate::ports::{
    ChargeRequest, CheckoutRequest, CheckoutSession, HttpClient, HttpError, HttpRequest,
    HttpResponse, Payments, PortalRequest, SeatChange, TransferRequest, UpstreamError,
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

/// A list page (`GET /v1/customers/{id}/payment_methods`); only the ids matter.
#[derive(Deserialize)]
struct List {
    data: Vec<Listed>,
}

#[derive(Deserialize)]
struct Listed {
    id: String,
}

/// A subscription's items (`GET /v1/subscriptions/{id}`); only the first item's id matters.
#[derive(Deserialize)]
struct SubscriptionItems {
    items: List,
}

#[derive(Deserialize)]
struct PaymentIntent {
    id: String,
    status: String,
}

#[derive(Deserialize)]
struct StripeErrorBody {
    error: StripeErrorDetail,
}

#[derive(Deserialize)]
struct StripeErrorDetail {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
}

/// A request before it is sent: GET without a body, or POST with a form and idempotency key.
enum Call<'a> {
    Get,
    Post {
        form: &'a [(&'a str, String)],
        idempotency_key: &'a str,
    },
    Delete {
        idempotency_key: &'a str,
    },
}

/// An identifier Stripe uses for error types and codes (`card_error`, `card_declined`), kept
/// only when it looks like one: anything else is upstream free text, which is never logged.
fn identifier(raw: Option<String>) -> Option<String> {
    raw.filter(|s| {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

/// What an error body says, for logs: Stripe's error `type` and its `code`/`decline_code`
/// (`card_error (card_declined/insufficient_funds)`). The `message` is left out: it is free
/// text and may quote the customer's email address or other personal data.
fn error_detail(body: &[u8]) -> String {
    let Ok(b) = serde_json::from_slice::<StripeErrorBody>(body) else {
        return String::new();
    };
    let kind = identifier(b.error.kind).unwrap_or_else(|| "error".to_owned());
    let codes: Vec<String> = [b.error.code, b.error.decline_code]
        .into_iter()
        .filter_map(identifier)
        .collect();
    if codes.is_empty() {
        kind
    } else {
        format!("{kind} ({})", codes.join("/"))
    }
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

    /// Sends `call` to `path` (which may carry a query), retrying overload and timeouts.
    /// Returns the final answer when it is a 2xx or a 4xx other than 429.
    async fn send(&self, path: &str, call: Call<'_>) -> Result<HttpResponse, UpstreamError> {
        let key = self
            .secret_key
            .as_ref()
            .ok_or(UpstreamError::NotConfigured)?;
        let mut headers = vec![(
            "Authorization".to_owned(),
            format!("Bearer {}", key.expose_secret()),
        )];
        let (method, body) = match call {
            Call::Get => ("GET", Vec::new()),
            Call::Post {
                form,
                idempotency_key,
            } => {
                headers.push((
                    "Content-Type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned(),
                ));
                headers.push(("Idempotency-Key".to_owned(), idempotency_key.to_owned()));
                let body = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                    .finish()
                    .into_bytes();
                ("POST", body)
            }
            Call::Delete { idempotency_key } => {
                headers.push(("Idempotency-Key".to_owned(), idempotency_key.to_owned()));
                ("DELETE", Vec::new())
            }
        };
        let req = HttpRequest {
            method,
            url: format!("{}{path}", self.api_base),
            headers,
            body,
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
                Err(e) => Err(UpstreamError::Unavailable(format!("stripe {path}: {e}"))),
                Ok(r) if r.status == 429 || r.status >= 500 => Err(UpstreamError::Unavailable(
                    format!("stripe {path}: {} after {} attempts", r.status, attempt + 1),
                )),
                Ok(r) => Ok(r),
            };
        }
    }

    /// The 2xx body of `r` as a `T`; any other status is Stripe refusing the request.
    fn decode<T: DeserializeOwned>(path: &str, r: &HttpResponse) -> Result<T, UpstreamError> {
        if !(200..300).contains(&r.status) {
            return Err(UpstreamError::Rejected(format!(
                "stripe {path}: {} {}",
                r.status,
                error_detail(&r.body)
            )));
        }
        serde_json::from_slice::<T>(&r.body)
            .map_err(|e| UpstreamError::BadResponse(format!("stripe {path}: unreadable body: {e}")))
    }

    /// POSTs `form` to `path`; returns the created object's id and url.
    async fn post(
        &self,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<Created, UpstreamError> {
        let r = self
            .send(
                path,
                Call::Post {
                    form,
                    idempotency_key,
                },
            )
            .await?;
        Self::decode(path, &r)
    }

    /// Like [`Self::send`], but a 402 (a card error) is a decline.
    async fn send_charging(
        &self,
        path: &str,
        call: Call<'_>,
    ) -> Result<HttpResponse, UpstreamError> {
        let r = self.send(path, call).await?;
        if r.status == 402 {
            return Err(UpstreamError::Declined(format!(
                "stripe {path}: 402 {}",
                error_detail(&r.body)
            )));
        }
        Ok(r)
    }
}

/// A path segment, percent-encoded.
fn segment(id: &str) -> String {
    form_urlencoded::byte_serialize(id.as_bytes()).collect()
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
        let path = format!("/v1/subscriptions/{}", segment(subscription_id));
        self.post(
            &path,
            &[("cancel_at_period_end", "true".to_owned())],
            idempotency_key,
        )
        .await
        .map(|_| ())
    }

    async fn cancel_subscription_now(
        &self,
        subscription_id: &str,
        idempotency_key: &str,
    ) -> Result<(), UpstreamError> {
        let path = format!("/v1/subscriptions/{}", segment(subscription_id));
        let r = self.send(&path, Call::Delete { idempotency_key }).await?;
        // Already gone (cancelled before, or never created in this Stripe account): done.
        if r.status == 404 {
            return Ok(());
        }
        Self::decode::<Created>(&path, &r).map(|_| ())
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

    async fn create_portal_session(&self, req: &PortalRequest) -> Result<String, UpstreamError> {
        let form = [
            ("customer", req.customer_id.clone()),
            ("return_url", req.return_url.clone()),
        ];
        let created = self
            .post("/v1/billing_portal/sessions", &form, &req.idempotency_key)
            .await?;
        created.url.ok_or_else(|| {
            UpstreamError::BadResponse("stripe billing portal session without a url".to_owned())
        })
    }

    /// Finds the subscription's item (`GET /v1/subscriptions/{id}`, a read), then sets its
    /// quantity with proration in one idempotent `POST /v1/subscriptions/{id}`.
    async fn update_seats(&self, req: &SeatChange) -> Result<(), UpstreamError> {
        let path = format!("/v1/subscriptions/{}", segment(&req.subscription_id));
        let r = self.send(&path, Call::Get).await?;
        let sub: SubscriptionItems = Self::decode(&path, &r)?;
        let item = sub
            .items
            .data
            .into_iter()
            .next()
            .map(|i| i.id)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                UpstreamError::BadResponse("stripe subscription without an item".to_owned())
            })?;
        let form = [
            ("items[0][id]", item),
            ("items[0][quantity]", req.seats.to_string()),
            ("proration_behavior", "create_prorations".to_owned()),
        ];
        self.post(&path, &form, &req.idempotency_key)
            .await
            .map(|_| ())
    }

    /// The customer's first saved card, then a confirmed off-session payment intent on it.
    async fn charge(&self, req: &ChargeRequest) -> Result<String, UpstreamError> {
        let path = format!(
            "/v1/customers/{}/payment_methods?type=card&limit=1",
            segment(&req.customer_id)
        );
        let r = self.send_charging(&path, Call::Get).await?;
        let cards: List = Self::decode(&path, &r)?;
        let Some(card) = cards.data.into_iter().next() else {
            return Err(UpstreamError::Declined(
                "customer has no saved card".to_owned(),
            ));
        };

        let path = "/v1/payment_intents";
        let metadata_keys: Vec<String> = req
            .metadata
            .iter()
            .map(|(k, _)| format!("metadata[{k}]"))
            .collect();
        let mut form: Vec<(&str, String)> = vec![
            ("amount", req.amount_cents.to_string()),
            ("currency", req.currency.clone()),
            ("customer", req.customer_id.clone()),
            ("payment_method", card.id.clone()),
            ("confirm", "true".to_owned()),
            ("off_session", "true".to_owned()),
            ("description", req.description.clone()),
            ("transfer_group", req.transfer_group.clone()),
        ];
        form.extend(
            metadata_keys
                .iter()
                .zip(&req.metadata)
                .map(|(k, (_, v))| (k.as_str(), v.clone())),
        );
        // The card is part of the key: a retry with the same card replays Stripe's answer (no
        // second charge), while a buyer who replaced a declined card is charged afresh instead
        // of being shown the cached decline for 24 hours.
        let idempotency_key = format!("{}:{}", req.idempotency_key, card.id);
        let r = self
            .send_charging(
                path,
                Call::Post {
                    form: &form,
                    idempotency_key: &idempotency_key,
                },
            )
            .await?;
        let intent: PaymentIntent = Self::decode(path, &r)?;
        if intent.status == "succeeded" {
            Ok(intent.id)
        } else {
            Err(UpstreamError::Declined(format!(
                "stripe payment intent {} is {}, not succeeded",
                intent.id, intent.status
            )))
        }
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
    async fn a_portal_session_posts_the_customer_and_return_url_with_idempotency() {
        let http = ScriptedHttp::with(vec![ok(
            r#"{"id":"bps_1","object":"billing_portal.session","url":"https://portal/bps_1"}"#,
        )]);
        let c = StripeClient::new(
            &http,
            "https://stripe.test",
            Some("sk_test".to_owned().into()),
        );
        let req = PortalRequest {
            customer_id: "cus_9".into(),
            return_url: "https://app.example/billing".into(),
            idempotency_key: "portal-1".into(),
        };
        assert_eq!(
            c.create_portal_session(&req).await.unwrap(),
            "https://portal/bps_1"
        );
        let reqs = http.requests.borrow();
        assert_eq!(
            reqs[0].url,
            "https://stripe.test/v1/billing_portal/sessions"
        );
        assert!(reqs[0]
            .headers
            .contains(&("Idempotency-Key".into(), "portal-1".into())));
        assert_eq!(
            form_of(&reqs[0].body),
            vec![
                ("customer".to_owned(), "cus_9".to_owned()),
                (
                    "return_url".to_owned(),
                    "https://app.example/billing".to_owned()
                )
            ]
        );
    }

    #[tokio::test]
    async fn a_portal_session_without_a_url_is_a_bad_response() {
        let http = ScriptedHttp::with(vec![ok(r#"{"id":"bps_1"}"#)]);
        let c = StripeClient::new(
            &http,
            "https://stripe.test",
            Some("sk_test".to_owned().into()),
        );
        let req = PortalRequest {
            customer_id: "cus_9".into(),
            return_url: "https://app.example/billing".into(),
            idempotency_key: "portal-1".into(),
        };
        assert!(matches!(
            c.create_portal_session(&req).await,
            Err(UpstreamError::BadResponse(_))
        ));
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
        assert!(detail.contains("400 invalid_request_error"), "{detail}");
        assert!(!detail.contains("No such price"), "{detail}");
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

    fn charge_req() -> ChargeRequest {
        ChargeRequest {
            customer_id: "cus_1/x".into(),
            amount_cents: 499,
            currency: "eur".into(),
            description: "Adiuva plugin p 1.0.0".into(),
            transfer_group: "plugin_p".into(),
            metadata: vec![
                ("plugin_id".into(), "p".into()),
                ("user_id".into(), "u".into()),
            ],
            idempotency_key: "plugin-purchase:p:u".into(),
        }
    }

    #[allow(clippy::unnecessary_wraps)] // scripts hold results
    fn status(status: u16, body: &str) -> Result<HttpResponse, HttpError> {
        Ok(HttpResponse {
            status,
            body: body.as_bytes().to_vec(),
        })
    }

    const ONE_CARD: &str =
        r#"{"object":"list","data":[{"id":"pm_1","type":"card"},{"id":"pm_2"}]}"#;

    #[tokio::test]
    async fn a_charge_confirms_an_off_session_intent_on_the_first_saved_card() {
        let http = ScriptedHttp::with(vec![
            ok(ONE_CARD),
            ok(r#"{"id":"pi_1","status":"succeeded"}"#),
        ]);
        let c = StripeClient::new(&http, "https://s/", Some("sk_test".to_owned().into()));
        assert_eq!(c.charge(&charge_req()).await.unwrap(), "pi_1");

        let reqs = http.requests.borrow();
        assert_eq!(reqs.len(), 2);
        let list = &reqs[0];
        assert_eq!(list.method, "GET");
        assert_eq!(
            list.url,
            "https://s/v1/customers/cus_1%2Fx/payment_methods?type=card&limit=1"
        );
        assert!(list
            .headers
            .contains(&("Authorization".into(), "Bearer sk_test".into())));
        assert!(list.body.is_empty());

        let pay = &reqs[1];
        assert_eq!(pay.method, "POST");
        assert_eq!(pay.url, "https://s/v1/payment_intents");
        assert!(pay
            .headers
            .contains(&("Authorization".into(), "Bearer sk_test".into())));
        assert!(pay
            .headers
            .contains(&("Idempotency-Key".into(), "plugin-purchase:p:u:pm_1".into())));
        let form = form_of(&pay.body);
        let expected: Vec<(String, String)> = [
            ("amount", "499"),
            ("currency", "eur"),
            ("customer", "cus_1/x"),
            ("payment_method", "pm_1"),
            ("confirm", "true"),
            ("off_session", "true"),
            ("description", "Adiuva plugin p 1.0.0"),
            ("transfer_group", "plugin_p"),
            ("metadata[plugin_id]", "p"),
            ("metadata[user_id]", "u"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(form, expected);
    }

    #[tokio::test]
    async fn a_customer_without_a_card_is_declined_before_any_intent_is_created() {
        let http = ScriptedHttp::with(vec![ok(r#"{"object":"list","data":[]}"#)]);
        let c = StripeClient::new(&http, "https://s", Some("sk".to_owned().into()));
        let e = c.charge(&charge_req()).await.unwrap_err();
        let UpstreamError::Declined(detail) = e else {
            panic!("declined expected, got {e:?}")
        };
        assert_eq!(detail, "customer has no saved card");
        let reqs = http.requests.borrow();
        assert_eq!(reqs.len(), 1);
        assert!(!reqs.iter().any(|r| r.url.contains("payment_intents")));
    }

    #[tokio::test]
    async fn a_card_error_is_a_decline_with_stripes_codes_but_not_its_words_nor_the_secret() {
        let http = ScriptedHttp::with(vec![
            ok(ONE_CARD),
            status(
                402,
                r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds."}}"#,
            ),
        ]);
        let c = StripeClient::new(&http, "https://s", Some("sk_live_secret".to_owned().into()));
        let e = c.charge(&charge_req()).await.unwrap_err();
        let UpstreamError::Declined(detail) = e else {
            panic!("declined expected, got {e:?}")
        };
        assert!(detail.contains("card_error"), "{detail}");
        assert!(detail.contains("insufficient_funds"), "{detail}");
        assert!(
            !detail.contains("insufficient funds"),
            "Stripe's free text stays out: {detail}"
        );
        assert!(!detail.contains("sk_live_secret"), "{detail}");
        assert_eq!(http.requests.borrow().len(), 2, "a decline is not retried");
    }

    #[tokio::test]
    async fn an_intent_that_did_not_succeed_is_a_decline() {
        for s in ["requires_action", "requires_payment_method", "processing"] {
            let http = ScriptedHttp::with(vec![
                ok(ONE_CARD),
                ok(&format!(r#"{{"id":"pi_9","status":"{s}"}}"#)),
            ]);
            let c = StripeClient::new(&http, "https://s", Some("sk".to_owned().into()));
            let e = c.charge(&charge_req()).await.unwrap_err();
            let UpstreamError::Declined(detail) = e else {
                panic!("declined expected for {s}, got {e:?}")
            };
            assert!(detail.contains(s), "{detail}");
        }
    }

    #[tokio::test]
    async fn a_charge_retries_overload_with_the_same_idempotency_key() {
        let http = ScriptedHttp::with(vec![
            status(429, ""),
            ok(ONE_CARD),
            status(500, ""),
            Err(HttpError::Timeout),
            ok(r#"{"id":"pi_2","status":"succeeded"}"#),
        ]);
        let c = StripeClient::new(&http, "https://s", Some("sk".to_owned().into()));
        assert_eq!(c.charge(&charge_req()).await.unwrap(), "pi_2");
        let reqs = http.requests.borrow();
        assert_eq!(reqs.len(), 5);
        let intents: Vec<_> = reqs
            .iter()
            .filter(|r| r.url.ends_with("/v1/payment_intents"))
            .collect();
        assert_eq!(intents.len(), 3);
        assert!(intents.iter().all(|r| r
            .headers
            .contains(&("Idempotency-Key".into(), "plugin-purchase:p:u:pm_1".into()))));
        assert!(intents.iter().all(|r| r.body == intents[0].body));
        assert_eq!(*http.slept.borrow(), vec![500, 500, 1000]);
    }

    #[tokio::test]
    async fn other_refusals_and_outages_while_charging_are_not_declines() {
        let http = ScriptedHttp::with(vec![status(
            404,
            r#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such customer: ada@example.com"}}"#,
        )]);
        let c = StripeClient::new(&http, "https://s", Some("sk".to_owned().into()));
        let e = c.charge(&charge_req()).await.unwrap_err();
        assert!(
            matches!(&e, UpstreamError::Rejected(d) if d.ends_with("404 invalid_request_error (resource_missing)")),
            "{e:?}"
        );
        assert!(!format!("{e:?}").contains("ada@example.com"));

        let http = ScriptedHttp::with(vec![
            ok(ONE_CARD),
            status(503, ""),
            status(503, ""),
            status(503, ""),
        ]);
        let c = StripeClient::new(&http, "https://s", Some("sk".to_owned().into()));
        let e = c.charge(&charge_req()).await.unwrap_err();
        assert!(matches!(e, UpstreamError::Unavailable(_)), "{e:?}");

        let http = ScriptedHttp::with(vec![]);
        let c = StripeClient::new(&http, "https://s", None);
        assert!(matches!(
            c.charge(&charge_req()).await,
            Err(UpstreamError::NotConfigured)
        ));
        assert!(http.requests.borrow().is_empty());
    }
}
