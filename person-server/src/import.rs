//! `person-api import`: loads persons from a file into the configured store, keeping their ids and `personRef`s.
//!
//! Two input formats, one record per line: NDJSON of this API's Person JSON (what `person-api export` writes), and
//! Hackney's DynamoDB `Persons` table as the AWS "Export to S3" DynamoDB JSON format writes it ([`hackney`]);
//! gzip-compressed files are read as such. Each record is validated as a create validates it
//! ([`PersonService::prepare_import`]); a record that is not valid, not JSON, or refused by the store is written to
//! the report file (ids, outcomes and field errors only, never a name: the report may be shared) and the load goes
//! on. Probable duplicates are imported and reported, for staff to merge.
//!
//! **Speed.** A reader thread cuts the file into batches, worker threads parse and prepare them, and the store
//! writes one batch (one atomic write) while the next ones are being prepared; batches are written in file order.
//!
//! **Order.** Records without a `personRef` are set aside (in `<FILE>.import-deferred`) and imported after every
//! record that keeps its own, so the numbers the store assigns never take a number a later record keeps. A merged
//! person whose survivor is not stored yet (it comes later in the file, or was set aside) is set aside the same
//! way and imported after the rest; those still without a stored survivor once nothing more can be imported are
//! reported as `survivor-missing`.
//!
//! **Resuming.** After each committed batch, `<FILE>.import-state` records where the next batch starts (byte offset
//! and line), the counts so far and the length of the report, written to a temporary file and renamed. Run again,
//! the import continues from there (the report is cut back to that length, so nothing is reported twice). A crash
//! between a commit and its checkpoint loses nothing and writes nothing twice: the store answers "already stored"
//! for ids it holds. The checkpoint and the set-aside files are removed when the load completes; `--restart`
//! ignores them. (Resumed during its last round, merged persons imported by the interrupted run are counted as
//! already stored.)

pub mod hackney;

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use person_core::event::Actor;
use person_core::service::import::{ImportResult, PreparedImport, codes};
use person_core::{FieldError, Permissions, PersonId, PersonRef, PersonService, RequestContext, ValidationErrors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// Records per store write unless `--batch` says otherwise (see [`crate::store::default_import_batch`]).
pub const DEFAULT_BATCH: usize = 1000;

/// Records per store write into SQLite and PostgreSQL unless `--batch` says otherwise.
pub const SQL_DEFAULT_BATCH: usize = 50_000;

/// The largest `--batch` (a batch is held in memory, prepared, while the one before it is written).
pub const MAX_BATCH: usize = 100_000;

/// The largest `--batch` into DynamoDB.
pub const MAX_DYNAMODB_BATCH: usize = 10_000;

/// Without a progress bar (standard error is not a terminal, or `--no-progress`), a line every so many records.
pub const PROGRESS_LINE_EVERY: u64 = 100_000;

/// Bytes of the input hashed to recognise it when resuming (with its size and modification time).
const FINGERPRINT_BYTES: u64 = 64 * 1024;

/// The subject of the audit entries an import writes.
pub const IMPORT_ACTOR: &str = "person-api import";

/// The format of the input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum InputFormat {
    /// One Person JSON object per line (what `person-api export` writes).
    Ndjson,
    /// Hackney's `Persons` table in the DynamoDB JSON of AWS "Export to S3": one `{"Item": {…}}` per line.
    #[value(name = "hackney-dynamodb")]
    HackneyDynamodb,
}

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The input file (gzip-compressed or not).
    pub input: PathBuf,
    /// Its format.
    pub format: InputFormat,
    /// The report file; `<input>.report.ndjson` when `None`.
    pub report: Option<PathBuf>,
    /// Records per store write (at least 1).
    pub batch: usize,
    /// Show a progress bar (when standard error is a terminal).
    pub progress: bool,
    /// Ignore a checkpoint left by an interrupted run and start from the first line.
    pub restart: bool,
}

/// What an import did, over all its runs when it was resumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportCounts {
    /// Records read (blank lines are not records).
    pub read: u64,
    /// Persons stored (probable duplicates included).
    pub imported: u64,
    /// Persons stored although a live person with the same identity was recorded (reported).
    pub duplicates: u64,
    /// Records that are not valid persons (reported, not stored).
    pub invalid: u64,
    /// Records refused by the store: their `personRef` or a reference belongs to another person (reported).
    pub refused: u64,
    /// Records whose id was already stored (reported; what a resumed or repeated import finds).
    pub already_stored: u64,
    /// Merged persons whose survivor is neither stored nor in the input (reported, not stored).
    #[serde(default)]
    pub survivor_missing: u64,
}

impl ImportCounts {
    fn add(&mut self, result: &ImportResult) {
        self.read += 1;
        match result {
            ImportResult::Imported { duplicate_of, .. } => {
                self.imported += 1;
                if duplicate_of.is_some() {
                    self.duplicates += 1;
                }
            }
            ImportResult::AlreadyStored { .. } => self.already_stored += 1,
            ImportResult::SurvivorMissing { .. } => self.survivor_missing += 1,
            ImportResult::PersonRefTaken { .. } | ImportResult::ReferenceTaken { .. } => self.refused += 1,
            ImportResult::Invalid { .. } => self.invalid += 1,
        }
    }
}

