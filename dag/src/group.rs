//! Items owned by a group, and the rules that let a group's members co-edit them.
//!
//! An item is owned by a `core.group` when its version 0 says so in the reserved body field
//! `$owner`: `{"group": <the group's id>, "at": <a version of the group>}`. Any member whose
//! role allows it may then sign its versions; each version cites the group version that
//! grants the signer that right. The group's own chain is its membership log.
//!
//! The hard rules (G1–G7) read only the record and the immutable records it cites, so every
//! node gives the same verdict ([`check_owned`], [`check_group_version`]). Which versions are
//! *in force* also depends on the newest group state a node holds: a member removed in a later
//! group version loses the versions they signed that nobody entitled built on or the group
//! settled ([`standing`]). `docs/decisions.md` ("Groups that co-edit") explains both.

use std::{collections::BTreeMap, sync::Arc};

use ipld_core::ipld::Ipld;
use serde::{Deserialize, Serialize};

use crate::{
    authority::{Authority, Missing},
    cids::Cid,
    keys::Did,
    model::core::{Group, Role},
    record::{Record, VersionInfo},
};

/// The reserved body field that names an item's owning group.
pub const OWNER_FIELD: &str = "$owner";

/// The kind whose chain is a group's membership log.
pub const GROUP_KIND: &str = "core.group";

/// `$owner`: the group that owns an item, and the group version a version relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerCite {
    /// The group's id (its version 0). Fixed for the item's life.
    pub group: Cid,
    /// The group version that grants the signer its role.
    pub at: Cid,
}

impl OwnerCite {
    /// Reads `$owner` from its IPLD form.
    pub fn from_ipld(v: &Ipld) -> Result<Self, String> {
        ipld_core::serde::from_ipld(v.clone())
            .map_err(|_| "expected {\"group\": <link>, \"at\": <link>}".to_owned())
    }

    /// The IPLD form written into a body.
    pub fn to_ipld(self) -> Ipld {
        Ipld::Map(BTreeMap::from([
            ("at".to_owned(), Ipld::Link(self.at)),
            ("group".to_owned(), Ipld::Link(self.group)),
        ]))
    }
}

/// What a version of a group-owned item, or of a group, needs its signer to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Write a new version with a body.
    Edit,
    /// Write a tombstone.
    Delete,
    /// Change the group's members and roles.
    Manage,
    /// Moderate what is posted under the group.
    Moderate,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Edit => "editing",
            Self::Delete => "deleting",
            Self::Manage => "managing members",
            Self::Moderate => "moderating",
        })
    }
}

impl Role {
    /// Whether this role grants `p`. Owners may do everything; admins everything but touch
    /// owners and admins ([`check_group_change`]); members edit; moderators moderate.
    pub fn allows(self, p: Permission) -> bool {
        match p {
            Permission::Edit => matches!(self, Self::Owner | Self::Admin | Self::Member),
            Permission::Delete | Permission::Manage => matches!(self, Self::Owner | Self::Admin),
            Permission::Moderate => matches!(self, Self::Owner | Self::Admin | Self::Moderator),
        }
    }

    /// The role's name as written in a body.
    pub fn name(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Moderator => "moderator",
            Self::Member => "member",
        }
    }
}

/// `who`'s role in a group version, if any.
pub fn role_of(group: &Group, who: &Did) -> Option<Role> {
    group.members.iter().find(|m| m.did == *who).map(|m| m.role)
}

/// A group rule broken. Each variant names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// G1: the owning group changed between versions (or a plain item became a group's).
    #[error("the owning group changed from {expected:?} to {found:?}; an item's owner is fixed")]
    OwnerChanged {
        /// The previous version's group.
        expected: Option<Cid>,
        /// This version's.
        found: Option<Cid>,
    },
    /// G2: `$owner.at` is not a version of `$owner.group`.
    #[error("$owner.at {at} is not a version of group {group}")]
    NotAGroupVersion {
        /// The cited version.
        at: Cid,
        /// The group named.
        group: Cid,
    },
    /// G3: the cited group version deletes the group.
    #[error("group version {at} deletes the group; a deleted group grants nothing")]
    GroupDeleted {
        /// The cited version.
        at: Cid,
    },
    /// G4: the signer's role in the cited group version does not allow this version.
    #[error("{who} is {} in group version {at}; {needed} needs {}", has.map_or("not a member", Role::name), needs(*needed))]
    NoRole {
        /// The signer.
        who: Did,
        /// What the version needs.
        needed: Permission,
        /// The cited group version.
        at: Cid,
        /// The signer's role there.
        has: Option<Role>,
    },
    /// G5: a version cites a group state older than the version it replaces.
    #[error("cites group version {at}, older than {prev_at} which the replaced version cites")]
    StaleGroupVersion {
        /// What this version cites.
        at: Cid,
        /// What the replaced version cites.
        prev_at: Cid,
    },
    /// A group cannot be owned by a group.
    #[error("a core.group cannot carry $owner")]
    GroupOwned,
    /// G7: a group's version 0 is not signed by one of its owners.
    #[error("{signer} signs a new group but is not one of its owners")]
    FounderNotOwner {
        /// The signer.
        signer: Did,
    },
    /// G7: a change to the group's members that the signer's role does not allow.
    #[error("{signer} ({}) may not {what}", role.map_or("not a member", Role::name))]
    GroupChange {
        /// The signer.
        signer: Did,
        /// Their role in the version changed.
        role: Option<Role>,
        /// What they tried.
        what: String,
    },
    /// A cited record is not held, so the rules cannot be checked (yet).
    #[error("cannot check group rules: {0}")]
    Missing(#[from] Missing),
}

