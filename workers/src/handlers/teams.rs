//! `/api/v1/teams/*`: the team, invitations, members, roles and seats.

use shared::api::{AcceptInviteRequest, CreateInviteRequest, SetRoleRequest, SetSeatsRequest};
use shared::AppResult;
use worker::Response;

use crate::http::{json, Ctx};

/// `GET /teams/current` → `TeamView` (404 outside a team).
pub async fn current(ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let teams = ctx.app.teams(ctx.base_url()?)?;
    json(200, &teams.service().current(user).await?)
}

/// `POST /teams/{id}/invites` → 201 `{invite, url?}`.
pub async fn invite(mut ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let (target, role) = ctx
        .json_body::<CreateInviteRequest>()
        .await?
        .try_into_domain()?;
    let teams = ctx.app.teams(ctx.base_url()?)?;
    let created = teams
        .service()
        .invite(user, ctx.param("id"), target, role)
        .await?;
    json(201, &created)
}

/// `POST /teams/invites/accept` → `{team_id, role}`; the new member's home learns the Team
/// tier at once.
pub async fn accept(mut ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let body: AcceptInviteRequest = ctx.json_body().await?;
    let teams = ctx.app.teams(ctx.base_url()?)?;
    let joined = teams.service().accept(user, body.token()?).await?;
    ctx.app.push_account(user).await;
    json(200, &joined)
}

/// `DELETE /teams/{id}/invites/{invite_id}` → `{ok: true}`.
pub async fn delete_invite(ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let teams = ctx.app.teams(ctx.base_url()?)?;
    teams
        .service()
        .delete_invite(user, ctx.param("id"), ctx.param("invite_id"))
        .await?;
    json(200, &shared::api::Ok::YES)
}

/// `DELETE /teams/{id}/members/{user_id}` → `{ok: true}`; the removed member's home returns
/// to their own tier at once (sockets included: they read the tier from the home).
pub async fn remove_member(ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let teams = ctx.app.teams(ctx.base_url()?)?;
    let removed = teams
        .service()
        .remove_member(user, ctx.param("id"), ctx.param("user_id"))
        .await?;
    ctx.app.push_account(removed).await;
    json(200, &shared::api::Ok::YES)
}

/// `PUT /teams/{id}/members/{user_id}` `{role}` → the member.
pub async fn set_role(mut ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let role = ctx.json_body::<SetRoleRequest>().await?.role()?;
    let teams = ctx.app.teams(ctx.base_url()?)?;
    let member = teams
        .service()
        .set_role(user, ctx.param("id"), ctx.param("user_id"), role)
        .await?;
    json(200, &member)
}

/// `PUT /teams/{id}/seats` `{seats}` → 202 `{seats, requested}` (Stripe's webhook confirms).
pub async fn set_seats(mut ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let seats = ctx.json_body::<SetSeatsRequest>().await?.seats()?;
    let teams = ctx.app.teams(ctx.base_url()?)?;
    let asked = teams
        .service()
        .set_seats(user, ctx.param("id"), seats)
        .await?;
    json(202, &asked)
}
