//! The HTTP API (`plugin-host serve`), driven with a real HTTP client over a real socket:
//! authentication, body limit, JSON errors, and the same answers as the CLI.

use integration_tests::{binary, plugin, stories, tmpdir_for_workers};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A `plugin-host serve` child on a free loopback port, stopped with SIGTERM when dropped. Its
/// TMPDIR (where its workers' private directories go) is `tmp` beside the data dir.
struct Server {
    child: Child,
    url: String,
    token: String,
    tmp: std::path::PathBuf,
}

impl Server {
    fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let tmp = tmpdir_for_workers(data_dir.parent().unwrap(), "tmp");
        let mut child = Command::new(binary("plugin-host"))
            .env("TMPDIR", &tmp)
            .args(["--data-dir", data_dir.to_str().unwrap(), "serve"])
            .args(["--addr", "127.0.0.1:0"])
            .args(extra)
            // Its working directory is the test's own, so a constructor that ran in the server
            // would leave its marker there.
            .current_dir(data_dir.parent().unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // The first line says where it listens, once the socket is bound.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let token = std::fs::read_to_string(data_dir.join("api-token"))
            .unwrap()
            .trim()
            .to_string();
        Server {
            child,
            url,
            token,
            tmp,
        }
    }

    /// Stops the server as an operator would, with SIGTERM, and returns how it exited; SIGKILL
    /// after 10 s if it has not.
    fn stop(&mut self) -> std::process::ExitStatus {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let pid = Pid::from_raw(self.child.id() as i32);
        if let Ok(Some(status)) = self.child.try_wait() {
            return status;
        }
        kill(pid, Signal::SIGTERM).unwrap();
        let (exited, timer) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if timer
                .recv_timeout(std::time::Duration::from_secs(10))
                .is_err()
            {
                let _ = kill(pid, Signal::SIGKILL);
            }
        });
        let status = self.child.wait().unwrap();
        drop(exited);
        watchdog.join().unwrap();
        status
    }

    fn request(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}{path}", self.url);
        let auth = token.map(|t| format!("Bearer {t}"));
        let response = match method {
            "GET" => {
                let mut request = agent.get(&url);
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
            _ => {
                let mut request = agent.post(&url);
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.send(body)
            }
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: {status} not JSON ({e}): {text:?}"));
        (status, value)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.request("GET", path, Some(&self.token.clone()), b"")
    }

    fn post(&self, path: &str, body: &[u8]) -> (u16, Value) {
        self.request("POST", path, Some(&self.token.clone()), body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn cli(data_dir: &Path, args: &[&str]) -> Value {
    let out = Command::new(binary("plugin-host"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)))
}

const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/plugins"),
    ("GET", "/plugins/word-stats"),
    ("GET", "/plugins/word-stats/security"),
    ("POST", "/plugins"),
    ("POST", "/plugins/word-stats/invoke/analyze"),
    ("GET", "/security/reports"),
    ("GET", "/security/permissions"),
    ("POST", "/validate/manifest"),
    ("POST", "/validate/code"),
    ("GET", "/audit"),
    ("GET", "/no/such/endpoint"),
];

#[test]
fn every_endpoint_needs_the_token_and_answers_what_the_cli_answers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("api-token"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    for (method, path) in ENDPOINTS {
        for token in [None, Some("0".repeat(64).as_str()), Some("")] {
            let (status, body) = server.request(method, path, token, b"{}");
            assert_eq!(status, 401, "{method} {path} with {token:?}");
            assert_eq!(body["error"]["code"], "unauthorized", "{method} {path}");
            assert!(body["error"]["message"].as_str().unwrap().contains("token"));
        }
    }

    // Install over the API; then the CLI and the API agree on everything.
    let word_stats = std::fs::read(plugin("word-stats")).unwrap();
    let (status, installed) = server.post("/plugins", &word_stats);
    assert_eq!(status, 201, "{installed}");
    assert_eq!(installed["plugin"]["name"], "word-stats");
    assert_eq!(installed["decision"]["decision"], "allow");
    let id = installed["plugin"]["id"].as_str().unwrap().to_string();
    let (status, again) = server.post("/plugins", &word_stats);
    assert_eq!(
        (status, &again["error"]["code"]),
        (409, &Value::from("already_installed"))
    );

    let story = serde_json::to_vec(&stories()[0]).unwrap();
    let (status, call) = server.post("/plugins/word-stats/invoke/analyze", &story);
    assert_eq!(status, 200, "{call}");
    assert_eq!(call["status"], "ok");
    assert_eq!(call["output"]["words"], 129);
    assert!(call["call_id"].as_i64().is_some());

    let (_, list) = server.get("/plugins");
    assert_eq!(list, cli(&data, &["list", "--json"]));
    assert_eq!(list[0]["id"], id);
    let (_, one) = server.get(&format!("/plugins/{}", &id[..12]));
    assert_eq!(one, list[0]);
    let (_, security) = server.get("/plugins/word-stats/security");
    assert_eq!(security, cli(&data, &["report", "word-stats", "--json"]));
    assert_eq!(security["usage"]["calls"], 1);
    let (_, reports) = server.get("/security/reports");
    assert_eq!(reports, cli(&data, &["report", "--json"]));
    let (_, permissions) = server.get("/security/permissions");
    assert_eq!(permissions, cli(&data, &["permissions", "--json"]));
    let (_, trail) = server.get("/audit?plugin=word-stats&since=1h");
    assert_eq!(
        trail,
        cli(
            &data,
            &["audit", "--plugin", "word-stats", "--since", "1h", "--json"]
        )
    );
    assert_eq!(trail.as_array().unwrap().len(), 2, "install and one call");

    // Static inspection of an upload: the same report as `inspect`, bytes never loaded.
    let (status, report) = server.post("/validate/code", &word_stats);
    assert_eq!(status, 200);
    let mut inspected = cli(
        &data,
        &["inspect", plugin("word-stats").to_str().unwrap(), "--json"],
    );
    inspected["path"] = Value::from("upload");
    assert_eq!(report, inspected);
    let ctor = std::fs::read(plugin("hostile-ctor")).unwrap();
    let (status, report) = server.post("/validate/code", &ctor);
    assert_eq!(status, 200);
    assert_eq!(report["manifest"]["name"], "hostile-ctor");
    assert!(
        !dir.path().join("hostile-ctor.marker").exists(),
        "the server ran the uploaded plugin's constructor"
    );

    // A manifest as JSON: the same decision as `validate --manifest`.
    let manifest = serde_json::to_vec(&inspected["manifest"]).unwrap();
    let manifest_file = dir.path().join("manifest.json");
    std::fs::write(&manifest_file, &manifest).unwrap();
    let (status, decision) = server.post("/validate/manifest", &manifest);
    assert_eq!(status, 200);
    assert_eq!(
        decision,
        cli(
            &data,
            &[
                "validate",
                "--manifest",
                manifest_file.to_str().unwrap(),
                "--json"
            ]
        )
    );
    assert_eq!(decision["decision"], "allow");
}

#[test]
fn bad_requests_get_json_errors_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--body-limit", "4096"]);

    let (status, body) = server.post("/validate/code", &vec![0x7f; 64 * 1024]);
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "body_too_large");
    assert!(body["error"]["message"].as_str().unwrap().contains("4096"));

    let (status, body) = server.post("/validate/code", b"#!/bin/sh\necho hi\n");
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "not_a_plugin");
    assert_eq!(body["error"]["reason"], "ELF_NOT_ELF", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not an ELF")
    );
    let (status, body) = server.post("/plugins", b"MZ not ELF either");
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &Value::from("not_a_plugin"))
    );

    let (status, body) = server.post("/validate/manifest", b"{\"name\": ");
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "malformed_json");
    let (status, body) = server.post("/validate/manifest", b"{\"name\": \"x\"}");
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid_manifest");

    let (status, body) = server.get("/plugins/nothing-here");
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &Value::from("not_found"))
    );
    // A path that is not UTF-8 gets a JSON error too (axum's own rejection is plain text).
    for bad in [
        "/plugins/%FF",
        "/plugins/%FF/security",
        "/plugins/x/invoke/%FF",
    ] {
        let (status, body) = if bad.contains("invoke") {
            server.post(bad, b"{}")
        } else {
            server.get(bad)
        };
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &Value::from("bad_path")),
            "{bad}"
        );
    }
    let (status, body) = server.get("/no/such/endpoint");
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &Value::from("not_found"))
    );
    let (status, body) = server.post("/security/reports", b"");
    assert_eq!(
        (status, &body["error"]["code"]),
        (405, &Value::from("method_not_allowed"))
    );
    for bad in ["/audit?limit=0", "/audit?limit=many", "/audit?limit=100001"] {
        let (status, body) = server.get(bad);
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &Value::from("bad_query")),
            "{bad}"
        );
    }
    let (status, body) = server.get("/audit?since=whenever");
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &Value::from("bad_query"))
    );

    // Nothing was installed by any of it, and the server still serves.
    let (status, list) = server.get("/plugins");
    assert_eq!((status, list), (200, Value::Array(vec![])));
}

