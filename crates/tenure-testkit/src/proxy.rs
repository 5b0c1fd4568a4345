//! A TCP relay on loopback that can be told to cut every connection after a number of bytes
//! from the server: how tests break a system's connection in the middle of a read.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// Relays `127.0.0.1:port` to an upstream port until dropped.
pub struct CutProxy {
    pub port: u16,
    /// Bytes from the server still let through; negative means no limit.
    budget: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
}

impl CutProxy {
    /// Relay to `upstream` on loopback, with no limit until [`CutProxy::cut_after`].
    pub fn start(upstream: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let budget = Arc::new(AtomicI64::new(-1));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s) = (budget.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                relay(client, server, b.clone());
            }
        });
        Ok(Self { port, budget, stop })
    }

    /// From now on, let `bytes` more bytes from the server through (over all connections),
    /// then close every connection that wants more.
    pub fn cut_after(&self, bytes: i64) {
        self.budget.store(bytes.max(0), Ordering::SeqCst);
    }

    /// Lift the limit.
    pub fn heal(&self) {
        self.budget.store(-1, Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn relay(client: TcpStream, server: TcpStream, budget: Arc<AtomicI64>) {
    // No Nagle delay on top of the peers' own: a relay should cost a hop, not 40 ms a request.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(mut c_read), Ok(mut s_write)) = (client.try_clone(), server.try_clone()) else { return };
    let (mut s_read, mut c_write) = (server, client);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut s_write);
        let _ = s_write.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let n = match s_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let left = budget.load(Ordering::SeqCst);
            let allowed = if left < 0 { n } else { n.min(usize::try_from(left).unwrap_or(0)) };
            if left >= 0 {
                budget.fetch_sub(i64::try_from(allowed).unwrap_or(0), Ordering::SeqCst);
            }
            if c_write.write_all(buf.get(..allowed).unwrap_or_default()).is_err() || allowed < n {
                break;
            }
        }
        let _ = c_write.shutdown(Shutdown::Both);
        let _ = s_read.shutdown(Shutdown::Both);
    });
}
