//! Rate limits (`api.limits`): budgets of writes, uploads and login attempts per account and
//! per client address, and a growing wait after failed logins. Over a limit the answer is 429
//! with `Retry-After` (whole seconds) and the usual error body, code `rate_limited`.
//!
//! - Budgets are keyed GCRA limiters ([`governor`]): each allows its whole count at once and
//!   refills evenly over `period_secs`. An account is the session's handle; an address is the
//!   TCP peer's IP (an IPv6 address counts by its /64, which one host usually holds whole), or
//!   the client a trusted proxy names in `X-Forwarded-For`. A request without a peer address
//!   (a router called in-process) counts as the address `unknown`.
//! - The node's admin token (the CLI, the testnet) is never limited: whoever holds it holds the
//!   repo.
//! - Failed logins: after `login_free_failures_per_account` failures at one handle (or
//!   `…_per_address` from one address) each next attempt waits 1 s, doubling per failure, never
//!   more than `login_max_wait_secs`. While it waits every attempt is refused, right password or
//!   not, so the answer says nothing about the password. A successful login clears its handle's
//!   count; a quiet `login_max_wait_secs` clears any count. An attempt counts as failed from its
//!   start, so parallel guesses see each other.
//! - Memory is bounded: idle keys are dropped every [`HOUSEKEEPING_EVERY`] checks and whenever a
//!   budget holds more than `max_tracked`; if the keys still in use exceed it, the budget
//!   forgets them all (and says so in the log) rather than grow.

use std::{
    collections::HashMap,
    future::Future,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    num::NonZeroU32,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{Extensions, HeaderMap, HeaderValue, Method, header::RETRY_AFTER, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock as _, DefaultClock},
};
use mnode_node::config::LimitsConfig;
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi, Ref, ResponseBuilder, Type, path::Operation,
    schema::ObjectBuilder,
};

use crate::{ApiError, ApiState, auth::Caller};

/// How many checks a budget makes between two sweeps of its idle keys.
pub const HOUSEKEEPING_EVERY: u64 = 1024;

/// The address of requests that came with none (a router called in-process).
const UNKNOWN: &str = "unknown";

/// What a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// A write: every POST, PUT, PATCH and DELETE but logins and uploads.
    Write,
    /// An upload: a file, a file import or a CAR import.
    Upload,
}

impl Action {
    fn plural(self) -> &'static str {
        match self {
            Self::Write => "writes",
            Self::Upload => "uploads",
        }
    }
}

/// The address a request came from, as the limits count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client(Option<IpAddr>);

impl Client {
    /// The client of a request with `extensions` and `headers`: the TCP peer, or the client
    /// that a peer among `trusted` names in `X-Forwarded-For` (the right-most address there
    /// that is not itself a trusted proxy).
    pub fn of(extensions: &Extensions, headers: &HeaderMap, trusted: &[IpAddr]) -> Self {
        let Some(peer) = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_canonical())
        else {
            return Self(None);
        };
        if !trusted.contains(&peer) {
            return Self(Some(peer));
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .map(|a| a.to_canonical())
            .collect();
        let client = forwarded
            .into_iter()
            .rev()
            .find(|a| !trusted.contains(a))
            .unwrap_or(peer);
        Self(Some(client))
    }

    /// The peer's IP address, if the request had one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.0
    }

    /// The key the address budgets use.
    fn key(&self) -> String {
        match self.0 {
            None => UNKNOWN.to_owned(),
            Some(IpAddr::V4(a)) => a.to_string(),
            Some(IpAddr::V6(a)) => {
                let s = a.segments();
                format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        }
    }
}

impl FromRequestParts<ApiState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &ApiState) -> Result<Self, Self::Rejection> {
        Ok(s.limits().client(&parts.extensions, &parts.headers))
    }
}

/// A wait as a person reads it: seconds under two minutes, then minutes (rounded up), then
/// hours and minutes: `45 s`, `5 min`, `12 h 1 min`.
pub fn wait_text(secs: u64) -> String {
    if secs < 120 {
        return format!("{secs} s");
    }
    let minutes = secs.div_ceil(60);
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// A request over a limit: 429, `Retry-After` and a message that says which limit and when to
/// try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    retry_after: u64,
    message: String,
}

impl Limited {
    fn new(wait: Duration, what: &str) -> Self {
        // Whole seconds, rounded up: a client that waits that long is let in.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let retry_after = secs.max(1);
        Self {
            retry_after,
            message: format!("Too many {what}; try again in {}.", wait_text(retry_after)),
        }
    }

