//! The repo: one folder holding everything a node keeps.
//!
//! ```text
//! <repo>/version      repo format version (see `REPO_VERSION`), written last by init
//! <repo>/repo.json    the node's identity and the owner account's handle
//! <repo>/mnode.yaml   config, every setting written out with a comment
//! <repo>/keystore/    sealed signing keys (node key and account keys), 0600
//! <repo>/db/          RocksDB: records, indexes, pins, accounts
//! <repo>/blobs/       iroh-blobs file store
//! <repo>/tmp/         uploads in progress
//! ```

use std::{
    fs,
    path::{Path, PathBuf},
};

use mnode_dag::{Did, Keypair};
use serde::{Deserialize, Serialize};

use crate::{
    accounts::{AccountError, Accounts, Role},
    config::{self, Config, ConfigError},
    keystore::{self, Keystore, KeystoreError},
    sessions::Sessions,
    store::{Store, StoreError},
};

/// The repo format this build reads and writes.
///
/// 2: the `sync` and `follows` column families; authors stored as raw key bytes.
pub const REPO_VERSION: u32 = 2;
/// Environment variable naming the repo folder.
pub const REPO_ENV: &str = "MNODE_REPO";

/// What `repo.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoInfo {
    /// The node's own key (its libp2p and iroh identity).
    pub node: Did,
    /// The handle of the account that owns the node (admin).
    pub owner: String,
    /// When the repo was made (ms).
    pub created: u64,
}

/// Why a repo could not be made or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// There is a repo here already.
    #[error("{0} already holds an mnode repo; nothing was changed")]
    Exists(PathBuf),
    /// The folder is not empty and not a repo.
    #[error("{0} is not empty and is not an mnode repo; choose an empty or new folder")]
    NotEmpty(PathBuf),
    /// No repo here.
    #[error("no mnode repo at {0}; run `mnode init` (or pass --repo / set MNODE_REPO)")]
    Missing(PathBuf),
    /// An init was interrupted.
    #[error(
        "{0} holds an incomplete repo (init was interrupted); remove it and run `mnode init` again"
    )]
    Incomplete(PathBuf),
    /// A repo from another version.
    #[error(
        "the repo at {path} has format version {found}; this mnode reads version {REPO_VERSION}"
    )]
    Version {
        /// The repo.
        path: PathBuf,
        /// Its version.
        found: String,
    },
    /// Another process holds the repo.
    #[error("the repo at {0} is in use by another mnode process (a running daemon?)")]
    Locked(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The keystore failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The owner account could not be made.
    #[error(transparent)]
    Account(#[from] AccountError),
}

/// How to make a repo.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// The owner account's handle (default `owner`).
    pub handle: Option<String>,
    /// The owner's email (default `<handle>@localhost`).
    pub email: Option<String>,
    /// The owner's password; `None` leaves login disabled until one is set.
    pub password: Option<String>,
    /// Keystore passphrase; `None` writes a random secret to `keystore/secret`.
    pub passphrase: Option<String>,
    /// `key=value` config settings to write into `mnode.yaml`.
    pub settings: Vec<String>,
    /// The node key to use instead of a new random one (a testnet derives its nodes' keys
    /// from a seed, so that runs are repeatable).
    pub node_key: Option<Keypair>,
}

/// An open repo.
#[derive(Debug)]
pub struct Repo {
    path: PathBuf,
    config: Config,
    info: RepoInfo,
    store: Store,
    keystore: Keystore,
}

