//! A client of the documented JSON wire protocol, written from the spec
//! (section 5) alone, without `nfy-core`'s codecs: it checks the servers
//! against the protocol as documented, not against our own
//! implementation of it.
//!
//! A frame is `00 4E 46 59`, a big-endian u32 size (4 + body length), a
//! big-endian u32 message id (0 for JSON) and a UTF-8 JSON object body.
//! Client → server: `register` (`to`, `notification`, `priority`),
//! `unregister` (`to`, `notification`), `notify` (`from`, `to`,
//! `notification`, `flags`, `reference`, `parameter`). Server → client:
//! `notify` and `unicast_error`, same members as notify.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::DEADLINE;

#[cfg(test)]
mod tests;

/// The frame prefix, `"\0NFY"`.
pub const PREFIX: [u8; 4] = [0x00, 0x4E, 0x46, 0x59];

/// Bytes before the body: prefix, size, message id.
pub const HEADER_LEN: usize = 12;

/// The notification [`JsonClient::sync`] uses for its round trips.
pub const SYNC_NOTIFICATION: &str = "conformance.sync";

/// A frame with message id `msg_id` around `body`.
pub fn frame_with_id(msg_id: u32, body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(4 + body.len()).expect("body too large for a frame");
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

/// A JSON frame holding `value`.
pub fn json_frame(value: &Value) -> Vec<u8> {
    frame(value.to_string().as_bytes())
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
        "type": "notify",
        "from": from,
        "to": to,
        "notification": notification,
        "flags": flags,
        "parameter": parameter,
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

/// True when `e` means the peer closed the connection (end of stream,
/// reset, broken pipe).
pub fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

/// A frame read back from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The message id field.
    pub msg_id: u32,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl RawFrame {
    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "server sent a non-JSON body ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Splits a byte stream into frames. Strict: the server must never send
/// anything but well-formed frames, so a bad prefix, or a size smaller
/// than the message id, is an error here.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<RawFrame>, String> {
        let b = &self.buf;
        if b.len() < HEADER_LEN {
            return Ok(None);
        }
        if b[..4] != PREFIX {
            return Err(format!("bad frame prefix {:02x?}", &b[..4]));
        }
        let size = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        if size < 4 {
            return Err(format!("bad frame size {size}"));
        }
        let total = 8 + size;
        if b.len() < total {
            return Ok(None);
        }
        let msg_id = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
        let body = b[HEADER_LEN..total].to_vec();
        self.buf.drain(..total);
        Ok(Some(RawFrame { msg_id, body }))
    }

    /// Bytes buffered but not yet a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// A stream to a server, Unix, TCP or TLS over TCP.
#[derive(Debug)]
pub enum Stream {
    /// Over the Unix-domain socket.
    Unix(UnixStream),
    /// Over TCP.
    Tcp(TcpStream),
    /// Over TLS (blocking rustls on the TCP stream). A fatal alert from
    /// the server reads as `ConnectionReset`: the server ended the
    /// connection ([`is_closed`]).
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Tls(s) => s.sock.set_read_timeout(t),
        }
    }

    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Tls(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a TLS stream has one handle",
                ))
            }
        })
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Tls(s) => s.sock.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf).map_err(|e| {
                let alert = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .is_some_and(|r| matches!(r, rustls::Error::AlertReceived(_)));
                if alert {
                    io::Error::new(io::ErrorKind::ConnectionReset, e)
                } else {
                    e
                }
            }),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tls(s) => s.flush(),
            Stream::Unix(_) | Stream::Tcp(_) => Ok(()),
        }
    }
}

/// A client speaking the documented JSON protocol, frame by frame.
///
/// Sending and receiving return I/O errors (the server closing the
/// connection is an error of a kind [`is_closed`] accepts); the round-trip
/// helpers ([`JsonClient::barrier`], [`JsonClient::sync`],
/// [`JsonClient::expect_message`]) are test assertions and panic when the
/// server does not answer within [`DEADLINE`].
#[derive(Debug)]
pub struct JsonClient {
    stream: Stream,
    reader: FrameReader,
    /// The app [`JsonClient::sync`] registered for its round trips.
    sync_app: Option<String>,
    /// The number of the last [`JsonClient::sync`] round trip.
    sync_counter: u64,
}

