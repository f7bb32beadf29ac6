//! The routes: request checks (faults, rate limit, parameters, signature), then `/job`, `/user`
//! and `/list`.

use crate::faults::{FaultKind, Faults, RateLimits, Window};
use crate::http::{Body, Handler, Head, Outcome, Response};
use crate::params::{self, Params, ParamsError};
use crate::store::{self, now, Job, JobCounts, List, Store};
use crate::{locked, RequestRecord};
use rusqlite::Connection;
use sailbulk_spec::api::{self as spec, messages, ErrorCode};
use sailbulk_spec::api::{same_signature, sign};
use sailbulk_spec::{
    is_identity_key, list_name_problem, var_name_problem, JobKind, Optout, VarNameProblem,
    LIST_VARS_MAX, MAX_LISTS_PER_ACCOUNT, MAX_PRIMARY_LISTS, VAR_NAME_MAX_CHARS,
    VAR_VALUE_MAX_CHARS,
};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the server threads and the job workers share.
pub(crate) struct Shared {
    pub api_key: String,
    pub api_secret: String,
    pub files_dir: PathBuf,
    pub store: Mutex<Store>,
    pub faults: Mutex<Faults>,
    pub limits: Mutex<RateLimits>,
    pub requests: Mutex<Vec<RequestRecord>>,
    pub on_request: Option<crate::RequestHook>,
    pub queue: crate::jobs::Queue,
    pub job_delay: Duration,
    pub fail_jobs: Mutex<u32>,
}

impl Shared {
    pub fn with_store<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let store = locked(&self.store);
        f(store.conn())
    }

    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let mut store = locked(&self.store);
        store.transaction(f)
    }
}

/// An API error answer: HTTP status, error code, message.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: u16,
    code: ErrorCode,
    message: String,
}

impl ApiError {
    fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// Error 99 with HTTP 400: the job and list pages' usual answer.
    fn other(message: impl Into<String>) -> ApiError {
        ApiError::new(400, spec::ERROR_OTHER, message)
    }

    fn missing(name: &str) -> ApiError {
        ApiError::new(
            400,
            spec::ERROR_MISSING_PARAMETER,
            messages::missing_parameter(name),
        )
    }

    fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            500,
            spec::ERROR_INTERNAL,
            format!("{}: {e}", spec::error_text(spec::ERROR_INTERNAL)),
        )
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::internal(e)
    }
}

type ApiResult = Result<(u16, Value), ApiError>;

pub(crate) struct Api {
    shared: Arc<Shared>,
}

impl Api {
    pub fn new(shared: Arc<Shared>) -> Api {
        Api { shared }
    }
}

/// What a request produced, for the log.
#[derive(Default)]
struct Trace {
    error: Option<u32>,
    job_id: Option<String>,
    fault: Option<String>,
}

fn json_response(status: u16, body: &Value, window: Option<Window>) -> Response {
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    if let Some(w) = window {
        let values = [
            w.limit.to_string(),
            w.limit.saturating_sub(w.used).to_string(),
            w.reset.to_string(),
        ];
        for (name, value) in spec::RATE_LIMIT_HEADERS.iter().zip(values) {
            headers.push((name.to_string(), value));
        }
    }
    Response {
        status,
        headers,
        body: serde_json::to_vec(body).unwrap_or_default(),
    }
}

/// An error body holds exactly `error` and `errormsg`: the official clients tell an error from
/// a success by those two keys and nothing else.
fn error_body(e: &ApiError) -> Value {
    json!({"error": e.code, "errormsg": e.message})
}

impl Handler for Api {
    fn handle(&self, head: &Head, body: &mut Body<'_>) -> Outcome {
        let started = Instant::now();
        let mut trace = Trace::default();
        let method = head.method.to_ascii_uppercase();
        let path = normalize(&head.path);
        let fault = locked(&self.shared.faults).take(&method, &path);
        let mut after = None;
        let outcome = match fault {
            Some(FaultKind::Status {
                status,
                retry_after,
            }) => {
                trace.fault = Some(format!("status {status}"));
                let response = fault_response(status, retry_after, &mut trace);
                Outcome::Respond {
                    response,
                    close: false,
                }
            }
            Some(FaultKind::DropBeforeProcessing) => {
                trace.fault = Some("drop before processing".into());
                let _ = std::io::copy(body, &mut std::io::sink());
                Outcome::Drop
            }
            other => {
                after = other;
                self.answer(head, &method, &path, body, &mut trace)
            }
        };
        let outcome = match after {
            Some(FaultKind::DropAfterProcessing) => {
                trace.fault = Some("drop after processing".into());
                Outcome::Drop
            }
            Some(FaultKind::Delay(d)) => {
                trace.fault = Some(format!("delay {} ms", d.as_millis()));
                std::thread::sleep(d);
                outcome
            }
            _ => outcome,
        };
        let record = RequestRecord {
            method,
            path,
            status: match &outcome {
                Outcome::Respond { response, .. } => Some(response.status),
                Outcome::Drop => None,
            },
            error: trace.error,
            job_id: trace.job_id,
            body_bytes: body.bytes_read(),
            fault: trace.fault,
            elapsed: started.elapsed(),
        };
        if let Some(hook) = &self.shared.on_request {
            hook(&record);
        }
        let mut requests = locked(&self.shared.requests);
        // The log is for assertions and inspection; a long dry run keeps the latest entries.
        if requests.len() >= 100_000 {
            requests.drain(..50_000);
        }
        requests.push(record);
        outcome
    }
}

fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.to_string()
    }
}

fn fault_response(status: u16, retry_after: Duration, trace: &mut Trace) -> Response {
    match status {
        429 => {
            trace.error = Some(spec::ERROR_TOO_MANY_REQUESTS);
            let reset = now() + retry_after.as_secs().max(1);
            let e = ApiError::new(
                429,
                spec::ERROR_TOO_MANY_REQUESTS,
                spec::error_text(spec::ERROR_TOO_MANY_REQUESTS),
            );
            json_response(
                429,
                &error_body(&e),
                Some(Window {
                    limit: 0,
                    used: 0,
                    reset,
                }),
            )
        }
        500 => {
            trace.error = Some(spec::ERROR_INTERNAL);
            let e = ApiError::new(
                500,
                spec::ERROR_INTERNAL,
                spec::error_text(spec::ERROR_INTERNAL),
            );
            json_response(500, &error_body(&e), None)
        }
        // A gateway in front of the API answers in plain text, not with an API error.
        _ => Response {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: format!("{status} the service is unavailable (simulated)\n").into_bytes(),
        },
    }
}

impl Api {
    fn answer(
        &self,
        head: &Head,
        method: &str,
        path: &str,
        body: &mut Body<'_>,
        trace: &mut Trace,
    ) -> Outcome {
        let (window, allowed) = locked(&self.shared.limits).hit(method, path, now());
        let mut close = false;
        let result = if !allowed {
            Err(ApiError::new(
                429,
                spec::ERROR_TOO_MANY_REQUESTS,
                spec::error_text(spec::ERROR_TOO_MANY_REQUESTS),
            ))
        } else {
            match self.read_params(head, method, body) {
                Ok(mut params) => {
                    // An upload is kept only if a job adopts it; otherwise it is deleted when
                    // `file` is dropped.
                    let file = params.file.take();
                    self.authenticate(&params)
                        .and_then(|call| self.route(method, path, &call, file, trace))
                }
                Err(e) => {
                    // A body that was not read to its end cannot be followed by another request.
                    close = true;
                    Err(e)
                }
            }
        };
        let (status, value) = match result {
            Ok(ok) => ok,
            Err(e) => {
                trace.error = Some(e.code);
                (e.status, error_body(&e))
            }
        };
        Outcome::Respond {
            response: json_response(status, &value, Some(window)),
            close,
        }
    }

    fn read_params(
        &self,
        head: &Head,
        method: &str,
        body: &mut Body<'_>,
    ) -> Result<Params, ApiError> {
        match method {
            "GET" | "DELETE" => Ok(Params {
                pairs: params::parse_urlencoded(head.query.as_bytes()),
                file: None,
            }),
            "POST" => {
                let content_type = head.header("content-type").unwrap_or("");
                let mapped = |e: ParamsError| {
                    match e {
                    ParamsError::TooLarge { what: "file", .. } => ApiError::other(format!(
                        "{e}: the maximum upload file size is {} bytes for update jobs and {} bytes for import jobs",
                        JobKind::Update.max_file_bytes(),
                        JobKind::Import.max_file_bytes()
                    )),
                    ParamsError::Io(io) => ApiError::other(format!("the request body could not be read: {io}")),
                    e => ApiError::other(e.to_string()),
                }
                };
                if let Some(boundary) = params::multipart_boundary(content_type) {
                    if let Some(n) = body.declared_len() {
                        // Refuse a body that cannot fit before reading it.
                        if n > JobKind::Update.max_file_bytes() + params::MAX_TEXT {
                            return Err(ApiError::other(messages::file_too_large(
                                n,
                                JobKind::Update.max_file_bytes(),
                            )));
                        }
                    }
                    params::read_multipart(body, &boundary, &self.shared.files_dir, file_limit)
                        .map_err(mapped)
                } else {
                    params::read_form(body)
                        .map(|pairs| Params { pairs, file: None })
                        .map_err(mapped)
                }
            }
            _ => {
                let _ = body.drain(params::MAX_TEXT);
                Err(ApiError::new(
                    405,
                    spec::ERROR_UNSUPPORTED_METHOD,
                    format!(
                        "{}: {method}",
                        spec::error_text(spec::ERROR_UNSUPPORTED_METHOD)
                    ),
                ))
            }
        }
    }

