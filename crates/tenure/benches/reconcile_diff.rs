//! The reconciliation diff in process: 1,000,000 accounts and 5,000,000 memberships read as
//! pages (LDAP's shape: accounts, then memberships apart) against the desired state of the same
//! population, with a little drift (0.1% orphans, 0.1% missing accounts, 0.1% unmanaged
//! memberships). Reports the classifier's time, the time to generate the pages alone (what a
//! connector would hand over), a baseline — a plain `HashSet` difference of the same
//! `(account, target)` strings, the least any diff must do — and the peak RSS of the process.
//!
//! `cargo bench -p tenure --bench reconcile_diff` (TENURE_BENCH_ACCOUNTS to change the count).

// Benchmark code: a failure should stop the run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;
use tenure_connectors::{AccountRecord, Page};
use tenure_engine::reconcile::diff::{Classifier, Expected};
use tenure_model::{AccountState, GrantState, LifecycleState};
use tenure_policy::reconcile::ReconcileRules;

const PER_ACCOUNT: usize = 5;
const GROUPS: usize = 50;
const PAGE: usize = 500;

fn name(i: usize) -> String {
    format!("u{i:07}")
}

fn reference(i: usize) -> String {
    format!("hr:E{i:07}")
}

fn group(i: usize, k: usize) -> String {
    format!("group-{:02}", (i + k * 7) % GROUPS)
}

/// Peak resident set size of this process (`VmHWM`), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The system's pages: every 1000th account is an orphan, every 1000th (offset) held one is
/// gone, every 1000th account has one membership no grant accounts for.
fn pages(n: usize, mut each: impl FnMut(Page)) {
    let mut i = 0;
    let mut number = 0;
    while i < n {
        number += 1;
        let end = (i + PAGE).min(n);
        let mut accounts = Vec::with_capacity(PAGE);
        for j in i..end {
            if j % 1000 == 7 {
                continue; // missing
            }
            let orphan = j % 1000 == 3;
            accounts.push(AccountRecord {
                name: if orphan { format!("orphan{j}") } else { name(j) },
                enabled: true,
                memberships: BTreeSet::new(),
                managed_by: (!orphan).then(|| reference(j)),
                reserved: false,
                privileges: BTreeSet::new(),
                attributes: Default::default(),
                last_login: None,
            });
        }
        each(Page { number, accounts, memberships: Vec::new() });
        i = end;
    }
    // Memberships, as LDAP lists them on the groups, a page at a time.
    let mut batch = Vec::with_capacity(PAGE * PER_ACCOUNT);
    for j in 0..n {
        if j % 1000 == 7 || j % 1000 == 3 {
            continue;
        }
        for k in 0..PER_ACCOUNT {
            batch.push((name(j), group(j, k)));
        }
        if j % 1000 == 11 {
            batch.push((name(j), "printers".to_owned()));
        }
        if batch.len() >= PAGE * PER_ACCOUNT {
            number += 1;
            each(Page { number, accounts: Vec::new(), memberships: std::mem::take(&mut batch) });
        }
    }
    each(Page { number: number + 1, accounts: Vec::new(), memberships: batch });
}

fn main() {
    let n: usize = std::env::var("TENURE_BENCH_ACCOUNTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    println!("reconciliation diff: {n} accounts, {} memberships, pages of {PAGE}", n * PER_ACCOUNT);

    // Generating the pages alone: what the connector hands over, not the diff's work.
    let t = Instant::now();
    let mut read = 0usize;
    pages(n, |p| read += p.accounts.len() + p.memberships.len());
    let generate = t.elapsed().as_secs_f64();

    // The desired state, built as the engine builds it from the store.
    let t = Instant::now();
    let mut e = Expected::new(&ReconcileRules::default());
    for i in 0..n {
        e.identity(&reference(i), LifecycleState::Active, &Default::default());
        e.account(&reference(i), &name(i), AccountState::Verified);
        for k in 0..PER_ACCOUNT {
            e.grant(&name(i), &group(i, k), GrantState::Verified);
        }
    }
    let build = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut c = Classifier::new(e);
    pages(n, |p| c.page(p));
    let plan = c.finish();
    let diff = t.elapsed().as_secs_f64();
    let rss = peak_rss_mib();
    let counts: Vec<String> = plan.counts.iter().map(|(s, k)| format!("{s} {k}")).collect();
    println!("  plan: {} (items {}, digest {})", counts.join(", "), plan.items.len(), &plan.digest()[..12]);
    drop(plan);

    // Baseline: a HashSet difference of the same (account, target) pairs, both ways.
    let t = Instant::now();
    let mut want: HashSet<(String, String)> = HashSet::with_capacity(n * PER_ACCOUNT);
    for i in 0..n {
        for k in 0..PER_ACCOUNT {
            want.insert((name(i), group(i, k)));
        }
    }
    let mut extra = 0usize;
    pages(n, |p| {
        for m in p.memberships {
            if !want.remove(&m) {
                extra += 1;
            }
        }
    });
    let baseline = t.elapsed().as_secs_f64();
    println!("  baseline found {extra} extra and {} missing memberships", want.len());
    drop(want);

    println!("  generating the pages alone:     {generate:.2} s ({read} items)");
    println!("  desired state built:            {build:.2} s");
    println!("  classify (pages + plan):        {diff:.2} s  ({:.0}k accounts/s)", n as f64 / diff / 1000.0);
    println!("  of which the classifier:        {:.2} s", (diff - generate).max(0.0));
    println!("  build + classify:               {:.2} s", build + diff);
    println!("  baseline HashSet difference:    {baseline:.2} s (its own build included)");
    println!("  ratio (build + classify) / baseline: {:.2}x", (build + diff) / baseline);
    println!("  peak RSS of this process:       {rss:.0} MiB (measured before the baseline ran)");
}
