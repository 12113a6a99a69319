//! Login sessions: bearer tokens that expire and can be revoked.
//!
//! A token is 32 random bytes shown to the client once, as hex. The node keeps only its
//! SHA-256: the `sessions` column family maps the hash's hex (the session id, safe to show and
//! to revoke by) to the session. A stolen database therefore holds no usable token.

use rocksdb::IteratorMode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError};

const SESSIONS: &str = "sessions";

/// A session of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The id: hex SHA-256 of the token.
    pub id: String,
    /// Whose session it is.
    pub handle: String,
    /// When it was made (ms since the epoch).
    pub created: u64,
    /// When it stops working (ms since the epoch).
    pub expires: u64,
}

/// What a token is worth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A live session.
    Valid(Session),
    /// A session that has expired (removed at the account's next login).
    Expired,
    /// No such session: never made, revoked or logged out.
    Unknown,
}

/// The sessions in a store.
#[derive(Debug, Clone, Copy)]
pub struct Sessions<'a> {
    store: &'a Store,
}

/// The session id of `token`.
pub fn session_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

impl<'a> Sessions<'a> {
    /// Sessions kept in `store`.
    pub fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// Opens a session for `handle` lasting `ttl_ms`; returns the token (shown once) and the
    /// session. The account's expired sessions are removed.
    pub fn create(&self, handle: &str, ttl_ms: u64) -> Result<(String, Session), StoreError> {
        self.remove_where(|s| s.handle == handle && s.expires <= mnode_dag::record::now_ms())?;
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let token = hex::encode(bytes);
        let created = mnode_dag::record::now_ms();
        let session = Session {
            id: session_id(&token),
            handle: handle.to_owned(),
            created,
            expires: created.saturating_add(ttl_ms),
        };
        let value =
            mnode_dag::cbor::encode(&session).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.store
            .db()
            .put_cf(self.store.cf(SESSIONS)?, &session.id, value)?;
        Ok((token, session))
    }

    /// What `token` is worth now.
    pub fn check(&self, token: &str) -> Result<Check, StoreError> {
        let Some(session) = self.get(&session_id(token))? else {
            return Ok(Check::Unknown);
        };
        if session.expires <= mnode_dag::record::now_ms() {
            return Ok(Check::Expired);
        }
        Ok(Check::Valid(session))
    }

    /// The session with this id.
    pub fn get(&self, id: &str) -> Result<Option<Session>, StoreError> {
        match self.store.db().get_cf(self.store.cf(SESSIONS)?, id)? {
            Some(bytes) => Ok(Some(
                mnode_dag::cbor::decode(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            )),
            None => Ok(None),
        }
    }

    /// Live sessions, of one account or of all, oldest first.
    pub fn list(&self, handle: Option<&str>) -> Result<Vec<Session>, StoreError> {
        let now = mnode_dag::record::now_ms();
        let mut out = Vec::new();
        for entry in self
            .store
            .db()
            .iterator_cf(self.store.cf(SESSIONS)?, IteratorMode::Start)
        {
            let (_, v) = entry?;
            let s: Session =
                mnode_dag::cbor::decode(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if s.expires > now && handle.is_none_or(|h| h == s.handle) {
                out.push(s);
            }
        }
        out.sort_by_key(|s| s.created);
        Ok(out)
    }

    /// Ends a session; returns it if there was one.
    pub fn revoke(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let found = self.get(id)?;
        if found.is_some() {
            self.store.db().delete_cf(self.store.cf(SESSIONS)?, id)?;
        }
        Ok(found)
    }

    /// Ends every session of `handle`; returns how many.
    pub fn revoke_all(&self, handle: &str) -> Result<usize, StoreError> {
        self.remove_where(|s| s.handle == handle)
    }

    fn remove_where(&self, pred: impl Fn(&Session) -> bool) -> Result<usize, StoreError> {
        let mut n = 0;
        for entry in self
            .store
            .db()
            .iterator_cf(self.store.cf(SESSIONS)?, IteratorMode::Start)
        {
            let (k, v) = entry?;
            let s: Session =
                mnode_dag::cbor::decode(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if pred(&s) {
                self.store.db().delete_cf(self.store.cf(SESSIONS)?, k)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_check_expire_revoke() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path(), 8)?;
        let sessions = Sessions::new(&store);
        let (token, s) = sessions.create("alice", 60_000)?;
        assert_eq!(s.id, session_id(&token));
        assert_ne!(s.id, token, "the node keeps only the token's hash");
        assert_eq!(sessions.check(&token)?, Check::Valid(s.clone()));
        assert_eq!(sessions.check("not-a-token")?, Check::Unknown);

        let (old, _) = sessions.create("alice", 0)?;
        assert_eq!(sessions.check(&old)?, Check::Expired);
        assert_eq!(sessions.check(&old)?, Check::Expired, "it stays expired");
        assert_eq!(sessions.list(Some("alice"))?, vec![s.clone()], "not listed");
        let (newer, _) = sessions.create("alice", 60_000)?;
        assert_eq!(
            sessions.check(&old)?,
            Check::Unknown,
            "removed at the next login"
        );
        sessions.revoke(&session_id(&newer))?;

        let (bob, _) = sessions.create("bob", 60_000)?;
        assert_eq!(sessions.list(Some("alice"))?, vec![s.clone()]);
        assert_eq!(sessions.list(None)?.len(), 2);
        assert_eq!(sessions.revoke(&s.id)?, Some(s));
        assert_eq!(sessions.check(&token)?, Check::Unknown);
        assert_eq!(sessions.revoke_all("bob")?, 1);
        assert_eq!(sessions.check(&bob)?, Check::Unknown);
        Ok(())
    }
}
