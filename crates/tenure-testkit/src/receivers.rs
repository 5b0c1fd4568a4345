//! Throwaway receivers for the notifications tenure sends, on loopback ports: a webhook
//! endpoint that checks every delivery with the Standard Webhooks reference library
//! (`standardwebhooks` from PyPI) and records it, and an SMTP server (`aiosmtpd` from PyPI)
//! delivering into a Maildir. Both run on the Python `scripts/install-deps` sets up in
//! `target/pyenv` (`$TENURE_PYTHON` names it).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error(
        "RC0001 no Python with aiosmtpd and standardwebhooks (looked at $TENURE_PYTHON and target/pyenv/bin/python); run scripts/install-deps"
    )]
    NotFound,
    #[error("RC0002 {0} did not start: {1}")]
    Start(&'static str, String),
}

fn python() -> Option<PathBuf> {
    let mut c: Vec<PathBuf> = std::env::var_os("TENURE_PYTHON").map(PathBuf::from).into_iter().collect();
    for up in ["", "..", "../.."] {
        c.push(PathBuf::from(up).join("target/pyenv/bin/python"));
    }
    c.into_iter().find(|p| {
        p.is_file()
            && Command::new(p)
                .args(["-c", "import aiosmtpd, standardwebhooks"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    })
}

fn free_port(what: &'static str) -> Result<u16, ReceiverError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| ReceiverError::Start(what, e.to_string()))
}

/// Start `args` and wait until `port` accepts connections.
fn spawn(what: &'static str, exe: &Path, args: &[&str], port: u16) -> Result<Child, ReceiverError> {
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| ReceiverError::Start(what, format!("{}: {e}", exe.display())))?;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ReceiverError::Start(what, format!("exited with {status}")));
        }
        #[expect(clippy::disallowed_methods, reason = "waiting for a server process, outside any clock")]
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(ReceiverError::Start(what, format!("port {port} never opened")))
}

const WEBHOOK: &str = r#"
import http.server, json, sys, threading
from standardwebhooks.webhooks import Webhook
secret, port, out, fail_first = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
hook = Webhook(secret)
seen = 0
# Concurrent deliveries: the count and the log line are one step, so the log's order is the
# order in which deliveries were answered (the first line is the first refused).
lock = threading.Lock()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global seen
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload, valid, error = hook.verify(body, headers), True, None
        except Exception as e:
            payload, valid, error = body.decode("utf-8", "replace"), False, str(e)
        with lock:
            seen += 1
            status = 503 if seen <= fail_first else 204
            with open(out, "a") as f:
                f.write(json.dumps({"id": headers.get("webhook-id"), "valid": valid, "error": error,
                                    "status": status, "body": payload}) + "\n")
        self.send_response(status)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

/// A webhook endpoint checking each delivery's signature with the reference library.
pub struct LocalWebhook {
    child: Child,
    pub port: u16,
    /// The Standard Webhooks secret it verifies with (`whsec_…`).
    pub secret: String,
    log: PathBuf,
}

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its `webhook-id`.
    pub id: String,
    /// Whether the signature verified (and the timestamp was within the library's tolerance).
    pub valid: bool,
    pub error: Option<String>,
    /// What the receiver answered.
    pub status: u16,
    /// The notice (parsed JSON when valid).
    pub body: serde_json::Value,
}

impl LocalWebhook {
    /// Start it in `dir`; it answers 503 to the first `fail_first` deliveries, 204 after.
    pub fn start(dir: &Path, fail_first: u32) -> Result<Self, ReceiverError> {
        let exe = python().ok_or(ReceiverError::NotFound)?;
        let script = dir.join("webhook-receiver.py");
        std::fs::write(&script, WEBHOOK).map_err(|e| ReceiverError::Start("the webhook receiver", e.to_string()))?;
        let log = dir.join("webhook-deliveries.jsonl");
        let secret = format!("whsec_{}", STANDARD.encode(rand::random::<[u8; 32]>()));
        let port = free_port("the webhook receiver")?;
        let args = [
            script.to_str().unwrap_or_default(),
            &secret,
            &port.to_string(),
            log.to_str().unwrap_or_default(),
            &fail_first.to_string(),
        ];
        let child = spawn("the webhook receiver", &exe, &args, port)?;
        Ok(Self { child, port, secret, log })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/tenure", self.port)
    }

    /// Every delivery so far, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| Delivery {
                id: v.get("id").and_then(|x| x.as_str()).unwrap_or_default().to_owned(),
                valid: v.get("valid").and_then(serde_json::Value::as_bool).unwrap_or(false),
                error: v.get("error").and_then(|x| x.as_str()).map(str::to_owned),
                status: v
                    .get("status")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(0),
                body: v.get("body").cloned().unwrap_or_default(),
            })
            .collect()
    }
}

impl Drop for LocalWebhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SMTP server (aiosmtpd) delivering every message into a Maildir.
pub struct LocalSmtp {
    child: Child,
    pub port: u16,
    maildir: PathBuf,
}

/// One message as delivered.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub body: String,
}

impl LocalSmtp {
    pub fn start(dir: &Path) -> Result<Self, ReceiverError> {
        let exe = python().ok_or(ReceiverError::NotFound)?;
        let maildir = dir.join("maildir");
        let port = free_port("aiosmtpd")?;
        let listen = format!("127.0.0.1:{port}");
        let args = [
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &listen,
            "-c",
            "aiosmtpd.handlers.Mailbox",
            maildir.to_str().unwrap_or_default(),
        ];
        let child = spawn("aiosmtpd", &exe, &args, port)?;
        Ok(Self { child, port, maildir })
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message delivered so far (headers unfolded; the body as sent).
    pub fn messages(&self) -> Vec<Mail> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(dir) = std::fs::read_dir(self.maildir.join(sub)) else { continue };
            let mut files: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for f in files {
                let Ok(raw) = std::fs::read_to_string(&f) else { continue };
                let raw = raw.replace("\r\n", "\n");
                let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
                let head = head.replace("\n ", " ").replace("\n\t", " ");
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                        })
                        .unwrap_or_default()
                };
                let body = if header("Content-Transfer-Encoding").eq_ignore_ascii_case("quoted-printable") {
                    quoted_printable(body)
                } else {
                    body.to_owned()
                };
                out.push(Mail { to: header("To"), subject: header("Subject"), message_id: header("Message-ID"), body });
            }
        }
        out
    }
}

impl Drop for LocalSmtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A quoted-printable body (RFC 2045 6.7) decoded: soft line breaks joined, `=XX` as bytes.
fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'=', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
