//! Accounts: the people a node hosts.
//!
//! An account has a unique handle, an email unique without regard to case, optionally a phone
//! number unique in its E.164 form, a password hash (argon2id, PHC string; passwords are
//! checked for strength with zxcvbn), a role, and one or more ed25519 signing keys held sealed
//! in the [`Keystore`]. Accounts live in the store's `accounts` column family (handle →
//! account) with an `emails` index (lower-case email → handle) and a `phones` index (E.164 →
//! handle); all change in one atomic batch.

use std::sync::Mutex;

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier},
};
use mnode_dag::{Did, Keypair, model::check};
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
    /// Signing keys, the first being the one new records are signed with.
    pub keys: Vec<Did>,
    /// When the account was made (ms).
    pub created: u64,
}

impl Account {
    /// The key new records are signed with.
    pub fn did(&self) -> Option<&Did> {
        self.keys.first()
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