/// The end of a completed import.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    /// Counts over every run of this import.
    pub counts: ImportCounts,
    /// Records read by this run.
    pub read_this_run: u64,
    /// How long this run took.
    pub elapsed: Duration,
    /// The line this run started after, when it resumed an interrupted one.
    pub resumed_after_line: Option<u64>,
    /// The report file.
    pub report: PathBuf,
}

impl ImportSummary {
    /// Records per second in this run.
    #[must_use]
    #[expect(clippy::cast_precision_loss, reason = "a rate for people to read")]
    pub fn rate(&self) -> f64 {
        self.read_this_run as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counts;
        write!(
            f,
            "{} read, {} imported ({} probable duplicates), {} invalid, {} refused, {} already stored, {} merged \
             into a person missing; {} records in {:.1} s ({:.0} persons/s); report: {}",
            c.read,
            c.imported,
            c.duplicates,
            c.invalid,
            c.refused,
            c.already_stored,
            c.survivor_missing,
            self.read_this_run,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.report.display()
        )
    }
}

/// Why an import stopped before the end of its input (the checkpoint then allows resuming it).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input cannot be opened or read.
    #[error("cannot read {}", .path.display())]
    Input {
        /// The input file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The report cannot be written.
    #[error("cannot write the report {}", .path.display())]
    Report {
        /// The report file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file of set-aside records cannot be written or read.
    #[error("cannot write or read the set-aside records {}", .path.display())]
    SetAside {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The checkpoint cannot be written.
    #[error("cannot write the checkpoint {}", .path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The store failed; the batch being written was not stored. Running the same command again resumes.
    #[error("the store failed (run the same command again to resume after the last stored batch)")]
    Store(#[source] person_core::StoreError),
    /// A thread preparing records stopped (a bug).
    #[error("a thread preparing records stopped unexpectedly")]
    Worker,
}

/// The context an import acts in: a system actor with every permission, named after the OS user running it.
#[must_use]
pub fn import_context() -> RequestContext {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).ok().filter(|u| !u.is_empty());
    let name = user.map_or_else(|| IMPORT_ACTOR.to_owned(), |user| format!("{IMPORT_ACTOR} ({user})"));
    let actor = Actor { subject: IMPORT_ACTOR.to_owned(), name, email: String::new() };
    let correlation_id = format!("import-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"));
    let mut ctx = RequestContext::new(actor, Permissions::all(), correlation_id);
    ctx.purpose = Some("bulk import".to_owned());
    ctx
}

/// `<file><suffix>`, next to `file`.
fn with_suffix(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(suffix);
    file.with_file_name(name)
}

/// The report file of an import of `input` when none is named: `<input>.report.ndjson`.
#[must_use]
pub fn default_report_path(input: &Path) -> PathBuf {
    with_suffix(input, ".report.ndjson")
}

/// The checkpoint file of an import of `input`: `<input>.import-state`.
#[must_use]
pub fn checkpoint_path(input: &Path) -> PathBuf {
    with_suffix(input, ".import-state")
}

/// The records of an import of `input` set aside until the rest is in: `<input>.import-deferred` (records without
/// a `personRef`, merged persons whose survivor was not stored yet), then `<input>.import-retry` (merged persons
/// still without one after that). They hold whole records, as the input does: keep them where the input is kept.
fn set_aside_paths(input: &Path) -> (PathBuf, PathBuf) {
    (with_suffix(input, ".import-deferred"), with_suffix(input, ".import-retry"))
}

/// Which input an import is reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Phase {
    /// The input file.
    #[default]
    Input,
    /// The records set aside while reading it.
    SetAside,
}

/// Where an interrupted import stopped, and what input it was reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Checkpoint {
    /// The input, canonical path.
    input: String,
    /// Its format.
    format: InputFormat,
    /// Its size in bytes.
    size: u64,
    /// Its modification time (nanoseconds since the Unix epoch, as text: JSON numbers lose precision).
    modified: String,
    /// SHA-256 of its first 64 KiB, hex.
    head_sha256: String,
    /// The report file.
    report: String,
    /// Which input `offset` and `line` are in.
    #[serde(default)]
    phase: Phase,
    /// Bytes of the (decompressed) input consumed by committed batches: where to continue.
    offset: u64,
    /// Lines consumed by committed batches.
    line: u64,
    /// Length of the report after the last committed batch.
    report_bytes: u64,
    /// Length of `<input>.import-deferred` after the last committed batch.
    #[serde(default)]
    deferred_bytes: u64,
    /// Length of `<input>.import-retry` after the last committed batch.
    #[serde(default)]
    retry_bytes: u64,
    /// Counts so far.
    counts: ImportCounts,
}

impl Checkpoint {
    /// True when `self` was written by an import of the same input into the same report.
    fn same_import(&self, other: &Self) -> bool {
        (&self.input, self.format, self.size, &self.modified, &self.head_sha256, &self.report)
            == (&other.input, other.format, other.size, &other.modified, &other.head_sha256, &other.report)
    }
}

