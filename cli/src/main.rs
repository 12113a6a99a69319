//! `mnode`: the command-line tool.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

mod cmd;

/// jemalloc for the whole process, RocksDB included: it hands memory back to the system after a
/// burst (background threads purge unused pages), where glibc's per-thread arenas kept it.
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// mnode: a peer-to-peer, content-addressed node for publishing and discussing creative work.
#[derive(Debug, Parser)]
#[command(name = "mnode", version, about, long_about = None)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// The repo folder (default: $MNODE_REPO, else ~/.mnode).
    #[arg(long, global = true, value_name = "DIR")]
    repo: Option<PathBuf>,

    /// Act as this account (default: the node's owner).
    #[arg(long = "as", global = true, value_name = "HANDLE")]
    as_handle: Option<String>,

    /// Override a setting of mnode.yaml for this run, as in `-c store.cache_mb=128`.
    #[arg(short = 'c', long = "config", global = true, value_name = "KEY=VALUE")]
    config: Vec<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a repo: node key, config, owner account.
    Init(cmd::init::Args),
    /// Run the node: peer-to-peer network, file transfers and the HTTP API, until Ctrl-C.
    Daemon,
    /// Show the node's identity (and, when a daemon runs, its addresses).
    Id,
    /// List connected peers (needs a running daemon).
    Peers,
    /// Connect to a peer by multiaddr (needs a running daemon).
    Connect(cmd::net::ConnectArgs),
    /// Follow an author's feed, a forum branch, a thread or a group: subscribe, catch up, keep.
    Follow(cmd::net::FollowArgs),
    /// Stop following.
    Unfollow(cmd::net::FollowArgs),
    /// List what the node follows.
    Follows,
    /// Post a short text (to a feed, a branch or a thread).
    Post(cmd::net::PostArgs),
    /// Fetch a file from peers into the node (needs a running daemon).
    Fetch(cmd::net::FetchArgs),
    /// Show an author's feed, newest first (default: the acting account's).
    Feed(cmd::discuss::FeedArgs),
    /// Show what the acting account follows, with its own posts, newest first.
    Timeline(cmd::discuss::TimelineArgs),
    /// Create, list, show and follow forums, and add branches to them.
    #[command(subcommand)]
    Forum(cmd::discuss::ForumCommand),
    /// Start, show and fork threads in forum branches.
    #[command(subcommand)]
    Thread(cmd::discuss::ThreadCommand),
    /// Reply to a post (in its thread, when it is in one).
    Reply(cmd::discuss::ReplyArgs),
    /// Record facts with their sources; show one with the facts under it and its context.
    #[command(subcommand)]
    Fact(cmd::discuss::FactCommand),
    /// Attach a context note, with sources, to any record.
    #[command(subcommand)]
    Context(cmd::discuss::ContextCommand),
    /// Moderate a forum: hide or show again a post or thread, ban or let back an author.
    #[command(subcommand)]
    Mod(cmd::text::ModCommand),
    /// Write, edit and export rich-text documents as Markdown.
    #[command(subcommand)]
    Text(cmd::text::TextCommand),
    /// Manage the accounts this node hosts.
    #[command(subcommand)]
    Account(cmd::account::Command),
    /// Make groups whose members co-edit what the group owns; add, remove and re-role members.
    #[command(subcommand)]
    Group(cmd::group::Command),
    /// Send direct messages and read your conversations (only their recipients can read them).
    #[command(subcommand)]
    Message(cmd::message::Command),
    /// Show the settings in effect: mnode.yaml with MNODE_* variables and -c applied.
    #[command(subcommand)]
    Config(cmd::config::Command),
    /// Create, version, delete, show and list records of any registered kind.
    #[command(subcommand)]
    Record(cmd::record::Command),
    /// Run a widget query, as in `mnode query "art.artists.list()"`.
    Query(cmd::record::QueryArgs),
    /// Add files and folders to the blob store, with a record for each file.
    Add(cmd::files::AddArgs),
    /// Write a file from the blob store to disk.
    Get(cmd::files::GetArgs),
    /// Print a file (or a byte range of it) to standard output.
    Cat(cmd::files::CatArgs),
    /// Publish a folder as a release: its files, their records and the release record.
    #[command(subcommand)]
    Publish(cmd::files::PublishCommand),
    /// Work with raw IPLD blocks and CAR files.
    #[command(subcommand)]
    Dag(cmd::dag::Command),
    /// Keep records and files from garbage collection.
    #[command(subcommand)]
    Pin(cmd::pin::Command),
    /// Maintain the repo: statistics, verification, garbage collection.
    #[command(subcommand)]
    Repo(cmd::repo::Command),
    /// Fill the repo with a deterministic demo data set.
    Seed(cmd::seed::Args),
    /// List the registered record kinds.
    Types(cmd::types::Args),
    /// Print a signed example record of a kind (and optionally write its whole DAG as a CAR).
    Example(cmd::example::Args),
    /// Verify a CAR file: every block's hash, every record's encoding, signature and chain.
    Verify(cmd::verify::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = cmd::Output { json: cli.json };
    let ctx = cmd::Ctx {
        repo: cli.repo,
        as_handle: cli.as_handle,
        config: cli.config,
        out,
    };
    let result = match cli.command {
        Command::Init(args) => cmd::init::run(args, &ctx),
        Command::Daemon => cmd::daemon::run(&ctx),
        Command::Id => cmd::init::id(&ctx),
        Command::Peers => cmd::net::peers(&ctx),
        Command::Connect(args) => cmd::net::connect(args, &ctx),
        Command::Follow(args) => cmd::net::follow(args, true, &ctx),
        Command::Unfollow(args) => cmd::net::follow(args, false, &ctx),
        Command::Follows => cmd::net::follows(&ctx),
        Command::Post(args) => cmd::net::post(args, &ctx),
        Command::Fetch(args) => cmd::net::fetch(args, &ctx),
        Command::Feed(args) => cmd::discuss::feed(args, &ctx),
        Command::Timeline(args) => cmd::discuss::timeline(args, &ctx),
        Command::Forum(c) => cmd::discuss::forum(c, &ctx),
        Command::Thread(c) => cmd::discuss::thread(c, &ctx),
        Command::Reply(args) => cmd::discuss::reply(args, &ctx),
        Command::Fact(c) => cmd::discuss::fact(c, &ctx),
        Command::Context(c) => cmd::discuss::context(c, &ctx),
        Command::Mod(c) => cmd::text::moderate(c, &ctx),
        Command::Text(c) => cmd::text::text(c, &ctx),
        Command::Account(c) => cmd::account::run(c, &ctx),
        Command::Group(c) => cmd::group::run(c, &ctx),
        Command::Message(c) => cmd::message::run(c, &ctx),
        Command::Config(c) => cmd::config::run(c, &ctx),
        Command::Record(c) => cmd::record::run(c, &ctx),
        Command::Query(args) => cmd::record::query(args, &ctx),
        Command::Add(args) => cmd::files::add(args, &ctx),
        Command::Get(args) => cmd::files::get(args, &ctx),
        Command::Cat(args) => cmd::files::cat(args, &ctx),
        Command::Publish(c) => cmd::files::publish(c, &ctx),
        Command::Dag(c) => cmd::dag::run(c, &ctx),
        Command::Pin(c) => cmd::pin::run(c, &ctx),
        Command::Repo(c) => cmd::repo::run(c, &ctx),
        Command::Seed(args) => cmd::seed::run(args, &ctx),
        Command::Types(args) => cmd::types::run(args, out),
        Command::Example(args) => cmd::example::run(args, out),
        Command::Verify(args) => cmd::verify::run(args, out),
    };
    match result {
        Ok(code) => code,
        Err(e) if cmd::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            if out.json {
                // The API's code when the API refused; `error` for what the CLI refused itself.
                let code = e
                    .chain()
                    .find_map(
                        |c| match c.downcast_ref::<mnode_api::client::ClientError>() {
                            Some(mnode_api::client::ClientError::Api(api)) => Some(api.code),
                            _ => None,
                        },
                    )
                    .unwrap_or("error");
                let msg =
                    serde_json::json!({ "error": { "code": code, "message": format!("{e:#}") } });
                cmd::say!("{msg}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
