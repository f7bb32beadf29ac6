//! Integration tests of the simulator: a real server on loopback, driven over HTTP by a small
//! signed client written here (the uploader crate must not be a dependency of the simulator).

mod auth;
mod faults;
mod jobs;
mod lists;
mod state;

use sailbulk_sim::{sign, Sim, SimBuilder};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub const KEY: &str = "test-key";
pub const SECRET: &str = "test-secret";

pub fn builder() -> SimBuilder {
    Sim::builder().api_key(KEY).api_secret(SECRET)
}

pub fn start() -> Sim {
    builder().start().unwrap()
}

/// An answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The API error code, if the body is an error.
    pub fn error(&self) -> Option<u64> {
        self.body.get("error").and_then(Value::as_u64)
    }

    pub fn message(&self) -> &str {
        self.body
            .get("errormsg")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// Asserts an error answer: HTTP status, code, and that the body holds just the two keys.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: u64) -> &str {
        assert_eq!(
            (self.status, self.error()),
            (status, Some(code)),
            "{:?}",
            self.body
        );
        assert_eq!(self.body.as_object().unwrap().len(), 2, "{:?}", self.body);
        self.message()
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{:?}", self.body);
        assert!(self.error().is_none(), "{:?}", self.body);
        &self.body
    }
}

/// Percent-encodes a form or query value.
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The four parameters of a json-mode call, signed with `secret`.
pub fn signed(json_text: &str, secret: &str) -> Vec<(String, String)> {
    let sig = sign(secret, [KEY, "json", json_text]);
    vec![
        ("api_key".into(), KEY.into()),
        ("format".into(), "json".into()),
        ("json".into(), json_text.into()),
        ("sig".into(), sig),
    ]
}

pub fn form(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Sends raw request bytes and reads one answer. `None` when the server closed the connection
/// without answering.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> Option<Reply> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    // The server may refuse before reading everything; a write error then is expected.
    let _ = stream.write_all(request);
    read_reply(&mut BufReader::new(stream))
}

pub fn read_reply(reader: &mut impl BufRead) -> Option<Reply> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut raw = vec![0; len];
    reader.read_exact(&mut raw).ok()?;
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Some(Reply {
        status,
        headers,
        body,
        raw,
    })
}

/// A signed json-mode call: GET and DELETE in the query string, POST as a form.
pub fn call(sim: &Sim, method: &str, path: &str, params: &Value) -> Reply {
    call_with(sim, method, path, &params.to_string(), SECRET)
}

pub fn call_with(sim: &Sim, method: &str, path: &str, json_text: &str, secret: &str) -> Reply {
    let pairs = signed(json_text, secret);
    let request = match method {
        "POST" => {
            let body = form(&pairs);
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        _ => format!(
            "{method} {path}?{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            form(&pairs)
        ),
    };
    exchange(sim.addr(), request.as_bytes()).expect("an answer")
}

/// Streams a multipart upload: the four parameters, then `file` from `data` (`len` bytes).
pub fn upload(
    sim: &Sim,
    params: &Value,
    filename: &str,
    data: impl Read,
    len: u64,
) -> Option<Reply> {
    upload_to(sim.addr(), &params.to_string(), SECRET, filename, data, len)
}

/// As [`upload`], for a file held in memory.
pub fn upload_bytes(sim: &Sim, params: &Value, filename: &str, data: &[u8]) -> Option<Reply> {
    upload(sim, params, filename, data, data.len() as u64)
}

pub fn upload_to(
    addr: SocketAddr,
    json_text: &str,
    secret: &str,
    filename: &str,
    mut data: impl Read,
    len: u64,
) -> Option<Reply> {
    let boundary = "----sailbulk-test-boundary-7MA4YWxk";
    let mut head = Vec::new();
    for (k, v) in signed(json_text, secret) {
        write!(
            head,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        )
        .unwrap();
    }
    write!(
        head,
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .unwrap();
    let tail = format!("\r\n--{boundary}--\r\n");
    let total = head.len() as u64 + len + tail.len() as u64;
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let request_head = format!(
        "POST /job HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
    );
    let sent = (|| -> std::io::Result<()> {
        stream.write_all(request_head.as_bytes())?;
        stream.write_all(&head)?;
        std::io::copy(&mut data, &mut stream)?;
        stream.write_all(tail.as_bytes())
    })();
    let reply = read_reply(&mut BufReader::new(stream));
    if reply.is_none() {
        sent.ok()?;
    }
    reply
}

/// Submits a job and waits for it to end; returns its final status.
pub fn run_job(sim: &Sim, params: &Value, file: Option<&[u8]>) -> Value {
    let reply = match file {
        Some(data) => upload_bytes(sim, params, "data.json", data).unwrap(),
        None => call(sim, "POST", "/job", params),
    };
    let body = reply.assert_ok();
    assert_eq!(body["status"], "pending", "{body}");
    let id = body["job_id"].as_str().unwrap().to_string();
    wait_job(sim, &id)
}

/// Polls GET /job until the job ends.
pub fn wait_job(sim: &Sim, id: &str) -> Value {
    for _ in 0..3000 {
        let reply = call(sim, "GET", "/job", &json!({ "job_id": id }));
        let body = reply.assert_ok().clone();
        if matches!(body["status"].as_str(), Some("completed" | "error")) {
            return body;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("job {id} did not end");
}
