//! Coffer's pure domain core: money, assets, orders, the order state machine, settlement
//! rules and the rate-source abstraction. No I/O, no clocks, no randomness: callers pass the
//! time and random bytes in, so every rule here is a deterministic, exhaustively tested
//! function.

pub mod asset;
pub mod deposit;
pub mod event;
pub mod fiat;
pub mod gap;
pub mod ids;
pub mod merchant;
pub mod money;
pub mod order;
pub mod payout;
pub mod rate;
pub mod state;

pub use asset::{Asset, AssetId, AssetKind, Chain, ChainId, ChainKind, Network, Symbol};
pub use deposit::{Deposit, TransferNews, transfer_news};
pub use event::{Event, EventType};
pub use ids::{
    CheckoutToken, DeliveryId, DepositId, EventId, KeyId, MerchantId, OrderId, PaymentId, PayoutId,
    WebhookId,
};
pub use merchant::{ApiCredential, Merchant, Scope};
pub use money::{BaseUnits, Decimals, MoneyError, Price, Rounding};
pub use order::{
    LockedRate, MatchStatus, Order, OrderLinks, Payment, PaymentStatus, PaymentTarget,
    SettlementPolicy, TimelineEntry,
};
pub use payout::{PayoutError, PayoutKind, PayoutRequest, PayoutStatus};
pub use rate::{FixedRates, Quote, RateError, RateSource, RatesHealth, SourceHealth};
pub use state::{Cause, OrderState, OrderStatus, StatusReason, Totals};
