//! The store as the group rules' [`Authority`]: what the records a new version cites say, read
//! from the records stored and those earlier in the same batch.

use std::{collections::HashMap, sync::Arc};

use mnode_dag::{
    Cid, Record, VersionInfo,
    authority::{Authority, Missing},
    group::GROUP_KIND,
    model::core::Group,
};

use crate::store::Store;

/// The store plus the records of a batch not yet written.
pub(crate) struct StoreAuthority<'a> {
    pub(crate) store: &'a Store,
    /// Versions earlier in the batch.
    pub(crate) versions: &'a HashMap<Cid, VersionInfo>,
    /// Group versions earlier in the batch.
    pub(crate) groups: &'a HashMap<Cid, Record>,
}

impl Authority for StoreAuthority<'_> {
    fn version(&self, cid: &Cid) -> Result<VersionInfo, Missing> {
        if let Some(v) = self.versions.get(cid) {
            return Ok(v.clone());
        }
        match self.store.version_of(cid) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(Missing::Version(*cid)),
            Err(e) => {
                tracing::warn!("reading version {cid} for the group rules: {e}");
                Err(Missing::Version(*cid))
            }
        }
    }

    fn group(&self, at: &Cid) -> Result<Option<Arc<Group>>, Missing> {
        let record = match self.groups.get(at) {
            Some(r) => r.clone(),
            None => match self.store.record(at) {
                Ok(Some(r)) => r,
                Ok(None) => return Err(Missing::Version(*at)),
                Err(e) => {
                    tracing::warn!("reading group version {at}: {e}");
                    return Err(Missing::Version(*at));
                }
            },
        };
        if record.kind() != GROUP_KIND {
            return Ok(None);
        }
        Ok(record.body_as::<Group>().ok().flatten().map(Arc::new))
    }
}
