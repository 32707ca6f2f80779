//! Peer liveness for a timely cluster: UDP heartbeats on each process's own timely address.
//!
//! Timely has no heartbeat. A killed peer is noticed at once (its TCP connection resets and
//! timely's receive thread panics with "timely communication error: …"), but a peer behind a
//! cut cable, or on a host that lost power, sends nothing: no reset ever arrives and every
//! process waits forever. So each process sends a small datagram to every peer every
//! [`INTERVAL`] and watches what it hears; a peer silent for longer than the timeout is lost.
//!
//! Why UDP on the same `host:port` as timely's TCP listener: it needs no new address in the
//! hostfile (UDP and TCP ports are separate spaces), it is never stuck behind timely's own
//! traffic in a TCP send buffer, and a datagram lost in a flap costs nothing. TCP keepalive or
//! `TCP_USER_TIMEOUT` would need timely's sockets, which timely does not hand out.
//!
//! A peer is watched only once it has been heard (timely itself waits for every peer to
//! connect at start), and a peer that says goodbye ([`Heartbeat::finish`]) is not watched any
//! more: processes finish at slightly different times.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often each process tells every peer it is alive.
pub const INTERVAL: Duration = Duration::from_millis(250);

const MAGIC: &[u8; 4] = b"PWHB";
const ALIVE: u8 = 1;
const BYE: u8 = 2;
const PACKET: usize = 13;

/// A peer that went silent.
#[derive(Clone, Debug, PartialEq)]
pub struct LostPeer {
    /// Its process index (`-p`).
    pub process: usize,
    /// Its address from the hostfile.
    pub address: String,
    /// How long it has been silent.
    pub silent: Duration,
}

#[derive(Clone, Copy, Debug, Default)]
struct PeerState {
    last_heard: Option<Instant>,
    said_bye: bool,
}

/// What this process has heard from its peers.
#[derive(Clone)]
pub struct Peers {
    me: usize,
    addresses: Arc<Vec<String>>,
    state: Arc<Mutex<Vec<PeerState>>>,
}

impl Peers {
    /// The peer heard from longest ago (among those heard at all and still running), if it has
    /// been silent for more than `at_least`.
    pub fn most_silent(&self, at_least: Duration) -> Option<LostPeer> {
        let now = Instant::now();
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .iter()
            .enumerate()
            .filter(|(i, s)| *i != self.me && !s.said_bye)
            .filter_map(|(i, s)| s.last_heard.map(|t| (i, now.duration_since(t))))
            .filter(|(_, silent)| *silent > at_least)
            .max_by_key(|(_, silent)| *silent)
            .map(|(process, silent)| LostPeer {
                process,
                address: self.addresses[process].clone(),
                silent,
            })
    }

    fn heard(&self, process: usize, kind: u8) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = state.get_mut(process) {
            s.last_heard = Some(Instant::now());
            s.said_bye |= kind == BYE;
        }
    }
}

/// The heartbeat of one process: a thread that sends and listens until [`Heartbeat::finish`].
pub struct Heartbeat {
    stop: Arc<AtomicBool>,
    socket: Arc<UdpSocket>,
    targets: Vec<(usize, SocketAddr)>,
    me: usize,
    processes: usize,
    peers: Peers,
    thread: Option<JoinHandle<()>>,
}

/// The first token of a timely address (timely binds every whitespace-separated one).
fn first_token(address: &str) -> &str {
    address.split_whitespace().next().unwrap_or(address)
}

fn resolve(address: &str, like: &SocketAddr) -> io::Result<SocketAddr> {
    let all: Vec<SocketAddr> = first_token(address).to_socket_addrs()?.collect();
    all.iter()
        .find(|a| a.is_ipv4() == like.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{address} resolves to nothing"),
            )
        })
}

fn packet(kind: u8, me: usize, processes: usize) -> [u8; PACKET] {
    let mut p = [0u8; PACKET];
    p[..4].copy_from_slice(MAGIC);
    p[4] = kind;
    p[5..9].copy_from_slice(&(me as u32).to_le_bytes());
    p[9..13].copy_from_slice(&(processes as u32).to_le_bytes());
    p
}

fn parse(p: &[u8], processes: usize) -> Option<(usize, u8)> {
    if p.len() != PACKET || &p[..4] != MAGIC {
        return None;
    }
    let kind = p[4];
    let from = u32::from_le_bytes(p[5..9].try_into().ok()?) as usize;
    let n = u32::from_le_bytes(p[9..13].try_into().ok()?) as usize;
    (n == processes && from < processes && (kind == ALIVE || kind == BYE)).then_some((from, kind))
}

