//! Signing keys, encrypted at rest.
//!
//! A key-encryption key (KEK) is derived with argon2id from the repo's passphrase: the one in
//! `MNODE_PASSPHRASE` if the repo was made with one, or else the random secret `mnode init`
//! wrote to `keystore/secret` (0600). Each signing key is sealed with XChaCha20-Poly1305 under
//! the KEK in its own file `keystore/<did>.key` (0600), its `did:key` bound as associated data so
//! a sealed key cannot be passed off as another's. A copy of the keystore without the passphrase
//! or secret file reveals nothing. Exported keys are sealed the same way under a key derived
//! from a passphrase the person chooses.

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use mnode_dag::{Did, Keypair};
use serde::{Deserialize, Serialize};

/// Environment variable holding the keystore passphrase, for repos made with one.
pub const PASSPHRASE_ENV: &str = "MNODE_PASSPHRASE";
const CHECK_PLAINTEXT: &[u8] = b"mnode keystore v1";

/// argon2id cost: 19 MiB, 2 passes, 1 lane (OWASP's recommended minimum).
const M_COST: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// Why a key could not be stored or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// A file could not be read or written.
    #[error("keystore {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The passphrase (or secret file) does not open this keystore.
    #[error("wrong passphrase for the keystore (set {PASSPHRASE_ENV}, or restore keystore/secret)")]
    WrongPassphrase,
    /// The repo was made with a passphrase and none was given.
    #[error("the keystore is locked: set {PASSPHRASE_ENV} to its passphrase")]
    Locked,
    /// No key for this identity.
    #[error("no key for {0} in the keystore")]
    NotFound(Did),
    /// A sealed key or export does not decode or decrypt.
    #[error("key file {0} is damaged or was not sealed by this keystore")]
    Damaged(String),
    /// Key derivation failed.
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct KdfFile {
    version: u32,
    kdf: String,
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
    /// nonce ‖ seal(CHECK_PLAINTEXT), to tell a wrong passphrase from a damaged key.
    check: String,
}

/// A sealed key, as stored and as exported.
#[derive(Debug, Serialize, Deserialize)]
struct SealedKey {
    did: String,
    nonce: String,
    ciphertext: String,
    /// For exports: the argon2id salt and costs of the export passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kdf: Option<ExportKdf>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ExportKdf {
    salt: String,
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
}

/// The unlocked keystore.
pub struct Keystore {
    dir: PathBuf,
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Keystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keystore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Keystore {
    /// Creates a keystore in `dir`. With no passphrase, a random secret is written to
    /// `dir/secret` (0600) and used as the passphrase.
    pub fn create(dir: &Path, passphrase: Option<&str>) -> Result<Self, KeystoreError> {
        fs::create_dir_all(dir).map_err(|source| io_err(dir, source))?;
        let generated;
        let passphrase = match passphrase {
            Some(p) => p,
            None => {
                let mut secret = [0u8; 32];
                rand::fill(&mut secret);
                generated = hex::encode(secret);
                write_private(&dir.join("secret"), generated.as_bytes())?;
                &generated
            }
        };
        let mut salt = [0u8; 16];
        rand::fill(&mut salt);
        let cipher = derive(passphrase.as_bytes(), &salt, M_COST, T_COST, P_COST)?;
        let (nonce, sealed) = seal(&cipher, CHECK_PLAINTEXT, b"check")?;
        let kdf = KdfFile {
            version: 1,
            kdf: "argon2id".into(),
            m_cost: M_COST,
            t_cost: T_COST,
            p_cost: P_COST,
            salt: hex::encode(salt),
            check: hex::encode([&nonce[..], &sealed].concat()),
        };
        let text =
            serde_json::to_vec_pretty(&kdf).map_err(|e| KeystoreError::Kdf(e.to_string()))?;
        write_private(&dir.join("kdf.json"), &text)?;
        Ok(Self {
            dir: dir.to_owned(),
            cipher,
        })
    }

    /// Opens an existing keystore with `passphrase`, or with `dir/secret` when none is given.
    pub fn open(dir: &Path, passphrase: Option<&str>) -> Result<Self, KeystoreError> {
        let kdf_path = dir.join("kdf.json");
        let text = fs::read(&kdf_path).map_err(|source| io_err(&kdf_path, source))?;
        let kdf: KdfFile = serde_json::from_slice(&text)
            .map_err(|_| KeystoreError::Damaged(kdf_path.display().to_string()))?;
        let secret;
        let passphrase = match passphrase {
            Some(p) => p,
            None => {
                let path = dir.join("secret");
                secret = match fs::read_to_string(&path) {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(KeystoreError::Locked);
                    }
                    Err(source) => return Err(io_err(&path, source)),
                };
                secret.trim()
            }
        };
        let salt = hex::decode(&kdf.salt)
            .map_err(|_| KeystoreError::Damaged(kdf_path.display().to_string()))?;
        let cipher = derive(
            passphrase.as_bytes(),
            &salt,
            kdf.m_cost,
            kdf.t_cost,
            kdf.p_cost,
        )?;
        let check = hex::decode(&kdf.check)
            .map_err(|_| KeystoreError::Damaged(kdf_path.display().to_string()))?;
        if check.len() < 24 || open(&cipher, &check[..24], &check[24..], b"check").is_err() {
            return Err(KeystoreError::WrongPassphrase);
        }
        Ok(Self {
            dir: dir.to_owned(),
            cipher,
        })
    }

