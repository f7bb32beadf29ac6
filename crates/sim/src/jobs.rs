//! The job queue and the workers that run update and import jobs in the background.

use crate::api::{job_status, Shared};
use crate::locked;
use crate::store::{self, now, Job, JobCounts, Profile};
use rusqlite::Connection;
use sailbulk_parse::{email_problem, Format, UpdateRecord, ValidatorBuilder};
use sailbulk_spec::api::messages;
use sailbulk_spec::{JobKind, MAX_LISTS_PER_ACCOUNT};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Records applied per transaction: large enough to be fast, small enough that API calls are not
/// held up while a big job runs.
const BATCH: usize = 1000;

/// Job ids waiting for a worker.
#[derive(Default)]
pub(crate) struct Queue {
    ids: Mutex<VecDeque<String>>,
    ready: Condvar,
    stopped: AtomicBool,
}

impl Queue {
    pub fn push(&self, id: String) {
        locked(&self.ids).push_back(id);
        self.ready.notify_one();
    }

    fn pop(&self) -> Option<String> {
        let mut ids = locked(&self.ids);
        loop {
            if self.is_stopped() {
                return None;
            }
            if let Some(id) = ids.pop_front() {
                return Some(id);
            }
            ids = self.ready.wait(ids).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _guard = locked(&self.ids);
        self.ready.notify_all();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Sleeps, waking early when stopped; false if stopped.
    fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.is_stopped() {
                return false;
            }
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
        }
        !self.is_stopped()
    }
}

/// Queues again the jobs a previous run left pending or running.
pub(crate) fn requeue_unfinished(shared: &Shared) {
    let jobs = shared
        .with_store(store::unfinished_jobs)
        .unwrap_or_default();
    for mut job in jobs {
        if job.status == "running" {
            job.status = "pending".into();
            job.counts = JobCounts::default();
            let _ = shared.with_store(|c| store::save_job(c, &job));
        }
        shared.queue.push(job.job_id);
    }
}

pub(crate) fn worker(shared: &Shared) {
    while let Some(id) = shared.queue.pop() {
        let Ok(Some(mut job)) = shared.with_store(|c| store::get_job(c, &id)) else {
            continue;
        };
        if !shared.queue.sleep(shared.job_delay) {
            return;
        }
        job.status = "running".into();
        job.start_time = Some(now());
        if save(shared, &job).is_err() {
            continue;
        }
        let started = Instant::now();
        let fail = {
            let mut n = locked(&shared.fail_jobs);
            let fail = *n > 0;
            *n = n.saturating_sub(1);
            fail
        };
        let result = if fail {
            Err("the job failed (a fault injected into the simulator)".to_string())
        } else {
            run(shared, &mut job)
        };
        if shared.queue.is_stopped() {
            // Stopped in the middle: the job stays `running`, to run again at the next start.
            return;
        }
        if !shared
            .queue
            .sleep(shared.job_delay.saturating_sub(started.elapsed()))
        {
            return;
        }
        match result {
            Ok(()) => job.status = "completed".into(),
            Err(reason) => {
                job.status = "error".into();
                job.reason = Some(reason);
            }
        }
        job.end_time = Some(now());
        let _ = save(shared, &job);
        if let Some(url) = job.request.get("postback_url").and_then(Value::as_str) {
            let url = url.to_string();
            job.postback = Some(crate::postback::send(
                &url,
                &job_status(&job),
                &shared.api_key,
                &shared.api_secret,
            ));
            let _ = save(shared, &job);
        }
    }
}

fn save(shared: &Shared, job: &Job) -> rusqlite::Result<()> {
    shared.with_store(|c| store::save_job(c, job))
}

/// One change to a profile: a line's own fields, or the job's `update` object.
#[derive(Debug, Default, Clone)]
struct Change {
    vars: Map<String, Value>,
    lists: BTreeMap<String, u8>,
    optout: Option<String>,
    signup_date: Option<String>,
    delete_vars: Vec<String>,
}