    /// Checks the four parameters and the signature; the call's parameters as an object.
    fn authenticate(&self, params: &Params) -> Result<Map<String, Value>, ApiError> {
        let mut text: Vec<(&str, &str)> = Vec::with_capacity(params.pairs.len());
        for (name, value) in &params.pairs {
            let value = std::str::from_utf8(value).map_err(|_| {
                ApiError::new(
                    400,
                    spec::ERROR_INVALID_UTF8,
                    format!("{}: {name}", spec::error_text(spec::ERROR_INVALID_UTF8)),
                )
            })?;
            text.push((name, value));
        }
        let get = |name: &str| text.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let key = get("api_key").ok_or_else(|| ApiError::missing("api_key"))?;
        let sig = get("sig").ok_or_else(|| ApiError::missing("sig"))?;
        if key != self.shared.api_key {
            return Err(ApiError::new(
                401,
                spec::ERROR_INVALID_API_KEY,
                spec::error_text(spec::ERROR_INVALID_API_KEY),
            ));
        }
        // Every value but `sig` is signed, and the file part is not a value (API notes).
        let expected = sign(
            &self.shared.api_secret,
            text.iter().filter(|(n, _)| *n != "sig").map(|(_, v)| *v),
        );
        if !same_signature(&expected, sig.trim()) {
            return Err(ApiError::new(
                401,
                spec::ERROR_AUTHENTICATION_FAILED,
                spec::error_text(spec::ERROR_AUTHENTICATION_FAILED),
            ));
        }
        match get("format") {
            None | Some("json") => {}
            Some(other) => {
                return Err(ApiError::other(format!(
                    "Unsupported format: {other}; the simulator answers in json only"
                )))
            }
        }
        match get("json") {
            Some(json) => match serde_json::from_str::<Value>(json) {
                Ok(Value::Object(map)) => Ok(map),
                Ok(_) => Err(ApiError::other("The json parameter must be a JSON object")),
                Err(e) => Err(ApiError::other(format!(
                    "The json parameter is not valid JSON: {e}"
                ))),
            },
            // Flat form mode: `job=update&update[vars][a]=1`.
            None => {
                Ok(unflatten(text.iter().filter(|(n, _)| {
                    !matches!(*n, "api_key" | "sig" | "format")
                })))
            }
        }
    }

    fn route(
        &self,
        method: &str,
        path: &str,
        call: &Map<String, Value>,
        file: Option<params::Upload>,
        trace: &mut Trace,
    ) -> ApiResult {
        let unsupported = || {
            Err(ApiError::new(
                405,
                spec::ERROR_UNSUPPORTED_METHOD,
                format!(
                    "{}: {method} {path}",
                    spec::error_text(spec::ERROR_UNSUPPORTED_METHOD)
                ),
            ))
        };
        match (path, method) {
            ("/job", "POST") => self.post_job(call, file, trace),
            ("/job", "GET") => {
                let id = str_param(call, "job_id")?.ok_or_else(|| ApiError::missing("job_id"))?;
                trace.job_id = Some(id.to_string());
                let job = self
                    .shared
                    .with_store(|c| store::get_job(c, id))?
                    .ok_or_else(|| ApiError::other(messages::unknown_job_id(id)))?;
                Ok((200, job_status(&job)))
            }
            ("/job", _) => unsupported(),
            ("/user", "GET") => self.get_user(call),
            ("/user", _) => unsupported(),
            ("/list", "GET") => self.get_list(call),
            ("/list", "POST") => self.post_list(call),
            ("/list", "DELETE") => self.delete_list(call),
            ("/list", _) => unsupported(),
            _ => Err(ApiError::new(
                404,
                spec::ERROR_OTHER,
                format!("Unknown action: {path}; the simulator serves /job, /user and /list"),
            )),
        }
    }

