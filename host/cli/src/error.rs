//! What can go wrong, and the exit code each outcome gives, so scripts can tell a refused
//! request from a failed run from a server that is down.

use std::fmt;
use std::process::ExitCode;

/// The process's exit codes (documented in the README).
pub mod exit {
    /// Anything else: configuration, network, a file, the server failing (5xx).
    pub const ERROR: u8 = 1;
    /// clap's code for a command line it cannot parse.
    pub const USAGE: u8 = 2;
    /// The server (or `plugin test`) refused the request: invalid input, no permission, not
    /// found, conflict.
    pub const REFUSED: u8 = 3;
    /// The run ended FAILURE.
    pub const FAILURE: u8 = 4;
    /// The run ended CANCELLED.
    pub const CANCELLED: u8 = 5;
    /// The run ended DECLINED (an approver refused it, or its approval expired).
    pub const DECLINED: u8 = 6;
}

/// A command that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Nothing to talk to, or a bad local file or flag.
    #[error("{0}")]
    Local(String),
    /// Found locally to be what the server would refuse (`plugin test`: the component, the
    /// action or its inputs), so it exits as a refusal does.
    #[error("{0}")]
    Invalid(String),
    /// The server could not be reached.
    #[error("cannot reach {url}: {message}")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        message: String,
    },
    /// A 4xx: the request needs fixing; `details` lists each field at fault.
    #[error("{}", Refusal(.status, .message, .details))]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
        /// `(path, message)` per field.
        details: Vec<(String, String)>,
    },
    /// A 5xx (the server logs why).
    #[error("the server failed ({status}): {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// A run that ended otherwise than SUCCESS; what it said was printed already.
    #[error("run {id} ended {status}")]
    RunEnded {
        /// The run.
        id: String,
        /// FAILURE, CANCELLED or DECLINED.
        status: String,
    },
}

struct Refusal<'a>(&'a u16, &'a String, &'a Vec<(String, String)>);

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.1, self.0)?;
        for (path, message) in self.2 {
            // The server's message often is the first detail already.
            if !self.1.contains(message.as_str()) {
                write!(f, "\n  {path}: {message}")?;
            }
        }
        Ok(())
    }
}

impl CliError {
    /// The exit code this outcome gives.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Refused { .. } | CliError::Invalid(_) => exit::REFUSED,
            CliError::RunEnded { status, .. } => status_code(status),
            _ => exit::ERROR,
        })
    }
}

/// The exit code for a run that ended with `status`.
pub fn status_code(status: &str) -> u8 {
    match status {
        "SUCCESS" => 0,
        "CANCELLED" => exit::CANCELLED,
        "DECLINED" => exit::DECLINED,
        _ => exit::FAILURE,
    }
}

impl CliError {
    /// [`CliError::Local`] from any text.
    pub fn local(message: impl Into<String>) -> Self {
        CliError::Local(message.into())
    }

    /// [`CliError::Invalid`] from any text.
    pub fn invalid(message: impl Into<String>) -> Self {
        CliError::Invalid(message.into())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Local(e.to_string())
    }
}
