//! `essbot db copy --to postgres://…`: an existing SQLite store copied into an empty PostgreSQL
//! database, every table (history, outbox, alert deliveries and the milestones audit trail
//! included) row for row, ids kept.
//!
//! The tables are read from SQLite's own catalogue and their columns from `pragma_table_info`,
//! so a table or a column added by a later migration is copied without touching this file; a
//! table the destination lacks stops the copy. The source is read in one transaction (one
//! snapshot) and the destination written in one transaction: a failure leaves it empty. Then
//! the identity sequences are moved past the copied ids and every table's rows are counted on
//! both sides.

use sqlx::Row;

use super::{Backend, MAX_VARIABLES, Store, StoreError, row_placeholders};

/// Rows per INSERT: the dossiers carry their JSON snapshot, a few kB each.
const ROWS_PER_STATEMENT: usize = 500;

/// Tables whose rows must go before others' (foreign keys); the rest follow in name order.
const FIRST: [&str; 2] = ["dossiers", "alert_ledger"];

/// Rows of one table, on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: String,
    pub source: i64,
    pub destination: i64,
}

/// What `essbot db copy` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub tables: Vec<TableCount>,
}

impl CopyReport {
    /// True when every table has as many rows on both sides.
    pub fn counts_match(&self) -> bool {
        self.tables.iter().all(|t| t.source == t.destination)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Text,
}

struct Table {
    name: String,
    columns: Vec<(String, Kind)>,
}

impl Store {
    /// Copies this SQLite store into `destination`, an empty PostgreSQL store (migrated to the
    /// same version: both were opened by this binary).
    ///
    /// # Errors
    /// [`StoreError::Copy`] when this is not SQLite, the destination not PostgreSQL, the
    /// destination not empty, a table missing there, or the counts differ; database failures.
    pub async fn copy_into(&self, destination: &Store) -> Result<CopyReport, StoreError> {
        if self.backend() != Backend::Sqlite || destination.backend() != Backend::Postgres {
            return Err(StoreError::Copy(
                "only a SQLite database can be copied, and only into a PostgreSQL one".into(),
            ));
        }
        let tables = self.tables().await?;
        for t in &tables {
            if matches!(t.name.as_str(), "leadership" | "instances") {
                continue;
            }
            let n = count(destination, &t.name).await.map_err(|_| {
                StoreError::Copy(format!(
                    "table {} is missing from the destination: is it an essbot database of this version (essbot db migrate)?",
                    t.name
                ))
            })?;
            if n > 0 {
                return Err(StoreError::Copy(format!(
                    "the destination is not empty (table {} has {n} rows): copy into a new, empty database",
                    t.name
                )));
            }
        }

        let mut src = self.pool.begin().await?;
        let mut dst = destination.pool.begin().await?;
        // The destination's migration seeded these: the source's rows replace them.
        for seeded in ["leadership", "instances"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {seeded}")))
                .execute(&mut *dst)
                .await?;
        }
        for t in &tables {
            let list = t
                .columns
                .iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let per_statement = ROWS_PER_STATEMENT.min(MAX_VARIABLES / t.columns.len().max(1));
            let mut after = i64::MIN;
            loop {
                // Table and column names come from SQLite's catalogue, values are bound.
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT rowid AS essbot_copy_rowid, {list} FROM {} WHERE rowid > $1
                     ORDER BY rowid LIMIT $2",
                    t.name
                )))
                .bind(after)
                .bind(i64::try_from(per_statement).unwrap_or(500))
                .fetch_all(&mut *src)
                .await?;
                let Some(last) = rows.last() else { break };
                after = last.try_get("essbot_copy_rowid")?;
                let sql = format!(
                    "INSERT INTO {} ({list}) OVERRIDING SYSTEM VALUE VALUES {}",
                    t.name,
                    row_placeholders(rows.len(), t.columns.len())
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for row in &rows {
                    for (i, (_, kind)) in t.columns.iter().enumerate() {
                        q = match kind {
                            Kind::Integer => q.bind(row.try_get::<Option<i64>, _>(i + 1)?),
                            Kind::Text => q.bind(row.try_get::<Option<String>, _>(i + 1)?),
                        };
                    }
                }
                q.execute(&mut *dst).await?;
            }
            if t.columns
                .iter()
                .any(|(c, k)| c == "id" && *k == Kind::Integer)
            {
                // The identity sequence resumes after the copied ids (no-op without one).
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT setval(seq, COALESCE((SELECT MAX(id) FROM {0}), 0) + 1, false) > 0
                     FROM (SELECT pg_get_serial_sequence('{0}', 'id') AS seq) s
                     WHERE seq IS NOT NULL",
                    t.name
                )))
                .fetch_all(&mut *dst)
                .await?;
            }
        }
        dst.commit().await?;
        src.commit().await?;

        let mut report = CopyReport::default();
        for t in &tables {
            report.tables.push(TableCount {
                table: t.name.clone(),
                source: count(self, &t.name).await?,
                destination: count(destination, &t.name).await?,
            });
        }
        if !report.counts_match() {
            let diff: Vec<String> = report
                .tables
                .iter()
                .filter(|t| t.source != t.destination)
                .map(|t| format!("{}: {} → {}", t.table, t.source, t.destination))
                .collect();
            return Err(StoreError::Copy(format!(
                "row counts differ after the copy ({}): was essbot running on the source?",
                diff.join(", ")
            )));
        }
        Ok(report)
    }

    /// The SQLite store's tables and their columns, in copy order.
    async fn tables(&self) -> Result<Vec<Table>, StoreError> {
        let mut names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master
             WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'
             ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        names.sort_by_key(|n| FIRST.iter().position(|f| f == n).unwrap_or(FIRST.len()));
        let mut tables = Vec::with_capacity(names.len());
        for name in names {
            let columns = sqlx::query("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                .bind(&name)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| {
                    let column: String = r.try_get("name")?;
                    let ty: String = r.try_get("type")?;
                    let kind = if ty.to_ascii_uppercase().contains("INT") {
                        Kind::Integer
                    } else {
                        Kind::Text
                    };
                    Ok((column, kind))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            tables.push(Table { name, columns });
        }
        Ok(tables)
    }
}

async fn count(store: &Store, table: &str) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&store.pool)
            .await?,
    )
}
