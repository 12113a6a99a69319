//! `discussion`: a forum discussed across the testnet (issue #15). One forum (its owner on
//! node 0, a moderator on another node) with a branch and a thread; every node but one follows
//! the forum's topic only, never an author, and must find the branch by itself. Many authors,
//! each on its own node, reply across the thread at a set rate, each answering a random earlier
//! post. Then the moderator hides some replies. Reports the delivery of every reply to every
//! forum follower (ratio, latency), whether each reply reached the node of the author it
//! answers, how long each hide took to reach every follower, that the hides are in force there
//! (`Moderated::apply` over the node's store), and whether a reply reaches an author whose node
//! follows nothing but that author's own feed (the one node left out of the forum).

use std::{
    collections::{HashSet, VecDeque},
    time::{Duration, Instant},
};

use mnode_api::moderation::ForumModeration;
use mnode_dag::{
    Cid, Keypair, Link, Record,
    model::social::{Branch, Forum, ModAction, Moderation, Post, ReplyRef, Thread},
};
use mnode_protocols::GossipTopic;
use rand::{RngExt as _, SeedableRng as _, rngs::ChaCha8Rng};
use serde::Serialize;

use super::{NetArgs, Publisher, all_delivered, deliveries, node_bytes, publish_at_rate, sign};
use crate::{Report, Testnet, report::Percentiles, topology::Topology};

/// How long setup steps (a follow, a record reaching the followers) may take at most.
const SETUP_WAIT: Duration = Duration::from_secs(60);
/// How long the replies and hides may take to arrive once published.
const DELIVERY_WAIT: Duration = Duration::from_secs(30);
/// The node default of `network.gossip_author_per_minute`.
const DEFAULT_AUTHOR_BUDGET: u32 = 60;

/// Parameters of `discussion`.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct Discussion {
    /// The testnet.
    #[command(flatten)]
    pub net: NetArgs,
    /// Reply authors, each replying from its own node (spread over the forum's followers).
    #[arg(long, default_value_t = 20)]
    pub authors: usize,
    /// Replies in all, each answering a random earlier post of the thread.
    #[arg(long, default_value_t = 400)]
    pub replies: usize,
    /// Replies per second, all authors together. Each author must stay under the nodes'
    /// per-author budget (`network.gossip_author_per_minute`, 60 by default): raise it with
    /// `--set` for more replies per author.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Replies the moderator hides afterwards.
    #[arg(long, default_value_t = 10)]
    pub hides: usize,
    /// Hides per second.
    #[arg(long, default_value_t = 5.0)]
    pub hide_rate: f64,
    /// Seconds to wait for the replies to the author whose node follows only its own feed
    /// (one from a linked node, one from the farthest node: that one has no gossip path and
    /// waits for catch-up, every `network.sync_interval_secs`, 60 s by default).
    #[arg(long, default_value_t = 70.0)]
    pub lone_wait_secs: f64,
    /// The p99 latency target, in ms, of reply deliveries and of a hide reaching every node.
    #[arg(long, default_value_t = 250.0)]
    pub p99_target_ms: f64,
}

impl Discussion {
    /// The small size CI runs: `n` nodes, 4 authors, 48 replies at 20/s, 4 hides, 3 s for the
    /// replies to the lone author.
    pub fn small(n: usize) -> Self {
        Self {
            net: NetArgs::small(n),
            authors: 4,
            replies: 48,
            rate: 20.0,
            hides: 4,
            hide_rate: 10.0,
            lone_wait_secs: 3.0,
            p99_target_ms: 250.0,
        }
    }
}

