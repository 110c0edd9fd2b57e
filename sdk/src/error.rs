//! The error type every plugin call returns.

use std::fmt;

use arrow_schema::ArrowError;

/// Why a plugin call failed; maps one-to-one onto the WIT `error` variant.
///
/// Messages should name the offending key, column or value, so that the person reading
/// the host's log can act on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The configuration is wrong (missing key, bad value): the user must fix it.
    InvalidConfig(String),
    /// The data does not fit what the plugin expects (wrong type, bad value).
    InvalidInput(String),
    /// A bug or an unexpected condition inside the plugin.
    Internal(String),
}

impl Error {
    /// The message without the kind prefix.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidConfig(m) | Error::InvalidInput(m) | Error::Internal(m) => m,
        }
    }

    /// Prefix the message with some context, keeping the kind: `context: message`.
    pub fn context(self, context: impl fmt::Display) -> Self {
        match self {
            Error::InvalidConfig(m) => Error::InvalidConfig(format!("{context}: {m}")),
            Error::InvalidInput(m) => Error::InvalidInput(format!("{context}: {m}")),
            Error::Internal(m) => Error::Internal(format!("{context}: {m}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig(m) => write!(f, "invalid config: {m}"),
            Error::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Arrow errors raised while processing come from the data almost every time (a cast that
/// does not fit, an overflow, a division by zero, bytes that are not valid IPC), so they
/// become [`Error::InvalidInput`]; the host reports those as "bad input data". Only the
/// kinds that cannot be caused by data (allocation failure, unimplemented kernels, I/O and
/// foreign errors) become [`Error::Internal`].
impl From<ArrowError> for Error {
    fn from(e: ArrowError) -> Self {
        match e {
            ArrowError::MemoryError(_)
            | ArrowError::NotYetImplemented(_)
            | ArrowError::ExternalError(_)
            | ArrowError::IoError(_, _) => Error::Internal(e.to_string()),
            _ => Error::InvalidInput(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_errors_map_to_kinds() {
        let e: Error = ArrowError::DivideByZero.into();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
        let e: Error = ArrowError::MemoryError("oom".into()).into();
        assert!(matches!(e, Error::Internal(_)), "{e:?}");
    }

    #[test]
    fn context_keeps_kind() {
        let e = Error::InvalidConfig("bad".into()).context("column `x`");
        assert_eq!(e, Error::InvalidConfig("column `x`: bad".into()));
        assert_eq!(e.to_string(), "invalid config: column `x`: bad");
    }
}
