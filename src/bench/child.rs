//! `pitwall run` as a child process: its command line as a small typed builder
//! ([`RunCommand`]), and the running child, stopped and reaped however its owner ends
//! ([`RunningChild`]).
//!
//! Every benchmark scenario starts its runs through these (each child has its own peak RSS and
//! a clean start), and so do the end-to-end tests in `tests/`, so a run's command line is
//! written in one place. Not a process supervisor: a child that outlives its owner's drop is a
//! bug of the owner's.
//!
//! ```no_run
//! use pitwall::bench::child::{write_local_hostfile, Capture, RunCommand};
//! # fn main() -> std::io::Result<()> {
//! let run = RunCommand::new("target/release/pitwall")
//!     .input("race.csv.gz")
//!     .workers(2)
//!     .quiet()
//!     .http_off()
//!     .summary("summary.json")
//!     .stdout(Capture::Null);
//! let status = run.status()?;
//! // The same run as two processes on this machine.
//! write_local_hostfile("hosts".as_ref(), 2)?;
//! let cluster = run.cluster(2, "hosts");
//! let mut second = cluster.clone().process(1).spawn()?; // killed if dropped early
//! let first = cluster.status()?;
//! second.wait()?;
//! # let _ = (status, first);
//! # Ok(())
//! # }
//! ```

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How often a wait looks at a child.
const POLL: Duration = Duration::from_millis(50);

/// Where a child's stdout or stderr goes.
#[derive(Clone, Debug)]
pub enum Capture {
    /// This process's own.
    Inherit,
    Null,
    /// A pipe, read through [`RunningChild::take_stdout`] / [`RunningChild::take_stderr`]
    /// (or [`RunCommand::output`]).
    Pipe,
    /// A file, created (or truncated) when the child starts.
    File(PathBuf),
}

impl Capture {
    fn stdio(&self) -> io::Result<Stdio> {
        Ok(match self {
            Capture::Inherit => Stdio::inherit(),
            Capture::Null => Stdio::null(),
            Capture::Pipe => Stdio::piped(),
            Capture::File(path) => Stdio::from(
                std::fs::File::create(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
            ),
        })
    }
}

/// A `pitwall run` command line, flag by flag; unset flags are left to the run's own defaults
/// (its configuration, `PITWALL_*` variables). Each method returns the builder, which clones:
/// the processes of one job differ only in [`RunCommand::process`].
#[derive(Clone, Debug)]
pub struct RunCommand {
    program: PathBuf,
    quiet: bool,
    input: Option<OsString>,
    workers: Option<usize>,
    /// Processes and hostfile (`-n`, `--hostfile`), and this one's index (`-p`, 0 unless set).
    cluster: Option<(usize, PathBuf)>,
    process: usize,
    speed: Option<f64>,
    brokers: Option<String>,
    until_idle: Option<f64>,
    /// `--http`: an address, or `off`.
    http: Option<String>,
    keep_serving: bool,
    out: Option<PathBuf>,
    summary: Option<PathBuf>,
    config: Option<PathBuf>,
    extra: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    current_dir: Option<PathBuf>,
    stdout: Option<Capture>,
    stderr: Option<Capture>,
}

impl RunCommand {
    /// `program run`, nothing else set; `program` is the `pitwall` binary (a bench passes
    /// `std::env::current_exe()`, a test `env!("CARGO_BIN_EXE_pitwall")`).
    pub fn new(program: impl Into<PathBuf>) -> RunCommand {
        RunCommand {
            program: program.into(),
            quiet: false,
            input: None,
            workers: None,
            cluster: None,
            process: 0,
            speed: None,
            brokers: None,
            until_idle: None,
            http: None,
            keep_serving: false,
            out: None,
            summary: None,
            config: None,
            extra: Vec::new(),
            env: Vec::new(),
            current_dir: None,
            stdout: None,
            stderr: None,
        }
    }

    /// `-q`: no live progress, no printed summary.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// `--input`: `sim`, a FastF1 file or folder.
    pub fn input(mut self, input: impl AsRef<OsStr>) -> Self {
        self.input = Some(input.as_ref().to_owned());
        self
    }

