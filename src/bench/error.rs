//! The one error of `pitwall bench`: what could not be started, waited for, read or measured,
//! naming the child, file or endpoint, with the error underneath as its source.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use super::http_load::WRK_HINT;
use super::peers::INSTALL_HINT;

/// Why a benchmark could not run or measure.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The running binary's own path (every scenario starts it again as a child).
    #[error("the pitwall binary: {0}")]
    Exe(#[source] io::Error),
    /// A scratch folder for a scenario's files.
    #[error("a temporary folder: {0}")]
    TempDir(#[source] io::Error),
    #[error("no free loopback port: {0}")]
    Port(#[source] io::Error),
    /// A file the bench writes or reads (a child's configuration, hostfile, summary, results).
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A summary or other JSON file that does not parse.
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: {source}", path.display())]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    /// The configuration handed to a child run.
    #[error("the child run's configuration: {0}")]
    Config(#[from] toml::ser::Error),
    /// A child process that could not be started.
    #[error("{what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: io::Error,
    },
    /// A child process that could not be waited for.
    #[error("waiting for {what}: {source}")]
    Wait {
        what: String,
        #[source]
        source: io::Error,
    },
    /// A child that ended unsuccessfully, with the end of what it said.
    #[error("{what} failed ({status}){}{output}", if output.is_empty() { "" } else { ": " })]
    Failed {
        what: String,
        status: ExitStatus,
        output: String,
    },
    /// A child that did not stop within its grace after SIGTERM (it was killed).
    #[error("{what} did not stop within {:.0} s of SIGTERM; killed", grace.as_secs_f64())]
    NotStopped { what: String, grace: Duration },
    /// Something the bench waits for that did not happen in time.
    #[error("{what} after {:.0} s", after.as_secs_f64())]
    Timeout { what: String, after: Duration },
    /// SIGINT or SIGTERM to the bench.
    #[error("stopped by a signal")]
    Stopped,
    /// The input could not be opened or read.
    #[error(transparent)]
    Input(#[from] crate::ingest::InputError),
    #[error(transparent)]
    Broker(#[from] crate::kafka::BrokerError),
    /// The bench's own Kafka clients (the alert watcher, the plain consumer).
    #[error("{what}: {source}")]
    Kafka {
        what: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The bench's own async runtime (the topics' creation).
    #[error("a tokio runtime: {0}")]
    Runtime(#[source] io::Error),
    /// A child run's HTTP endpoint that could not be reached.
    #[error("{what}: {source}")]
    Connect {
        what: String,
        #[source]
        source: io::Error,
    },
    /// A child run's HTTP endpoint whose answer was not what the bench reads.
    #[error("{path}: {reason}")]
    Answer { path: String, reason: String },
    #[error("{path}: {source}")]
    AnswerJson {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// wrk could not be run.
    #[error("{}: {}. {WRK_HINT}", path.display(), not_found_or(source))]
    Wrk {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// wrk's report lacks a figure.
    #[error("wrk's output has no {missing}: {}", output.trim())]
    WrkReport { missing: String, output: String },
    /// `--python` cannot import bytewax.
    #[error("--python {}: cannot import bytewax with it; {INSTALL_HINT}", python.display())]
    NoBytewax { python: PathBuf },
    /// The Bytewax peer's line of figures is missing or incomplete.
    #[error("{what}: {reason}")]
    PeerReport { what: String, reason: String },
    #[error("{what}: {source} in its line {line:?}")]
    PeerJson {
        what: String,
        line: String,
        #[source]
        source: serde_json::Error,
    },
}

fn not_found_or(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound {
        "not found".to_string()
    } else {
        e.to_string()
    }
}

impl BenchError {
    /// For `map_err`: an I/O error on `path`.
    pub(crate) fn file(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> BenchError {
        let path = path.into();
        move |source| BenchError::File { path, source }
    }

    /// For `map_err`: a child (`what`) that could not be started.
    pub(crate) fn spawn(what: impl ToString) -> impl FnOnce(io::Error) -> BenchError {
        move |source| BenchError::Spawn {
            what: what.to_string(),
            source,
        }
    }

    /// For `map_err`: a child (`what`) that could not be waited for.
    pub(crate) fn wait(what: impl ToString) -> impl FnOnce(io::Error) -> BenchError {
        move |source| BenchError::Wait {
            what: what.to_string(),
            source,
        }
    }

    /// For `map_err`: a Kafka client of the bench's failing at `what`.
    pub(crate) fn kafka(
        what: impl ToString,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> BenchError {
        move |source| BenchError::Kafka {
            what: what.to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn messages_name_what_failed_and_keep_the_source() {
        let e = BenchError::file("/x/summary.json")(io::Error::other("gone"));
        assert_eq!(e.to_string(), "/x/summary.json: gone");
        assert_eq!(e.source().unwrap().to_string(), "gone");
        let missing = BenchError::Wrk {
            path: "/no/wrk".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert!(missing.to_string().starts_with("/no/wrk: not found. "));
        assert!(missing.to_string().contains("apt-get install -y wrk"));
        assert_eq!(BenchError::Stopped.to_string(), "stopped by a signal");
    }

    #[test]
    fn a_failed_child_shows_its_output_only_when_it_said_something() {
        use std::os::unix::process::ExitStatusExt;
        let status = ExitStatus::from_raw(256);
        let quiet = BenchError::Failed {
            what: "pitwall run -w 1".into(),
            status,
            output: String::new(),
        };
        assert_eq!(
            quiet.to_string(),
            "pitwall run -w 1 failed (exit status: 1)"
        );
        let said = BenchError::Failed {
            what: "the engine".into(),
            status,
            output: "error: no broker".into(),
        };
        assert_eq!(
            said.to_string(),
            "the engine failed (exit status: 1): error: no broker"
        );
    }
}
