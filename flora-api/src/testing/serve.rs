//! `FakeFlora::serve`: the same fake on a loopback socket, for tests that need a real socket
//! (other languages, the CLI, curl).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::core::{Core, FakeRequest, FakeResponse};
use crate::error::Error;

/// A running loopback server; stops when dropped.
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
    let fake = FakeRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
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
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let core = core.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| answer(core.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(Served { addr, task })
}
