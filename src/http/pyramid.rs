//! A min/max pyramid over a driver's point ring, so that a downsampled view reads about one
//! summary per bucket instead of every sample.
//!
//! Level `k` summarises aligned runs of [`SPANS`]`[k]` samples (by sequence number, the count
//! of samples the driver ever pushed): for each metric, the smallest and largest value code
//! and where in the run they are. A run is summarised when it is done (the finest from the
//! columns, a coarser one from the finished runs below it), so only finished runs are read;
//! the samples of the newest, unfinished 64 are read one by one. Nothing is updated when the
//! ring evicts, so a run whose first samples are gone is never read whole (only runs that
//! start at or after the query's first sample are). Each level is a ring of runs sized to
//! cover the point ring, so its memory is fixed: about 1.3 summaries of 72 bytes per 64
//! samples (1.5 bytes a sample).
//!
//! Ties are broken as the downsampling always did: the earliest of equal minima, the latest
//! of equal maxima.

use super::sample::{Code, Metric, NONE};

/// Samples per run at each level; the finest is also the granularity of bucket widths.
pub const SPANS: [u64; 5] = [FINEST as u64, 256, 1024, 4096, 16384];

/// Samples in a run of the finest level.
pub const FINEST: usize = 64;

/// Smallest and largest code of one metric over one run, with their offsets in the run;
/// `min == NONE` when the run has no finite value of that metric.
#[derive(Clone, Copy, Debug)]
struct Extremes {
    min: Code,
    max: Code,
    argmin: u16,
    argmax: u16,
}

const EMPTY: Extremes = Extremes {
    min: NONE,
    max: 0,
    argmin: 0,
    argmax: 0,
};

struct Level {
    span: u64,
    /// Run `j` lives in slot `j % runs.len()`; a run's extremes of metric `m` are its `m as
    /// usize`th.
    runs: Vec<[Extremes; Metric::COUNT]>,
}

impl Level {
    fn run(&self, j: u64) -> &[Extremes; Metric::COUNT] {
        &self.runs[(j % self.runs.len() as u64) as usize]
    }

    fn run_mut(&mut self, j: u64) -> &mut [Extremes; Metric::COUNT] {
        let slots = self.runs.len() as u64;
        &mut self.runs[(j % slots) as usize]
    }
}

impl Extremes {
    /// The first smallest and the last largest code of a finest run, `NONE` left out.
    fn of(codes: &[Code; FINEST]) -> Extremes {
        let min = codes.iter().copied().min().unwrap_or(NONE);
        if min == NONE {
            return EMPTY;
        }
        // NONE + 1 wraps to 0, below every value's code + 1.
        let max = codes.iter().map(|c| c.wrapping_add(1)).max().unwrap_or(0) - 1;
        Extremes {
            min,
            max,
            argmin: codes.iter().position(|&c| c == min).unwrap_or(0) as u16,
            argmax: codes.iter().rposition(|&c| c == max).unwrap_or(0) as u16,
        }
    }

    /// Takes in the extremes of later samples of the same run (`self` empty: them).
    fn merge(&mut self, later: Extremes) {
        if self.min == NONE {
            *self = later;
            return;
        }
        if later.min < self.min {
            (self.min, self.argmin) = (later.min, later.argmin);
        }
        if later.max >= self.max {
            (self.max, self.argmax) = (later.max, later.argmax);
        }
    }
}

pub struct Pyramid {
    levels: Vec<Level>,
}

/// The extremes found so far over a range of samples, by sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub min: Code,
    pub min_seq: u64,
    pub max: Code,
    pub max_seq: u64,
}

/// Folds samples and runs in sequence order into the extremes of a range.
#[derive(Default)]
pub struct Fold(Option<Found>);

impl Fold {
    /// Adds one sample; `NONE` (not a number) is skipped.
    pub fn sample(&mut self, code: Code, seq: u64) {
        if code == NONE {
            return;
        }
        self.merge(Found {
            min: code,
            min_seq: seq,
            max: code,
            max_seq: seq,
        });
    }

