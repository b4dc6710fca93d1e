//! A client of the documented JSON wire protocol, written from the spec
//! (section 5) alone, without `nfy-core`'s codecs: it proves that the
//! servers speak the protocol as documented, not merely as our own
//! library speaks it.
//!
//! A frame is `00 4E 46 59`, a big-endian u32 size (4 + body length), a
//! big-endian u32 message id (0 for JSON) and a UTF-8 JSON object body.
//! Client → server: `register` (`to`, `notification`, `priority`),
//! `unregister` (`to`, `notification`), `notify` (`from`, `to`,
//! `notification`, `flags`, `reference`, `parameter`). Server → client:
//! `notify` and `unicast_error`, same members as notify.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::DEADLINE;

/// The frame prefix, `"\0NFY"`.
pub const PREFIX: [u8; 4] = [0x00, 0x4E, 0x46, 0x59];

/// Prefix, size and message id.
pub const HEADER_LEN: usize = 12;

/// The notification a [`RawClient`] uses for its round trips
/// ([`RawClient::sync`]).
pub const SYNC_NOTIFICATION: &str = "conformance.sync";

/// A frame with message id `msg_id` around `body`.
pub fn frame_with_id(msg_id: u32, body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(body.len() + 4).expect("body too large for a frame");
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&PREFIX);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&msg_id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A JSON frame (message id 0) around `body`.
pub fn frame(body: &[u8]) -> Vec<u8> {
    frame_with_id(0, body)
}

/// A `register` body.
pub fn register_msg(to: &str, notification: &str, priority: i32) -> Value {
    json!({"type": "register", "to": to, "notification": notification, "priority": priority})
}

/// An `unregister` body.
pub fn unregister_msg(to: &str, notification: &str) -> Value {
    json!({"type": "unregister", "to": to, "notification": notification})
}

/// A `notify` body (no `reference`: it is optional on input).
pub fn notify_msg(from: &str, to: &str, notification: &str, flags: u32, parameter: Value) -> Value {
    json!({
        "type": "notify", "from": from, "to": to, "notification": notification,
        "flags": flags, "parameter": parameter,
    })
}

/// A JSON body whose whole frame body is exactly `body_len` bytes long:
/// a notify whose parameter is a string padded to fit.
pub fn notify_of_body_len(from: &str, to: &str, notification: &str, body_len: usize) -> Vec<u8> {
    let empty = notify_msg(from, to, notification, 0, json!("")).to_string();
    let pad = body_len
        .checked_sub(empty.len())
        .expect("body_len too small for a notify");
    let body = notify_msg(from, to, notification, 0, json!("x".repeat(pad))).to_string();
    assert_eq!(body.len(), body_len);
    body.into_bytes()
}

/// A socket to a server, Unix or TCP.
#[derive(Debug)]
pub enum Stream {
    /// The Unix-domain socket.
    Unix(UnixStream),
    /// TCP.
    Tcp(TcpStream),
}

impl Stream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.write_all(buf),
            Stream::Tcp(s) => s.write_all(buf),
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }
}

/// What [`RawClient::recv_frame`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A frame: its message id and body.
    Frame {
        /// The message id field.
        msg_id: u32,
        /// The body.
        body: Vec<u8>,
    },
    /// Nothing within the timeout.
    Nothing,
    /// The server closed the connection (end of stream or reset).
    Closed,
}

/// A client of the JSON protocol over one connection.
#[derive(Debug)]
pub struct RawClient {
    stream: Stream,
    buf: Vec<u8>,
    sync_counter: u64,
    sync_app: Option<String>,
}

impl RawClient {
    /// Connects to the Unix socket.
    pub fn unix(path: &Path) -> io::Result<RawClient> {
        Ok(Self::new(Stream::Unix(UnixStream::connect(path)?)))
    }

