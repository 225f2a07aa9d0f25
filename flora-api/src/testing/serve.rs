//! `FakeFlora::serve`: the same fake on a loopback socket, for tests that need a real socket
//! (other languages, the CLI, curl).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::core::{Core, FakeRequest, FakeResponse};
use crate::error::Error;

/// A running loopback server. Dropping it stops accepting and closes every connection it has
/// open (pooled keep-alive ones too), as a server that went away would.
#[derive(Debug)]
pub struct Served {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    /// The API base URL (`http://127.0.0.1:PORT/api/v1`), e.g. for `FLORA_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v1", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    core: Arc<Core>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let latency = core.latency_for(parts.uri.path());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fake = FakeRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts.headers,
        body,
    };
    let resp = match core.respond(fake) {
        FakeResponse::Answer {
            status,
            headers,
            body,
        } => {
            let mut b = hyper::Response::builder().status(status);
            for (k, v) in headers {
                b = b.header(k, v);
            }
            b.body(Full::new(body))
        }
        // Closing without an answer is what a broken connection looks like.
        FakeResponse::Broken => hyper::Response::builder()
            .status(200)
            .header("content-length", "1000")
            .body(Full::new(Bytes::from_static(b"{"))),
    };
    Ok(resp.unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new()))))
}

pub(super) async fn serve(core: Arc<Core>, port: u16) -> Result<Served, Error> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            Error::Config(format!(
                "FakeFlora::serve: cannot bind 127.0.0.1:{port}: {e}"
            ))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Config(format!("FakeFlora::serve: {e}")))?;
    core.set_media_base(format!("http://{addr}"));
    // Connections live in a `JoinSet` the accept task owns: aborting that task (drop of
    // `Served`) drops the set, which aborts every connection still open, pooled keep-alive
    // ones included, so a "server went away" test sees the server go away.
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { break };
                    let core = core.clone();
                    connections.spawn(async move {
                        let svc = hyper::service::service_fn(move |req| answer(core.clone(), req));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                            .await;
                    });
                }
                // Reap finished connections so the set does not grow with every one served.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    Ok(Served { addr, task })
}
