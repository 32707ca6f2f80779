//! The one error of the `pitwall` commands: each floor's typed error inside, and one
//! [`Error::exit_code`], so that the same failure leaves with the same code wherever it happens
//! (on the main thread, inside a worker, in a benchmark).

use crate::bench::BenchError;
use crate::cluster::ClusterError;
use crate::config::ConfigError;
use crate::http::server::ServeError;
use crate::ingest::InputError;
use crate::kafka::BrokerError;
use crate::sinks::collect::WriteError;
use pitwall_dataflows::config::Invalid;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag's value that cannot be used (clap's own checks exit before this).
    #[error("{flag} {value}: {reason}")]
    Flag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A setting (from the file or a flag laid over it) that cannot be used.
    #[error("configuration: {0}")]
    Setting(#[from] Invalid),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Bench(#[from] BenchError),
    /// A worker thread panicked (a bug: the engine does not panic on data).
    #[error("a worker failed: {0}")]
    Worker(String),
    /// The signal handlers could not be installed.
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
}

impl Error {
    /// 2: the command cannot start with what it was given (flags, configuration, input,
    /// cluster layout, the address to serve on, an `--out` folder it cannot create). 1: it started and then failed (the broker,
    /// writing its outputs, a worker, a benchmark). A process stopped by a lost peer exits
    /// with 3 (`liveness`), by a second signal with 128 + the signal.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Cluster(ClusterError::Start(_)) => 1,
            Error::Flag { .. }
            | Error::Config(_)
            | Error::Setting(_)
            | Error::Input(_)
            | Error::Cluster(_)
            | Error::Serve(_)
            | Error::Write(WriteError::CreateOut { .. }) => 2,
            Error::Broker(_)
            | Error::Write(_)
            | Error::Bench(_)
            | Error::Worker(_)
            | Error::Signal(_) => 1,
        }
    }

    pub fn flag(flag: &'static str, value: impl ToString, reason: impl ToString) -> Error {
        Error::Flag {
            flag,
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_code() {
        let io = || std::io::Error::other("x");
        let two = [
            Error::flag("--http", "nowhere", "not an address"),
            Error::Config(ConfigError::Invalid {
                origin: "embedded".into(),
                source: Invalid::new("engine.batch", "must be at least 1"),
            }),
            Error::Setting(Invalid::new("engine.batch", "must be at least 1")),
            Error::Input(InputError::new("x")),
            Error::Cluster(ClusterError::ProcessIndex {
                process: 2,
                processes: 2,
            }),
            Error::Serve(ServeError::Socket(io())),
        ];
        let one = [
            Error::Broker(BrokerError::Io(io())),
            Error::Write(WriteError::Summary {
                path: "s.json".into(),
                source: io(),
            }),
            Error::Bench(BenchError::TempDir(io())),
            Error::Worker("x".into()),
            Error::Signal(io()),
        ];
        assert!(two.iter().all(|e| e.exit_code() == 2));
        assert!(one.iter().all(|e| e.exit_code() == 1));
    }
}