impl JsonClient {
    /// Connects over the Unix socket.
    pub fn unix(path: &Path) -> io::Result<JsonClient> {
        Ok(JsonClient::new(Stream::Unix(UnixStream::connect(path)?)))
    }

    /// Connects over TCP (with `TCP_NODELAY`).
    pub fn tcp(addr: SocketAddr) -> io::Result<JsonClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(JsonClient::new(Stream::Tcp(stream)))
    }

    /// Wraps a connected TCP stream (e.g. one made inside a network
    /// namespace), setting `TCP_NODELAY` when it can.
    pub fn from_tcp(stream: TcpStream) -> JsonClient {
        let _ = stream.set_nodelay(true);
        JsonClient::new(Stream::Tcp(stream))
    }

    /// Wraps a connected TCP stream in TLS (`config`, the server's name
    /// `server_name`: an IP address or a DNS name) and completes the
    /// handshake, waiting at most [`DEADLINE`]. An error when the server
    /// refuses it during the handshake; with TLS 1.3 a refused client
    /// certificate shows only at the first read (the connection reads as
    /// closed, [`is_closed`]).
    pub fn tls(
        stream: TcpStream,
        config: std::sync::Arc<rustls::ClientConfig>,
        server_name: &str,
    ) -> io::Result<JsonClient> {
        let _ = stream.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, stream);
        tls.sock.set_read_timeout(Some(DEADLINE))?;
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        tls.flush()?;
        Ok(JsonClient::new(Stream::Tls(Box::new(tls))))
    }

    /// Wraps a connected Unix stream (e.g. one end of a relay).
    pub fn from_unix(stream: UnixStream) -> JsonClient {
        JsonClient::new(Stream::Unix(stream))
    }

    /// Wraps a connected stream as it is.
    pub fn new(stream: Stream) -> JsonClient {
        JsonClient {
            stream,
            reader: FrameReader::default(),
            sync_app: None,
            sync_counter: 0,
        }
    }

    /// A second handle on the same connection with its own frame buffer:
    /// one thread may write through one while another reads the other.
    pub fn try_clone(&self) -> io::Result<JsonClient> {
        Ok(JsonClient::new(self.stream.try_clone()?))
    }

    /// Shuts down the writing side (half-close: the server sees the end of
    /// the stream); reading goes on.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends one JSON message as a frame.
    pub fn send(&mut self, value: &Value) -> io::Result<()> {
        self.send_raw(&json_frame(value))
    }

    /// Sends `register`.
    pub fn register(&mut self, to: &str, notification: &str, priority: i32) -> io::Result<()> {
        self.send(&register_msg(to, notification, priority))
    }

    /// Sends `unregister`.
    pub fn unregister(&mut self, to: &str, notification: &str) -> io::Result<()> {
        self.send(&unregister_msg(to, notification))
    }

    /// Sends `notify`.
    pub fn notify(
        &mut self,
        from: &str,
        to: &str,
        notification: &str,
        flags: u32,
        parameter: Value,
    ) -> io::Result<()> {
        self.send(&notify_msg(from, to, notification, flags, parameter))
    }

    /// The next frame within `timeout`; `Ok(None)` on timeout, an error of
    /// kind `UnexpectedEof` when the server closed the connection (others
    /// [`is_closed`] accepts on a reset), `InvalidData` on a frame the
    /// spec does not allow (bad prefix, size below 4).
    pub fn recv_frame(&mut self, timeout: Duration) -> io::Result<Option<RawFrame>> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 64 * 1024];
        loop {
            if let Some(frame) = self
                .reader
                .next_frame()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                return Ok(Some(frame));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("server closed ({} bytes pending)", self.reader.buffered()),
                    ))
                }
                Ok(n) => self.reader.push(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next message as JSON within `timeout` (`Ok(None)` on timeout).
    /// A frame with a message id other than 0 or a body that is not a
    /// JSON object is an `InvalidData` error: a JSON client gets neither.
    pub fn recv(&mut self, timeout: Duration) -> io::Result<Option<Value>> {
        let Some(frame) = self.recv_frame(timeout)? else {
            return Ok(None);
        };
        let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        if frame.msg_id != 0 {
            return Err(invalid(format!(
                "a JSON client got message id {}",
                frame.msg_id
            )));
        }
        let v: Value = serde_json::from_slice(&frame.body).map_err(|e| {
            invalid(format!(
                "not JSON ({e}): {:?}",
                String::from_utf8_lossy(&frame.body)
            ))
        })?;
        if !v.is_object() {
            return Err(invalid(format!("not a JSON object: {v}")));
        }
        Ok(Some(v))
    }

    /// The next message whose `type` is `kind`, skipping others.
    pub fn recv_type(&mut self, kind: &str, timeout: Duration) -> io::Result<Option<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left)? {
                None => return Ok(None),
                Some(v) if v["type"] == kind => return Ok(Some(v)),
                Some(_) => {}
            }
        }
    }

    /// A barrier: registers `app` for a notification private to this
    /// call and sends one to itself; returns once it came back, with every
    /// message received before it. Everything this connection sent earlier
    /// has then been handled by the server (one connection's frames are
    /// handled in order). `app` must be a valid app ID this connection may
    /// use; the registration is removed again.
    pub fn barrier(&mut self, app: &str) -> Vec<Value> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = format!("barrier-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.register(app, &id, i32::MAX).unwrap();
        self.notify(app, app, &id, 0, json!({})).unwrap();
        let deadline = Instant::now() + DEADLINE;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).unwrap() {
                None => panic!("barrier {id} timed out; got before it: {before:?}"),
                Some(v) if v["type"] == "notify" && v["notification"] == id.as_str() => break,
                Some(v) => before.push(v),
            }
        }
        self.unregister(app, &id).unwrap();
        before
    }

    /// Returns once the server has handled everything this connection
    /// sent before: sends a notify to itself on [`SYNC_NOTIFICATION`] and
    /// waits for it. Messages received meanwhile are returned, in order.
    /// Unlike [`JsonClient::barrier`], the registration stays: the first
    /// call registers `app` for the round trips (again when `app`
    /// changes); [`JsonClient::expect_message`] skips their replies.
    pub fn sync(&mut self, app: &str) -> Vec<Value> {
        if self.sync_app.as_deref() != Some(app) {
            self.register(app, SYNC_NOTIFICATION, i32::MAX).unwrap();
            self.sync_app = Some(app.to_owned());
        }
        self.sync_counter += 1;
        let nonce = self.sync_counter;
        self.notify(app, app, SYNC_NOTIFICATION, 0, json!({ "sync": nonce }))
            .unwrap();
        let mut other = Vec::new();
        loop {
            let v = self.recv(DEADLINE).unwrap().expect("no sync reply in time");
            if v["notification"] == SYNC_NOTIFICATION && v["parameter"]["sync"] == nonce {
                return other;
            }
            if v["notification"] != SYNC_NOTIFICATION {
                other.push(v);
            }
        }
    }

    /// The next message, skipping the replies of [`JsonClient::sync`];
    /// panics after [`DEADLINE`] or when the connection fails.
    pub fn expect_message(&mut self) -> Value {
        loop {
            let v = self
                .recv(DEADLINE)
                .unwrap()
                .expect("no message from the server in time");
            if v["notification"] != SYNC_NOTIFICATION {
                return v;
            }
        }
    }

    /// Asserts that nothing arrives for `quiet`.
    pub fn expect_nothing(&mut self, quiet: Duration) {
        if let Some(v) = self.recv(quiet).expect("connection failed") {
            panic!("expected nothing, got {v}");
        }
    }

    /// True when the server closed this connection within `timeout`
    /// before sending anything more (a frame first: false).
    pub fn closed_by_server(&mut self, timeout: Duration) -> bool {
        match self.recv_frame(timeout) {
            Err(e) => is_closed(&e),
            Ok(_) => false,
        }
    }

    /// True when the server closed this connection within `timeout`,
    /// whatever frames came before. Panics on any other error.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.recv_frame(deadline.saturating_duration_since(Instant::now())) {
                Err(e) if is_closed(&e) => return true,
                Err(e) => panic!("read failed: {e}"),
                Ok(None) => return false,
                Ok(Some(_)) => {}
            }
        }
    }
}
