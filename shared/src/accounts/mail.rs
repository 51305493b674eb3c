//! The messages the account flows send. Links point at the deployment's public base URL
//! (`PUBLIC_BASE_URL`, else the origin the request came to); the token is URL-safe base64, so
//! it needs no escaping in either body.

use crate::domain::Email;
use crate::ports::OutgoingEmail;

/// The path of verification links (`{base}/verify-email?token=…`).
pub const VERIFY_PATH: &str = "/verify-email";
/// The path of reset links (`{base}/reset-password?token=…`).
pub const RESET_PATH: &str = "/reset-password";

fn link(base: &str, path: &str, token: &str) -> String {
    format!("{}{path}?token={token}", base.trim_end_matches('/'))
}

/// The verification message for `to`.
pub fn verification(to: Email, base: &str, token: &str) -> OutgoingEmail {
    let url = link(base, VERIFY_PATH, token);
    OutgoingEmail {
        to,
        subject: "Verify your Adiuva email address".to_owned(),
        text: format!(
            "Open this link within 24 hours to verify your email address:\n\n{url}\n\n\
             If you did not create an Adiuva account, ignore this message."
        ),
        html: format!(
            "<p>Open this link within 24 hours to verify your email address:</p>\
             <p><a href=\"{url}\">{url}</a></p>\
             <p>If you did not create an Adiuva account, ignore this message.</p>"
        ),
    }
}

/// The password-reset message for `to`.
pub fn reset(to: Email, base: &str, token: &str) -> OutgoingEmail {
    let url = link(base, RESET_PATH, token);
    OutgoingEmail {
        to,
        subject: "Reset your Adiuva password".to_owned(),
        text: format!(
            "Someone asked to reset the password of your Adiuva account. Open this link within \
             30 minutes to choose a new one:\n\n{url}\n\n\
             A reset signs out every device. Data your devices encrypted with a key derived \
             from the old password cannot be recovered with the new one.\n\n\
             If you did not ask for this, ignore this message: your password stays as it is."
        ),
        html: format!(
            "<p>Someone asked to reset the password of your Adiuva account. Open this link \
             within 30 minutes to choose a new one:</p>\
             <p><a href=\"{url}\">{url}</a></p>\
             <p>A reset signs out every device. Data your devices encrypted with a key derived \
             from the old password cannot be recovered with the new one.</p>\
             <p>If you did not ask for this, ignore this message: your password stays as it \
             is.</p>"
        ),
    }
}
