//! A misbehaving HTTP server on loopback, on a raw socket: it answers what a test tells it
//! to, including what no well-behaved server (and no mock library) does: echo the
//! `Authorization` header, lose an answer after handling the request, never answer, stream a
//! body that never ends. One request per connection (`Connection: close`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// 1 for the first request, then one more per request.
    pub n: usize,
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// The whole request head.
    pub head: String,
    pub body: Vec<u8>,
}

impl Seen {
    /// The value of a header (case-insensitive name), if sent.
    pub fn header(&self, name: &str) -> Option<String> {
        let name = format!("{}:", name.to_ascii_lowercase());
        self.head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with(&name)
                .then(|| l[name.len()..].trim().to_owned())
        })
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// What the server does with one request.
pub enum Reply {
    /// A whole answer: the status line and headers (no final blank line), then the body.
    Full { head: String, body: Vec<u8> },
    /// Handles the request, then closes the connection without a word: the answer is lost.
    Drop,
    /// Never answers (the connection stays open until the client gives up).
    Hang,
    /// The head and the start of the body, then nothing more (the connection stays open).
    Stall { head: String, body: Vec<u8> },
    /// The head, then a chunked body that never ends.
    Endless { head: String },
}

impl Reply {
    /// `status` with a JSON body.
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply::bytes(status, "application/json", body.to_string().into_bytes())
    }

    /// `status` with a body of this content type.
    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
        Reply::Full {
            head: format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}",
                reason(status),
                body.len()
            ),
            body,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        401 => "Unauthorized",
        404 => "Not Found",
        409 => "Conflict",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

/// A running hostile server.
pub struct Hostile {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Hostile {
    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests with this method whose path ends with `suffix`.
    pub fn count(&self, method: &str, suffix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == method && s.path().ends_with(suffix))
            .count()
    }

    /// The base URL for a client (`/api/v1` is not assumed: the server answers any path).
    pub fn root(&self) -> String {
        format!("{}/", self.base)
    }
}

/// Serves `answer` on `127.0.0.1:0` until the test ends.
pub async fn serve(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Hostile {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut sock, _)) = listener.accept().await {
            n += 1;
            let (log, answer) = (log.clone(), answer.clone());
            tokio::spawn(async move {
                let Some(req) = read_request(&mut sock, n).await else {
                    return;
                };
                log.lock().unwrap().push(req.clone());
                match answer(&req) {
                    Reply::Full { head, body } => {
                        let head = format!("{head}\r\nConnection: close\r\n\r\n");
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(&body).await;
                        let _ = sock.shutdown().await;
                    }
                    Reply::Drop => drop(sock),
                    Reply::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Reply::Stall { head, body } => {
                        let head = format!("{head}\r\n\r\n");
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(&body).await;
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Reply::Endless { head } => {
                        let head = format!(
                            "{head}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let chunk = vec![b'x'; 64 * 1024];
                        let frame = [
                            format!("{:x}\r\n", chunk.len()).into_bytes(),
                            chunk,
                            b"\r\n".to_vec(),
                        ]
                        .concat();
                        while sock.write_all(&frame).await.is_ok() {}
                    }
                }
            });
        }
    });
    Hostile { base, seen }
}

async fn read_request(sock: &mut tokio::net::TcpStream, n: usize) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut body = buf[end..].to_vec();
    let mut req = Seen {
        n,
        method: head.split(' ').next().unwrap_or("").to_owned(),
        target: head.split(' ').nth(1).unwrap_or("").to_owned(),
        head,
        body: Vec::new(),
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while body.len() < len {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(k) => body.extend_from_slice(&chunk[..k]),
        }
    }
    req.body = body;
    Some(req)
}
