//! D1 adapter of team SSO: `team_sso`, `team_sso_domains`, `sso_logins`, `sso_codes`
//! (migration 0013).

use async_trait::async_trait;
use serde::Deserialize;
use shared::domain::{Email, UserId};
use shared::ports::StoreError;
use shared::teams::sso::{
    PendingLogin, SaveOutcome, SsoConfig, SsoJoin, SsoStore, LOGIN_TTL_MS, REDEEM_TTL_MS,
};

use super::super::unavailable;
use super::{changes, int, is_unique_violation, opt_text, stmt, text, Db};

/// SSO in D1.
pub struct D1SsoStore(pub Db);

#[derive(Deserialize)]
struct ConfigRow {
    team_id: String,
    issuer: String,
    client_id: String,
    client_secret_sealed: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    jwks: Option<String>,
    required: f64,
    domains: Option<String>,
}

const CONFIG: &str = "SELECT c.team_id, c.issuer, c.client_id, c.client_secret_sealed, \
       c.authorization_endpoint, c.token_endpoint, c.jwks_uri, c.jwks, c.required, \
       (SELECT group_concat(d.domain, ' ') FROM team_sso_domains d WHERE d.team_id = c.team_id) \
         AS domains \
     FROM team_sso c";

/// Whether team `?1`'s subscription grants the Team tier at `?2` (as the invitations read it).
const TEAM_LIVE: &str = "EXISTS (SELECT 1 FROM teams t JOIN subscriptions s \
       ON s.stripe_subscription_id = t.stripe_subscription_id \
     WHERE t.id = ?1 AND s.tier = 'team' \
       AND (s.status IN ('active', 'trialing') OR (s.status = 'past_due' \
         AND (s.current_period_end IS NULL OR s.current_period_end > ?2))))";

/// Whether team `?1` has a seat free at `?2`: members + open invitations below the seats.
const SEAT_FREE: &str = "(SELECT COUNT(*) FROM team_members m WHERE m.team_id = ?1) \
       + (SELECT COUNT(*) FROM team_invites i WHERE i.team_id = ?1 \
            AND i.used_at IS NULL AND i.expires_at > ?2) \
     < (SELECT s.seats FROM teams t JOIN subscriptions s \
          ON s.stripe_subscription_id = t.stripe_subscription_id WHERE t.id = ?1)";

fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("corrupt {what}"))
}

