use coffer_core::state::IllegalTransition;
use coffer_store::StoreError;

/// Errors of the engine, each with a stable machine code. API layers map them to HTTP
/// statuses and their own envelopes; the code and field never change meaning.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Bad input: nothing was written.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: Option<&'static str>,
        message: String,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request contradicts existing state (reused order number with other fields, an
    /// action the order's state does not allow).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("no exchange rate available for {base}/{quote}")]
    RateUnavailable { base: String, quote: String },
    #[error("invalid or revoked API key")]
    Unauthorized,
    #[error("the API key lacks the {0} scope")]
    Forbidden(coffer_core::Scope),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EngineError {
    pub fn invalid(code: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        EngineError::Invalid {
            code,
            field: Some(field),
            message: message.into(),
        }
    }

    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Invalid { code, .. } | EngineError::Conflict { code, .. } => code,
            EngineError::NotFound(_) => "not_found",
            EngineError::RateUnavailable { .. } => "rate_unavailable",
            EngineError::Unauthorized => "unauthorized",
            EngineError::Forbidden(_) => "forbidden",
            EngineError::Store(StoreError::Unavailable(_)) => "database_unavailable",
            EngineError::Store(_) => "internal_error",
        }
    }
}

impl From<IllegalTransition> for EngineError {
    fn from(err: IllegalTransition) -> Self {
        EngineError::Conflict {
            code: "invalid_state",
            message: format!(
                "the order is {} ({}); this action is not possible now",
                err.from.status, err.from.reason
            ),
        }
    }
}
