//! Fault injection and rate limits: what a route does besides answering.

use sailbulk_spec::api::{DEFAULT_PER_MINUTE, JOB_POST_PER_MINUTE, RATE_LIMIT_WINDOW_SECS};
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// Which requests a fault or a rate limit applies to: a method (or any) and a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// `GET`, `POST`, `DELETE`; `None` for any method.
    pub method: Option<String>,
    /// `/job`, `/user`, `/list`; `*` for any path.
    pub path: String,
}

impl Route {
    /// A route for one method and path: `Route::new("POST", "/job")`.
    pub fn new(method: &str, path: &str) -> Route {
        Route {
            method: Some(method.to_ascii_uppercase()),
            path: path.to_string(),
        }
    }

    /// Every method of a path.
    pub fn any_method(path: &str) -> Route {
        Route {
            method: None,
            path: path.to_string(),
        }
    }

    /// Every request.
    pub fn any() -> Route {
        Route::any_method("*")
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && (self.path == "*" || self.path == path)
    }

    /// Parses `POST:/job`, `/job` (any method) or `*`.
    pub fn parse(text: &str) -> Result<Route, String> {
        let text = text.trim();
        let route = match text.split_once(':') {
            Some((method, path)) => Route::new(method, path),
            None => Route::any_method(text),
        };
        if route.path != "*" && !route.path.starts_with('/') {
            return Err(format!(
                "`{text}`: a route is `METHOD:/path`, `/path` or `*`, as in `POST:/job`"
            ));
        }
        Ok(route)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.method {
            Some(m) => write!(f, "{m}:{}", self.path),
            None => write!(f, "{}", self.path),
        }
    }
}

/// What a fault does to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultKind {
    /// Answer with this HTTP status without processing the request: 429 comes with error 43
    /// and a reset time `retry_after` ahead in `X-Rate-Limit-Reset`; 500 with error 9; 502, 503
    /// and 504 with a plain-text body, as a gateway sends.
    Status {
        /// The HTTP status.
        status: u16,
        /// For 429: how far ahead the reset time is.
        retry_after: Duration,
    },
    /// Read the whole request, then close the connection without processing it or answering.
    DropBeforeProcessing,
    /// Process the request (a job is created), then close the connection without answering:
    /// what a client sees as a failure after its request was sent, and must not blindly retry.
    DropAfterProcessing,
    /// Process the request, then wait this long before answering.
    Delay(Duration),
}

/// A fault for a route, for its next `times` requests (or every request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The requests it applies to.
    pub route: Route,
    /// What it does.
    pub kind: FaultKind,
    /// How many requests it still applies to; `None` for every one.
    pub times: Option<u32>,
}

impl Fault {
    /// Answer the route's next request with an HTTP status (see [`FaultKind::Status`]).
    pub fn status(route: Route, status: u16) -> Fault {
        Fault {
            route,
            kind: FaultKind::Status {
                status,
                retry_after: Duration::from_secs(1),
            },
            times: Some(1),
        }
    }

    /// Close the connection after reading the next request, without processing it.
    pub fn drop_connection(route: Route) -> Fault {
        Fault {
            route,
            kind: FaultKind::DropBeforeProcessing,
            times: Some(1),
        }
    }

    /// Process the next request, then close the connection without answering.
    pub fn drop_response(route: Route) -> Fault {
        Fault {
            route,
            kind: FaultKind::DropAfterProcessing,
            times: Some(1),
        }
    }

    /// Delay the answer to the next request.
    pub fn delay(route: Route, delay: Duration) -> Fault {
        Fault {
            route,
            kind: FaultKind::Delay(delay),
            times: Some(1),
        }
    }

    /// Applies to the next `n` requests instead of one.
    pub fn times(mut self, n: u32) -> Fault {
        self.times = Some(n);
        self
    }

    /// Applies to every request from now on.
    pub fn always(mut self) -> Fault {
        self.times = None;
        self
    }

