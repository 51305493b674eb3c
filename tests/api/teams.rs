//! Teams end to end (issue #21): a Team-tier subscription makes its buyer the owner of a team;
//! invitations (emailed, or a link the owner shares) within the seats; members have the Team
//! tier in force until they leave or are removed, or the team's subscription ends; seat changes
//! go to the scripted Stripe server and are confirmed by its webhook.

use futures_util::future::join_all;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::{stripe_signature, PRICE_TEAM, STRIPE_WEBHOOK_SECRET};
use crate::helpers::{
    assert_error, emails_to, last_email_to, link_token, sha, user_id_of, TestApp, TestUser,
};

fn now_secs() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("seconds fit")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Sends a correctly signed Stripe event; asserts 200.
async fn stripe_event(app: &TestApp, kind: &str, created: i64, object: Value) {
    let payload = json!({"id": unique("evt"), "object": "event", "type": kind,
        "created": created, "data": {"object": object}})
    .to_string();
    let r = app
        .req(Method::POST, "/billing/webhook")
        .header("Content-Type", "application/json")
        .header(
            "Stripe-Signature",
            stripe_signature(&payload, now_secs(), STRIPE_WEBHOOK_SECRET),
        )
        .body(payload)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK, "{kind}");
}

/// A team's owner, as the tests drive it.
pub(crate) struct Team {
    pub(crate) owner: TestUser,
    pub(crate) id: String,
    sub: String,
    cus: String,
}

/// A fresh verified user.
pub(crate) async fn verified(app: &TestApp, tag: &str) -> TestUser {
    let u = app.register(tag).await;
    app.verify(&u.email, &u.access_token).await;
    u
}

/// A fresh user who buys the Team tier with `seats` (a signed `checkout.session.completed`).
pub(crate) async fn team(app: &TestApp, seats: u32) -> Team {
    let owner = verified(app, "owner").await;
    let (sub, cus) = (unique("sub"), unique("cus"));
    let id = user_id_of(&owner);
    stripe_event(
        app,
        "checkout.session.completed",
        now_secs(),
        json!({"object": "checkout.session", "mode": "subscription", "client_reference_id": id,
            "customer": cus, "subscription": sub,
            "metadata": {"tier": "team", "user_id": id, "seats": seats.to_string()}}),
    )
    .await;
    let view = current(app, &owner).await;
    Team {
        id: view["id"].as_str().expect("a team id").to_owned(),
        owner,
        sub,
        cus,
    }
}

/// `GET /teams/current` as `user`, asserting 200.
pub(crate) async fn current(app: &TestApp, user: &TestUser) -> Value {
    let r = app.get_auth("/teams/current", &user.access_token).await;
    assert_eq!(r.status(), StatusCode::OK, "GET /teams/current");
    r.json().await.expect("json")
}