impl Repo {
    /// The repo folder to use: `flag`, else `MNODE_REPO`, else `~/.mnode`.
    pub fn locate(flag: Option<&Path>) -> PathBuf {
        if let Some(p) = flag {
            return p.to_owned();
        }
        if let Some(p) = std::env::var_os(REPO_ENV).filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".mnode")
    }

    /// Makes a new repo at `path` with its node key and owner account. Never touches an
    /// existing repo.
    ///
    /// The settings are checked before anything is written, and an init that fails part way
    /// removes what it made (the folder too, if it made it), so that the next `init` starts
    /// clean instead of finding an "interrupted" repo.
    pub fn init(path: &Path, opts: &InitOptions) -> Result<Self, RepoError> {
        if path.join("version").exists() {
            return Err(RepoError::Exists(path.to_owned()));
        }
        let existed = path.exists();
        if existed {
            let mut entries = fs::read_dir(path).map_err(|source| io(path, source))?;
            if entries.next().is_some() {
                return Err(
                    if path.join("repo.json").exists() || path.join("db").exists() {
                        RepoError::Incomplete(path.to_owned())
                    } else {
                        RepoError::NotEmpty(path.to_owned())
                    },
                );
            }
        }
        let config = Config::default().with_flags(&opts.settings)?;
        match Self::init_into(path, opts, config) {
            Ok(repo) => Ok(repo),
            Err(e) => {
                // The store (and its lock) was dropped with the failed call.
                let cleaned = if existed {
                    fs::read_dir(path).and_then(|entries| {
                        entries.into_iter().try_for_each(|entry| {
                            let p = entry?.path();
                            if p.is_dir() {
                                fs::remove_dir_all(p)
                            } else {
                                fs::remove_file(p)
                            }
                        })
                    })
                } else {
                    fs::remove_dir_all(path)
                };
                if let Err(clean) = cleaned {
                    tracing::warn!(path = %path.display(), "cannot remove the failed init: {clean}");
                }
                Err(e)
            }
        }
    }

    /// The writing part of [`Repo::init`], into an empty or missing folder.
    fn init_into(path: &Path, opts: &InitOptions, config: Config) -> Result<Self, RepoError> {
        for dir in ["", "db", "blobs", "tmp"] {
            fs::create_dir_all(path.join(dir)).map_err(|source| io(path, source))?;
        }
        write_file(
            &path.join(config::FILE_NAME),
            config.to_commented_yaml().as_bytes(),
        )?;
        let keystore = Keystore::create(&path.join("keystore"), opts.passphrase.as_deref())?;
        let node_key = opts.node_key.clone().unwrap_or_else(Keypair::generate);
        keystore.put(&node_key)?;
        let store = Store::open(&path.join("db"), config.store.cache_mb)?;
        let handle = opts.handle.clone().unwrap_or_else(|| "owner".into());
        let email = opts
            .email
            .clone()
            .unwrap_or_else(|| format!("{handle}@localhost"));
        Accounts::new(&store, &keystore).create(
            &handle,
            &email,
            None,
            opts.password.as_deref(),
            Role::Admin,
        )?;
        let info = RepoInfo {
            node: *node_key.did(),
            owner: handle,
            created: mnode_dag::record::now_ms(),
        };
        let json =
            serde_json::to_vec_pretty(&info).map_err(|e| io(path, std::io::Error::other(e)))?;
        write_file(&path.join("repo.json"), &json)?;
        // Written last: a repo without it is an interrupted init.
        write_file(
            &path.join("version"),
            format!("{REPO_VERSION}\n").as_bytes(),
        )?;
        Ok(Self {
            path: path.to_owned(),
            config,
            info,
            store,
            keystore,
        })
    }

    /// Opens the repo at `path`, with config from its file, `env` (`MNODE_*`) and `settings`
    /// (`key=value` flags).
    pub fn open(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
        settings: &[String],
    ) -> Result<Self, RepoError> {
        let version = match fs::read_to_string(path.join("version")) {
            Ok(v) => v,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(
                    if path.join("repo.json").exists() || path.join("db").exists() {
                        RepoError::Incomplete(path.to_owned())
                    } else {
                        RepoError::Missing(path.to_owned())
                    },
                );
            }
            Err(source) => return Err(io(&path.join("version"), source)),
        };
        if version.trim() != REPO_VERSION.to_string() {
            return Err(RepoError::Version {
                path: path.to_owned(),
                found: version.trim().to_owned(),
            });
        }
        let config = Config::load(&path.join(config::FILE_NAME), env, settings)?;
        let info_path = path.join("repo.json");
        let text = fs::read(&info_path).map_err(|source| io(&info_path, source))?;
        let info: RepoInfo = serde_json::from_slice(&text).map_err(|e| {
            io(
                &info_path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        let passphrase = std::env::var(keystore::PASSPHRASE_ENV).ok();
        let keystore = Keystore::open(&path.join("keystore"), passphrase.as_deref())?;
        let store = Store::open(&path.join("db"), config.store.cache_mb).map_err(|e| match e {
            StoreError::Db(db) if db.to_string().contains("lock") => {
                RepoError::Locked(path.to_owned())
            }
            e => RepoError::Store(e),
        })?;
        Ok(Self {
            path: path.to_owned(),
            config,
            info,
            store,
            keystore,
        })
    }

    /// The repo folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The effective config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sets `blobs.store` in the repo's `mnode.yaml` and in the effective config. The file's
    /// other settings keep their values; its comments are written afresh.
    pub fn set_blob_store(&mut self, kind: config::BlobStoreKind) -> Result<(), RepoError> {
        let path = self.path.join(config::FILE_NAME);
        let mut file = match fs::read_to_string(&path) {
            Ok(text) => Config::parse(&text, &path.display().to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(source) => return Err(io(&path, source)),
        };
        file.blobs.store = kind;
        write_file(&path, file.to_commented_yaml().as_bytes())?;
        self.config.blobs.store = kind;
        Ok(())
    }

    /// The node's identity and owner.
    pub fn info(&self) -> &RepoInfo {
        &self.info
    }

    /// The record store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The keystore.
    pub fn keystore(&self) -> &Keystore {
        &self.keystore
    }

    /// The accounts.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts::new(&self.store, &self.keystore)
    }

    /// The login sessions.
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions::new(&self.store)
    }

    /// The node's own key.
    pub fn node_key(&self) -> Result<Keypair, RepoError> {
        Ok(self.keystore.get(&self.info.node)?)
    }

    /// The folder of the blob store.
    pub fn blobs_dir(&self) -> PathBuf {
        self.path.join("blobs")
    }

    /// The folder for uploads in progress.
    pub fn tmp_dir(&self) -> PathBuf {
        self.path.join("tmp")
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    keystore::write_private(path, bytes).map_err(|e| match e {
        KeystoreError::Io { path, source } => RepoError::Io { path, source },
        e => RepoError::Keystore(e),
    })
}

fn io(path: &Path, source: std::io::Error) -> RepoError {
    RepoError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_open_and_init_again_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repo");
        let repo = Repo::init(
            &path,
            &InitOptions {
                handle: Some("alice".into()),
                settings: vec!["store.cache_mb=16".into()],
                ..InitOptions::default()
            },
        )
        .unwrap();
        let node = repo.info().node;
        assert_eq!(
            repo.accounts().get("alice").unwrap().unwrap().role,
            Role::Admin
        );
        assert_eq!(repo.node_key().unwrap().did(), &node);
        let yaml = fs::read_to_string(path.join("mnode.yaml")).unwrap();
        assert!(yaml.contains("cache_mb: 16"), "{yaml}");
        assert!(matches!(
            Repo::open(&path, vec![], &[]),
            Err(RepoError::Locked(_))
        ));
        drop(repo);

        assert!(matches!(
            Repo::init(&path, &InitOptions::default()),
            Err(RepoError::Exists(_))
        ));
        let repo = Repo::open(&path, vec![], &[]).unwrap();
        assert_eq!(repo.info().node, node, "the second init changed nothing");
        assert_eq!(repo.config().store.cache_mb, 16);
        assert_eq!(repo.accounts().list().unwrap().len(), 1);
    }

    #[test]
    fn a_failed_init_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repo");
        let bad = InitOptions {
            settings: vec!["store.cache_mbb=16".into()],
            ..InitOptions::default()
        };
        assert!(matches!(Repo::init(&path, &bad), Err(RepoError::Config(_))));
        assert!(
            !path.exists(),
            "a bad setting is refused before anything is made"
        );

        // A failure after the folder was made (a handle no account may have) removes it, and
        // an empty folder given to init is emptied again.
        let bad_handle = InitOptions {
            handle: Some("no spaces please".into()),
            ..InitOptions::default()
        };
        assert!(Repo::init(&path, &bad_handle).is_err());
        assert!(!path.exists());
        fs::create_dir(&path).unwrap();
        assert!(Repo::init(&path, &bad_handle).is_err());
        assert_eq!(fs::read_dir(&path).unwrap().count(), 0);

        drop(Repo::init(&path, &InitOptions::default()).unwrap());
        Repo::open(&path, vec![], &[]).unwrap();
    }

    #[test]
    fn clear_errors_for_missing_foreign_and_future_repos() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Repo::open(&dir.path().join("none"), vec![], &[]),
            Err(RepoError::Missing(_))
        ));
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        assert!(matches!(
            Repo::init(dir.path(), &InitOptions::default()),
            Err(RepoError::NotEmpty(_))
        ));
        assert_eq!(
            fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
            "mine"
        );

        let path = dir.path().join("r");
        drop(Repo::init(&path, &InitOptions::default()).unwrap());
        fs::write(path.join("version"), "9\n").unwrap();
        assert!(matches!(
            Repo::open(&path, vec![], &[]),
            Err(RepoError::Version { .. })
        ));
        fs::remove_file(path.join("version")).unwrap();
        assert!(matches!(
            Repo::open(&path, vec![], &[]),
            Err(RepoError::Incomplete(_))
        ));
    }
}
