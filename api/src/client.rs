//! The typed HTTP client the CLI uses to drive a running daemon.

use serde_json::{Value, json};

use crate::ApiError;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The daemon could not be reached.
    #[error("cannot reach the daemon at {url}: {source}")]
    Unreachable {
        /// The API URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The daemon answered with an error.
    #[error("{}", .0.message)]
    Api(ApiError),
    /// The answer was not what the API sends.
    #[error("unexpected answer from the daemon: {0}")]
    Protocol(String),
    /// An event stream's reader fell behind and the daemon dropped this many events.
    #[error("the event stream fell behind: {0} events missed")]
    Lagged(u64),
    /// A local file to upload could not be read.
    #[error("cannot read {}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A client for one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the daemon whose API is at `base` (like `http://127.0.0.1:5001`).
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            base: base.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            http: reqwest::Client::new(),
        }
    }

    /// The daemon's address, like `http://127.0.0.1:5001`.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        read_json(self.send(req).await?).await
    }

    /// Sends `req`; an answer that is not a success becomes [`ClientError::Api`].
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let resp = req
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        Err(api_error(status, &read_json(resp).await?))
    }

    /// A `POST` of `body` to `path` under `/api/v1`, with the token.
    fn post_json(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
    }

    /// `GET /node`.
    pub async fn node(&self) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, "/node", None).await
    }

    /// `GET /peers`: `{peers, remembered}`, the connected peers and those reached before.
    pub async fn peers(&self) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, "/peers", None).await
    }

    /// `POST /peers`: connect to a multiaddr.
    pub async fn connect(&self, addr: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/peers",
            Some(json!({ "addr": addr })),
        )
        .await
    }

    /// `PUT /peers/{peer}/ban` (or `DELETE` to lift it): disconnect and refuse a peer.
    pub async fn ban(&self, peer: &str, ban: bool) -> Result<Value, ClientError> {
        let method = if ban {
            reqwest::Method::PUT
        } else {
            reqwest::Method::DELETE
        };
        self.call(method, &format!("/peers/{peer}/ban"), None).await
    }

    /// `GET /node/events`: the node's network events as they happen. The stream ends when the
    /// daemon stops; a reader that falls behind gets one [`ClientError::Lagged`] and goes on.
    pub async fn node_events(
        &self,
    ) -> Result<
        impl futures::Stream<Item = Result<mnode_node::node::NodeEvent, ClientError>> + use<>,
        ClientError,
    > {
        use eventsource_stream::Eventsource as _;
        use futures::StreamExt as _;

        let url = format!("{}/api/v1/node/events", self.base);
        let resp = self
            .send(self.http.get(&url).bearer_auth(&self.token))
            .await?;
        Ok(resp.bytes_stream().eventsource().map(|item| {
            let ev = item.map_err(|e| ClientError::Protocol(e.to_string()))?;
            if ev.event == "lagged" {
                let v: Value = serde_json::from_str(&ev.data)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
                return Err(ClientError::Lagged(v["missed"].as_u64().unwrap_or(0)));
            }
            serde_json::from_str(&ev.data)
                .map_err(|e| ClientError::Protocol(format!("node event {:?}: {e}", ev.event)))
        }))
    }

    /// `GET /follows`.
    pub async fn follows(&self) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, "/follows", None).await
    }

    /// `POST /follows` (or `DELETE` to unfollow).
    pub async fn follow(&self, topic: &str, follow: bool) -> Result<Value, ClientError> {
        let method = if follow {
            reqwest::Method::POST
        } else {
            reqwest::Method::DELETE
        };
        self.call(method, "/follows", Some(json!({ "topic": topic })))
            .await
    }

    /// `POST /records`: create an item of `kind` signed by `as_handle` (default: the owner).
    pub async fn create(
        &self,
        kind: &str,
        body: Value,
        as_handle: Option<&str>,
    ) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/records",
            Some(json!({ "kind": kind, "body": body, "as": as_handle })),
        )
        .await
    }

    /// `POST /records` with `owner`: an item the group `group` owns, signed by `as_handle`
    /// (default: the owner), who must be allowed to edit in the group.
    pub async fn create_owned(
        &self,
        kind: &str,
        body: Value,
        group: &str,
        as_handle: Option<&str>,
    ) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/records",
            Some(json!({ "kind": kind, "body": body, "owner": group, "as": as_handle })),
        )
        .await
    }

    /// `POST /records` with an audience: an item sealed for `to` (did:keys or handles here)
    /// and the members of `to_group`, owned by `owner` when given.
    pub async fn create_private(
        &self,
        kind: &str,
        body: Value,
        owner: Option<&str>,
        to: &[String],
        to_group: Option<&str>,
        as_handle: Option<&str>,
    ) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/records",
            Some(json!({
                "kind": kind, "body": body, "owner": owner, "to": to, "to_group": to_group,
                "as": as_handle,
            })),
        )
        .await
    }

    /// `POST /messages`: sends `text` to `to` (did:keys or handles here) as `as_handle`.
    pub async fn send_message(
        &self,
        to: &[String],
        text: &str,
        reply_to: Option<&str>,
        as_handle: Option<&str>,
    ) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/messages",
            Some(json!({ "to": to, "text": text, "reply_to": reply_to, "as": as_handle })),
        )
        .await
    }

    /// `GET /messages[?with=…]`: the conversations of `as_handle` (default: the caller), or
    /// the one with `with` (did:keys or handles, separated by commas).
    pub async fn messages(
        &self,
        with: Option<&str>,
        as_handle: Option<&str>,
    ) -> Result<Value, ClientError> {
        let mut query = vec![];
        if let Some(w) = with {
            query.push(("with", w.to_owned()));
        }
        if let Some(h) = as_handle {
            query.push(("as", h.to_owned()));
        }
        self.call(
            reqwest::Method::GET,
            &Self::with_query("/messages", &query),
            None,
        )
        .await
    }

    /// `GET /groups[?member=…]`.
    pub async fn groups(&self, member: Option<&str>) -> Result<Value, ClientError> {
        let query: Vec<(&str, String)> = member
            .map(|m| ("member", m.to_owned()))
            .into_iter()
            .collect();
        self.call(
            reqwest::Method::GET,
            &Self::with_query("/groups", &query),
            None,
        )
        .await
    }

    /// `GET /groups/{id}`: the group, its members and its items.
    pub async fn group(&self, id: &str) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, &format!("/groups/{id}"), None)
            .await
    }

    /// `POST /groups`: a new group owned by `as_handle` (default: the owner), with `members`
    /// as `{member, role}` objects.
    pub async fn create_group(
        &self,
        name: &str,
        description: Option<&str>,
        members: Vec<Value>,
        as_handle: Option<&str>,
    ) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/groups",
            Some(json!({
                "name": name, "description": description, "members": members, "as": as_handle,
            })),
        )
        .await
    }

    /// `PUT /groups/{id}/members/{member}` (a role) or `DELETE` (`None`: remove, or leave).
    pub async fn set_member(
        &self,
        group: &str,
        member: &str,
        role: Option<&str>,
        as_handle: Option<&str>,
    ) -> Result<Value, ClientError> {
        let path = format!("/groups/{group}/members/{}", encode(member));
        match role {
            Some(role) => {
                self.call(
                    reqwest::Method::PUT,
                    &path,
                    Some(json!({ "role": role, "as": as_handle })),
                )
                .await
            }
            None => {
                let query: Vec<(&str, String)> = as_handle
                    .map(|h| ("as", h.to_owned()))
                    .into_iter()
                    .collect();
                self.call(
                    reqwest::Method::DELETE,
                    &Self::with_query(&path, &query),
                    None,
                )
                .await
            }
        }
    }

    /// `GET /records?…`: items newest first (`query` pairs such as `("kind", "social.post")`).
    pub async fn list(&self, query: &[(&str, String)]) -> Result<Value, ClientError> {
        let path = Self::with_query("/records", query);
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// `path` with `query` pairs appended, percent-encoded.
    fn with_query(path: &str, query: &[(&str, String)]) -> String {
        let mut path = path.to_owned();
        for (i, (k, v)) in query.iter().enumerate() {
            path.push(if i == 0 { '?' } else { '&' });
            path.push_str(k);
            path.push('=');
            path.push_str(&encode(v));
        }
        path
    }

    /// `GET /me`: the account the token acts as.
    pub async fn me(&self) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, "/me", None).await
    }

    /// `GET /accounts/{handle}`.
    pub async fn account(&self, handle: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::GET,
            &format!("/accounts/{}", encode(handle)),
            None,
        )
        .await
    }

    /// `GET /me/follows`: the topics the token's account follows.
    pub async fn my_follows(&self) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, "/me/follows", None).await
    }

    /// `POST /me/follows`: follow a topic as the token's account.
    pub async fn follow_me(&self, topic: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/me/follows",
            Some(json!({ "topic": topic })),
        )
        .await
    }

    /// `GET /me/timeline?…` (`cursor`, `limit`, `kind`).
    pub async fn timeline(&self, query: &[(&str, String)]) -> Result<Value, ClientError> {
        let path = Self::with_query("/me/timeline", query);
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// `GET /feeds/{id}?…`: an author's feed (`did:key:…`) or a `social.feed` record's.
    pub async fn feed(&self, id: &str, query: &[(&str, String)]) -> Result<Value, ClientError> {
        let path = Self::with_query(&format!("/feeds/{}", encode(id)), query);
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// `GET /forums?…`.
    pub async fn forums(&self, query: &[(&str, String)]) -> Result<Value, ClientError> {
        let path = Self::with_query("/forums", query);
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// `GET /forums/{id}?…`: a forum and a page of its branches.
    pub async fn forum(&self, id: &str, query: &[(&str, String)]) -> Result<Value, ClientError> {
        let path = Self::with_query(&format!("/forums/{}", encode(id)), query);
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// `GET /branches/{id}?…`: a branch, its sub-branches and a page of its threads.
    pub async fn branch(&self, id: &str, query: &[(&str, String)]) -> Result<Value, ClientError> {
        let path = Self::with_query(&format!("/branches/{}", encode(id)), query);
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// `GET /threads/{id}?…`: a thread, its forks and a page of its posts.
    pub async fn thread(&self, id: &str, query: &[(&str, String)]) -> Result<Value, ClientError> {
        let path = Self::with_query(&format!("/threads/{}", encode(id)), query);
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// `POST /threads/{id}/replies`: a post in the thread (`{text, parent?, as?, …}`).
    pub async fn reply(&self, thread: &str, body: Value) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            &format!("/threads/{}/replies", encode(thread)),
            Some(body),
        )
        .await
    }

    /// `POST /threads/{id}/fork`: a new thread forked at a post (`{post, title?, as?, …}`).
    pub async fn fork(&self, thread: &str, body: Value) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            &format!("/threads/{}/fork", encode(thread)),
            Some(body),
        )
        .await
    }

    /// `GET /facts/{id}?…`: a fact, the facts under it and a page of its context notes.
    pub async fn fact(&self, id: &str, query: &[(&str, String)]) -> Result<Value, ClientError> {
        let path = Self::with_query(&format!("/facts/{}", encode(id)), query);
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// `POST /forums/{id}/moderation`: a moderation decision (`{action, target?, author?,
    /// reason}`), signed by the token's account.
    pub async fn moderate(&self, forum: &str, body: Value) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            &format!("/forums/{forum}/moderation"),
            Some(body),
        )
        .await
    }

    /// `PUT /records/{cid}`: a new version with `body`.
    /// The node signs it with the author's key.
    ///
    /// With `as_handle`, acting as that account, which must be the item's author.
    pub async fn update(
        &self,
        cid: &str,
        body: Value,
        as_handle: Option<&str>,
    ) -> Result<Value, ClientError> {
        let mut req = json!({ "body": body });
        if let Some(h) = as_handle {
            req["as"] = json!(h);
        }
        self.call(reqwest::Method::PUT, &format!("/records/{cid}"), Some(req))
            .await
    }

    /// `DELETE /records/{cid}`: a tombstone version, signed with the author's key.
    ///
    /// With `as_handle`, acting as that account, which must be the item's author.
    pub async fn delete(&self, cid: &str, as_handle: Option<&str>) -> Result<Value, ClientError> {
        let path = match as_handle {
            Some(h) => format!("/records/{cid}?as={}", encode(h)),
            None => format!("/records/{cid}"),
        };
        self.call(reqwest::Method::DELETE, &path, None).await
    }

    /// `GET /records/{cid}/history`.
    pub async fn history(&self, cid: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::GET,
            &format!("/records/{cid}/history"),
            None,
        )
        .await
    }

    /// `GET /records/{cid}`: the item's current version (or, `exact`, the version the CID
    /// names).
    pub async fn record(&self, cid: &str, exact: bool) -> Result<Value, ClientError> {
        self.record_as(cid, exact, None).await
    }

    /// [`Client::record`] read as `as_handle` (a private version opens for its readers).
    pub async fn record_as(
        &self,
        cid: &str,
        exact: bool,
        as_handle: Option<&str>,
    ) -> Result<Value, ClientError> {
        let mut path = format!("/records/{cid}?exact={exact}");
        if let Some(h) = as_handle {
            path.push_str(&format!("&as={}", encode(h)));
        }
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// `POST /files/fetch`: fetch a file from peers into the daemon's store.
    pub async fn fetch(&self, cid: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/files/fetch",
            Some(json!({ "cid": cid })),
        )
        .await
    }

    /// `POST /files/fetch` with progress: `progress(held, size)` is called as bytes arrive.
    pub async fn fetch_progress(
        &self,
        cid: &str,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<Value, ClientError> {
        let resp = self
            .send(self.post_json("/files/fetch", &json!({ "cid": cid, "progress": true })))
            .await?;
        let mut size = None;
        read_ndjson(resp, |v| {
            if let Some(n) = v["size"].as_u64() {
                size = Some(n);
            } else if let Some(n) = v["bytes"].as_u64() {
                progress(n, size);
            }
        })
        .await
    }

    /// `POST /files/fetch` of a record (a release, say): the record, what it links and every
    /// file in it; `progress` gets each progress line (`{files, held, bytes}`).
    pub async fn fetch_dag_progress(
        &self,
        cid: &str,
        progress: impl FnMut(&Value),
    ) -> Result<Value, ClientError> {
        let resp = self
            .send(self.post_json("/files/fetch", &json!({ "cid": cid, "progress": true })))
            .await?;
        read_ndjson(resp, progress).await
    }

    /// `POST /files/export`: write a held file to a path on the daemon's disk; `parents`
    /// creates the missing folders of `path` (without it they are refused).
    pub async fn export(
        &self,
        cid: &str,
        path: &std::path::Path,
        parents: bool,
    ) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/files/export",
            Some(json!({ "cid": cid, "path": path, "parents": parents })),
        )
        .await
    }

    /// `POST /files/import`: add a file on the daemon's disk.
    pub async fn import(&self, path: &std::path::Path) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/files/import",
            Some(json!({ "path": path })),
        )
        .await
    }

    /// `POST /files/import/batch` with progress: imports files on the daemon's disk (at most
    /// [`crate::files::MAX_IMPORTS`]), committed to disk as `commit` says (with `Later`, by
    /// [`Client::commit_files`]); `progress(done, size)` is called as the daemon reads them.
    /// Answers `{files: [{path, cid, size, unixfs}]}` in the order of `paths`.
    pub async fn import_batch(
        &self,
        paths: &[std::path::PathBuf],
        commit: mnode_node::blobs::Commit,
        progress: impl FnMut(u64, u64),
    ) -> Result<Value, ClientError> {
        let commit = match commit {
            mnode_node::blobs::Commit::Now => "now",
            mnode_node::blobs::Commit::Later => "later",
        };
        let body = json!({ "paths": paths, "progress": true, "commit": commit });
        let resp = self
            .send(self.post_json("/files/import/batch", &body))
            .await?;
        read_sized(resp, progress).await
    }

    /// `POST /files/commit`: commits the files imported with `Commit::Later` to disk.
    pub async fn commit_files(&self) -> Result<(), ClientError> {
        self.send(self.post_json("/files/commit", &json!({})))
            .await
            .map(drop)
    }

    /// `POST /records/batch`: records of `(kind, body)` created in one atomic batch, signed by
    /// `as_handle` (default: the token's account). Answers `{records: [{cid, id, seq}], stored}`.
    pub async fn create_batch(
        &self,
        records: &[(String, Value)],
        as_handle: Option<&str>,
    ) -> Result<Value, ClientError> {
        let records: Vec<Value> = records
            .iter()
            .map(|(kind, body)| json!({ "kind": kind, "body": body }))
            .collect();
        self.call(
            reqwest::Method::POST,
            "/records/batch",
            Some(json!({ "records": records, "as": as_handle })),
        )
        .await
    }

    /// `GET /repo/stat`.
    pub async fn repo_stat(&self) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, "/repo/stat", None).await
    }

    /// `POST /repo/gc`.
    pub async fn repo_gc(&self) -> Result<Value, ClientError> {
        self.call(reqwest::Method::POST, "/repo/gc", None).await
    }

    /// `POST /repo/verify`: `{ok, report}`.
    pub async fn repo_verify(&self) -> Result<Value, ClientError> {
        self.call(reqwest::Method::POST, "/repo/verify", None).await
    }

    /// `POST /dag/export`: the daemon writes the CAR to `path` (absolute, on its disk).
    pub async fn dag_export(
        &self,
        cid: &str,
        path: &std::path::Path,
        mut progress: impl FnMut(u64),
    ) -> Result<Value, ClientError> {
        let resp = self
            .send(self.post_json(
                "/dag/export",
                &json!({ "cid": cid, "path": path, "progress": true }),
            ))
            .await?;
        read_ndjson(resp, |v| {
            if let Some(n) = v["bytes"].as_u64() {
                progress(n);
            }
        })
        .await
    }

    /// `POST /dag/import`: the daemon reads the CAR at `path` (absolute, on its disk);
    /// `progress(read, size)` is called as it reads.
    pub async fn dag_import(
        &self,
        path: &std::path::Path,
        progress: impl FnMut(u64, u64),
    ) -> Result<Value, ClientError> {
        let resp = self
            .send(self.post_json("/dag/import", &json!({ "path": path, "progress": true })))
            .await?;
        read_sized(resp, progress).await
    }

    /// `POST /dag/put`: stores a block given as DAG-JSON; `{cid, record}`.
    pub async fn dag_put(&self, dag_json: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/dag/put",
            Some(json!({ "dag_json": dag_json })),
        )
        .await
    }

    /// `GET /dag/block/{cid}`: `{cid, value}` with the block as DAG-JSON.
    pub async fn dag_block(&self, cid: &str) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, &format!("/dag/block/{cid}"), None)
            .await
    }

    /// `GET /accounts` (admin).
    pub async fn accounts(&self) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, "/accounts", None).await
    }

    /// `POST /accounts`.
    pub async fn create_account(
        &self,
        handle: &str,
        email: &str,
        phone: Option<&str>,
        password: Option<&str>,
        admin: bool,
    ) -> Result<Value, ClientError> {
        let role = if admin { "admin" } else { "user" };
        let mut body = json!({ "handle": handle, "email": email, "role": role });
        if let Some(p) = phone {
            body["phone"] = json!(p);
        }
        if let Some(p) = password {
            body["password"] = json!(p);
        }
        self.call(reqwest::Method::POST, "/accounts", Some(body))
            .await
    }

    /// `POST /accounts/{handle}/keys/rotate`: `{identity, key, log_version, recovery_key}`.
    pub async fn rotate_key(&self, handle: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            &format!("/accounts/{}/keys/rotate", encode(handle)),
            None,
        )
        .await
    }

    /// `POST /accounts/{handle}/keys/recover`: `{identity, key, log_version, recovery_key}`.
    pub async fn recover_key(
        &self,
        handle: &str,
        recovery_key: &str,
    ) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            &format!("/accounts/{}/keys/recover", encode(handle)),
            Some(json!({ "recovery_key": recovery_key })),
        )
        .await
    }

    /// `DELETE /accounts/{handle}`.
    pub async fn delete_account(&self, handle: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/accounts/{}", encode(handle)),
            None,
        )
        .await
    }

    /// `PUT /accounts/{handle}/password`.
    pub async fn set_password(&self, handle: &str, password: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::PUT,
            &format!("/accounts/{}/password", encode(handle)),
            Some(json!({ "password": password })),
        )
        .await
    }

    /// `PUT /accounts/{handle}/phone`: sets the number, or removes it with `None`.
    pub async fn set_phone(&self, handle: &str, phone: Option<&str>) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::PUT,
            &format!("/accounts/{}/phone", encode(handle)),
            Some(json!({ "phone": phone })),
        )
        .await
    }

    /// `GET /query?q=`: `{items}` or `{count}`.
    pub async fn query(&self, q: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::GET,
            &format!("/query?q={}", encode(q)),
            None,
        )
        .await
    }

    /// `GET /ipfs/{cid}` with an optional byte range (`start`, exclusive `end`): the response,
    /// to stream. Errors are read into [`ClientError::Api`].
    pub async fn file(
        &self,
        cid: &str,
        start: u64,
        end: Option<u64>,
    ) -> Result<reqwest::Response, ClientError> {
        self.ranged(format!("{}/ipfs/{cid}", self.base), start, end)
            .await
    }

    /// `GET /records/{cid}/file`: the file a file record holds, opened for the token's account
    /// when the record is private (bytes `start..end`).
    pub async fn record_file(
        &self,
        cid: &str,
        as_handle: Option<&str>,
        start: u64,
        end: Option<u64>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut url = format!("{}/api/v1/records/{cid}/file", self.base);
        if let Some(h) = as_handle {
            url.push_str(&format!("?as={}", encode(h)));
        }
        self.ranged(url, start, end).await
    }

    async fn ranged(
        &self,
        url: String,
        start: u64,
        end: Option<u64>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut req = self.http.get(&url).bearer_auth(&self.token);
        if start > 0 || end.is_some() {
            let last = end
                .map(|e| e.saturating_sub(1).to_string())
                .unwrap_or_default();
            req = req.header(reqwest::header::RANGE, format!("bytes={start}-{last}"));
        }
        self.send(req).await
    }

    /// `GET /pins`.
    pub async fn pins(&self) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, "/pins", None).await
    }

    /// `POST /pins`.
    pub async fn pin(&self, cid: &str, recursive: bool) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/pins",
            Some(json!({ "cid": cid, "recursive": recursive })),
        )
        .await
    }

    /// `DELETE /pins/{cid}`.
    pub async fn unpin(&self, cid: &str) -> Result<Value, ClientError> {
        self.call(reqwest::Method::DELETE, &format!("/pins/{cid}"), None)
            .await
    }

    /// `PUT /files`: uploads a file from this machine, streamed from disk; the daemon stores it
    /// and makes its record, signed as `as_handle` (default: the token's account). `sent` is
    /// called with the number of bytes sent so far. Answers `{cid, size, name, media_type,
    /// url, record}`.
    pub async fn upload(
        &self,
        path: &std::path::Path,
        as_handle: Option<&str>,
        sent: impl FnMut(u64) + Send + 'static,
    ) -> Result<Value, ClientError> {
        self.upload_for(path, as_handle, &[], None, sent).await
    }

    /// [`Client::upload`] of a private file: sealed for `to` (handles or `did:key`s) and the
    /// members of `to_group`, its record private to them (`PUT /files?to=…&to_group=…`).
    pub async fn upload_for(
        &self,
        path: &std::path::Path,
        as_handle: Option<&str>,
        to: &[String],
        to_group: Option<&str>,
        mut sent: impl FnMut(u64) + Send + 'static,
    ) -> Result<Value, ClientError> {
        use futures::StreamExt as _;
        let local = |source| ClientError::File {
            path: path.to_owned(),
            source,
        };
        let file = tokio::fs::File::open(path).await.map_err(local)?;
        let size = file.metadata().await.map_err(local)?.len();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut url = format!("{}/api/v1/files?name={}", self.base, encode(&name));
        if let Some(h) = as_handle {
            url.push_str(&format!("&as={}", encode(h)));
        }
        if !to.is_empty() {
            url.push_str(&format!("&to={}", encode(&to.join(","))));
        }
        if let Some(g) = to_group {
            url.push_str(&format!("&to_group={}", encode(g)));
        }
        let mut total = 0u64;
        let chunks = tokio_util::io::ReaderStream::new(file).map(move |chunk| {
            if let Ok(c) = &chunk {
                total += c.len() as u64;
                sent(total);
            }
            chunk
        });
        let req = self
            .http
            .put(&url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(chunks));
        read_json(self.send(req).await?).await
    }
}

