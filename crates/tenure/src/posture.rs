//! `tenure posture`: the posture report (OWASP NHI Top 10, NIST CSF 2.0 `PR.AA`, NIST AI RMF)
//! as a table for people, JSON for programs, or one self-contained HTML page for auditors;
//! `--save` keeps a snapshot for the trend, `--check` exits 1 while any check fails.

use crate::cli::{Global, Output, open};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use tenure_proto::posture::PostureReport;

#[derive(clap::Args)]
pub struct PostureArgs {
    /// Keep a snapshot of this report (each check's status and failing count) for the trend;
    /// `tenure serve` keeps one a day by itself.
    #[arg(long)]
    save: bool,
    /// Also write the report as one HTML page (no script, no external resources) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Exit 1 while any check fails (for a pipeline's gate).
    #[arg(long)]
    check: bool,
    /// What to print: `table`, `json` (as the global `--output json`) or `html` (the page of
    /// `--html`, on standard output).
    #[arg(long, value_enum)]
    format: Option<Format>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
    Html,
}

pub fn run(g: &Global, args: PostureArgs) -> anyhow::Result<ExitCode> {
    let engine = open(&g.data_dir)?;
    let report = if args.save { engine.save_posture()? } else { engine.posture()? };
    if let Some(path) = &args.html {
        std::fs::write(path, html(&report)).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    let format = args.format.unwrap_or(match g.output {
        Output::Json => Format::Json,
        Output::Table => Format::Table,
    });
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Table => print!("{}", table(&report)),
        Format::Html => print!("{}", html(&report)),
    }
    let failing = report.summary.get("fail").copied().unwrap_or(0);
    Ok(if args.check && failing > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// A trend as the last statuses, oldest first: `pass pass fail`.
fn trend(c: &tenure_proto::posture::PostureCheck) -> String {
    let skip = c.trend.len().saturating_sub(5);
    c.trend.iter().skip(skip).map(|t| format!("{}({})", t.status, t.failing)).collect::<Vec<_>>().join(" ")
}

fn table(r: &PostureReport) -> String {
    let mut out = format!(
        "posture at {} (policy {}, ledger size {}): {} pass, {} fail, {} n/a\n",
        r.at,
        r.policy_version,
        r.ledger_size,
        r.summary.get("pass").copied().unwrap_or(0),
        r.summary.get("fail").copied().unwrap_or(0),
        r.summary.get("n/a").copied().unwrap_or(0),
    );
    for s in &r.sections {
        let _ = writeln!(out, "\n{}", s.title);
        let rows: Vec<Vec<String>> = s
            .checks
            .iter()
            .map(|c| vec![c.id.clone(), c.status.clone(), c.failing.to_string(), c.title.clone(), trend(c)])
            .collect();
        out.push_str(&crate::table::render(&["CHECK", "STATUS", "FAILING", "TITLE", "TREND"], &rows));
        for c in s.checks.iter().filter(|c| c.status == "fail") {
            let _ = writeln!(out, "  {} fails:", c.id);
            for e in &c.evidence {
                let proof = e.ledger_seq.map(|s| format!(" [tenure ledger prove {s}]")).unwrap_or_default();
                let finding = e.finding.map(|f| format!(" [finding {f}]")).unwrap_or_default();
                let _ = writeln!(out, "    - {}{proof}{finding}", e.what);
            }
            let more = c.failing.saturating_sub(c.evidence.len() as u64);
            if more > 0 {
                let _ = writeln!(out, "    … and {more} more (--output json has the first {})", c.evidence.len());
            }
        }
    }
    out
}

/// Text made safe for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One page with its own style, no script and nothing fetched from elsewhere.
fn html(r: &PostureReport) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tenure posture report</title>\n<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}.pass{color:#176f2c}.fail{color:#b00020;font-weight:bold}.na{color:#666}code{font-size:90%}</style></head><body>\n",
    );
    let _ = writeln!(
        out,
        "<h1>Posture report</h1><p>At {} under policy <code>{}</code>; every ledger entry cited is below size {} and can be proved with <code>tenure ledger prove SEQ</code>.</p>",
        esc(&r.at),
        esc(&r.policy_version),
        r.ledger_size
    );
    let _ = writeln!(
        out,
        "<p>{} pass, {} fail, {} not applicable.</p>",
        r.summary.get("pass").copied().unwrap_or(0),
        r.summary.get("fail").copied().unwrap_or(0),
        r.summary.get("n/a").copied().unwrap_or(0)
    );
    for s in &r.sections {
        let _ = writeln!(
            out,
            "<h2>{}</h2><table><tr><th>Check</th><th>Status</th><th>Why</th><th>Measures</th><th>Evidence</th><th>Trend</th></tr>",
            esc(&s.title)
        );
        for c in &s.checks {
            let class = if c.status == "n/a" { "na" } else { c.status.as_str() };
            let measures: Vec<String> =
                c.measures.iter().map(|(k, v)| format!("<code>{}</code> {}", esc(k), esc(&v.to_string()))).collect();
            let mut evidence: Vec<String> = c
                .evidence
                .iter()
                .map(|e| {
                    let seq = e.ledger_seq.map(|s| format!(" (ledger entry {s})")).unwrap_or_default();
                    let finding = e.finding.map(|f| format!(" (finding {f})")).unwrap_or_default();
                    format!("{}{seq}{finding} <code>{}</code>", esc(&e.what), esc(&e.link))
                })
                .collect();
            let more = c.failing.saturating_sub(c.evidence.len() as u64);
            if more > 0 {
                evidence.push(format!("… and {more} more"));
            }
            let _ = writeln!(
                out,
                "<tr><td><b>{}</b> {}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td><ul>{}</ul></td><td>{}</td></tr>",
                esc(&c.id),
                esc(&c.title),
                esc(&c.status),
                esc(&c.why),
                measures.join("<br>"),
                evidence.iter().map(|e| format!("<li>{e}</li>")).collect::<String>(),
                esc(&trend(c))
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn html_text_is_escaped() {
        assert_eq!(super::esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