fn needs(p: Permission) -> &'static str {
    match p {
        Permission::Edit => "owner, admin or member",
        Permission::Delete | Permission::Manage => "owner or admin",
        Permission::Moderate => "owner, admin or moderator",
    }
}

/// The permission a version needs: deleting for a tombstone, editing otherwise.
pub fn needed(tombstone: bool) -> Permission {
    if tombstone {
        Permission::Delete
    } else {
        Permission::Edit
    }
}

/// G1–G6 for a version of an item, given the version it replaces (none for version 0).
/// `owner` is the version's effective citation ([`VersionInfo::owner`]: a tombstone's is its
/// predecessor's). Plain items (no owner on either side) pass.
pub fn check_owned(
    record: &Record,
    prev: Option<&VersionInfo>,
    auth: &impl Authority,
) -> Result<(), GroupError> {
    let tombstone = record.is_tombstone();
    let owner = if tombstone {
        prev.and_then(|p| p.owner)
    } else {
        record.owner()
    };
    if record.kind() == GROUP_KIND {
        return match owner {
            Some(_) => Err(GroupError::GroupOwned),
            None => Ok(()),
        };
    }
    if let Some(p) = prev {
        let (before, after) = (p.owner.map(|o| o.group), owner.map(|o| o.group));
        if before != after {
            return Err(GroupError::OwnerChanged {
                expected: before,
                found: after,
            });
        }
    }
    let Some(owner) = owner else {
        return Ok(());
    };
    let at_info = auth.version(&owner.at)?;
    if at_info.kind != GROUP_KIND || at_info.id != owner.group {
        return Err(GroupError::NotAGroupVersion {
            at: owner.at,
            group: owner.group,
        });
    }
    let Some(group) = auth.group(&owner.at)? else {
        return Err(GroupError::GroupDeleted { at: owner.at });
    };
    let perm = needed(tombstone);
    // Roles name identities: a member who rotated their key signs for the same identity.
    let who = signed_for(record, prev);
    let has = role_of(&group, &who);
    if !has.is_some_and(|r| r.allows(perm)) {
        return Err(GroupError::NoRole {
            who,
            needed: perm,
            at: owner.at,
            has,
        });
    }
    if let Some(prev_at) = prev.and_then(|p| p.owner).map(|o| o.at)
        && owner.at != prev_at
        && auth.is_ancestor(&owner.at, &prev_at)?
    {
        return Err(GroupError::StaleGroupVersion {
            at: owner.at,
            prev_at,
        });
    }
    Ok(())
}

/// The identity a version is signed for (its `$signer`'s, or, for a tombstone, its
/// predecessor's when the same key signs; else its author). The key rules check the claim.
fn signed_for(record: &Record, prev: Option<&VersionInfo>) -> Did {
    crate::key_log::effective_signer(record, prev).map_or(*record.author(), |s| s.identity)
}

/// G7: a group's chain governs itself. Version 0 is signed by one of the owners it lists; a
/// later version by someone allowed to make that change in the version it replaces (deleting
/// the group takes an owner).
pub fn check_group_version(
    record: &Record,
    prev: Option<&VersionInfo>,
    auth: &impl Authority,
) -> Result<(), GroupError> {
    if record.kind() != GROUP_KIND {
        return Ok(());
    }
    if record.owner().is_some() {
        return Err(GroupError::GroupOwned);
    }
    let signer = signed_for(record, prev);
    let next = record.body_as::<Group>().ok().flatten().map(Arc::new);
    let Some(prev) = prev else {
        return match next.as_deref().and_then(|g| role_of(g, &signer)) {
            Some(Role::Owner) => Ok(()),
            _ => Err(GroupError::FounderNotOwner { signer }),
        };
    };
    // A tombstone's predecessor is never a tombstone (the chain rules say so first).
    let Some(before) = auth.group(&prev.cid)? else {
        return Ok(());
    };
    let role = role_of(&before, &signer);
    match next {
        None if role == Some(Role::Owner) => Ok(()),
        None => Err(GroupError::GroupChange {
            signer,
            role,
            what: "delete the group (owners only)".into(),
        }),
        Some(after) => {
            check_group_change(&before, &after, &signer, role)?;
            if !matches!(role, Some(Role::Owner | Role::Admin)) {
                for c in after.settled.iter().filter(|c| !before.settled.contains(c)) {
                    if auth.version(&c.0)?.identity() != signer {
                        return Err(GroupError::GroupChange {
                            signer,
                            role,
                            what: format!(
                                "settle {} (someone leaving settles only their own versions)",
                                c.0
                            ),
                        });
                    }
                }
            }
            Ok(())
        }
    }
}

