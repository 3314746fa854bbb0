//! Checks every `http://` link in a story's text with a `GET` through the host's brokered HTTP
//! client (the plugin has no sockets of its own) and reports each link's status.
use plugin_sdk::{Story, hook, host, plugin};
use serde::Serialize;

plugin! {
    name: "link-checker",
    description: "Checks the http links in a story",
    author: "plugin-host examples",
    level: standard,
    permissions: ["net.http:127.0.0.1"],
    limits: { wall_ms: 3000, net_requests: 20 },
}

/// One checked link.
#[derive(Debug, Serialize)]
pub struct Link {
    /// The URL as found in the text.
    pub url: String,
    /// The HTTP status, when the host got an answer.
    pub status: Option<u16>,
    /// Body length, when the host got an answer.
    pub bytes: Option<usize>,
    /// Why there is no answer.
    pub error: Option<String>,
}

/// What `analyze` returns.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The story's title.
    pub title: String,
    /// Each link, in order of appearance.
    pub links: Vec<Link>,
    /// Links that answered 2xx.
    pub ok: usize,
}

/// The `http://` and `https://` URLs in `text` (up to the next whitespace or closing bracket).
pub fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = ["http://", "https://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | ']' | '>' | '"'))
            .unwrap_or(tail.len());
        found.push(tail[..end].trim_end_matches(['.', ',', ';']).to_string());
        rest = &tail[end..];
    }
    found
}

/// Checks each link in the story.
#[hook]
pub fn analyze(story: Story) -> Report {
    let links: Vec<Link> = links(&story.text)
        .into_iter()
        .map(|url| match host().http_get(&url) {
            Ok(response) => Link {
                status: Some(response.status),
                bytes: Some(response.body.len()),
                error: None,
                url,
            },
            Err(e) => Link {
                status: None,
                bytes: None,
                error: Some(e.to_string()),
                url,
            },
        })
        .collect();
    Report {
        ok: links
            .iter()
            .filter(|l| l.status.is_some_and(|s| (200..300).contains(&s)))
            .count(),
        title: story.title,
        links,
    }
}