    fn post_job(
        &self,
        call: &Map<String, Value>,
        file: Option<params::Upload>,
        trace: &mut Trace,
    ) -> ApiResult {
        let kind = str_param(call, "job")?.ok_or_else(|| ApiError::missing("job"))?;
        let job_kind = JobKind::parse(kind).ok_or_else(|| {
            ApiError::other(format!(
                "Unsupported job type: {kind}; the simulator runs update and import jobs"
            ))
        })?;
        for name in ["report_email", "postback_url"] {
            str_param(call, name)?;
        }
        if let Some(url) = str_param(call, "postback_url")? {
            if !is_url(url) {
                return Err(ApiError::other(messages::invalid_url(url)));
            }
        }
        if let Some(upload) = &file {
            let max = job_kind.max_file_bytes();
            if upload.bytes > max {
                return Err(ApiError::other(messages::file_too_large(upload.bytes, max)));
            }
        }
        // A client may leave `file` (a local path) in the json as well as sending the part; the
        // part is what counts. Without a part, a `file` value is not an upload.
        let has_file = file.is_some();
        if call.contains_key("file") && !has_file {
            return Err(ApiError::other(
                "The file parameter must be sent as a multipart file part named `file`",
            ));
        }
        let name = match job_kind {
            JobKind::Update => {
                let sources = ["emails", "url", "query"]
                    .iter()
                    .filter(|s| call.get(**s).is_some_and(|v| !v.is_null()))
                    .count()
                    + usize::from(has_file);
                if sources != 1 {
                    return Err(ApiError::other(messages::UPDATE_SOURCE_REQUIRED));
                }
                if let Some(url) = call.get("url").filter(|v| !v.is_null()) {
                    let url = url.as_str().unwrap_or_default();
                    if !is_url(url) {
                        return Err(ApiError::other(messages::invalid_url(url)));
                    }
                    return Err(ApiError::other(format!(
                        "url jobs are not supported by the simulator, which works offline: upload {url} as a file instead"
                    )));
                }
                if let Some(update) = call.get("update").filter(|v| !v.is_null()) {
                    check_update_object(update)?;
                }
                if let Some(query) = call.get("query").filter(|v| !v.is_null()) {
                    let list = check_query(query)?;
                    if self
                        .shared
                        .with_store(|c| store::get_list(c, list))?
                        .is_none()
                    {
                        return Err(ApiError::new(
                            404,
                            spec::ERROR_UNKNOWN_LIST,
                            messages::unknown_list(list),
                        ));
                    }
                }
                match &file {
                    Some(f) => format!("Bulk Update: {}", f.filename.as_deref().unwrap_or("file")),
                    None if call.contains_key("query") => "Bulk Update: query".to_string(),
                    None => "Bulk Update: emails".to_string(),
                }
            }
            _ => {
                let list = str_param(call, "list")?.ok_or_else(|| ApiError::missing("list"))?;
                check_list_name(list)?;
                let sources = usize::from(call.get("emails").is_some_and(|v| !v.is_null()))
                    + usize::from(has_file);
                if sources != 1 {
                    return Err(ApiError::other(messages::IMPORT_SOURCE_REQUIRED));
                }
                format!("List Import: {list}")
            }
        };
        if let Some(emails) = call.get("emails").filter(|v| !v.is_null()) {
            if !emails.is_string() {
                return Err(ApiError::other("emails must be a comma-separated string"));
            }
        }
        let job = self.shared.transaction(|c| {
            let job = Job {
                job_id: store::new_id(c)?,
                kind: kind.to_string(),
                name,
                status: "pending".into(),
                create_time: now(),
                start_time: None,
                end_time: None,
                request: Value::Object(call.clone()),
                file: match file {
                    Some(f) => Some(store::ReceivedFile {
                        path: f
                            .path
                            .keep()
                            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                        filename: f.filename,
                        bytes: f.bytes,
                        sha256: f.sha256,
                    }),
                    None => None,
                },
                counts: JobCounts::default(),
                reason: None,
                postback: None,
            };
            store::save_job(c, &job)?;
            Ok(job)
        })?;
        trace.job_id = Some(job.job_id.clone());
        self.shared.queue.push(job.job_id.clone());
        Ok((
            200,
            json!({"job_id": job.job_id, "name": job.name, "status": job.status}),
        ))
    }

