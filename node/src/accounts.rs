//! Accounts: the people a node hosts.
//!
//! An account has a unique handle, an email unique without regard to case, optionally a phone
//! number unique in its E.164 form, a password hash (argon2id, PHC string; passwords are
//! checked for strength with zxcvbn), a role, and one or more ed25519 signing keys held sealed
//! in the [`Keystore`]. Accounts live in the store's `accounts` column family (handle →
//! account) with an `emails` index (lower-case email → handle) and a `phones` index (E.164 →
//! handle); all change in one atomic batch.
//!
//! An account speaks for one identity: the `did:key` of its first key. It may rotate its key
//! ([`Accounts::rotate`]): the identity's key log (`core.keys`, [`mnode_dag::key_log`]) grants the
//! new key, which then signs for the identity citing that grant (`$signer`). Old keys stay in
//! `keys` and the keystore (they open old private records). The log's root names a recovery key
//! whose public half the account keeps; its secret is handed out once and never stored here, so
//! a copy of the repository cannot take the identity over.

use std::sync::Mutex;

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier},
};
use mnode_dag::{
    Did, Keypair, Link, Record, RecordError,
    key_log::{MAX_KEPT, SignerCite},
    model::{check, core::KeyLog},
};
use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use crate::{
    keystore::{Keystore, KeystoreError},
    store::{Store, StoreError},
};

const ACCOUNTS: &str = "accounts";
const EMAILS: &str = "emails";
const PHONES: &str = "phones";

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the node: manages every account.
    Admin,
    /// Publishes as themselves.
    User,
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Unique handle.
    pub handle: String,
    /// Email, as given (unique without regard to case).
    pub email: String,
    /// Phone number in E.164 form (`+4930123456`), unique; none unless the person gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// argon2id PHC string; `None` until a password is set (login disabled).
    pub password: Option<String>,
    /// Admin or user.
    pub role: Role,
    /// Signing keys, the first being the one new records are signed with; after a rotation
    /// the older keys follow it.
    pub keys: Vec<Did>,
    /// When the account was made (ms).
    pub created: u64,
    /// The identity the account speaks for: its first key. `None` means `keys[0]` (an account
    /// that never rotated); set by the first rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Did>,
    /// The public recovery key its key log's root names, once it has one (the secret is never
    /// stored on the node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Did>,
}

impl Account {
    /// The key new records are signed with.
    pub fn did(&self) -> Option<&Did> {
        self.keys.first()
    }

    /// The identity the account speaks for: its first key (`keys[0]` until it rotated).
    pub fn identity(&self) -> Option<&Did> {
        self.identity.as_ref().or(self.keys.first())
    }
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// The handle is taken.
    #[error("the handle {0:?} is taken")]
    HandleTaken(String),
    /// The email is used by another account.
    #[error("the email {0:?} is used by another account")]
    EmailTaken(String),
    /// The phone number is used by another account.
    #[error("the phone number {0} is used by another account")]
    PhoneTaken(String),
    /// No such account.
    #[error("no account {0:?}")]
    NotFound(String),
    /// The handle, email or phone number is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The password is too weak, with advice.
    #[error("password too weak: {0}")]
    WeakPassword(String),
    /// The password does not match.
    #[error("wrong handle or password")]
    WrongPassword,
    /// The keystore failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The account's identity has no key log on this node: make one first
    /// ([`Accounts::ensure_log`]).
    #[error("{0:?} has no key log yet; make its root first")]
    NoKeyLog(String),
    /// The key the identity's key log names now is not among the account's keys (it was
    /// rotated or recovered elsewhere).
    #[error("the key log of {handle:?} grants {key}, which this node does not hold")]
    KeyElsewhere {
        /// The account.
        handle: String,
        /// The key the log's head grants.
        key: Did,
    },
    /// A record could not be made.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The key given to recover an account is not the recovery key its key log's head names.
    #[error("{0}")]
    WrongRecovery(String),
}

impl From<rocksdb::Error> for AccountError {
    fn from(e: rocksdb::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Accounts over a store and a keystore.
#[derive(Debug)]
pub struct Accounts<'a> {
    store: &'a Store,
    keystore: &'a Keystore,
}

/// Serialises account writes (handle and email uniqueness are read-check-write).
static WRITE: Mutex<()> = Mutex::new(());

impl<'a> Accounts<'a> {
    /// Accounts kept in `store`, with keys in `keystore`.
    pub fn new(store: &'a Store, keystore: &'a Keystore) -> Self {
        Self { store, keystore }
    }