/// The per-author gossip budget the nodes run with (from `--set`, else the node default).
fn author_budget(settings: &[String]) -> u32 {
    settings
        .iter()
        .rev()
        .find_map(|s| s.strip_prefix("network.gossip_author_per_minute="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_AUTHOR_BUDGET)
}

/// Hops from `from` to every node over `edges` (None: unreachable), skipping `without`.
fn hops(
    n: usize,
    edges: &[(usize, usize)],
    from: usize,
    without: Option<usize>,
) -> Vec<Option<usize>> {
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges {
        if Some(a) != without && Some(b) != without {
            adj[a].push(b);
            adj[b].push(a);
        }
    }
    let mut dist = vec![None; n];
    dist[from] = Some(0);
    let mut queue = VecDeque::from([from]);
    while let Some(a) = queue.pop_front() {
        let d = dist[a].unwrap_or(0);
        for &b in &adj[a] {
            if dist[b].is_none() {
                dist[b] = Some(d + 1);
                queue.push_back(b);
            }
        }
    }
    dist
}

/// The node left out of the forum: not the owner's nor the moderator's, with a neighbour and
/// a node two hops or more away, and whose absence leaves the others connected (they relay
/// the forum among themselves). The highest such index.
fn pick_lone(net: &Testnet, taken: &[usize]) -> Option<usize> {
    let n = net.len();
    (1..n).rev().filter(|i| !taken.contains(i)).find(|&l| {
        let from_l = hops(n, net.edges(), l, None);
        let linked = from_l.contains(&Some(1));
        let far = from_l.iter().any(|d| d.is_some_and(|d| d >= 2));
        let start = if l == 0 { 1 } else { 0 };
        let rest = hops(n, net.edges(), start, Some(l));
        let connected = (0..n).filter(|&i| i != l).all(|i| rest[i].is_some());
        linked && far && connected
    })
}

/// Waits until both ends of every link among `nodes` saw the other subscribe to each of
/// `topics`, then for `settle`.
async fn wait_subscribed_among(
    net: &Testnet,
    topics: &[GossipTopic],
    nodes: &[usize],
    settle: Duration,
) -> anyhow::Result<()> {
    let inside: HashSet<usize> = nodes.iter().copied().collect();
    let mut wanted = Vec::new();
    for &(a, b) in net.edges() {
        if inside.contains(&a) && inside.contains(&b) {
            for t in topics {
                wanted.push((a, net.peer_id(b), t.to_string()));
                wanted.push((b, net.peer_id(a), t.to_string()));
            }
        }
    }
    let ok = net
        .wait_until(SETUP_WAIT, |l| {
            wanted.iter().all(|w| l.subscribed.contains(w))
        })
        .await;
    anyhow::ensure!(
        ok,
        "the forum's followers did not see each other subscribe to {topics:?} within {SETUP_WAIT:?}"
    );
    tokio::time::sleep(settle).await;
    Ok(())
}

/// A post in the thread (and its branch) by `key`, answering `parent` when set.
fn thread_post(
    key: &Keypair,
    text: String,
    branch: Cid,
    thread: Cid,
    reply: Option<(Cid, Cid)>,
) -> anyhow::Result<Record> {
    sign(
        Record::create(&Post {
            text,
            branch: Some(Link(branch)),
            thread: Some(Link(thread)),
            reply: reply.map(|(root, parent)| ReplyRef {
                root: Link(root),
                parent: Link(parent),
            }),
            ..Post::default()
        }),
        key,
    )
}

/// Most of `times` within any `window`.
fn most_within(times: &mut [Instant], window: Duration) -> usize {
    times.sort();
    let (mut best, mut lo) = (0, 0);
    for hi in 0..times.len() {
        while times[hi].saturating_duration_since(times[lo]) >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// Runs `discussion`.
pub async fn run(p: &Discussion) -> anyhow::Result<Report> {
    let (net, memory) = p.net.spawn(Topology::RandomRegular { degree: 4 }).await?;
    let n = net.len();
    anyhow::ensure!(n >= 4, "discussion needs at least 4 nodes");
    let budget = author_budget(&p.net.settings);

    // Who is where: the owner on node 0, the moderator halfway, one node left out of the forum.
    let (owner_node, mod_node) = (0, n / 2);
    let lone = pick_lone(&net, &[owner_node, mod_node])
        .ok_or_else(|| anyhow::anyhow!("no node can be left out of the forum in this topology"))?;
    let followers: Vec<usize> = (0..n).filter(|&i| i != lone).collect();
    let authors = p.authors.clamp(1, followers.len());
    let author_nodes: Vec<usize> = (0..authors)
        .map(|a| followers[a * followers.len() / authors])
        .collect();
    let (owner, moderator) = (net.author(0), net.author(1));
    let writers: Vec<Keypair> = (0..authors).map(|a| net.author(2 + a)).collect();
    let lone_key = net.author(2 + authors);

    // The forum (with its moderator) and a branch, published by the owner.
    let forum = sign(
        Record::create(&Forum {
            name: "Field recordings".into(),
            description: Some("Recording outdoors: gear, places, sounds.".into()),
            moderators: vec![*moderator.did()],
            ..Forum::default()
        }),
        &owner,
    )?;
    let branch = sign(
        Record::create(&Branch {
            forum: Link(forum.id()),
            name: "Gear".into(),
            description: None,
            parent: None,
            tags: vec![],
        }),
        &owner,
    )?;
    let forum_topic = GossipTopic::Forum(forum.id());
    let branch_topic = GossipTopic::Branch(branch.id());
    let lone_topic = GossipTopic::Author(*lone_key.did());

    // Every follower follows the forum's topic, nothing else; the lone node its own feed only.
    net.follow(forum_topic, followers.iter().copied()).await?;
    net.follow(lone_topic, [lone]).await?;
    wait_subscribed_among(&net, &[forum_topic], &followers, super::settle(&net)).await?;
    let setup = Instant::now();
    net.publish(owner_node, vec![forum.clone(), branch.clone()])
        .await?;
    // Storing the branch makes each follower follow it by itself.
    wait_subscribed_among(&net, &[branch_topic], &followers, super::settle(&net)).await?;
    let branch_followed = setup.elapsed();

    // The thread and its first post, in the auto-followed branch.
    let thread = sign(
        Record::create(&Thread {
            branch: Link(branch.id()),
            title: "Which recorder for the coast?".into(),
            tags: vec![],
            fork: None,
        }),
        &owner,
    )?;
    let root = thread_post(
        &owner,
        "Mine is old and hisses; what do you take to the coast?".into(),
        branch.id(),
        thread.id(),
        None,
    )?;
    let opening = vec![thread.cid(), root.cid()];
    let opened = Instant::now();
    net.publish(owner_node, vec![thread.clone(), root.clone()])
        .await?;
    let thread_everywhere = net
        .wait_until(SETUP_WAIT, |l| all_delivered(l, &opening, &followers))
        .await;
    anyhow::ensure!(
        thread_everywhere,
        "the thread did not reach every follower of the forum within {SETUP_WAIT:?}"
    );
    let thread_secs = opened.elapsed().as_secs_f64();

    // Who follows what now: the branch by itself, never an author.
    let (mut auto_followed, mut follow_authors) = (0, 0);
    for &i in &followers {
        let follows = net.node(i).repo().store().follows()?;
        if follows.contains(&branch_topic) {
            auto_followed += 1;
        }
        if follows.iter().any(|t| matches!(t, GossipTopic::Author(_))) {
            follow_authors += 1;
        }
    }
    let lone_follows = net.node(lone).repo().store().follows()?;

    // The replies: each by a round robin of the authors, answering a random earlier post.
    let publishers: Vec<Publisher> = author_nodes
        .iter()
        .map(|&i| Publisher::new(&net, i))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(net.seed() ^ 0xd15c);
    // Every post of the thread: (CID, the node of its author). Signed beforehand, published
    // at the rate.
    let mut posts: Vec<(Cid, usize)> = vec![(root.cid(), owner_node)];
    let mut parents: Vec<(Cid, usize)> = Vec::with_capacity(p.replies);
    let mut made: Vec<(Record, usize)> = Vec::with_capacity(p.replies);
    for k in 0..p.replies {
        let a = k % authors;
        let parent = posts[rng.random_range(0..posts.len())];
        let r = thread_post(
            &writers[a],
            format!(
                "Reply {k}: a small recorder in a sock does well against the wind; the \
                 hiss is the preamp, not the mics."
            ),
            branch.id(),
            thread.id(),
            Some((root.cid(), parent.0)),
        )?;
        posts.push((r.cid(), author_nodes[a]));
        parents.push(parent);
        made.push((r, a));
    }
    let start = Instant::now();
    let cids = publish_at_rate(&publishers, made.len(), p.rate, |k| {
        (made[k].1, made[k].0.clone())
    })
    .await?;
    net.wait_until(DELIVERY_WAIT, |l| all_delivered(l, &cids, &followers))
        .await;
    // A publisher holds its node's handle: let go, so that the nodes stop promptly.
    drop(publishers);
    let seconds = start.elapsed().as_secs_f64();
    let d = deliveries(&net.ledger(), &cids, &followers, start);
    let (mut answered_held, mut most_per_minute) = (0, 0);
    {
        let l = net.ledger();
        for (cid, (_, parent_node)) in cids.iter().zip(&parents) {
            if l.holds(*parent_node, cid) {
                answered_held += 1;
            }
        }
        for a in 0..authors {
            let mut times: Vec<Instant> = made
                .iter()
                .filter(|(_, by)| *by == a)
                .filter_map(|(r, _)| l.sent.get(&r.cid()).map(|s| s.1))
                .collect();
            most_per_minute = most_per_minute.max(most_within(&mut times, Duration::from_secs(60)));
        }
    }

    // Moderation: the moderator hides `hides` replies, spread over the thread.
    let k = p.hides.min(made.len());
    let targets: Vec<Cid> = (0..k).map(|j| made[j * made.len() / k].0.id()).collect();
    let hide_records: Vec<Record> = targets
        .iter()
        .map(|t| {
            sign(
                Record::create(&Moderation {
                    forum: Link(forum.id()),
                    action: ModAction::Hide,
                    target: Some(Link(*t)),
                    author: None,
                    reason: "Off topic: this thread is about recorders.".into(),
                }),
                &moderator,
            )
        })
        .collect::<anyhow::Result<_>>()?;
    let mod_pub = [Publisher::new(&net, mod_node)];
    let hide_start = Instant::now();
    let hide_cids =
        publish_at_rate(&mod_pub, k, p.hide_rate, |j| (0, hide_records[j].clone())).await?;
    net.wait_until(DELIVERY_WAIT, |l| all_delivered(l, &hide_cids, &followers))
        .await;
    drop(mod_pub);
    let hd = deliveries(&net.ledger(), &hide_cids, &followers, hide_start);
    // Per hide: from its publish to the last follower storing it.
    let mut everywhere = Vec::new();
    {
        let l = net.ledger();
        for c in &hide_cids {
            let Some(&(_, sent)) = l.sent.get(c) else {
                continue;
            };
            let mut last = Some(Duration::ZERO);
            for &i in followers.iter().filter(|&&i| i != mod_node) {
                last = match (last, l.stored.get(c).and_then(|m| m.get(&i))) {
                    (Some(t), Some(&(at, _))) => Some(t.max(at.saturating_duration_since(sent))),
                    _ => None,
                };
            }
            everywhere.extend(last);
        }
    }
    let everywhere_ms = Percentiles::of(&everywhere);
    // Where they are in force: the owner's, the moderator's, the farthest from the moderator
    // and the last follower's node, from their own stores.
    let from_mod = hops(n, net.edges(), mod_node, Some(lone));
    let farthest = followers
        .iter()
        .copied()
        .max_by_key(|&i| from_mod[i].unwrap_or(0))
        .unwrap_or(owner_node);
    let mut checked: Vec<usize> = vec![owner_node, mod_node, farthest];
    checked.extend(followers.last().copied());
    checked.sort_unstable();
    checked.dedup();
    let mut in_force = 0;
    for &i in &checked {
        let store = net.node(i).repo().store();
        let m = ForumModeration::of(store, &forum.id())
            .map_err(|e| anyhow::anyhow!("moderation on node {i}: {e}"))?;
        if let Some(m) = m {
            in_force += targets
                .iter()
                .filter(|t| m.state.hidden.contains_key(t))
                .count();
        }
    }

    // A reply to an author whose node follows nothing but that author's feed: from a node
    // linked to it, and from the farthest node.
    let from_lone = hops(n, net.edges(), lone, None);
    let near = followers
        .iter()
        .copied()
        .find(|&i| from_lone[i] == Some(1))
        .ok_or_else(|| anyhow::anyhow!("node {lone} has no neighbour"))?;
    let far = followers
        .iter()
        .copied()
        .max_by_key(|&i| from_lone[i].unwrap_or(0))
        .unwrap_or(near);
    let far_hops = from_lone[far].unwrap_or(0);
    let lone_post = thread_post(
        &lone_key,
        "I only follow myself here: a Zoom H1 in a sock, and patience.".into(),
        branch.id(),
        thread.id(),
        Some((root.cid(), root.cid())),
    )?;
    let lone_cid = lone_post.cid();
    net.publish(lone, vec![lone_post]).await?;
    let (want_sub, lone_peer) = (lone_topic.to_string(), net.peer_id(lone));
    let ready = net
        .wait_until(SETUP_WAIT, |l| {
            all_delivered(l, &[lone_cid], &followers)
                && l.subscribed.contains(&(near, lone_peer, want_sub.clone()))
        })
        .await;
    anyhow::ensure!(
        ready,
        "the lone author's post did not reach the forum's followers"
    );
    let near_reply = thread_post(
        &net.author(3 + authors),
        "Same here, and a windjammer; you answered before I followed you.".into(),
        branch.id(),
        thread.id(),
        Some((root.cid(), lone_cid)),
    )?;
    let far_reply = thread_post(
        &net.author(4 + authors),
        "From the other side of the network: which sock?".into(),
        branch.id(),
        thread.id(),
        Some((root.cid(), lone_cid)),
    )?;
    let (near_cid, far_cid) = (near_reply.cid(), far_reply.cid());
    net.publish(near, vec![near_reply]).await?;
    net.publish(far, vec![far_reply]).await?;
    net.wait_until(Duration::from_secs_f64(p.lone_wait_secs.max(0.0)), |l| {
        l.holds(lone, &near_cid) && l.holds(lone, &far_cid)
    })
    .await;
    let lone_latency = |cid: &Cid| {
        let l = net.ledger();
        let sent = l.sent.get(cid)?.1;
        let (at, via) = *l.stored.get(cid)?.get(&lone)?;
        Some((at.saturating_duration_since(sent), via))
    };
    let (near_got, far_got) = (lone_latency(&near_cid), lone_latency(&far_cid));

    let mut report = Report::new("discussion", &net, p, memory);
    report.seconds = seconds;
    report.latencies(&d.latencies);
    report.arrivals(d.arrivals.clone(), d.expected);
    report.figure("nodes following the forum", followers.len() as f64);
    report.figure(
        "of them, following the branch by themselves",
        auto_followed as f64,
    );
    report.figure("of them, following an author", follow_authors as f64);
    report.figure(
        "seconds from the forum's publish to every follower subscribed to its branch",
        branch_followed.as_secs_f64(),
    );
    report.figure("seconds until every follower held the thread", thread_secs);
    report.figure("reply authors (one node each)", authors as f64);
    report.figure("replies", cids.len() as f64);
    report.figure("replies per second", p.rate);
    report.figure(
        "most replies by one author within a minute",
        most_per_minute as f64,
    );
    report.figure(
        "gossip budget per author, topic and minute",
        f64::from(budget),
    );
    report.figure("deliveries expected", d.expected as f64);
    report.figure("deliveries", d.delivered as f64);
    report.figure("delivered by catch-up", d.via_sync as f64);
    report.figure("delivery ratio", d.ratio());
    report.figure(
        "replies held by the node of the author they answer",
        answered_held as f64,
    );
    report.figure("hides", hide_cids.len() as f64);
    report.figure("hide deliveries", hd.delivered as f64);
    report.figure("hide deliveries expected", hd.expected as f64);
    let hd_ms = Percentiles::of(&hd.latencies);
    report.figure("hide delivery p50 ms", hd_ms.p50);
    report.figure("hide delivery p99 ms", hd_ms.p99);
    report.figure("hides stored by every follower", everywhere.len() as f64);
    report.figure("hide applied everywhere p50 ms", everywhere_ms.p50);
    report.figure("hide applied everywhere p99 ms", everywhere_ms.p99);
    report.figure("hide applied everywhere max ms", everywhere_ms.max);
    report.figure("nodes checked for hides in force", checked.len() as f64);
    report.figure("hides in force on the checked nodes", in_force as f64);
    report.figure("lone node (follows only its author's feed)", lone as f64);
    report.figure("lone node follows (topics)", lone_follows.len() as f64);
    report.figure(
        "reply to a non-follower author, from a linked node: arrived",
        f64::from(u8::from(near_got.is_some())),
    );
    if let Some((t, _)) = near_got {
        report.figure(
            "reply to a non-follower author, from a linked node: ms",
            t.as_secs_f64() * 1e3,
        );
    }
    report.figure(
        "reply to a non-follower author, from the farthest node: hops",
        far_hops as f64,
    );
    report.figure(
        "reply to a non-follower author, from the farthest node: arrived",
        f64::from(u8::from(far_got.is_some())),
    );
    if let Some((t, via)) = far_got {
        report.figure(
            "reply to a non-follower author, from the farthest node: ms",
            t.as_secs_f64() * 1e3,
        );
        report.figure(
            "reply to a non-follower author, from the farthest node: by catch-up",
            f64::from(u8::from(via == mnode_node::node::Via::Sync)),
        );
    }
    report.figure(
        "seconds waited for the replies to the non-follower author",
        p.lone_wait_secs,
    );

    report.target(
        "every follower follows the branch by itself",
        auto_followed as f64,
        auto_followed == followers.len(),
    );
    report.target("delivery ratio = 1", d.ratio(), d.delivered == d.expected);
    let p99 = report.latency_ms.map_or(0.0, |l| l.p99);
    report.target(
        &format!("p99 latency ≤ {} ms", p.p99_target_ms),
        p99,
        p99 <= p.p99_target_ms,
    );
    report.target(
        "every reply held by the node of the author it answers",
        answered_held as f64,
        answered_held == cids.len(),
    );
    report.target(
        &format!("each author ≤ {budget} replies a minute (the gossip budget)"),
        most_per_minute as f64,
        most_per_minute <= budget as usize,
    );
    report.target(
        "every hide stored by every follower",
        everywhere.len() as f64,
        everywhere.len() == hide_cids.len(),
    );
    report.target(
        &format!("hide applied everywhere p99 ≤ {} ms", p.p99_target_ms),
        everywhere_ms.p99,
        everywhere.len() == hide_cids.len() && everywhere_ms.p99 <= p.p99_target_ms,
    );
    report.target(
        "every hide in force on the checked nodes",
        in_force as f64,
        in_force == checked.len() * targets.len(),
    );
    report.target(
        "a reply from a linked node reaches a non-follower author",
        f64::from(u8::from(near_got.is_some())),
        near_got.is_some(),
    );
    if d.delivered < d.expected {
        report.problems.push(format!(
            "{} of {} reply deliveries missing after {DELIVERY_WAIT:?}",
            d.expected - d.delivered,
            d.expected
        ));
    }
    report.bytes = node_bytes(&net, &Default::default()).await?;
    net.shutdown().await?;
    Ok(report)
}