    /// Adds the extremes of a later range.
    pub fn merge(&mut self, later: Found) {
        match &mut self.0 {
            None => self.0 = Some(later),
            Some(f) => {
                if later.min < f.min {
                    (f.min, f.min_seq) = (later.min, later.min_seq);
                }
                if later.max >= f.max {
                    (f.max, f.max_seq) = (later.max, later.max_seq);
                }
            }
        }
    }

    pub fn found(&self) -> Option<Found> {
        self.0
    }
}

impl Pyramid {
    /// A pyramid for a ring of `capacity` samples: the levels whose runs fit in it, each with
    /// enough slots that a run is only overwritten once all its samples have left the ring.
    pub fn new(capacity: usize) -> Pyramid {
        let capacity = capacity as u64;
        let levels = SPANS
            .iter()
            .filter(|&&span| span <= capacity)
            .map(|&span| Level {
                span,
                runs: vec![[EMPTY; Metric::COUNT]; (capacity.div_ceil(span) + 1) as usize],
            })
            .collect();
        Pyramid { levels }
    }

    /// Notes that sample `last` finished a run of the finest level: summarises it from its
    /// codes (`fill(metric, buffer)` writes the run's 64 codes of a metric, oldest first),
    /// and, when that finishes a run of the level above, merges it in, and so on up. A
    /// sample costs nothing until its run is done; then a few passes over 64 codes a metric
    /// (which the compiler turns into vector instructions), about 25 instructions a sample.
    pub fn run_done(&mut self, last: u64, fill: impl Fn(Metric, &mut [Code; FINEST])) {
        let Some((finest, coarser)) = self.levels.split_first_mut() else {
            return;
        };
        let run = finest.run_mut(last / FINEST as u64);
        let mut codes = [NONE; FINEST];
        for (e, &metric) in run.iter_mut().zip(Metric::ALL) {
            fill(metric, &mut codes);
            *e = Extremes::of(&codes);
        }
        let (mut done, mut done_span) = (*run, FINEST as u64);
        for level in coarser {
            let span = level.span;
            let child_start = last + 1 - done_span;
            let offset = (child_start % span) as u16;
            let parent = level.run_mut(last / span);
            if offset == 0 {
                *parent = [EMPTY; Metric::COUNT];
            }
            for (p, c) in parent.iter_mut().zip(&done) {
                if c.min != NONE {
                    p.merge(Extremes {
                        min: c.min,
                        max: c.max,
                        argmin: offset + c.argmin,
                        argmax: offset + c.argmax,
                    });
                }
            }
            if (last + 1) % span != 0 {
                break;
            }
            (done, done_span) = (*parent, span);
        }
    }

    /// The extremes of `metric` over samples `lo..hi`, where `lo` is still in the ring and
    /// `hi` is at most the ring's next sequence number; `code_at` reads one sample's code for
    /// the ends of the range that no finished run covers (fewer than `2 × 64` reads),
    /// everything between costs one read per run.
    pub fn extremes(
        &self,
        metric: Metric,
        lo: u64,
        hi: u64,
        code_at: impl Fn(u64) -> Code,
        fold: &mut Fold,
    ) {
        let mut p = lo;
        'next: while p < hi {
            for level in self.levels.iter().rev() {
                // A run starting at p is whole in the ring; usable if it ends by hi (then it
                // is done, as hi <= end); the newest, unfinished run is read sample by sample.
                if p % level.span == 0 && p + level.span <= hi {
                    let e = level.run(p / level.span)[metric as usize];
                    if e.min != NONE {
                        fold.merge(Found {
                            min: e.min,
                            min_seq: p + e.argmin as u64,
                            max: e.max,
                            max_seq: p + e.argmax as u64,
                        });
                    }
                    p += level.span;
                    continue 'next;
                }
            }
            fold.sample(code_at(p), p);
            p += 1;
        }
    }
}