/// Reads an NDJSON progress answer of `{size}` then `{bytes}` lines: `progress(bytes, size)`.
async fn read_sized(
    resp: reqwest::Response,
    mut progress: impl FnMut(u64, u64),
) -> Result<Value, ClientError> {
    let mut size = 0;
    read_ndjson(resp, |v| {
        if let Some(n) = v["size"].as_u64() {
            size = n;
        } else if let Some(n) = v["bytes"].as_u64() {
            progress(n, size);
        }
    })
    .await
}

/// Reads an NDJSON progress answer: `line` sees each progress line; the answer is the `done`
/// line's value, or the `error` line's error.
async fn read_ndjson(
    mut resp: reqwest::Response,
    mut line: impl FnMut(&Value),
) -> Result<Value, ClientError> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))?
    {
        buf.extend_from_slice(&chunk);
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let text: Vec<u8> = buf.drain(..=i).collect();
            let v: Value =
                serde_json::from_slice(&text).map_err(|e| ClientError::Protocol(e.to_string()))?;
            if v["done"].is_object() {
                return Ok(v["done"].clone());
            }
            if v["error"].is_object() {
                let status = v["error"]["status"].as_u64().unwrap_or(500);
                return Err(api_error(u16::try_from(status).unwrap_or(500), &v));
            }
            line(&v);
        }
    }
    Err(ClientError::Protocol(
        "the daemon closed the progress stream early".into(),
    ))
}

/// An answer's JSON body.
async fn read_json(resp: reqwest::Response) -> Result<Value, ClientError> {
    resp.json()
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The error in an API answer, with the daemon's own code.
fn api_error(status: u16, value: &Value) -> ClientError {
    let err = &value["error"];
    ClientError::Api(ApiError::new(
        status,
        err["code"].as_str().map_or("error", intern_code),
        err["message"]
            .as_str()
            .unwrap_or("unknown error")
            .to_owned(),
    ))
}

/// A code from an answer as the `&'static str` [`ApiError`] holds. The API has a few dozen
/// codes; each is kept once for the life of the process, and past a bound (an answer from
/// something that is not mnode) codes read as `error`.
fn intern_code(code: &str) -> &'static str {
    static CODES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let Ok(mut codes) = CODES.lock() else {
        return "error";
    };
    if let Some(known) = codes.iter().find(|c| **c == code) {
        return known;
    }
    if codes.len() >= 256 || code.len() > 64 {
        return "error";
    }
    let kept: &'static str = Box::leak(code.to_owned().into_boxed_str());
    codes.push(kept);
    kept
}
