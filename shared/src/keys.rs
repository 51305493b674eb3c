//! Per-purpose keys, derived from the deployment's one secret so that no key serves two
//! protocols.
//!
//! `JWT_SECRET` signs access tokens (HS256) and nothing else. Every other server-side key is
//! derived from it with HKDF-SHA256 (RFC 5869: extract with a fixed salt, expand with a label
//! naming the purpose), so a tag of one protocol is never valid in another, and leaking a
//! derived key reveals neither the secret nor any other key. Adding a purpose means adding a
//! label here; a label, once deployed, never changes (that would invalidate what it keyed).

use hkdf::Hkdf;
use sha2::Sha256;

/// HKDF's extract salt: fixed and public, it only separates this scheme from other uses.
const SALT: &[u8] = b"adiuva-keys-v1";

/// What a derived key is for; the label is the HKDF `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// HMAC of plugin download tokens.
    PluginDownload,
    /// XChaCha20-Poly1305 sealing of TOTP secrets at rest.
    TotpSecret,
    /// HMAC of account-export download links.
    ExportDownload,
    /// XChaCha20-Poly1305 sealing of teams' SSO client secrets at rest.
    SsoClientSecret,
}

impl KeyPurpose {
    /// The HKDF `info` of this purpose.
    pub fn label(self) -> &'static [u8] {
        match self {
            Self::PluginDownload => b"adiuva/plugin-download-token/v1",
            Self::TotpSecret => b"adiuva/totp-secret/v1",
            Self::ExportDownload => b"adiuva/export-download-link/v1",
            Self::SsoClientSecret => b"adiuva/sso-client-secret/v1",
        }
    }
}

/// The key for `purpose` derived from `secret`.
///
/// # Panics
/// Never: 32 bytes is far below HKDF-SHA256's output limit of 8160.
pub fn derive(secret: &[u8], purpose: KeyPurpose) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(SALT), secret)
        .expand(purpose.label(), &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_are_deterministic_and_never_the_secret() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let a = derive(secret, KeyPurpose::PluginDownload);
        assert_eq!(a, derive(secret, KeyPurpose::PluginDownload));
        assert_ne!(
            a,
            derive(secret, KeyPurpose::TotpSecret),
            "one key per purpose"
        );
        assert_ne!(&a[..], &secret[..]);
        assert_ne!(
            a,
            derive(
                b"another secret, another deployment",
                KeyPurpose::PluginDownload
            )
        );
    }

    #[test]
    fn the_derivation_is_rfc_5869_hkdf_sha256() {
        // RFC 5869, test case 1, through the same crate and parameters shape.
        let ikm = [0x0b_u8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let mut okm = [0u8; 42];
        Hkdf::<Sha256>::new(Some(&salt), &ikm)
            .expand(&info, &mut okm)
            .unwrap();
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }
}