    fn get_user(&self, call: &Map<String, Value>) -> ApiResult {
        let id = str_param(call, "id")?.ok_or_else(|| ApiError::missing("id"))?;
        let key = str_param(call, "key")?.unwrap_or("email");
        if !is_identity_key(key) {
            return Err(ApiError::other(format!(
                "Invalid key: {key}; one of {}",
                sailbulk_spec::quoted(&sailbulk_spec::IDENTITY_KEYS)
            )));
        }
        let profile = self
            .shared
            .with_store(|c| store::find_profile(c, key, id))?
            .ok_or_else(|| ApiError::other(messages::USER_NOT_FOUND))?;
        let mut keys = Map::new();
        keys.insert("sid".into(), profile.sid.clone().into());
        for k in ["email", "extid", "sms"] {
            if let Some(v) = profile.key(k) {
                keys.insert(k.into(), v.into());
            }
        }
        let lists: Map<String, Value> = profile
            .lists
            .iter()
            .map(|(name, time)| (name.clone(), rfc2822(*time).into()))
            .collect();
        let mut all = Map::new();
        all.insert("keys".into(), keys.into());
        all.insert("vars".into(), profile.vars.clone().into());
        all.insert("lists".into(), lists.into());
        all.insert("optout_email".into(), profile.optout.clone().into());
        if let Some(date) = &profile.signup_date {
            all.insert("signup_date".into(), date.clone().into());
        }
        // `fields` selects what is returned: {"vars": 1, "lists": 1}.
        let out = match call.get("fields") {
            Some(Value::Object(fields)) => all
                .into_iter()
                .filter(|(k, _)| fields.get(k).is_some_and(truthy))
                .collect(),
            _ => all,
        };
        Ok((200, Value::Object(out)))
    }

    fn get_list(&self, call: &Map<String, Value>) -> ApiResult {
        let Some(name) = str_param(call, "list")? else {
            let primary_only = call.get("primary").is_some_and(truthy);
            let lists = self.shared.with_store(|c| {
                store::lists(c)?
                    .into_iter()
                    .filter(|l| !primary_only || l.primary)
                    .map(|l| Ok(list_view(&l, store::member_count(c, &l.name)?, false)))
                    .collect::<rusqlite::Result<Vec<Value>>>()
            })?;
            return Ok((200, json!({"lists": lists})));
        };
        let with_vars = call
            .get("fields")
            .and_then(|f| f.get("vars"))
            .is_some_and(truthy);
        let (list, count) = self
            .shared
            .with_store(|c| {
                let list = store::get_list(c, name)?;
                let count = store::member_count(c, name)?;
                Ok(list.map(|l| (l, count)))
            })?
            .ok_or_else(|| {
                ApiError::new(404, spec::ERROR_UNKNOWN_LIST, messages::unknown_list(name))
            })?;
        Ok((200, list_view(&list, count, with_vars)))
    }

