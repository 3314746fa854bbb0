//! Brokered HTTP: `net.http`, performed by the host with a real HTTP client (`ureq`).
//!
//! The URL's host and port must be covered by a granted scope: `host` (any port), `host:port`,
//! `host:*`, `*.domain` (any subdomain) or `*` (flagged as too broad by the policy engine).
//! Names are compared as written, case-insensitively; the host does not resolve them first,
//! so a grant for `127.0.0.1` does not cover `localhost`. Redirects are returned to the
//! plugin, never followed (a redirect could lead to a host that is not granted). The timeout
//! is what is left of the call's wall-clock time, and bodies are capped at the level's
//! maximum file size.

use super::{Broker, MAX_REPLY_BYTES, Refusal};
use plugin_manifest::broker::{ErrorKind, HttpRequest, HttpResponse};
use std::time::{Duration, Instant};

/// Methods a plugin may use.
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// Most headers sent or returned.
const MAX_HEADERS: usize = 64;

/// What the host leaves of the call's remaining time for itself (answering the plugin).
const MARGIN: Duration = Duration::from_millis(20);

/// The scheme, host and port of a URL, checked (`http` or `https` only).
fn target(url: &str) -> Result<(String, String, u16), Refusal> {
    let invalid = |why: &str| {
        Refusal::fails(
            ErrorKind::Invalid,
            format!("`{}` is not a usable URL: {why}", url.escape_debug()),
        )
    };
    let uri: ureq::http::Uri = url.parse().map_err(|_| invalid("it does not parse"))?;
    let scheme = uri.scheme_str().ok_or_else(|| invalid("no scheme"))?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return Err(invalid("only http:// and https:// are supported")),
    };
    let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
    if authority.as_str().contains('@') {
        return Err(invalid("user information in URLs is not supported"));
    }
    let host = authority
        .host()
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    Ok((
        scheme.to_string(),
        host,
        authority.port_u16().unwrap_or(default_port),
    ))
}

/// Whether a `net.http` scope covers `host:port`.
fn scope_covers(scope: &str, host: &str, port: u16) -> bool {
    let (pattern, scope_port) = match scope.rsplit_once(':') {
        Some((pattern, port)) => (pattern, Some(port)),
        None => (scope, None),
    };
    let port_ok = match scope_port {
        None | Some("*") => true,
        Some(p) => p.parse::<u16>() == Ok(port),
    };
    let pattern = pattern.to_ascii_lowercase();
    let host_ok = match pattern.strip_prefix("*.") {
        _ if pattern == "*" => true,
        Some(domain) => host.len() > domain.len() + 1 && host.ends_with(&format!(".{domain}")),
        None => pattern == host,
    };
    port_ok && host_ok
}

/// Checks the request against the grants and performs it before `deadline`.
pub(crate) fn perform(
    broker: &Broker,
    request: &HttpRequest,
    deadline: Instant,
) -> Result<HttpResponse, Refusal> {
    let (_, host, port) = target(&request.url)?;
    let granted = broker
        .granted("net.http")
        .filter_map(|g| g.scope.as_deref())
        .any(|scope| scope_covers(scope, &host, port));
    if !granted {
        return Err(Refusal::denied(
            "host",
            format!("{host}:{port}"),
            format!(
                "{host}:{port} is not covered by any `net.http` scope granted to the plugin (asked: {})",
                request.url.chars().take(200).collect::<String>()
            ),
        ));
    }
    let method = request.method.to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(Refusal::fails(
            ErrorKind::Invalid,
            format!(
                "HTTP method `{}` is not supported: use one of {}",
                request.method,
                METHODS.join(", ")
            ),
        ));
    }
    let max_body = broker
        .config()
        .limits
        .max_file_size_bytes
        .min(MAX_REPLY_BYTES);
    if request.body.len() as u64 > max_body || request.headers.len() > MAX_HEADERS {
        return Err(Refusal::denied(
            "file_size",
            format!("{} {}: {} body bytes", method, host, request.body.len()),
            format!(
                "the request body ({} bytes) or its {} headers exceed the limits ({max_body} bytes, {MAX_HEADERS} headers)",
                request.body.len(),
                request.headers.len()
            ),
        ));
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    let timeout = remaining.saturating_sub(MARGIN);
    if timeout.is_zero() {
        return Err(Refusal::fails(
            ErrorKind::Failed,
            "no time left in the call for a network request".into(),
        ));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent("plugin-host broker")
        .build()
        .into();
    let mut builder = ureq::http::Request::builder()
        .method(method.as_str())
        .uri(request.url.as_str());
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let built = builder
        .body(request.body.clone())
        .map_err(|e| Refusal::fails(ErrorKind::Invalid, format!("bad HTTP request: {e}")))?;
    let failed = |e: ureq::Error| {
        Refusal::fails(
            ErrorKind::Failed,
            format!(
                "{method} {}: {e}",
                request.url.chars().take(200).collect::<String>()
            ),
        )
    };
    let mut response = agent.run(built).map_err(failed)?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .take(MAX_HEADERS)
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response
        .body_mut()
        .with_config()
        .limit(max_body)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => Refusal::fails(
                ErrorKind::TooLarge,
                format!("the response body is larger than the {max_body}-byte limit"),
            ),
            other => failed(other),
        })?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_cover_hosts_and_ports() {
        assert!(scope_covers("127.0.0.1", "127.0.0.1", 8080));
        assert!(scope_covers("api.example.org:443", "api.example.org", 443));
        assert!(!scope_covers("api.example.org:443", "api.example.org", 80));
        assert!(scope_covers("*.example.org", "a.example.org", 80));
        assert!(!scope_covers("*.example.org", "example.org", 80));
        assert!(!scope_covers("*.example.org", "evilexample.org", 80));
        assert!(!scope_covers("127.0.0.1", "localhost", 80));
        assert!(scope_covers("API.example.org", "api.example.org", 80));
    }

    #[test]
    fn urls_are_checked_before_anything_is_sent() {
        assert_eq!(
            target("http://127.0.0.1:8080/x").ok().map(|t| (t.1, t.2)),
            Some(("127.0.0.1".to_string(), 8080))
        );
        assert_eq!(target("https://Example.org/").ok().map(|t| t.2), Some(443));
        for bad in ["ftp://x/", "not a url", "http://user@host/", "/relative"] {
            assert!(target(bad).is_err(), "{bad}");
        }
    }
}
