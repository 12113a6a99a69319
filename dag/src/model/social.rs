//! `social`: posts, pages, feeds, forums, branches and forkable threads.
//!
//! A forum holds branches (a branch is a feed inside the forum, and may sit under a parent
//! branch). Posts go into a branch directly or into a thread of a branch. Forking a thread makes
//! a new thread that links the thread it forked from and the post it forked at; posts after
//! the fork go to the new thread's topic.

use serde::{Deserialize, Serialize};

use super::{Link, check};
use crate::{
    example::ExampleGen,
    keys::Did,
    registry::{Index, Model, SchemaError, Topic},
};

/// Where a reply sits in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReplyRef {
    /// The post that started the conversation.
    pub root: Link,
    /// The post answered.
    pub parent: Link,
}

/// `social.post`: a post.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Post {
    /// The text (plain text with light markdown).
    pub text: String,
    /// Attached `art.image`, `art.audio`, `art.video` or `core.file` records.
    #[serde(default)]
    pub media: Vec<Link>,
    /// The post this one answers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyRef>,
    /// Tags such as `music/jazz`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The forum branch (origin CID) the post is in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<Link>,
    /// The thread (origin CID) the post is in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<Link>,
    /// BCP 47 language tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The post as a rich-text document (see `core.text`), when it was written in the editor;
    /// `text` then holds its plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<crate::doc::Doc>,
}

impl Model for Post {
    const KIND: &'static str = "social.post";

    fn validate(&self) -> Result<(), SchemaError> {
        check::text("text", &self.text, 1, check::LONG_TEXT)?;
        check::record_links("media", &self.media, 64)?;
        if let Some(r) = &self.reply {
            check::record_link("reply.root", &r.root)?;
            check::record_link("reply.parent", &r.parent)?;
        }
        check::tags("tags", &self.tags)?;
        self.branch
            .as_ref()
            .map_or(Ok(()), |l| check::record_link("branch", l))?;
        self.thread
            .as_ref()
            .map_or(Ok(()), |l| check::record_link("thread", l))?;
        check::opt_text("language", self.language.as_deref(), 2, 35)?;
        self.doc
            .as_ref()
            .map_or(Ok(()), |d| super::core::check_doc("doc", d))
    }

    fn index(&self) -> Index {
        let mut topics = Vec::new();
        topics.extend(self.branch.map(|l| Topic::Branch(l.0)));
        topics.extend(self.thread.map(|l| Topic::Thread(l.0)));
        topics.extend(self.reply.map(|r| Topic::About(r.root.0)));
        let mut targets = Vec::new();
        if let Some(r) = &self.reply {
            targets.push(r.parent.0);
            if r.root != r.parent {
                targets.push(r.root.0);
            }
        }
        Index {
            tags: self.tags.clone(),
            topics,
            targets,
        }
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self {
            text: g.paragraph(),
            media: vec![g.link::<crate::model::art::Image>()],
            reply: None,
            tags: g.tags(2),
            branch: None,
            thread: None,
            language: Some("la".into()),
            doc: None,
        }
    }
}

/// One block of a page.
///
/// Encoded as an IPLD keyed union: `{"heading": {"level": 2, "text": "…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PageBlock {
    /// A heading of level 1 to 6.
    Heading {
        /// 1 (largest) to 6.
        level: u8,
        /// The heading's text.
        text: String,
    },
    /// A paragraph of text.
    Paragraph {
        /// The text.
        text: String,
    },
    /// Another record or file shown inline.
    Embed {
        /// What to show.
        link: Link,
    },
    /// A live query, evaluated by the node: `art.artists.list()`.
    Widget {
        /// The query, in the widget language.
        query: String,
    },
}

