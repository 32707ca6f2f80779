//! A merged FastF1 file parsed by every worker at once.
//!
//! Gzip is sequential, so one thread per process (the *dealer*) unpacks the file and cuts it
//! into rows: a `memchr` for the newline and a look at the `Driver` field, no number parsed.
//! It places each new driver on a worker (the k-th driver seen on worker k mod workers, so 20
//! drivers split 10/10) in a shared [`Placement`], and hands each row to its driver's worker
//! in chunks. The workers parse their own rows ([`ChunkSource`]), so records start on the
//! worker that analyses them and cross no exchange. Every process deals the whole file the
//! same way and keeps only its own workers' rows: no process ships rows to another.
//!
//! The rows and dead letters are exactly the sequential [`super::CsvFile`]'s: rows with a
//! quote or a bare carriage return are cut by `csv_core` itself; rows whose driver cannot be
//! read go to worker 0 (as the dead letters they will be); with `--drivers`, rows of drivers
//! left out are parsed by the dealer, which counts them (or hands a bad one to worker 0 to be
//! a dead letter), so every process counts them the same.

use super::reader::{dead_letter, open_maybe_gzip, CsvFile};
use super::row::{parse_row, trim, Columns, Fields};
use super::rows::{header, row_fields, Next, Rows};
use crate::format::timefmt::parse_utc_ms;
use crate::ingest::{InputError, RecordSource, SourceStats};
use csv::ByteRecord;
use pitwall_dataflows::placement::Placement;
use pitwall_dataflows::record::DriverMap;
use pitwall_dataflows::{DeadLetter, DriverId, Ingest};
use std::collections::HashSet;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, OnceLock};
use timely::scheduling::SyncActivator;

/// Unpacked bytes gathered for the workers of a process before they are handed over.
const CHUNK_BYTES: usize = 128 * 1024;
/// Chunks waiting per worker: the dealer blocks past this, so memory stays bounded when the
/// workers are slower (or paced).
const QUEUE: usize = 4;

/// Rows of one worker, back to back, as they were in the file.
#[derive(Default)]
pub struct Chunk {
    text: Vec<u8>,
    rows: Vec<RowAt>,
    /// Event time the file had reached when this chunk was handed over.
    watermark_ms: Option<i64>,
}

#[derive(Clone, Copy)]
struct RowAt {
    /// End of the row in `text` (its start is the previous row's end).
    end: u32,
    /// The line the row starts on (the header is line 1).
    line: u64,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// No quote in it: cut at its commas.
    Plain,
    /// Cut by csv (quotes, or a carriage return inside): parse with csv again.
    Quoted,
    /// The input could not be read past here; the text is the error.
    Failed,
}

/// One merged file, to be dealt to the workers of this process.
pub struct MergedFile {
    path: PathBuf,
    origin: String,
    /// Read from the header once, when the file was opened.
    cols: Columns,
    filter: Option<Arc<HashSet<DriverId>>>,
    stats: Arc<SourceStats>,
    placement: Placement,
    queues: OnceLock<Mutex<Vec<Option<Worker>>>>,
}

/// What a worker of this process takes: its chunks and where to leave its activator.
struct Worker {
    chunks: Receiver<Chunk>,
    waker: Arc<OnceLock<SyncActivator>>,
}

