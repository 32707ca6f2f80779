//! The hyper 1.x server on its own tokio thread, off the dataflow's threads: reads a request,
//! hands it to [`super::routes::handle`], writes the answer.

use super::page::cache_control;
use super::response::Response;
use super::routes::{allowed_methods, handle, negotiate, MAX_BODY};
use super::store::Store;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response as HttpResponse};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

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

/// Binds `addr` (reporting the address actually bound, for port 0) and serves `store` on a
/// thread of its own until the process ends.
pub fn serve(addr: SocketAddr, store: Arc<Store>) -> Result<SocketAddr, ServeError> {
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
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let store = store.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| answer(store.clone(), req));
                        if let Err(e) = http1::Builder::new()
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
