//! The HTTP server: one listener on 127.0.0.1 serving identity, Graph, the upload host and the
//! control API, with its own accept loop so a fault can reset a TCP connection.

use crate::config::FaultKind;
use crate::error::GraphError;
use crate::state::AppState;
use crate::{control, graph, identity};
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt as _;

/// Transport limit, above every Graph limit so handlers can answer with Graph's errors.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Every route of the emulator.
pub fn app(shared: AppState) -> Router {
    let graph = graph::router().layer(from_fn_with_state(shared.clone(), graph::pipeline));
    Router::new()
        .nest("/v1.0", graph.clone())
        .nest("/beta", graph)
        .merge(identity::router())
        .nest("/_emulator", control::router())
        .route(
            "/outlook/api/v2.0/{user}/{message}/{session}",
            put(graph::uploads::upload_chunk),
        )
        // Graph's own limits (4 MB requests, 4 MB chunks) are enforced by the handlers.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// Lets a handler reset the TCP connection its request arrived on.
#[derive(Debug, Clone)]
pub struct ConnectionControl {
    reset: Arc<AtomicBool>,
    signal: mpsc::Sender<()>,
}

impl ConnectionControl {
    fn reset(&self) {
        self.reset.store(true, Ordering::SeqCst);
        let _ = self.signal.try_send(());
    }
}

/// A TCP stream that closes with RST instead of FIN when asked to (SO_LINGER 0 on drop).
struct ResettableStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accepts connections until `shutdown` changes; each connection also stops then.
pub async fn serve(listener: TcpListener, app: Router, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                tokio::spawn(connection(stream, app.clone(), shutdown.clone()));
            }
            _ = shutdown.changed() => break,
        }
    }
}

async fn connection(stream: TcpStream, app: Router, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let reset = Arc::new(AtomicBool::new(false));
    let (signal, mut reset_requested) = mpsc::channel(1);
    let control = ConnectionControl {
        reset: reset.clone(),
        signal,
    };
    let io = TokioIo::new(ResettableStream {
        inner: stream,
        reset,
    });
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(control.clone());
            let app = app.clone();
            async move { app.oneshot(req.map(Body::new)).await }
        });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(io, service);
    tokio::select! {
        _ = conn => {}
        _ = reset_requested.recv() => {}
        _ = shutdown.changed() => {}
    }
}

/// The response for an injected fault; `None` means "truncate the real response".
pub async fn fault_response(
    kind: FaultKind,
    connection: Option<&ConnectionControl>,
) -> Option<Response> {
    let response = match kind {
        FaultKind::Throttled => crate::throttle::too_many_requests(rand_retry()).into_response(),
        FaultKind::Unavailable => GraphError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry later.",
        )
        .retry_after(rand_retry())
        .into_response(),
        FaultKind::UnavailableEmpty => {
            let mut e = GraphError::new(StatusCode::SERVICE_UNAVAILABLE, "", "");
            e.empty_body = true;
            e.into_response()
        }
        FaultKind::GatewayTimeout => GraphError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "UnknownError",
            "The server, while acting as a gateway, did not receive a timely response.",
        )
        .into_response(),
        FaultKind::DeltaTokenExpired => GraphError::new(
            StatusCode::GONE,
            "SyncStateNotFound",
            "The sync state generation is not found; generation=1;[highest=4][4][3][2].",
        )
        .into_response(),
        FaultKind::ConnectionReset => {
            if let Some(c) = connection {
                c.reset();
                // The connection task drops this request when it sees the signal.
                std::future::pending::<()>().await;
            }
            GraphError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "serviceNotAvailable",
                "Connection reset.",
            )
            .into_response()
        }
        FaultKind::TruncatedBody => return None,
    };
    Some(response)
}

fn rand_retry() -> f64 {
    use rand::Rng as _;
    (rand::thread_rng().gen_range(500..3000) as f64) / 1000.0
}

/// Sends half of the body after promising all of it, then breaks the connection.
pub async fn truncate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    if let Ok(v) = HeaderValue::from_str(&bytes.len().to_string()) {
        parts.headers.insert(header::CONTENT_LENGTH, v);
    }
    let half = bytes.slice(..bytes.len() / 2);
    // Half the body, a pause (so the headers and that half reach the client), then an error
    // that makes hyper abort the connection.
    let stream = futures::stream::unfold(0u8, move |step| {
        let half = half.clone();
        async move {
            match step {
                0 => Some((Ok(half), 1)),
                1 => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Some((
                        Err(std::io::Error::other("truncated by fault injection")),
                        2,
                    ))
                }
                _ => None,
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
}