    /// `-w`: worker threads of this process.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// `-n processes --hostfile hostfile -p 0`: one process of a job; the others are
    /// [`RunCommand::process`] clones.
    pub fn cluster(mut self, processes: usize, hostfile: impl Into<PathBuf>) -> Self {
        self.cluster = Some((processes, hostfile.into()));
        self
    }

    /// `-p`: this process's index in the [`RunCommand::cluster`].
    pub fn process(mut self, index: usize) -> Self {
        self.process = index;
        self
    }

    /// `--speed`: times real time (0: as fast as it goes).
    pub fn speed(mut self, speed: f64) -> Self {
        self.speed = Some(speed);
        self
    }

    /// `--brokers`: read the telemetry topic, write the output topics.
    pub fn brokers(mut self, brokers: impl Into<String>) -> Self {
        self.brokers = Some(brokers.into());
        self
    }

    /// `--until-idle`: a Kafka run ends after this many seconds without a message.
    pub fn until_idle(mut self, seconds: f64) -> Self {
        self.until_idle = Some(seconds);
        self
    }

    /// `--http ADDRESS`: serve the live page and the query API there.
    pub fn http(mut self, address: impl fmt::Display) -> Self {
        self.http = Some(address.to_string());
        self
    }

    /// `--http off`.
    pub fn http_off(mut self) -> Self {
        self.http = Some("off".into());
        self
    }

    /// `--keep-serving`: the query API stays up after the input, until SIGINT/SIGTERM.
    pub fn keep_serving(mut self) -> Self {
        self.keep_serving = true;
        self
    }

    /// `--out`: the folder of output files and `summary.json`.
    pub fn out(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out = Some(dir.into());
        self
    }

    /// `--summary`: the summary alone (process 0 writes it).
    pub fn summary(mut self, path: impl Into<PathBuf>) -> Self {
        self.summary = Some(path.into());
        self
    }

    /// `--config`: a configuration file laid over the embedded one.
    pub fn config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// Any other flag (`--laps`, `--cars`, `--group`, `-X`, ...), after the typed ones.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.extra.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.extra
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// An environment variable of the child (`PITWALL_CONFIG`, `RUST_LOG`, ...).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// Where stdout goes (unset: inherited, or captured by [`RunCommand::output`]).
    pub fn stdout(mut self, to: Capture) -> Self {
        self.stdout = Some(to);
        self
    }

    /// Where stderr goes (unset: inherited, or captured by [`RunCommand::output`]).
    pub fn stderr(mut self, to: Capture) -> Self {
        self.stderr = Some(to);
        self
    }

    /// The arguments after the program: `run`, then the flags in a fixed order.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["run".into()];
        let mut flag = |name: &str, value: &dyn AsRef<OsStr>| {
            a.push(name.into());
            a.push(value.as_ref().to_owned());
        };
        if let Some(input) = &self.input {
            flag("--input", input);
        }
        if let Some(w) = self.workers {
            flag("-w", &w.to_string());
        }
        if let Some((processes, hostfile)) = &self.cluster {
            flag("-n", &processes.to_string());
            flag("-p", &self.process.to_string());
            flag("--hostfile", hostfile);
        }
        if let Some(speed) = self.speed {
            flag("--speed", &speed.to_string());
        }
        if let Some(brokers) = &self.brokers {
            flag("--brokers", brokers);
        }
        if let Some(idle) = self.until_idle {
            flag("--until-idle", &idle.to_string());
        }
        if let Some(http) = &self.http {
            flag("--http", http);
        }
        if let Some(out) = &self.out {
            flag("--out", out);
        }
        if let Some(summary) = &self.summary {
            flag("--summary", summary);
        }
        if let Some(config) = &self.config {
            flag("--config", config);
        }
        if self.quiet {
            a.push("-q".into());
        }
        if self.keep_serving {
            a.push("--keep-serving".into());
        }
        a.extend(self.extra.iter().cloned());
        a
    }