/// `social.page`: a page of blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Page {
    /// The page's title.
    pub title: String,
    /// A short name for URLs: lowercase words joined by `-`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// The content, in order.
    pub blocks: Vec<PageBlock>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Model for Page {
    const KIND: &'static str = "social.page";

    fn validate(&self) -> Result<(), SchemaError> {
        check::text("title", &self.title, 1, check::TITLE)?;
        if let Some(slug) = &self.slug {
            check::tag("slug", slug)
                .map_err(|_| SchemaError::new("slug", "must be lowercase words joined by '-'"))?;
            if slug.contains('/') {
                return Err(SchemaError::new("slug", "must not contain '/'"));
            }
        }
        check::list("blocks", &self.blocks, 1_000)?;
        for (i, b) in self.blocks.iter().enumerate() {
            let at = |f: &str| format!("blocks[{i}].{f}");
            match b {
                PageBlock::Heading { level, text } => {
                    if !(1..=6).contains(level) {
                        return Err(SchemaError::new(at("level"), "must be 1 to 6"));
                    }
                    check::text(&at("text"), text, 1, check::TITLE)?;
                }
                PageBlock::Paragraph { text } => {
                    check::text(&at("text"), text, 1, check::LONG_TEXT)?
                }
                PageBlock::Embed { link } => check::any_link(&at("link"), link)?,
                PageBlock::Widget { query } => {
                    crate::query::Query::parse(query)
                        .map_err(|e| SchemaError::new(at("query"), e.to_string()))?;
                }
            }
        }
        check::tags("tags", &self.tags)
    }

    fn index(&self) -> Index {
        Index {
            tags: self.tags.clone(),
            topics: vec![],
            targets: vec![],
        }
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self {
            title: g.title().full,
            slug: Some(g.word()),
            blocks: vec![
                PageBlock::Heading {
                    level: 1,
                    text: g.title().full,
                },
                PageBlock::Paragraph {
                    text: g.paragraph(),
                },
                PageBlock::Embed {
                    link: g.link::<crate::model::art::Release>(),
                },
                PageBlock::Widget {
                    query: "art.artists.list()".into(),
                },
                PageBlock::Widget {
                    query: "social.posts.tag = 'music/jazz'".into(),
                },
            ],
            tags: g.tags(1),
        }
    }
}

/// `social.feed`: a named, ordered view of posts: curated items, a query, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Feed {
    /// The feed's name.
    pub name: String,
    /// What the feed is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Curated posts, in order.
    #[serde(default)]
    pub items: Vec<Link>,
    /// A widget query whose results follow the curated items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Model for Feed {
    const KIND: &'static str = "social.feed";

    fn validate(&self) -> Result<(), SchemaError> {
        check::text("name", &self.name, 1, check::TITLE)?;
        check::opt_text(
            "description",
            self.description.as_deref(),
            0,
            check::SHORT_TEXT,
        )?;
        check::record_links("items", &self.items, 10_000)?;
        if let Some(q) = &self.query {
            crate::query::Query::parse(q).map_err(|e| SchemaError::new("query", e.to_string()))?;
        }
        check::tags("tags", &self.tags)
    }

    fn index(&self) -> Index {
        Index {
            tags: self.tags.clone(),
            topics: vec![],
            targets: vec![],
        }
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self {
            name: g.title().full,
            description: Some(g.sentence()),
            items: vec![g.link::<Post>(), g.link::<Post>()],
            query: Some("social.posts.tag = 'music'".into()),
            tags: g.tags(1),
        }
    }
}

/// `social.forum`: a forum with moderators and a hierarchical tag tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Forum {
    /// The forum's name.
    pub name: String,
    /// What the forum is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Keys that may moderate.
    #[serde(default)]
    pub moderators: Vec<Did>,
    /// The tag tree: every path and its ancestors (`music`, `music/jazz`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// The rules of the forum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<String>,
    /// A `core.group` that owns the forum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Link>,
}

impl Model for Forum {
    const KIND: &'static str = "social.forum";

