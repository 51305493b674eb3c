//! `/api/v1/plugins*`: parse, hand to the marketplace service, serialise.

use shared::api::{
    Ok as OkBody, PayoutAccountRequest, PluginInstallRequest, PluginSubmission, RatingRequest,
    ReviewRequest,
};
use shared::input;
use shared::marketplace::{catalog_query, plugin_id, SUBMISSION_BODY_LIMIT};
use shared::{AppError, AppResult};
use worker::Response;

use crate::app::MarketParts;
use crate::http::{json, Ctx};

/// The value of the first query parameter `name`.
fn query_param(ctx: &Ctx, name: &str) -> AppResult<Option<String>> {
    Ok(ctx
        .query()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v))
}

/// The marketplace, with download links on this deployment's public origin.
fn market(ctx: &Ctx) -> AppResult<MarketParts> {
    ctx.app.marketplace(ctx.base_url()?)
}

/// `GET /plugins?category&q&page&limit&sort` → `PluginListResponse`.
pub async fn list(ctx: Ctx) -> AppResult<Response> {
    let who = ctx.principal()?;
    let pairs = ctx.query()?;
    let q = catalog_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let deps = market(&ctx)?;
    json(200, &deps.service().list(who.tier, &q).await?)
}

/// `POST /plugins` → 201 `PluginSubmitted`.
pub async fn submit(mut ctx: Ctx) -> AppResult<Response> {
    let sub: PluginSubmission = ctx.json_body_up_to(SUBMISSION_BODY_LIMIT).await?;
    let who = ctx.principal()?;
    let deps = market(&ctx)?;
    json(201, &deps.service().submit(who.user_id, sub).await?)
}

/// `GET /plugins/{id}` → `PluginInfo`.
pub async fn get(ctx: Ctx) -> AppResult<Response> {
    let who = ctx.principal()?;
    let id = plugin_id(ctx.param("id"))?;
    let deps = market(&ctx)?;
    json(200, &deps.service().get(who.tier, id).await?)
}

/// `POST /plugins/{id}/versions` → 201 `PluginSubmitted`.
pub async fn submit_version(mut ctx: Ctx) -> AppResult<Response> {
    let sub: PluginSubmission = ctx.json_body_up_to(SUBMISSION_BODY_LIMIT).await?;
    let who = ctx.principal()?;
    let id = plugin_id(ctx.param("id"))?;
    let deps = market(&ctx)?;
    json(
        201,
        &deps.service().submit_version(who.user_id, id, sub).await?,
    )
}

/// `GET /plugins/review/pending` (admin) → `PendingReviews`.
pub async fn pending(ctx: Ctx) -> AppResult<Response> {
    let who = ctx.principal()?;
    let deps = market(&ctx)?;
    json(200, &deps.service().pending(who.user_id).await?)
}

/// `POST /plugins/{id}/review` (admin) → `ReviewResult`.
pub async fn review(mut ctx: Ctx) -> AppResult<Response> {
    let req: ReviewRequest = ctx.json_body().await?;
    let who = ctx.principal()?;
    let id = plugin_id(ctx.param("id"))?;
    let admin = ctx.app.admin()?;
    admin.service().authorize(who.user_id).await?;
    let decision = req.decision.clone();
    let deps = market(&ctx)?;
    let result = deps.service().review(who.user_id, id, req).await?;
    // The review happened: a failure to record it is logged, not answered as a failure.
    if let Err(e) = admin
        .service()
        .record_review(who.user_id, id, &decision, &result.version)
        .await
    {
        tracing::error!(error = ?e, plugin_id = %id, "recording a plugin review in the audit log failed");
    }
    json(200, &result)
}

/// `POST /plugins/{id}/install` (body optional) → `PluginInstalled`.
pub async fn install(mut ctx: Ctx) -> AppResult<Response> {
    let content_type = ctx.header("Content-Type");
    let bytes = ctx.body_bytes(input::JSON_BODY_LIMIT).await?;
    let body: Option<PluginInstallRequest> = if bytes.is_empty() {
        None
    } else {
        if !input::is_json(content_type.as_deref()) {
            return Err(AppError::UnsupportedMediaType {
                expected: "application/json",
            });
        }
        // `null` is the same as no body.
        input::parse_json::<Option<PluginInstallRequest>>(content_type.as_deref(), &bytes)?
    };
    let who = ctx.principal()?;
    let id = plugin_id(ctx.param("id"))?;
    let deps = market(&ctx)?;
    let installed = deps
        .service()
        .install(who.user_id, who.tier, id, body)
        .await?;
    // The chat loads the plugin's agents from the next message on.
    ctx.app.push_installed_plugins(who.user_id).await;
    json(200, &installed)
}

/// `DELETE /plugins/{id}/install` → `{ok: true}`.
pub async fn uninstall(ctx: Ctx) -> AppResult<Response> {
    let who = ctx.principal()?;
    let id = plugin_id(ctx.param("id"))?;
    let deps = market(&ctx)?;
    deps.service().uninstall(who.user_id, id).await?;
    // Its agents leave the chat's routing and the enabled choice before this answers.
    ctx.app.push_installed_plugins(who.user_id).await;
    json(200, &OkBody::YES)
}

/// `GET /plugins/{id}/package?token=` → the package bytes, streamed from R2.
pub async fn package(ctx: Ctx) -> AppResult<Response> {
    let who = ctx.principal()?;
    let id = plugin_id(ctx.param("id"))?;
    let token = query_param(&ctx, "token")?;
    let deps = market(&ctx)?;
    let pkg = deps
        .service()
        .package(who.user_id, id, token.as_deref())
        .await?;
    let (body, size) = deps
        .packages
        .stream(&pkg.key)
        .await?
        .ok_or_else(|| AppError::internal(format!("plugin package {} is missing", pkg.key)))?;
    let mut resp = Response::from_body(body).map_err(AppError::internal)?;
    let h = resp.headers_mut();
    let _ = h.set("Content-Type", "application/zip");
    let _ = h.set("Content-Length", &size.to_string());
    let _ = h.set("X-Checksum", pkg.checksum.as_str());
    let _ = h.set(
        "Content-Disposition",
        &format!("attachment; filename=\"{id}-{}.zip\"", pkg.version),
    );
    Ok(resp)
}

/// `POST /plugins/{id}/rating` → `RatingResult`.
pub async fn rate(mut ctx: Ctx) -> AppResult<Response> {
    let req: RatingRequest = ctx.json_body().await?;
    let who = ctx.principal()?;
    let id = plugin_id(ctx.param("id"))?;
    let deps = market(&ctx)?;
    json(
        200,
        &deps.service().rate(who.user_id, who.tier, id, req).await?,
    )
}

/// `GET /plugins/earnings?period=YYYY-MM` → `EarningsResponse`.
pub async fn earnings(ctx: Ctx) -> AppResult<Response> {
    let who = ctx.principal()?;
    let period = query_param(&ctx, "period")?;
    let deps = market(&ctx)?;
    json(
        200,
        &deps
            .service()
            .earnings(who.user_id, period.as_deref())
            .await?,
    )
}

/// `PUT /plugins/earnings/account` → `{ok: true}`.
pub async fn set_payout_account(mut ctx: Ctx) -> AppResult<Response> {
    let req: PayoutAccountRequest = ctx.json_body().await?;
    let who = ctx.principal()?;
    let deps = market(&ctx)?;
    deps.service().set_payout_account(who.user_id, &req).await?;
    json(200, &OkBody::YES)
}
