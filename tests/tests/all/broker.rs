//! The broker: plugins reach files, HTTP and their SQLite store only through the host, which
//! checks, counts and records every request; and the hardened IPC channel: each kind of bad
//! frame a worker can send ends it with `protocol_error`.

use host_loader::{CallResult, Outcome, Plugin, Worker};
use integration_tests::{binary, path, plugin, stories, stories_path, worker_options};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A one-thread HTTP/1.1 server on 127.0.0.1 for the tests: `/ok` answers 200 `hello`,
/// `/redirect` 302 to another host, anything else 404. It counts the requests it answered and
/// stops when the test drops it.
struct TestServer {
    port: u16,
    served: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl TestServer {
    fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (count, done) = (served.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("");
                let response = match path {
                    "/ok" => {
                        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"
                    }
                    "/redirect" => {
                        "HTTP/1.1 302 Found\r\nlocation: http://example.org/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    }
                    _ => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                };
                let _ = stream.write_all(response.as_bytes());
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        TestServer { port, served, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Runs `plugin-host run` with `args`, returning each result line and the exit code.
fn run_cli(args: &[&str]) -> (Vec<Value>, Option<i32>) {
    let out = Command::new(binary("plugin-host"))
        .arg("run")
        .args(args)
        .output()
        .unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(
        out.status.code() != Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (lines, out.status.code())
}

/// Calls `name`'s `hook` once with `input` in a worker whose data dir is `data_dir`.
fn call_in(name: &str, hook: &str, input: &Value, data_dir: &Path) -> CallResult {
    let plugin = Plugin::open(plugin(name)).unwrap();
    let mut options = worker_options(&plugin);
    options.data_dir = Some(data_dir.to_path_buf());
    let mut worker = Worker::start(&plugin, options).unwrap();
    let result = worker.call(hook, &serde_json::to_vec(input).unwrap());
    worker.retire();
    result
}

fn story(text: &str) -> Value {
    json!({ "title": "probe", "text": text })
}

/// Whole-word, case-insensitive occurrences of `words` in `text`, counted independently of
/// the plugin: tokens are maximal runs of alphanumeric characters.
fn occurrences(text: &str, words: &[&str]) -> usize {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|token| words.iter().any(|w| token.eq_ignore_ascii_case(w)))
        .count()
}

#[test]
fn story_sanitizer_masks_exactly_the_listed_words_and_counts_its_reads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let words = ["wolf", "lion", "mouse", "crow"];
    std::fs::write(
        dir.path().join("data/words.txt"),
        format!("# masked words\n{}\n", words.join("\n")),
    )
    .unwrap();
    let (lines, code) = run_cli(&[
        path(&plugin("story-sanitizer")),
        "analyze",
        "--jsonl",
        "--json",
        "--input",
        path(&stories_path()),
        "--plugin-data",
        path(dir.path()),
    ]);
    let failed: Vec<&Value> = lines.iter().filter(|l| l["status"] != "ok").collect();
    assert_eq!(code, Some(0), "calls that did not succeed: {failed:?}");
    let stories = stories();
    assert_eq!(lines.len(), stories.len());
    let mut reads = 0;
    let mut masked_total = 0;
    for (line, story) in lines.iter().zip(&stories) {
        assert_eq!(line["status"], "ok", "{line}");
        let output = &line["output"];
        assert_eq!(output["list"], "file", "{line}");
        let original = format!("{} {}", story["title"], story["text"]);
        let expected = occurrences(
            &format!(
                "{}\n{}",
                story["title"].as_str().unwrap(),
                story["text"].as_str().unwrap()
            ),
            &words,
        );
        assert_eq!(output["masked"], expected, "{}", story["title"]);
        let masked_text = output["text"].as_str().unwrap();
        assert_eq!(occurrences(masked_text, &words), 0, "{masked_text}");
        assert_eq!(masked_text.len(), story["text"].as_str().unwrap().len());
        // The host counted exactly the reads the plugin says it made.
        assert_eq!(line["usage"]["file_ops"], output["file_reads"], "{line}");
        reads += output["file_reads"].as_u64().unwrap();
        masked_total += expected;
        let _ = original;
    }
    assert_eq!(reads, 1, "one worker reads its list once");
    assert!(masked_total > 20, "the stories do mention wolves and lions");
    assert_eq!(
        lines[0]["usage"]["bytes_in"].as_u64().unwrap() as usize,
        std::fs::metadata(dir.path().join("data/words.txt"))
            .unwrap()
            .len() as usize
    );
}

#[test]
fn story_archive_keeps_state_across_calls_and_worker_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("first20.jsonl");
    let first20: Vec<Value> = stories().into_iter().take(20).collect();
    let text: String = first20.iter().map(|s| format!("{s}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let archive = plugin("story-archive");
    let run_stories = || {
        run_cli(&[
            path(&archive),
            "analyze",
            "--jsonl",
            "--json",
            "--input",
            path(&input),
            "--plugin-data",
            path(dir.path()),
        ])
    };
    let (lines, code) = run_stories();
    assert_eq!(code, Some(0), "{lines:?}");
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line["status"], "ok", "{line}");
        assert_eq!(line["output"]["archived"], index + 1, "one worker, growing");
        assert_eq!(line["output"]["calls_in_worker"], index + 1);
        // schema, insert, count
        assert_eq!(line["usage"]["db_queries"], 3, "{line}");
    }

    // A new process, a new worker: the store is still there.
    let query = dir.path().join("query.json");
    let ask = |q: Value| {
        std::fs::write(&query, q.to_string()).unwrap();
        let (lines, code) = run_cli(&[
            path(&archive),
            "query",
            "--json",
            "--input",
            path(&query),
            "--plugin-data",
            path(dir.path()),
        ]);
        assert_eq!(code, Some(0), "{lines:?}");
        lines[0]["output"].clone()
    };
    assert_eq!(ask(json!({ "kind": "count" })), json!({ "count": 20 }));
    let words = |s: &Value| s["text"].as_str().unwrap().split_whitespace().count();
    let longest = first20.iter().max_by_key(|s| words(s)).unwrap();
    let got = ask(json!({ "kind": "longest" }));
    assert_eq!(got["longest"]["title"], longest["title"], "{got}");
    assert_eq!(got["longest"]["words"], words(longest));
    let found = ask(json!({ "kind": "find", "word": "fox" }));
    let expected: Vec<&Value> = first20
        .iter()
        .filter(|s| s["title"].as_str().unwrap().to_lowercase().contains("fox"))
        .map(|s| &s["title"])
        .collect();
    let titles: Vec<&Value> = found["found"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["title"])
        .collect();
    assert_eq!(titles, expected);

    // Storing the same stories again replaces them.
    let (lines, _) = run_stories();
    assert_eq!(lines.last().unwrap()["output"]["archived"], 20);
    assert_eq!(lines[0]["output"]["calls_in_worker"], 1, "a fresh worker");
    // The store is the host's: the plugin's data dir holds it in the reserved directory.
    assert!(dir.path().join(".plugin-host/store.sqlite").exists());
}

#[test]
fn link_checker_fetches_through_the_host() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "See {} and ({}) or {}.",
        server.url("/ok"),
        server.url("/missing"),
        server.url("/redirect")
    );
    let result = call_in("link-checker", "analyze", &story(&text), dir.path());
    assert_eq!(result.status, Outcome::Ok, "{result:?}");
    let links = result.output.as_ref().unwrap()["links"]
        .as_array()
        .unwrap()
        .clone();
    let statuses: Vec<&Value> = links.iter().map(|l| &l["status"]).collect();
    assert_eq!(
        statuses,
        [&json!(200), &json!(404), &json!(302)],
        "{links:?}"
    );
    assert_eq!(links[0]["bytes"], 5);
    assert_eq!(result.usage.net_requests, 3);
    assert_eq!(server.served(), 3, "the redirect was not followed");
    assert!(result.violations.is_empty());
}

#[test]
fn hostile_http_flood_is_stopped_at_the_51st_request() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let request = dir.path().join("flood.json");
    std::fs::write(
        &request,
        json!({ "url": server.url("/ok"), "count": 60 }).to_string(),
    )
    .unwrap();
    let flood = plugin("hostile-http-flood");
    let (lines, code) = run_cli(&[path(&flood), "flood", "--json", "--input", path(&request)]);
    assert_eq!(code, Some(1));
    let result = &lines[0];
    assert_eq!(result["status"], "violation", "{result}");
    assert_eq!(result["usage"]["net_requests"], 50, "{result}");
    let violations = result["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 1, "{result}");
    assert_eq!(violations[0]["rule"], "limit");
    let detail = violations[0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("net_requests limit of 50 per call reached: request 51"),
        "{detail}"
    );
    assert_eq!(server.served(), 50, "the 51st request never left the host");

    // With `on_op_limit = "refuse"` the plugin gets an error instead and goes on.
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "on_op_limit = \"refuse\"\n").unwrap();
    let (lines, _) = run_cli(&[
        path(&flood),
        "flood",
        "--json",
        "--input",
        path(&request),
        "--policy",
        path(&policy),
    ]);
    let result = &lines[0];
    assert_eq!(result["status"], "violation", "{result}");
    assert_eq!(result["output"]["succeeded"], 50, "{result}");
    assert!(
        result["output"]["error"]
            .as_str()
            .unwrap()
            .contains("net_requests limit of 50"),
        "{result}"
    );
    assert_eq!(server.served(), 100);
}

