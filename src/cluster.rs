//! Timely's cluster flags (`-w -n -p`, and `--hostfile` for timely's `-h`, which is help in
//! pitwall), as a user of timely expects them.

use std::path::PathBuf;

/// Cluster flags that do not make a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("-p {process} must be below -n {processes}")]
    ProcessIndex { process: usize, processes: usize },
    #[error("timely configuration: {0}")]
    Timely(String),
    /// Timely could not start the workers or connect the processes.
    #[error("{0}")]
    Start(String),
    /// The heartbeats between the processes (UDP on each one's timely address) cannot start.
    #[error("cluster heartbeat: {0}")]
    Heartbeat(std::io::Error),
}

/// Timely's own cluster flags, as a user of timely expects them.
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    pub workers: usize,
    pub processes: usize,
    pub process: usize,
    pub hostfile: Option<PathBuf>,
}

impl Cluster {
    /// Builds timely's configuration through timely's own parser, so `-w -n -p` and the
    /// hostfile mean exactly what they mean to timely (a line per process, default
    /// localhost:2101+).
    pub fn timely_config(&self) -> Result<timely::Config, ClusterError> {
        let mut args = vec![
            "pitwall".to_string(),
            "-w".into(),
            self.workers.max(1).to_string(),
            "-n".into(),
            self.processes.max(1).to_string(),
            "-p".into(),
            self.process.to_string(),
        ];
        if let Some(h) = &self.hostfile {
            args.push("-h".into());
            args.push(h.display().to_string());
        }
        if self.process >= self.processes.max(1) {
            return Err(ClusterError::ProcessIndex {
                process: self.process,
                processes: self.processes.max(1),
            });
        }
        timely::Config::from_args(args.into_iter()).map_err(ClusterError::Timely)
    }
}
