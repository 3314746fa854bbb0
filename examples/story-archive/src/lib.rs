//! Keeps each story's statistics in the plugin's own SQLite store (through the host's broker)
//! and answers questions about everything stored so far, across calls and across workers.
//!
//! - `analyze(Story)` stores (or replaces) the story's row and returns it with the archive's
//!   size after the call.
//! - `query(Query)` answers `count`, `longest`, `shortest` or `find` (stories whose title
//!   contains a word) from the store.
use plugin_sdk::host::{DbValue, HostError};
use plugin_sdk::{Story, hook, host, plugin};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

plugin! {
    name: "story-archive",
    description: "Archives story statistics in its own store and answers queries about them",
    author: "plugin-host examples",
    level: standard,
    permissions: ["db.read", "db.write"],
    limits: { wall_ms: 2000, db_queries: 20 },
}

/// Calls served by this worker process.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// One archived story.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Entry {
    /// The story's id (or its position, when it has none).
    pub id: i64,
    /// Its title.
    pub title: String,
    /// Words in its text.
    pub words: i64,
}

/// What `analyze` returns.
#[derive(Debug, Serialize)]
pub struct Archived {
    /// The row stored.
    pub stored: Entry,
    /// Stories in the archive after this call.
    pub archived: i64,
    /// Calls this worker has served, this one included.
    pub calls_in_worker: u64,
}

/// A question about the archive.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Query {
    /// How many stories are archived.
    Count,
    /// The story with the most words.
    Longest,
    /// The story with the fewest words.
    Shortest,
    /// Stories whose title contains `word` (case-insensitive).
    Find {
        /// The word.
        word: String,
    },
}

fn text(e: HostError) -> String {
    format!("store: {e}")
}

fn schema() -> Result<(), String> {
    host()
        .db_execute(
            "CREATE TABLE IF NOT EXISTS stories (id INTEGER PRIMARY KEY, title TEXT NOT NULL, words INTEGER NOT NULL)",
            &[],
        )
        .map_err(text)?;
    Ok(())
}

fn entries(sql: &str, params: &[DbValue]) -> Result<Vec<Entry>, String> {
    let rows = host().db_query(sql, params).map_err(text)?;
    rows.rows
        .into_iter()
        .map(|row| match row.as_slice() {
            [id, title, words] => Ok(Entry {
                id: id.as_i64().ok_or("id is not an integer")?,
                title: title.as_str().ok_or("title is not text")?.to_string(),
                words: words.as_i64().ok_or("words is not an integer")?,
            }),
            _ => Err("unexpected row shape".to_string()),
        })
        .collect()
}

fn count() -> Result<i64, String> {
    let rows = host()
        .db_query("SELECT count(*) FROM stories", &[])
        .map_err(text)?;
    rows.rows
        .first()
        .and_then(|row| row.first())
        .and_then(DbValue::as_i64)
        .ok_or_else(|| "count(*) returned nothing".to_string())
}

/// Stores the story's statistics.
#[hook]
pub fn analyze(story: Story) -> Result<Archived, String> {
    let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    schema()?;
    let id = match story.id {
        Some(id) => i64::try_from(id).map_err(|_| "story id out of range")?,
        None => count()? + 1,
    };
    let words = story.text.split_whitespace().count() as i64;
    host()
        .db_execute(
            "INSERT OR REPLACE INTO stories (id, title, words) VALUES (?1, ?2, ?3)",
            &[id.into(), story.title.clone().into(), words.into()],
        )
        .map_err(text)?;
    Ok(Archived {
        stored: Entry {
            id,
            title: story.title,
            words,
        },
        archived: count()?,
        calls_in_worker: calls,
    })
}

/// Answers a question about the archive.
#[hook]
pub fn query(query: Query) -> Result<serde_json::Value, String> {
    schema()?;
    let select = "SELECT id, title, words FROM stories";
    Ok(match query {
        Query::Count => serde_json::json!({ "count": count()? }),
        Query::Longest => serde_json::json!({
            "longest": entries(&format!("{select} ORDER BY words DESC, id LIMIT 1"), &[])?.pop()
        }),
        Query::Shortest => serde_json::json!({
            "shortest": entries(&format!("{select} ORDER BY words, id LIMIT 1"), &[])?.pop()
        }),
        Query::Find { word } => serde_json::json!({
            "found": entries(
                &format!("{select} WHERE lower(title) LIKE '%' || lower(?1) || '%' ORDER BY id"),
                &[word.into()],
            )?
        }),
    })
}
