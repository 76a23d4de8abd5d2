//! A throw-away PostgreSQL database per run, created with `CREATE DATABASE` and dropped
//! (with the per-plugin login roles the host made in it) at the end.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use sqlx::{Connection, Executor, PgConnection};

pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    /// The URL to give the host as `database_url`.
    pub url: String,
}

async fn connect(url: &str) -> Result<PgConnection> {
    match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(url)).await {
        Ok(r) => r.with_context(|| format!("connecting to {url}")),
        Err(_) => bail!("connecting to {url}: no answer within 5 s"),
    }
}

/// `admin_url` with its database name replaced by `name`.
pub fn with_database(admin_url: &str, name: &str) -> Result<String> {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let (server, _) = base
        .rsplit_once('/')
        .filter(|(server, _)| server.contains("://") && !server.ends_with('/'))
        .with_context(|| {
            format!(
                "{admin_url} must name a database, like postgres://user@127.0.0.1:5432/postgres"
            )
        })?;
    Ok(match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    })
}

impl PgDatabase {
    /// Creates `kirana_bench_<pid>_<unix seconds>` on the server of `admin_url`.
    pub async fn create(admin_url: &str) -> Result<Self> {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let name = format!("kirana_bench_{}_{secs}", std::process::id());
        let mut conn = connect(admin_url).await?;
        conn.execute(format!("CREATE DATABASE {name} TEMPLATE template0").as_str())
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        let _ = conn.close().await;
        Ok(Self {
            admin_url: admin_url.to_string(),
            url: with_database(admin_url, &name)?,
            name,
        })
    }

    /// Drops the database and the login roles the host created in it.
    pub async fn drop(self) -> Result<()> {
        kirana::storage::drop_postgres_database(&self.admin_url, &self.name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:55433/postgres", "b").expect("url"),
            "postgres://postgres@127.0.0.1:55433/b"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "b").expect("url"),
            "postgres://u:p@h/b?sslmode=disable"
        );
        assert!(with_database("postgres://h", "b").is_err());
    }
}
