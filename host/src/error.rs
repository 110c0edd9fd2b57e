//! The host's error type and its mapping to the documented process exit codes.

use std::path::Path;

/// Process exit codes, documented in the README and stable across releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Success, including "already complete".
    Ok = 0,
    /// A failure worth retrying as is (I/O, disk full, interrupted).
    Retryable = 1,
    /// Usage or configuration error: fix the command line or the spec.
    Usage = 2,
    /// A data quality gate failed.
    Quality = 3,
    /// A plugin failed: trap, limit, contract violation.
    Plugin = 4,
    /// The input data is bad (corrupt, wrong schema, unparsable).
    BadInput = 5,
}

/// Everything that can go wrong in the host, grouped by who has to act.
///
/// Every message names the file, plugin or value involved and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O failure; retrying may help.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A usage or configuration error.
    #[error("{0}")]
    Usage(String),
    /// A data quality gate failed.
    #[error("{message}")]
    Quality {
        /// The readable report: which gates failed, expected and observed.
        message: String,
        /// Every check's result (name, severity, status, expected, observed), as JSON.
        checks: serde_json::Value,
    },
    /// A plugin trapped, hit a limit or broke the ABI contract.
    #[error("plugin `{plugin}`: {message}")]
    Plugin {
        /// The plugin's name (or file name before its name is known).
        plugin: String,
        /// What went wrong, and what to do.
        message: String,
    },
    /// The input data is malformed or does not fit.
    #[error("{0}")]
    Input(String),
}

impl Error {
    /// An I/O error while doing `what` on `path`.
    pub fn io(what: &str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            context: format!("failed to {what} `{}`", path.display()),
            source,
        }
    }

    /// A usage error with the given message.
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    /// A bad-input error with the given message.
    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }

    /// A plugin error for plugin `plugin`.
    pub fn plugin(plugin: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Plugin {
            plugin: plugin.into(),
            message: msg.into(),
        }
    }

    /// The same error (same category and exit code) with `prefix` before its message.
    pub fn prefixed(self, prefix: &str) -> Self {
        match self {
            Error::Io { context, source } => Error::Io {
                context: format!("{prefix}{context}"),
                source,
            },
            Error::Usage(m) => Error::Usage(format!("{prefix}{m}")),
            Error::Quality { message, checks } => Error::Quality {
                message: format!("{prefix}{message}"),
                checks,
            },
            Error::Plugin { plugin, message } => Error::Plugin {
                plugin,
                message: format!("{prefix}{message}"),
            },
            Error::Input(m) => Error::Input(format!("{prefix}{m}")),
        }
    }

    /// The exit code a CLI should return for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Io { .. } => ExitCode::Retryable,
            Error::Usage(_) => ExitCode::Usage,
            Error::Quality { .. } => ExitCode::Quality,
            Error::Plugin { .. } => ExitCode::Plugin,
            Error::Input(_) => ExitCode::BadInput,
        }
    }

    /// A short stable name of the error category, used in JSON logs and summaries.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io",
            Error::Usage(_) => "usage",
            Error::Quality { .. } => "quality",
            Error::Plugin { .. } => "plugin",
            Error::Input(_) => "input",
        }
    }
}

/// Result with the host's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