impl MergedFile {
    /// Opens the file and checks its header, as [`CsvFile::open`] does (the same errors and
    /// warnings); its columns serve the dealer and every worker.
    pub fn new(
        path: &Path,
        filter: Option<Arc<HashSet<DriverId>>>,
        stats: Arc<SourceStats>,
    ) -> Result<MergedFile, InputError> {
        let cols = CsvFile::open(path, None, filter.clone(), stats.clone())?
            .columns()
            .clone();
        Ok(MergedFile {
            path: path.to_path_buf(),
            origin: path.display().to_string(),
            cols,
            filter,
            stats,
            placement: Placement::table(),
            queues: OnceLock::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the drivers are analysed: the dealer fills it as it meets them.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// The source of worker `worker` (of `peers`), whose process runs the workers `local`.
    /// The first call of a process starts its dealer.
    pub fn open(
        &self,
        worker: usize,
        peers: usize,
        local: Range<usize>,
    ) -> Result<ChunkSource, InputError> {
        let queues = match self.queues.get() {
            Some(q) => q,
            None => {
                let started = self.start(peers, local.clone())?;
                // Only the first caller's dealer runs; a racing second one finds no receivers.
                let _ = self.queues.set(Mutex::new(started));
                self.queues
                    .get()
                    .ok_or_else(|| InputError::new("merged file: no queues"))?
            }
        };
        let mine = queues
            .lock()
            .map_err(|_| InputError::new("merged file: queues poisoned"))?
            .get_mut(worker - local.start)
            .and_then(Option::take)
            .ok_or_else(|| InputError::new(format!("merged file: no queue for worker {worker}")))?;
        Ok(self.source(mine))
    }

    /// The source reading a worker's end of its queue.
    fn source(&self, mine: Worker) -> ChunkSource {
        ChunkSource {
            origin: self.origin.clone(),
            cols: self.cols.clone(),
            filter: self.filter.clone(),
            stats: self.stats.clone(),
            chunks: mine.chunks,
            waker: mine.waker,
            chunk: Chunk::default(),
            next_row: 0,
            start: 0,
            record: ByteRecord::new(),
            watermark_ms: None,
            done: false,
        }
    }

    fn start(&self, peers: usize, local: Range<usize>) -> Result<Vec<Option<Worker>>, InputError> {
        let input = open_maybe_gzip(&self.path)?;
        let (dealer, queues) = self.dealer(peers, local);
        let cols = self.cols.clone();
        std::thread::Builder::new()
            .name("pitwall-reader".into())
            .spawn(move || dealer.run(input, &cols))
            .map_err(|e| InputError::new(format!("cannot start the file reader: {e}")))?;
        Ok(queues)
    }

    /// The dealer of this process's workers `local` and each worker's end of its queue.
    fn dealer(&self, peers: usize, local: Range<usize>) -> (Dealer, Vec<Option<Worker>>) {
        let mut queues = Vec::new();
        let mut outs = Vec::new();
        for _ in local.clone() {
            let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
            let waker = Arc::new(OnceLock::new());
            outs.push(Out {
                chunk: Chunk::default(),
                tx: Some(tx),
                waker: waker.clone(),
            });
            queues.push(Some(Worker { chunks: rx, waker }));
        }
        let dealer = Dealer {
            origin: self.origin.clone(),
            filter: self.filter.clone(),
            stats: self.stats.clone(),
            placement: self.placement.clone(),
            placed: DriverMap::default(),
            peers: peers.max(1),
            local,
            outs,
            buffered: 0,
            watermark_ms: None,
            last_date: [0; 40],
            last_date_len: 0,
            record: ByteRecord::new(),
        };
        (dealer, queues)
    }
}

struct Out {
    chunk: Chunk,
    tx: Option<SyncSender<Chunk>>,
    waker: Arc<OnceLock<SyncActivator>>,
}

impl Out {
    /// Wakes the worker (once it has left its activator) to look at its queue.
    fn wake(&self) {
        if let Some(waker) = self.waker.get() {
            let _ = waker.activate();
        }
    }
}

/// The thread that unpacks the file and deals its rows.
struct Dealer {
    origin: String,
    filter: Option<Arc<HashSet<DriverId>>>,
    stats: Arc<SourceStats>,
    placement: Placement,
    placed: DriverMap<usize>,
    peers: usize,
    local: Range<usize>,
    outs: Vec<Out>,
    buffered: usize,
    watermark_ms: Option<i64>,
    /// The Date field of the last row dealt.
    last_date: [u8; 40],
    last_date_len: usize,
    record: ByteRecord,
}

impl Dealer {
    fn run(mut self, mut input: Box<dyn Read + Send>, cols: &Columns) {
        let mut rows = Rows::new(&mut input);
        if header(&mut rows, &self.origin).is_err() {
            // Read when the file was opened; the workers end with nothing.
            return;
        }
        let mut last_line = 1;
        loop {
            match rows.next() {
                Next::Row(row) => {
                    last_line = row.line;
                    self.stats.rows.fetch_add(1, Ordering::Relaxed);
                    let bytes = &rows.buf[row.range.clone()];
                    if !self.deal(bytes, row.line, row.quoted, cols) {
                        return; // every worker has gone (stopped)
                    }
                }
                Next::Blank => {}
                Next::End => break,
                Next::Failed(e) => {
                    // As the sequential reader: a dead letter just past the last row.
                    self.stats.rows.fetch_add(1, Ordering::Relaxed);
                    let error = e.to_string();
                    self.hand_to(0, error.as_bytes(), last_line + 1, Kind::Failed);
                    break;
                }
            }
        }
        self.flush_all();
    }

    /// Hands every worker its chunk at once, so that all have the file up to the same row,
    /// with the event time it has reached.
    fn flush_all(&mut self) {
        if let Some(ms) = parse_utc_ms(trim(&self.last_date[..self.last_date_len])) {
            self.watermark_ms = Some(self.watermark_ms.map_or(ms, |w| w.max(ms)));
        }
        for i in 0..self.outs.len() {
            self.flush(i);
        }
        self.buffered = 0;
    }

    /// Hands one row to its driver's worker; `false` once no worker is left to take it.
    fn deal(&mut self, bytes: &[u8], line: u64, quoted: bool, cols: &Columns) -> bool {
        let fields = &row_fields(bytes, quoted, cols.width, &mut self.record);
        let driver = cols
            .driver
            .and_then(|i| fields.get(i))
            .and_then(|raw| DriverId::from_bytes(trim(raw)));
        // The watermark is read from the last row before each hand-over, not from every row.
        if let Some(raw) = fields.get(cols.date) {
            let n = raw.len().min(self.last_date.len());
            self.last_date[..n].copy_from_slice(&raw[..n]);
            self.last_date_len = n;
        }
        let worker = match driver {
            Some(d) if self.filter.as_ref().is_some_and(|f| !f.contains(&d)) => {
                // Left out: counted here, unless it is a dead letter (worker 0 says so).
                if parse_row(fields, cols, None).is_ok() {
                    self.stats.filtered.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                0
            }
            Some(d) => match self.placed.get(&d) {
                Some(&w) => w,
                None => {
                    let w = self.placed.len() % self.peers;
                    self.placement.place(d, w);
                    self.placed.insert(d, w);
                    w
                }
            },
            None => 0,
        };
        let kind = if quoted { Kind::Quoted } else { Kind::Plain };
        self.hand_to(worker, bytes, line, kind)
    }

    fn hand_to(&mut self, worker: usize, bytes: &[u8], line: u64, kind: Kind) -> bool {
        if self.local.contains(&worker) {
            let i = worker - self.local.start;
            let chunk = &mut self.outs[i].chunk;
            chunk.text.extend_from_slice(bytes);
            chunk.rows.push(RowAt {
                end: chunk.text.len() as u32,
                line,
                kind,
            });
            self.buffered += bytes.len();
        }
        if self.buffered >= CHUNK_BYTES * self.outs.len() {
            self.flush_all();
        }
        self.outs.iter().any(|o| o.tx.is_some())
    }

    fn flush(&mut self, i: usize) {
        let out = &mut self.outs[i];
        let Some(tx) = &out.tx else { return };
        let mut chunk = std::mem::take(&mut out.chunk);
        chunk.watermark_ms = self.watermark_ms;
        if tx.send(chunk).is_err() {
            out.tx = None; // that worker has stopped
            return;
        }
        out.wake();
    }
}

/// However the dealer ends (end of file, an unreadable header, every worker gone, a panic),
/// its queues close and then each worker is woken to find them closed. A worker that had
/// emptied its queue just before the close waits to be woken: without this last wake it would
/// wait for ever.
impl Drop for Dealer {
    fn drop(&mut self) {
        for out in &mut self.outs {
            out.tx = None;
            out.wake();
        }
    }
}

/// One worker's rows, parsed as they are given to the dataflow.
pub struct ChunkSource {
    origin: String,
    cols: Columns,
    filter: Option<Arc<HashSet<DriverId>>>,
    stats: Arc<SourceStats>,
    chunks: Receiver<Chunk>,
    waker: Arc<OnceLock<SyncActivator>>,
    chunk: Chunk,
    next_row: usize,
    start: usize,
    record: ByteRecord,
    watermark_ms: Option<i64>,
    done: bool,
}

impl ChunkSource {
    fn parse(&mut self, row: RowAt) -> Option<Ingest> {
        let bytes = &self.chunk.text[self.start..row.end as usize];
        self.start = row.end as usize;
        if row.kind == Kind::Failed {
            return Some(self.dead(row.line, None, "input truncated or unreadable", bytes));
        }
        let fields = &row_fields(
            bytes,
            row.kind == Kind::Quoted,
            self.cols.width,
            &mut self.record,
        );
        match parse_row(fields, &self.cols, None) {
            Ok(parsed) => {
                if self
                    .filter
                    .as_ref()
                    .is_some_and(|f| !f.contains(&parsed.sample.driver))
                {
                    self.stats.filtered.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                Some(Ingest::Record(parsed.sample))
            }
            Err(e) => Some(dead_letter(&self.origin, row.line, fields, e)),
        }
    }

    fn dead(&self, line: u64, field: Option<&str>, reason: &str, detail: &[u8]) -> Ingest {
        Ingest::Dead(Box::new(DeadLetter {
            origin: self.origin.clone(),
            partition: None,
            position: line,
            field: field.map(str::to_string),
            reason: reason.to_string(),
            detail: String::from_utf8_lossy(detail).into_owned(),
            raw: Vec::new(),
        }))
    }
}

impl RecordSource for ChunkSource {
    fn fill(&mut self, out: &mut Vec<Ingest>, max: usize) -> bool {
        let mut given = 0;
        while given < max {
            if let Some(&row) = self.chunk.rows.get(self.next_row) {
                self.next_row += 1;
                if let Some(item) = self.parse(row) {
                    out.push(item);
                    given += 1;
                }
                continue;
            }
            // This chunk is done: its watermark holds now.
            self.watermark_ms = self.chunk.watermark_ms.or(self.watermark_ms);
            if self.done {
                return false;
            }
            match self.chunks.try_recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.next_row = 0;
                    self.start = 0;
                }
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => {
                    self.done = true;
                    return false;
                }
            }
        }
        true
    }

    fn wake_with(&mut self, activator: SyncActivator) -> bool {
        let _ = self.waker.set(activator);
        true
    }

    fn watermark(&self) -> Option<i64> {
        self.watermark_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timely::scheduling::activate::Activations;

    fn activated(acts: &mut Activations, path: &[usize]) -> bool {
        acts.advance();
        let mut seen = false;
        acts.for_extensions(&path[..path.len() - 1], |last| {
            seen |= last == path[path.len() - 1]
        });
        seen
    }

    /// The race a run lost at random (about one `-w 2` run of a small file in twenty, on busy
    /// cores): the worker takes the last chunk and finds its queue empty but still open; then
    /// the dealer ends. Ending must wake the worker, which then finds the queue closed;
    /// otherwise it waits to be woken for ever and the run never ends.
    #[test]
    fn a_worker_that_emptied_its_queue_is_woken_when_the_dealer_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race.csv");
        std::fs::write(&path, "Date,Driver,Speed,RPM,nGear,Throttle,Brake,DRS\n").unwrap();
        let file = MergedFile::new(&path, None, Arc::new(SourceStats::default())).unwrap();
        let (mut dealer, mut queues) = file.dealer(1, 0..1);
        let mut acts = Activations::new(None);
        let path_of_worker = [3, 1];
        let mut source = file.source(queues[0].take().unwrap());
        assert!(source.wake_with(SyncActivator::new(path_of_worker.to_vec(), acts.sync())));

        let row = b"2023-05-28 13:03:00.000,VER,250,11000,7,100,False,0";
        assert!(dealer.hand_to(0, row, 2, Kind::Plain));
        dealer.flush_all();
        assert!(
            activated(&mut acts, &path_of_worker),
            "a chunk wakes its worker"
        );

        let mut out = Vec::new();
        assert!(source.fill(&mut out, 100), "the queue is empty, not closed");
        assert_eq!(out.len(), 1);
        assert!(!activated(&mut acts, &path_of_worker));

        drop(dealer);
        assert!(
            activated(&mut acts, &path_of_worker),
            "the dealer's end wakes the worker"
        );
        assert!(!source.fill(&mut out, 100), "and it finds its queue closed");
        assert_eq!(out.len(), 1);
    }
}