    fn validate(&self) -> Result<(), SchemaError> {
        check::text("name", &self.name, 1, check::TITLE)?;
        check::opt_text(
            "description",
            self.description.as_deref(),
            0,
            check::SHORT_TEXT,
        )?;
        check::list("moderators", &self.moderators, 1_000)?;
        check::list("tags", &self.tags, 10_000)?;
        for (i, t) in self.tags.iter().enumerate() {
            check::tag(&format!("tags[{i}]"), t)?;
            if let Some((parent, _)) = t.rsplit_once('/')
                && !self.tags.iter().any(|p| p == parent)
            {
                {
                    return Err(SchemaError::new(
                        format!("tags[{i}]"),
                        format!("{t:?} needs its parent {parent:?} in the tree"),
                    ));
                }
            }
        }
        check::opt_text("rules", self.rules.as_deref(), 0, check::SHORT_TEXT)?;
        self.group
            .as_ref()
            .map_or(Ok(()), |l| check::record_link("group", l))
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self {
            name: g.title().full,
            description: Some(g.sentence()),
            moderators: vec![g.person(0), g.person(1)],
            tags: [
                "music",
                "music/jazz",
                "music/jazz/bebop",
                "visual",
                "visual/photo",
            ]
            .map(String::from)
            .to_vec(),
            rules: Some(g.sentence()),
            group: None,
        }
    }
}

/// `social.branch`: a branch of a forum, a feed inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Branch {
    /// The forum (origin CID).
    pub forum: Link,
    /// The branch's name.
    pub name: String,
    /// What belongs here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The branch this one sits under, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Link>,
    /// Tags from the forum's tree.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Model for Branch {
    const KIND: &'static str = "social.branch";

    fn validate(&self) -> Result<(), SchemaError> {
        check::record_link("forum", &self.forum)?;
        check::text("name", &self.name, 1, check::TITLE)?;
        check::opt_text(
            "description",
            self.description.as_deref(),
            0,
            check::SHORT_TEXT,
        )?;
        self.parent
            .as_ref()
            .map_or(Ok(()), |l| check::record_link("parent", l))?;
        check::tags("tags", &self.tags)
    }

    fn index(&self) -> Index {
        let mut topics = vec![Topic::Forum(self.forum.0)];
        topics.extend(self.parent.map(|p| Topic::Branch(p.0)));
        Index {
            tags: self.tags.clone(),
            topics,
            targets: vec![],
        }
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self {
            forum: g.link::<Forum>(),
            name: g.title().full,
            description: Some(g.sentence()),
            parent: None,
            tags: vec!["music/jazz".into()],
        }
    }
}

/// Where a forked thread came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ForkPoint {
    /// The thread forked from (origin CID).
    pub thread: Link,
    /// The post the fork starts after.
    pub post: Link,
}

/// `social.thread`: a conversation in a branch. Forking makes a new thread with `fork` set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Thread {
    /// The branch (origin CID).
    pub branch: Link,
    /// The thread's title.
    pub title: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Set when this thread forks another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork: Option<ForkPoint>,
}

impl Model for Thread {
    const KIND: &'static str = "social.thread";

    fn validate(&self) -> Result<(), SchemaError> {
        check::record_link("branch", &self.branch)?;
        check::text("title", &self.title, 1, check::TITLE)?;
        check::tags("tags", &self.tags)?;
        if let Some(f) = &self.fork {
            check::record_link("fork.thread", &f.thread)?;
            check::record_link("fork.post", &f.post)?;
        }
        Ok(())
    }

    fn index(&self) -> Index {
        let mut topics = vec![Topic::Branch(self.branch.0)];
        topics.extend(self.fork.map(|f| Topic::Thread(f.thread.0)));
        Index {
            tags: self.tags.clone(),
            topics,
            targets: self.fork.iter().map(|f| f.post.0).collect(),
        }
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self {
            branch: g.link::<Branch>(),
            title: g.sentence(),
            tags: g.tags(1),
            fork: None,
        }
    }
}

/// What a moderation record does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModAction {
    /// Hide a post or thread in the forum's views.
    Hide,
    /// Show a hidden post or thread again.
    Unhide,
    /// Hide everything an author posts in the forum.
    Ban,
    /// Let a banned author back.
    Unban,
}

