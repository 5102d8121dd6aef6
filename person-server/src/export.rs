//! `person-api export`: every person of the store as NDJSON (one Person JSON per line, as the store holds it), for
//! migrations between stores and offline copies.
//!
//! Persons in every state are written (live, deleted, merged, restricted), in ascending id order, read in bounded
//! keyset pages through the reporting port, so memory does not grow with the store. Equality and extended data are
//! not exported (they are special-category or per-service documents with their own access rules). Writing to a
//! file goes through `<file>.partial`, renamed when complete, so an interrupted export never leaves a file that
//! looks whole.

use std::io::Write;
use std::path::{Path, PathBuf};

use person_core::ports::{ReportQuery, Store};

/// Persons read per page.
const PAGE: u32 = 1000;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The store failed while reading.
    #[error("reading the store failed")]
    Store(#[from] person_core::StoreError),
    /// Writing the output failed.
    #[error("writing {0} failed")]
    Write(String, #[source] std::io::Error),
    /// A person could not be serialised (a bug).
    #[error("serialising a person failed")]
    Serialise(#[source] serde_json::Error),
}

/// Writes every person of `store` as one JSON line each to `output` (standard output when `None`), reporting
/// progress on standard error every `progress_every` persons; returns how many were written.
///
/// # Errors
/// [`ExportError`] when the store or the output fails; a file output is then left as `<file>.partial`.
pub async fn export(store: &dyn Store, output: Option<&Path>, progress_every: u64) -> Result<u64, ExportError> {
    match output {
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let written = write_all(store, &mut out, progress_every, "standard output").await?;
            out.flush().map_err(|e| ExportError::Write("standard output".to_owned(), e))?;
            Ok(written)
        }
        Some(path) => {
            let partial = partial_path(path);
            let name = partial.display().to_string();
            let file = std::fs::File::create(&partial).map_err(|e| ExportError::Write(name.clone(), e))?;
            let mut out = std::io::BufWriter::new(file);
            let written = write_all(store, &mut out, progress_every, &name).await?;
            let file = out.into_inner().map_err(|e| ExportError::Write(name.clone(), e.into_error()))?;
            file.sync_all().map_err(|e| ExportError::Write(name.clone(), e))?;
            std::fs::rename(&partial, path).map_err(|e| ExportError::Write(path.display().to_string(), e))?;
            Ok(written)
        }
    }
}

/// `<file>.partial`, next to `file`.
fn partial_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".partial");
    file.with_file_name(name)
}

async fn write_all(
    store: &dyn Store,
    out: &mut impl Write,
    progress_every: u64,
    name: &str,
) -> Result<u64, ExportError> {
    let mut written = 0_u64;
    let mut after = None;
    loop {
        let query = ReportQuery { modified_since: None, after, offset: 0, limit: PAGE };
        let page = store.report_persons(&query).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for person in &page {
            serde_json::to_writer(&mut *out, person).map_err(ExportError::Serialise)?;
            out.write_all(b"\n").map_err(|e| ExportError::Write(name.to_owned(), e))?;
            written += 1;
            if progress_every > 0 && written.is_multiple_of(progress_every) {
                eprintln!("person-api export: {written} persons");
            }
        }
    }
    Ok(written)
}
