//! The signed POST a finished job sends to its `postback_url`, and a receiver for it.

use sailbulk_spec::api::sign;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Flattens a JSON object into form fields the way PHP's `http_build_query` does, as the
/// platform posts them: `errors[0][line]=3`. Strings stay as they are, numbers are written in
/// JSON form, `true`/`false` become `1`/`0`, and nulls are left out.
///
/// ```
/// let fields = sailbulk_sim::flatten_form(&serde_json::json!({"a": {"b": [1, true]}, "c": "x", "d": null}));
/// assert_eq!(fields, [("a[b][0]".to_string(), "1".to_string()), ("a[b][1]".into(), "1".into()), ("c".into(), "x".into())]);
/// ```
pub fn flatten_form(value: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Null => {}
            Value::Bool(b) => out.push((prefix.to_string(), if *b { "1" } else { "0" }.into())),
            Value::Number(n) => out.push((prefix.to_string(), n.to_string())),
            Value::String(s) => out.push((prefix.to_string(), s.clone())),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), item, out);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}[{k}]")
                    };
                    walk(&key, v, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

/// Percent-encodes a form value (`application/x-www-form-urlencoded`).
pub(crate) fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Posts a job's status to its `postback_url`, signed; says what happened.
pub(crate) fn send(url: &str, status: &Value, api_key: &str, secret: &str) -> String {
    let mut fields = flatten_form(status);
    fields.push(("api_key".into(), api_key.into()));
    let sig = sign(secret, fields.iter().map(|(_, v)| v.as_str()));
    fields.push(("sig".into(), sig));
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect();
    match post(url, body.join("&").as_bytes()) {
        Ok(status) => format!("sent: HTTP {status}"),
        Err(e) => format!("failed: {e}"),
    }
}

fn post(url: &str, body: &[u8]) -> Result<u16, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        "only http:// postback URLs can be reached from the simulator".to_string()
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {authority}"))?;
    let timeout = Duration::from_secs(10);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: sailbulk-sim\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body))
        .map_err(|e| e.to_string())?;
    // The status line is all the simulator needs; the receiver may keep the connection open.
    let mut line = Vec::new();
    BufReader::new(stream.take(8 * 1024))
        .read_until(b'\n', &mut line)
        .map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&line)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "no HTTP status in the answer".to_string())
}

/// A postback as a receiver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postback {
    /// The HTTP method (`POST`).
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    /// The form fields, in the order sent, decoded.
    pub fields: Vec<(String, String)>,
}

impl Postback {
    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A loopback endpoint that receives job postbacks, for tests and dry runs: give
/// [`PostbackReceiver::url`] as the `postback_url`, then [`PostbackReceiver::receive`].
///
/// ```
/// use sailbulk_sim::{PostbackReceiver, Sim};
/// use std::time::Duration;
/// let receiver = PostbackReceiver::bind().unwrap();
/// assert!(receiver.url().starts_with("http://127.0.0.1:"));
/// // Nothing was sent: the wait ends empty.
/// assert!(receiver.receive(Duration::from_millis(10)).unwrap().is_none());
/// ```
#[derive(Debug)]
pub struct PostbackReceiver {
    listener: TcpListener,
}

impl PostbackReceiver {
    /// Listens on a free loopback port.
    pub fn bind() -> std::io::Result<PostbackReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        Ok(PostbackReceiver { listener })
    }

    /// The URL to give as `postback_url`.
    pub fn url(&self) -> String {
        match self.listener.local_addr() {
            Ok(addr) => format!("http://{addr}/postback"),
            Err(_) => "http://127.0.0.1:0/postback".into(),
        }
    }

    /// Waits up to `timeout` for one postback, answers it with HTTP 200 and returns it; `None`
    /// if none came.
    pub fn receive(&self, timeout: Duration) -> std::io::Result<Option<Postback>> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e),
            }
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        let Some((head, body)) = crate::http::read_request(&mut reader, crate::params::MAX_TEXT)?
        else {
            return Ok(None);
        };
        let ok = crate::http::Response {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        };
        crate::http::write_response(&mut writer, &ok, true)?;
        let fields = crate::params::parse_urlencoded(&body)
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        Ok(Some(Postback {
            method: head.method,
            path: head.path,
            query: head.query,
            fields,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_forms() {
        assert_eq!(form_encode("a b&c=é"), "a+b%26c%3D%C3%A9");
        let round =
            crate::params::parse_urlencoded(format!("x={}", form_encode("a+b é%")).as_bytes());
        assert_eq!(round[0].1, "a+b é%".as_bytes());
    }
}
