//! A small HTTP/1.1 server on `std::net`: one thread per connection, keep-alive, bodies by
//! `Content-Length` or chunked, `Expect: 100-continue`. The simulator needs full control of the
//! connection (to drop it after a body, to stream an upload to disk), which is why it is not a
//! framework.

use crate::locked;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The longest request head (request line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// How long an idle keep-alive connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A parsed request head.
#[derive(Debug)]
pub(crate) struct Head {
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// A response to send.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a handler decided.
pub(crate) enum Outcome {
    /// Send the response; close the connection afterwards when `close` is set.
    Respond { response: Response, close: bool },
    /// Close the connection without answering (a fault).
    Drop,
}

/// Handles one request; `body` yields the request body and must be read (or not) before the
/// handler returns.
pub(crate) trait Handler: Send + Sync + 'static {
    fn handle(&self, head: &Head, body: &mut Body<'_>) -> Outcome;
}

/// A running server. Stopping closes the listener and every open connection.
pub(crate) struct Server {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<(u64, TcpStream)>>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(listener: TcpListener, handler: Arc<dyn Handler>) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<(u64, TcpStream)>>> = Arc::default();
        let threads: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let stop = stop.clone();
            let connections = connections.clone();
            let threads = threads.clone();
            std::thread::Builder::new()
                .name("sim-accept".into())
                .spawn(move || accept_loop(listener, handler, stop, connections, threads))?
        };
        Ok(Server {
            addr,
            stop,
            connections,
            threads,
            accept: Some(accept),
        })
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    pub fn stop(&mut self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the accept loop with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for (_, stream) in locked(&self.connections).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // A request being answered finishes first (a job it creates exists before stop returns).
        let threads: Vec<_> = locked(&self.threads).drain(..).collect();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<(u64, TcpStream)>>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(_) => {
                // Out of file handles, say: wait a little instead of spinning.
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            locked(&connections).push((id, clone));
        }
        let handler = handler.clone();
        let conns = connections.clone();
        let spawned = std::thread::Builder::new()
            .name("sim-conn".into())
            .spawn(move || {
                let _ = serve(stream, &*handler);
                locked(&conns).retain(|(i, _)| *i != id);
            });
        match spawned {
            Ok(thread) => {
                let mut threads = locked(&threads);
                threads.retain(|t| !t.is_finished());
                threads.push(thread);
            }
            // Out of threads: the connection went with the failed closure and is closed.
            Err(_) => locked(&connections).retain(|(i, _)| *i != id),
        }
    }
}

fn serve(stream: TcpStream, handler: &dyn Handler) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    loop {
        let head = match read_head(&mut reader) {
            Ok(Some(head)) => head,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let response = Response {
                    status: 400,
                    headers: vec![],
                    body: b"bad request\n".to_vec(),
                };
                let _ = write_response(&mut writer, &response, true);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let framing = match framing(&head) {
            Ok(f) => f,
            Err(_) => {
                let response = Response {
                    status: 400,
                    headers: vec![],
                    body: b"bad request framing\n".to_vec(),
                };
                let _ = write_response(&mut writer, &response, true);
                return Ok(());
            }
        };
        if head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let mut body = Body::new(&mut reader, framing);
        let outcome = handler.handle(&head, &mut body);
        match outcome {
            Outcome::Drop => {
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
            Outcome::Respond {
                response,
                mut close,
            } => {
                // A body the handler left unread is drained so the next request can follow, unless
                // it is large: then the connection is closed instead.
                if !close && body.drain(1 << 20).is_err() {
                    close = true;
                }
                close |= head.wants_close();
                write_response(&mut writer, &response, close)?;
                if close {
                    linger(&writer, reader.get_mut());
                    return Ok(());
                }
            }
        }
    }
}

/// Closes after an answer while the client may still be sending: stop writing, then read and
/// discard for a while, so that the client's unread bytes do not make the kernel reset the
/// connection and throw away the answer before the client reads it.
fn linger(writer: &TcpStream, reader: &mut TcpStream) {
    let _ = writer.shutdown(Shutdown::Write);
    let _ = reader.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 64 * 1024];
    while std::time::Instant::now() < deadline {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
            }
            Err(_) => break,
        }
    }
    let _ = reader.shutdown(Shutdown::Both);
}

/// Reads one whole request from a connection, its body at most `max_body` bytes: for the
/// simulator's own receiving side (postbacks in tests), with the server's parsing.
pub(crate) fn read_request(
    reader: &mut BufReader<TcpStream>,
    max_body: u64,
) -> io::Result<Option<(Head, Vec<u8>)>> {
    let Some(head) = read_head(reader)? else {
        return Ok(None);
    };
    let framing = framing(&head)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad request framing"))?;
    let mut body = Vec::new();
    Body::new(reader, framing)
        .take(max_body)
        .read_to_end(&mut body)?;
    Ok(Some((head, body)))
}

fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Head>> {
    // A request starts with a method's letters (after stray line ends). Anything else, such as
    // the TLS handshake of a client told https://, is refused at once instead of waited on for a
    // line end that never comes.
    let first = reader.fill_buf()?;
    if let Some(&b) = first.iter().find(|b| !matches!(b, b'\r' | b'\n')) {
        if !b.is_ascii_alphabetic() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not an HTTP request (TLS? the simulator speaks plain HTTP)",
            ));
        }
    }
    let mut raw = Vec::with_capacity(1024);
    loop {
        // Never more than the head's limit, whatever the client sends without a line end.
        let room = (MAX_HEAD + 1).saturating_sub(raw.len()) as u64;
        let n = reader.by_ref().take(room).read_until(b'\n', &mut raw)?;
        if n == 0 {
            return if raw.is_empty() {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated head",
                ))
            };
        }
        if raw == b"\r\n" || raw == b"\n" {
            // Stray blank lines between requests are allowed (RFC 9112 §2.2).
            raw.clear();
            continue;
        }
        if raw.ends_with(b"\r\n\r\n") || raw.ends_with(b"\n\n") {
            break;
        }
        if raw.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(&raw) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "bad head")),
    }
    let target = request.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Some(Head {
        method: request.method.unwrap_or("").to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers: request
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
    }))
}

#[derive(Debug, Clone, Copy)]
enum Framing {
    Length(u64),
    Chunked,
}

fn framing(head: &Head) -> Result<Framing, ()> {
    if let Some(te) = head.header("transfer-encoding") {
        return if te.trim().eq_ignore_ascii_case("chunked") {
            Ok(Framing::Chunked)
        } else {
            Err(())
        };
    }
    match head.header("content-length") {
        Some(v) => v.trim().parse().map(Framing::Length).map_err(|_| ()),
        None => Ok(Framing::Length(0)),
    }
}

/// A request body, read as it arrives.
pub(crate) struct Body<'a> {
    reader: &'a mut BufReader<TcpStream>,
    framing: Framing,
    /// Bytes left in the body (length framing) or in the current chunk (chunked).
    left: u64,
    done: bool,
    read: u64,
}

impl<'a> Body<'a> {
    fn new(reader: &'a mut BufReader<TcpStream>, framing: Framing) -> Body<'a> {
        let (left, done) = match framing {
            Framing::Length(n) => (n, n == 0),
            Framing::Chunked => (0, false),
        };
        Body {
            reader,
            framing,
            left,
            done,
            read: 0,
        }
    }

    /// The declared length, when the body has one.
    pub fn declared_len(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            Framing::Chunked => None,
        }
    }

    /// Bytes of body read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Reads the rest of the body to the end, up to `limit` bytes; an error past it.
    pub fn drain(&mut self, limit: u64) -> io::Result<u64> {
        let mut sink = io::sink();
        let n = io::copy(&mut self.by_ref().take(limit + 1), &mut sink)?;
        if !self.done {
            return Err(io::Error::other("body too long to drain"));
        }
        Ok(n)
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let mut line = Vec::new();
        // A chunk-size line (with extensions) is short; a longer one is not read whole.
        self.reader
            .by_ref()
            .take(1024)
            .read_until(b'\n', &mut line)?;
        let text = std::str::from_utf8(&line)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        let size = text.trim().split(';').next().unwrap_or("");
        let size = u64::from_str_radix(size.trim(), 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                line.clear();
                let n = self
                    .reader
                    .by_ref()
                    .take(MAX_HEAD as u64)
                    .read_until(b'\n', &mut line)?;
                if n == 0 || line == b"\r\n" || line == b"\n" {
                    break;
                }
            }
            self.done = true;
        }
        self.left = size;
        Ok(())
    }
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // Only chunked bodies get here with bytes still to come.
            if self.read > 0 {
                let mut crlf = [0u8; 2];
                self.reader.read_exact(&mut crlf)?;
            }
            self.next_chunk()?;
            if self.done {
                return Ok(0);
            }
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.reader.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed in the middle of the body",
            ));
        }
        self.left -= n as u64;
        self.read += n as u64;
        if self.left == 0 && matches!(self.framing, Framing::Length(_)) {
            self.done = true;
        }
        Ok(n)
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

pub(crate) fn write_response(
    w: &mut TcpStream,
    response: &Response,
    close: bool,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(256 + response.body.len());
    write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
        response.status,
        reason(response.status),
        response.body.len()
    )?;
    for (name, value) in &response.headers {
        write!(out, "{name}: {value}\r\n")?;
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&response.body);
    w.write_all(&out)?;
    w.flush()
}
