//! The web console's application services (issue 19): accounts and sessions
//! ([`accounts`]), the second factor ([`totp`]) and what its pages read ([`reads`]). The
//! console crate renders; the rules about who may sign in and do what live here.

pub mod accounts;
pub mod reads;
pub mod totp;

pub use accounts::{Access, Actor, OpenedSession, SignIn, access, normalize_username, token_hash};
pub use coffer_store::{
    AuditRecord, ConsoleInviteRecord, ConsoleOrderQuery, ConsoleRole, ConsoleSessionRecord,
    ConsoleUserRecord, ListCursor, WebhookBacklog,
};
pub use reads::{AssetVolume, Dashboard, SetupFacts, WalletPreview};
