//! The HTTP API (`plugin-host serve`, SPEC §12): an axum router over a [`Host`].
//!
//! Every request needs the bearer token ([`auth`]); bodies are limited to
//! [`ServeConfig::body_limit`]; every error is JSON ([`error::ApiError`]). The answers are the
//! same serializable types the CLI prints with `--json` ([`crate::report`],
//! [`crate::service::CallRecord`], ...), so both give the same answer to the same question.
//!
//! | endpoint | CLI equivalent |
//! |---|---|
//! | `GET /plugins` | `list --json` |
//! | `GET /plugins/{id}` | one element of `list --json` |
//! | `GET /plugins/{id}/security` | `report <ID> --json` |
//! | `POST /plugins` (body: a `.so`) | `install <FILE> --json` |
//! | `POST /plugins/{id}/invoke/{hook}` (body: the input) | `invoke <ID> <HOOK> --json` |
//! | `GET /security/reports` | `report --json` |
//! | `GET /security/permissions` | `permissions --json` |
//! | `POST /validate/manifest` (body: manifest JSON) | `validate --manifest <FILE> --json` |
//! | `POST /validate/code` (body: a `.so`) | `inspect <FILE> --json` |
//! | `GET /audit?plugin=ID&since=TIME` | `audit --json [--plugin ID] [--since TIME]` |
//!
//! Plugin work is blocking (worker calls, SQLite commits): handlers run it on tokio's blocking
//! pool, in two bounded lanes, so that a flood of slow calls cannot starve the rest: at most
//! [`MAX_CALLS`] invokes at once, and at most [`MAX_OTHER_WORK`] other requests (lists,
//! reports, installs, the audit). A request past its lane's bound is answered `503 busy` at
//! once, never queued. `POST /validate/code` only inspects the bytes; they are never loaded or
//! run.
//!
//! Connections are bounded too ([`serve`]): at most [`MAX_CONNECTIONS`] at once by default
//! (one more is closed on accept), a client must send each request's headers within
//! [`HEADER_READ_TIMEOUT`] by default (an idle keep-alive connection too), and on SIGTERM the
//! requests in flight get [`SHUTDOWN_GRACE`] to finish before the server exits anyway. Nothing
//! of this needs the token, so no client can hold the server without one.
#![forbid(unsafe_code)]

pub mod auth;
pub mod error;

use crate::audit::{now_ms, parse_since};
use crate::service::{self, Host, ServiceError};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use error::ApiError;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Where `serve` listens by default: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7878";
/// Largest request body by default (16 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Most connections served at once by default; one more is closed as soon as it is accepted.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a client has by default to send a request's headers (and an idle keep-alive
/// connection to start its next request) before the connection is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// After SIGTERM or SIGINT: how long the requests in flight may take to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Most `invoke` calls running at once.
pub const MAX_CALLS: usize = 32;
/// Most other requests doing blocking work (store, audit, inspection) at once.
pub const MAX_OTHER_WORK: usize = 16;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The address to bind (port 0: any free port). By default [`DEFAULT_ADDR`].
    pub addr: SocketAddr,
    /// Largest request body, in bytes. By default [`DEFAULT_BODY_LIMIT`].
    pub body_limit: usize,
    /// Most connections at once. By default [`MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// How long a client has to send a request's headers. By default
    /// [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            addr: DEFAULT_ADDR
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 7878))),
            body_limit: DEFAULT_BODY_LIMIT,
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone)]
struct AppState {
    host: Arc<Host>,
    token: Arc<str>,
    body_limit: usize,
    /// Permits for `invoke` calls ([`MAX_CALLS`]).
    calls: Arc<Semaphore>,
    /// Permits for the other blocking work ([`MAX_OTHER_WORK`]).
    other_work: Arc<Semaphore>,
}

/// Which bounded lane a request's blocking work runs in.
#[derive(Debug, Clone, Copy)]
enum Lane {
    /// A plugin call.
    Call,
    /// Everything else.
    Other,
}

/// The router, with authentication, the body limit and JSON errors.
pub fn router(host: Arc<Host>, token: String, body_limit: usize) -> Router {
    let state = AppState {
        host,
        token: token.into(),
        body_limit,
        calls: Arc::new(Semaphore::new(MAX_CALLS)),
        other_work: Arc::new(Semaphore::new(MAX_OTHER_WORK)),
    };
    Router::new()
        .route("/plugins", get(list).post(install))
        .route("/plugins/{id}", get(summary))
        .route("/plugins/{id}/security", get(security))
        .route("/plugins/{id}/invoke/{hook}", post(invoke))
        .route("/security/reports", get(reports))
        .route("/security/permissions", get(permissions))
        .route("/validate/manifest", post(validate_manifest))
        .route("/validate/code", post(validate_code))
        .route("/audit", get(audit))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Serves `host` until SIGINT or SIGTERM, on a multi-threaded runtime. `on_bound` gets the
/// bound address (useful with port 0) before the first request is accepted.
pub fn serve(
    host: Arc<Host>,
    config: &ServeConfig,
    on_bound: impl FnOnce(SocketAddr),
) -> io::Result<()> {
    let token = auth::load_or_create(host.data_dir())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("api")
        .build()?;
    let app = router(host, token, config.body_limit);
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.addr))
            })?;
        on_bound(listener.local_addr()?);
        accept_loop(listener, app, config, shutdown_signal()).await;
        Ok(())
    });
    // Blocking work still running after the grace period (a plugin call near its deadline)
    // is not waited for: its worker dies with this process.
    runtime.shutdown_timeout(Duration::from_millis(100));
    served
}

