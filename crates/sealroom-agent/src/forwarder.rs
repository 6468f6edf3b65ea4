//! How the Enclave API crosses the sandbox boundary without any network.
//!
//! The sandbox has its own network namespace with nothing but loopback. The agent serves the
//! Enclave API (TLS and all) on a unix socket that is bound into the sandbox; inside it, the
//! sandbox's first process is `sealroom enclave-launch`, which listens on `127.0.0.1:5000` and
//! relays every connection, byte for byte, to that socket, then starts the algorithm's entrypoint
//! as its child and exits with its status. The algorithm sees `https://localhost:5000` as
//! EscrowAI's algorithms expect; nothing else is reachable, and the relay cannot read or change
//! the TLS stream it carries.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::thread;

/// Most connections relayed at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 256;

/// Relays TCP connections accepted on `listener` to the unix socket `socket`, forever.
pub fn relay(listener: TcpListener, socket: PathBuf) {
    let active = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(tcp) = conn else { continue };
        if active.load(std::sync::atomic::Ordering::Relaxed) >= MAX_CONNECTIONS {
            let _ = tcp.shutdown(Shutdown::Both);
            continue;
        }
        let socket = socket.clone();
        let active = active.clone();
        active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        thread::spawn(move || {
            let _ = pipe(tcp, &socket);
            active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        });
    }
}

/// Copies until the reader ends, with a buffer large enough for bulk downloads.
fn copy(from: &mut impl Read, to: &mut impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
    }
}

/// Copies both directions between a TCP connection and a new unix-socket connection.
fn pipe(tcp: TcpStream, socket: &Path) -> io::Result<()> {
    let unix = UnixStream::connect(socket)?;
    let (mut tcp_r, mut unix_w) = (tcp.try_clone()?, unix.try_clone()?);
    let up = thread::spawn(move || {
        let _ = copy(&mut tcp_r, &mut unix_w);
        let _ = unix_w.shutdown(Shutdown::Write);
    });
    let (mut unix_r, mut tcp_w) = (unix, tcp);
    let _ = copy(&mut unix_r, &mut tcp_w);
    let _ = tcp_w.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}

/// Listens on `listen`, relays to `socket` in the background, runs `program args` and returns
/// its exit status. The listener is bound before the program starts, so its first request finds
/// the API up.
pub fn launch(
    listen: SocketAddr,
    socket: &Path,
    program: &str,
    args: &[String],
) -> io::Result<ExitStatus> {
    let listener = TcpListener::bind(listen)?;
    let socket = socket.to_path_buf();
    thread::spawn(move || relay(listener, socket));
    Command::new(program).args(args).status()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn relays_both_directions() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("api.sock");
        let server = UnixListener::bind(&sock).unwrap();
        thread::spawn(move || {
            for conn in server.incoming() {
                let mut c = conn.unwrap();
                let mut buf = [0u8; 5];
                c.read_exact(&mut buf).unwrap();
                c.write_all(&buf.map(|b| b.to_ascii_uppercase())).unwrap();
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || relay(listener, sock));
        for _ in 0..3 {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"hello").unwrap();
            let mut back = [0u8; 5];
            c.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"HELLO");
        }
    }
}