impl Heartbeat {
    /// Starts the heartbeat of process `me` among `addresses` (timely's, one per process).
    /// `on_lost` is called (from the heartbeat thread) once, for the first peer silent for
    /// longer than `timeout`; the heartbeat stops watching after that.
    pub fn start(
        me: usize,
        addresses: &[String],
        timeout: Duration,
        on_lost: impl FnOnce(LostPeer) + Send + 'static,
    ) -> io::Result<Heartbeat> {
        let processes = addresses.len();
        let bind = first_token(&addresses[me]);
        let socket = UdpSocket::bind(bind)
            .map_err(|e| io::Error::new(e.kind(), format!("heartbeat on udp {bind}: {e}")))?;
        let local = socket.local_addr()?;
        let mut targets = Vec::with_capacity(processes.saturating_sub(1));
        for (i, address) in addresses.iter().enumerate() {
            if i != me {
                targets.push((i, resolve(address, &local)?));
            }
        }
        socket.set_read_timeout(Some(INTERVAL / 2))?;
        let socket = Arc::new(socket);
        let peers = Peers {
            me,
            addresses: Arc::new(addresses.to_vec()),
            state: Arc::new(Mutex::new(vec![PeerState::default(); processes])),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (socket, peers, stop, targets) =
                (socket.clone(), peers.clone(), stop.clone(), targets.clone());
            std::thread::Builder::new()
                .name("pitwall-heartbeat".into())
                .spawn(move || {
                    let alive = packet(ALIVE, me, processes);
                    let mut on_lost = Some(on_lost);
                    let mut next_send = Instant::now();
                    let mut buf = [0u8; 64];
                    while !stop.load(Ordering::Relaxed) {
                        if Instant::now() >= next_send {
                            for (_, to) in &targets {
                                // A send failing (no route while a cable is out) is a missed beat.
                                let _ = socket.send_to(&alive, to);
                            }
                            next_send += INTERVAL;
                        }
                        if let Ok((n, _)) = socket.recv_from(&mut buf) {
                            if let Some((from, kind)) = parse(&buf[..n], processes) {
                                peers.heard(from, kind);
                            }
                        }
                        if on_lost.is_some() {
                            if let Some(lost) = peers.most_silent(timeout) {
                                if let Some(f) = on_lost.take() {
                                    f(lost);
                                }
                            }
                        }
                    }
                })?
        };
        Ok(Heartbeat {
            stop,
            socket,
            targets,
            me,
            processes,
            peers,
            thread: Some(thread),
        })
    }

    /// What this process has heard, for a report written elsewhere (e.g. when timely's
    /// connection to a peer fails first).
    pub fn peers(&self) -> Peers {
        self.peers.clone()
    }

