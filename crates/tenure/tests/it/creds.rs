//! The credential broker as its clients see it: PyJWT verifying JWT-SVIDs against the JWKS from
//! the discovery document (and failing once the signing key has left it), `openssl verify` on
//! X.509-SVIDs and the CRL, `psql` with a dynamic login, introspection and revocation, and a
//! leaver's closure certificate listing every credential.

use crate::support::*;
use serde_json::{Value, json};

/// HTTP against an in-process server.
fn call(method: &str, url: &str, token: Option<&str>, body: Option<(&str, &str)>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let auth = token.map(|t| format!("Bearer {t}"));
    let r = match (method, body) {
        ("GET", _) => {
            let mut req = agent.get(url);
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            req.call()
        }
        (_, b) => {
            let (ct, b) = b.unwrap_or(("application/json", ""));
            let mut req = agent.post(url).header("content-type", ct);
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            req.send(b)
        }
    };
    let mut r = r.unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default())
}

fn issue(base: &str, token: &str, body: Value) -> (u16, Value) {
    let (status, text) =
        call("POST", &format!("{base}/v1/credentials"), Some(token), Some(("application/json", &body.to_string())));
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn issued(base: &str, token: &str, body: Value) -> Value {
    let (status, v) = issue(base, token, body.clone());
    assert_eq!(status, 201, "issuing {body}: {v}");
    v
}

fn introspect(base: &str, token: &str, credential: &str) -> Value {
    let form = format!("token={}&token_type_hint=access_token", urlencode(credential));
    let (status, text) = call(
        "POST",
        &format!("{base}/v1/oauth/introspect"),
        Some(token),
        Some(("application/x-www-form-urlencoded", &form)),
    );
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The PyJWT client: discovery document → jwks_uri → key by `kid` → verify ES256, audience and
/// expiry. Prints `VALID sub`, or `NOKEY …` (exit 3) / `INVALID …` (exit 4).
const PYJWT: &str = r#"
import json, sys, urllib.request
import jwt
base, token, aud = sys.argv[1], sys.argv[2], sys.argv[3]
conf = json.load(urllib.request.urlopen(base + "/.well-known/openid-configuration"))
client = jwt.PyJWKClient(conf["jwks_uri"], cache_keys=False)
try:
    key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["ES256"], audience=aud)
    print("VALID " + claims["sub"])
except jwt.PyJWKClientError as e:
    print("NOKEY " + str(e)); sys.exit(3)
except jwt.InvalidTokenError as e:
    print("INVALID " + str(e)); sys.exit(4)
"#;

fn pyjwt(w: &World, base: &str, token: &str, aud: &str) -> (i32, String) {
    let script = w.file("pyjwt_verify.py", PYJWT);
    let python =
        std::env::var("TENURE_PYTHON").unwrap_or_else(|_| format!("{}/target/pyenv/bin/python", repo().display()));
    let out = std::process::Command::new(&python)
        .arg(script)
        .args([base, token, aud])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (scripts/install-deps puts PyJWT in target/pyenv): {e}"));
    (out.status.code().unwrap_or(-1), format!("{}{}", stdout(&out), stderr(&out)))
}

fn openssl(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    (out.status.success(), format!("{}{}", stdout(&out), stderr(&out)))
}

/// A service owned by the operator, active.
fn service(w: &World, c: &Clocked, ext: &str) {
    let _ = w.operator_token();
    c.ingest(&event(
        "service-registry",
        &format!("j-{ext}"),
        "joined",
        nhi(ext, "service", Some(OPERATOR), "2027-06-01T00:00:00Z"),
    ));
    c.run();
}

#[allow(
    clippy::disallowed_methods,
    reason = "PyJWT checks `exp` against the real clock: the engine's starts there too"
)]
fn real_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

