//! Profiles, lists and jobs, in SQLite: in memory by default, in a file with a state directory.

use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// A user profile as the simulator keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The profile id (`sid`), 24 hex digits.
    pub sid: String,
    /// The `email` key.
    pub email: Option<String>,
    /// The `extid` key.
    pub extid: Option<String>,
    /// The `sms` key.
    pub sms: Option<String>,
    /// Custom vars.
    pub vars: Map<String, Value>,
    /// Lists the user is on, with the time (epoch seconds) they were added.
    pub lists: BTreeMap<String, u64>,
    /// Opt-out level: `none`, `all`, `blast` or `basic`.
    pub optout: String,
    /// `signup_date` as it was given.
    pub signup_date: Option<String>,
    /// When the profile was created (epoch seconds).
    pub create_time: u64,
}

impl Profile {
    /// The value of an identity key (`email`, `extid`, `sms`, `sid`).
    pub fn key(&self, key: &str) -> Option<&str> {
        match key {
            "sid" => Some(&self.sid),
            "email" => self.email.as_deref(),
            "extid" => self.extid.as_deref(),
            "sms" => self.sms.as_deref(),
            _ => None,
        }
    }

    fn set_key(&mut self, key: &str, value: Option<String>) {
        match key {
            "email" => self.email = value,
            "extid" => self.extid = value,
            "sms" => self.sms = value,
            _ => {}
        }
    }
}

/// A list as the simulator keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List {
    /// The list's id, 24 hex digits.
    pub list_id: String,
    /// The list's name.
    pub name: String,
    /// `normal` (natural) or `smart`.
    pub kind: String,
    /// Whether the list is primary.
    pub primary: bool,
    /// `public_name`.
    pub public_name: Option<String>,
    /// List vars.
    pub vars: Map<String, Value>,
    /// A smart list's query.
    pub query: Option<Value>,
    /// When the list was created (epoch seconds).
    pub create_time: u64,
}

/// One line of a job's file that was not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    /// Line number in the file, from 1.
    pub line: u64,
    /// The finding code (as `sailbulk validate` gives it) or `apply_error`.
    pub code: String,
    /// What was wrong.
    pub message: String,
}

/// What a job did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    /// Records (non-blank lines, or emails) read.
    pub records: u64,
    /// Records applied.
    pub applied: u64,
    /// Profiles created.
    pub created: u64,
    /// Records not applied.
    pub rejected: u64,
    /// The first rejected records, with why (at most [`MAX_LISTED_ERRORS`]).
    pub errors: Vec<LineError>,
}

/// How many rejected records a job lists; the rest are only counted.
pub const MAX_LISTED_ERRORS: usize = 1000;

impl JobCounts {
    pub(crate) fn reject(&mut self, line: u64, code: &str, message: String) {
        self.rejected += 1;
        if self.errors.len() < MAX_LISTED_ERRORS {
            self.errors.push(LineError {
                line,
                code: code.to_string(),
                message,
            });
        }
    }
}

/// A file received with a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedFile {
    /// Where the simulator keeps it.
    pub path: std::path::PathBuf,
    /// The file name the client gave, if any.
    pub filename: Option<String>,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
}

/// A job as the simulator keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The job id, 24 hex digits.
    pub job_id: String,
    /// `update` or `import`.
    pub kind: String,
    /// The job's name, as the platform generates it.
    pub name: String,
    /// `pending`, `running`, `completed` or `error`.
    pub status: String,
    /// When it was submitted (epoch seconds).
    pub create_time: u64,
    /// When it started running.
    pub start_time: Option<u64>,
    /// When it ended.
    pub end_time: Option<u64>,
    /// The call's parameters (the `json` object).
    pub request: Value,
    /// The uploaded file, for file jobs.
    pub file: Option<ReceivedFile>,
    /// Counts, once running.
    pub counts: JobCounts,
    /// Why the job ended in `error`.
    pub reason: Option<String>,
    /// What happened to the postback, once sent.
    pub postback: Option<String>,
}