#[test]
fn installs_through_the_api_are_decided_and_a_violating_plugin_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The API binds before anything is installed: a large body limit for debug builds.
    let server = Server::start(&data, &["--body-limit", &(64 << 20).to_string()]);

    let (status, body) = server.post("/plugins", &std::fs::read(plugin("greedy-exfil")).unwrap());
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "denied");
    assert_eq!(body["error"]["decision"]["decision"], "deny");
    assert!(
        !body["error"]["decision"]["reasons"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let (status, _) = server.post(
        "/plugins",
        &std::fs::read(plugin("hostile-path-escape")).unwrap(),
    );
    assert_eq!(status, 201);
    let story = serde_json::to_vec(&stories()[0]).unwrap();
    for _ in 0..3 {
        let (status, call) = server.post("/plugins/hostile-path-escape/invoke/analyze", &story);
        assert_eq!(status, 200);
        assert_eq!(call["status"], "violation", "{call}");
    }
    let (_, summary) = server.get("/plugins/hostile-path-escape");
    assert_eq!(summary["status"], "quarantined");
    let (_, call) = server.post("/plugins/hostile-path-escape/invoke/analyze", &story);
    assert_eq!(call["status"], "denied");
    let (status, body) = server.post("/plugins/hostile-path-escape/invoke/summarize", &story);
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &Value::from("no_such_hook"))
    );
    let (_, security) = server.get("/plugins/hostile-path-escape/security");
    assert_eq!(security["usage"]["outcomes"]["violation"], 3);
    assert_eq!(security["usage"]["outcomes"]["denied"], 1);
    // hostile-path-escape makes six refused requests per call here (its seventh attempt, a
    // symlink no test planted, is just a missing file).
    assert_eq!(security["violations"].as_array().unwrap().len(), 3 * 6);

    // SIGTERM ends the server cleanly, and its workers' private directories go with it.
    let mut server = server;
    let status = server.stop();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let left: Vec<_> = std::fs::read_dir(&server.tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in the server's TMPDIR: {left:?}");
}