    /// Creates an account with a new signing key. `password` may be `None` (login disabled
    /// until one is set); `phone`, in international form, is normalised to E.164.
    pub fn create(
        &self,
        handle: &str,
        email: &str,
        phone: Option<&str>,
        password: Option<&str>,
        role: Role,
    ) -> Result<Account, AccountError> {
        check::handle("handle", handle).map_err(|e| AccountError::Invalid(e.to_string()))?;
        check_email(email)?;
        let phone = phone.map(normalize_phone).transpose()?;
        let password = password
            .map(|p| hash_password(p, &[handle, email]))
            .transpose()?;
        let _guard = WRITE
            .lock()
            .map_err(|_| AccountError::Invalid("account lock poisoned".into()))?;
        if self.get(handle)?.is_some() {
            return Err(AccountError::HandleTaken(handle.to_owned()));
        }
        if self.holder(EMAILS, &email.to_lowercase())?.is_some() {
            return Err(AccountError::EmailTaken(email.to_owned()));
        }
        if let Some(phone) = &phone {
            self.check_phone_free(phone)?;
        }
        let key = Keypair::generate();
        self.keystore.put(&key)?;
        let account = Account {
            handle: handle.to_owned(),
            email: email.to_owned(),
            phone,
            password,
            role,
            keys: vec![*key.did()],
            created: mnode_dag::record::now_ms(),
            identity: None,
            recovery: None,
        };
        self.write(&account, None)?;
        Ok(account)
    }

    /// The handle that `key` names in the index `index` (`emails`, `phones`).
    fn holder(&self, index: &str, key: &str) -> Result<Option<String>, AccountError> {
        Ok(self
            .store
            .db()
            .get_cf(self.store.cf(index)?, key)?
            .map(|handle| String::from_utf8_lossy(&handle).into_owned()))
    }

    /// The account that `key` names in the index `index`.
    fn by_index(&self, index: &str, key: &str) -> Result<Option<Account>, AccountError> {
        match self.holder(index, key)? {
            Some(handle) => self.get(&handle),
            None => Ok(None),
        }
    }

    fn check_phone_free(&self, phone: &str) -> Result<(), AccountError> {
        if self.holder(PHONES, phone)?.is_some() {
            return Err(AccountError::PhoneTaken(phone.to_owned()));
        }
        Ok(())
    }

    /// Writes `account` and its index entries in one batch, removing those of `before` (the
    /// same account as stored) that changed.
    fn write(&self, account: &Account, before: Option<&Account>) -> Result<(), AccountError> {
        let mut batch = WriteBatch::default();
        let bytes =
            mnode_dag::cbor::encode(account).map_err(|e| AccountError::Invalid(e.to_string()))?;
        batch.put_cf(self.store.cf(ACCOUNTS)?, &account.handle, bytes);
        if let Some(before) = before {
            if before.email.to_lowercase() != account.email.to_lowercase() {
                batch.delete_cf(self.store.cf(EMAILS)?, before.email.to_lowercase());
            }
            if let Some(old) = before
                .phone
                .as_ref()
                .filter(|p| account.phone.as_ref() != Some(*p))
            {
                batch.delete_cf(self.store.cf(PHONES)?, old);
            }
        }
        batch.put_cf(
            self.store.cf(EMAILS)?,
            account.email.to_lowercase(),
            &account.handle,
        );
        if let Some(phone) = &account.phone {
            batch.put_cf(self.store.cf(PHONES)?, phone, &account.handle);
        }
        self.store.db().write(batch)?;
        Ok(())
    }

    /// Sets or (with `None`) removes an account's phone number, normalised to E.164; refused
    /// when another account has it.
    pub fn set_phone(&self, handle: &str, phone: Option<&str>) -> Result<Account, AccountError> {
        let phone = phone.map(normalize_phone).transpose()?;
        let _guard = WRITE
            .lock()
            .map_err(|_| AccountError::Invalid("account lock poisoned".into()))?;
        let before = self
            .get(handle)?
            .ok_or_else(|| AccountError::NotFound(handle.to_owned()))?;
        if before.phone == phone {
            return Ok(before);
        }
        if let Some(phone) = &phone {
            self.check_phone_free(phone)?;
        }
        let account = Account {
            phone,
            ..before.clone()
        };
        self.write(&account, Some(&before))?;
        Ok(account)
    }

    /// The account with this phone number (in any international form).
    pub fn by_phone(&self, phone: &str) -> Result<Option<Account>, AccountError> {
        match normalize_phone(phone) {
            Ok(phone) => self.by_index(PHONES, &phone),
            Err(_) => Ok(None),
        }
    }