impl Change {
    /// From the job's `update` object (already checked when the job was submitted).
    fn from_update(update: Option<&Value>) -> Change {
        let Some(update) = update else {
            return Change::default();
        };
        Change {
            vars: update
                .get("vars")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            lists: update
                .get("lists")
                .and_then(Value::as_object)
                .map(|l| {
                    l.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_u64()? as u8)))
                        .collect()
                })
                .unwrap_or_default(),
            optout: update
                .get("optout")
                .and_then(Value::as_str)
                .map(str::to_string),
            signup_date: None,
            delete_vars: update
                .get("delete_vars")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| Some(v.as_str()?.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// One record to apply: who, and what.
#[derive(Debug)]
struct Item {
    line: u64,
    key: String,
    id: String,
    keys: Vec<(String, String)>,
    merge: bool,
    change: Change,
}

impl Item {
    fn email(line: u64, email: &str) -> Item {
        Item {
            line,
            key: "email".into(),
            id: email.to_string(),
            keys: Vec::new(),
            merge: false,
            change: Change::default(),
        }
    }

    fn from_record(line: u64, r: &UpdateRecord<'_>) -> Result<Item, String> {
        let (key, id) = r.identity();
        Ok(Item {
            line,
            key: key.to_string(),
            id: id.to_string(),
            keys: r
                .keys
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            merge: r.keysconflict.as_deref() == Some("merge"),
            change: Change {
                vars: r.vars().map_err(|e| e.to_string())?,
                lists: r.lists.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                optout: r.optout.map(|o| o.as_str().to_string()),
                signup_date: r.signup_date.map(|raw| {
                    serde_json::from_str::<String>(raw.get())
                        .unwrap_or_else(|_| raw.get().to_string())
                }),
                delete_vars: r.delete_vars.iter().map(|v| v.to_string()).collect(),
            },
        })
    }
}

/// Runs a job; `Err` is the reason it ended in `error`.
fn run(shared: &Shared, job: &mut Job) -> Result<(), String> {
    let kind = JobKind::parse(&job.kind).unwrap_or(JobKind::Update);
    let global = Change::from_update(job.request.get("update"));
    let import_list = job
        .request
        .get("list")
        .and_then(Value::as_str)
        .filter(|_| kind == JobKind::Import)
        .map(str::to_string);
    let mut counts = JobCounts::default();
    let mut batch: Vec<Item> = Vec::with_capacity(BATCH);
    let flush = |batch: &mut Vec<Item>, counts: &mut JobCounts| -> Result<(), String> {
        apply_batch(shared, batch, &global, import_list.as_deref(), counts)
            .map_err(|e| format!("the simulator's store failed: {e}"))?;
        batch.clear();
        Ok(())
    };
    if let Some(list) = &import_list {
        shared
            .transaction(|c| ensure_list(c, list))
            .map_err(|e| e.to_string())?
            .map_err(|(_, m)| m)?;
    }
    let mut stopped = false;
    let mut push =
        |item: Item, batch: &mut Vec<Item>, counts: &mut JobCounts| -> Result<bool, String> {
            batch.push(item);
            if batch.len() == BATCH {
                flush(batch, counts)?;
                if shared.queue.is_stopped() {
                    stopped = true;
                    return Ok(false);
                }
            }
            Ok(true)
        };
    if let Some(file) = &job.file {
        let reader = std::fs::File::open(&file.path)
            .map(|f| BufReader::with_capacity(256 * 1024, f))
            .map_err(|e| format!("the uploaded file cannot be read: {e}"))?;
        if kind == JobKind::Import && is_csv(&file.path) {
            read_csv(reader, &mut counts, |item, counts| {
                push(item, &mut batch, counts)
            })?;
        } else {
            read_lines(reader, kind, &mut counts, |item, counts| {
                push(item, &mut batch, counts)
            })?;
        }
    } else if let Some(emails) = job.request.get("emails").and_then(Value::as_str) {
        for (i, email) in emails.split(',').enumerate() {
            let email = email.trim();
            if email.is_empty() {
                continue;
            }
            if let Some(item) = email_item(i as u64 + 1, email, &mut counts) {
                if !push(item, &mut batch, &mut counts)? {
                    break;
                }
            }
        }
    } else if let Some(list) = job
        .request
        .get("query")
        .and_then(|q| q.get("source_list"))
        .and_then(Value::as_str)
    {
        let sids = shared
            .with_store(|c| store::members(c, list))
            .map_err(|e| e.to_string())?;
        for (i, sid) in sids.into_iter().enumerate() {
            counts.records += 1;
            let item = Item {
                line: i as u64 + 1,
                key: "sid".into(),
                id: sid,
                keys: Vec::new(),
                merge: false,
                change: Change::default(),
            };
            if !push(item, &mut batch, &mut counts)? {
                break;
            }
        }
    }
    if !stopped {
        flush(&mut batch, &mut counts)?;
    }
    job.counts = counts;
    Ok(())
}

fn email_item(line: u64, email: &str, counts: &mut JobCounts) -> Option<Item> {
    counts.records += 1;
    match email_problem(email) {
        Some(problem) => {
            counts.reject(line, "invalid_email", format!("`{email}`: {problem}"));
            None
        }
        None => Some(Item::email(line, email)),
    }
}

/// Whether an import file is CSV: its first non-blank line has a comma.
fn is_csv(path: &std::path::Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
        if line.iter().any(|b| !b.is_ascii_whitespace()) {
            return line.contains(&b',');
        }
        line.clear();
    }
    false
}