    fn path(&self, did: &Did) -> PathBuf {
        // did:key strings are base58: safe as file names once the colons are gone.
        self.dir
            .join(format!("{}.key", did.to_string().replace(':', "_")))
    }

    /// Seals and stores a key (replacing any stored key for the same identity).
    pub fn put(&self, key: &Keypair) -> Result<(), KeystoreError> {
        let did = key.did().to_string();
        let (nonce, ciphertext) = seal(&self.cipher, &key.secret_bytes(), did.as_bytes())?;
        let sealed = SealedKey {
            did,
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
            kdf: None,
        };
        let text =
            serde_json::to_vec_pretty(&sealed).map_err(|e| KeystoreError::Kdf(e.to_string()))?;
        write_private(&self.path(key.did()), &text)
    }

    /// Unseals the key of `did`.
    pub fn get(&self, did: &Did) -> Result<Keypair, KeystoreError> {
        let path = self.path(did);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeystoreError::NotFound(*did));
            }
            Err(source) => return Err(io_err(&path, source)),
        };
        let damaged = || KeystoreError::Damaged(path.display().to_string());
        let sealed: SealedKey = serde_json::from_slice(&text).map_err(|_| damaged())?;
        let secret = unseal(&self.cipher, &sealed).map_err(|_| damaged())?;
        let key = Keypair::from_secret(secret);
        if key.did() != did {
            return Err(damaged());
        }
        Ok(key)
    }

    /// Whether a key for `did` is stored.
    pub fn contains(&self, did: &Did) -> bool {
        self.path(did).exists()
    }

    /// Removes the key of `did`; returns whether it was there.
    pub fn remove(&self, did: &Did) -> Result<bool, KeystoreError> {
        let path = self.path(did);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(io_err(&path, source)),
        }
    }

    /// Every stored identity.
    pub fn list(&self) -> Result<Vec<Did>, KeystoreError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|source| io_err(&self.dir, source))? {
            let name = entry
                .map_err(|source| io_err(&self.dir, source))?
                .file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".key")
                && let Ok(did) = stem.replacen('_', ":", 2).parse::<Did>()
            {
                out.push(did);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Exports the key of `did` sealed under `passphrase` (JSON text, safe to move around).
    pub fn export(&self, did: &Did, passphrase: &str) -> Result<String, KeystoreError> {
        let key = self.get(did)?;
        let mut salt = [0u8; 16];
        rand::fill(&mut salt);
        let cipher = derive(passphrase.as_bytes(), &salt, M_COST, T_COST, P_COST)?;
        let did_text = did.to_string();
        let (nonce, ciphertext) = seal(&cipher, &key.secret_bytes(), did_text.as_bytes())?;
        let sealed = SealedKey {
            did: did_text,
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
            kdf: Some(ExportKdf {
                salt: hex::encode(salt),
                m_cost: M_COST,
                t_cost: T_COST,
                p_cost: P_COST,
            }),
        };
        serde_json::to_string_pretty(&sealed).map_err(|e| KeystoreError::Kdf(e.to_string()))
    }

    /// Imports an exported key, opening it with `passphrase`, and stores it here.
    pub fn import(&self, text: &str, passphrase: &str) -> Result<Keypair, KeystoreError> {
        let damaged = || KeystoreError::Damaged("the exported key".into());
        let sealed: SealedKey = serde_json::from_str(text).map_err(|_| damaged())?;
        let kdf = sealed.kdf.as_ref().ok_or_else(damaged)?;
        let salt = hex::decode(&kdf.salt).map_err(|_| damaged())?;
        let cipher = derive(
            passphrase.as_bytes(),
            &salt,
            kdf.m_cost,
            kdf.t_cost,
            kdf.p_cost,
        )?;
        let secret = unseal(&cipher, &sealed).map_err(|_| KeystoreError::WrongPassphrase)?;
        let key = Keypair::from_secret(secret);
        if key.did().to_string() != sealed.did {
            return Err(damaged());
        }
        self.put(&key)?;
        Ok(key)
    }
}