/// Whether `signer`, holding `role` in `before`, may turn it into `after`.
///
/// Owners may change anything (the body's schema keeps at least one owner). Admins may change
/// the name, description and settled list, and add, remove or re-role members and moderators,
/// but not touch owners or admins. Anyone may leave (remove only themselves), except the last
/// owner.
pub fn check_group_change(
    before: &Group,
    after: &Group,
    signer: &Did,
    role: Option<Role>,
) -> Result<(), GroupError> {
    let refuse = |what: String| {
        Err(GroupError::GroupChange {
            signer: *signer,
            role,
            what,
        })
    };
    let mut changed: Vec<(Did, Option<Role>, Option<Role>)> = vec![];
    for m in &before.members {
        let now = role_of(after, &m.did);
        if now != Some(m.role) {
            changed.push((m.did, Some(m.role), now));
        }
    }
    for m in &after.members {
        if role_of(before, &m.did).is_none() {
            changed.push((m.did, None, Some(m.role)));
        }
    }
    match role {
        Some(Role::Owner) => Ok(()),
        Some(Role::Admin) => {
            let high = |r: Option<Role>| matches!(r, Some(Role::Owner | Role::Admin));
            match changed.iter().find(|(_, b, a)| high(*b) || high(*a)) {
                Some((who, b, a)) => refuse(format!(
                    "change {who} from {} to {} (only owners change owners and admins)",
                    b.map_or("not a member", Role::name),
                    a.map_or("not a member", Role::name)
                )),
                None => Ok(()),
            }
        }
        _ => {
            let leaving = matches!(changed.as_slice(), [(who, Some(_), None)] if who == signer);
            // A member who leaves may settle their own past work (checked against the
            // versions in `check_group_version`), and nothing else.
            let same_rest = before.name == after.name
                && before.description == after.description
                && before.settled.iter().all(|c| after.settled.contains(c));
            if leaving && same_rest {
                Ok(())
            } else {
                refuse("change the group's members or details (owners and admins only; anyone may leave)".into())
            }
        }
    }
}

/// A group's membership log as one node sees it: its versions from version 0 to the head
/// (DESIGN §2: the newest tip by `(updated, CID)`), each with the body in force there (a
/// tombstone keeps its predecessor's members: a deleted group's items stay as they were).
#[derive(Debug, Clone, Default)]
pub struct GroupPath {
    /// Root first.
    pub versions: Vec<(Cid, Arc<Group>)>,
}

impl GroupPath {
    /// The head's CID.
    pub fn head(&self) -> Option<Cid> {
        self.versions.last().map(|(c, _)| *c)
    }
}

/// Whether a version of a group-owned item counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// It counts: it can be the head and is listed.
    InForce,
    /// A later group version took the signer's right away, and neither an entitled member
    /// built on the version nor the group settled it.
    Revoked {
        /// The group version where the signer lost the right.
        at: Cid,
        /// Why, for people.
        reason: String,
    },
}

/// Whether `v` (a version of an item owned by the group `path` describes, signed by
/// `signer`) is in force: the signer keeps the right it needs on the group's path from the
/// version it cites to the head, or a group version at or after the loss settles it.
/// `vouched` says whether an in-force later version of the same item by an entitled signer
/// cites a group version at or after the loss and builds on `v`.
pub fn standing(
    v: &VersionInfo,
    path: &GroupPath,
    auth: &impl Authority,
    vouched: impl Fn(&Cid) -> bool,
) -> Result<Standing, Missing> {
    let Some(owner) = v.owner else {
        return Ok(Standing::InForce);
    };
    let perm = needed(v.tombstone);
    // Where the cited version meets the head's path: itself, or the newest path version that
    // is its ancestor (a cited version on a losing fork).
    let start = match path.versions.iter().position(|(c, _)| *c == owner.at) {
        Some(i) => i + 1,
        None => {
            let mut base = None;
            for (i, (c, _)) in path.versions.iter().enumerate().rev() {
                if auth.is_ancestor(c, &owner.at)? {
                    base = Some(i);
                    break;
                }
            }
            base.unwrap_or(0)
        }
    };
    let Some(loss) = (start..path.versions.len())
        .find(|&i| !role_of(&path.versions[i].1, &v.identity()).is_some_and(|r| r.allows(perm)))
    else {
        return Ok(Standing::InForce);
    };
    let (loss_cid, _) = &path.versions[loss];
    if vouched(loss_cid) {
        return Ok(Standing::InForce);
    }
    for (_, g) in &path.versions[loss..] {
        for c in &g.settled {
            if auth.is_ancestor(&v.cid, &c.0).unwrap_or(false) {
                return Ok(Standing::InForce);
            }
        }
    }
    let has = role_of(&path.versions[loss].1, &v.identity());
    Ok(Standing::Revoked {
        at: *loss_cid,
        reason: format!(
            "{} is {} from group version {loss_cid} on; {perm} needs {}",
            v.identity(),
            has.map_or("not a member", Role::name),
            needs(perm)
        ),
    })
}