#[test]
fn a_jwt_svid_verifies_with_pyjwt_until_its_signing_key_leaves_the_jwks_and_an_x509_svid_with_openssl() {
    let w = World::new();
    let c = Clocked::at(&w, real_now());
    service(&w, &c, "svc-pay");
    let base = c.serve(&w);
    let op = w.operator_token();

    // JWT-SVID: any OIDC library verifies it from the discovery document.
    let first = issued(
        &base,
        &op,
        json!({ "identity": "service-registry:svc-pay", "kind": "jwt-svid", "audience": ["payments"], "ttl": "5m" }),
    );
    let token = first["secret"].as_str().unwrap().to_owned();
    assert_eq!(first["spiffe_id"], "spiffe://quickstart.tenure.dev/service/service-registry/svc-pay");
    let (code, out) = pyjwt(&w, &base, &token, "payments");
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), "VALID spiffe://quickstart.tenure.dev/service/service-registry/svc-pay");
    let (code, out) = pyjwt(&w, &base, &token, "someone-else");
    assert_eq!(code, 4, "wrong audience: {out}");
    // Only alg, kid and typ in the header.
    let header: Value = serde_json::from_slice(&base64_url(token.split('.').next().unwrap())).unwrap();
    assert_eq!(header.as_object().unwrap().keys().cloned().collect::<Vec<_>>(), ["alg", "kid", "typ"]);
    assert_eq!(header["alg"], "ES256");

    // Rotation: a new key signs, the old one stays published while its token lives.
    w.ok(&["creds", "rotate-key"]);
    let jwks: Value =
        serde_json::from_str(&call("GET", &format!("{base}/.well-known/jwks.json"), None, None).1).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "{jwks}");
    assert_eq!(pyjwt(&w, &base, &token, "payments").0, 0, "the old key is still in the JWKS");
    let second = issued(
        &base,
        &op,
        json!({ "identity": "service-registry:svc-pay", "kind": "jwt-svid", "audience": ["payments"], "ttl": "5m" }),
    );
    let token2 = second["secret"].as_str().unwrap().to_owned();
    assert_ne!(first["name"], second["name"], "signed with the new key");
    assert_eq!(pyjwt(&w, &base, &token2, "payments").0, 0);

    // Once the old key's last token has expired, the clock removes it from the JWKS, and
    // PyJWT can no longer find a key for the old token.
    c.clock.advance(time::Duration::minutes(5) + time::Duration::seconds(1));
    c.engine.tick().unwrap();
    let jwks: Value =
        serde_json::from_str(&call("GET", &format!("{base}/.well-known/jwks.json"), None, None).1).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "{jwks}");
    let (code, out) = pyjwt(&w, &base, &token, "payments");
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("NOKEY"), "{out}");
    // Tenure's own clock says the first token expired: introspection agrees.
    assert_eq!(introspect(&base, &op, &token)["active"], false);
    c.clock.advance(-(time::Duration::minutes(5) + time::Duration::seconds(1)));

    // X.509-SVID from a CSR made by openssl; verified against the served trust bundle.
    let dir = w.tmp.path().join("x509");
    std::fs::create_dir_all(&dir).unwrap();
    let (ok, out) = openssl(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "svid.key",
            "-subj",
            "/CN=asks-for-anything",
            "-addext",
            "subjectAltName=URI:spiffe://evil.example/admin,DNS:evil.example",
            "-out",
            "svid.csr",
        ],
    );
    assert!(ok, "{out}");
    let csr = std::fs::read_to_string(dir.join("svid.csr")).unwrap();
    let cert = issued(&base, &op, json!({ "identity": "service-registry:svc-pay", "kind": "x509-svid", "csr": csr }));
    std::fs::write(dir.join("svid.pem"), cert["secret"].as_str().unwrap()).unwrap();
    let (status, bundle) = call("GET", &format!("{base}/v1/trust-bundle"), None, None);
    assert_eq!(status, 200);
    assert_eq!(bundle, cert["bundle"].as_str().unwrap());
    std::fs::write(dir.join("bundle.pem"), &bundle).unwrap();
    let at = real_now().unix_timestamp().to_string();
    let (ok, out) = openssl(&dir, &["verify", "-attime", &at, "-CAfile", "bundle.pem", "svid.pem"]);
    assert!(ok && out.contains("svid.pem: OK"), "{out}");
    // The whole validity, backdated notBefore included, is within the policy's 1 h.
    let (_, dates) = openssl(&dir, &["x509", "-in", "svid.pem", "-noout", "-startdate", "-enddate"]);
    let date = |key: &str| {
        let v = dates.lines().find_map(|l| l.strip_prefix(key)).unwrap().trim().to_owned();
        let out = std::process::Command::new("date").args(["-u", "-d", &v, "+%s"]).output().unwrap();
        stdout(&out).trim().parse::<i64>().unwrap()
    };
    assert!(date("notAfter=") - date("notBefore=") <= 3600, "{dates}");
    // The same CSR re-wrapped at 76 columns (as some tools write it) is a CSR all the same.
    let body: String = csr.lines().filter(|l| !l.starts_with("-----")).collect();
    let wrapped: Vec<String> = body.as_bytes().chunks(76).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    let csr76 =
        format!("-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n", wrapped.join("\n"));
    assert!(csr76.lines().nth(1).unwrap().len() == 76 && csr76 != csr);
    tenure_svid::x509::verify_csr(&csr76).unwrap();
    // The CRL carries a CRL Number (RFC 5280 §5.2.3).
    let (_, crl) = call("GET", &format!("{base}/v1/crl"), None, None);
    std::fs::write(dir.join("crl.pem"), &crl).unwrap();
    let (ok, crl_text) = openssl(&dir, &["crl", "-in", "crl.pem", "-noout", "-text"]);
    assert!(ok && crl_text.contains("X509v3 CRL Number"), "{crl_text}");
    let (_, text) = openssl(&dir, &["x509", "-in", "svid.pem", "-noout", "-text"]);
    let uris: Vec<&str> =
        text.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| t.starts_with("URI:")).collect();
    assert_eq!(
        uris,
        ["URI:spiffe://quickstart.tenure.dev/service/service-registry/svc-pay"],
        "exactly one URI SAN, the CSR's ignored:\n{text}"
    );
    assert!(!text.contains("DNS:"), "{text}");
    assert!(text.contains("X509v3 Basic Constraints: critical\n                CA:FALSE"), "{text}");
    assert!(text.contains("X509v3 Key Usage: critical\n                Digital Signature\n"), "{text}");
    // The CRL: empty now; after RFC 7009 revocation by its owner it lists the certificate and
    // openssl refuses it.
    std::fs::write(dir.join("crl.pem"), call("GET", &format!("{base}/v1/crl"), None, None).1).unwrap();
    let (ok, out) = openssl(
        &dir,
        &["verify", "-attime", &at, "-crl_check", "-CRLfile", "crl.pem", "-CAfile", "bundle.pem", "svid.pem"],
    );
    assert!(ok, "{out}");
    let form = format!("token={}", urlencode(cert["secret"].as_str().unwrap()));
    let (status, _) =
        call("POST", &format!("{base}/v1/oauth/revoke"), Some(&op), Some(("application/x-www-form-urlencoded", &form)));
    assert_eq!(status, 200);
    std::fs::write(dir.join("crl.pem"), call("GET", &format!("{base}/v1/crl"), None, None).1).unwrap();
    let (ok, out) = openssl(
        &dir,
        &["verify", "-attime", &at, "-crl_check", "-CRLfile", "crl.pem", "-CAfile", "bundle.pem", "svid.pem"],
    );
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    // The worker verifies that revocation the same way and records it.
    c.run();
    let listed: Value =
        serde_json::from_str(&w.ok(&["creds", "list", "--identity", "service-registry:svc-pay", "--output", "json"]))
            .unwrap();
    let x = listed.as_array().unwrap().iter().find(|l| l["kind"] == "x509-svid").unwrap();
    assert_eq!(x["state"], "revocation-verified", "{x}");
}

