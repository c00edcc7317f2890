//! Who is calling, as the front established it from a verified token.

use crate::user_id::UserId;

/// The authenticated caller of one request: whose vault, and what the token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    /// The token allows reading notes (`notes:read`, or no scope claim at all).
    pub can_read: bool,
    /// The token allows changing notes (`notes:write`, or no scope claim at all).
    pub can_write: bool,
}

impl Caller {
    /// A caller with every right over `user`'s vault.
    pub fn full(user: UserId) -> Self {
        Caller {
            user,
            can_read: true,
            can_write: true,
        }
    }
}
