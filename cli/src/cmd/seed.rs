//! `mnode seed`: a deterministic demo data set from the example generator.

use super::say;
use std::process::ExitCode;

use mnode_dag::{
    Cid, Link, Record,
    cids::{self, LinkKind},
    example::ExampleGen,
    model::{
        art::Release,
        core::Profile,
        info::Context,
        social::{Branch, ForkPoint, Forum, Post, ReplyRef, Thread},
    },
};
use serde_json::json;

use super::{Ctx, runtime};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How many rounds of demo data (each: profiles, a release with files, a forum with
    /// branches and a forked thread, posts with an edit and a deletion, a fact with context).
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// Seed of the generator: the same seed and count give the same records and CIDs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Signs a body as the generator's first persona, at the generator's next tick.
fn sign<M: mnode_dag::Model>(g: &mut ExampleGen, model: &M) -> anyhow::Result<Record> {
    Ok(g.sign(Record::create(model)?)?)
}

/// One round of demo data; returns the items to pin.
fn round(g: &mut ExampleGen) -> anyhow::Result<Vec<Cid>> {
    let mut roots = Vec::new();
    for _ in 0..3 {
        roots.push(g.record::<Profile>().id());
    }
    roots.push(g.record::<Release>().id());

    // A forum with two branches, a thread of replies, and a fork of that thread.
    let forum = g.record::<Forum>();
    roots.push(forum.id());
    let mut branches = Vec::new();
    for name in ["Listening", "Making"] {
        let description = Some(g.sentence());
        let b = Branch {
            forum: Link(forum.id()),
            name: name.into(),
            description,
            parent: None,
            tags: vec!["music".into()],
        };
        branches.push(sign(g, &b)?);
    }
    let branch = Link(branches[0].id());
    roots.extend(branches.iter().map(Record::id));
    let title = g.sentence();
    let thread = sign(
        g,
        &Thread {
            branch,
            title,
            tags: vec!["music/jazz".into()],
            fork: None,
        },
    )?;
    roots.push(thread.id());
    let mut posts: Vec<Record> = Vec::new();
    for i in 0..4 {
        let reply = posts.last().map(|p| ReplyRef {
            root: Link(posts[0].id()),
            parent: Link(p.id()),
        });
        let text = g.paragraph();
        let post = Post {
            text,
            reply,
            tags: if i == 0 {
                vec!["music/jazz".into()]
            } else {
                vec![]
            },
            thread: Some(Link(thread.id())),
            branch: Some(branch),
            ..Post::default()
        };
        posts.push(sign(g, &post)?);
    }
    let title = g.sentence();
    let fork = Thread {
        branch,
        title,
        tags: vec!["music/jazz".into()],
        fork: Some(ForkPoint {
            thread: Link(thread.id()),
            post: Link(posts[1].id()),
        }),
    };
    let fork = sign(g, &fork)?;
    roots.push(fork.id());
    let text = g.paragraph();
    let in_fork = Post {
        text,
        thread: Some(Link(fork.id())),
        branch: Some(branch),
        ..Post::default()
    };
    posts.push(sign(g, &in_fork)?);

    // Posts in the author's feed, one edited and one deleted.
    let edited = g.record::<Post>();
    g.update(&edited)?;
    let deleted = g.record::<Post>();
    g.delete(&deleted)?;
    roots.extend(posts.iter().chain([&edited, &deleted]).map(Record::id));

    // A fact with community context.
    roots.push(g.record::<Context>().id());
    Ok(roots)
}

pub(crate) fn run(args: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let repo = ctx.open()?;
    let store = repo.store();
    let mut g = ExampleGen::new(args.seed);
    let mut roots = Vec::new();
    for _ in 0..args.count {
        roots.extend(round(&mut g)?);
    }
    let blocks = g.take_blocks();
    let (mut records, mut files) = (Vec::new(), Vec::new());
    for (cid, bytes) in blocks {
        match cids::link_kind(&cid) {
            LinkKind::Blob => files.push((cid, bytes)),
            _ => records.push(Record::decode_owned(bytes)?),
        }
    }
    let file_count = files.len();
    runtime()?.block_on(async {
        let blobs = super::open_blobs(&repo).await?;
        let result = async {
            for (cid, bytes) in files {
                let added = blobs.add_bytes(bytes.into()).await?;
                anyhow::ensure!(
                    added.cid == cid,
                    "generated file {cid} stored as {}",
                    added.cid
                );
            }
            anyhow::Ok(())
        }
        .await;
        blobs.shutdown().await?;
        result
    })?;
    // The generator makes versions after the versions they replace.
    let puts = store.put_batch(records)?;
    let new = puts
        .iter()
        .filter(|p| matches!(p, mnode_node::store::Put::Stored { .. }))
        .count();
    for id in &roots {
        store.pin(id, true)?;
    }
    if ctx.out.json {
        ctx.out.print_json(&json!({ "records": puts.len(), "new": new, "files": file_count, "pinned": roots.len() }))?;
    } else {
        say!(
            "seeded {} records ({new} new) and {file_count} files; pinned {} items",
            puts.len(),
            roots.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