    /// For a 429: how far ahead the reset time is (default one second).
    pub fn retry_after(mut self, after: Duration) -> Fault {
        if let FaultKind::Status { retry_after, .. } = &mut self.kind {
            *retry_after = after;
        }
        self
    }

    /// Parses the command line's form: `ROUTE=ACTION[xN|x*]`, where ROUTE is `POST:/job`,
    /// `/job` or `*` and ACTION is an HTTP status (`429`, `500`, `502`, `503`, `504`; `429:5s`
    /// puts the reset five seconds ahead, one by default), `drop`,
    /// `drop-after` or `delay:DURATION` (`250ms`, `2s`); `xN` repeats it N times (default once),
    /// `x*` for every request.
    ///
    /// ```
    /// use sailbulk_sim::{Fault, FaultKind, Route};
    /// let fault = Fault::parse("POST:/job=503x2").unwrap();
    /// assert_eq!(fault.route, Route::new("POST", "/job"));
    /// assert_eq!(fault.times, Some(2));
    /// assert!(matches!(fault.kind, FaultKind::Status { status: 503, .. }));
    /// ```
    pub fn parse(text: &str) -> Result<Fault, String> {
        let (route, action) = text
            .split_once('=')
            .ok_or_else(|| format!("`{text}`: a fault is ROUTE=ACTION, as in `POST:/job=503x2`"))?;
        let route = Route::parse(route)?;
        let (action, times) = match action.rsplit_once('x') {
            Some((a, "*")) => (a, None),
            Some((a, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => (
                a,
                Some(n.parse::<u32>().map_err(|e| format!("`{text}`: {e}"))?),
            ),
            _ => (action, Some(1)),
        };
        let kind = match action {
            "drop" => FaultKind::DropBeforeProcessing,
            "drop-after" => FaultKind::DropAfterProcessing,
            a if a.starts_with("delay:") => FaultKind::Delay(parse_duration(&a[6..])?),
            a if a.starts_with("429:") => FaultKind::Status {
                status: 429,
                retry_after: parse_duration(&a[4..])?,
            },
            a => match a.parse::<u16>() {
                Ok(status @ (429 | 500 | 502 | 503 | 504)) => FaultKind::Status {
                    status,
                    retry_after: Duration::from_secs(1),
                },
                _ => {
                    return Err(format!(
                        "`{text}`: the action is one of 429, 429:DURATION, 500, 502, 503, 504, drop, drop-after, delay:DURATION"
                    ))
                }
            },
        };
        Ok(Fault { route, kind, times })
    }
}

/// Parses `250ms`, `2s`, `1.5s`, `1m`, `1h`; a plain number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|i| text.split_at(i))
        .unwrap_or((text, "s"));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 250ms or 2s"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("`{text}`: the unit is ms, s, m or h")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{text}`: {e}"))
}

/// The faults still to apply, in the order they were added.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    faults: Vec<Fault>,
}

impl Faults {
    pub fn add(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    pub fn clear(&mut self) {
        self.faults.clear();
    }

    /// The first fault for this request, used up by one.
    pub fn take(&mut self, method: &str, path: &str) -> Option<FaultKind> {
        let i = self
            .faults
            .iter()
            .position(|f| f.route.matches(method, path))?;
        let kind = self.faults[i].kind.clone();
        if let Some(times) = &mut self.faults[i].times {
            *times = times.saturating_sub(1);
            if *times == 0 {
                self.faults.remove(i);
            }
        }
        Some(kind)
    }
}

/// The rate-limit state of one route.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub limit: u32,
    pub used: u32,
    /// Epoch second the window ends.
    pub reset: u64,
}

/// Per-minute limits per method and path, as the platform keeps them per endpoint and method.
#[derive(Debug)]
pub(crate) struct RateLimits {
    limits: Vec<(Route, u32)>,
    windows: HashMap<(String, String), Window>,
    /// The window's length in seconds (the API's is a minute).
    window_secs: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            limits: vec![(Route::new("POST", "/job"), JOB_POST_PER_MINUTE)],
            windows: HashMap::new(),
            window_secs: RATE_LIMIT_WINDOW_SECS,
        }
    }
}

