//! The hyper 1.x server on its own tokio thread, off the dataflow's threads: reads a request,
//! hands it to [`super::routes::handle`], writes the answer.
//!
//! Hostile or broken clients are held to `[http]`'s limits: a request's header must arrive
//! within `header_read_timeout_ms` (also the most a kept-alive connection may idle), be at
//! most `max_header_bytes`, and at most `max_connections` are served at once; past that a
//! connection is answered 503 and closed, so idle clients cannot shut others out for long.

use super::page::cache_control;
use super::response::Response;
use super::routes::{allowed_methods, handle, negotiate, MAX_BODY};
use super::store::Store;
use crate::config::HttpConfig;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response as HttpResponse};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

async fn answer(
    store: Arc<Store>,
    req: Request<Incoming>,
) -> Result<HttpResponse<Full<Bytes>>, Infallible> {
    let method = req.method().as_str().to_string();
    let accept = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let path = negotiate(&method, req.uri().path(), accept).to_string();
    let req_path_is_root = req.uri().path() == "/";
    let query = req.uri().query().map(str::to_string);
    let response = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => {
            let body = body.to_bytes();
            handle(&store, &method, &path, query.as_deref(), &body)
        }
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Response::error(413, format!("request body over {} bytes", MAX_BODY))
        }
        Err(e) => Response::error(400, format!("reading the request body: {e}")),
    };
    let mut builder = HttpResponse::builder()
        .status(response.status)
        .header("content-type", response.content_type)
        .header("access-control-allow-origin", "*");
    if response.status == 405 {
        builder = builder.header("allow", allowed_methods(&path).join(", "));
    }
    if let Some(cache) = cache_control(&path).filter(|_| response.status == 200) {
        builder = builder.header("cache-control", cache);
    }
    if req_path_is_root {
        // The same URL answers HTML or JSON by the request's Accept.
        builder = builder.header("vary", "accept");
    }
    Ok(builder
        .body(Full::new(Bytes::from(response.body)))
        .unwrap_or_else(|_| HttpResponse::new(Full::new(Bytes::new()))))
}

/// Why the query API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--http {addr}: cannot listen: {source} (pass --http off, or another address)")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Socket(#[from] std::io::Error),
    #[error("http thread: {0}")]
    Thread(std::io::Error),
}

/// What one connection may take of the server.
#[derive(Clone, Copy, Debug)]
struct Limits {
    header_read_timeout: Duration,
    max_connections: usize,
    max_header_bytes: usize,
}

impl Limits {
    fn of(http: &HttpConfig) -> Limits {
        Limits {
            header_read_timeout: Duration::from_millis(http.header_read_timeout_ms.max(1)),
            max_connections: http.max_connections.max(1),
            // hyper's read buffer cannot be smaller than 8 KiB.
            max_header_bytes: http.max_header_bytes.max(8192),
        }
    }
}

/// A place among the connections being served, given back when the connection ends.
struct Place(Arc<AtomicUsize>);

impl Place {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Place> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Place(open.clone()))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Connections being told 503 at once; past this one is closed without a word.
const MAX_REFUSING: usize = 64;

/// Tells a connection past the limit why it is closed. The request is read first (what came
/// within a short wait): closing on unread bytes would reset the connection and lose the
/// answer.
async fn refuse(stream: tokio::net::TcpStream, max: usize) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            stream.readable().await?;
            match stream.try_read(&mut buf) {
                Ok(n) if n == 0 || buf[..n].windows(4).any(|w| w == b"\r\n\r\n") => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    let body = format!(
        "{{\"error\": \"the server is at its limit of {max} connections; try again later\"}}"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    // A new connection's send buffer is empty: the short answer goes out in one write.
    let _ = stream.try_write(answer.as_bytes());
}

/// Binds `addr` (reporting the address actually bound, for port 0) and serves `store` on a
/// thread of its own until the process ends, within `http`'s limits.
pub fn serve(
    addr: SocketAddr,
    store: Arc<Store>,
    http: &HttpConfig,
) -> Result<SocketAddr, ServeError> {
    let limits = Limits::of(http);
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| ServeError::Listen { addr, source })?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("pitwall-http".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("http runtime: {e}");
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("http listener: {e}");
                        return;
                    }
                };
                let open = Arc::new(AtomicUsize::new(0));
                let refusing = Arc::new(AtomicUsize::new(0));
                loop {
                    let stream = match listener.accept().await {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            // Out of file descriptors, say: wait for some to be given back
                            // rather than spin on the error.
                            tracing::warn!("http accept: {e}");
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    };
                    let Some(place) = Place::take(&open, limits.max_connections) else {
                        if let Some(refusing) = Place::take(&refusing, MAX_REFUSING) {
                            tokio::spawn(async move {
                                let _refusing = refusing;
                                refuse(stream, limits.max_connections).await;
                            });
                        }
                        continue;
                    };
                    let store = store.clone();
                    tokio::spawn(async move {
                        let _place = place;
                        let service = service_fn(move |req| answer(store.clone(), req));
                        if let Err(e) = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(limits.header_read_timeout)
                            .max_header_size(limits.max_header_bytes)
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                        {
                            tracing::debug!("http connection: {e}");
                        }
                    });
                }
            });
        })
        .map_err(ServeError::Thread)?;
    Ok(bound)
}