    /// Seconds to wait, at least 1: the `Retry-After` header.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after
    }

    /// What a person reads.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Adds `Retry-After` to an answer.
    pub fn add_retry_after(&self, resp: &mut Response) {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(self.retry_after));
    }
}

impl From<Limited> for ApiError {
    fn from(l: Limited) -> Self {
        Self::new(429, "rate_limited", l.message)
    }
}

impl IntoResponse for Limited {
    fn into_response(self) -> Response {
        let mut resp = ApiError::from(self.clone()).into_response();
        self.add_retry_after(&mut resp);
        resp
    }
}

/// Why a throttled login did not open a session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Throttled: not tried.
    Limited(Limited),
    /// Tried, and refused (the wrong password, no such account, …).
    Failed(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Self::Failed(e)
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Limited(l) => l.into(),
            Refusal::Failed(e) => e,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Limited(l) => l.into_response(),
            Self::Failed(e) => e.into_response(),
        }
    }
}

/// One budget (say, writes per account): a keyed limiter, or none when its count is 0.
struct Budget {
    quota: Option<Quota>,
    limiter: RwLock<Arc<DefaultKeyedRateLimiter<String>>>,
    max_tracked: usize,
    checks: AtomicU64,
    name: &'static str,
}

impl Budget {
    fn new(name: &'static str, count: u32, period: Duration, max_tracked: usize) -> Self {
        let quota = NonZeroU32::new(count).and_then(|burst| {
            Some(Quota::with_period(period.checked_div(count)?)?.allow_burst(burst))
        });
        let unused = Quota::per_second(NonZeroU32::MIN);
        Self {
            quota,
            limiter: RwLock::new(Arc::new(RateLimiter::dashmap(quota.unwrap_or(unused)))),
            max_tracked,
            checks: AtomicU64::new(0),
            name,
        }
    }

