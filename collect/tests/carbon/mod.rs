//! A carbon plaintext receiver on 127.0.0.1 for the sender's tests (`collect/tests/sender.rs`)
//! and the relay's (`bins/tests/integration/relay.rs`): it keeps every complete line, in
//! arrival order, across restarts on the same port, and stops as carbon does.
#![allow(dead_code, unreachable_pub)]

use std::io::{ErrorKind, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A carbon plaintext receiver: complete lines, in arrival order, shared across restarts.
pub struct Carbon {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The lines so far (shared with the next receiver on the same port).
    pub lines: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Carbon {
    pub fn start() -> Carbon {
        Carbon::start_on("127.0.0.1:0".parse().unwrap(), Arc::default())
    }

    /// Listens on `addr` (the same port again after an outage), appending to `lines`.
    pub fn start_on(addr: SocketAddr, lines: Arc<Mutex<Vec<String>>>) -> Carbon {
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (lines, stop) = (Arc::clone(&lines), Arc::clone(&stop));
            std::thread::spawn(move || serve(listener, &lines, &stop))
        };
        Carbon { addr, lines, stop, thread: Some(thread) }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Starts an orderly outage: the listener closes at once (connects are refused), open
    /// connections get a FIN and are read until the sender closes them, as carbon does when
    /// it stops.
    pub fn begin_outage(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Waits for the outage to be complete (every connection drained).
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn serve(listener: TcpListener, lines: &Mutex<Vec<String>>, stop: &AtomicBool) {
    listener.set_nonblocking(true).unwrap();
    let mut conns: Vec<(TcpStream, Vec<u8>)> = Vec::new();
    let mut buf = [0u8; 65536];
    // Bounded: runs until `stop`, then at most 20 s of draining.
    let mut listener = Some(listener);
    let mut drain_until = None;
    loop {
        if stop.load(Ordering::SeqCst) && drain_until.is_none() {
            listener = None;
            for (c, _) in &conns {
                let _ = c.shutdown(Shutdown::Write);
            }
            drain_until = Some(Instant::now() + Duration::from_secs(20));
        }
        if drain_until.is_some_and(|d| Instant::now() > d)
            || (drain_until.is_some() && conns.is_empty())
        {
            return;
        }
        if let Some(l) = &listener {
            match l.accept() {
                Ok((c, _)) => {
                    c.set_nonblocking(true).unwrap();
                    conns.push((c, Vec::new()));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept: {e}"),
            }
        }
        let mut idle = true;
        conns.retain_mut(|(c, pending)| {
            loop {
                match c.read(&mut buf) {
                    Ok(0) => return false,
                    Ok(n) => {
                        idle = false;
                        pending.extend_from_slice(&buf[..n]);
                        let mut out = lines.lock().unwrap();
                        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=end).collect();
                            out.push(String::from_utf8(line[..end].to_vec()).unwrap());
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                    Err(_) => return false,
                }
            }
        });
        if idle {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