/// `social.moderation`: a forum moderator's decision about a post, a thread or an author.
///
/// It is gossiped on the forum's topic; nodes apply it to the forum's views when its signer is
/// the forum's owner or one of the moderators of the forum's newest version they hold. Nothing
/// is deleted: a hidden post stays readable by its CID, with the decision shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Moderation {
    /// The `social.forum` (origin CID).
    pub forum: Link,
    /// What is done.
    pub action: ModAction,
    /// The `social.post` or `social.thread` (origin CID) hidden or shown again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Link>,
    /// The author banned or let back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Did>,
    /// Why, shown with what was hidden.
    pub reason: String,
}

impl Model for Moderation {
    const KIND: &'static str = "social.moderation";

    fn validate(&self) -> Result<(), SchemaError> {
        check::record_link("forum", &self.forum)?;
        check::text("reason", &self.reason, 1, check::SHORT_TEXT)?;
        match self.action {
            ModAction::Hide | ModAction::Unhide => {
                let Some(t) = &self.target else {
                    return Err(SchemaError::new("target", "hide and unhide need a target"));
                };
                if self.author.is_some() {
                    return Err(SchemaError::new(
                        "author",
                        "hide and unhide take a target only",
                    ));
                }
                check::record_link("target", t)
            }
            ModAction::Ban | ModAction::Unban => {
                if self.author.is_none() {
                    return Err(SchemaError::new("author", "ban and unban need an author"));
                }
                if self.target.is_some() {
                    return Err(SchemaError::new(
                        "target",
                        "ban and unban take an author only",
                    ));
                }
                Ok(())
            }
        }
    }

    fn index(&self) -> Index {
        Index {
            tags: vec![],
            topics: vec![Topic::Forum(self.forum.0)],
            targets: vec![],
        }
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self {
            forum: g.link::<Forum>(),
            action: ModAction::Hide,
            target: Some(g.link::<Post>()),
            author: None,
            reason: g.sentence(),
        }
    }
}

/// `social.message`: a direct message, always sent private (its body sealed for the people it
/// is for, see [`crate::private`]); a conversation is the messages between the same people.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Message {
    /// The text (plain text with light markdown).
    pub text: String,
    /// The message this one answers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Link>,
}

impl Model for Message {
    const KIND: &'static str = "social.message";

    fn validate(&self) -> Result<(), SchemaError> {
        check::text("text", &self.text, 1, check::LONG_TEXT)?;
        self.reply_to
            .as_ref()
            .map_or(Ok(()), |l| check::record_link("reply_to", l))
    }

    fn index(&self) -> Index {
        // Sealed bodies are indexed by nothing; the links stay inside the ciphertext.
        Index::default()
    }

    fn example(g: &mut ExampleGen) -> Self {
        Self {
            text: g.sentence(),
            // Any record link passes the schema; an example message of its own would recurse.
            reply_to: Some(g.link::<Post>()),
        }
    }
}

/// A moderation decision in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Who decided.
    pub by: Did,
    /// When (the moderation record's `created`, ms).
    pub at: u64,
    /// Why.
    pub reason: String,
    /// The moderation record (version CID).
    pub record: crate::Cid,
}

/// The moderation in force in one forum: hidden posts and threads, banned authors.
///
/// Built by [`Moderated::apply`] from the forum's newest version, its owner and every
/// `social.moderation` record about it; records signed by anyone else are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moderated {
    /// Hidden posts and threads, by origin CID.
    pub hidden: std::collections::HashMap<crate::Cid, Decision>,
    /// Banned authors.
    pub banned: std::collections::HashMap<Did, Decision>,
}

/// One moderation record as [`Moderated::apply`] reads it.
#[derive(Debug, Clone)]
pub struct ModEntry {
    /// The signer.
    pub by: Did,
    /// The record's `created` (ms).
    pub at: u64,
    /// The record's version CID.
    pub record: crate::Cid,
    /// The body.
    pub body: Moderation,
}