    /// The `std::process::Command` to run: stdin closed, stdout and stderr as set.
    pub fn command(&self) -> io::Result<Command> {
        let mut c = Command::new(&self.program);
        c.args(self.to_args()).stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(dir) = &self.current_dir {
            c.current_dir(dir);
        }
        if let Some(to) = &self.stdout {
            c.stdout(to.stdio()?);
        }
        if let Some(to) = &self.stderr {
            c.stderr(to.stdio()?);
        }
        Ok(c)
    }

    /// Starts the run; it is killed (and reaped) if the returned child is dropped first.
    pub fn spawn(&self) -> io::Result<RunningChild> {
        Ok(RunningChild::new(self.command()?.spawn()?))
    }

    /// Runs it to its end; stdout and stderr are captured unless set otherwise.
    pub fn output(&self) -> io::Result<Output> {
        self.command()?.output()
    }

    /// Runs it to its end: its exit status.
    pub fn status(&self) -> io::Result<ExitStatus> {
        self.command()?.status()
    }
}

/// The command line as a user would type it (for messages).
impl fmt::Display for RunCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self
            .program
            .file_name()
            .unwrap_or(self.program.as_os_str())
            .to_string_lossy();
        write!(f, "{name}")?;
        for a in self.to_args() {
            write!(f, " {}", a.to_string_lossy())?;
        }
        Ok(())
    }
}

/// How a [`RunningChild::terminate`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// On its own (it may have ended before the signal).
    Exited(ExitStatus),
    /// Still running after the grace: killed.
    Killed,
}

/// What dropping a [`RunningChild`] does.
#[derive(Clone, Copy, Debug)]
enum OnDrop {
    Kill,
    Terminate(Duration),
}

/// A child process that is stopped and reaped when dropped (a failed test or an early `?`
/// leaves no process behind): SIGKILL, or SIGTERM with a grace for one that must stop cleanly
/// ([`RunningChild::terminate_on_drop`]). Any child can be wrapped, not only `pitwall run`.
#[derive(Debug)]
pub struct RunningChild {
    /// `None` once handed back by [`RunningChild::into_child`].
    child: Option<Child>,
    on_drop: OnDrop,
}

impl RunningChild {
    /// Takes charge of `child`: killed when dropped.
    pub fn new(child: Child) -> RunningChild {
        RunningChild {
            child: Some(child),
            on_drop: OnDrop::Kill,
        }
    }

    /// Dropped, it gets SIGTERM and up to `grace` to end before SIGKILL.
    pub fn terminate_on_drop(mut self, grace: Duration) -> RunningChild {
        self.on_drop = OnDrop::Terminate(grace);
        self
    }

    /// The process itself (its pipes, its id).
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("a child not handed back")
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child().stdout.take()
    }

    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child().stderr.take()
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child().try_wait()
    }

    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child().wait()
    }

    /// Waits up to `limit` for the child to end on its own: its status, or `None` while it
    /// still runs (it is left running).
    pub fn wait_for(&mut self, limit: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
    }

    /// Sends `signal` (`TERM`, `INT`, `STOP`, ... as `kill -s` takes it) unless the child has
    /// already ended and been reaped (its pid may be another process's by now).
    pub fn signal(&mut self, signal: &str) -> io::Result<()> {
        if self.try_wait()?.is_some() {
            return Ok(());
        }
        let status = Command::new("kill")
            .args(["-s", signal, &self.id().to_string()])
            .stderr(Stdio::null())
            .status()?;
        if status.success() || self.try_wait()?.is_some() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "kill -s {signal} {}: {status}",
                self.id()
            )))
        }
    }

    /// SIGTERM, then up to `grace` for the child to end; SIGKILL past it.
    pub fn terminate(&mut self, grace: Duration) -> io::Result<Ended> {
        if let Some(status) = self.try_wait()? {
            return Ok(Ended::Exited(status));
        }
        self.signal("TERM")?;
        match self.wait_for(grace)? {
            Some(status) => Ok(Ended::Exited(status)),
            None => {
                self.kill()?;
                Ok(Ended::Killed)
            }
        }
    }

    /// SIGKILL (if still running) and reap: its status.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        let child = self.child();
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        child.kill()?;
        child.wait()
    }

    /// Waits for the end, reading whatever pipes were set.
    pub fn wait_with_output(self) -> io::Result<Output> {
        self.into_child().wait_with_output()
    }

    /// The bare child, no longer stopped on drop.
    pub fn into_child(mut self) -> Child {
        self.child.take().expect("a child not handed back")
    }
}

