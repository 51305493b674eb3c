use super::*;
use crate::api::AuthTokens;
use crate::auth::tokens::AccessTokens;
use crate::auth::{AuthService, AuthSettings};
use crate::testing::{
    FixedClock, InMemoryAccountTokenStore, InMemoryMfaStore, InMemoryRateLimiter,
    InMemoryRefreshTokenStore, InMemorySecurityLog, InMemoryTicketStore, InMemoryUserStore,
    RecordingMailer, SeqRandom,
};

pub(super) const T0: i64 = 1_800_000_000_000;

pub(super) struct World {
    pub mfa: InMemoryMfaStore,
    users: InMemoryUserStore,
    tokens: InMemoryAccountTokenStore,
    refresh: InMemoryRefreshTokenStore,
    tickets: InMemoryTicketStore,
    pub clock: &'static FixedClock,
    limiter: InMemoryRateLimiter<'static>,
    mailer: RecordingMailer,
    pub events: InMemorySecurityLog,
    rng: SeqRandom,
    pub access: AccessTokens,
    auth_settings: AuthSettings,
    settings: AccountSettings,
}

impl World {
    pub fn new() -> Self {
        let clock: &'static FixedClock = Box::leak(Box::new(FixedClock::at(T0)));
        Self {
            mfa: InMemoryMfaStore::default(),
            users: InMemoryUserStore::default(),
            tokens: InMemoryAccountTokenStore::default(),
            refresh: InMemoryRefreshTokenStore::default(),
            tickets: InMemoryTicketStore::default(),
            clock,
            limiter: InMemoryRateLimiter::new(clock),
            mailer: RecordingMailer::default(),
            events: InMemorySecurityLog::default(),
            rng: SeqRandom::new(3),
            access: AccessTokens::new(b"0123456789abcdef0123456789abcdef", 900),
            auth_settings: AuthSettings {
                refresh_ttl_ms: 30 * 24 * 3_600_000,
                admin_emails: vec!["boss@example.com".into()],
                register_per_hour: 100,
            },
            settings: AccountSettings {
                admin_emails: vec!["boss@example.com".into()],
                link_base: "https://app.example.com/".into(),
            },
        }
    }