/// Reads an email or update file line by line, checking each line as `sailbulk validate` does.
fn read_lines(
    mut reader: impl BufRead,
    kind: JobKind,
    counts: &mut JobCounts,
    mut push: impl FnMut(Item, &mut JobCounts) -> Result<bool, String>,
) -> Result<(), String> {
    let validator = ValidatorBuilder::new()
        .job(kind)
        .format(Some(Format::Json))
        .build();
    let mut format = None;
    let mut raw = Vec::new();
    let mut number = 0u64;
    loop {
        raw.clear();
        let (n, too_long) = read_line_capped(&mut reader, &mut raw)
            .map_err(|e| format!("the uploaded file cannot be read: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        if too_long {
            counts.records += 1;
            counts.reject(
                number,
                "line_too_long",
                format!("the line is longer than {MAX_LINE} bytes"),
            );
            continue;
        }
        let mut line = raw.strip_suffix(b"\n").unwrap_or(&raw);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        if number == 1 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        let Some(detected) = Format::detect(line) else {
            continue;
        };
        // A one-column CSV's header: `email` on the first line is not an address.
        if format.is_none()
            && kind == JobKind::Import
            && std::str::from_utf8(line).is_ok_and(|t| t.trim().eq_ignore_ascii_case("email"))
        {
            format = Some(Format::Emails);
            continue;
        }
        // An import file is one email per line; an update file is decided by its first line.
        let format = *format.get_or_insert(if kind == JobKind::Import {
            Format::Emails
        } else {
            detected
        });
        let item = match format {
            Format::Json => {
                counts.records += 1;
                match UpdateRecord::parse_with(&validator, line) {
                    Ok(record) => match Item::from_record(number, &record) {
                        Ok(item) => Some(item),
                        Err(message) => {
                            counts.reject(number, "invalid_json", message);
                            None
                        }
                    },
                    Err(invalid) => {
                        let first = invalid.findings.first();
                        counts.reject(
                            number,
                            &first.map(|f| f.code.to_string()).unwrap_or_default(),
                            first.map(|f| f.message.clone()).unwrap_or_default(),
                        );
                        None
                    }
                }
            }
            _ => match std::str::from_utf8(line) {
                Ok(text) => email_item(number, text.trim(), counts),
                Err(e) => {
                    counts.records += 1;
                    counts.reject(number, "invalid_utf8", e.to_string());
                    None
                }
            },
        };
        if let Some(item) = item {
            if !push(item, counts)? {
                return Ok(());
            }
        }
    }
}

/// The longest line a job reads whole; a longer one is skipped and rejected.
const MAX_LINE: usize = 64 << 20;

/// Reads a line (with its `\n`) into `buf`, at most [`MAX_LINE`] bytes of it: the bytes consumed
/// and whether the line was longer (then `buf` is empty and the rest of the line skipped).
fn read_line_capped(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
) -> std::io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut too_long = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok((consumed, too_long));
        }
        let (len, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            if buf.len() + len > MAX_LINE {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&available[..len]);
            }
        }
        reader.consume(len);
        consumed += len;
        if done {
            return Ok((consumed, too_long));
        }
    }
}

/// Reads an import CSV: the column named `email` (any case), or the first column when no header
/// names one.
fn read_csv(
    reader: impl std::io::Read,
    counts: &mut JobCounts,
    mut push: impl FnMut(Item, &mut JobCounts) -> Result<bool, String>,
) -> Result<(), String> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut column = None;
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                counts.records += 1;
                counts.reject(line, "invalid_csv", e.to_string());
                continue;
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if column.is_none() {
            let header = record.iter().position(|h| {
                h.trim()
                    .trim_start_matches('\u{feff}')
                    .eq_ignore_ascii_case("email")
            });
            column = Some(header.unwrap_or(0));
            if header.is_some() {
                continue;
            }
        }
        let email = record.get(column.unwrap_or(0)).unwrap_or("").trim();
        if email.is_empty() && record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if let Some(item) = email_item(line, email, counts) {
            if !push(item, counts)? {
                return Ok(());
            }
        }
    }
}