pub(crate) struct Store {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (
    sid TEXT PRIMARY KEY, email TEXT UNIQUE, extid TEXT UNIQUE, sms TEXT UNIQUE,
    vars TEXT NOT NULL, optout TEXT NOT NULL, signup_date TEXT, create_time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lists (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (
    list TEXT NOT NULL, sid TEXT NOT NULL, time INTEGER NOT NULL, PRIMARY KEY (list, sid));
CREATE INDEX IF NOT EXISTS members_sid ON members (sid);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, status TEXT NOT NULL, data TEXT NOT NULL);
";

type Result<T> = rusqlite::Result<T>;

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Store {
    pub fn open(path: Option<&Path>) -> Result<Store> {
        let conn = match path {
            Some(path) => Connection::open(path)?,
            None => Connection::open_in_memory()?,
        };
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store { conn })
    }

    /// Runs `f` in one transaction.
    pub fn transaction<T>(&mut self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let tx = self.conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// A new id in the shape of the platform's (24 hex digits: seconds, then a counter).
pub(crate) fn new_id(conn: &Connection) -> Result<String> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('next_id', 1)
         ON CONFLICT (key) DO UPDATE SET value = value + 1",
        [],
    )?;
    let n: i64 = conn.query_row("SELECT value FROM meta WHERE key = 'next_id'", [], |r| {
        r.get(0)
    })?;
    Ok(format!("{:08x}{:016x}", now() as u32, n as u64))
}

fn profile_from_row(row: &rusqlite::Row<'_>) -> Result<Profile> {
    let vars: String = row.get(4)?;
    Ok(Profile {
        sid: row.get(0)?,
        email: row.get(1)?,
        extid: row.get(2)?,
        sms: row.get(3)?,
        vars: serde_json::from_str(&vars).map_err(json_err)?,
        lists: BTreeMap::new(),
        optout: row.get(5)?,
        signup_date: row.get(6)?,
        create_time: row.get::<_, i64>(7)? as u64,
    })
}

/// The profile with this identity key, with its lists.
pub(crate) fn find_profile(conn: &Connection, key: &str, value: &str) -> Result<Option<Profile>> {
    let column = match key {
        "sid" | "email" | "extid" | "sms" => key,
        _ => return Ok(None),
    };
    let sql = format!(
        "SELECT sid, email, extid, sms, vars, optout, signup_date, create_time
         FROM profiles WHERE {column} = ?1"
    );
    let Some(mut profile) = conn.query_row(&sql, [value], profile_from_row).optional()? else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached("SELECT list, time FROM members WHERE sid = ?1")?;
    let rows = stmt.query_map([&profile.sid], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    for row in rows {
        let (list, time) = row?;
        profile.lists.insert(list, time);
    }
    Ok(Some(profile))
}

/// Writes a profile and its list memberships.
pub(crate) fn save_profile(conn: &Connection, profile: &Profile) -> Result<()> {
    let vars = serde_json::to_string(&profile.vars).map_err(json_err)?;
    conn.prepare_cached(
        "INSERT INTO profiles (sid, email, extid, sms, vars, optout, signup_date, create_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (sid) DO UPDATE SET email = ?2, extid = ?3, sms = ?4, vars = ?5,
             optout = ?6, signup_date = ?7",
    )?
    .execute(params![
        profile.sid,
        profile.email,
        profile.extid,
        profile.sms,
        vars,
        profile.optout,
        profile.signup_date,
        profile.create_time as i64
    ])?;
    conn.prepare_cached("DELETE FROM members WHERE sid = ?1")?
        .execute([&profile.sid])?;
    let mut insert =
        conn.prepare_cached("INSERT INTO members (list, sid, time) VALUES (?1, ?2, ?3)")?;
    for (list, time) in &profile.lists {
        insert.execute(params![list, profile.sid, *time as i64])?;
    }
    Ok(())
}

/// Takes an identity key away from whichever profile holds it (for `keysconflict: merge`).
pub(crate) fn release_key(conn: &Connection, key: &str, value: &str) -> Result<()> {
    if let Some(mut other) = find_profile(conn, key, value)? {
        other.set_key(key, None);
        save_profile(conn, &other)?;
    }
    Ok(())
}

pub(crate) fn set_profile_key(profile: &mut Profile, key: &str, value: &str) {
    profile.set_key(key, Some(value.to_string()));
}

/// The JSON of the row that `sql` (one `data` column, one `?1`) selects for `key`, read back.
fn one_row<T: DeserializeOwned>(conn: &Connection, sql: &str, key: &str) -> Result<Option<T>> {
    let data: Option<String> = conn.query_row(sql, [key], |r| r.get(0)).optional()?;
    data.map(|d| serde_json::from_str(&d).map_err(json_err))
        .transpose()
}

/// The JSON of every row that `sql` (one `data` column) selects, read back, in its order.
fn all_rows<T: DeserializeOwned>(conn: &Connection, sql: &str) -> Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|d| serde_json::from_str(&d?).map_err(json_err))
        .collect()
}