    /// Connects over TCP.
    pub fn tcp(addr: SocketAddr) -> io::Result<RawClient> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Self::new(Stream::Tcp(s)))
    }

    /// Wraps a connected stream.
    pub fn new(stream: Stream) -> RawClient {
        RawClient {
            stream,
            buf: Vec::new(),
            sync_counter: 0,
            sync_app: None,
        }
    }

    /// Sends raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends one JSON message as a frame.
    pub fn send(&mut self, value: &Value) -> io::Result<()> {
        self.send_bytes(&frame(value.to_string().as_bytes()))
    }

    /// Sends `register`.
    pub fn register(&mut self, to: &str, notification: &str, priority: i32) {
        self.send(&register_msg(to, notification, priority))
            .expect("send register");
    }

    /// Sends `unregister`.
    pub fn unregister(&mut self, to: &str, notification: &str) {
        self.send(&unregister_msg(to, notification))
            .expect("send unregister");
    }

    /// Sends `notify`.
    pub fn notify(&mut self, from: &str, to: &str, notification: &str, flags: u32, param: Value) {
        self.send(&notify_msg(from, to, notification, flags, param))
            .expect("send notify");
    }

    /// Closes the sending side (the server sees the end of the stream).
    pub fn shutdown_write(&self) {
        self.stream.shutdown_write().expect("shutdown");
    }

    /// The next frame within `timeout`. Checks the header as the spec
    /// defines it: prefix, size = 4 + body length (a frame never claims
    /// less than its message id).
    pub fn recv_frame(&mut self, timeout: Duration) -> Received {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if self.buf.len() >= HEADER_LEN {
                assert_eq!(self.buf[..4], PREFIX, "the server sent a bad prefix");
                let size = u32::from_be_bytes(self.buf[4..8].try_into().unwrap()) as usize;
                assert!(size >= 4, "the server sent a frame of size {size}");
                if self.buf.len() >= 8 + size {
                    let msg_id = u32::from_be_bytes(self.buf[8..12].try_into().unwrap());
                    let body = self.buf[12..8 + size].to_vec();
                    self.buf.drain(..8 + size);
                    return Received::Frame { msg_id, body };
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Received::Nothing;
            }
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            match self.stream.read(&mut chunk) {
                Ok(0) => return Received::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Received::Nothing
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                    ) =>
                {
                    return Received::Closed
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// The next JSON message within `timeout`, or `None`. Panics when the
    /// server closed the connection or sent a frame that is not a JSON
    /// object with message id 0.
    pub fn recv(&mut self, timeout: Duration) -> Option<Value> {
        match self.recv_frame(timeout) {
            Received::Frame { msg_id, body } => {
                assert_eq!(msg_id, 0, "a JSON client must get message id 0");
                let v: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
                    panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&body))
                });
                assert!(v.is_object(), "not a JSON object: {v}");
                Some(v)
            }
            Received::Nothing => None,
            Received::Closed => panic!("the server closed the connection"),
        }
    }

    /// The next message, skipping the replies of [`RawClient::sync`];
    /// panics after [`DEADLINE`].
    pub fn expect_message(&mut self) -> Value {
        loop {
            let v = self
                .recv(DEADLINE)
                .expect("no message from the server in time");
            if v["notification"] != SYNC_NOTIFICATION {
                return v;
            }
        }
    }

    /// Returns once the server has handled everything this connection
    /// sent before: sends a notify to itself on [`SYNC_NOTIFICATION`] and
    /// waits for it. Messages received meanwhile are returned, in order.
    /// The first call registers `app` for the round trips.
    pub fn sync(&mut self, app: &str) -> Vec<Value> {
        if self.sync_app.as_deref() != Some(app) {
            self.register(app, SYNC_NOTIFICATION, i32::MAX);
            self.sync_app = Some(app.to_owned());
        }
        self.sync_counter += 1;
        let nonce = self.sync_counter;
        self.notify(app, app, SYNC_NOTIFICATION, 0, json!({ "sync": nonce }));
        let mut other = Vec::new();
        loop {
            let v = self.recv(DEADLINE).expect("no sync reply in time");
            if v["notification"] == SYNC_NOTIFICATION && v["parameter"]["sync"] == nonce {
                return other;
            }
            if v["notification"] != SYNC_NOTIFICATION {
                other.push(v);
            }
        }
    }

    /// True when the server closes this connection within `timeout`.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.recv_frame(deadline.saturating_duration_since(Instant::now())) {
                Received::Closed => return true,
                Received::Nothing => return false,
                Received::Frame { .. } => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_frame() {
        // Spec 5.2: the register example, byte for byte.
        let body = br#"{"notification":"test","priority":1,"to":"xyz","type":"register"}"#;
        assert_eq!(body.len(), 65);
        assert_eq!(
            frame(body)[..12],
            [0x00, 0x4E, 0x46, 0x59, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x00, 0x00]
        );
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v, register_msg("xyz", "test", 1));
    }

    #[test]
    fn padded_bodies_have_the_asked_length() {
        for len in [200, 1024, 8192, 8193, 65536] {
            let body = notify_of_body_len("a", "b", "n", len);
            assert_eq!(body.len(), len);
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["type"], "notify");
        }
    }
}