    fn post_list(&self, call: &Map<String, Value>) -> ApiResult {
        let name = str_param(call, "list")?.ok_or_else(|| ApiError::missing("list"))?;
        if call.contains_key("rename") {
            return Err(ApiError::new(
                403,
                spec::ERROR_OTHER,
                messages::LIST_RENAME_UNSUPPORTED,
            ));
        }
        check_list_name(name)?;
        // The list page answers these validations with HTTP 200 and error 99.
        let soft = |m: String| ApiError::new(200, spec::ERROR_OTHER, m);
        let kind = match str_param(call, "type")? {
            None | Some("natural") | Some("normal") => "normal",
            Some("smart") => "smart",
            Some(other) => return Err(ApiError::other(format!("Invalid list type: {other}"))),
        };
        let primary = match call.get("primary") {
            None => None,
            Some(v) => match v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => return Err(soft(messages::PRIMARY_ZERO_OR_ONE.into())),
            },
        };
        let vars = match call.get("vars") {
            None => None,
            Some(Value::Object(vars)) => {
                check_list_vars(vars).map_err(soft)?;
                Some(vars.clone())
            }
            Some(_) => return Err(ApiError::other("vars must be an object")),
        };
        let public_name = str_param(call, "public_name")?.map(str::to_string);
        let query = call.get("query").cloned();
        let copy_to = str_param(call, "copy_list")?;
        // Read, check and write in one transaction, so that concurrent calls cannot pass the caps
        // together.
        let (saved, existed) = self.shared.transaction(|c| {
            let existing = store::get_list(c, name)?;
            if let Some(target) = copy_to {
                // List page: copy_list copies a smart list under a new name.
                return match existing {
                    Some(source) if source.kind == "smart" => {
                        if store::get_list(c, target)?.is_some() {
                            return Ok(Err(ApiError::other(messages::COPY_LIST_NAME_EXISTS)));
                        }
                        if let Err(e) = check_list_name(target) {
                            return Ok(Err(e));
                        }
                        if store::list_count(c)? >= MAX_LISTS_PER_ACCOUNT {
                            return Ok(Err(ApiError::other(messages::too_many_lists(
                                MAX_LISTS_PER_ACCOUNT,
                            ))));
                        }
                        let copy = List {
                            list_id: store::new_id(c)?,
                            name: target.to_string(),
                            primary: false,
                            create_time: now(),
                            ..source
                        };
                        store::save_list(c, &copy)?;
                        Ok(Ok((copy, false)))
                    }
                    Some(_) => Ok(Err(ApiError::other(messages::COPY_LIST_SMART_ONLY))),
                    None => Ok(Err(ApiError::new(
                        404,
                        spec::ERROR_UNKNOWN_LIST,
                        messages::unknown_list(name),
                    ))),
                };
            }
            let existed = existing.is_some();
            if let Some(existing) = &existing {
                if call.contains_key("type") && existing.kind != kind {
                    return Ok(Err(ApiError::new(
                        403,
                        spec::ERROR_OTHER,
                        messages::LIST_TYPE_CHANGE,
                    )));
                }
            }
            let kind = existing.as_ref().map_or(kind, |l| l.kind.as_str());
            if query.is_some() && kind == "normal" {
                return Ok(Err(ApiError::new(
                    403,
                    spec::ERROR_OTHER,
                    messages::LIST_QUERY_ON_NATURAL,
                )));
            }
            if !existed && store::list_count(c)? >= MAX_LISTS_PER_ACCOUNT {
                return Ok(Err(ApiError::other(messages::too_many_lists(
                    MAX_LISTS_PER_ACCOUNT,
                ))));
            }
            let was_primary = existing.as_ref().is_some_and(|l| l.primary);
            if primary == Some(true)
                && !was_primary
                && store::primary_list_count(c)? >= MAX_PRIMARY_LISTS
            {
                return Ok(Err(soft(messages::too_many_primary_lists(
                    MAX_PRIMARY_LISTS,
                ))));
            }
            let mut saved = match existing {
                Some(l) => l,
                None => List {
                    list_id: store::new_id(c)?,
                    name: name.to_string(),
                    kind: kind.to_string(),
                    primary: false,
                    public_name: None,
                    vars: Map::new(),
                    query: None,
                    create_time: now(),
                },
            };
            if let Some(p) = primary {
                saved.primary = p;
            }
            if let Some(v) = &vars {
                saved.vars = v.clone();
            }
            if public_name.is_some() {
                saved.public_name = public_name.clone();
            }
            if query.is_some() {
                saved.query = query.clone();
            }
            store::save_list(c, &saved)?;
            Ok(Ok((saved, existed)))
        })??;
        let mut out = Map::new();
        out.insert("list".into(), saved.name.clone().into());
        out.insert("type".into(), saved.kind.clone().into());
        out.insert("primary".into(), u8::from(saved.primary).into());
        if let Some(p) = &saved.public_name {
            out.insert("public_name".into(), p.clone().into());
        }
        out.insert("vars".into(), saved.vars.clone().into());
        if let Some(q) = &saved.query {
            out.insert("query".into(), q.clone());
        }
        out.insert("list_id".into(), saved.list_id.clone().into());
        // "The return value will include a create_time if the referenced list is not new."
        if existed {
            out.insert("create_time".into(), rfc2822(saved.create_time).into());
        }
        Ok((200, Value::Object(out)))
    }

    fn delete_list(&self, call: &Map<String, Value>) -> ApiResult {
        let name = str_param(call, "list")?.ok_or_else(|| ApiError::missing("list"))?;
        let busy = self.shared.with_store(|c| {
            Ok(store::unfinished_jobs(c)?
                .iter()
                .any(|j| job_relies_on(j, name)))
        })?;
        if busy {
            return Err(ApiError::new(
                200,
                spec::ERROR_OTHER,
                messages::list_has_pending_job(name),
            ));
        }
        if !self.shared.transaction(|c| store::delete_list(c, name))? {
            return Err(ApiError::new(
                404,
                spec::ERROR_UNKNOWN_LIST,
                messages::unknown_list(name),
            ));
        }
        Ok((200, json!({"list": name, "ok": true})))
    }
}

/// The upload cap for a multipart body, from the `json` part when it came first.
fn file_limit(pairs: &[(String, Vec<u8>)]) -> u64 {
    let kind = pairs
        .iter()
        .find(|(n, _)| n == "json")
        .and_then(|(_, v)| serde_json::from_slice::<Value>(v).ok())
        .and_then(|v| {
            v.get("job")
                .and_then(Value::as_str)
                .and_then(JobKind::parse)
        })
        .or_else(|| {
            pairs
                .iter()
                .find(|(n, _)| n == "job")
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
                .and_then(JobKind::parse)
        });
    kind.unwrap_or(JobKind::Update).max_file_bytes()
}