    /// Says goodbye to every peer (so they stop watching this process) and stops.
    pub fn finish(mut self) {
        self.stop_thread();
        let bye = packet(BYE, self.me, self.processes);
        for _ in 0..3 {
            for (_, to) in &self.targets {
                let _ = self.socket.send_to(&bye, to);
            }
        }
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// Set once this process has started to report a lost peer: other threads' panics that
/// follow (timely's queues poisoned by the failed connection) are then left unsaid.
static REPORTING: AtomicBool = AtomicBool::new(false);

/// Exit code of a process that lost a peer.
pub const EXIT_LOST_PEER: i32 = 3;

fn report_and_exit(what: &str, committed: &dyn Fn() -> String) -> ! {
    eprintln!(
        "error: {what}. A timely job cannot go on without one of its processes: restart \
         `pitwall run` on every host. {}",
        committed()
    );
    std::process::exit(EXIT_LOST_PEER)
}

fn describe(lost: &LostPeer) -> String {
    format!(
        "lost process {} at {} (no heartbeat for {:.1} s: killed, cut off, or its host is down)",
        lost.process,
        lost.address,
        lost.silent.as_secs_f64()
    )
}

/// Watches the peers of a multi-process timely configuration until the returned heartbeat is
/// finished: a peer that goes silent for `timeout`, or a connection to a peer that fails
/// (timely's "timely communication error" panic), ends this process with one line naming the
/// peer, what to do, and `committed()` (the Kafka offsets committed so far), and exit code
/// [`EXIT_LOST_PEER`]. A single-process configuration needs no watch (`None`).
pub fn watch(
    config: &timely::Config,
    timeout: Duration,
    committed: impl Fn() -> String + Send + Sync + 'static,
) -> io::Result<Option<Heartbeat>> {
    let timely::CommunicationConfig::Cluster {
        process, addresses, ..
    } = &config.communication
    else {
        return Ok(None);
    };
    let committed = Arc::new(committed);
    let on_lost = {
        let committed = committed.clone();
        move |lost: LostPeer| {
            if REPORTING.swap(true, Ordering::SeqCst) {
                return; // the panic hook is already reporting
            }
            report_and_exit(&describe(&lost), &*committed);
        }
    };
    let heartbeat = Heartbeat::start(*process, addresses, timeout, on_lost)?;
    let peers = heartbeat.peers();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if REPORTING.load(Ordering::SeqCst) {
            // Another thread is writing the report and will end the process: a panic that
            // follows from the lost connection (timely's queues poisoned, the main thread's
            // join) must neither print nor end the process first.
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        if message.starts_with("timely communication error:") {
            if REPORTING.swap(true, Ordering::SeqCst) {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            // The connection failed first (a killed peer resets it at once): give the heartbeat
            // a moment to say which peer stopped beating.
            let deadline = Instant::now() + INTERVAL * 8;
            let lost = loop {
                match peers.most_silent(INTERVAL * 4) {
                    Some(lost) => break Some(lost),
                    None if Instant::now() < deadline => std::thread::sleep(INTERVAL / 2),
                    None => break None,
                }
            };
            let what = match lost {
                Some(lost) => format!("{} ({})", describe(&lost), message),
                None => format!("lost the connection to a peer process ({message})"),
            };
            report_and_exit(&what, &*committed);
        }
        previous(info);
    }));
    Ok(Some(heartbeat))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn free_udp_addresses(n: usize) -> Vec<String> {
        // Reserve ports by binding, then release them for the heartbeats.
        let socks: Vec<UdpSocket> = (0..n)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        socks
            .iter()
            .map(|s| s.local_addr().unwrap().to_string())
            .collect()
    }

    #[test]
    fn packets_round_trip_and_foreign_datagrams_are_ignored() {
        assert_eq!(parse(&packet(ALIVE, 2, 3), 3), Some((2, ALIVE)));
        assert_eq!(parse(&packet(BYE, 0, 3), 3), Some((0, BYE)));
        assert_eq!(parse(&packet(ALIVE, 2, 3), 4), None, "another job's size");
        assert_eq!(parse(&packet(ALIVE, 5, 3), 3), None, "index out of range");
        assert_eq!(parse(b"hello", 3), None);
        let mut p = packet(ALIVE, 1, 3);
        p[4] = 9;
        assert_eq!(parse(&p, 3), None);
    }

    #[test]
    fn a_peer_that_goes_silent_is_reported_and_one_that_says_bye_is_not() {
        let addresses = free_udp_addresses(3);
        let timeout = Duration::from_millis(1500);
        let (tx, rx) = mpsc::channel();
        let watched = {
            let tx = tx.clone();
            Heartbeat::start(0, &addresses, timeout, move |l| tx.send(l).unwrap()).unwrap()
        };
        let leaves = Heartbeat::start(1, &addresses, timeout, |_| {}).unwrap();
        // Process 2 beats by hand, then falls silent as a killed or cut-off process would.
        let silent = UdpSocket::bind(&addresses[2]).unwrap();
        let to = resolve(&addresses[0], &silent.local_addr().unwrap()).unwrap();
        for _ in 0..8 {
            silent.send_to(&packet(ALIVE, 2, 3), to).unwrap();
            std::thread::sleep(INTERVAL);
        }
        leaves.finish();
        let lost = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the silent peer is reported");
        assert_eq!(lost.process, 2);
        assert_eq!(lost.address, addresses[2]);
        assert!(lost.silent > timeout);
        // Only once, and never for the peer that said goodbye.
        assert!(rx.recv_timeout(Duration::from_secs(2)).is_err());
        drop(watched);
    }

    #[test]
    fn a_flap_shorter_than_the_timeout_is_not_a_loss() {
        let addresses = free_udp_addresses(2);
        let (tx, rx) = mpsc::channel();
        let hb = Heartbeat::start(0, &addresses, Duration::from_secs(3), move |l| {
            tx.send(l).unwrap()
        })
        .unwrap();
        let peer = UdpSocket::bind(&addresses[1]).unwrap();
        let to = resolve(&addresses[0], &peer.local_addr().unwrap()).unwrap();
        for round in 0..3 {
            for _ in 0..4 {
                peer.send_to(&packet(ALIVE, 1, 2), to).unwrap();
                std::thread::sleep(INTERVAL);
            }
            if round < 2 {
                std::thread::sleep(Duration::from_millis(1200)); // the flap
            }
        }
        peer.send_to(&packet(BYE, 1, 2), to).unwrap();
        assert!(rx.recv_timeout(Duration::from_secs(4)).is_err());
        assert!(
            hb.peers().most_silent(Duration::ZERO).is_none(),
            "it said bye"
        );
        hb.finish();
    }
}
