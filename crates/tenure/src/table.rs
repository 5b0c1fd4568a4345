//! Plain aligned text tables for people (JSON output is for programs).

/// Render rows under a header, columns padded to their widest cell.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths = widths(header, rows);
    let mut out = line(&widths, header);
    for r in rows {
        out.push_str(&line(&widths, &r.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    out
}

/// Each column's width: its widest cell, header included.
pub fn widths(header: &[&str], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    widths
}

/// One line of cells padded to `widths` (the last one not padded), with its newline.
pub fn line(widths: &[usize], cells: &[&str]) -> String {
    let mut l = String::new();
    for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            l.push_str(c);
        } else {
            l.push_str(&format!("{c:<w$}  "));
        }
    }
    let mut l = l.trim_end().to_owned();
    l.push('\n');
    l
}