pub(crate) fn get_list(conn: &Connection, name: &str) -> Result<Option<List>> {
    one_row(conn, "SELECT data FROM lists WHERE name = ?1", name)
}

pub(crate) fn lists(conn: &Connection) -> Result<Vec<List>> {
    all_rows(conn, "SELECT data FROM lists ORDER BY name")
}

pub(crate) fn list_count(conn: &Connection) -> Result<usize> {
    conn.query_row("SELECT COUNT(*) FROM lists", [], |r| r.get::<_, i64>(0))
        .map(|n| n as usize)
}

pub(crate) fn primary_list_count(conn: &Connection) -> Result<usize> {
    Ok(lists(conn)?.iter().filter(|l| l.primary).count())
}

pub(crate) fn save_list(conn: &Connection, list: &List) -> Result<()> {
    let data = serde_json::to_string(list).map_err(json_err)?;
    conn.execute(
        "INSERT INTO lists (name, data) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET data = ?2",
        params![list.name, data],
    )?;
    Ok(())
}

pub(crate) fn delete_list(conn: &Connection, name: &str) -> Result<bool> {
    conn.execute("DELETE FROM members WHERE list = ?1", [name])?;
    Ok(conn.execute("DELETE FROM lists WHERE name = ?1", [name])? > 0)
}

pub(crate) fn member_count(conn: &Connection, name: &str) -> Result<u64> {
    conn.query_row(
        "SELECT COUNT(*) FROM members WHERE list = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
}

/// The sids of a list's members, in a stable order.
pub(crate) fn members(conn: &Connection, name: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT sid FROM members WHERE list = ?1 ORDER BY sid")?;
    let rows = stmt.query_map([name], |r| r.get::<_, String>(0))?;
    rows.collect()
}

pub(crate) fn save_job(conn: &Connection, job: &Job) -> Result<()> {
    let data = serde_json::to_string(job).map_err(json_err)?;
    conn.execute(
        "INSERT INTO jobs (job_id, seq, status, data)
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs), ?2, ?3)
         ON CONFLICT (job_id) DO UPDATE SET status = ?2, data = ?3",
        params![job.job_id, job.status, data],
    )?;
    Ok(())
}

pub(crate) fn get_job(conn: &Connection, id: &str) -> Result<Option<Job>> {
    one_row(conn, "SELECT data FROM jobs WHERE job_id = ?1", id)
}

/// Jobs in the order they were submitted.
pub(crate) fn jobs(conn: &Connection) -> Result<Vec<Job>> {
    jobs_where(conn, "")
}

/// Jobs still `pending` or `running`, in the order they were submitted.
pub(crate) fn unfinished_jobs(conn: &Connection) -> Result<Vec<Job>> {
    jobs_where(conn, "WHERE status IN ('pending', 'running')")
}

fn jobs_where(conn: &Connection, filter: &str) -> Result<Vec<Job>> {
    all_rows(
        conn,
        &format!("SELECT data FROM jobs {filter} ORDER BY seq"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_lists_and_jobs_round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        {
            let mut store = Store::open(Some(&path)).unwrap();
            store
                .transaction(|c| {
                    let mut p = Profile {
                        sid: new_id(c)?,
                        email: Some("a@example.com".into()),
                        optout: "none".into(),
                        ..Profile::default()
                    };
                    p.vars.insert("name".into(), "Zoë".into());
                    p.lists.insert("Main".into(), 5);
                    save_profile(c, &p)?;
                    save_list(
                        c,
                        &List {
                            list_id: new_id(c)?,
                            name: "Main".into(),
                            kind: "normal".into(),
                            primary: false,
                            public_name: None,
                            vars: Map::new(),
                            query: None,
                            create_time: 1,
                        },
                    )
                })
                .unwrap();
        }
        let store = Store::open(Some(&path)).unwrap();
        let p = find_profile(store.conn(), "email", "a@example.com")
            .unwrap()
            .unwrap();
        assert_eq!(p.vars["name"], "Zoë");
        assert_eq!(p.lists["Main"], 5);
        assert_eq!(member_count(store.conn(), "Main").unwrap(), 1);
        assert_eq!(
            find_profile(store.conn(), "sid", &p.sid).unwrap().unwrap(),
            p
        );
        assert!(find_profile(store.conn(), "email", "b@example.com")
            .unwrap()
            .is_none());
        // Ids never repeat, across restarts too.
        let a = new_id(store.conn()).unwrap();
        let b = new_id(store.conn()).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
    }
}