impl Drop for RunningChild {
    fn drop(&mut self) {
        if self.child.is_none() {
            return;
        }
        match self.on_drop {
            OnDrop::Kill => {
                let _ = self.kill();
            }
            OnDrop::Terminate(grace) => {
                let _ = self.terminate(grace);
            }
        }
    }
}

/// A port free on 127.0.0.1 right now (the OS's pick; nothing holds it for the caller).
pub fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Writes a hostfile for a job of `processes` processes on this machine, each on a free
/// loopback port.
pub fn write_local_hostfile(path: &Path, processes: usize) -> io::Result<()> {
    let lines = (0..processes)
        .map(|_| free_port().map(|p| format!("127.0.0.1:{p}\n")))
        .collect::<io::Result<String>>()?;
    std::fs::write(path, lines)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(run: &RunCommand) -> Vec<String> {
        run.to_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_command_line_says_what_was_set_and_nothing_else() {
        assert_eq!(args(&RunCommand::new("pitwall")), ["run"]);
        let run = RunCommand::new("/bin/pitwall")
            .input("sim")
            .workers(2)
            .speed(0.0)
            .http_off()
            .summary("/tmp/s.json")
            .quiet()
            .args(["--cars", "6"]);
        assert_eq!(
            args(&run),
            [
                "run",
                "--input",
                "sim",
                "-w",
                "2",
                "--speed",
                "0",
                "--http",
                "off",
                "--summary",
                "/tmp/s.json",
                "-q",
                "--cars",
                "6"
            ]
        );
        assert_eq!(
            run.to_string(),
            "pitwall run --input sim -w 2 --speed 0 --http off --summary /tmp/s.json -q --cars 6"
        );
    }

    #[test]
    fn the_processes_of_a_job_differ_only_in_their_index() {
        let job = RunCommand::new("pitwall")
            .input("race.csv")
            .cluster(3, "hosts")
            .brokers("b:9092")
            .until_idle(2.5)
            .http("127.0.0.1:5001")
            .keep_serving();
        let first = args(&job);
        let third = args(&job.clone().process(2));
        assert_eq!(
            first,
            [
                "run",
                "--input",
                "race.csv",
                "-n",
                "3",
                "-p",
                "0",
                "--hostfile",
                "hosts",
                "--brokers",
                "b:9092",
                "--until-idle",
                "2.5",
                "--http",
                "127.0.0.1:5001",
                "--keep-serving"
            ]
        );
        let differ: Vec<usize> = (0..first.len()).filter(|&i| first[i] != third[i]).collect();
        assert_eq!(differ, [6], "{third:?}");
        assert_eq!(third[6], "2");
    }

    #[test]
    fn a_dropped_child_is_stopped_and_reaped() {
        let mut sleeper = RunningChild::new(Command::new("sleep").arg("600").spawn().unwrap());
        let pid = sleeper.id();
        assert!(sleeper.wait_for(Duration::ZERO).unwrap().is_none());
        drop(sleeper);
        // Reaped, not a zombie: the pid has no process any more.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());

        let mut polite = RunningChild::new(Command::new("sleep").arg("600").spawn().unwrap())
            .terminate_on_drop(Duration::from_secs(60));
        match polite.terminate(Duration::from_secs(60)).unwrap() {
            Ended::Exited(status) => assert!(!status.success()),
            Ended::Killed => panic!("sleep ignored SIGTERM"),
        }
    }

    #[test]
    fn a_local_hostfile_has_one_loopback_address_per_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        write_local_hostfile(&path, 3).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let ports: Vec<u16> = text
            .lines()
            .map(|l| l.strip_prefix("127.0.0.1:").unwrap().parse().unwrap())
            .collect();
        assert_eq!(ports.len(), 3);
        assert!(ports.iter().all(|&p| p > 0));
    }
}
