//! Lists written as they are read, a page at a time, so a million items take a page's
//! memory: under `--output json` one JSON document written as it goes, as a table with
//! columns as wide as the first page needs. Every CLI list goes through [`stream`].

use crate::cli::{Output, StdoutClosed, engine_exit};
use crate::table;
use std::io::Write;
use std::process::ExitCode;
use tenure_engine::EngineError;

/// Items read per page.
pub const PAGE: usize = 1000;

/// How a list is framed in JSON: an array alone (`[`, `]`), or inside an object whose other
/// members come first (`{"counts": …, "jobs": [`, `]}`).
pub struct Frame {
    pub open: String,
    pub close: &'static str,
}

impl Frame {
    pub fn array() -> Self {
        Self { open: "[".into(), close: "]" }
    }
}

/// Write every page `next_page` hands out (it is given the cursor the previous page ended
/// with) under `header`, each item as `row` says (with no header, a line of its cells), or as
/// JSON. An engine error (a filter that
/// names nothing) ends the list with its exit code; a closed pipe ends it quietly.
pub fn stream<T: serde::Serialize, C>(
    output: Output,
    frame: Frame,
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
    next_page: impl FnMut(Option<C>) -> Result<(Vec<T>, Option<C>), EngineError>,
) -> anyhow::Result<ExitCode> {
    // Only standard output is written here: a broken pipe is its reader gone.
    match write_pages(output, frame, header, row, next_page) {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(e)) => Ok(engine_exit(e)),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(e.into()),
    }
}

fn write_pages<T: serde::Serialize, C>(
    output: Output,
    frame: Frame,
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
    mut next_page: impl FnMut(Option<C>) -> Result<(Vec<T>, Option<C>), EngineError>,
) -> std::io::Result<Result<(), EngineError>> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut cursor: Option<C> = None;
    let mut widths: Option<Vec<usize>> = None;
    let mut first = true;
    loop {
        let (page, next) = match next_page(cursor.take()) {
            Ok(p) => p,
            Err(e) => {
                out.flush()?;
                return Ok(Err(e));
            }
        };
        match output {
            Output::Json => {
                if first && widths.is_none() {
                    write!(out, "{}", frame.open)?;
                    // Marks the frame as opened (a table's widths are never set under JSON).
                    widths = Some(Vec::new());
                }
                for item in &page {
                    let json = serde_json::to_string(item).map_err(std::io::Error::other)?;
                    write!(out, "{}\n  {json}", if first { "" } else { "," })?;
                    first = false;
                }
            }
            // No header: lines of free text (`jobs status`), not columns.
            Output::Table if header.is_empty() => {
                for item in &page {
                    writeln!(out, "{}", row(item).join("  "))?;
                }
                first = false;
            }
            Output::Table => {
                let rows: Vec<Vec<String>> = page.iter().map(&row).collect();
                let w = widths.get_or_insert_with(|| table::widths(header, &rows));
                if first {
                    write!(out, "{}", table::line(w, header))?;
                }
                first = false;
                for r in &rows {
                    let cells: Vec<&str> = r.iter().map(String::as_str).collect();
                    write!(out, "{}", table::line(w, &cells))?;
                }
            }
        }
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    if output == Output::Json {
        writeln!(out, "{}{}", if first { "" } else { "\n" }, frame.close)?;
    }
    out.flush()?;
    Ok(Ok(()))
}