/// Makes sure a natural list exists; the error a line gets when the account is full.
fn ensure_list(c: &Connection, name: &str) -> rusqlite::Result<Result<(), (String, String)>> {
    if store::get_list(c, name)?.is_some() {
        return Ok(Ok(()));
    }
    if store::list_count(c)? >= MAX_LISTS_PER_ACCOUNT {
        return Ok(Err((
            "too_many_lists".into(),
            messages::too_many_lists(MAX_LISTS_PER_ACCOUNT),
        )));
    }
    store::save_list(
        c,
        &store::List {
            list_id: store::new_id(c)?,
            name: name.to_string(),
            kind: "normal".into(),
            primary: false,
            public_name: None,
            vars: Map::new(),
            query: None,
            create_time: now(),
        },
    )?;
    Ok(Ok(()))
}

fn apply_batch(
    shared: &Shared,
    batch: &[Item],
    global: &Change,
    import_list: Option<&str>,
    counts: &mut JobCounts,
) -> rusqlite::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    shared.transaction(|c| {
        for item in batch {
            match apply(c, item, global, import_list)? {
                Ok(created) => {
                    counts.applied += 1;
                    counts.created += u64::from(created);
                }
                Err((code, message)) => counts.reject(item.line, &code, message),
            }
        }
        Ok(())
    })
}

type Applied = Result<bool, (String, String)>;

/// Applies one record; whether a profile was created, or why the record was not applied.
fn apply(
    c: &Connection,
    item: &Item,
    global: &Change,
    import_list: Option<&str>,
) -> rusqlite::Result<Applied> {
    let mut created = false;
    let mut profile = match store::find_profile(c, &item.key, &item.id)? {
        Some(p) => p,
        None if item.key == "sid" => {
            return Ok(Err((
                "user_not_found".into(),
                messages::USER_NOT_FOUND.into(),
            )))
        }
        None => {
            created = true;
            let mut p = Profile {
                sid: store::new_id(c)?,
                optout: "none".into(),
                create_time: now(),
                ..Profile::default()
            };
            store::set_profile_key(&mut p, &item.key, &item.id);
            p
        }
    };
    for (key, value) in &item.keys {
        if key == "sid" || profile.key(key) == Some(value.as_str()) {
            continue;
        }
        if store::find_profile(c, key, value)?.is_some() {
            if !item.merge {
                return Ok(Err((
                    "keys_conflict".into(),
                    format!("{key} `{value}` belongs to another profile; keysconflict \"merge\" moves it to this one"),
                )));
            }
            store::release_key(c, key, value)?;
        }
        store::set_profile_key(&mut profile, key, value);
    }
    for change in [global, &item.change] {
        for (list, value) in &change.lists {
            if *value == 1 {
                if let Err(e) = ensure_list(c, list)? {
                    return Ok(Err(e));
                }
                profile.lists.entry(list.clone()).or_insert_with(now);
            } else {
                profile.lists.remove(list);
            }
        }
        for (name, value) in &change.vars {
            profile.vars.insert(name.clone(), value.clone());
        }
        for name in &change.delete_vars {
            profile.vars.remove(name);
        }
        if let Some(optout) = &change.optout {
            profile.optout = optout.clone();
        }
        if let Some(date) = &change.signup_date {
            profile.signup_date = Some(date.clone());
        }
    }
    if let Some(list) = import_list {
        profile.lists.entry(list.to_string()).or_insert_with(now);
    }
    store::save_profile(c, &profile)?;
    Ok(Ok(created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_skipped_whole() {
        let mut text = b"short\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        text.extend_from_slice(b"\nnext\nlast");
        let mut reader = std::io::BufReader::with_capacity(1 << 16, &text[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line_capped(&mut reader, &mut buf).unwrap(), (6, false));
        assert_eq!(buf, b"short\n");
        buf.clear();
        let (n, too_long) = read_line_capped(&mut reader, &mut buf).unwrap();
        assert_eq!((n, too_long), (MAX_LINE + 11, true));
        assert!(buf.is_empty());
        assert_eq!(read_line_capped(&mut reader, &mut buf).unwrap(), (5, false));
        assert_eq!(buf, b"next\n");
        buf.clear();
        assert_eq!(read_line_capped(&mut reader, &mut buf).unwrap(), (4, false));
        assert_eq!(buf, b"last");
    }
}