fn job_relies_on(job: &Job, list: &str) -> bool {
    let r = &job.request;
    r.get("list").and_then(Value::as_str) == Some(list)
        || r.get("query")
            .and_then(|q| q.get("source_list"))
            .and_then(Value::as_str)
            == Some(list)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty() && s != "0",
        _ => false,
    }
}

fn is_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !host.contains(char::is_whitespace)
    })
}

/// A string parameter; an error when present with another type.
fn str_param<'a>(call: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ApiError> {
    match call.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::other(format!("{name} must be a string"))),
    }
}

pub(crate) fn check_list_name(name: &str) -> Result<(), ApiError> {
    // Job update page: `$` has its own message; list page: no valid character.
    if name.contains('$') {
        return Err(ApiError::other(messages::LIST_NAME_DOLLAR));
    }
    if list_name_problem(name).is_some() {
        return Err(ApiError::other(messages::list_name_failed_validation(name)));
    }
    Ok(())
}

fn check_list_vars(vars: &Map<String, Value>) -> Result<(), String> {
    if vars.len() > LIST_VARS_MAX {
        return Err(messages::too_many_list_vars(LIST_VARS_MAX));
    }
    for (name, value) in vars {
        if name.chars().count() > VAR_NAME_MAX_CHARS {
            return Err(messages::var_name_too_long(name, VAR_NAME_MAX_CHARS));
        }
        match var_name_problem(name) {
            None => {}
            Some(VarNameProblem::LeadingDigit | VarNameProblem::AllDigits) => {
                return Err(messages::var_name_leading_digit(name))
            }
            Some(_) => return Err(messages::var_name_characters(name)),
        }
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if text.chars().count() > VAR_VALUE_MAX_CHARS {
            return Err(messages::var_value_too_long(
                name,
                &text,
                VAR_VALUE_MAX_CHARS,
            ));
        }
    }
    Ok(())
}

/// Checks a job's `update` object: `vars`, `lists`, `optout`, `delete_vars`.
fn check_update_object(update: &Value) -> Result<(), ApiError> {
    let Value::Object(update) = update else {
        return Err(ApiError::other("update must be an object"));
    };
    if let Some(vars) = update.get("vars") {
        if !vars.is_object() {
            return Err(ApiError::other("update[vars] must be an object"));
        }
    }
    if let Some(lists) = update.get("lists") {
        let Value::Object(lists) = lists else {
            return Err(ApiError::other("update[lists] must be an object"));
        };
        for (name, value) in lists {
            check_list_name(name)?;
            if !matches!(value.as_u64(), Some(0 | 1)) {
                return Err(ApiError::other(format!(
                    "update[lists][{name}] must be 1 (subscribe) or 0 (unsubscribe)"
                )));
            }
        }
    }
    if let Some(optout) = update.get("optout") {
        if optout.as_str().and_then(Optout::parse).is_none() {
            return Err(ApiError::other(format!(
                "update[optout] must be one of {}",
                sailbulk_spec::quoted(&sailbulk_spec::OPTOUT_VALUES)
            )));
        }
    }
    if let Some(delete) = update.get("delete_vars") {
        if !delete
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string))
        {
            return Err(ApiError::other(
                "update[delete_vars] must be an array of var names",
            ));
        }
    }
    Ok(())
}

/// A query the simulator can run: a `source_list` with no criteria. Returns the list name.
fn check_query(query: &Value) -> Result<&str, ApiError> {
    let source = query
        .get("source_list")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::missing("query[source_list]"))?;
    let criteria = query
        .get("criteria")
        .is_some_and(|c| c.as_array().is_none_or(|a| !a.is_empty()));
    if criteria || source.starts_with('.') {
        return Err(ApiError::other(
            "The simulator runs queries of one source_list without criteria; criteria and .multiple/.primary sources are not supported",
        ));
    }
    Ok(source)
}