    /// The account with this handle.
    pub fn get(&self, handle: &str) -> Result<Option<Account>, AccountError> {
        match self.store.db().get_cf(self.store.cf(ACCOUNTS)?, handle)? {
            Some(bytes) => Ok(Some(
                mnode_dag::cbor::decode(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            )),
            None => Ok(None),
        }
    }

    /// The account with this email (any case).
    pub fn by_email(&self, email: &str) -> Result<Option<Account>, AccountError> {
        self.by_index(EMAILS, &email.to_lowercase())
    }

    /// The account that holds the key `did`.
    pub fn by_did(&self, did: &Did) -> Result<Option<Account>, AccountError> {
        Ok(self.list()?.into_iter().find(|a| a.keys.contains(did)))
    }

    /// The account that speaks for `identity` (the first key of its key log).
    pub fn by_identity(&self, identity: &Did) -> Result<Option<Account>, AccountError> {
        Ok(self
            .list()?
            .into_iter()
            .find(|a| a.identity() == Some(identity)))
    }

    /// Every account, by handle.
    pub fn list(&self) -> Result<Vec<Account>, AccountError> {
        let mut out = Vec::new();
        for entry in self
            .store
            .db()
            .iterator_cf(self.store.cf(ACCOUNTS)?, rocksdb::IteratorMode::Start)
        {
            let (_, v) = entry?;
            out.push(mnode_dag::cbor::decode(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    /// Deletes an account and its keys. Records it signed stay (and stay verifiable).
    pub fn delete(&self, handle: &str) -> Result<Account, AccountError> {
        let _guard = WRITE
            .lock()
            .map_err(|_| AccountError::Invalid("account lock poisoned".into()))?;
        let account = self
            .get(handle)?
            .ok_or_else(|| AccountError::NotFound(handle.to_owned()))?;
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.store.cf(ACCOUNTS)?, handle);
        batch.delete_cf(self.store.cf(EMAILS)?, account.email.to_lowercase());
        if let Some(phone) = &account.phone {
            batch.delete_cf(self.store.cf(PHONES)?, phone);
        }
        self.store.db().write(batch)?;
        for did in &account.keys {
            self.keystore.remove(did)?;
        }
        Ok(account)
    }

    /// Sets a new password (checked for strength).
    pub fn set_password(&self, handle: &str, password: &str) -> Result<(), AccountError> {
        let _guard = WRITE
            .lock()
            .map_err(|_| AccountError::Invalid("account lock poisoned".into()))?;
        let mut account = self
            .get(handle)?
            .ok_or_else(|| AccountError::NotFound(handle.to_owned()))?;
        account.password = Some(hash_password(password, &[handle, &account.email])?);
        self.write(&account, None)
    }

    /// Checks a password; the same error for an unknown handle and a wrong password.
    pub fn check_password(&self, handle: &str, password: &str) -> Result<Account, AccountError> {
        let account = self.get(handle)?.ok_or(AccountError::WrongPassword)?;
        let hash = account
            .password
            .as_deref()
            .ok_or(AccountError::WrongPassword)?;
        Argon2::default()
            .verify_password(password.as_bytes(), hash)
            .map_err(|_| AccountError::WrongPassword)?;
        Ok(account)
    }

    /// The signing key new records of `handle` are signed with.
    pub fn signing_key(&self, handle: &str) -> Result<Keypair, AccountError> {
        let account = self
            .get(handle)?
            .ok_or_else(|| AccountError::NotFound(handle.to_owned()))?;
        let did = account
            .did()
            .ok_or_else(|| AccountError::Invalid(format!("account {handle:?} has no key")))?;
        Ok(self.keystore.get(did)?)
    }

    /// The key new records of `handle` are signed with, and what they cite for it: `None`
    /// while it is the identity's first key, else the `$signer` naming the identity and the
    /// version of its key log (on the winning path this node holds) that grants the key.
    /// [`mnode_dag::Draft::signed_as`] takes the citation.
    pub fn signing(&self, handle: &str) -> Result<(Keypair, Option<SignerCite>), AccountError> {
        let account = self.account(handle)?;
        let (identity, did) = match (account.identity(), account.did()) {
            (Some(i), Some(d)) => (*i, *d),
            _ => {
                return Err(AccountError::Invalid(format!(
                    "account {handle:?} has no key"
                )));
            }
        };
        let key = self.keystore.get(&did)?;
        if did == identity {
            return Ok((key, None));
        }
        let path = self
            .store
            .key_log_path(&identity)?
            .ok_or_else(|| AccountError::NoKeyLog(handle.to_owned()))?;
        let at = path
            .versions
            .iter()
            .rev()
            .find(|(_, log)| log.key == did)
            .map(|(cid, _)| *cid)
            .ok_or_else(|| AccountError::KeyElsewhere {
                handle: handle.to_owned(),
                key: path.current_key().unwrap_or(did),
            })?;
        Ok((key, Some(SignerCite { identity, at })))
    }

    /// Makes the root (version 0) of the account's key log, naming a fresh recovery key, when
    /// its identity has none on this node; otherwise returns the root held. The recovery key
    /// comes back only when made here, once: the node keeps its public half in the account
    /// (`recovery`) and never its secret. The caller publishes the root (store and gossip).
    ///
    /// If the account names a recovery key already but its root is not stored (made and never
    /// published), a new root naming the same recovery key is made, and no key returned.
    pub fn ensure_log(&self, handle: &str) -> Result<(Record, Option<Keypair>), AccountError> {
        let _guard = WRITE
            .lock()
            .map_err(|_| AccountError::Invalid("account lock poisoned".into()))?;
        let mut account = self.account(handle)?;
        let identity = *account
            .identity()
            .ok_or_else(|| AccountError::Invalid(format!("account {handle:?} has no key")))?;
        if let Some((log, _)) = self.store.identity_log(&identity)? {
            let root = self.store.record(&log)?.ok_or(StoreError::NotFound(log))?;
            return Ok((root, None));
        }
        let first = self.keystore.get(&identity)?;
        let (recovery, fresh) = match account.recovery {
            Some(r) => (r, None),
            None => {
                let key = Keypair::generate();
                (*key.did(), Some(key))
            }
        };
        let root = Record::create(&KeyLog::root(&first, Some(recovery)))?.sign(&first)?;
        if account.recovery != Some(recovery) {
            account.recovery = Some(recovery);
            self.write(&account, None)?;
        }
        Ok((root, fresh))
    }

    /// Rotates the account's key: makes a new key (kept in the keystore), and the next version
    /// of the identity's key log granting it, signed by the key the log's head names and keeping
    /// the tips of every item that key signed in (so they stay in force after the rotation).
    /// The new key becomes the account's signing key; the old ones stay in `keys` and the
    /// keystore. The caller publishes the log version (store and gossip) before anything the
    /// new key signs.
    pub fn rotate(&self, handle: &str) -> Result<(Keypair, Record), AccountError> {
        self.grant_next(handle, Grantor::Current)
    }

    /// Recovers the account's identity with its recovery key (after its signing key was lost
    /// or stolen): makes a new key (kept in the keystore), a fresh recovery key, and the next
    /// version of the identity's key log granting the new key and naming the fresh recovery
    /// key, signed by `recovery`, keeping the tips of every item the lost key signed. The new
    /// key becomes the account's signing key and the fresh recovery key's public half the one
    /// the account keeps; the fresh secret is returned, once. The caller publishes the log
    /// version (store and gossip) before anything the new key signs.
    ///
    /// Refused ([`AccountError::WrongRecovery`]), changing nothing, when `recovery` is not the
    /// recovery key the head of the log's winning path names.
    pub fn recover(
        &self,
        handle: &str,
        recovery: &Keypair,
    ) -> Result<(Keypair, Record, Keypair), AccountError> {
        let fresh = Keypair::generate();
        let (new, record) = self.grant_next(
            handle,
            Grantor::Recovery {
                key: recovery,
                fresh: &fresh,
            },
        )?;
        Ok((new, record, fresh))
    }

    /// What [`Accounts::rotate`] and [`Accounts::recover`] share: a new key (kept in the
    /// keystore) and the next version of the identity's key log granting it, signed as `by`
    /// says, keeping the tips of every item the key the log's head names signed. The new key
    /// becomes the account's signing key.
    fn grant_next(&self, handle: &str, by: Grantor<'_>) -> Result<(Keypair, Record), AccountError> {
        let _guard = WRITE
            .lock()
            .map_err(|_| AccountError::Invalid("account lock poisoned".into()))?;
        let mut account = self.account(handle)?;
        let identity = *account
            .identity()
            .ok_or_else(|| AccountError::Invalid(format!("account {handle:?} has no key")))?;
        let path = self
            .store
            .key_log_path(&identity)?
            .ok_or_else(|| AccountError::NoKeyLog(handle.to_owned()))?;
        let Some((head_cid, head)) = path.versions.last() else {
            return Err(AccountError::NoKeyLog(handle.to_owned()));
        };
        // Who signs, the key whose items stay in force, the recovery key the new version
        // names, and how the error below names the old key and the change.
        let current;
        let (signer, old, recovery, (which, change)) = match by {
            Grantor::Current => {
                let Some(now) = path.current_key() else {
                    return Err(AccountError::NoKeyLog(handle.to_owned()));
                };
                if !account.keys.contains(&now) || !self.keystore.contains(&now) {
                    return Err(AccountError::KeyElsewhere {
                        handle: handle.to_owned(),
                        key: now,
                    });
                }
                current = self.keystore.get(&now)?;
                (&current, now, head.recovery, ("current", "rotation"))
            }
            Grantor::Recovery { key, fresh } => {
                match head.recovery {
                    Some(r) if r == *key.did() => {}
                    Some(r) => {
                        return Err(AccountError::WrongRecovery(format!(
                            "{} is not the recovery key of {handle:?}: its key log names {r}",
                            key.did()
                        )));
                    }
                    None => {
                        return Err(AccountError::WrongRecovery(format!(
                            "the key log of {handle:?} names no recovery key; it cannot be recovered"
                        )));
                    }
                }
                (key, head.key, Some(*fresh.did()), ("lost", "recovery"))
            }
        };
        let kept = self.store.tips_signed_by(&identity, &old)?;
        if kept.len() > MAX_KEPT {
            return Err(AccountError::Invalid(format!(
                "{} items were signed with the {which} key, more than the {MAX_KEPT} one {change} can keep",
                kept.len()
            )));
        }
        let head_record = self
            .store
            .record(head_cid)?
            .ok_or(StoreError::NotFound(*head_cid))?;
        let new = Keypair::generate();
        let next = KeyLog::grant(
            &new,
            &identity,
            head_cid,
            recovery,
            kept.into_iter().map(Link).collect(),
        );
        let record = head_record.update(&next)?.sign(signer)?;
        self.keystore.put(&new)?;
        account.identity = Some(identity);
        account.keys.retain(|d| d != new.did());
        account.keys.insert(0, *new.did());
        if let Grantor::Recovery { fresh, .. } = by {
            account.recovery = Some(*fresh.did());
        }
        self.write(&account, None)?;
        Ok((new, record))
    }

    fn account(&self, handle: &str) -> Result<Account, AccountError> {
        self.get(handle)?
            .ok_or_else(|| AccountError::NotFound(handle.to_owned()))
    }

    /// Adds an imported key to an account (made the signing key if `primary`).
    pub fn add_key(
        &self,
        handle: &str,
        key: &Keypair,
        primary: bool,
    ) -> Result<Account, AccountError> {
        let _guard = WRITE
            .lock()
            .map_err(|_| AccountError::Invalid("account lock poisoned".into()))?;
        let mut account = self
            .get(handle)?
            .ok_or_else(|| AccountError::NotFound(handle.to_owned()))?;
        self.keystore.put(key)?;
        account.keys.retain(|d| d != key.did());
        if primary {
            account.keys.insert(0, *key.did());
        } else {
            account.keys.push(*key.did());
        }
        self.write(&account, None)?;
        Ok(account)
    }
}

/// What signs the next version of an account's key log: the key its head names (a rotation),
/// or the recovery key it names, which names `fresh` in turn (a recovery).
#[derive(Clone, Copy)]
enum Grantor<'a> {
    Current,
    Recovery {
        key: &'a Keypair,
        fresh: &'a Keypair,
    },
}

fn check_email(email: &str) -> Result<(), AccountError> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@')
            && !domain.starts_with('.') && !domain.ends_with('.'));
    if ok {
        Ok(())
    } else {
        Err(AccountError::Invalid(format!(
            "{email:?} is not an email address"
        )))
    }
}

/// A phone number in E.164 form (`+4930123456`), from any international form a person types
/// (`+49 30 123456`, `+1 (201) 555-0123`, `tel:+44-20-7946-0958`). Numbers without their
/// country code are refused: a node serves people anywhere and has no country to assume.
pub fn normalize_phone(input: &str) -> Result<String, AccountError> {
    let bad = |why: &str| AccountError::Invalid(format!("{input:?} is not a phone number: {why}"));
    let trimmed = input.trim();
    let trimmed = trimmed.strip_prefix("tel:").unwrap_or(trimmed);
    if trimmed.len() > 40 {
        return Err(bad("too long"));
    }
    if !trimmed.starts_with('+') {
        return Err(bad(
            "write it in international form, with + and the country code (as +49 30 1234567)",
        ));
    }
    let number =
        phonenumber::parse(None, trimmed).map_err(|e| bad(&e.to_string().to_lowercase()))?;
    if !phonenumber::is_valid(&number) {
        return Err(bad("no such number in its country's numbering plan"));
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Checks a password's strength and hashes it with argon2id.
fn hash_password(password: &str, user_inputs: &[&str]) -> Result<String, AccountError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AccountError::WeakPassword(format!(
            "use at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    let estimate = zxcvbn::zxcvbn(password, user_inputs);
    if (estimate.score() as u8) < 3 {
        let advice = estimate
            .feedback()
            .map(|f| {
                let mut parts: Vec<String> =
                    f.warning().map(|w| w.to_string()).into_iter().collect();
                parts.extend(f.suggestions().iter().map(|s| s.to_string()));
                parts.join(" ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "add more words or characters that are hard to guess".into());
        return Err(AccountError::WeakPassword(advice));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Invalid(format!("cannot hash the password: {e}")))
}

/// How a recovery key's secret is written out, in the API's answers and in the file a person
/// keeps: this prefix and the 32-byte ed25519 secret in lower-case hex, on one line. It is not
/// sealed like `mnode account export-key`'s files (nobody has chosen a passphrase when it is
/// shown), so whoever holds it can take the identity over: it belongs offline.
pub const RECOVERY_PREFIX: &str = "mnode-recovery-1:";

/// A recovery key as text ([`RECOVERY_PREFIX`] and its secret in hex).
pub fn recovery_text(key: &Keypair) -> String {
    format!("{RECOVERY_PREFIX}{}", hex::encode(key.secret_bytes()))
}

/// Reads a recovery key written by [`recovery_text`] (surrounding whitespace is ignored).
pub fn parse_recovery(text: &str) -> Result<Keypair, AccountError> {
    let bad = || {
        AccountError::Invalid(format!(
            "recovery_key: not a recovery key (expected {RECOVERY_PREFIX} and 64 hex digits, \
             as the node showed it once)"
        ))
    };
    let hex_text = text.trim().strip_prefix(RECOVERY_PREFIX).ok_or_else(bad)?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut secret).map_err(|_| bad())?;
    Ok(Keypair::from_secret(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Store, Keystore) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), 8).unwrap();
        let ks = Keystore::create(&dir.path().join("keystore"), None).unwrap();
        (dir, store, ks)
    }

    const GOOD: &str = "violet-harbour-tangent-47";

    #[test]
    fn create_login_and_uniqueness() {
        let (_d, store, ks) = setup();
        let accounts = Accounts::new(&store, &ks);
        let a = accounts
            .create("alice", "Alice@Example.org", None, Some(GOOD), Role::Admin)
            .unwrap();
        assert!(a.password.as_deref().unwrap().starts_with("$argon2id$"));
        assert_eq!(
            accounts.check_password("alice", GOOD).unwrap().handle,
            "alice"
        );
        assert!(matches!(
            accounts.check_password("alice", "violet-harbour-tangent-48"),
            Err(AccountError::WrongPassword)
        ));
        assert!(matches!(
            accounts.check_password("nobody", GOOD),
            Err(AccountError::WrongPassword)
        ));
        assert!(matches!(
            accounts.create("alice", "other@example.org", None, Some(GOOD), Role::User),
            Err(AccountError::HandleTaken(_))
        ));
        assert!(matches!(
            accounts.create("alice2", "ALICE@example.ORG", None, Some(GOOD), Role::User),
            Err(AccountError::EmailTaken(_))
        ));
        assert_eq!(
            accounts
                .by_email("alice@EXAMPLE.org")
                .unwrap()
                .unwrap()
                .handle,
            "alice"
        );
        let key = accounts.signing_key("alice").unwrap();
        assert_eq!(Some(key.did()), a.did());
        assert_eq!(accounts.by_did(key.did()).unwrap().unwrap().handle, "alice");
    }

    #[test]
    fn weak_passwords_and_bad_input_are_refused_with_advice() {
        let (_d, store, ks) = setup();
        let accounts = Accounts::new(&store, &ks);
        for weak in ["short", "password123", "alicealice1", "qwertyuiop"] {
            let e = accounts
                .create("alice", "a@example.org", None, Some(weak), Role::User)
                .unwrap_err();
            assert!(matches!(e, AccountError::WeakPassword(_)), "{weak}: {e}");
        }
        assert!(accounts.list().unwrap().is_empty(), "nothing was created");
        assert!(matches!(
            accounts.create("Bad Handle", "a@example.org", None, None, Role::User),
            Err(AccountError::Invalid(_))
        ));
        assert!(matches!(
            accounts.create("bob", "not-an-email", None, None, Role::User),
            Err(AccountError::Invalid(_))
        ));
        assert!(
            ks.list().unwrap().is_empty(),
            "no key was made for a refused account"
        );
    }

    #[test]
    fn phones_are_e164_unique_and_optional() {
        let (_d, store, ks) = setup();
        let accounts = Accounts::new(&store, &ks);
        let a = accounts
            .create(
                "dora",
                "dora@example.org",
                Some("+49 30 901820"),
                None,
                Role::User,
            )
            .unwrap();
        assert_eq!(a.phone.as_deref(), Some("+4930901820"));
        for same in ["+4930901820", "tel:+49-30-901820", " +49 (30) 90 18 20 "] {
            assert_eq!(accounts.by_phone(same).unwrap().unwrap().handle, "dora");
            assert!(matches!(
                accounts.create("erin", "erin@example.org", Some(same), None, Role::User),
                Err(AccountError::PhoneTaken(p)) if p == "+4930901820"
            ));
        }
        for bad in [
            "030 901820",
            "+49",
            "+999 123456",
            "phone",
            "+1 201 555 01234567890123",
        ] {
            let e = accounts
                .create("erin", "erin@example.org", Some(bad), None, Role::User)
                .unwrap_err();
            assert!(matches!(e, AccountError::Invalid(_)), "{bad}: {e}");
            assert!(accounts.by_phone(bad).unwrap().is_none());
        }
        assert!(
            accounts.get("erin").unwrap().is_none(),
            "no refused account was made"
        );
        let e = accounts
            .create("erin", "erin@example.org", None, None, Role::User)
            .unwrap();
        assert_eq!(e.phone, None);

        // A number changes hands only once its holder lets it go.
        assert!(matches!(
            accounts.set_phone("erin", Some("+4930901820")),
            Err(AccountError::PhoneTaken(_))
        ));
        let dora = accounts.set_phone("dora", Some("+1 201-555-0123")).unwrap();
        assert_eq!(dora.phone.as_deref(), Some("+12015550123"));
        assert!(accounts.by_phone("+4930901820").unwrap().is_none());
        accounts.set_phone("erin", Some("+4930901820")).unwrap();
        assert_eq!(
            accounts.by_phone("+4930901820").unwrap().unwrap().handle,
            "erin"
        );
        accounts.set_phone("dora", None).unwrap();
        assert!(accounts.by_phone("+12015550123").unwrap().is_none());
        assert_eq!(accounts.get("dora").unwrap().unwrap().phone, None);

        // Deleting the account frees its number.
        accounts.delete("erin").unwrap();
        assert!(accounts.by_phone("+4930901820").unwrap().is_none());
        accounts
            .create(
                "fay",
                "fay@example.org",
                Some("+4930901820"),
                None,
                Role::User,
            )
            .unwrap();
    }

    #[test]
    fn ensure_log_makes_a_root_with_a_recovery_key_returned_once() {
        let (_d, store, ks) = setup();
        let accounts = Accounts::new(&store, &ks);
        let a = accounts
            .create("gil", "gil@example.org", None, None, Role::User)
            .unwrap();
        assert_eq!(a.identity(), a.did());
        assert!(matches!(
            accounts.rotate("gil"),
            Err(AccountError::NoKeyLog(h)) if h == "gil"
        ));
        let (root, recovery) = accounts.ensure_log("gil").unwrap();
        let recovery = recovery.unwrap();
        let log = root.body_as::<KeyLog>().unwrap().unwrap();
        assert_eq!(
            (log.key, log.recovery),
            (*a.did().unwrap(), Some(*recovery.did()))
        );
        assert_eq!(root.author(), a.did().unwrap());
        root.verify_first_with(&mnode_dag::authority::Nothing)
            .unwrap();
        assert!(!ks.contains(recovery.did()));
        let stored = accounts.get("gil").unwrap().unwrap();
        assert_eq!(stored.recovery, Some(*recovery.did()));
        // Not published yet: asked again, a root naming the same recovery key, and no secret.
        let (again, none) = accounts.ensure_log("gil").unwrap();
        assert!(none.is_none());
        assert_eq!(
            again.body_as::<KeyLog>().unwrap().unwrap().recovery,
            Some(*recovery.did())
        );
        store.put(root.clone()).unwrap();
        let (held, none) = accounts.ensure_log("gil").unwrap();
        assert_eq!((held.cid(), none.is_none()), (root.cid(), true));
        // Accounts stored before these fields existed still read.
        #[derive(Serialize)]
        struct Old<'a> {
            handle: &'a str,
            email: &'a str,
            password: Option<String>,
            role: Role,
            keys: Vec<Did>,
            created: u64,
        }
        let old = mnode_dag::cbor::encode(&Old {
            handle: "old",
            email: "old@example.org",
            password: None,
            role: Role::User,
            keys: a.keys.clone(),
            created: 1,
        })
        .unwrap();
        let read: Account = mnode_dag::cbor::decode(&old).unwrap();
        assert_eq!((read.identity, read.recovery), (None, None));
        assert_eq!(read.identity(), a.did());
    }

    #[test]
    fn rotate_makes_a_new_signing_key_granted_by_the_current_one() {
        let (_d, store, ks) = setup();
        let accounts = Accounts::new(&store, &ks);
        let a = accounts
            .create("hal", "hal@example.org", None, None, Role::User)
            .unwrap();
        let k0 = *a.did().unwrap();
        let (root, _) = accounts.ensure_log("hal").unwrap();
        store.put(root.clone()).unwrap();
        let (k1, l1) = accounts.rotate("hal").unwrap();
        assert!(ks.contains(k1.did()), "the new key is kept");
        assert_eq!(*l1.author(), k0, "the current key signs the rotation");
        assert_eq!(l1.envelope().prev, Some(root.cid()));
        let log = l1.body_as::<KeyLog>().unwrap().unwrap();
        assert_eq!(log.key, *k1.did());
        assert!(log.proof_verifies(&k0, Some(&root.cid())));
        assert!(log.kept.is_empty(), "k0 signed nothing but the log");
        let account = accounts.get("hal").unwrap().unwrap();
        assert_eq!(account.keys, vec![*k1.did(), k0]);
        assert_eq!(
            (account.did(), account.identity()),
            (Some(k1.did()), Some(&k0))
        );
        assert_eq!(accounts.signing_key("hal").unwrap().did(), k1.did());
        // Until the rotation is stored the new key cites nothing the node holds.
        assert!(matches!(
            accounts.signing("hal"),
            Err(AccountError::KeyElsewhere { key, .. }) if key == k0
        ));
        store.put(l1.clone()).unwrap();
        let (key, cite) = accounts.signing("hal").unwrap();
        assert_eq!(key.did(), k1.did());
        assert_eq!(
            cite,
            Some(SignerCite {
                identity: k0,
                at: l1.cid()
            })
        );
        // The log moved on elsewhere, to a key this node does not hold: no rotation here.
        let stranger = Keypair::generate();
        let elsewhere = l1
            .update(&KeyLog::grant(&stranger, &k0, &l1.cid(), None, vec![]))
            .unwrap()
            .sign(&k1)
            .unwrap();
        store.put(elsewhere).unwrap();
        ks.remove(k1.did()).unwrap();
        assert!(matches!(
            accounts.rotate("hal"),
            Err(AccountError::KeyElsewhere { key, .. }) if key == *stranger.did()
        ));
        assert!(matches!(
            accounts.rotate("nobody"),
            Err(AccountError::NotFound(_))
        ));
    }

    #[test]
    fn recover_grants_a_new_key_signed_by_the_recovery_key() {
        let (_d, store, ks) = setup();
        let accounts = Accounts::new(&store, &ks);
        let a = accounts
            .create("ida", "ida@example.org", None, None, Role::User)
            .unwrap();
        let k0 = *a.did().unwrap();
        assert!(matches!(
            accounts.recover("ida", &Keypair::generate()),
            Err(AccountError::NoKeyLog(_))
        ));
        let (root, recovery) = accounts.ensure_log("ida").unwrap();
        let recovery = recovery.unwrap();
        store.put(root.clone()).unwrap();
        let note = Record::create(&mnode_dag::model::core::Profile {
            handle: "ida".into(),
            display_name: "Ida".into(),
            bio: None,
            avatar: None,
            links: vec![],
        })
        .unwrap()
        .sign(&ks.get(&k0).unwrap())
        .unwrap();
        store.put(note.clone()).unwrap();

        // A key that is not the recovery key changes nothing.
        let before = accounts.get("ida").unwrap().unwrap();
        let wrong = Keypair::generate();
        assert!(matches!(
            accounts.recover("ida", &wrong),
            Err(AccountError::WrongRecovery(m)) if m.contains(&recovery.did().to_string())
        ));
        let after = accounts.get("ida").unwrap().unwrap();
        assert_eq!(
            (after.keys, after.recovery),
            (before.keys.clone(), before.recovery)
        );
        assert_eq!(ks.list().unwrap(), vec![k0]);

        let (k1, l1, fresh) = accounts.recover("ida", &recovery).unwrap();
        assert_eq!(*l1.author(), *recovery.did(), "the recovery key signs");
        assert_eq!(l1.envelope().prev, Some(root.cid()));
        let log = l1.body_as::<KeyLog>().unwrap().unwrap();
        assert_eq!((log.key, log.recovery), (*k1.did(), Some(*fresh.did())));
        assert!(log.proof_verifies(&k0, Some(&root.cid())));
        assert_eq!(log.kept, vec![Link(note.cid())], "what k0 signed stays");
        assert!(ks.contains(k1.did()) && !ks.contains(fresh.did()));
        let account = accounts.get("ida").unwrap().unwrap();
        assert_eq!(account.keys, vec![*k1.did(), k0]);
        assert_eq!(account.identity(), Some(&k0));
        assert_eq!(account.recovery, Some(*fresh.did()));
        store.put(l1.clone()).unwrap();
        let (key, cite) = accounts.signing("ida").unwrap();
        assert_eq!(key.did(), k1.did());
        assert_eq!(cite.map(|c| c.at), Some(l1.cid()));

        // The recovery key is spent: only the fresh one recovers now.
        assert!(matches!(
            accounts.recover("ida", &recovery),
            Err(AccountError::WrongRecovery(_))
        ));
        let (k2, l2, _) = accounts.recover("ida", &fresh).unwrap();
        assert_eq!(l2.envelope().prev, Some(l1.cid()));
        assert_eq!(accounts.signing_key("ida").unwrap().did(), k2.did());
    }

    #[test]
    fn recovery_keys_round_trip_as_text() {
        let key = Keypair::generate();
        let text = recovery_text(&key);
        assert!(text.starts_with(RECOVERY_PREFIX) && text.len() == RECOVERY_PREFIX.len() + 64);
        let back = parse_recovery(&format!("  {text}\n")).unwrap();
        assert_eq!(back.did(), key.did());
        for bad in [
            "",
            "mnode-recovery-1:zz",
            &text[..text.len() - 2],
            &text[1..],
        ] {
            assert!(matches!(parse_recovery(bad), Err(AccountError::Invalid(_))));
        }
    }

    #[test]
    fn delete_frees_handle_email_and_keys() {
        let (_d, store, ks) = setup();
        let accounts = Accounts::new(&store, &ks);
        let a = accounts
            .create("carol", "carol@example.org", None, None, Role::User)
            .unwrap();
        assert!(matches!(
            accounts.check_password("carol", GOOD),
            Err(AccountError::WrongPassword)
        ));
        accounts.delete("carol").unwrap();
        assert!(!ks.contains(a.did().unwrap()));
        assert!(accounts.get("carol").unwrap().is_none());
        accounts
            .create("carol", "CAROL@example.org", None, None, Role::User)
            .unwrap();
        assert!(matches!(
            accounts.delete("nobody"),
            Err(AccountError::NotFound(_))
        ));
    }
}
