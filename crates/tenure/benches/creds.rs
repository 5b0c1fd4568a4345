//! Credential broker throughput, in one run:
//! 1. ES256 signing of a JWT-SVID's signing input with the same key type (P-256), directly with
//!    the `p256` crate: the crypto limit, the baseline;
//! 2. `Engine::issue_credential` for a JWT-SVID, in process (policy and identity checks, SPIFFE
//!    ID, signing, the credential row and its ledger entry committed durably), 1 and 16 threads;
//! 3. `Engine::introspect` in process;
//! 4. `POST /v1/credentials` (JWT-SVIDs) and `POST /v1/oauth/introspect` on loopback against
//!    `tenure serve`, 16 client threads: per second, p50/p99 latency.
//!
//! `cargo bench -p tenure --bench creds` (TENURE_BENCH_SECS per measurement, default 3).

// Benchmark code: a failure should stop the run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::disallowed_methods)]

use std::time::Instant;
use tenure_engine::creds::CredentialRequest;
use tenure_model::CredentialKind;
use tenure_svid::p256::ecdsa::signature::Signer as _;

mod support;
use support::{Serve, load, quickstart_engine, secs};

const NHI: &str = "service-registry:svc-billing";
const OWNER: &str = "hr:E1002";

/// Calls per second of `f`, from `threads` threads, for the measurement time.
fn rate<F: Fn() + Sync>(threads: usize, f: F) -> f64 {
    let d = secs();
    let t = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while t.elapsed() < d {
                        f();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / t.elapsed().as_secs_f64()
}

fn jwt_request() -> CredentialRequest {
    CredentialRequest {
        identity: NHI.into(),
        kind: CredentialKind::JwtSvid,
        ttl: None,
        audience: vec!["payments".into()],
        csr: None,
        system: None,
        purpose: None,
        replaces: None,
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = quickstart_engine(&data);
    let by = tenure_model::Principal::operator("bench");
    let (first, _) = engine.issue_credential(&jwt_request(), &by).unwrap();

    // 1. The crypto limit: ES256 over a signing input the size of tenure's.
    let key = tenure_svid::generate_key();
    let input = first.secret.rsplit_once('.').unwrap().0.to_owned();
    let raw = rate(1, || {
        let _: tenure_svid::p256::ecdsa::Signature = key.sign(input.as_bytes());
    });
    let raw_n = rate(2, || {
        let _: tenure_svid::p256::ecdsa::Signature = key.sign(input.as_bytes());
    });
    // 2. Issuance in process.
    let issue_1 = rate(1, || {
        engine.issue_credential(&jwt_request(), &by).unwrap();
    });
    let issue_16 = rate(16, || {
        engine.issue_credential(&jwt_request(), &by).unwrap();
    });
    // 3. Introspection in process.
    let token = first.secret.clone();
    let introspect_1 = rate(1, || {
        assert!(engine.introspect(&token).unwrap().active);
    });
    let introspect_n = rate(2, || {
        assert!(engine.introspect(&token).unwrap().active);
    });
    let issued = engine.store().read().unwrap().credentials(None).unwrap().len();

    println!(
        "credential broker benchmark: JWT-SVIDs (ES256), quickstart policy, {issued} credentials issued in process"
    );
    println!("{:<62} {:>10} {:>12}", "", "per second", "vs signing");
    let line = |what: &str, r: f64, base: f64| println!("{what:<62} {r:>10.0} {:>11.1}x", base / r);
    line("ES256 sign, p256 crate, 1 thread (baseline)", raw, raw);
    line("ES256 sign, p256 crate, 2 threads (baseline)", raw_n, raw_n);
    line("tenure issue JWT-SVID in process, durable, 1 thread", issue_1, raw);
    line("tenure issue JWT-SVID in process, durable, 16 threads", issue_16, raw_n);
    line("tenure introspect in process, 1 thread", introspect_1, raw);
    line("tenure introspect in process, 2 threads", introspect_n, raw_n);

    // 4. Over HTTP against `tenure serve`.
    let owner_token = engine
        .issue_token(
            OWNER,
            &["requester".into(), "authorizer".into()],
            Some(1),
            "bench",
            &tenure_model::Principal::operator("bench"),
        )
        .unwrap()
        .secret;
    // `serve` starts only when someone can administer it.
    engine
        .issue_token("hr:E1000", &["admin".into()], Some(1), "bench", &tenure_model::Principal::operator("bench"))
        .unwrap();
    drop(engine);
    let server = Serve::start(&data);
    let body = serde_json::json!({ "identity": NHI, "kind": "jwt-svid", "audience": ["payments"] }).to_string();
    let issue = load(&server.base, "/v1/credentials", &owner_token, "application/json", &body, 201);
    let form = format!("token={token}");
    let intro =
        load(&server.base, "/v1/oauth/introspect", &owner_token, "application/x-www-form-urlencoded", &form, 200);
    drop(server);
    let (issue_http, i50, i99) = (issue.per_sec, issue.p50, issue.p99);
    let (intro_http, n50, n99) = (intro.per_sec, intro.p50, intro.p99);
    println!(
        "{:<62} {issue_http:>10.0} {:>11.1}x   p50 {:.1} ms, p99 {:.1} ms",
        "POST /v1/credentials (JWT-SVID), loopback, 16 clients",
        raw_n / issue_http,
        i50.as_secs_f64() * 1e3,
        i99.as_secs_f64() * 1e3
    );
    println!(
        "{:<62} {intro_http:>10.0} {:>11.1}x   p50 {:.1} ms, p99 {:.1} ms",
        "POST /v1/oauth/introspect, loopback, 16 clients",
        raw_n / intro_http,
        n50.as_secs_f64() * 1e3,
        n99.as_secs_f64() * 1e3
    );
}