#[test]
fn path_escapes_and_ungranted_hosts_are_denied_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("secret.txt"), "the host's secret").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), data.join("link.txt")).unwrap();
    let result = call_in("hostile-path-escape", "analyze", &story(""), dir.path());
    assert_eq!(result.status, Outcome::Violation, "{result:?}");
    let output = result
        .output
        .as_ref()
        .expect("the plugin's own account is kept");
    assert_eq!(output["escaped"], false, "{output}");
    let rules: Vec<(&str, &str)> = result
        .violations
        .iter()
        .map(|v| (v.rule.as_str(), v.detail.as_str()))
        .collect();
    assert_eq!(
        rules,
        [
            ("path", "data/../secret.txt"),
            ("path", "data/link.txt"),
            ("path", "/etc/passwd"),
            ("path", ".plugin-host/store.sqlite"),
            ("path", "data/planted.txt"),
            ("env", "HOME"),
            ("host", "example.org:80"),
        ]
    );
    // Five file operations and one network request were asked for, all refused.
    assert_eq!(result.usage.file_ops, 5);
    assert_eq!(result.usage.net_requests, 1);
    assert_eq!(result.usage.bytes_in, 0);
    assert!(!output.to_string().contains("the host's secret"));
    assert!(!data.join("planted.txt").exists());
}

