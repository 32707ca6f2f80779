//! The `--out` folder: `alerts.jsonl` (one line per ended episode), `windows.jsonl`,
//! `dead_letters.jsonl`, the race views' `laps.jsonl`, `pit_stops.jsonl` and
//! `predictions.jsonl` (their rows as they stand when the run ends, by driver and lap),
//! `predictions_first.jsonl` and `laps_first.jsonl` (each prediction and lap row as first
//! emitted, before any correction), and `summary.json`.

use crate::format::messages::AlertMessage;
use crate::format::race::{LapMessage, PitStopMessage, PredictionMessage};
use crate::report::Summary;
use pitwall_dataflows::alert::Alert;
use pitwall_dataflows::race::{LapRow, Prediction, RaceBook};
use pitwall_dataflows::window::WindowStats;
use pitwall_dataflows::DeadLetter;
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct OutFiles {
    dir: PathBuf,
    alerts: BufWriter<File>,
    windows: BufWriter<File>,
    dead_letters: BufWriter<File>,
}

impl OutFiles {
    pub fn create(dir: &Path) -> std::io::Result<OutFiles> {
        std::fs::create_dir_all(dir)?;
        let open =
            |name: &str| File::create(dir.join(name)).map(|f| BufWriter::with_capacity(1 << 20, f));
        Ok(OutFiles {
            dir: dir.to_path_buf(),
            alerts: open("alerts.jsonl")?,
            windows: open("windows.jsonl")?,
            dead_letters: open("dead_letters.jsonl")?,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn alert(&mut self, alert: &Alert) -> std::io::Result<()> {
        write_line(&mut self.alerts, &AlertMessage::new(alert))
    }

    pub fn window(&mut self, window: &WindowStats) -> std::io::Result<()> {
        write_line(&mut self.windows, window)
    }

    pub fn dead_letter(&mut self, dead: &DeadLetter) -> std::io::Result<()> {
        write_line(&mut self.dead_letters, dead)
    }

    /// Writes the race views' rows as they stand, each file sorted by driver, then lap, and
    /// `first` and `first_laps`, each prediction and lap row as first emitted.
    pub fn race<'a>(
        &self,
        book: &RaceBook,
        first: impl Iterator<Item = &'a Prediction>,
        first_laps: impl Iterator<Item = &'a LapRow>,
    ) -> std::io::Result<()> {
        self.rows("laps.jsonl", book.laps().map(LapMessage::new))?;
        self.rows("pit_stops.jsonl", book.pit_stops().map(PitStopMessage::new))?;
        self.rows(
            "predictions.jsonl",
            book.predictions().map(PredictionMessage::new),
        )?;
        self.rows("predictions_first.jsonl", first.map(PredictionMessage::new))?;
        self.rows("laps_first.jsonl", first_laps.map(LapMessage::new))
    }

    /// Writes `rows` to the file `name` of the folder, a line each.
    fn rows<T: Serialize>(&self, name: &str, rows: impl Iterator<Item = T>) -> std::io::Result<()> {
        let mut file = BufWriter::new(File::create(self.dir.join(name))?);
        for row in rows {
            write_line(&mut file, &row)?;
        }
        file.flush()
    }

    /// Flushes the jsonl files and writes `summary.json` beside them.
    pub fn finish(mut self, summary: &Summary) -> std::io::Result<()> {
        self.alerts.flush()?;
        self.windows.flush()?;
        self.dead_letters.flush()?;
        write_summary(&self.dir.join("summary.json"), summary)
    }
}

pub fn write_summary(path: &Path, summary: &Summary) -> std::io::Result<()> {
    let mut file = BufWriter::new(File::create(path)?);
    serde_json::to_writer_pretty(&mut file, summary)?;
    file.write_all(b"\n")?;
    file.flush()
}

fn write_line<T: Serialize>(w: &mut BufWriter<File>, value: &T) -> std::io::Result<()> {
    serde_json::to_writer(&mut *w, value)?;
    w.write_all(b"\n")
}
