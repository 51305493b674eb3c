//! Domain types: values that can only exist in a valid state ("parse, don't validate").

mod email;
mod password;
mod tier;
mod user;

pub use email::Email;
pub use password::{Password, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
pub use tier::{Role, Tier};
pub use user::{RefreshTokenHash, User, UserId};
