//! The plugin's own SQLite store (`db.read`, `db.write`) and its key-value table.
//!
//! One file per data dir, `<data dir>/.plugin-host/store.sqlite` (the reserved directory the
//! plugin cannot reach through `fs.*`), opened by the host, never by the plugin. What keeps a
//! plugin inside it:
//! - `SQLITE_LIMIT_ATTACHED = 0` and an authorizer that refuses `ATTACH`/`DETACH` (so no other
//!   database file, another plugin's or the host's, can be opened; `VACUUM INTO` needs an
//!   attachment too), and every `PRAGMA` but a few read-only ones (so the size cap and the
//!   journal cannot be changed);
//! - `SQLITE_DBCONFIG_DEFENSIVE` (no writes to the schema table, no corrupting pragmas),
//!   untrusted schema, extensions off (rusqlite's default);
//! - a size cap (`max_page_count`, from the level's maximum file size);
//! - one statement per request, and a progress handler that interrupts a statement at the
//!   call's deadline, so a runaway query cannot hold the host past it;
//! - results bounded in rows and bytes.

use super::{MAX_REPLY_BYTES, Refusal};
use plugin_manifest::broker::{DbRows, DbValue, ErrorKind};
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Instant;

/// File name of the store inside the reserved directory.
pub const STORE_FILE: &str = "store.sqlite";

/// Most rows a query returns.
pub const MAX_ROWS: usize = 10_000;

/// Smallest size cap, in bytes, whatever the level says.
const MIN_CAP: u64 = 256 * 1024;

/// The key-value table.
const KV_TABLE: &str = "plugin_kv";

/// Pragmas a plugin may run without a value: they only read.
const READ_ONLY_PRAGMAS: &[&str] = &[
    "table_list",
    "page_count",
    "page_size",
    "max_page_count",
    "freelist_count",
];

/// Pragmas whose argument names a table or index: they only read.
const PRAGMAS_WITH_ARGUMENT: &[&str] = &[
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
];

/// An open store.
#[derive(Debug)]
pub struct Store {
    connection: Connection,
    cap: u64,
}

fn sqlite_error(context: &str, error: rusqlite::Error, cap: u64) -> Refusal {
    use rusqlite::ErrorCode;
    match &error {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::OperationInterrupted => Refusal::fails(
                ErrorKind::Failed,
                format!("{context}: interrupted: the call's time ran out"),
            ),
            ErrorCode::DiskFull => Refusal::fails(
                ErrorKind::TooLarge,
                format!("{context}: the plugin's store is full (its cap is {cap} bytes)"),
            ),
            ErrorCode::AuthorizationForStatementDenied => Refusal::denied(
                "db",
                context.to_string(),
                format!(
                    "{context}: not allowed in the plugin's store (no ATTACH, DETACH or writing PRAGMA)"
                ),
            ),
            _ => Refusal::fails(ErrorKind::Invalid, format!("{context}: {error}")),
        },
        _ => Refusal::fails(ErrorKind::Invalid, format!("{context}: {error}")),
    }
}