/// A fresh checkpoint (nothing consumed) describing `input`.
fn describe_input(options: &ImportOptions, report: &Path) -> Result<Checkpoint, ImportError> {
    let input_error = |source| ImportError::Input { path: options.input.clone(), source };
    let canonical = std::fs::canonicalize(&options.input).map_err(input_error)?;
    let metadata = std::fs::metadata(&canonical).map_err(input_error)?;
    let modified = metadata
        .modified()
        .ok()
        .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
        .map_or_else(String::new, |d| d.as_nanos().to_string());
    let mut head = Vec::new();
    File::open(&canonical).and_then(|f| f.take(FINGERPRINT_BYTES).read_to_end(&mut head)).map_err(input_error)?;
    let report = std::path::absolute(report).unwrap_or_else(|_| report.to_path_buf());
    Ok(Checkpoint {
        input: canonical.display().to_string(),
        format: options.format,
        size: metadata.len(),
        modified,
        head_sha256: hex(&Sha256::digest(&head)),
        report: report.display().to_string(),
        phase: Phase::Input,
        offset: 0,
        line: 0,
        report_bytes: 0,
        deferred_bytes: 0,
        retry_bytes: 0,
        counts: ImportCounts::default(),
    })
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Writes `checkpoint` atomically: a temporary file, then a rename over the old one.
fn save_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<(), ImportError> {
    let error = |source| ImportError::Checkpoint { path: path.to_path_buf(), source };
    let temporary = with_suffix(path, ".tmp");
    let bytes = serde_json::to_vec_pretty(checkpoint).map_err(|e| error(io::Error::other(e)))?;
    std::fs::write(&temporary, bytes).map_err(error)?;
    std::fs::rename(&temporary, path).map_err(error)
}

/// The checkpoint of an earlier run of the same import, if one is usable.
fn load_checkpoint(path: &Path, fresh: &Checkpoint) -> Option<Checkpoint> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice::<Checkpoint>(&bytes) {
        Ok(saved) if saved.same_import(fresh) => Some(saved),
        Ok(_) => {
            eprintln!(
                "person-api import: {} belongs to another input, report or version of the file; starting from the \
                 first line (records already stored are reported as such, none is written twice)",
                path.display()
            );
            None
        }
        Err(_) => {
            eprintln!("person-api import: {} is not a checkpoint; starting from the first line", path.display());
            None
        }
    }
}

/// Lines read from the input, not yet prepared.
struct RawBatch {
    /// Line number (from 1) and bytes of each non-blank line.
    lines: Vec<(u64, Vec<u8>)>,
    /// Input bytes consumed after this batch.
    end_offset: u64,
    /// Lines consumed after this batch.
    end_line: u64,
}

/// A batch ready for the store: each record's line number, its bytes (to set it aside) and itself prepared.
struct PreparedBatch {
    entries: Vec<(u64, Vec<u8>, PreparedImport)>,
    end_offset: u64,
    end_line: u64,
}

/// Opens the input at `offset` bytes of its (decompressed) content; true when it is gzip-compressed.
fn open_input(path: &Path, offset: u64) -> io::Result<(Box<dyn BufRead + Send>, bool)> {
    let mut file = File::open(path)?;
    let mut magic = [0_u8; 2];
    let gzip = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    file.seek(SeekFrom::Start(0))?;
    if gzip {
        let decoder = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file));
        let mut reader = BufReader::with_capacity(1 << 20, decoder);
        // A compressed stream cannot seek: skip what was consumed.
        let skipped = io::copy(&mut (&mut reader).take(offset), &mut io::sink())?;
        if skipped != offset {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the input is shorter than the checkpoint says"));
        }
        Ok((Box::new(reader), true))
    } else {
        file.seek(SeekFrom::Start(offset))?;
        Ok((Box::new(BufReader::with_capacity(1 << 20, file)), false))
    }
}

/// A record line as set aside: its line number in the input, a tab, the record's bytes, a new line.
fn set_aside_line(line: u64, record: &[u8]) -> Vec<u8> {
    let record = record.trim_ascii_end();
    let mut text = Vec::with_capacity(record.len() + 24);
    text.extend_from_slice(line.to_string().as_bytes());
    text.push(b'\t');
    text.extend_from_slice(record);
    text.push(b'\n');
    text
}

/// The line number and the record of a set-aside line (`None`: not one, the file was damaged).
fn parse_set_aside_line(bytes: &[u8]) -> Option<(u64, Vec<u8>)> {
    let tab = bytes.iter().position(|b| *b == b'\t')?;
    let line = std::str::from_utf8(bytes.get(..tab)?).ok()?.parse().ok()?;
    Some((line, bytes.get(tab + 1..)?.to_vec()))
}

/// Cuts the input into batches of `size` records and hands them to the workers in turn (batch `n` to worker
/// `n % workers`), so that the writer can take them back in order. A set-aside file's lines carry the line number
/// of their record in the input (`set_aside`).
fn read_batches(
    mut input: Box<dyn BufRead + Send>,
    path: &Path,
    (mut offset, mut line): (u64, u64),
    (size, set_aside): (usize, bool),
    workers: &[std_mpsc::SyncSender<Result<RawBatch, ImportError>>],
) {
    let mut turn = 0;
    let mut lines = Vec::with_capacity(size);
    loop {
        let mut bytes = Vec::new();
        let read = match input.read_until(b'\n', &mut bytes) {
            Ok(read) => read,
            Err(source) => {
                let failed = Err(ImportError::Input { path: path.to_path_buf(), source });
                let _ = workers[turn % workers.len()].send(failed);
                return;
            }
        };
        if read > 0 {
            offset += read as u64;
            line += 1;
            if bytes.trim_ascii().is_empty() {
                // A blank line is not a record.
            } else if !set_aside {
                lines.push((line, bytes));
            } else if let Some(record) = parse_set_aside_line(&bytes) {
                lines.push(record);
            } else {
                let damaged = io::Error::new(io::ErrorKind::InvalidData, format!("line {line} is damaged"));
                let _ = workers[turn % workers.len()]
                    .send(Err(ImportError::SetAside { path: path.to_path_buf(), source: damaged }));
                return;
            }
        }
        let full = lines.len() >= size;
        if (full || read == 0) && !lines.is_empty() {
            let batch = RawBatch {
                lines: std::mem::replace(&mut lines, Vec::with_capacity(size)),
                end_offset: offset,
                end_line: line,
            };
            if workers[turn % workers.len()].send(Ok(batch)).is_err() {
                return;
            }
            turn += 1;
        }
        if read == 0 {
            return;
        }
    }
}