impl Moderated {
    /// Whether `who` may take `action` in a forum owned by `owner` whose newest version is
    /// `forum`, on a post by `author` (hide, unhide) or against `author` (ban, unban).
    /// `author` is None for a post the node does not hold.
    ///
    /// The owner may do anything but ban themselves; a moderator may hide and unhide anything
    /// but the owner's posts, and ban or let back anyone but the owner and the moderators;
    /// nobody else may do anything.
    pub fn may(
        owner: &Did,
        forum: &Forum,
        who: &Did,
        action: ModAction,
        author: Option<&Did>,
    ) -> bool {
        let is_mod = |d: &Did| forum.moderators.contains(d);
        if who == owner {
            return !(action == ModAction::Ban && author == Some(owner));
        }
        if !is_mod(who) || author == Some(owner) {
            return false;
        }
        match action {
            ModAction::Hide | ModAction::Unhide => true,
            ModAction::Ban | ModAction::Unban => author.is_some_and(|a| !is_mod(a)),
        }
    }

    /// Applies `entries` in time order (ties by record CID); `author_of` names the author of
    /// a post or thread, when the node holds it.
    pub fn apply(
        owner: &Did,
        forum: &Forum,
        entries: impl IntoIterator<Item = ModEntry>,
        author_of: impl Fn(&crate::Cid) -> Option<Did>,
    ) -> Self {
        let mut entries: Vec<ModEntry> = entries.into_iter().collect();
        entries.sort_by_key(|e| (e.at, e.record));
        let mut out = Self::default();
        for e in entries {
            let subject = match (&e.body.target, &e.body.author) {
                (Some(t), _) => author_of(&t.0),
                (None, a) => *a,
            };
            if !Self::may(owner, forum, &e.by, e.body.action, subject.as_ref()) {
                continue;
            }
            let decision = Decision {
                by: e.by,
                at: e.at,
                reason: e.body.reason.clone(),
                record: e.record,
            };
            match (e.body.action, e.body.target, e.body.author) {
                (ModAction::Hide, Some(t), _) => {
                    out.hidden.insert(t.0, decision);
                }
                (ModAction::Unhide, Some(t), _) => {
                    out.hidden.remove(&t.0);
                }
                (ModAction::Ban, _, Some(a)) => {
                    out.banned.insert(a, decision);
                }
                (ModAction::Unban, _, Some(a)) => {
                    out.banned.remove(&a);
                }
                _ => {}
            }
        }
        out
    }

    /// Why a post or thread (`item` by `author`) is hidden, if it is.
    pub fn hidden(&self, item: &crate::Cid, author: &Did) -> Option<&Decision> {
        self.hidden.get(item).or_else(|| self.banned.get(author))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Keypair, cids};

    fn did(n: u64) -> Did {
        *Keypair::derive(n, "moderation").did()
    }

    fn entry(
        by: Did,
        at: u64,
        action: ModAction,
        target: Option<Cid>,
        author: Option<Did>,
    ) -> ModEntry {
        ModEntry {
            by,
            at,
            record: cids::record_cid(&at.to_be_bytes()),
            body: Moderation {
                forum: Link(cids::record_cid(b"forum")),
                action,
                target: target.map(Link),
                author,
                reason: "off topic".into(),
            },
        }
    }

    use crate::Cid;