    /// Spends one from `key`'s budget, or answers how long until it can.
    fn check(&self, key: &str) -> Result<(), Duration> {
        let Some(quota) = self.quota else {
            return Ok(());
        };
        let limiter = self
            .limiter
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let result = limiter.check_key(&key.to_owned());
        let n = self.checks.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(HOUSEKEEPING_EVERY) || limiter.len() > self.max_tracked {
            limiter.retain_recent();
            if limiter.len() > self.max_tracked {
                tracing::warn!(
                    "rate limits: more than {} clients in the {} budget are active; it forgets \
                     them all (api.limits.max_tracked)",
                    self.max_tracked,
                    self.name
                );
                *self.limiter.write().unwrap_or_else(PoisonError::into_inner) =
                    Arc::new(RateLimiter::dashmap(quota));
            } else {
                limiter.shrink_to_fit();
            }
        }
        result.map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    fn tracked(&self) -> usize {
        self.limiter
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Failed logins per key, and the wait they impose.
struct Failures {
    free: u32,
    max_wait: Duration,
    max_tracked: usize,
    map: Mutex<HashMap<String, Failed>>,
}

#[derive(Debug, Clone, Copy)]
struct Failed {
    count: u32,
    last: Instant,
}

impl Failures {
    fn new(free: u32, max_wait: Duration, max_tracked: usize) -> Self {
        Self {
            free,
            max_wait,
            max_tracked,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failed>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The wait `count` failures impose after the last: none for the free ones, then 1 s,
    /// 2 s, 4 s … up to the cap.
    fn wait_after(&self, count: u32) -> Duration {
        if self.free == 0 || count < self.free {
            return Duration::ZERO;
        }
        let doublings = (count - self.free).min(30);
        Duration::from_secs(1u64 << doublings).min(self.max_wait)
    }

    /// How long `key` must still wait at `now`.
    fn wait(&self, key: &str, now: Instant) -> Duration {
        let map = self.map();
        let Some(f) = map.get(key) else {
            return Duration::ZERO;
        };
        (f.last + self.wait_after(f.count)).saturating_duration_since(now)
    }

    /// Counts a failure of `key` at `now`.
    fn fail(&self, key: &str, now: Instant) {
        if self.free == 0 {
            return;
        }
        let mut map = self.map();
        if map.len() >= self.max_tracked && !map.contains_key(key) {
            let max_wait = self.max_wait;
            map.retain(|_, f| now.saturating_duration_since(f.last) < max_wait);
            if map.len() >= self.max_tracked {
                tracing::warn!(
                    "rate limits: more than {} clients have failed logins; forgetting them all \
                     (api.limits.max_tracked)",
                    self.max_tracked
                );
                map.clear();
            }
        }
        let entry = map.entry(key.to_owned()).or_insert(Failed {
            count: 0,
            last: now,
        });
        // A quiet max_wait since the last failure starts the count again.
        if now.saturating_duration_since(entry.last) >= self.max_wait {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
    }

    /// Moves `key`'s last failure to `now` (the attempt ended failing).
    fn touch(&self, key: &str, now: Instant) {
        if let Some(f) = self.map().get_mut(key) {
            f.last = f.last.max(now);
        }
    }

    /// Takes back one failure of `key` (the attempt did not fail after all).
    fn undo(&self, key: &str) {
        let mut map = self.map();
        if let Some(f) = map.get_mut(key) {
            f.count = f.count.saturating_sub(1);
            if f.count == 0 {
                map.remove(key);
            }
        }
    }

    fn reset(&self, key: &str) {
        self.map().remove(key);
    }

    fn tracked(&self) -> usize {
        self.map().len()
    }
}

/// The node's rate limits, built from `api.limits`; one per [`ApiState`].
pub struct Limits {
    writes_per_account: Budget,
    writes_per_address: Budget,
    uploads_per_account: Budget,
    uploads_per_address: Budget,
    logins_per_account: Budget,
    logins_per_address: Budget,
    failed_per_account: Failures,
    failed_per_address: Failures,
    trusted_proxies: Vec<IpAddr>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("tracked", &self.tracked())
            .finish_non_exhaustive()
    }
}

impl Limits {
    /// The limits `config` sets.
    pub fn new(config: &LimitsConfig) -> Self {
        let period = Duration::from_secs(config.period_secs.max(1));
        let max = usize::try_from(config.max_tracked.max(1)).unwrap_or(usize::MAX);
        let budget = |name, count| Budget::new(name, count, period, max);
        let max_wait = Duration::from_secs(config.login_max_wait_secs.max(1));
        Self {
            writes_per_account: budget("writes per account", config.writes_per_account),
            writes_per_address: budget("writes per address", config.writes_per_address),
            uploads_per_account: budget("uploads per account", config.uploads_per_account),
            uploads_per_address: budget("uploads per address", config.uploads_per_address),
            logins_per_account: budget("logins per account", config.logins_per_account),
            logins_per_address: budget("logins per address", config.logins_per_address),
            failed_per_account: Failures::new(
                config.login_free_failures_per_account,
                max_wait,
                max,
            ),
            failed_per_address: Failures::new(
                config.login_free_failures_per_address,
                max_wait,
                max,
            ),
            trusted_proxies: config.trusted_proxies.clone(),
        }
    }

    /// The client of a request, as [`Client::of`] with this node's trusted proxies.
    pub fn client(&self, extensions: &Extensions, headers: &HeaderMap) -> Client {
        Client::of(extensions, headers, &self.trusted_proxies)
    }

    /// Spends one `action` from the budgets of `account` (if someone is logged in) and of
    /// `client`.
    pub fn spend(
        &self,
        action: Action,
        account: Option<&str>,
        client: Client,
    ) -> Result<(), Limited> {
        let (per_account, per_address) = match action {
            Action::Write => (&self.writes_per_account, &self.writes_per_address),
            Action::Upload => (&self.uploads_per_account, &self.uploads_per_address),
        };
        if let Some(account) = account {
            per_account.check(account).map_err(|wait| {
                Limited::new(wait, &format!("{} from this account", action.plural()))
            })?;
        }
        per_address
            .check(&client.key())
            .map_err(|wait| Limited::new(wait, &format!("{} from this address", action.plural())))
    }

    /// Runs `attempt`, a login at `login` (a handle or an email) from `client`, unless failed
    /// logins or the login budgets say to wait. A 401 or 404 from `attempt` counts as a failed
    /// login; a success clears the handle's failures.
    pub async fn login<T>(
        &self,
        login: &str,
        client: Client,
        attempt: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, Refusal> {
        let account = login.trim().to_lowercase();
        let address = client.key();
        let now = Instant::now();
        let waits = [
            (
                self.failed_per_account.wait(&account, now),
                "failed logins at this account",
            ),
            (
                self.failed_per_address.wait(&address, now),
                "failed logins from this address",
            ),
        ];
        if let Some((wait, what)) = waits.into_iter().filter(|(w, _)| !w.is_zero()).max() {
            return Err(Refusal::Limited(Limited::new(wait, what)));
        }
        self.logins_per_account
            .check(&account)
            .map_err(|w| Refusal::Limited(Limited::new(w, "login attempts at this account")))?;
        self.logins_per_address
            .check(&address)
            .map_err(|w| Refusal::Limited(Limited::new(w, "login attempts from this address")))?;
        self.failed_per_account.fail(&account, now);
        self.failed_per_address.fail(&address, now);
        match attempt.await {
            Ok(v) => {
                self.failed_per_account.reset(&account);
                self.failed_per_address.undo(&address);
                Ok(v)
            }
            Err(e) if e.status == 401 || e.status == 404 => {
                let now = Instant::now();
                self.failed_per_account.touch(&account, now);
                self.failed_per_address.touch(&address, now);
                Err(Refusal::Failed(e))
            }
            Err(e) => {
                self.failed_per_account.undo(&account);
                self.failed_per_address.undo(&address);
                Err(Refusal::Failed(e))
            }
        }
    }

    /// The most accounts or addresses any one budget holds now (memory is bounded by
    /// `max_tracked` each).
    pub fn tracked(&self) -> usize {
        [
            &self.writes_per_account,
            &self.writes_per_address,
            &self.uploads_per_account,
            &self.uploads_per_address,
            &self.logins_per_account,
            &self.logins_per_address,
        ]
        .iter()
        .map(|b| b.tracked())
        .chain([
            self.failed_per_account.tracked(),
            self.failed_per_address.tracked(),
        ])
        .max()
        .unwrap_or(0)
    }
}

/// What a request to the API router spends, by method and path: nothing for reads and logins
/// (those are throttled in the login route).
fn action(method: &Method, path: &str) -> Option<Action> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let path = path.trim_end_matches('/');
    match path {
        "/api/v1/sessions" if method == Method::POST => None,
        "/api/v1/files"
        | "/api/v1/files/import"
        | "/api/v1/files/import/batch"
        | "/api/v1/dag/import" => Some(Action::Upload),
        _ => Some(Action::Write),
    }
}

/// The layer on the API router: spends each write or upload from its caller's and its
/// address's budgets, or answers 429.
pub(crate) async fn guard(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    let Some(action) = action(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    // The caller is resolved once here and kept in the request for the handler's extractor.
    let (mut parts, body) = req.into_parts();
    let caller = crate::auth::resolve(&mut parts, &s).await;
    let req = Request::from_parts(parts, body);
    // A bad token spends from its address only; its handler answers 401.
    let account = match &caller {
        Some(Ok(Caller::Node)) => return next.run(req).await,
        Some(Ok(Caller::Account { handle, .. })) => Some(handle.as_str()),
        Some(Err(_)) | None => None,
    };
    let client = s.limits().client(req.extensions(), req.headers());
    if let Err(limited) = s.limits().spend(action, account, client) {
        return limited.into_response();
    }
    next.run(req).await
}

/// Documents the 429 (with `Retry-After`) on every operation that can answer it: those that
/// write, upload or log in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Documented;

impl utoipa::Modify for Documented {
    fn modify(&self, openapi: &mut OpenApi) {
        let retry_after = HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1)),
            )
            .description(Some("Seconds to wait before trying again"))
            .build();
        let response = ResponseBuilder::new()
            .description(
                "Over a rate limit (`rate_limited`, api.limits): too many writes, uploads or \
                 login attempts from this account or address; try again after `Retry-After` \
                 seconds",
            )
            .header("Retry-After", retry_after)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Error")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let ops: [&mut Option<Operation>; 4] = [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                op.responses
                    .responses
                    .entry("429".to_owned())
                    .or_insert_with(|| response.clone().into());
            }
        }
    }
}

/// `api` with [`Documented`] applied: what `openapi.rs` finishes.
pub(crate) fn documented(mut api: OpenApi) -> OpenApi {
    utoipa::Modify::modify(&Documented, &mut api);
    api
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(f: impl FnOnce(&mut LimitsConfig)) -> LimitsConfig {
        let mut c = LimitsConfig::off();
        f(&mut c);
        c
    }

    fn addr(ip: &str) -> Client {
        Client(Some(ip.parse().unwrap()))
    }

    #[test]
    fn a_budget_allows_its_count_then_says_how_long_to_wait() {
        let limits = Limits::new(&config(|c| {
            c.writes_per_account = 3;
            c.period_secs = 30;
        }));
        let me = addr("192.0.2.1");
        for _ in 0..3 {
            limits.spend(Action::Write, Some("alice"), me).unwrap();
        }
        let l = limits.spend(Action::Write, Some("alice"), me).unwrap_err();
        // One comes back every 10 s.
        assert!((9..=10).contains(&l.retry_after_secs()), "{l:?}");
        assert_eq!(
            l.message(),
            format!(
                "Too many writes from this account; try again in {} s.",
                l.retry_after_secs()
            )
        );
        for (secs, text) in [
            (1, "1 s"),
            (119, "119 s"),
            (120, "2 min"),
            (299, "5 min"),
            (3600, "1 h"),
            (3601, "1 h 1 min"),
            (43_199, "12 h"),
            (43_261, "12 h 2 min"),
        ] {
            assert_eq!(wait_text(secs), text, "{secs} s");
        }
        limits.spend(Action::Write, Some("bob"), me).unwrap();
        limits.spend(Action::Upload, Some("alice"), me).unwrap();
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_v4_as_v4() {
        assert_eq!(addr("2001:db8:1:2:3:4:5:6").key(), "2001:db8:1:2::/64");
        assert_eq!(addr("2001:db8:1:2::9").key(), "2001:db8:1:2::/64");
        assert_eq!(Client(None).key(), "unknown");
        let mut ext = Extensions::new();
        ext.insert(ConnectInfo(SocketAddr::from((
            "::ffff:192.0.2.7".parse::<Ipv6Addr>().unwrap(),
            1,
        ))));
        assert_eq!(Client::of(&ext, &HeaderMap::new(), &[]).key(), "192.0.2.7");
    }

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let mut ext = Extensions::new();
        ext.insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 5000))));
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 198.51.100.4, 10.0.0.2"),
        );
        assert_eq!(
            Client::of(&ext, &headers, &[]).ip(),
            "10.0.0.1".parse().ok()
        );
        let trusted: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        // The right-most address no trusted proxy added: the one that reached the proxies.
        assert_eq!(
            Client::of(&ext, &headers, &trusted).ip(),
            "198.51.100.4".parse().ok()
        );
        assert_eq!(
            Client::of(&Extensions::new(), &headers, &trusted).ip(),
            None
        );
    }

    #[test]
    fn failed_logins_wait_doubling_up_to_the_cap() {
        let f = Failures::new(3, Duration::from_secs(900), 10);
        let waits: Vec<u64> = (0..16).map(|n| f.wait_after(n).as_secs()).collect();
        assert_eq!(
            waits,
            [
                0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900
            ]
        );
        assert_eq!(
            Failures::new(0, Duration::from_secs(9), 10).wait_after(99),
            Duration::ZERO
        );
    }

    #[test]
    fn failure_counts_are_bounded_and_forget_after_the_cap() {
        let f = Failures::new(1, Duration::from_secs(60), 100);
        let t0 = Instant::now();
        for i in 0..1000 {
            f.fail(&format!("a{i}"), t0);
            assert!(f.tracked() <= 100);
        }
        f.fail("x", t0);
        assert_eq!(f.wait("x", t0), Duration::from_secs(1));
        // A quiet period of max_wait starts the count again.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(f.wait("x", later), Duration::ZERO);
        f.fail("x", later);
        assert_eq!(f.wait("x", later), Duration::from_secs(1));
    }

    #[test]
    fn off_is_never_limited() {
        let limits = Limits::new(&LimitsConfig::off());
        for i in 0..5000 {
            limits
                .spend(Action::Write, Some("alice"), addr("192.0.2.1"))
                .unwrap();
            limits
                .spend(
                    Action::Upload,
                    None,
                    addr(&format!("10.0.{}.{}", i / 256, i % 256)),
                )
                .unwrap();
        }
        assert_eq!(limits.tracked(), 0);
    }

    #[test]
    fn budgets_stay_within_max_tracked() {
        let limits = Limits::new(&config(|c| {
            c.writes_per_address = 5;
            c.max_tracked = 50;
        }));
        for i in 0..3000u32 {
            let ip = IpAddr::from((0xC000_0000u32 + i).to_be_bytes());
            limits.spend(Action::Write, None, Client(Some(ip))).unwrap();
            assert!(limits.tracked() <= 51, "{}", limits.tracked());
        }
    }
}