/// Whether the server ended this connection (end of file or reset) within `limit`, rather than
/// keeping it open.
fn closed_by_server(stream: &mut std::net::TcpStream, limit: std::time::Duration) -> bool {
    use std::io::Read;
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            // hyper may answer a timed-out request before closing: read on to the end.
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn slow_and_surplus_connections_cannot_hold_the_server_or_its_shutdown() {
    use std::io::Write;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &["--max-connections", "3", "--header-timeout", "1"]);
    let address = server.url.strip_prefix("http://").unwrap().to_string();
    // Three clients that never finish their headers take every connection (no token needed).
    let mut slow: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = TcpStream::connect(&address).unwrap();
            stream
                .write_all(b"GET /plugins HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            stream
        })
        .collect();
    // A fourth is closed at once: over the cap, not queued behind them.
    let mut surplus = TcpStream::connect(&address).unwrap();
    assert!(
        closed_by_server(&mut surplus, Duration::from_secs(5)),
        "a connection over the cap was kept open"
    );
    // The slow ones are closed when their header time runs out (1 s here).
    let started = Instant::now();
    for stream in &mut slow {
        assert!(
            closed_by_server(stream, Duration::from_secs(5)),
            "a client that never finished its headers was kept past the header timeout"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // Then the server serves again.
    let (status, list) = server.get("/plugins");
    assert_eq!((status, list), (200, serde_json::json!([])));
    // A half-sent request does not hold the shutdown either: SIGTERM ends the server, cleanly.
    let mut pending = TcpStream::connect(&address).unwrap();
    pending.write_all(b"GET /plugins HTTP/1.1\r\n").unwrap();
    let started = Instant::now();
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}