async fn call(
    app: &TestApp,
    user: &TestUser,
    m: Method,
    path: &str,
    body: Option<Value>,
) -> Response {
    let mut req = app.req(m, path).bearer_auth(&user.access_token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("request")
}

async fn invite(app: &TestApp, by: &TestUser, team: &str, body: Value) -> Response {
    call(
        app,
        by,
        Method::POST,
        &format!("/teams/{team}/invites"),
        Some(body),
    )
    .await
}

/// Invites `who` by email as `by`; returns the token from the message sent to them.
async fn invite_by_email(app: &TestApp, by: &TestUser, team: &str, who: &TestUser) -> String {
    let before = emails_to(app, &who.email).await.len();
    let r = invite(app, by, team, json!({"email": who.email})).await;
    assert_eq!(r.status(), StatusCode::CREATED, "invite {}", who.email);
    let body: Value = r.json().await.expect("json");
    assert!(
        body.get("url").is_none(),
        "an emailed token goes to the address only: {body}"
    );
    let message = last_email_to(app, &who.email, before).await;
    link_token(app, &message, "/team-invite")
}

async fn accept(app: &TestApp, who: &TestUser, token: &str) -> Response {
    call(
        app,
        who,
        Method::POST,
        "/teams/invites/accept",
        Some(json!({ "token": token })),
    )
    .await
}

/// Stripe's `customer.subscription.deleted` for the team's subscription (signed).
pub(crate) async fn cancel(app: &TestApp, t: &Team) {
    stripe_event(
        app,
        "customer.subscription.deleted",
        now_secs() + 5,
        json!({"object": "subscription", "id": t.sub, "customer": t.cus, "status": "canceled",
            "cancel_at_period_end": false,
            "items": {"data": [{"quantity": 3, "current_period_end": now_secs(),
                "price": {"id": PRICE_TEAM}}]}}),
    )
    .await;
}

/// Makes `who` a member of `team` (emailed invitation, accepted).
pub(crate) async fn join(app: &TestApp, team: &Team, who: &TestUser) {
    let token = invite_by_email(app, &team.owner, &team.id, who).await;
    let r = accept(app, who, &token).await;
    assert_eq!(r.status(), StatusCode::OK, "accept");
}

async fn me(app: &TestApp, user: &TestUser) -> Response {
    app.get_auth("/auth/me", &user.access_token).await
}

fn limit(r: &Response) -> Option<u64> {
    r.headers()
        .get("x-ratelimit-limit")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The tier `/auth/me` reports and the rate limit the request was admitted under.
async fn tier_and_limit(app: &TestApp, user: &TestUser) -> (String, u64) {
    let r = me(app, user).await;
    assert_eq!(r.status(), StatusCode::OK);
    let l = limit(&r).expect("x-ratelimit-limit");
    let body: Value = r.json().await.expect("json");
    (body["tier"].as_str().expect("tier").to_owned(), l)
}

/// Whether the marketplace (Power and above) lets `user` browse.
async fn marketplace_status(app: &TestApp, user: &TestUser) -> u16 {
    app.get_auth("/plugins", &user.access_token)
        .await
        .status()
        .as_u16()
}

// ---- 1. teams ------------------------------------------------------------------------------

pub async fn a_team_checkout_makes_its_buyer_the_owner_who_takes_a_seat(app: TestApp) {
    let t = team(&app, 3).await;
    let view = current(&app, &t.owner).await;
    assert_eq!(view["seats"], 3, "{view}");
    assert_eq!(view["tier"], "team");
    assert_eq!(view["role"], "owner");
    let members = view["members"].as_array().expect("members");
    assert_eq!(members.len(), 1, "the owner takes a seat: {view}");
    assert_eq!(members[0]["user_id"], user_id_of(&t.owner));
    assert_eq!(members[0]["email"], t.owner.email);
    assert_eq!(members[0]["role"], "owner");
    assert_eq!(view["invites"], json!([]));

    // Outside a team: 404, for a free user and for a subscriber of another tier alike.
    let free = app.register("no-team").await;
    assert_error(
        app.get_auth("/teams/current", &free.access_token).await,
        404,
        "not_found",
    )
    .await;
    let power = app.register("power-no-team").await;
    crate::billing::subscribe(&app, &power, "power", 1).await;
    assert_error(
        app.get_auth("/teams/current", &power.access_token).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.req(Method::GET, "/teams/current").send().await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
}

// ---- 2. invitations ------------------------------------------------------------------------

#[allow(clippy::too_many_lines)] // one scenario, step by step
pub async fn an_emailed_invitation_is_accepted_once_and_only_by_the_verified_invited_address(
    app: TestApp,
) {
    let t = team(&app, 5).await;
    let invited = app.register("invited").await;
    let token = invite_by_email(&app, &t.owner, &t.id, &invited).await;
    // The token is stored only as its hash.
    let stored = app
        .stack
        .d1_execute(&format!(
            "SELECT COUNT(*) AS n FROM team_invites WHERE token_hash = '{}'",
            sha(token.as_bytes())
        ))
        .await
        .unwrap();
    assert_eq!(stored[0]["results"][0]["n"], 1, "{stored}");
    let plain = app
        .stack
        .d1_execute(&format!(
            "SELECT COUNT(*) AS n FROM team_invites WHERE token_hash = '{token}' OR id = '{token}'"
        ))
        .await
        .unwrap();
    assert_eq!(plain[0]["results"][0]["n"], 0);
    assert!(!app.stack.log().contains(&token), "no token in the logs");

    // Unverified: refused, and the invitation stays open.
    assert_error(accept(&app, &invited, &token).await, 403, "forbidden").await;
    // Another verified account holding the token: refused.
    let thief = verified(&app, "thief").await;
    assert_error(accept(&app, &thief, &token).await, 403, "forbidden").await;
    assert_error(
        app.get_auth("/teams/current", &thief.access_token).await,
        404,
        "not_found",
    )
    .await;
    // Not signed in: 401.
    let r = app
        .post_json("/teams/invites/accept", &json!({ "token": token }))
        .await;
    assert_error(r, 401, "unauthorized").await;
    // A made-up token: 404.
    assert_error(
        accept(&app, &invited, "bm90LWEtdG9rZW4").await,
        404,
        "not_found",
    )
    .await;

    // Verified now (with the verification link, which is not the last message any more).
    let verification = emails_to(&app, &invited.email)
        .await
        .into_iter()
        .find(|m| {
            m["text"]
                .as_str()
                .is_some_and(|t| t.contains("/verify-email?token="))
        })
        .expect("the verification message");
    let r = app
        .post_json(
            "/auth/verify-email",
            &json!({ "token": link_token(&app, &verification, "/verify-email") }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = accept(&app, &invited, &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let joined: Value = r.json().await.unwrap();
    assert_eq!(joined, json!({"team_id": t.id, "role": "member"}));
    // Single use.
    assert_error(accept(&app, &invited, &token).await, 404, "not_found").await;

    let view = current(&app, &invited).await;
    assert_eq!(view["id"], t.id);
    assert_eq!(view["role"], "member");
    assert_eq!(view["members"].as_array().unwrap().len(), 2);
    assert_eq!(view["invites"], json!([]), "members do not see invitations");
    let owners = current(&app, &t.owner).await;
    assert_eq!(
        owners["invites"],
        json!([]),
        "the spent invitation no longer holds a seat"
    );
}

#[allow(clippy::many_single_char_names)] // four invitees and their team
pub async fn members_and_open_invitations_never_exceed_the_seats(app: TestApp) {
    let t = team(&app, 3).await;
    let (a, b, c) = (
        verified(&app, "seat-a").await,
        verified(&app, "seat-b").await,
        verified(&app, "seat-c").await,
    );
    let token_a = invite_by_email(&app, &t.owner, &t.id, &a).await;
    invite_by_email(&app, &t.owner, &t.id, &b).await;
    // Owner + two open invitations fill three seats.
    assert_error(
        invite(&app, &t.owner, &t.id, json!({"email": c.email})).await,
        409,
        "conflict",
    )
    .await;
    assert_error(
        invite(&app, &t.owner, &t.id, json!({"link": true})).await,
        409,
        "conflict",
    )
    .await;
    // The same address twice: 409 too (after a seat frees up below).
    let view = current(&app, &t.owner).await;
    let invites = view["invites"].as_array().unwrap();
    assert_eq!(invites.len(), 2, "{view}");
    let b_invite = invites
        .iter()
        .find(|i| i["email"] == b.email.as_str())
        .expect("b's invitation")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Deleting an invitation frees its seat.
    let r = call(
        &app,
        &t.owner,
        Method::DELETE,
        &format!("/teams/{}/invites/{b_invite}", t.id),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = call(
        &app,
        &t.owner,
        Method::DELETE,
        &format!("/teams/{}/invites/{b_invite}", t.id),
        None,
    )
    .await;
    assert_error(r, 404, "not_found").await;
    assert_error(
        invite(&app, &t.owner, &t.id, json!({"email": a.email})).await,
        409,
        "conflict",
    )
    .await;
    invite_by_email(&app, &t.owner, &t.id, &c).await;
    // Accepting converts an invitation's seat into a member's: still full.
    assert_eq!(accept(&app, &a, &token_a).await.status(), StatusCode::OK);
    let d = verified(&app, "seat-d").await;
    assert_error(
        invite(&app, &t.owner, &t.id, json!({"email": d.email})).await,
        409,
        "conflict",
    )
    .await;
    let view = current(&app, &t.owner).await;
    assert_eq!(
        view["members"].as_array().unwrap().len() + view["invites"].as_array().unwrap().len(),
        3,
        "{view}"
    );
}

pub async fn concurrent_invitations_for_the_last_seat_let_exactly_one_through(app: TestApp) {
    let t = team(&app, 2).await;
    let emails: Vec<String> = (0..6)
        .map(|i| crate::helpers::unique_email(&format!("race{i}")))
        .collect();
    let responses = join_all(
        emails
            .iter()
            .map(|e| invite(&app, &t.owner, &t.id, json!({ "email": e }))),
    )
    .await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        5,
        "{statuses:?}"
    );
    let view = current(&app, &t.owner).await;
    assert_eq!(view["invites"].as_array().unwrap().len(), 1, "{view}");
}

pub async fn a_link_invitation_is_the_owners_and_one_of_two_racing_users_gets_it(app: TestApp) {
    let t = team(&app, 2).await;
    let admin = verified(&app, "link-admin").await;
    // An admin may invite members by email but not create links (seats: 3 needed).
    let t3 = team(&app, 3).await;
    let token = invite_by_email(&app, &t3.owner, &t3.id, &admin).await;
    assert_eq!(accept(&app, &admin, &token).await.status(), StatusCode::OK);
    let r = call(
        &app,
        &t3.owner,
        Method::PUT,
        &format!("/teams/{}/members/{}", t3.id, user_id_of(&admin)),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_error(
        invite(&app, &admin, &t3.id, json!({"link": true})).await,
        403,
        "forbidden",
    )
    .await;

    let r = invite(&app, &t.owner, &t.id, json!({"link": true})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let url = body["url"].as_str().expect("a link").to_owned();
    let prefix = format!("{}/team-invite?token=", app.base);
    assert!(url.starts_with(&prefix), "{url}");
    let token = url[prefix.len()..].to_owned();
    assert_eq!(body["invite"]["email"], Value::Null);

    // An unverified account may not use it.
    let unverified = app.register("link-unverified").await;
    assert_error(accept(&app, &unverified, &token).await, 403, "forbidden").await;
    // Two verified accounts race for it: exactly one joins.
    let (x, y) = (
        verified(&app, "link-x").await,
        verified(&app, "link-y").await,
    );
    let (rx, ry) = tokio::join!(accept(&app, &x, &token), accept(&app, &y, &token));
    let mut statuses = [rx.status().as_u16(), ry.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(statuses[1] == 404 || statuses[1] == 409, "{statuses:?}");
    let view = current(&app, &t.owner).await;
    assert_eq!(view["members"].as_array().unwrap().len(), 2, "{view}");
    assert_eq!(view["invites"], json!([]));
}

pub async fn an_expired_invitation_cannot_be_accepted_and_frees_its_seat(app: TestApp) {
    let t = team(&app, 2).await;
    let a = verified(&app, "expired").await;
    let token = invite_by_email(&app, &t.owner, &t.id, &a).await;
    let b = verified(&app, "after-expiry").await;
    assert_error(
        invite(&app, &t.owner, &t.id, json!({"email": b.email})).await,
        409,
        "conflict",
    )
    .await;
    app.stack
        .d1_execute(&format!(
            "UPDATE team_invites SET expires_at = expires_at - 604800001 WHERE token_hash = '{}'",
            sha(token.as_bytes())
        ))
        .await
        .unwrap();
    assert_error(accept(&app, &a, &token).await, 404, "not_found").await;
    assert_eq!(current(&app, &t.owner).await["invites"], json!([]));
    invite_by_email(&app, &t.owner, &t.id, &b).await;
}

#[allow(clippy::too_many_lines)] // one scenario, step by step
pub async fn another_teams_id_and_a_members_role_answer_404_and_403(app: TestApp) {
    let (mine, theirs) = (team(&app, 3).await, team(&app, 3).await);
    let outsider = verified(&app, "outsider").await;
    let token = invite_by_email(&app, &theirs.owner, &theirs.id, &outsider).await;
    let view = current(&app, &theirs.owner).await;
    let invite_id = view["invites"][0]["id"].as_str().unwrap().to_owned();
    // The other team's owner can touch nothing of this team.
    assert_error(
        invite(&app, &mine.owner, &theirs.id, json!({"link": true})).await,
        404,
        "not_found",
    )
    .await;
    let path = format!("/teams/{}/invites/{invite_id}", theirs.id);
    assert_error(
        call(&app, &mine.owner, Method::DELETE, &path, None).await,
        404,
        "not_found",
    )
    .await;
    // Nor delete its invitation through their own team's id.
    let path = format!("/teams/{}/invites/{invite_id}", mine.id);
    assert_error(
        call(&app, &mine.owner, Method::DELETE, &path, None).await,
        404,
        "not_found",
    )
    .await;
    let path = format!("/teams/{}/members/{}", theirs.id, user_id_of(&theirs.owner));
    assert_error(
        call(&app, &mine.owner, Method::DELETE, &path, None).await,
        404,
        "not_found",
    )
    .await;
    let path = format!("/teams/{}/seats", theirs.id);
    assert_error(
        call(
            &app,
            &mine.owner,
            Method::PUT,
            &path,
            Some(json!({"seats": 9})),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    // The invitation still works.
    assert_eq!(
        accept(&app, &outsider, &token).await.status(),
        StatusCode::OK
    );
    // A member may not invite, delete invitations, change roles or seats.
    assert_error(
        invite(
            &app,
            &outsider,
            &theirs.id,
            json!({"email": "x@e2e.example.com"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    let path = format!("/teams/{}/members/{}", theirs.id, user_id_of(&outsider));
    assert_error(
        call(
            &app,
            &outsider,
            Method::PUT,
            &path,
            Some(json!({"role": "admin"})),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    let path = format!("/teams/{}/seats", theirs.id);
    assert_error(
        call(
            &app,
            &outsider,
            Method::PUT,
            &path,
            Some(json!({"seats": 9})),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    // A user already in a team cannot accept another's invitation.
    let token = invite_by_email(&app, &mine.owner, &mine.id, &outsider).await;
    assert_error(accept(&app, &outsider, &token).await, 409, "conflict").await;
    // Bad bodies are 422 naming the field.
    let r = invite(
        &app,
        &mine.owner,
        &mine.id,
        json!({"email": "not-an-address"}),
    )
    .await;
    assert_error(r, 422, "validation_failed").await;
    let r = invite(
        &app,
        &mine.owner,
        &mine.id,
        json!({"email": "a@e2e.example.com", "role": "owner"}),
    )
    .await;
    assert_error(r, 422, "validation_failed").await;
}

// ---- 3. members ----------------------------------------------------------------------------

pub async fn a_member_has_the_team_tier_in_every_gate_until_removed_then_their_own_at_once(
    app: TestApp,
) {
    let t = team(&app, 3).await;
    let m = verified(&app, "member").await;
    assert_eq!(tier_and_limit(&app, &m).await, ("free".to_owned(), 20));
    assert_eq!(marketplace_status(&app, &m).await, 403);
    join(&app, &t, &m).await;
    // At once: the home learned it from the accept.
    assert_eq!(
        tier_and_limit(&app, &m).await,
        ("team".to_owned(), 200),
        "200 a minute per member"
    );
    assert_eq!(
        tier_and_limit(&app, &t.owner).await.1,
        200,
        "not 200 × seats"
    );
    assert_eq!(marketplace_status(&app, &m).await, 200);
    // The Team row's quotas, for the member's own data: unlimited storage and backups.
    let usage: Value = app
        .get_auth("/usage", &m.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        usage["cloud_storage"]["limit_bytes"],
        Value::Null,
        "{usage}"
    );
    assert_eq!(usage["backup"]["limit_bytes"], Value::Null, "{usage}");
    assert_eq!(usage["requests"]["limit"], 200, "{usage}");

    let path = format!("/teams/{}/members/{}", t.id, user_id_of(&m));
    assert_eq!(
        call(&app, &t.owner, Method::DELETE, &path, None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        tier_and_limit(&app, &m).await,
        ("free".to_owned(), 20),
        "back at once"
    );
    assert_eq!(marketplace_status(&app, &m).await, 403);
    assert_error(
        app.get_auth("/teams/current", &m.access_token).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        call(&app, &t.owner, Method::DELETE, &path, None).await,
        404,
        "not_found",
    )
    .await;
    let usage: Value = app
        .get_auth("/usage", &m.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["cloud_storage"]["limit_bytes"], 0, "{usage}");
}

#[allow(clippy::too_many_lines)] // one scenario, step by step
pub async fn a_member_may_leave_and_nobody_removes_the_owner(app: TestApp) {
    let t = team(&app, 4).await;
    let (admin, m1, m2) = (
        verified(&app, "r-admin").await,
        verified(&app, "r-m1").await,
        verified(&app, "r-m2").await,
    );
    join(&app, &t, &admin).await;
    join(&app, &t, &m1).await;
    join(&app, &t, &m2).await;
    let member = |u: &TestUser| format!("/teams/{}/members/{}", t.id, user_id_of(u));
    let r = call(
        &app,
        &t.owner,
        Method::PUT,
        &member(&admin),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["role"], "admin");
    assert_eq!(body["email"], admin.email);

    // The owner is never removed or demoted, by anyone.
    for who in [&t.owner, &admin, &m1] {
        assert_error(
            call(&app, who, Method::DELETE, &member(&t.owner), None).await,
            403,
            "forbidden",
        )
        .await;
    }
    let r = call(
        &app,
        &t.owner,
        Method::PUT,
        &member(&t.owner),
        Some(json!({"role": "member"})),
    )
    .await;
    assert_error(r, 403, "forbidden").await;
    // A member removes nobody else; an admin removes members, not admins' peers above them.
    assert_error(
        call(&app, &m1, Method::DELETE, &member(&m2), None).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        call(&app, &m1, Method::DELETE, &member(&admin), None).await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        call(&app, &admin, Method::DELETE, &member(&m2), None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(tier_and_limit(&app, &m2).await.0, "free");
    // A member leaves.
    assert_eq!(
        call(&app, &m1, Method::DELETE, &member(&m1), None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(tier_and_limit(&app, &m1).await.0, "free");
    let view = current(&app, &t.owner).await;
    let roles: Vec<&str> = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["owner", "admin"], "{view}");
    // An admin may invite members but not admins.
    let x = verified(&app, "r-x").await;
    assert_error(
        invite(
            &app,
            &admin,
            &t.id,
            json!({"email": x.email, "role": "admin"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        invite(&app, &admin, &t.id, json!({"email": x.email}))
            .await
            .status(),
        StatusCode::CREATED
    );
}

pub async fn a_canceled_team_subscription_returns_every_member_to_their_own_tier(app: TestApp) {
    let t = team(&app, 4).await;
    let (pro, free) = (
        verified(&app, "own-pro").await,
        verified(&app, "own-free").await,
    );
    crate::billing::subscribe(&app, &pro, "pro", 1).await;
    join(&app, &t, &pro).await;
    join(&app, &t, &free).await;
    assert_eq!(tier_and_limit(&app, &pro).await.0, "team");
    assert_eq!(tier_and_limit(&app, &free).await.0, "team");
    let late = verified(&app, "late").await;
    let late_token = invite_by_email(&app, &t.owner, &t.id, &late).await;
    stripe_event(
        &app,
        "customer.subscription.deleted",
        now_secs() + 5,
        json!({"object": "subscription", "id": t.sub, "customer": t.cus, "status": "canceled",
            "cancel_at_period_end": false,
            "items": {"data": [{"quantity": 4, "current_period_end": now_secs(), "price": {"id": PRICE_TEAM}}]}}),
    )
    .await;
    assert_eq!(tier_and_limit(&app, &pro).await, ("pro".to_owned(), 60));
    assert_eq!(tier_and_limit(&app, &free).await, ("free".to_owned(), 20));
    assert_eq!(
        tier_and_limit(&app, &t.owner).await,
        ("free".to_owned(), 20)
    );
    let view = current(&app, &t.owner).await;
    assert_eq!(
        view["tier"], "free",
        "the team remains, granting nothing: {view}"
    );
    // An invitation sent before the cancellation no longer lets anyone join.
    assert_error(accept(&app, &late, &late_token).await, 409, "conflict").await;
    assert_error(
        app.get_auth("/teams/current", &late.access_token).await,
        404,
        "not_found",
    )
    .await;
    let x = verified(&app, "after-cancel").await;
    assert_error(
        invite(&app, &t.owner, &t.id, json!({"email": x.email})).await,
        409,
        "conflict",
    )
    .await;
}

// ---- 4. seats ------------------------------------------------------------------------------

#[allow(clippy::too_many_lines)] // one scenario, step by step
pub async fn a_seat_change_is_one_idempotent_stripe_call_confirmed_by_the_webhook(app: TestApp) {
    let t = team(&app, 3).await;
    let item = unique("si");
    Mock::given(method("GET"))
        .and(path(format!("/v1/subscriptions/{}", t.sub)))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": t.sub, "object": "subscription",
            "items": {"object": "list", "data": [{"id": item, "object": "subscription_item", "quantity": 3}]}
        })))
        .with_priority(1)
        .mount(&app.stack.stripe)
        .await;
    let seats_path = format!("/teams/{}/seats", t.id);
    let r = call(
        &app,
        &t.owner,
        Method::PUT,
        &seats_path,
        Some(json!({"seats": 5})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"seats": 3, "requested": 5})
    );
    // Asked twice before Stripe confirms: the same Idempotency-Key.
    let r = call(
        &app,
        &t.owner,
        Method::PUT,
        &seats_path,
        Some(json!({"seats": 5})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let posts: Vec<wiremock::Request> = app
        .stack
        .stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.method.as_str() == "POST" && r.url.path() == format!("/v1/subscriptions/{}", t.sub)
        })
        .collect();
    assert_eq!(posts.len(), 2);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&posts[0].body)
        .into_owned()
        .collect();
    assert_eq!(
        form,
        vec![
            ("items[0][id]".to_owned(), item.clone()),
            ("items[0][quantity]".to_owned(), "5".to_owned()),
            (
                "proration_behavior".to_owned(),
                "create_prorations".to_owned()
            ),
        ]
    );
    let key = |r: &wiremock::Request| {
        r.headers
            .get("idempotency-key")
            .expect("an Idempotency-Key")
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(key(&posts[0]), key(&posts[1]));
    // Not yet confirmed: the seats are unchanged.
    assert_eq!(current(&app, &t.owner).await["seats"], 3);
    stripe_event(
        &app,
        "customer.subscription.updated",
        now_secs() + 5,
        json!({"object": "subscription", "id": t.sub, "customer": t.cus, "status": "active",
            "cancel_at_period_end": false,
            "items": {"data": [{"id": item, "quantity": 5, "current_period_end": now_secs() + 86_400,
                "price": {"id": PRICE_TEAM}}]}}),
    )
    .await;
    assert_eq!(current(&app, &t.owner).await["seats"], 5);
    assert_eq!(
        tier_and_limit(&app, &t.owner).await,
        ("team".to_owned(), 200)
    );
    // The next change is a new request to Stripe (a new key).
    let r = call(
        &app,
        &t.owner,
        Method::PUT,
        &seats_path,
        Some(json!({"seats": 4})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let last = app.stack.stripe.received_requests().await.unwrap();
    let last = last
        .iter()
        .rev()
        .find(|r| {
            r.method.as_str() == "POST" && r.url.path() == format!("/v1/subscriptions/{}", t.sub)
        })
        .unwrap();
    assert_ne!(key(last), key(&posts[0]));
}

pub async fn seats_below_the_members_in_use_are_refused_before_any_stripe_call(app: TestApp) {
    let t = team(&app, 3).await;
    let m = verified(&app, "in-use").await;
    join(&app, &t, &m).await;
    invite_by_email(&app, &t.owner, &t.id, &verified(&app, "open").await).await;
    let seats_path = format!("/teams/{}/seats", t.id);
    let before = app.stack.stripe.received_requests().await.unwrap().len();
    for seats in [1, 2] {
        let r = call(
            &app,
            &t.owner,
            Method::PUT,
            &seats_path,
            Some(json!({"seats": seats})),
        )
        .await;
        assert_error(r, 409, "conflict").await;
    }
    for bad in [
        json!({"seats": 0}),
        json!({"seats": 1001}),
        json!({"seats": "3"}),
    ] {
        let r = call(&app, &t.owner, Method::PUT, &seats_path, Some(bad)).await;
        assert_eq!(r.status().as_u16(), 422);
    }
    let mine: Vec<_> = app
        .stack
        .stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .skip(before)
        .filter(|r| r.url.path().contains(&t.sub))
        .collect();
    assert!(mine.is_empty(), "nothing reached Stripe");
    // Stripe failing: a clean 5xx envelope, nothing of Stripe's answer in it.
    Mock::given(method("GET"))
        .and(path(format!("/v1/subscriptions/{}", t.sub)))
        .respond_with(ResponseTemplate::new(500).set_body_string("stripe-internal-secret-detail"))
        .with_priority(1)
        .mount(&app.stack.stripe)
        .await;
    let r = call(
        &app,
        &t.owner,
        Method::PUT,
        &seats_path,
        Some(json!({"seats": 4})),
    )
    .await;
    assert!(r.status().is_server_error(), "{}", r.status());
    let body = r.text().await.unwrap();
    assert!(!body.contains("stripe-internal-secret-detail"), "{body}");
    assert_eq!(current(&app, &t.owner).await["seats"], 3);
}

// ---- 5. account deletion -------------------------------------------------------------------

/// The team rows D1 holds for team `id` (the team itself, members, open or used invitations).
async fn team_rows(app: &TestApp, id: &str) -> (usize, usize, usize) {
    let count = |sql: String| async move {
        let out = app.stack.d1_execute(&sql).await.expect("d1 query");
        out[0]["results"].as_array().map_or(0, Vec::len)
    };
    (
        count(format!("SELECT id FROM teams WHERE id = '{id}'")).await,
        count(format!(
            "SELECT user_id FROM team_members WHERE team_id = '{id}'"
        ))
        .await,
        count(format!(
            "SELECT id FROM team_invites WHERE team_id = '{id}'"
        ))
        .await,
    )
}

pub async fn deleting_a_teams_owner_ends_the_team_and_returns_its_members_to_their_own_tier_at_once(
    app: TestApp,
) {
    let t = team(&app, 4).await;
    let (pro, free) = (
        verified(&app, "owner-gone-pro").await,
        verified(&app, "owner-gone-free").await,
    );
    crate::billing::subscribe(&app, &pro, "pro", 1).await;
    join(&app, &t, &pro).await;
    join(&app, &t, &free).await;
    let open = verified(&app, "owner-gone-invited").await;
    let open_token = invite_by_email(&app, &t.owner, &t.id, &open).await;
    assert_eq!(tier_and_limit(&app, &free).await, ("team".to_owned(), 200));
    crate::deletion::mount_cancel(&app, &t.sub, 0).await;

    let r = crate::deletion::delete_account(
        &app,
        &t.owner.access_token,
        &json!({"password": t.owner.password}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body, json!({"ok": true, "completed": true}));

    // At once, without waiting for Stripe's webhook or the home's reload.
    assert_eq!(tier_and_limit(&app, &pro).await, ("pro".to_owned(), 60));
    assert_eq!(tier_and_limit(&app, &free).await, ("free".to_owned(), 20));
    for member in [&pro, &free] {
        assert_error(
            app.get_auth("/teams/current", &member.access_token).await,
            404,
            "not_found",
        )
        .await;
    }
    assert_eq!(
        team_rows(&app, &t.id).await,
        (0, 0, 0),
        "the team, its members and invitations are gone"
    );
    // The invitation the owner sent leads nowhere now.
    let r = accept(&app, &open, &open_token).await;
    assert!(
        r.status().is_client_error(),
        "an invitation into a deleted team: {}",
        r.status()
    );
    assert_error(
        app.get_auth("/teams/current", &open.access_token).await,
        404,
        "not_found",
    )
    .await;
}

pub async fn deleting_a_member_frees_their_seat_and_the_team_goes_on(app: TestApp) {
    let t = team(&app, 2).await;
    let member = verified(&app, "member-gone").await;
    join(&app, &t, &member).await;
    // The member's export names the team and the role.
    let r = app.get_auth("/auth/export", &member.access_token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let export: Value = r.json().await.expect("json");
    assert_eq!(export["team"]["team_id"], t.id.as_str(), "{export}");
    assert_eq!(export["team"]["role"], "member");
    assert!(export["team"]["joined_at"].as_i64().is_some(), "{export}");
    let next = verified(&app, "member-next").await;
    assert_error(
        invite(&app, &t.owner, &t.id, json!({"email": next.email})).await,
        409,
        "conflict",
    )
    .await;

    let r = crate::deletion::delete_account(
        &app,
        &member.access_token,
        &json!({"password": member.password}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let view = current(&app, &t.owner).await;
    let members = view["members"].as_array().expect("members");
    assert_eq!(members.len(), 1, "only the owner is left: {view}");
    assert_eq!(members[0]["user_id"], user_id_of(&t.owner));
    assert_eq!(view["tier"], "team");
    assert!(
        app.stripe_cancellations(&t.sub).await.is_empty(),
        "a member's deletion never touches the team's subscription"
    );
    // The freed seat takes the next member.
    join(&app, &t, &next).await;
    assert_eq!(tier_and_limit(&app, &next).await, ("team".to_owned(), 200));
}