    #[test]
    fn who_may_moderate_what() {
        let (owner, m1, m2, stranger) = (did(1), did(2), did(3), did(4));
        let forum = Forum {
            name: "f".into(),
            moderators: vec![m1, m2],
            ..Forum::default()
        };
        let may =
            |who, action, author: Option<&Did>| Moderated::may(&owner, &forum, who, action, author);
        // The owner: everything but banning themselves.
        assert!(may(&owner, ModAction::Hide, Some(&m1)));
        assert!(may(&owner, ModAction::Ban, Some(&m1)));
        assert!(may(&owner, ModAction::Hide, Some(&owner)));
        assert!(!may(&owner, ModAction::Ban, Some(&owner)));
        // A moderator: hide anyone's but the owner's posts; ban strangers only.
        assert!(may(&m1, ModAction::Hide, Some(&stranger)));
        assert!(may(&m1, ModAction::Hide, Some(&m2)));
        assert!(may(&m1, ModAction::Hide, None));
        assert!(!may(&m1, ModAction::Hide, Some(&owner)));
        assert!(may(&m1, ModAction::Ban, Some(&stranger)));
        assert!(may(&m1, ModAction::Unban, Some(&stranger)));
        assert!(!may(&m1, ModAction::Ban, Some(&m2)));
        assert!(!may(&m1, ModAction::Ban, Some(&owner)));
        // Anyone else: nothing, not even on their own posts.
        assert!(!may(&stranger, ModAction::Hide, Some(&stranger)));
        assert!(!may(&stranger, ModAction::Ban, Some(&m1)));
    }

    #[test]
    fn decisions_apply_in_time_order_and_only_from_moderators() {
        let (owner, m, stranger, troll) = (did(1), did(2), did(4), did(5));
        let forum = Forum {
            name: "f".into(),
            moderators: vec![m],
            ..Forum::default()
        };
        let (p1, p2, p3) = (
            cids::record_cid(b"p1"),
            cids::record_cid(b"p2"),
            cids::record_cid(b"p3"),
        );
        let author_of = |c: &Cid| Some(if *c == p3 { owner } else { troll });
        let state = Moderated::apply(
            &owner,
            &forum,
            [
                // Given out of order: unhide of p2 comes after its hide.
                entry(m, 30, ModAction::Unhide, Some(p2), None),
                entry(m, 10, ModAction::Hide, Some(p1), None),
                entry(m, 20, ModAction::Hide, Some(p2), None),
                // Not a moderator: skipped.
                entry(stranger, 40, ModAction::Hide, Some(p1), None),
                entry(stranger, 41, ModAction::Ban, None, Some(m)),
                // A moderator may not hide the owner's post.
                entry(m, 50, ModAction::Hide, Some(p3), None),
                entry(m, 60, ModAction::Ban, None, Some(troll)),
            ],
            author_of,
        );
        assert_eq!(state.hidden.keys().collect::<Vec<_>>(), vec![&p1]);
        assert_eq!(state.hidden[&p1].at, 10);
        assert!(state.hidden(&p2, &stranger).is_none());
        assert!(state.hidden(&p3, &owner).is_none());
        // Anything by a banned author is hidden, with the ban's reason.
        let other = cids::record_cid(b"other");
        assert_eq!(state.hidden(&other, &troll).unwrap().at, 60);
        assert!(!state.banned.contains_key(&m));

        // A moderator removed in the forum's newer version no longer counts.
        let demoted = Forum {
            moderators: vec![],
            ..forum.clone()
        };
        let state = Moderated::apply(
            &owner,
            &demoted,
            [entry(m, 10, ModAction::Hide, Some(p1), None)],
            author_of,
        );
        assert!(state.hidden.is_empty());
    }

    #[test]
    fn moderation_bodies_name_what_they_act_on() {
        let forum = Link(cids::record_cid(b"forum"));
        let hide = |target: Option<Link>, author: Option<Did>| Moderation {
            forum,
            action: ModAction::Hide,
            target,
            author,
            reason: "spam".into(),
        };
        assert!(
            hide(Some(Link(cids::record_cid(b"p"))), None)
                .validate()
                .is_ok()
        );
        assert_eq!(hide(None, None).validate().unwrap_err().path, "target");
        assert_eq!(
            hide(Some(Link(cids::record_cid(b"p"))), Some(did(1)))
                .validate()
                .unwrap_err()
                .path,
            "author"
        );
        let ban = Moderation {
            action: ModAction::Ban,
            ..hide(None, Some(did(1)))
        };
        assert!(ban.validate().is_ok());
        let no_reason = Moderation {
            reason: String::new(),
            ..ban.clone()
        };
        assert_eq!(no_reason.validate().unwrap_err().path, "reason");
    }
}