fn derive(
    passphrase: &[u8],
    salt: &[u8],
    m: u32,
    t: u32,
    p: u32,
) -> Result<XChaCha20Poly1305, KeystoreError> {
    let params = Params::new(m, t, p, Some(32)).map_err(|e| KeystoreError::Kdf(e.to_string()))?;
    let mut kek = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, &mut kek)
        .map_err(|e| KeystoreError::Kdf(e.to_string()))?;
    XChaCha20Poly1305::new_from_slice(&kek).map_err(|e| KeystoreError::Kdf(e.to_string()))
}

fn seal(
    cipher: &XChaCha20Poly1305,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<([u8; 24], Vec<u8>), KeystoreError> {
    let mut nonce = [0u8; 24];
    rand::fill(&mut nonce);
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| KeystoreError::Kdf("encryption failed".into()))?;
    Ok((nonce, ciphertext))
}

fn open(
    cipher: &XChaCha20Poly1305,
    nonce: &[u8],
    ciphertext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, ()> {
    let nonce: [u8; 24] = nonce.try_into().map_err(|_| ())?;
    cipher
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| ())
}

fn unseal(cipher: &XChaCha20Poly1305, sealed: &SealedKey) -> Result<[u8; 32], ()> {
    let nonce = hex::decode(&sealed.nonce).map_err(|_| ())?;
    let ciphertext = hex::decode(&sealed.ciphertext).map_err(|_| ())?;
    let secret = open(cipher, &nonce, &ciphertext, sealed.did.as_bytes())?;
    secret.try_into().map_err(|_| ())
}

/// Writes a file readable only by its owner, atomically (temp file, then rename).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeystoreError> {
    let tmp = path.with_extension("tmp");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(|source| io_err(&tmp, source))?;
    f.write_all(bytes).map_err(|source| io_err(&tmp, source))?;
    f.sync_all().map_err(|source| io_err(&tmp, source))?;
    fs::rename(&tmp, path).map_err(|source| io_err(path, source))
}

fn io_err(path: &Path, source: std::io::Error) -> KeystoreError {
    KeystoreError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let ks = Keystore::create(dir.path(), None).unwrap();
        let key = Keypair::derive(1, "alice");
        ks.put(&key).unwrap();
        assert_eq!(ks.list().unwrap(), vec![*key.did()]);
        let file = fs::read_to_string(ks.path(key.did())).unwrap();
        assert!(
            !file.contains(&hex::encode(key.secret_bytes())),
            "the secret is not stored in the clear"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in ["secret", "kdf.json"] {
                let mode = fs::metadata(dir.path().join(f))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{f}");
            }
            let mode = fs::metadata(ks.path(key.did()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        drop(ks);
        let ks = Keystore::open(dir.path(), None).unwrap();
        assert_eq!(ks.get(key.did()).unwrap().did(), key.did());
        assert!(ks.remove(key.did()).unwrap());
        assert!(matches!(ks.get(key.did()), Err(KeystoreError::NotFound(_))));
    }

    #[test]
    fn passphrases_lock_and_unlock() {
        let dir = tempfile::tempdir().unwrap();
        Keystore::create(dir.path(), Some("correct horse battery staple")).unwrap();
        assert!(!dir.path().join("secret").exists());
        assert!(matches!(
            Keystore::open(dir.path(), None),
            Err(KeystoreError::Locked)
        ));
        assert!(matches!(
            Keystore::open(dir.path(), Some("wrong")),
            Err(KeystoreError::WrongPassphrase)
        ));
        Keystore::open(dir.path(), Some("correct horse battery staple")).unwrap();
    }

    #[test]
    fn a_sealed_key_cannot_pose_as_another() {
        let dir = tempfile::tempdir().unwrap();
        let ks = Keystore::create(dir.path(), None).unwrap();
        let (a, b) = (Keypair::derive(1, "a"), Keypair::derive(1, "b"));
        ks.put(&a).unwrap();
        ks.put(&b).unwrap();
        fs::copy(ks.path(a.did()), ks.path(b.did())).unwrap();
        assert!(matches!(ks.get(b.did()), Err(KeystoreError::Damaged(_))));
    }

    #[test]
    fn export_and_import() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (ks1, ks2) = (
            Keystore::create(d1.path(), None).unwrap(),
            Keystore::create(d2.path(), None).unwrap(),
        );
        let key = Keypair::derive(2, "carol");
        ks1.put(&key).unwrap();
        let exported = ks1.export(key.did(), "export pass phrase").unwrap();
        assert!(!exported.contains(&hex::encode(key.secret_bytes())));
        assert!(matches!(
            ks2.import(&exported, "nope"),
            Err(KeystoreError::WrongPassphrase)
        ));
        assert_eq!(
            ks2.import(&exported, "export pass phrase").unwrap().did(),
            key.did()
        );
        assert_eq!(
            ks2.get(key.did()).unwrap().secret_bytes(),
            key.secret_bytes()
        );
    }
}