fn base64_url(s: &str) -> Vec<u8> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import base64,sys; s=sys.argv[1]; sys.stdout.buffer.write(base64.urlsafe_b64decode(s + '=' * (-len(s) % 4)))", s])
        .output()
        .unwrap();
    out.stdout
}

fn psql(w: &World, user: &str, password: &str) -> (bool, String) {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &w.pg.port.to_string(),
            "-U",
            user,
            "-d",
            "postgres",
            "-w",
            "-c",
            "SELECT current_user",
        ])
        .env("PGPASSWORD", password)
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", stdout(&out), stderr(&out)))
}

#[test]
fn after_a_leaver_every_credential_is_inactive_at_once_the_login_fails_and_the_certificate_lists_each() {
    let w = World::new();
    // PostgreSQL enforces VALID UNTIL by its own (real) clock.
    let c = Clocked::at(&w, real_now());
    service(&w, &c, "svc-report");
    let base = c.serve(&w);
    let op = w.operator_token();
    let me = "service-registry:svc-report";

    let jwt = issued(&base, &op, json!({ "identity": me, "kind": "jwt-svid", "audience": ["reports"] }));
    let key =
        issued(&base, &op, json!({ "identity": me, "kind": "api-key", "ttl": "1d", "purpose": "nightly export" }));
    let login =
        issued(&base, &op, json!({ "identity": me, "kind": "postgres-login", "system": "analytics-db", "ttl": "30m" }));
    // An X.509-SVID through the CLI, from a CSR a workload made.
    let csr = w.file("svc-report.csr", &tenure_svid::x509::request(&tenure_svid::generate_key()).unwrap());
    let out = w.ok(&[
        "creds",
        "issue",
        "--identity",
        me,
        "--kind",
        "x509-svid",
        "--csr",
        csr.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let cert: Value = serde_json::from_str(&out).unwrap();
    assert!(cert["secret"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    let at = |v: &Value, k: &str| {
        time::OffsetDateTime::parse(v[k].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
    };
    assert_eq!(at(&jwt, "expires_at") - at(&jwt, "issued_at"), time::Duration::minutes(5), "the policy's default");
    let api_key = key["secret"].as_str().unwrap().to_owned();
    assert!(api_key.starts_with("tnk_"), "{api_key}");
    // The workload itself, with its API key, asks for a credential of its own (and of nobody else's).
    let own = issued(&base, &api_key, json!({ "kind": "jwt-svid", "audience": ["reports"], "ttl": "2m" }));
    assert_eq!(own["identity"], me);
    assert_eq!(own["issued_by"], format!("api:{me}"));
    assert_eq!(
        call("GET", &format!("{base}/v1/identities"), Some(&api_key), None).0,
        403,
        "a workload's key holds no role"
    );
    let (status, body) = issue(&base, &api_key, json!({ "identity": "service-registry:svc-other", "kind": "api-key" }));
    assert!(status == 403 || status == 422, "{status} {body}");

    // The dynamic login: a real role with VALID UNTIL, its password required and working.
    let user = login["username"].as_str().unwrap().to_owned();
    let password = login["secret"].as_str().unwrap().to_owned();
    let (ok, out) = psql(&w, &user, &password);
    assert!(ok, "{out}");
    assert!(out.contains(&user), "{out}");
    let (ok, out) = psql(&w, &user, "not-the-password");
    assert!(!ok && out.contains("password authentication failed"), "{out}");
    let (ok, until) = {
        let out = std::process::Command::new("psql")
            .args([
                &w.pg.url(),
                "-tAc",
                &format!("SELECT rolvaliduntil AT TIME ZONE 'UTC' FROM pg_roles WHERE rolname = '{user}'"),
            ])
            .output()
            .unwrap();
        (out.status.success(), stdout(&out))
    };
    let expected = at(&login, "expires_at").to_offset(time::UtcOffset::UTC);
    let expected =
        format!("{} {:02}:{:02}:{:02}", expected.date(), expected.hour(), expected.minute(), expected.second());
    assert!(ok && until.trim().starts_with(&expected), "VALID UNTIL the credential's expiry {expected}: {until}");

    let secrets = [
        jwt["secret"].as_str().unwrap(),
        api_key.as_str(),
        password.as_str(),
        own["secret"].as_str().unwrap(),
        cert["secret"].as_str().unwrap(),
    ];
    for s in secrets {
        assert_eq!(introspect(&base, &op, s)["active"], true, "{s}");
    }
    let i = introspect(&base, &op, jwt["secret"].as_str().unwrap());
    assert_eq!(i["sub"], "spiffe://quickstart.tenure.dev/service/service-registry/svc-report");
    assert_eq!(i["aud"], json!(["reports"]));
    // Introspection needs an authenticated caller with the authorizer (or admin) role.
    let form = format!("token={}", urlencode(&api_key));
    let url = format!("{base}/v1/oauth/introspect");
    assert_eq!(call("POST", &url, None, Some(("application/x-www-form-urlencoded", &form))).0, 401);
    assert_eq!(call("POST", &url, Some(&api_key), Some(("application/x-www-form-urlencoded", &form))).0, 403);

    // The leaver event: from its commit on, every credential is inactive, before any job ran.
    let left = format!(
        "[{}]",
        event("service-registry", "l-svc-report", "left", json!({ "external_id": "svc-report", "kind": "service" }))
    );
    let (status, body) = call("POST", &format!("{base}/v1/events"), Some(&op), Some(("application/json", &left)));
    assert_eq!(status, 200, "{body}");
    for s in secrets {
        assert_eq!(introspect(&base, &op, s), json!({ "active": false }), "{s}");
    }
    // The workload's key no longer authenticates; nothing more is issued to a leaver.
    assert_eq!(issue(&base, &api_key, json!({ "kind": "jwt-svid", "audience": ["reports"] })).0, 401);
    let (status, body) = issue(&base, &op, json!({ "identity": me, "kind": "api-key" }));
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("is leaving; credentials are issued to active identities only"), "{body}");
    // No certificate until the revocations are verified.
    let out = w.run(&["closure", "show", me]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("revoked, not yet verified"), "{}", stderr(&out));

    let metrics = call("GET", &format!("{base}/metrics"), Some(&op), None).1;
    assert!(metrics.contains("tenure_credentials{state=\"revoked\"} 5\n"), "{metrics}");
    assert!(metrics.contains("tenure_credentials{state=\"active\"} 0\n"), "{metrics}");

    // The worker drops the login and verifies each revocation; then the identity closes.
    c.run();
    let metrics = call("GET", &format!("{base}/metrics"), Some(&op), None).1;
    assert!(metrics.contains("tenure_credentials{state=\"revocation-verified\"} 5\n"), "{metrics}");
    let (ok, out) = psql(&w, &user, &password);
    assert!(!ok, "the dynamic login must fail after the leaver: {out}");
    let cert_path = w.tmp.path().join("svc-report.closure.json");
    w.ok(&["closure", "show", me, "--out", cert_path.to_str().unwrap()]);
    let key_file = w.file("ledger.pub", &w.ok(&["ledger", "key"]));
    let out = w.ok(&["closure", "verify", cert_path.to_str().unwrap(), "--key", key_file.to_str().unwrap()]);
    let closure: Value = serde_json::from_str(&std::fs::read_to_string(&cert_path).unwrap()).unwrap();
    let creds = closure["certificate"]["credentials"].as_array().unwrap();
    let ids: std::collections::BTreeSet<&str> = creds.iter().map(|c| c["credential"].as_str().unwrap()).collect();
    let expected: std::collections::BTreeSet<&str> =
        [&jwt, &key, &login, &own, &cert].iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, expected, "every credential of the leaver");
    for cl in creds {
        assert_eq!(cl["result"], "verified");
        assert!(
            out.contains(&format!("credential {}: revoked, verified unusable", cl["credential"].as_str().unwrap())),
            "{out}"
        );
        match cl["kind"].as_str().unwrap() {
            "postgres-login" => {
                assert_eq!(cl["method"], "postgres-login");
                assert_eq!(cl["check"]["read_back"]["present"], false);
                assert_eq!(cl["check"]["probe"]["result"], "refused", "{cl}");
            }
            "x509-svid" => {
                assert_eq!(cl["method"], "crl");
                assert_eq!(cl["check"]["crl_listed"], true, "{cl}");
                assert_eq!(cl["check"]["introspection"]["active"], false);
            }
            _ => {
                assert_eq!(cl["method"], "introspection");
                assert_eq!(cl["check"]["introspection"]["active"], false);
            }
        }
        assert_eq!(cl["reason"], "leaver");
        // Fingerprints only: the certificate carries the hash of each secret, never the secret.
        for s in secrets.iter().take(4) {
            assert!(!closure.to_string().contains(s));
        }
    }
    // The ledger alone rebuilds every credential's state; un-revoking one in the database
    // behind tenure's back shows up.
    let out = w.ok(&["ledger", "replay"]);
    assert!(out.contains("the database matches the ledger"), "{out}");
    let api_key_id = key["id"].as_str().unwrap();
    rusqlite::Connection::open(w.data_dir().join("tenure.db"))
        .unwrap()
        .execute("UPDATE credentials SET revoked_at = NULL, verified_at = NULL WHERE id = ?1", [api_key_id])
        .unwrap();
    let out = w.run(&["ledger", "replay"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!(
            "{me}: credential {api_key_id}: the ledger says revocation-verified, the database holds issued"
        )),
        "{}",
        stdout(&out)
    );
    // A claim altered after signing fails verification.
    let mut forged = closure.clone();
    forged["certificate"]["credentials"][0]["check"]["introspection"]["active"] = json!(true);
    let forged_path = w.file("forged.json", &forged.to_string());
    let out = w.run(&["closure", "verify", forged_path.to_str().unwrap(), "--key", key_file.to_str().unwrap()]);
    assert!(stdout(&out).contains("INVALID"), "{}", stdout(&out));
}

#[test]
fn policy_limits_what_is_issued_to_whom_and_for_how_long() {
    let w = World::new();
    let c = Clocked::new(&w);
    service(&w, &c, "svc-a");
    c.ingest(
        &[
            event("service-registry", "j-agent", "joined", nhi("bot", "agent", Some(OPERATOR), "2027-06-01T00:00:00Z")),
            event("hr", "j-e7", "joined", human("E7", "Grace", "sales")),
            event(
                "service-registry",
                "j-grace-svc",
                "joined",
                nhi("svc-grace", "service", Some("hr:E7"), "2027-06-01T00:00:00Z"),
            ),
        ]
        .join("\n"),
    );
    c.run();
    let base = c.serve(&w);
    let op = w.operator_token();
    let refused = |token: &str, body: Value, status: u16, says: &str| {
        let (got, v) = issue(&base, token, body.clone());
        assert_eq!(got, status, "{body}: {v}");
        assert!(v.to_string().contains(says), "{body}: expected `{says}` in {v}");
    };
    // Above the maximum: refused, naming the maximum.
    refused(
        &op,
        json!({ "identity": "service-registry:svc-a", "kind": "jwt-svid", "audience": ["x"], "ttl": "6m" }),
        403,
        "ttl 6m is above the policy's maximum of 5m",
    );
    refused(
        &op,
        json!({ "identity": "service-registry:svc-a", "kind": "x509-svid", "ttl": "2h", "csr": "-" }),
        403,
        "maximum of 1h",
    );
    // The smallest maximum wins: 30d by default, 1d for agents.
    refused(&op, json!({ "identity": "service-registry:bot", "kind": "api-key", "ttl": "2d" }), 403, "maximum of 1d");
    // Kinds policy does not allow for the identity's kind; people; bad input, named.
    refused(
        &op,
        json!({ "identity": "service-registry:bot", "kind": "x509-svid", "csr": "-" }),
        403,
        "does not allow x509-svid credentials for agent identities",
    );
    refused(&op, json!({ "identity": OPERATOR, "kind": "api-key" }), 422, "the broker issues to NHIs only");
    refused(&op, json!({ "identity": "service-registry:svc-a", "kind": "jwt-svid" }), 422, "audience");
    refused(&op, json!({ "identity": "service-registry:svc-a", "kind": "x509-svid", "csr": "not a csr" }), 422, "csr");
    refused(&op, json!({ "identity": "service-registry:svc-a", "kind": "password" }), 422, "kind");
    refused(&op, json!({ "identity": "service-registry:svc-a", "kind": "api-key", "ttl": "5 minutes" }), 422, "ttl");
    refused(
        &op,
        json!({ "identity": "service-registry:svc-a", "kind": "postgres-login", "system": "corp-directory" }),
        422,
        "dynamic logins are for postgres",
    );
    // Someone who is neither the NHI nor its owner.
    let grace = w.token("hr:E7", &["requester"]);
    refused(
        &grace,
        json!({ "identity": "service-registry:svc-a", "kind": "api-key" }),
        403,
        "only `service-registry:svc-a` itself or its owner",
    );
    // The owner may.
    let k = issued(&base, &grace, json!({ "identity": "service-registry:svc-grace", "kind": "api-key", "ttl": "30d" }));

    // A dynamic login ends at its expiry: the clock revokes it and the worker drops the role.
    let login = issued(
        &base,
        &op,
        json!({ "identity": "service-registry:svc-a", "kind": "postgres-login", "system": "analytics-db", "ttl": "10m" }),
    );
    let role = login["username"].as_str().unwrap().to_owned();
    let exists = |role: &str| {
        let out = std::process::Command::new("psql")
            .args([&w.pg.url(), "-tAc", &format!("SELECT count(*) FROM pg_roles WHERE rolname = '{role}'")])
            .output()
            .unwrap();
        stdout(&out).trim() == "1"
    };
    assert!(exists(&role));
    c.clock.advance(time::Duration::minutes(10));
    c.engine.tick().unwrap();
    c.run();
    assert!(!exists(&role), "the login is dropped at its expiry");
    let listed: Value =
        serde_json::from_str(&w.ok(&["creds", "list", "--identity", "service-registry:svc-a", "--output", "json"]))
            .unwrap();
    let l = listed.as_array().unwrap().iter().find(|l| l["id"] == login["id"]).unwrap();
    assert_eq!(
        (l["revoke_reason"].as_str(), l["state"].as_str()),
        (Some("expired"), Some("revocation-verified")),
        "{l}"
    );
    // The JWT signing key in use now; the clock replaces it after `signing_key_rotation` (24h).
    issued(&base, &op, json!({ "identity": "service-registry:svc-a", "kind": "jwt-svid", "audience": ["x"] }));
    let kids = |c: &Clocked| -> Vec<String> { c.engine.jwks().unwrap().keys.into_iter().map(|k| k.kid).collect() };
    let first = kids(&c);
    assert_eq!(first.len(), 1);

    // Grace leaves without a manager: her service waits for an owner, then is suspended by the
    // clock. Its credentials end at once and nothing more is issued to it.
    c.ingest(&event("hr", "l-e7", "left", json!({ "external_id": "E7", "kind": "human" })));
    // The departed owner may have seen its secrets: they end now, not at the deadline.
    assert_eq!(introspect(&base, &op, k["secret"].as_str().unwrap())["active"], false, "live while the NHI waits");
    c.clock.advance(time::Duration::days(15));
    c.engine.tick().unwrap();
    c.run();
    assert_eq!(introspect(&base, &op, k["secret"].as_str().unwrap())["active"], false);
    // 15 days on, the clock has replaced the signing key, and the old one, whose last token
    // expired long ago, is no longer published.
    let now = kids(&c);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, first, "the signing key rotated on schedule");
    let out =
        w.run(&["creds", "issue", "--identity", "service-registry:svc-grace", "--kind", "api-key", "--ttl", "1d"]);
    assert_eq!(out.status.code(), Some(5), "refused");
    assert!(
        stderr(&out).contains("is suspended; credentials are issued to active identities only"),
        "{}",
        stderr(&out)
    );
    let listed: Value =
        serde_json::from_str(&w.ok(&["creds", "list", "--identity", "service-registry:svc-grace", "--output", "json"]))
            .unwrap();
    assert_eq!(listed[0]["revoke_reason"], "owner-transfer", "revoked when the owner left, not at suspension");
    assert_eq!(listed[0]["state"], "revocation-verified");

    // An owner transfer forces rotation: the previous owner may have seen the secrets.
    let k2 = issued(&base, &op, json!({ "identity": "service-registry:svc-a", "kind": "api-key", "ttl": "1d" }));
    c.ingest(&event("hr", "j-e8", "joined", human("E8", "Hedy", "sales")));
    c.run();
    c.ingest(&event(
        "service-registry",
        "o-svc-a",
        "owner_changed",
        json!({ "external_id": "svc-a", "kind": "service", "owner": "hr:E8" }),
    ));
    assert_eq!(introspect(&base, &op, k2["secret"].as_str().unwrap())["active"], false);
    let listed: Value =
        serde_json::from_str(&w.ok(&["creds", "list", "--identity", "service-registry:svc-a", "--output", "json"]))
            .unwrap();
    assert_eq!(listed[0]["revoke_reason"], "owner-transfer", "{listed}");
    // The new owner asks for new ones; on demand, rotation gives a new key and revokes the old.
    let hedy = w.token("hr:E8", &["requester"]);
    let k3 = issued(&base, &hedy, json!({ "identity": "service-registry:svc-a", "kind": "api-key", "ttl": "1d" }));
    let (status, out) =
        call("POST", &format!("{base}/v1/credentials/{}/rotate", k3["id"].as_str().unwrap()), Some(&hedy), None);
    assert_eq!(status, 201, "{out}");
    let rotated: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rotated["replaces"], k3["id"]);
    assert_eq!(introspect(&base, &op, rotated["secret"].as_str().unwrap())["active"], true);
    assert_eq!(introspect(&base, &op, k3["secret"].as_str().unwrap())["active"], false);
}

#[test]
fn a_jwt_svid_for_another_audience_is_no_login_and_a_credential_mints_nothing_that_outlives_it() {
    let w = World::new();
    let c = Clocked::at(&w, real_now());
    service(&w, &c, "svc-aud");
    let base = c.serve(&w);
    let op = w.operator_token();
    let me = "service-registry:svc-aud";
    // Minted for `payments`: a relying party there accepts it, tenure does not.
    let foreign =
        issued(&base, &op, json!({ "identity": me, "kind": "jwt-svid", "audience": ["payments"], "ttl": "5m" }));
    let foreign = foreign["secret"].as_str().unwrap();
    let (status, body) = issue(&base, foreign, json!({ "kind": "api-key", "ttl": "7d" }));
    assert_eq!(status, 401, "{body}");
    // The discovery document names the configured issuer, whatever Host a client sends.
    let (_, text) = call("GET", &format!("{base}/.well-known/openid-configuration"), None, None);
    let conf: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(conf["issuer"], "spiffe://quickstart.tenure.dev", "{conf}");
    assert_eq!(conf["jwks_uri"], format!("{base}/.well-known/jwks.json"));
    let poisoned = std::process::Command::new("curl")
        .args(["-s", "-H", "Host: evil.example", &format!("{base}/.well-known/openid-configuration")])
        .output()
        .unwrap();
    assert!(!stdout(&poisoned).contains("evil.example"), "{}", stdout(&poisoned));
    // Minted for tenure (its issuer is the audience): a login, and the JWT carries `iss`.
    let own = issued(
        &base,
        &op,
        json!({ "identity": me, "kind": "jwt-svid", "audience": ["spiffe://quickstart.tenure.dev"], "ttl": "5m" }),
    );
    let own_token = own["secret"].as_str().unwrap();
    let (_, jwks) = call("GET", &format!("{base}/.well-known/jwks.json"), None, None);
    let keys: Value = serde_json::from_str(&jwks).unwrap();
    let claims = tenure_svid::jwt::verify(
        own_token,
        keys["keys"].as_array().unwrap(),
        real_now().unix_timestamp(),
        Some("spiffe://quickstart.tenure.dev"),
    )
    .unwrap();
    assert_eq!(claims["iss"], "spiffe://quickstart.tenure.dev");
    // What it mints never outlives it: a 7-day key asked for with a 5-minute token ends with it.
    let key = issued(&base, own_token, json!({ "kind": "api-key", "ttl": "7d" }));
    let at = |v: &Value| {
        time::OffsetDateTime::parse(v["expires_at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    assert!(at(&key) <= at(&own), "{key} outlives {own}");
    // A credential may rotate only itself, not the workload's other credentials.
    let real = issued(&base, &op, json!({ "identity": me, "kind": "api-key", "ttl": "1d" }));
    let (status, body) = call(
        "POST",
        &format!("{base}/v1/credentials/{}/rotate", real["id"].as_str().unwrap()),
        Some(own_token),
        Some(("application/json", "{}")),
    );
    assert_eq!(status, 403, "{body}");
    // A JWT-SVID with a valid fingerprint but a forged signature is refused too.
    let mut parts: Vec<&str> = own_token.split('.').collect();
    parts[2] = "AAAA";
    let (status, _) = issue(&base, &parts.join("."), json!({ "kind": "api-key" }));
    assert_eq!(status, 401);
}