    fn svc(&self) -> AccountService<'_> {
        AccountService {
            users: &self.users,
            tokens: &self.tokens,
            refresh_tokens: &self.refresh,
            limiter: &self.limiter,
            mailer: &self.mailer,
            events: &self.events,
            clock: self.clock,
            rng: &self.rng,
            settings: &self.settings,
        }
    }

    pub fn auth(&self) -> AuthService<'_> {
        AuthService {
            users: &self.users,
            refresh_tokens: &self.refresh,
            tickets: &self.tickets,
            limiter: &self.limiter,
            events: &self.events,
            mfa: &self.mfa,
            account_tokens: &self.tokens,
            clock: self.clock,
            rng: &self.rng,
            tokens: &self.access,
            settings: &self.auth_settings,
        }
    }

    pub fn mfa_service<'a>(&'a self, key: &'a [u8; 32]) -> super::mfa::MfaService<'a> {
        super::mfa::MfaService {
            auth: self.auth(),
            mfa: &self.mfa,
            tokens: &self.tokens,
            key,
        }
    }

    pub async fn register(&self, addr: &str) -> (UserId, AuthTokens) {
        let email = Email::parse(addr).unwrap();
        let (user, tokens) = self
            .auth()
            .register(email.clone(), &pw("correct horse"), None, None)
            .await
            .unwrap();
        self.tokens
            .emails
            .borrow_mut()
            .insert(email.clone(), user.id);
        self.svc().after_register(user.id, &email).await;
        (user.id, tokens)
    }

    pub async fn login(&self, addr: &str, password: &str) -> Result<AuthTokens, AppError> {
        self.auth()
            .login(
                &Email::parse(addr).unwrap(),
                password.as_bytes(),
                None,
                None,
            )
            .await
    }

    /// The token of the last link sent to `addr`.
    fn last_token(&self, addr: &str) -> String {
        let sent = self.mailer.sent.borrow();
        let m = sent
            .iter()
            .rev()
            .find(|m| m.to.as_str() == addr)
            .expect("a message");
        m.text
            .split("?token=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }

    fn sid(&self, t: &AuthTokens) -> uuid::Uuid {
        self.access
            .verify(&t.access_token, T0)
            .unwrap()
            .sid
            .unwrap()
    }
}

fn pw(s: &str) -> Password {
    Password::parse(s).unwrap()
}

pub(super) fn meta() -> ClientMeta {
    ClientMeta {
        ip: Some("203.0.113.77".into()),
        device: DeviceName::parse("Ada's laptop").unwrap(),
    }
}

#[tokio::test]
async fn registration_mails_a_link_to_the_public_base_and_verifying_spends_it_once() {
    let w = World::new();
    let (id, _) = w.register("ada@example.com").await;
    let sent = w.mailer.sent.borrow().clone();
    assert_eq!(sent.len(), 1);
    assert!(sent[0]
        .text
        .contains("https://app.example.com/verify-email?token="));
    let token = w.last_token("ada@example.com");
    assert_eq!(token.len(), 43, "256 bits, URL-safe base64");
    // Only the hash is stored.
    assert!(w.tokens.rows.borrow().contains_key(&token_hash(&token)));
    assert_eq!(w.svc().verify_email(&token, &meta()).await.unwrap(), id);
    assert!(w.users.rows.borrow()[&id].email_verified_at.is_some());
    let again = w.svc().verify_email(&token, &meta()).await.unwrap_err();
    assert_eq!(again.code(), "unauthorized");
}

#[tokio::test]
async fn an_expired_or_reset_token_does_not_verify() {
    let w = World::new();
    w.register("ada@example.com").await;
    let token = w.last_token("ada@example.com");
    w.clock.advance(VERIFY_TTL_MS);
    assert_eq!(
        w.svc()
            .verify_email(&token, &meta())
            .await
            .unwrap_err()
            .status(),
        401
    );
    let reset = w
        .svc()
        .forgot_password(&Email::parse("ada@example.com").unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    let reset_token = reset.text.split("?token=").nth(1).unwrap();
    let reset_token = reset_token.split_whitespace().next().unwrap();
    assert!(w.svc().verify_email(reset_token, &meta()).await.is_err());
}

#[tokio::test]
async fn admin_emails_become_admins_only_once_verified() {
    let w = World::new();
    let (id, _) = w.register("boss@example.com").await;
    assert_eq!(w.users.rows.borrow()[&id].role, Role::User);
    let token = w.last_token("boss@example.com");
    w.svc().verify_email(&token, &meta()).await.unwrap();
    assert_eq!(w.users.rows.borrow()[&id].role, Role::Admin);
}

#[tokio::test]
async fn resends_are_throttled_and_refused_once_verified() {
    let w = World::new();
    let (id, _) = w.register("ada@example.com").await;
    for _ in 0..3 {
        w.svc().resend_verification(id).await.unwrap();
    }
    assert_eq!(
        w.svc().resend_verification(id).await.unwrap_err().code(),
        "rate_limited"
    );
    assert_eq!(w.mailer.sent.borrow().len(), 4);
    let token = w.last_token("ada@example.com");
    w.svc().verify_email(&token, &meta()).await.unwrap();
    assert_eq!(
        w.svc().resend_verification(id).await.unwrap_err().code(),
        "conflict"
    );
}

#[tokio::test]
async fn without_mail_the_flows_that_need_it_answer_email_not_configured() {
    struct NoMail;
    #[async_trait::async_trait(?Send)]
    impl Mailer for NoMail {
        async fn send(&self, _: &OutgoingEmail) -> Result<(), UpstreamError> {
            Err(UpstreamError::NotConfigured)
        }
        fn configured(&self) -> bool {
            false
        }
    }
    let w = World::new();
    let (id, _) = w.register("ada@example.com").await;
    let mut svc = w.svc();
    svc.mailer = &NoMail;
    assert_eq!(
        svc.resend_verification(id).await.unwrap_err().code(),
        "email_not_configured"
    );
    let e = svc
        .forgot_password(&Email::parse("nobody@example.com").unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.status()), ("email_not_configured", 503));
}

#[tokio::test]
async fn forgot_answers_alike_for_known_and_unknown_addresses_and_throttles_both() {
    let w = World::new();
    w.register("ada@example.com").await;
    let known = Email::parse("ada@example.com").unwrap();
    let unknown = Email::parse("ghost@example.com").unwrap();
    assert!(w
        .svc()
        .forgot_password(&known, Some("198.51.100.1"))
        .await
        .unwrap()
        .is_some());
    assert!(w
        .svc()
        .forgot_password(&unknown, Some("198.51.100.2"))
        .await
        .unwrap()
        .is_none());
    for _ in 0..2 {
        w.svc()
            .forgot_password(&known, Some("198.51.100.3"))
            .await
            .unwrap();
        w.svc()
            .forgot_password(&unknown, Some("198.51.100.4"))
            .await
            .unwrap();
    }
    // The fourth request for either address in the hour is refused, alike.
    let a = w
        .svc()
        .forgot_password(&known, Some("198.51.100.5"))
        .await
        .unwrap_err();
    let b = w
        .svc()
        .forgot_password(&unknown, Some("198.51.100.6"))
        .await
        .unwrap_err();
    assert_eq!((a.code(), a.headers()), (b.code(), b.headers()));
    // Ten per address, whatever the addresses asked for.
    for i in 0..10 {
        let e = Email::parse(&format!("x{i}@example.com")).unwrap();
        w.svc()
            .forgot_password(&e, Some("192.0.2.9"))
            .await
            .unwrap();
    }
    let e = Email::parse("x10@example.com").unwrap();
    assert_eq!(
        w.svc()
            .forgot_password(&e, Some("192.0.2.9"))
            .await
            .unwrap_err()
            .code(),
        "rate_limited"
    );
}

#[tokio::test]
async fn a_reset_sets_the_password_once_and_revokes_every_session() {
    let w = World::new();
    let (id, first) = w.register("ada@example.com").await;
    let second = w.login("ada@example.com", "correct horse").await.unwrap();
    let m = w
        .svc()
        .forgot_password(&Email::parse("ada@example.com").unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    assert!(m
        .text
        .contains("https://app.example.com/reset-password?token="));
    let older = m
        .text
        .split("?token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let m = w
        .svc()
        .forgot_password(&Email::parse("ada@example.com").unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    let token = m
        .text
        .split("?token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let mut revoked = w
        .svc()
        .reset_password(&token, &pw("a brand new one"), &meta())
        .await
        .unwrap()
        .1;
    revoked.sort();
    let mut expected = vec![w.sid(&first), w.sid(&second)];
    expected.sort();
    assert_eq!(revoked, expected);
    assert!(w.auth().refresh(&second.refresh_token).await.is_err());
    assert!(w.login("ada@example.com", "correct horse").await.is_err());
    assert!(w.login("ada@example.com", "a brand new one").await.is_ok());
    // Single use, and the other outstanding link is spent with it.
    for t in [&token, &older] {
        let e = w
            .svc()
            .reset_password(t, &pw("attacker's choice"), &meta())
            .await
            .unwrap_err();
        assert_eq!(e.status(), 401);
    }
    let e = w
        .events
        .events
        .borrow()
        .iter()
        .find(|e| e.kind == SecurityEventKind::PasswordReset)
        .unwrap()
        .clone();
    assert_eq!(e.user_id, id);
    assert_eq!(e.network.as_deref(), Some("203.0.113.0/24"));
    assert_eq!(e.device_name.as_deref(), Some("Ada's laptop"));
}

#[tokio::test]
async fn a_reset_link_expires_after_thirty_minutes() {
    let w = World::new();
    w.register("ada@example.com").await;
    let m = w
        .svc()
        .forgot_password(&Email::parse("ada@example.com").unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    let token = m
        .text
        .split("?token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    w.clock.advance(RESET_TTL_MS);
    assert!(w
        .svc()
        .reset_password(&token, &pw("a brand new one"), &meta())
        .await
        .is_err());
}

#[tokio::test]
async fn a_change_needs_the_current_password_and_ends_only_the_other_sessions() {
    let w = World::new();
    let (id, mine) = w.register("ada@example.com").await;
    let other = w.login("ada@example.com", "correct horse").await.unwrap();
    let e = w
        .svc()
        .change_password(id, Some(w.sid(&mine)), "wrong", &pw("another one"), &meta())
        .await
        .unwrap_err();
    assert_eq!(e.status(), 401);
    let revoked = w
        .svc()
        .change_password(
            id,
            Some(w.sid(&mine)),
            "correct horse",
            &pw("another one"),
            &meta(),
        )
        .await
        .unwrap();
    assert_eq!(revoked, vec![w.sid(&other)]);
    assert!(w.auth().refresh(&mine.refresh_token).await.is_ok());
    assert!(w.auth().refresh(&other.refresh_token).await.is_err());
}

#[tokio::test]
async fn wrong_current_passwords_are_throttled_before_they_are_checked() {
    let w = World::new();
    let (id, _) = w.register("ada@example.com").await;
    for _ in 0..5 {
        assert_eq!(
            w.svc()
                .change_password(id, None, "wrong", &pw("another one"), &meta())
                .await
                .unwrap_err()
                .status(),
            401
        );
    }
    let e = w
        .svc()
        .change_password(id, None, "correct horse", &pw("another one"), &meta())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "rate_limited");
}

#[tokio::test]
async fn sessions_list_the_device_and_mark_the_current_one_and_another_users_is_404() {
    let w = World::new();
    let (id, _) = w.register("ada@example.com").await;
    let laptop = w
        .auth()
        .login(
            &Email::parse("ada@example.com").unwrap(),
            b"correct horse",
            None,
            DeviceName::parse("laptop").unwrap(),
        )
        .await
        .unwrap();
    let (mallory, mallorys) = w.register("mallory@example.com").await;
    let list = w.svc().sessions(id, Some(w.sid(&laptop))).await.unwrap();
    assert_eq!(list.sessions.len(), 2);
    let current: Vec<_> = list.sessions.iter().filter(|s| s.current).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].device_name.as_deref(), Some("laptop"));
    // Mallory cannot end Ada's session, nor learn that it exists.
    let e = w
        .svc()
        .revoke_session(mallory, w.sid(&laptop), &meta())
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404);
    assert!(w.auth().refresh(&laptop.refresh_token).await.is_ok());
    w.svc()
        .revoke_session(mallory, w.sid(&mallorys), &meta())
        .await
        .unwrap();
    assert!(w
        .svc()
        .revoke_session(mallory, w.sid(&mallorys), &meta())
        .await
        .is_err());
}

#[test]
fn networks_drop_the_host_part() {
    assert_eq!(
        network_of("203.0.113.77").as_deref(),
        Some("203.0.113.0/24")
    );
    assert_eq!(
        network_of("2001:db8:1:2:3::9").as_deref(),
        Some("2001:db8:1::/48")
    );
    assert_eq!(network_of("not an ip"), None);
}