#[test]
fn going_past_each_count_ends_the_call() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/x.txt"), "x").unwrap();
    for (mode, counter, limit) in [("files", "file_ops", 100), ("db", "db_queries", 200)] {
        let result = call_in("hostile-op-flood", "analyze", &story(mode), dir.path());
        assert_eq!(result.status, Outcome::Violation, "{mode}: {result:?}");
        let used = match counter {
            "file_ops" => result.usage.file_ops,
            _ => result.usage.db_queries,
        };
        assert_eq!(used, limit, "{mode}");
        assert_eq!(result.violations.len(), 1, "{result:?}");
        assert!(
            result.violations[0].detail.starts_with(&format!(
                "{counter} limit of {limit} per call reached: request {}",
                limit + 1
            )),
            "{:?}",
            result.violations
        );
    }
}

#[test]
fn each_kind_of_bad_frame_is_a_protocol_error() {
    let plugin = Plugin::open(plugin("hostile-ipc-garbage")).unwrap();
    for (mode, expected) in [
        ("", "exceeds the 16777216-byte maximum"),
        ("oversize", "exceeds the 16777216-byte maximum"),
        ("garbage", "undecodable message"),
        ("wrong-id", "expected the result of call 1, got call 99's"),
        ("bad-status", "unknown call status 9"),
        ("shared-lie", "without its descriptor"),
        ("bad-output", "not valid JSON"),
        (
            "broker-wrong-call",
            "a broker request for call 99 arrived during call 1",
        ),
        ("truncated", "in the middle of a frame"),
    ] {
        let mut worker = Worker::start(&plugin, worker_options(&plugin)).unwrap();
        let result = worker.call("analyze", &serde_json::to_vec(&story(mode)).unwrap());
        assert_eq!(result.status, Outcome::ProtocolError, "{mode}: {result:?}");
        let error = result.error.as_deref().unwrap();
        assert!(error.contains(expected), "{mode}: {error}");
        assert!(!worker.is_alive(), "{mode}: the worker is ended");
    }
    // And the host goes on.
    let word_stats = Plugin::open(integration_tests::plugin("word-stats")).unwrap();
    let mut worker = Worker::start(&word_stats, worker_options(&word_stats)).unwrap();
    let first = serde_json::to_vec(&stories()[0]).unwrap();
    assert_eq!(worker.call("analyze", &first).status, Outcome::Ok);
}