/// Turns flat form fields (`update[vars][a]=1`) into a JSON object of strings.
fn unflatten<'a>(pairs: impl Iterator<Item = &'a (&'a str, &'a str)>) -> Map<String, Value> {
    let mut root = Value::Object(Map::new());
    for (name, value) in pairs {
        let mut path: Vec<&str> = Vec::new();
        let (head, mut rest) = match name.find('[') {
            Some(i) => (&name[..i], &name[i..]),
            None => (*name, ""),
        };
        path.push(head);
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else { break };
            path.push(&stripped[..end]);
            rest = &stripped[end + 1..];
        }
        let mut node = &mut root;
        for (i, key) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            let Value::Object(map) = node else { break };
            if last {
                map.insert(key.to_string(), Value::String(value.to_string()));
                break;
            }
            node = map
                .entry(key.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
        }
    }
    match root {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn list_view(list: &List, count: u64, with_vars: bool) -> Value {
    let mut out = Map::new();
    out.insert("list_id".into(), list.list_id.clone().into());
    out.insert("list".into(), list.name.clone().into());
    out.insert("name".into(), list.name.clone().into());
    out.insert("create_time".into(), rfc2822(list.create_time).into());
    out.insert("count".into(), count.into());
    out.insert("type".into(), list.kind.clone().into());
    out.insert("primary".into(), list.primary.into());
    if let Some(p) = &list.public_name {
        out.insert("public_name".into(), p.clone().into());
    }
    if with_vars {
        out.insert("vars".into(), list.vars.clone().into());
    }
    Value::Object(out)
}

/// The job's status, as GET `/job` returns it and the postback sends it.
pub(crate) fn job_status(job: &Job) -> Value {
    let mut out = Map::new();
    out.insert("job_id".into(), job.job_id.clone().into());
    out.insert("name".into(), job.name.clone().into());
    out.insert("job".into(), job.kind.clone().into());
    out.insert("status".into(), job.status.clone().into());
    out.insert("create_time".into(), rfc2822(job.create_time).into());
    if let Some(t) = job.start_time {
        out.insert("start_time".into(), rfc2822(t).into());
    }
    if let Some(t) = job.end_time {
        out.insert("end_time".into(), rfc2822(t).into());
    }
    for name in ["list", "report_email", "postback_url"] {
        if let Some(v) = job.request.get(name) {
            out.insert(name.into(), v.clone());
        }
    }
    if let Some(file) = &job.file {
        if let Some(name) = &file.filename {
            out.insert("filename".into(), name.clone().into());
        }
        out.insert("file_bytes".into(), file.bytes.into());
    }
    if job.status != "pending" {
        let c = &job.counts;
        out.insert("records".into(), c.records.into());
        out.insert("applied".into(), c.applied.into());
        out.insert("created".into(), c.created.into());
        out.insert("rejected".into(), c.rejected.into());
        if !c.errors.is_empty() {
            out.insert(
                "errors".into(),
                serde_json::to_value(&c.errors).unwrap_or_default(),
            );
        }
    }
    if let Some(reason) = &job.reason {
        out.insert("reason".into(), reason.clone().into());
    }
    Value::Object(out)
}

/// A time as the API writes it: `Fri, 20 May 2012 13:50:28 +0000` (RFC 2822, UTC).
pub(crate) fn rfc2822(epoch: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = epoch / 86_400;
    let secs = epoch % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_as_the_api_does() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822(1_337_536_228), "Sun, 20 May 2012 17:50:28 +0000");
        assert_eq!(rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn unflattens_form_fields() {
        let pairs = [
            ("job", "update"),
            ("update[vars][a]", "1"),
            ("update[lists][Main]", "1"),
        ];
        let map = unflatten(pairs.iter());
        assert_eq!(
            Value::Object(map),
            json!({"job": "update", "update": {"vars": {"a": "1"}, "lists": {"Main": "1"}}})
        );
    }

    #[test]
    fn list_var_checks_use_the_list_page_texts() {
        let vars = |v: Value| v.as_object().unwrap().clone();
        assert!(check_list_vars(&vars(json!({"color": "blue"}))).is_ok());
        assert_eq!(
            check_list_vars(&vars(json!({"1color": "x"}))).unwrap_err(),
            messages::var_name_leading_digit("1color")
        );
        assert_eq!(
            check_list_vars(&vars(json!({"var-name!": "x"}))).unwrap_err(),
            messages::var_name_characters("var-name!")
        );
        let long = "a".repeat(33);
        assert_eq!(
            check_list_vars(&vars(json!({ long.clone(): 1 }))).unwrap_err(),
            messages::var_name_too_long(&long, 32)
        );
        let value = "é".repeat(141);
        assert!(check_list_vars(&vars(json!({"v": "é".repeat(140)}))).is_ok());
        assert_eq!(
            check_list_vars(&vars(json!({"v": value.clone()}))).unwrap_err(),
            messages::var_value_too_long("v", &value, 140)
        );
        let many: Map<String, Value> = (0..21).map(|i| (format!("v{i}"), Value::from(i))).collect();
        assert_eq!(
            check_list_vars(&many).unwrap_err(),
            messages::too_many_list_vars(20)
        );
    }

    #[test]
    fn recognises_urls() {
        assert!(is_url("http://127.0.0.1:9/x"));
        assert!(is_url("https://example.com"));
        assert!(!is_url("ftp://example.com"));
        assert!(!is_url("http://"));
        assert!(!is_url("example.com"));
    }
}