fn short(sql: &str) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.chars().take(120).collect()
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`, capped at `cap` bytes.
    pub(crate) fn open(data_dir: &Path, cap: u64) -> Result<Store, Refusal> {
        let dir = data_dir.join(super::fs::RESERVED_DIR);
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            Refusal::fails(
                ErrorKind::Failed,
                format!("the plugin's store in {}: {what}: {e}", dir.display()),
            )
        };
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| failed("cannot create it", &e))?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(dir.join(STORE_FILE), flags)
            .map_err(|e| failed("cannot open it", &e))?;
        let cap = cap.max(MIN_CAP);
        let setup = || -> rusqlite::Result<()> {
            connection.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
            connection.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, 1024 * 1024)?;
            let length = i32::try_from(cap).unwrap_or(i32::MAX);
            connection.set_limit(Limit::SQLITE_LIMIT_LENGTH, length)?;
            connection
                .set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
            connection.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA,
                false,
            )?;
            connection.busy_timeout(std::time::Duration::from_secs(2))?;
            connection.pragma_update(None, "journal_mode", "WAL")?;
            let page_size: i64 = connection.pragma_query_value(None, "page_size", |r| r.get(0))?;
            connection.pragma_update(
                None,
                "max_page_count",
                (i64::try_from(cap).unwrap_or(i64::MAX) / page_size.max(512)).max(16),
            )?;
            connection.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {KV_TABLE} (key TEXT PRIMARY KEY, value BLOB NOT NULL)"
            ))?;
            Ok(())
        };
        setup().map_err(|e| failed("cannot set it up", &e))?;
        connection
            .authorizer(Some(|context: AuthContext<'_>| match context.action {
                AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
                AuthAction::Pragma {
                    pragma_name,
                    pragma_value,
                } => {
                    let name = pragma_name.to_ascii_lowercase();
                    let name = name.as_str();
                    if PRAGMAS_WITH_ARGUMENT.contains(&name)
                        || pragma_value.is_none() && READ_ONLY_PRAGMAS.contains(&name)
                    {
                        Authorization::Allow
                    } else {
                        Authorization::Deny
                    }
                }
                _ => Authorization::Allow,
            }))
            .map_err(|e| failed("cannot install its authorizer", &e))?;
        Ok(Store { connection, cap })
    }

    /// Interrupts any statement that runs past `deadline`. A statement never runs unarmed.
    fn arm(&self, deadline: Instant) -> Result<(), Refusal> {
        self.connection
            .progress_handler(1000, Some(move || Instant::now() >= deadline))
            .map_err(|e| {
                Refusal::fails(
                    ErrorKind::Failed,
                    format!("the plugin's store: cannot bound the statement's time: {e}"),
                )
            })
    }

    /// Runs one read-only statement. A writing statement is refused: `Invalid` if the plugin
    /// may write (it should use execute), `Denied` if it may not.
    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[DbValue],
        deadline: Instant,
        may_write: bool,
    ) -> Result<DbRows, Refusal> {
        self.arm(deadline)?;
        let context = short(sql);
        let cap = self.cap;
        let mut statement = self
            .connection
            .prepare(sql)
            .map_err(|e| sqlite_error(&context, e, cap))?;
        if !statement.readonly() {
            return Err(if may_write {
                Refusal::fails(
                    ErrorKind::Invalid,
                    format!("{context}: this statement writes: use db_execute"),
                )
            } else {
                Refusal::denied(
                    "permission",
                    format!("db.write: {context}"),
                    format!("{context}: this statement writes, and `db.write` is not granted"),
                )
            });
        }
        bind(&mut statement, params, &context)?;
        let columns: Vec<String> = statement
            .column_names()
            .into_iter()
            .map(str::to_string)
            .collect();
        let mut out = DbRows {
            columns,
            rows: Vec::new(),
        };
        let mut size = 0u64;
        let mut rows = statement.raw_query();
        while let Some(row) = rows.next().map_err(|e| sqlite_error(&context, e, cap))? {
            let mut values = Vec::with_capacity(out.columns.len());
            for index in 0..out.columns.len() {
                let value = match row
                    .get_ref(index)
                    .map_err(|e| sqlite_error(&context, e, cap))?
                {
                    ValueRef::Null => DbValue::Null,
                    ValueRef::Integer(i) => DbValue::Integer(i),
                    ValueRef::Real(r) => DbValue::Real(r),
                    ValueRef::Text(t) => DbValue::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => DbValue::Blob(b.to_vec()),
                };
                size += value_size(&value);
                values.push(value);
            }
            out.rows.push(values);
            if out.rows.len() > MAX_ROWS || size > MAX_REPLY_BYTES / 2 {
                return Err(Refusal::fails(
                    ErrorKind::TooLarge,
                    format!(
                        "{context}: the result is larger than {MAX_ROWS} rows or {} bytes: add a LIMIT",
                        MAX_REPLY_BYTES / 2
                    ),
                ));
            }
        }
        Ok(out)
    }

    /// Runs one statement that may write; returns the rows changed.
    pub(crate) fn execute(
        &mut self,
        sql: &str,
        params: &[DbValue],
        deadline: Instant,
    ) -> Result<u64, Refusal> {
        self.arm(deadline)?;
        let context = short(sql);
        let cap = self.cap;
        let mut statement = self
            .connection
            .prepare(sql)
            .map_err(|e| sqlite_error(&context, e, cap))?;
        bind(&mut statement, params, &context)?;
        let mut rows = statement.raw_query();
        // Step to the end: a statement with RETURNING yields rows, which are not sent back.
        while rows
            .next()
            .map_err(|e| sqlite_error(&context, e, cap))?
            .is_some()
        {}
        drop(rows);
        Ok(self.connection.changes())
    }

    /// Reads a key-value entry.
    pub(crate) fn kv_get(
        &mut self,
        key: &str,
        deadline: Instant,
    ) -> Result<Option<Vec<u8>>, Refusal> {
        let rows = self.query(
            &format!("SELECT value FROM {KV_TABLE} WHERE key = ?1"),
            &[DbValue::Text(key.to_string())],
            deadline,
            true,
        )?;
        Ok(rows
            .rows
            .into_iter()
            .next()
            .and_then(|row| match row.into_iter().next() {
                Some(DbValue::Blob(bytes)) => Some(bytes),
                Some(DbValue::Text(text)) => Some(text.into_bytes()),
                _ => None,
            }))
    }

    /// Writes a key-value entry.
    pub(crate) fn kv_set(
        &mut self,
        key: &str,
        value: &[u8],
        deadline: Instant,
    ) -> Result<(), Refusal> {
        self.execute(
            &format!(
                "INSERT INTO {KV_TABLE} (key, value) VALUES (?1, ?2) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value"
            ),
            &[
                DbValue::Text(key.to_string()),
                DbValue::Blob(value.to_vec()),
            ],
            deadline,
        )
        .map(|_| ())
    }
}

fn bind(
    statement: &mut rusqlite::Statement<'_>,
    params: &[DbValue],
    context: &str,
) -> Result<(), Refusal> {
    let expected = statement.parameter_count();
    if params.len() != expected {
        return Err(Refusal::fails(
            ErrorKind::Invalid,
            format!(
                "{context}: the statement takes {expected} parameters, {} were given",
                params.len()
            ),
        ));
    }
    for (index, param) in params.iter().enumerate() {
        let value = match param {
            DbValue::Null => Value::Null,
            DbValue::Integer(i) => Value::Integer(*i),
            DbValue::Real(r) => Value::Real(*r),
            DbValue::Text(t) => Value::Text(t.clone()),
            DbValue::Blob(b) => Value::Blob(b.clone()),
        };
        statement
            .raw_bind_parameter(index + 1, value)
            .map_err(|e| Refusal::fails(ErrorKind::Invalid, format!("{context}: {e}")))?;
    }
    Ok(())
}

fn value_size(value: &DbValue) -> u64 {
    match value {
        DbValue::Null => 1,
        DbValue::Integer(_) | DbValue::Real(_) => 8,
        DbValue::Text(t) => t.len() as u64,
        DbValue::Blob(b) => b.len() as u64,
    }
}

/// Bytes in a result.
pub(crate) fn rows_size(rows: &DbRows) -> u64 {
    rows.rows.iter().flatten().map(value_size).sum()
}

/// Bytes in a statement's parameters.
pub(crate) fn params_size(params: &[DbValue]) -> u64 {
    params.iter().map(value_size).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), 1 << 20).unwrap();
        store
            .execute(
                "CREATE TABLE stats (id INTEGER, words INTEGER)",
                &[],
                later(),
            )
            .unwrap();
        let changed = store
            .execute(
                "INSERT INTO stats VALUES (?1, ?2)",
                &[DbValue::Integer(1), DbValue::Integer(129)],
                later(),
            )
            .unwrap();
        assert_eq!(changed, 1);
        store.kv_set("last", b"1", later()).unwrap();
        drop(store);
        let mut store = Store::open(dir.path(), 1 << 20).unwrap();
        let rows = store
            .query(
                "SELECT words FROM stats WHERE id = ?1",
                &[DbValue::Integer(1)],
                later(),
                false,
            )
            .unwrap();
        assert_eq!(rows.columns, ["words"]);
        assert_eq!(rows.rows, vec![vec![DbValue::Integer(129)]]);
        assert_eq!(store.kv_get("last", later()).unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.kv_get("none", later()).unwrap(), None);
    }

    #[test]
    fn no_other_database_is_reachable() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE secrets (s TEXT); INSERT INTO secrets VALUES ('x')")
            .unwrap();
        let mut store = Store::open(dir.path(), 1 << 20).unwrap();
        let attach = format!("ATTACH DATABASE '{}' AS other", other.display());
        let refused = store.execute(&attach, &[], later()).unwrap_err();
        assert_eq!(refused.error.kind, ErrorKind::Denied, "{:?}", refused.error);
        assert_eq!(refused.violation.unwrap().rule, "db");
        let copy = dir.path().join("copy.sqlite");
        let vacuum = format!("VACUUM INTO '{}'", copy.display());
        assert!(store.execute(&vacuum, &[], later()).is_err());
        assert!(!copy.exists(), "VACUUM INTO wrote a file outside the store");
        for pragma in [
            "PRAGMA max_page_count = 100000000",
            "PRAGMA journal_mode = OFF",
        ] {
            let refused = store.execute(pragma, &[], later()).unwrap_err();
            assert_eq!(refused.error.kind, ErrorKind::Denied, "{pragma}");
        }
        assert!(
            store
                .query("PRAGMA table_info(plugin_kv)", &[], later(), false)
                .is_ok()
        );
    }

    #[test]
    fn the_size_cap_holds_and_runaway_queries_stop_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), MIN_CAP).unwrap();
        store
            .execute("CREATE TABLE t (b BLOB)", &[], later())
            .unwrap();
        let blob = DbValue::Blob(vec![7; 32 * 1024]);
        let mut full = None;
        for _ in 0..64 {
            if let Err(e) = store.execute(
                "INSERT INTO t VALUES (?1)",
                std::slice::from_ref(&blob),
                later(),
            ) {
                full = Some(e);
                break;
            }
        }
        let full = full.expect("the cap stops the inserts");
        assert_eq!(full.error.kind, ErrorKind::TooLarge, "{:?}", full.error);

        let soon = Instant::now() + Duration::from_millis(200);
        let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                       SELECT count(*) FROM c";
        let stopped = store.query(endless, &[], soon, false).unwrap_err();
        assert!(
            stopped.error.message.contains("interrupted"),
            "{:?}",
            stopped.error
        );
        assert!(Instant::now() < soon + Duration::from_secs(2));
    }

    #[test]
    fn one_statement_and_matching_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), 1 << 20).unwrap();
        let two = store
            .execute("SELECT 1; SELECT 2", &[], later())
            .unwrap_err();
        assert_eq!(two.error.kind, ErrorKind::Invalid);
        let count = store.query("SELECT ?1", &[], later(), false).unwrap_err();
        assert!(
            count
                .error
                .message
                .contains("takes 1 parameters, 0 were given")
        );
        let write = store
            .query("DELETE FROM plugin_kv", &[], later(), false)
            .unwrap_err();
        assert_eq!(write.error.kind, ErrorKind::Denied);
    }
}