/// Parses and prepares one line.
fn prepare_line(service: &PersonService, format: InputFormat, bytes: &[u8]) -> PreparedImport {
    let object = match person_core::validate::parse_object(bytes) {
        Ok(object) => object,
        Err(e) => {
            let detail = match e {
                person_core::validate::BodyError::Malformed(detail) => detail,
                other => other.to_string(),
            };
            let mut errors = ValidationErrors::default();
            errors.push("", codes::MALFORMED, format!("not a JSON object: {detail}"));
            return PreparedImport::invalid(None, errors);
        }
    };
    match format {
        InputFormat::Ndjson => service.prepare_import(object),
        InputFormat::HackneyDynamodb => {
            let id = hackney::id_of(&object);
            match hackney::to_person_json(object) {
                Ok(record) => service.prepare_import(record),
                Err(errors) => PreparedImport::invalid(id, errors),
            }
        }
    }
}

/// A worker: prepares the batches it is given, in order.
fn prepare_batches(
    service: &PersonService,
    format: InputFormat,
    input: &std_mpsc::Receiver<Result<RawBatch, ImportError>>,
    output: &mpsc::Sender<Result<PreparedBatch, ImportError>>,
) {
    for raw in input {
        let prepared = raw.map(|raw| PreparedBatch {
            entries: raw
                .lines
                .into_iter()
                .map(|(line, bytes)| {
                    let prepared = prepare_line(service, format, &bytes);
                    (line, bytes, prepared)
                })
                .collect(),
            end_offset: raw.end_offset,
            end_line: raw.end_line,
        });
        if output.blocking_send(prepared).is_err() {
            return;
        }
    }
}

/// One line of the report.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportLine<'a> {
    line: u64,
    id: Option<PersonId>,
    outcome: &'static str,
    errors: &'a [FieldError],
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate_of: Option<PersonId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    person_ref: Option<PersonRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<PersonId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    merged_into: Option<PersonId>,
}

/// The report line for `result`, `None` for a person simply imported.
fn report_line(line: u64, result: &ImportResult) -> Option<ReportLine<'_>> {
    let base = |outcome| ReportLine {
        line,
        id: result.id(),
        outcome,
        errors: &[],
        duplicate_of: None,
        person_ref: None,
        owner: None,
        reference: None,
        merged_into: None,
    };
    match result {
        ImportResult::Imported { duplicate_of: None, .. } => None,
        ImportResult::Imported { duplicate_of: Some(of), person_ref, .. } => {
            Some(ReportLine { duplicate_of: Some(*of), person_ref: Some(*person_ref), ..base("duplicate") })
        }
        ImportResult::AlreadyStored { .. } => Some(base("already-stored")),
        ImportResult::SurvivorMissing { survivor, .. } => {
            Some(ReportLine { merged_into: Some(*survivor), ..base("survivor-missing") })
        }
        ImportResult::PersonRefTaken { person_ref, owner, .. } => {
            Some(ReportLine { person_ref: Some(*person_ref), owner: Some(*owner), ..base("person-ref-taken") })
        }
        ImportResult::ReferenceTaken { reference, owner, .. } => {
            Some(ReportLine { reference: Some(reference.to_string()), owner: Some(*owner), ..base("reference-taken") })
        }
        ImportResult::Invalid { errors, .. } => Some(ReportLine { errors: errors.errors(), ..base("invalid") }),
    }
}

/// A file written by appending (the report, the set-aside records), positioned where the next line goes.
struct Appender {
    path: PathBuf,
    out: io::BufWriter<File>,
    bytes: u64,
    /// The error naming this file.
    error: fn(PathBuf, io::Error) -> ImportError,
}

impl Appender {
    /// The report file.
    fn report(path: &Path, keep: Option<u64>) -> Result<Self, ImportError> {
        Self::open(path, keep, |path, source| ImportError::Report { path, source })
    }

    /// A file of set-aside records.
    fn set_aside(path: &Path, keep: Option<u64>) -> Result<Self, ImportError> {
        Self::open(path, keep, |path, source| ImportError::SetAside { path, source })
    }

