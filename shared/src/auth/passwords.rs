//! Password hashing: argon2id with OWASP's minimum (m = 19 MiB, t = 2, p = 1), PHC strings.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::AppError;

/// Memory cost in KiB (19 MiB).
pub const M_COST_KIB: u32 = 19 * 1024;
/// Iterations.
pub const T_COST: u32 = 2;
/// Parallelism.
pub const P_COST: u32 = 1;

/// A PHC string with the current parameters, verified when an email is unknown so that an
/// unknown email and a wrong password take comparable time. Its digest is random bytes, so no
/// password matches it.
pub const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZHVtbXlzYWx0ZHVtbXlzYWx0$\
jrlVvlaEFWyxUEoBaYQGh4Vg2ps+tE8vaqUa6IrNbws";

fn argon2() -> Argon2<'static> {
    let params =
        Params::new(M_COST_KIB, T_COST, P_COST, None).expect("constant parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` with a 16-byte `salt`.
///
/// # Errors
/// Internal only (the parameters are constant and valid).
pub fn hash(password: &[u8], salt: &[u8; 16]) -> Result<String, AppError> {
    let salt = SaltString::encode_b64(salt)
        .map_err(|e| AppError::internal(format!("encoding salt: {e}")))?;
    argon2()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(format!("hashing password: {e}")))
}

/// Whether `password` matches the PHC string `phc` (any argon2 variant or parameters).
pub fn verify(password: &[u8], phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| argon2().verify_password(password, &parsed).is_ok())
}

/// Whether a stored hash uses other than the current algorithm and parameters.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    parsed.algorithm.as_str() != "argon2id"
        || parsed.version != Some(Version::V0x13.into())
        || params.m_cost() != M_COST_KIB
        || params.t_cost() != T_COST
        || params.p_cost() != P_COST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash(b"correct horse", &[7; 16]).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify(b"correct horse", &phc));
        assert!(!verify(b"correct horsf", &phc));
    }

    #[test]
    fn current_hashes_need_no_rehash() {
        let phc = hash(b"pw-pw-pw-pw", &[1; 16]).unwrap();
        assert!(!needs_rehash(&phc));
        assert!(!needs_rehash(DUMMY_PHC));
    }

    #[test]
    fn weaker_or_foreign_hashes_need_a_rehash() {
        let weak = {
            let params = Params::new(4096, 1, 1, None).unwrap();
            let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
            let salt = SaltString::encode_b64(&[3; 16]).unwrap();
            a.hash_password(b"pw", &salt).unwrap().to_string()
        };
        assert!(needs_rehash(&weak));
        // ...yet it still verifies, so the login that rehashes it succeeds.
        assert!(verify(b"pw", &weak));
        let argon2i = {
            let a = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::default());
            let salt = SaltString::encode_b64(&[3; 16]).unwrap();
            a.hash_password(b"pw", &salt).unwrap().to_string()
        };
        assert!(needs_rehash(&argon2i));
        assert!(needs_rehash("$2b$10$notargon"));
        assert!(needs_rehash("garbage"));
    }

    #[test]
    fn the_dummy_hash_parses_and_rejects_everything_tried() {
        assert!(PasswordHash::new(DUMMY_PHC).is_ok());
        assert!(!verify(b"", DUMMY_PHC));
        assert!(!verify(b"password", DUMMY_PHC));
    }
}
