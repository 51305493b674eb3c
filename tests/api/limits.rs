//! Tiers and per-user rate limits, end to end.

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::billing::subscribe;
use crate::helpers::{assert_error, TestApp};

fn header(r: &reqwest::Response, name: &str) -> Option<u64> {
    r.headers().get(name)?.to_str().ok()?.parse().ok()
}

pub async fn tiers_lists_the_matrix_with_prices(app: TestApp) {
    let r = app.req(Method::GET, "/tiers").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("x-ratelimit-limit").is_none(),
        "public routes are not limited"
    );
    let body: Value = r.json().await.unwrap();
    let tiers = body["tiers"].as_array().unwrap();
    let summary: Vec<(&str, u64, bool, u64)> = tiers
        .iter()
        .map(|t| {
            (
                t["tier"].as_str().unwrap(),
                t["price_cents"].as_u64().unwrap(),
                t["per_seat"].as_bool().unwrap(),
                t["requests_per_minute"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("free", 0, false, 20),
            ("pro", 1_500, false, 60),
            ("power", 2_900, false, 120),
            ("team", 4_900, true, 200)
        ]
    );
    assert_eq!(tiers[0]["currency"], "eur");
    assert_eq!(tiers[0]["features"]["cloud_storage_gb"], 0);
    assert_eq!(tiers[2]["features"]["plugin_marketplace"], true);
    assert_eq!(tiers[3]["features"]["backup_gb"], -1);
}

/// Fires `n` authenticated requests at once; returns the responses.
async fn burst(app: &TestApp, token: &str, n: usize) -> Vec<reqwest::Response> {
    join_all((0..n).map(|_| app.get_auth("/auth/me", token))).await
}

pub async fn a_free_user_gets_exactly_20_of_25_concurrent_requests(app: TestApp) {
    let user = app.register("burst").await;
    let responses = burst(&app, &user.access_token, 25).await;
    let mut remaining = Vec::new();
    let mut refused = 0;
    for r in responses {
        assert_eq!(header(&r, "x-ratelimit-limit"), Some(20));
        match r.status() {
            StatusCode::OK => remaining.push(header(&r, "x-ratelimit-remaining").unwrap()),
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                assert_eq!(header(&r, "x-ratelimit-remaining"), Some(0));
                let retry = header(&r, "retry-after").expect("Retry-After on 429");
                assert!(
                    (1..=3).contains(&retry),
                    "one unit frees every 3 s: {retry}"
                );
                assert_error(r, 429, "rate_limited").await;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(remaining.len(), 20, "exactly the limit got through");
    assert_eq!(refused, 5);
    remaining.sort_unstable();
    assert_eq!(
        remaining,
        (0..20).collect::<Vec<u64>>(),
        "each admitted request took one unit"
    );
}

pub async fn the_limit_follows_an_upgrade_at_once(app: TestApp) {
    let user = app.register("upgrade-limit").await;
    let responses = burst(&app, &user.access_token, 21).await;
    assert_eq!(
        responses.iter().filter(|r| r.status() == 429).count(),
        1,
        "the free allowance is spent"
    );
    subscribe(&app, &user, "power", 1).await;
    let r = app.get_auth("/auth/me", &user.access_token).await;
    assert_eq!(
        r.status(),
        200,
        "the upgrade applies to the very next request"
    );
    assert_eq!(header(&r, "x-ratelimit-limit"), Some(120));
    assert_eq!(header(&r, "x-ratelimit-remaining"), Some(119));
    assert_eq!(r.json::<Value>().await.unwrap()["tier"], "power");
}

pub async fn a_team_subscriber_has_200_a_minute_whatever_the_seats(app: TestApp) {
    let user = app.register("seats").await;
    subscribe(&app, &user, "team", 7).await;
    let r = app
        .get_auth("/billing/subscription", &user.access_token)
        .await;
    // Per member (each member of the team has their own 200), not 200 × seats.
    assert_eq!(header(&r, "x-ratelimit-limit"), Some(200));
    assert_eq!(r.json::<Value>().await.unwrap()["seats"], 7);
}

pub async fn authenticated_errors_carry_the_rate_limit_headers_too(app: TestApp) {
    let user = app.register("err-headers").await;
    let r = app
        .req(Method::DELETE, "/billing/subscription")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "x-ratelimit-limit"), Some(20));
    assert_eq!(header(&r, "x-ratelimit-remaining"), Some(19));
    assert_error(r, 404, "not_found").await;
}