    /// Creates the file, or (resuming) cuts it back to `keep` bytes: lines written after the last checkpoint are
    /// about records that will be read again.
    fn open(path: &Path, keep: Option<u64>, error: fn(PathBuf, io::Error) -> ImportError) -> Result<Self, ImportError> {
        let failed = |source| error(path.to_path_buf(), source);
        let file = match keep {
            None => File::create(path).map_err(failed)?,
            Some(keep) => {
                let mut file =
                    OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(failed)?;
                let length = file.metadata().map_err(failed)?.len();
                if length > keep {
                    file.set_len(keep).map_err(failed)?;
                }
                file.seek(SeekFrom::End(0)).map_err(failed)?;
                file
            }
        };
        let bytes = file.metadata().map_err(failed)?.len();
        Ok(Self { path: path.to_path_buf(), out: io::BufWriter::with_capacity(1 << 16, file), bytes, error })
    }

    fn write_json(&mut self, line: &ReportLine<'_>) -> Result<(), ImportError> {
        let mut text = serde_json::to_vec(line).map_err(|e| self.error(io::Error::other(e)))?;
        text.push(b'\n');
        self.write_bytes(&text)
    }

    fn write_bytes(&mut self, text: &[u8]) -> Result<(), ImportError> {
        self.out.write_all(text).map_err(|e| self.error(e))?;
        self.bytes += text.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ImportError> {
        self.out.flush().map_err(|e| self.error(e))
    }

    fn error(&self, source: io::Error) -> ImportError {
        (self.error)(self.path.clone(), source)
    }
}

/// Progress on standard error: a bar on a terminal, otherwise a line every [`PROGRESS_LINE_EVERY`] records.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    next_line_at: u64,
}

