use super::*;
use crate::accounts::tests::{meta, World};
use crate::ports::Clock;

const KEY: [u8; 32] = [42; 32];

fn code_now(w: &World, secret_b32: &str, offset_steps: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .unwrap();
    let step = totp::step_of(w.clock.now_ms()) + offset_steps;
    format!("{:06}", totp::code_at(&secret, step, 6))
}

/// Ada with two-factor on: her secret and recovery codes.
async fn enabled(w: &World) -> (UserId, String, Vec<String>) {
    let (id, _) = w.register("ada@example.com").await;
    let setup = w.mfa_service(&KEY).setup(id).await.unwrap();
    assert!(setup.otpauth_uri.contains(&setup.secret));
    let codes = w
        .mfa_service(&KEY)
        .enable(id, &code_now(w, &setup.secret, 0), &meta())
        .await
        .unwrap();
    (id, setup.secret, codes.recovery_codes)
}

async fn mfa_token(w: &World) -> String {
    match w
        .login("ada@example.com", "correct horse")
        .await
        .unwrap_err()
    {
        AppError::MfaRequired {
            mfa_token,
            expires_at,
        } => {
            assert_eq!(expires_at, w.clock.now_ms() + crate::auth::MFA_TOKEN_TTL_MS);
            mfa_token
        }
        other => panic!("mfa_required, not {other:?}"),
    }
}

#[tokio::test]
async fn a_pending_secret_changes_nothing_until_confirmed_and_is_stored_sealed() {
    let w = World::new();
    let (id, _) = w.register("ada@example.com").await;
    let setup = w.mfa_service(&KEY).setup(id).await.unwrap();
    let secret = data_encoding::BASE32_NOPAD
        .decode(setup.secret.as_bytes())
        .unwrap();
    let row = w.mfa.rows.borrow()[&id].clone();
    assert!(!row.sealed_secret.windows(secret.len()).any(|x| x == secret));
    assert!(w.login("ada@example.com", "correct horse").await.is_ok());
    let e = w
        .mfa_service(&KEY)
        .enable(id, "000000", &meta())
        .await
        .unwrap_err();
    assert_eq!(e.status(), 401);
}

#[tokio::test]
async fn enabling_answers_ten_recovery_codes_and_login_then_needs_the_second_step() {
    let w = World::new();
    let (id, secret, codes) = enabled(&w).await;
    assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
    assert_eq!(w.mfa.codes.borrow().len(), 10, "stored hashed");
    assert!(!w
        .mfa
        .codes
        .borrow()
        .keys()
        .any(|(_, h)| codes.iter().any(|c| c.as_bytes() == &h[..c.len()])));
    let e = w.mfa_service(&KEY).setup(id).await.unwrap_err();
    assert_eq!(e.code(), "conflict");
    let token = mfa_token(&w).await;
    // The confirming code was accepted already: no replay, even in its window.
    w.clock.advance(1_000);
    let confirm = code_now(&w, &secret, 0);
    let e = w
        .mfa_service(&KEY)
        .login(&token, &SecondFactor::Totp(confirm), meta())
        .await
        .unwrap_err();
    assert_eq!(e.status(), 401);
    w.clock.advance(30_000);
    let fresh = code_now(&w, &secret, 0);
    let tokens = w
        .mfa_service(&KEY)
        .login(&token, &SecondFactor::Totp(fresh.clone()), meta())
        .await
        .unwrap();
    assert!(w
        .access
        .verify(&tokens.access_token, w.clock.now_ms())
        .is_ok());
    // The token is spent, and the code accepted once.
    let e = w
        .mfa_service(&KEY)
        .login(&token, &SecondFactor::Totp(fresh.clone()), meta())
        .await
        .unwrap_err();
    assert_eq!(e.status(), 401);
    let token = mfa_token(&w).await;
    let e = w
        .mfa_service(&KEY)
        .login(&token, &SecondFactor::Totp(fresh), meta())
        .await
        .unwrap_err();
    assert_eq!(e.status(), 401, "replayed within its window");
}

#[tokio::test]
async fn codes_one_step_off_work_and_two_steps_off_do_not() {
    let w = World::new();
    let (_, secret, _) = enabled(&w).await;
    w.clock.advance(120_000);
    let token = mfa_token(&w).await;
    let far = code_now(&w, &secret, 2);
    assert!(w
        .mfa_service(&KEY)
        .login(&token, &SecondFactor::Totp(far), meta())
        .await
        .is_err());
    let near = code_now(&w, &secret, 1);
    assert!(w
        .mfa_service(&KEY)
        .login(&token, &SecondFactor::Totp(near), meta())
        .await
        .is_ok());
}

#[tokio::test]
async fn a_recovery_code_works_once_whatever_its_case_and_dashes() {
    let w = World::new();
    let (_, _, codes) = enabled(&w).await;
    let token = mfa_token(&w).await;
    let typed = codes[3].to_uppercase().replace('-', " ");
    w.mfa_service(&KEY)
        .login(&token, &SecondFactor::Recovery(typed), meta())
        .await
        .unwrap();
    let token = mfa_token(&w).await;
    let e = w
        .mfa_service(&KEY)
        .login(&token, &SecondFactor::Recovery(codes[3].clone()), meta())
        .await
        .unwrap_err();
    assert_eq!(e.status(), 401);
    let kinds: Vec<_> = w.events.events.borrow().iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&SecurityEventKind::RecoveryCodeUsed));
}

#[tokio::test]
async fn wrong_codes_stop_at_five_before_any_check_and_an_expired_token_is_refused() {
    let w = World::new();
    let (_, secret, _) = enabled(&w).await;
    let token = mfa_token(&w).await;
    for _ in 0..5 {
        let e = w
            .mfa_service(&KEY)
            .login(&token, &SecondFactor::Totp("000000".into()), meta())
            .await
            .unwrap_err();
        assert_eq!(e.status(), 401);
    }
    w.clock.advance(30_000);
    let right = code_now(&w, &secret, 0);
    let e = w
        .mfa_service(&KEY)
        .login(&token, &SecondFactor::Totp(right), meta())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "rate_limited");
    w.clock.advance(15 * 60_000);
    let right = code_now(&w, &secret, 0);
    let e = w
        .mfa_service(&KEY)
        .login(&token, &SecondFactor::Totp(right), meta())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "unauthorized", "the mfa_token lived 5 minutes");
}

#[tokio::test]
async fn disabling_needs_the_password_and_a_code_and_login_is_one_step_again() {
    let w = World::new();
    let (id, secret, _) = enabled(&w).await;
    w.clock.advance(30_000);
    let code = code_now(&w, &secret, 0);
    let e = w
        .mfa_service(&KEY)
        .disable(id, "wrong", &code, &meta())
        .await
        .unwrap_err();
    assert_eq!(e.status(), 401);
    w.mfa_service(&KEY)
        .disable(id, "correct horse", &code, &meta())
        .await
        .unwrap();
    assert!(w.login("ada@example.com", "correct horse").await.is_ok());
    assert!(w.mfa.codes.borrow().is_empty());
}