fn config_of(r: ConfigRow) -> Result<SsoConfig, StoreError> {
    Ok(SsoConfig {
        team_id: uuid::Uuid::try_parse(&r.team_id).map_err(|_| corrupt("team_sso.team_id"))?,
        issuer: r.issuer,
        client_id: r.client_id,
        client_secret_sealed: hex::decode(&r.client_secret_sealed)
            .map_err(|_| corrupt("team_sso.client_secret_sealed"))?,
        authorization_endpoint: r.authorization_endpoint,
        token_endpoint: r.token_endpoint,
        jwks_uri: r.jwks_uri,
        jwks: r.jwks,
        required: r.required != 0.0,
        domains: r
            .domains
            .unwrap_or_default()
            .split(' ')
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

#[allow(clippy::cast_possible_truncation)]
fn ms(v: f64) -> i64 {
    v as i64
}

impl D1SsoStore {
    async fn one_config(&self, filter: &str, arg: String) -> Result<Option<SsoConfig>, StoreError> {
        let row = stmt(&self.0, &format!("{CONFIG} {filter}"), &[text(arg)])?
            .first::<ConfigRow>(None)
            .await
            .map_err(|e| unavailable("reading team SSO", &e))?;
        row.map(config_of).transpose()
    }

    /// Whether password login is refused for `email`: its domain's team requires SSO and it
    /// is not the team owner's address (the owner keeps password login, so a broken identity
    /// provider never locks the team out of its billing).
    pub async fn password_login_refused(
        &self,
        email: &Email,
        now: i64,
    ) -> Result<bool, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            owner_email: Option<String>,
        }
        let Some(domain) = shared::teams::sso::email_domain(email.as_str()) else {
            return Ok(false);
        };
        let row = stmt(
            &self.0,
            "SELECT (SELECT u.email FROM teams t JOIN users u ON u.id = t.owner_id \
                 WHERE t.id = d.team_id) AS owner_email \
             FROM team_sso_domains d JOIN team_sso c ON c.team_id = d.team_id \
             WHERE d.domain = ?1 AND c.required = 1 \
               AND EXISTS (SELECT 1 FROM teams t JOIN subscriptions s \
                 ON s.stripe_subscription_id = t.stripe_subscription_id \
                 WHERE t.id = d.team_id AND s.tier = 'team' \
                   AND (s.status IN ('active', 'trialing') OR (s.status = 'past_due' \
                     AND (s.current_period_end IS NULL OR s.current_period_end > ?2))))",
            &[text(domain), int(now)],
        )?
        .first::<Row>(None)
        .await
        .map_err(|e| unavailable("reading the SSO requirement", &e))?;
        Ok(row.is_some_and(|r| r.owner_email.as_deref() != Some(email.as_str())))
    }
}

#[async_trait(?Send)]
impl SsoStore for D1SsoStore {
    async fn config(&self, team: uuid::Uuid) -> Result<Option<SsoConfig>, StoreError> {
        self.one_config("WHERE c.team_id = ?1", team.to_string())
            .await
    }

    async fn config_for_domain(&self, domain: &str) -> Result<Option<SsoConfig>, StoreError> {
        self.one_config(
            "WHERE c.team_id = (SELECT team_id FROM team_sso_domains WHERE domain = ?1)",
            domain.to_owned(),
        )
        .await
    }

    async fn save(&self, config: &SsoConfig, now: i64) -> Result<SaveOutcome, StoreError> {
        let team = text(config.team_id.to_string());
        let mut statements = vec![
            stmt(
                &self.0,
                "INSERT INTO team_sso (team_id, issuer, client_id, client_secret_sealed, \
                   authorization_endpoint, token_endpoint, jwks_uri, jwks, required, created_at, \
                   updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) \
                 ON CONFLICT (team_id) DO UPDATE SET issuer = excluded.issuer, \
                   client_id = excluded.client_id, \
                   client_secret_sealed = excluded.client_secret_sealed, \
                   authorization_endpoint = excluded.authorization_endpoint, \
                   token_endpoint = excluded.token_endpoint, jwks_uri = excluded.jwks_uri, \
                   jwks = excluded.jwks, required = excluded.required, \
                   updated_at = excluded.updated_at",
                &[
                    team.clone(),
                    text(&config.issuer),
                    text(&config.client_id),
                    text(hex::encode(&config.client_secret_sealed)),
                    text(&config.authorization_endpoint),
                    text(&config.token_endpoint),
                    text(&config.jwks_uri),
                    opt_text(config.jwks.as_deref()),
                    int(i64::from(config.required)),
                    int(now),
                ],
            )?,
            stmt(
                &self.0,
                "DELETE FROM team_sso_domains WHERE team_id = ?1",
                std::slice::from_ref(&team),
            )?,
        ];
        for d in &config.domains {
            // A domain of another team fails the whole transaction on the primary key.
            statements.push(stmt(
                &self.0,
                "INSERT INTO team_sso_domains (domain, team_id) VALUES (?1, ?2)",
                &[text(d), team.clone()],
            )?);
        }
        match self.0.batch(statements).await {
            Ok(_) => Ok(SaveOutcome::Saved),
            Err(e) if is_unique_violation(&e) => {
                Ok(SaveOutcome::DomainTaken(String::from("a domain")))
            }
            Err(e) => Err(unavailable("saving team SSO", &e)),
        }
    }

    async fn delete(&self, team: uuid::Uuid) -> Result<bool, StoreError> {
        let team = [text(team.to_string())];
        let statements = vec![
            stmt(
                &self.0,
                "DELETE FROM team_sso_domains WHERE team_id = ?1",
                &team,
            )?,
            stmt(&self.0, "DELETE FROM sso_logins WHERE team_id = ?1", &team)?,
            // Codes handed out but not yet redeemed: members are the only ones SSO issues to.
            stmt(
                &self.0,
                "DELETE FROM sso_codes WHERE used_at IS NULL AND user_id IN \
                 (SELECT user_id FROM team_members WHERE team_id = ?1)",
                &team,
            )?,
            stmt(&self.0, "DELETE FROM team_sso WHERE team_id = ?1", &team)?,
        ];
        let results = self
            .0
            .batch(statements)
            .await
            .map_err(|e| unavailable("removing team SSO", &e))?;
        Ok(results.get(3).map_or(0, changes) == 1)
    }

    async fn store_jwks(&self, team: uuid::Uuid, jwks: &str) -> Result<(), StoreError> {
        stmt(
            &self.0,
            "UPDATE team_sso SET jwks = ?2 WHERE team_id = ?1",
            &[text(team.to_string()), text(jwks)],
        )?
        .run()
        .await
        .map_err(|e| unavailable("keeping a JWKS", &e))?;
        Ok(())
    }

    async fn insert_login(
        &self,
        state_hash: &[u8; 32],
        login: &PendingLogin,
        now: i64,
    ) -> Result<(), StoreError> {
        let purge = stmt(
            &self.0,
            "DELETE FROM sso_logins WHERE expires_at <= ?1",
            &[int(now)],
        )?;
        let insert = stmt(
            &self.0,
            "INSERT INTO sso_logins (state_hash, team_id, nonce, verifier, created_at, \
               expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[
                text(hex::encode(state_hash)),
                text(login.team_id.to_string()),
                text(&login.nonce),
                text(&login.verifier),
                int(now),
                int(now + LOGIN_TTL_MS),
            ],
        )?;
        self.0
            .batch(vec![purge, insert])
            .await
            .map_err(|e| unavailable("recording an SSO sign-in", &e))?;
        Ok(())
    }

    async fn take_login(
        &self,
        state_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<PendingLogin>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            team_id: String,
            nonce: String,
            verifier: String,
            expires_at: f64,
        }
        let row = stmt(
            &self.0,
            "DELETE FROM sso_logins WHERE state_hash = ?1 \
             RETURNING team_id, nonce, verifier, expires_at",
            &[text(hex::encode(state_hash))],
        )?
        .first::<Row>(None)
        .await
        .map_err(|e| unavailable("taking an SSO sign-in", &e))?;
        let Some(r) = row.filter(|r| ms(r.expires_at) > now) else {
            return Ok(None);
        };
        Ok(Some(PendingLogin {
            team_id: uuid::Uuid::try_parse(&r.team_id)
                .map_err(|_| corrupt("sso_logins.team_id"))?,
            nonce: r.nonce,
            verifier: r.verifier,
        }))
    }

    async fn join(
        &self,
        team: uuid::Uuid,
        email: &Email,
        new_id: UserId,
        now: i64,
    ) -> Result<SsoJoin, StoreError> {
        #[derive(Deserialize)]
        struct Existing {
            id: String,
            team_id: Option<String>,
            suspended_at: Option<f64>,
            email_verified_at: Option<f64>,
        }
        #[derive(Deserialize)]
        struct Live {
            live: f64,
        }
        let t = text(team.to_string());
        let existing = stmt(
            &self.0,
            "SELECT u.id, m.team_id, u.suspended_at, u.email_verified_at FROM users u \
             LEFT JOIN team_members m ON m.user_id = u.id WHERE u.email = ?1",
            &[text(email.as_str())],
        )?
        .first::<Existing>(None)
        .await
        .map_err(|e| unavailable("reading an SSO account", &e))?;
        if let Some(e) = &existing {
            let id = UserId::parse(&e.id).ok_or_else(|| corrupt("users.id"))?;
            // A suspended account neither signs in nor joins.
            if e.suspended_at.is_some() {
                return Ok(SsoJoin::Suspended);
            }
            // Anyone can register an address they do not own (it stays unverified): such an
            // account may hold someone else's password and sessions, so SSO never signs in to
            // it or takes it into the team.
            if e.email_verified_at.is_none() {
                return Ok(SsoJoin::Unverified);
            }
            match e.team_id.as_deref() {
                Some(other) if other == team.to_string() => return Ok(SsoJoin::Member(id)),
                Some(_) => return Ok(SsoJoin::OtherTeam),
                None => {}
            }
        }
        // One transaction: the account (created only when there is none: verified, with a
        // password hash that verifies nothing) and its membership, both under the same seat
        // and subscription condition, so either both happen or neither.
        // The domain must still be the team's (a DELETE or PUT may have raced this sign-in).
        let cond = format!(
            "{TEAM_LIVE} AND {SEAT_FREE} AND EXISTS (SELECT 1 FROM team_sso_domains sd \
               WHERE sd.team_id = ?1 AND sd.domain = substr(?4, instr(?4, '@') + 1))"
        );
        let create = stmt(
            &self.0,
            &format!(
                "INSERT INTO users (id, email, password_hash, tier, role, email_verified_at, \
                   created_at, updated_at) \
                 SELECT ?3, ?4, '!', 'free', 'user', ?2, ?2, ?2 \
                 WHERE NOT EXISTS (SELECT 1 FROM users WHERE email = ?4) AND {cond}"
            ),
            &[
                t.clone(),
                int(now),
                text(new_id.to_string()),
                text(email.as_str()),
            ],
        )?;
        let member = stmt(
            &self.0,
            &format!(
                "INSERT INTO team_members (team_id, user_id, role, joined_at) \
                 SELECT ?1, u.id, 'member', ?2 FROM users u WHERE u.email = ?4 AND {cond} \
                 RETURNING user_id"
            ),
            &[
                t.clone(),
                int(now),
                text(new_id.to_string()),
                text(email.as_str()),
            ],
        )?;
        let results = match self.0.batch(vec![create, member]).await {
            Ok(r) => r,
            // Joined another team meanwhile: the whole transaction rolled back.
            Err(e) if is_unique_violation(&e) => return Ok(SsoJoin::OtherTeam),
            Err(e) => return Err(unavailable("joining a team through SSO", &e)),
        };
        if results.get(1).map_or(0, changes) == 1 {
            #[derive(Deserialize)]
            struct Joined {
                user_id: String,
            }
            let id = results[1]
                .results::<Joined>()
                .ok()
                .and_then(|r| r.into_iter().next())
                .and_then(|r| UserId::parse(&r.user_id))
                .ok_or_else(|| corrupt("team_members.user_id"))?;
            return Ok(SsoJoin::Member(id));
        }
        let live = stmt(
            &self.0,
            &format!("SELECT {TEAM_LIVE} AS live"),
            &[t, int(now)],
        )?
        .first::<Live>(None)
        .await
        .map_err(|e| unavailable("reading a team's subscription", &e))?
        .is_some_and(|l| l.live != 0.0);
        Ok(if live {
            SsoJoin::NoSeat
        } else {
            SsoJoin::Ended
        })
    }

    async fn insert_code(&self, hash: &[u8; 32], user: UserId, now: i64) -> Result<(), StoreError> {
        let purge = stmt(
            &self.0,
            "DELETE FROM sso_codes WHERE expires_at <= ?1",
            &[int(now)],
        )?;
        let insert = stmt(
            &self.0,
            "INSERT INTO sso_codes (code_hash, user_id, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4)",
            &[
                text(hex::encode(hash)),
                text(user.to_string()),
                int(now),
                int(now + REDEEM_TTL_MS),
            ],
        )?;
        self.0
            .batch(vec![purge, insert])
            .await
            .map_err(|e| unavailable("storing an SSO code", &e))?;
        Ok(())
    }

    async fn redeem_code(&self, hash: &[u8; 32], now: i64) -> Result<Option<UserId>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            user_id: String,
        }
        let row = stmt(
            &self.0,
            "UPDATE sso_codes SET used_at = ?2 \
             WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING user_id",
            &[text(hex::encode(hash)), int(now)],
        )?
        .first::<Row>(None)
        .await
        .map_err(|e| unavailable("redeeming an SSO code", &e))?;
        Ok(row.and_then(|r| UserId::parse(&r.user_id)))
    }
}