impl Progress {
    fn new(show_bar: bool, total_bytes: Option<u64>, position: u64, read: u64) -> Self {
        let bar = (show_bar && io::stderr().is_terminal()).then(|| {
            let bar = match total_bytes {
                Some(total) => indicatif::ProgressBar::new(total),
                None => indicatif::ProgressBar::new_spinner(),
            };
            let template = if total_bytes.is_some() {
                "{spinner} [{elapsed_precise}] [{wide_bar}] {percent}% (eta {eta}) {msg}"
            } else {
                "{spinner} [{elapsed_precise}] {binary_bytes} {msg}"
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_position(position);
            bar
        });
        Self { bar, next_line_at: (read / PROGRESS_LINE_EVERY + 1) * PROGRESS_LINE_EVERY }
    }

    fn update(&mut self, position: u64, counts: &ImportCounts, rate: f64) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(position);
                bar.set_message(format!("{} read, {} imported, {rate:.0}/s", counts.read, counts.imported));
            }
            None => {
                while counts.read >= self.next_line_at {
                    eprintln!(
                        "person-api import: {} records read, {} imported ({rate:.0} persons/s)",
                        counts.read, counts.imported
                    );
                    self.next_line_at += PROGRESS_LINE_EVERY;
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Reader and worker threads preparing one input's batches; the batches come back in input order.
struct Pipeline {
    from_workers: Vec<mpsc::Receiver<Result<PreparedBatch, ImportError>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pipeline {
    /// Starts reading `input` (at `position`: its byte offset and line) in batches of `batch` records.
    fn start(
        service: &PersonService,
        format: InputFormat,
        (input, path): (Box<dyn BufRead + Send>, &Path),
        position: (u64, u64),
        (batch, set_aside): (usize, bool),
    ) -> Self {
        let workers = std::thread::available_parallelism().map_or(2, usize::from).clamp(1, 4);
        let mut to_workers = Vec::with_capacity(workers);
        let mut from_workers = Vec::with_capacity(workers);
        let mut threads = Vec::with_capacity(workers + 1);
        for _ in 0..workers {
            let (raw_tx, raw_rx) = std_mpsc::sync_channel::<Result<RawBatch, ImportError>>(1);
            let (prepared_tx, prepared_rx) = mpsc::channel::<Result<PreparedBatch, ImportError>>(1);
            let service = service.clone();
            threads.push(std::thread::spawn(move || prepare_batches(&service, format, &raw_rx, &prepared_tx)));
            to_workers.push(raw_tx);
            from_workers.push(prepared_rx);
        }
        let path = path.to_path_buf();
        threads.push(std::thread::spawn(move || {
            read_batches(input, &path, position, (batch.max(1), set_aside), &to_workers);
        }));
        Self { from_workers, threads }
    }

    /// Waits for the threads once every batch was taken.
    fn join(self) -> Result<(), ImportError> {
        drop(self.from_workers);
        for thread in self.threads {
            thread.join().map_err(|_| ImportError::Worker)?;
        }
        Ok(())
    }
}

/// The state of an import run: its checkpoint and the files it appends to.
struct Run<'a> {
    service: &'a PersonService,
    ctx: &'a RequestContext,
    options: &'a ImportOptions,
    state_path: PathBuf,
    checkpoint: Checkpoint,
    report: Appender,
    deferred: Appender,
    retry: Appender,
    started: Instant,
    start_read: u64,
}

impl Run<'_> {
    /// Counts and reports one record's outcome.
    fn record(&mut self, line: u64, result: &ImportResult) -> Result<(), ImportError> {
        self.checkpoint.counts.add(result);
        match report_line(line, result) {
            Some(entry) => self.report.write_json(&entry),
            None => Ok(()),
        }
    }

    /// Flushes the files, then records that everything before `position` is done.
    fn commit(&mut self, (offset, line): (u64, u64)) -> Result<(), ImportError> {
        // The files hold the batch before the checkpoint says it was committed (a resumed run cuts them back to the
        // checkpoint's lengths, so no line is ever written twice).
        for file in [&mut self.report, &mut self.deferred, &mut self.retry] {
            file.flush()?;
        }
        self.checkpoint.offset = offset;
        self.checkpoint.line = line;
        self.checkpoint.report_bytes = self.report.bytes;
        self.checkpoint.deferred_bytes = self.deferred.bytes;
        self.checkpoint.retry_bytes = self.retry.bytes;
        save_checkpoint(&self.state_path, &self.checkpoint)
    }

    #[expect(clippy::cast_precision_loss, reason = "a rate for people to read")]
    fn rate(&self) -> f64 {
        (self.checkpoint.counts.read - self.start_read) as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    /// Imports every batch of `pipeline`. Reading the input, records without a `personRef` are set aside; merged
    /// persons whose survivor is missing are set aside to the next file (`deferred`, then `retry`).
    async fn pass(&mut self, mut pipeline: Pipeline, progress: &mut Progress) -> Result<(), ImportError> {
        let reading_input = self.checkpoint.phase == Phase::Input;
        let mut turn = 0;
        let workers = pipeline.from_workers.len();
        while let Some(prepared) = pipeline.from_workers[turn % workers].recv().await {
            turn += 1;
            let prepared = prepared?;
            let mut lines = Vec::with_capacity(prepared.entries.len());
            let mut records = Vec::with_capacity(prepared.entries.len());
            for (line, bytes, record) in prepared.entries {
                if reading_input && record.assigns_person_ref() {
                    self.deferred.write_bytes(&set_aside_line(line, &bytes))?;
                } else {
                    lines.push((line, bytes));
                    records.push(record);
                }
            }
            let results = self.service.import_prepared(self.ctx, records).await.map_err(ImportError::Store)?;
            for ((line, bytes), result) in lines.into_iter().zip(&results) {
                match result {
                    ImportResult::SurvivorMissing { .. } => {
                        let next = if reading_input { &mut self.deferred } else { &mut self.retry };
                        next.write_bytes(&set_aside_line(line, &bytes))?;
                    }
                    _ => self.record(line, result)?,
                }
            }
            self.commit((prepared.end_offset, prepared.end_line))?;
            progress.update(self.checkpoint.offset, &self.checkpoint.counts, self.rate());
        }
        pipeline.join()
    }

    /// Imports the merged persons set aside twice, in rounds, until a round stores none of them: what is left is
    /// reported as `survivor-missing`. Not checkpointed (they are few): a resumed run starts the rounds again.
    async fn rounds(&mut self, path: &Path) -> Result<(), ImportError> {
        let error = |source| ImportError::SetAside { path: path.to_path_buf(), source };
        let text = std::fs::read(path).map_err(error)?;
        let mut pending: Vec<(u64, Vec<u8>)> = Vec::new();
        for bytes in text.split(|b| *b == b'\n').filter(|l| !l.trim_ascii().is_empty()) {
            let damaged = || error(io::Error::new(io::ErrorKind::InvalidData, "a line is damaged"));
            pending.push(parse_set_aside_line(bytes).ok_or_else(damaged)?);
        }
        let batch = self.options.batch.max(1);
        while !pending.is_empty() {
            let mut missing = Vec::new();
            let mut stored_any = false;
            for chunk in pending.chunks(batch) {
                let records =
                    chunk.iter().map(|(_, bytes)| prepare_line(self.service, self.options.format, bytes)).collect();
                let results = self.service.import_prepared(self.ctx, records).await.map_err(ImportError::Store)?;
                for ((line, bytes), result) in chunk.iter().zip(results) {
                    if matches!(result, ImportResult::SurvivorMissing { .. }) {
                        missing.push((*line, bytes.clone(), result));
                    } else {
                        stored_any |= matches!(result, ImportResult::Imported { .. });
                        self.record(*line, &result)?;
                    }
                }
            }
            if !stored_any {
                for (line, _, result) in &missing {
                    self.record(*line, result)?;
                }
                break;
            }
            pending = missing.into_iter().map(|(line, bytes, _)| (line, bytes)).collect();
        }
        self.report.flush()
    }
}

/// Imports `options.input` through `service`, acting as `ctx`; resumes an interrupted run of the same import
/// unless `options.restart`.
///
/// # Errors
/// [`ImportError`] when the input, the report, the checkpoint or the store fails. Invalid and refused records are
/// not errors: they are reported and counted.
pub async fn run(
    service: &PersonService,
    ctx: &RequestContext,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let report_path = options.report.clone().unwrap_or_else(|| default_report_path(&options.input));
    let state_path = checkpoint_path(&options.input);
    let (deferred_path, retry_path) = set_aside_paths(&options.input);
    let fresh = describe_input(options, &report_path)?;
    let resumed = if options.restart { None } else { load_checkpoint(&state_path, &fresh) };
    let checkpoint = resumed.clone().unwrap_or(fresh);
    if let Some(saved) = &resumed {
        eprintln!("person-api import: resuming after line {} ({} records read before)", saved.line, saved.counts.read);
    }
    let start_read = checkpoint.counts.read;
    let mut run = Run {
        service,
        ctx,
        options,
        report: Appender::report(&report_path, resumed.as_ref().map(|c| c.report_bytes))?,
        deferred: Appender::set_aside(&deferred_path, resumed.as_ref().map(|c| c.deferred_bytes))?,
        retry: Appender::set_aside(&retry_path, resumed.as_ref().map(|c| c.retry_bytes))?,
        state_path,
        checkpoint,
        started,
        start_read,
    };

    let outcome = async {
        if run.checkpoint.phase == Phase::Input {
            let (input, gzip) = open_input(&options.input, run.checkpoint.offset)
                .map_err(|source| ImportError::Input { path: options.input.clone(), source })?;
            // The bar follows bytes of the content, whose total a compressed file does not tell.
            let total = (!gzip).then_some(run.checkpoint.size);
            let c = &run.checkpoint;
            let mut progress = Progress::new(options.progress, total, c.offset, c.counts.read);
            let position = (c.offset, c.line);
            let pipeline =
                Pipeline::start(service, options.format, (input, &options.input), position, (options.batch, false));
            let passed = run.pass(pipeline, &mut progress).await;
            progress.finish();
            passed?;
            run.checkpoint.phase = Phase::SetAside;
            run.commit((0, 0))?;
        }
        run.deferred.flush()?;
        let set_aside_error = |source| ImportError::SetAside { path: deferred_path.clone(), source };
        let mut file = File::open(&deferred_path).map_err(set_aside_error)?;
        file.seek(SeekFrom::Start(run.checkpoint.offset)).map_err(set_aside_error)?;
        let c = &run.checkpoint;
        let mut progress = Progress::new(options.progress, Some(run.deferred.bytes), c.offset, c.counts.read);
        let input: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(1 << 20, file));
        let position = (c.offset, c.line);
        let pipeline =
            Pipeline::start(service, options.format, (input, &deferred_path), position, (options.batch, true));
        let passed = run.pass(pipeline, &mut progress).await;
        progress.finish();
        passed?;
        run.retry.flush()?;
        run.rounds(&retry_path).await?;
        let indexing = Instant::now();
        let indexed = service.finish_import().await.map_err(ImportError::Store)?;
        if indexed > 0 {
            eprintln!("person-api import: {indexed} search keys indexed in {:.1} s", indexing.elapsed().as_secs_f64());
        }
        Ok(())
    }
    .await;
    // On failure the threads stop by themselves: their channels are closed when the pipeline is dropped.
    outcome?;
    run.report.out.get_ref().sync_all().map_err(|e| run.report.error(e))?;
    for path in [&run.state_path, &deferred_path, &retry_path] {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(ImportError::Checkpoint { path: path.clone(), source }),
        }
    }
    Ok(ImportSummary {
        counts: run.checkpoint.counts,
        read_this_run: run.checkpoint.counts.read - start_read,
        elapsed: started.elapsed(),
        resumed_after_line: resumed.map(|c| c.line),
        report: report_path,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use person_core::InMemoryStore;
    use person_core::ports::{PersonRepository as _, RandomIds, Repositories, SystemClock};
    use serde_json::{Value, json};

    use super::*;

    fn service() -> PersonService {
        let store = Arc::new(InMemoryStore::new());
        PersonService::new(Repositories::from_store(store), Arc::new(SystemClock), Arc::new(RandomIds))
    }

    fn person_line(id: uuid::Uuid, first: &str) -> String {
        json!({"id": id, "title": "Ms", "firstName": first, "surname": "Lovelace", "dateOfBirth": "1990-05-17",
               "personTypes": ["Tenant"], "reason": "Migrated"})
        .to_string()
    }

    fn options(input: &Path) -> ImportOptions {
        ImportOptions {
            input: input.to_path_buf(),
            format: InputFormat::Ndjson,
            report: None,
            batch: 2,
            progress: false,
            restart: false,
        }
    }

    fn report(input: &Path) -> Vec<Value> {
        std::fs::read_to_string(default_report_path(input))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn every_line_is_counted_and_what_was_not_simply_imported_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("persons.ndjson");
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let text = [
            person_line(a, "Ada"),
            String::new(),
            "{not json".to_owned(),
            person_line(b, "Ada"),
            person_line(a, "Ada"),
            "[1]".to_owned(),
        ]
        .join("\n");
        std::fs::write(&input, text).unwrap();
        let summary = run(&service(), &import_context(), &options(&input)).await.unwrap();
        let expected = ImportCounts {
            read: 5,
            imported: 2,
            duplicates: 1,
            invalid: 2,
            already_stored: 1,
            ..ImportCounts::default()
        };
        assert_eq!(summary.counts, expected);
        let lines = report(&input);
        // Records without a personRef are imported after the rest: the invalid ones are reported first.
        let outcomes: Vec<(u64, &str)> =
            lines.iter().map(|l| (l["line"].as_u64().unwrap(), l["outcome"].as_str().unwrap())).collect();
        assert_eq!(outcomes, vec![(3, "invalid"), (6, "invalid"), (4, "duplicate"), (5, "already-stored")]);
        assert_eq!(lines[2]["duplicateOf"], json!(a));
        assert_eq!(lines[0]["errors"][0]["code"], "malformed_json");
        assert!(!checkpoint_path(&input).exists(), "the checkpoint is removed when the load completes");
    }

    fn with(line: String, extra: &Value) -> String {
        let mut record: serde_json::Map<String, Value> = serde_json::from_str(&line).unwrap();
        record.extend(extra.as_object().unwrap().clone());
        Value::Object(record).to_string()
    }

    #[tokio::test]
    async fn merged_persons_wait_for_their_survivor_and_assigned_numbers_never_take_a_kept_one() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("persons.ndjson");
        let [m1, n, s, k, m2, x, m3] = std::array::from_fn(|_| uuid::Uuid::new_v4());
        let merged = |into: uuid::Uuid, person_ref: i64| json!({"personRef": person_ref, "status": {"state": "merged", "mergedInto": into}});
        let lines = [
            with(person_line(m1, "Ada"), &merged(s, 10)),
            person_line(n, "Grace"),
            with(person_line(s, "Hedy"), &json!({"personRef": 5})),
            with(person_line(k, "Alan"), &json!({"personRef": 1})),
            with(person_line(m2, "Edsger"), &merged(x, 20)),
            with(person_line(m3, "Barbara"), &merged(n, 30)),
        ];
        std::fs::write(&input, lines.join("\n")).unwrap();
        let store = Arc::new(InMemoryStore::new());
        let service =
            PersonService::new(Repositories::from_store(store.clone()), Arc::new(SystemClock), Arc::new(RandomIds));
        let summary = run(&service, &import_context(), &options(&input)).await.unwrap();
        let expected = ImportCounts { read: 6, imported: 5, survivor_missing: 1, ..ImportCounts::default() };
        assert_eq!(summary.counts, expected);
        let report = report(&input);
        assert_eq!(report.len(), 1, "{report:?}");
        assert_eq!((report[0]["line"].as_u64(), report[0]["outcome"].as_str()), (Some(5), Some("survivor-missing")));
        assert_eq!(report[0]["mergedInto"], json!(x));

        let person = |id: uuid::Uuid| {
            let store = store.clone();
            async move { store.get(PersonId::new(id).unwrap()).await.unwrap().unwrap() }
        };
        assert_eq!(person(n).await.person_ref, PersonRef(31), "assigned after every kept number");
        assert_eq!(person(m1).await.status, person_core::PersonStatus::Merged { into: PersonId::new(s).unwrap() });
        assert_eq!(person(m3).await.person_ref, PersonRef(30));
        let (deferred, retry) = set_aside_paths(&input);
        for file in [deferred, retry] {
            assert!(!file.exists(), "{} is removed when the load completes", file.display());
        }
    }

    #[tokio::test]
    async fn a_checkpoint_of_the_same_input_is_resumed_and_the_report_cut_back_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("persons.ndjson");
        let ids: Vec<uuid::Uuid> = (0..4).map(|_| uuid::Uuid::new_v4()).collect();
        let names = ["Ada", "Grace", "Hedy", "Alan"];
        let lines: Vec<String> = ids.iter().zip(names).map(|(id, n)| person_line(*id, n)).collect();
        std::fs::write(&input, lines.join("\n") + "\n").unwrap();
        let report_path = default_report_path(&input);
        let mut saved = describe_input(&options(&input), &report_path).unwrap();
        // As if a run had committed the first two lines, then written a report line it never checkpointed.
        saved.offset = (lines[0].len() + lines[1].len() + 2) as u64;
        saved.line = 2;
        saved.counts = ImportCounts { read: 2, imported: 2, ..ImportCounts::default() };
        saved.report_bytes = 0;
        save_checkpoint(&checkpoint_path(&input), &saved).unwrap();
        std::fs::write(&report_path, "{\"line\": 99}\n").unwrap();
        let summary = run(&service(), &import_context(), &options(&input)).await.unwrap();
        assert_eq!(summary.resumed_after_line, Some(2));
        assert_eq!(summary.read_this_run, 2);
        assert_eq!(summary.counts.imported, 4);
        assert_eq!(std::fs::read_to_string(&report_path).unwrap(), "", "lines after the checkpoint are cut");

        // A checkpoint of another version of the file is ignored.
        saved.size += 1;
        save_checkpoint(&checkpoint_path(&input), &saved).unwrap();
        let summary = run(&service(), &import_context(), &options(&input)).await.unwrap();
        assert_eq!((summary.resumed_after_line, summary.counts.read), (None, 4));
    }

    #[tokio::test]
    async fn a_gzip_compressed_hackney_export_is_read_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("export.json.gz");
        let id = uuid::Uuid::new_v4();
        let item = json!({"Item": {"id": {"S": id}, "title": {"S": "Mr"}, "firstName": {"S": "Alan"},
            "surname": {"S": "Turing"}, "dateOfBirth": {"S": "1912-06-23T00:00:00.0000000Z"},
            "personTypes": {"L": [{"S": "Tenant"}]}, "personRef": {"N": "77"}}});
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder
            .write_all(
                format!("{item}\n{{\"Item\": {{\"id\": {{\"S\": \"x\"}}, \"colour\": {{\"S\": \"red\"}}}}}}\n")
                    .as_bytes(),
            )
            .unwrap();
        std::fs::write(&input, encoder.finish().unwrap()).unwrap();
        let mut opts = options(&input);
        opts.format = InputFormat::HackneyDynamodb;
        let summary = run(&service(), &import_context(), &opts).await.unwrap();
        assert_eq!((summary.counts.imported, summary.counts.invalid), (1, 1));
        let lines = report(&input);
        assert_eq!(lines[0]["errors"][0]["field"], "/colour");
    }
}
