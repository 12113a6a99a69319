//! The store as the chain rules' [`Authority`]: what the records a new version cites say (group
//! versions, key log versions), read from the records stored and those earlier in the same
//! batch.

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
    /// The records earlier in the batch that the rules may read: group and key log versions.
    pub(crate) records: &'a HashMap<Cid, Record>,
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
                tracing::warn!("reading version {cid} for the chain rules: {e}");
                Err(Missing::Version(*cid))
            }
        }
    }

    fn group(&self, at: &Cid) -> Result<Option<Arc<Group>>, Missing> {
        let record = self.record(at)?;
        if record.kind() != GROUP_KIND {
            return Ok(None);
        }
        Ok(record.body_as::<Group>().ok().flatten().map(Arc::new))
    }

    fn record(&self, cid: &Cid) -> Result<Record, Missing> {
        if let Some(r) = self.records.get(cid) {
            return Ok(r.clone());
        }
        match self.store.record(cid) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(Missing::Version(*cid)),
            Err(e) => {
                tracing::warn!("reading record {cid} for the chain rules: {e}");
                Err(Missing::Version(*cid))
            }
        }
    }

    /// As the default, but a version of another item answers at once (a rotation's `kept`
    /// lists the tips of many items).
    fn is_ancestor(&self, a: &Cid, b: &Cid) -> Result<bool, Missing> {
        if a == b {
            return Ok(true);
        }
        let target = self.version(a)?;
        let mut at = self.version(b)?;
        if at.id != target.id {
            return Ok(false);
        }
        while at.seq > target.seq {
            let Some(prev) = at.prev else {
                return Ok(false);
            };
            at = self.version(&prev)?;
        }
        Ok(at.cid == target.cid)
    }
}
