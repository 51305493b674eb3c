//! Domain types: values that can only exist in a valid state ("parse, don't validate").

mod device;
mod email;
mod password;
mod provider;
mod tier;
mod user;

pub use device::{DeviceName, MAX_DEVICE_NAME_CHARS};
pub use email::Email;
pub use password::{Password, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
pub use provider::{
    check_model_name, check_provider_name, ProviderKind, MAX_MODEL_NAME_LEN, MAX_PROVIDER_NAME_LEN,
};
pub use tier::{tier_in_force, Comp, Role, TeamGrant, Tier};
pub use user::{RefreshTokenHash, User, UserId};