impl RateLimits {
    /// Sets a route's limit; later settings win over earlier ones.
    pub fn set(&mut self, route: Route, per_minute: u32) {
        self.limits.insert(0, (route, per_minute));
    }

    fn limit(&self, method: &str, path: &str) -> u32 {
        self.limits
            .iter()
            .find(|(r, _)| r.matches(method, path))
            .map(|(_, n)| *n)
            .unwrap_or(DEFAULT_PER_MINUTE)
    }

    /// Sets the window's length (at least a second).
    pub fn set_window(&mut self, window: std::time::Duration) {
        self.window_secs = window.as_secs().max(1);
    }

    /// Counts a request; the window after it, and whether it is within the limit.
    pub fn hit(&mut self, method: &str, path: &str, now: u64) -> (Window, bool) {
        let limit = self.limit(method, path);
        let window = self
            .windows
            .entry((method.to_string(), path.to_string()))
            .or_insert(Window {
                limit,
                used: 0,
                reset: now + self.window_secs,
            });
        if now >= window.reset {
            *window = Window {
                limit,
                used: 0,
                reset: now + self.window_secs,
            };
        }
        window.limit = limit;
        if window.used >= limit {
            return (*window, false);
        }
        window.used += 1;
        (*window, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_faults() {
        let f = Fault::parse("*=drop").unwrap();
        assert_eq!(f.route, Route::any());
        assert_eq!(f.kind, FaultKind::DropBeforeProcessing);
        assert_eq!(f.times, Some(1));
        let f = Fault::parse("GET:/job=delay:250msx*").unwrap();
        assert_eq!(f.kind, FaultKind::Delay(Duration::from_millis(250)));
        assert_eq!(f.times, None);
        let f = Fault::parse("POST:/job=429:3sx2").unwrap();
        assert_eq!(
            f.kind,
            FaultKind::Status {
                status: 429,
                retry_after: Duration::from_secs(3)
            }
        );
        assert_eq!(f.times, Some(2));
        let f = Fault::parse("/list=drop-afterx3").unwrap();
        assert_eq!(f.route, Route::any_method("/list"));
        assert_eq!(f.times, Some(3));
        for bad in [
            "POST:/job",
            "job=503",
            "POST:/job=404",
            "/job=delay:xs",
            "/job=503xq",
        ] {
            assert!(Fault::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn faults_are_used_up_in_order() {
        let mut faults = Faults::default();
        faults.add(Fault::status(Route::new("POST", "/job"), 503).times(2));
        faults.add(Fault::drop_connection(Route::any()));
        assert!(faults
            .take("GET", "/job")
            .is_some_and(|k| k == FaultKind::DropBeforeProcessing));
        assert!(faults.take("GET", "/job").is_none());
        assert!(faults.take("POST", "/job").is_some());
        assert!(faults.take("POST", "/job").is_some());
        assert!(faults.take("POST", "/job").is_none());
    }

    #[test]
    fn windows_count_per_route_and_reset() {
        let mut limits = RateLimits::default();
        limits.set(Route::any_method("/user"), 2);
        assert!(limits.hit("GET", "/user", 100).1);
        let (w, ok) = limits.hit("GET", "/user", 100);
        assert!(ok);
        assert_eq!((w.limit, w.used, w.reset), (2, 2, 160));
        assert!(!limits.hit("GET", "/user", 159).1);
        // Another method of the same path has its own window.
        assert!(limits.hit("POST", "/user", 159).1);
        assert!(limits.hit("GET", "/user", 160).1);
        assert_eq!(limits.hit("POST", "/job", 1).0.limit, JOB_POST_PER_MINUTE);
        assert_eq!(limits.hit("GET", "/job", 1).0.limit, DEFAULT_PER_MINUTE);
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