/// Accepts and serves connections until `shutdown` completes, then gives the open ones
/// [`SHUTDOWN_GRACE`] to finish their requests.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Router,
    config: &ServeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    // At least one; at most what one `acquire_many` below can take back.
    let max_connections = config.max_connections.clamp(1, u32::MAX as usize);
    let connections = Arc::new(Semaphore::new(max_connections));
    let header_read_timeout = config.header_read_timeout;
    // Dropped at shutdown: every connection task sees it and closes gracefully.
    let (stop, stopped) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors, say: the connection is refused, the server goes on.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            // Over the cap: closed at once, before anything is read.
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = stopped.changed() => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
    }
    drop(listener);
    drop(stop);
    // Every connection holds a permit until it ends: all of them back means all ended.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connections.acquire_many(all)).await;
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // Without signal handlers, serve until killed.
        _ => std::future::pending().await,
    }
}

async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes());
    match auth::authorized(header, &state.token) {
        Ok(()) => next.run(request).await,
        Err(message) => {
            let mut response =
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            response
        }
    }
}

/// Runs blocking service work off the async threads, in its lane: `503 busy` at once if the
/// lane is full.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    lane: Lane,
    work: impl FnOnce(&Host) -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ApiError> {
    let (permits, bound, what) = match lane {
        Lane::Call => (&state.calls, MAX_CALLS, "plugin calls"),
        Lane::Other => (&state.other_work, MAX_OTHER_WORK, "requests"),
    };
    let Ok(permit) = Arc::clone(permits).try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("the server is running {bound} {what} already; retry when one has ended"),
        ));
    };
    let host = state.host.clone();
    // The permit goes with the work: a client that gives up does not free its slot before
    // the work it started has ended.
    match tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work(&host)
    })
    .await
    {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the request's work failed: {e}"),
        )),
    }
}

/// The body, or the JSON error for one that is too large or unreadable.
fn body(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "request body is larger than the limit of {} bytes (serve --body-limit)",
                    state.body_limit
                ),
            )
        } else {
            ApiError::new(rejection.status(), "bad_body", rejection.body_text())
        }
    })
}

/// The path's parameters, or a JSON error (axum's own rejection is plain text).
fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(value)| value).map_err(|rejection| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_path", rejection.body_text())
    })
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(blocking(&state, Lane::Other, |host| host.list()).await?).into_response())
}

async fn summary(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path(id)?;
    Ok(Json(blocking(&state, Lane::Other, move |host| host.summary(&id)).await?).into_response())
}

async fn security(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path(id)?;
    Ok(Json(blocking(&state, Lane::Other, move |host| host.report(&id)).await?).into_response())
}

async fn reports(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(blocking(&state, Lane::Other, |host| host.reports()).await?).into_response())
}

async fn permissions() -> Response {
    Json(plugin_manifest::permission::CATALOG).into_response()
}

async fn install(
    State(state): State<AppState>,
    upload: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body(&state, upload)?;
    let installed = blocking(&state, Lane::Other, move |host| {
        host.install_bytes(&bytes, "upload")
    })
    .await?;
    Ok((StatusCode::CREATED, Json(installed)).into_response())
}

async fn invoke(
    State(state): State<AppState>,
    params: Result<Path<(String, String)>, PathRejection>,
    input: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (id, hook) = path(params)?;
    let input = body(&state, input)?;
    let record = blocking(&state, Lane::Call, move |host| {
        host.invoke(&id, &hook, &input)
    })
    .await?;
    Ok(Json(record).into_response())
}

async fn validate_manifest(
    State(state): State<AppState>,
    upload: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body(&state, upload)?;
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("request body is not JSON: {e}"),
        ));
    }
    let decision = blocking(&state, Lane::Other, move |host| {
        service::validate_manifest(&bytes, "request body", &host.policy(), None)
    })
    .await?;
    Ok(Json(decision).into_response())
}

async fn validate_code(
    State(state): State<AppState>,
    upload: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body(&state, upload)?;
    let report = blocking(&state, Lane::Other, move |_| {
        service::validate_code(&bytes, "upload")
    })
    .await?;
    Ok(Json(report).into_response())
}

async fn audit(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_query", rejection.body_text())
    })?;
    if let Some(unknown) = query
        .keys()
        .find(|k| !["plugin", "since", "limit"].contains(&k.as_str()))
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("unknown query parameter `{unknown}` (known: plugin, since, limit)"),
        ));
    }
    let limit = match query.get("limit") {
        None => service::DEFAULT_AUDIT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=service::MAX_AUDIT_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_query",
                    format!(
                        "limit: `{text}` is not a number from 1 to {}",
                        service::MAX_AUDIT_LIMIT
                    ),
                ));
            }
        },
    };
    let since = match query.get("since") {
        Some(text) => Some(parse_since(text, now_ms()).map_err(|message| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("since: {message}"),
            )
        })?),
        None => None,
    };
    let plugin = query.get("plugin").cloned();
    let entries = blocking(&state, Lane::Other, move |host| {
        host.audit_entries(plugin.as_deref(), since, Some(limit))
    })
    .await?;
    Ok(Json(entries).into_response())
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no endpoint {} {}", request.method(), request.uri().path()),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}
