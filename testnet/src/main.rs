//! `mnode-testnet SCENARIO [options]`: runs a scenario on many real nodes in this process and
//! writes `report.json` and SVG plots. Exit status 0 when every target was met, 2 when the run
//! finished but missed one, 1 on an error.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use mnode_testnet::{Report, scenario};

#[derive(Parser)]
#[command(
    name = "mnode-testnet",
    version,
    about = "Runs mnode network scenarios on loopback and reports figures and plots"
)]
struct Cli {
    /// Folder for report.json and the plots (default: testnet-reports/<scenario>-<nodes>).
    #[arg(long, global = true)]
    out: Option<PathBuf>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Authors post at a set rate; every follower must get every post: latency percentiles.
    Propagation(scenario::propagation::Propagation),
    /// A node misses K posts to a forum branch while stopped: time and bytes to catch up.
    CatchUp(scenario::catch_up::CatchUp),
    /// One node publishes a release; all fetch it: time to the last copy, load per node.
    ReleaseSpread(scenario::release_spread::ReleaseSpread),
    /// Two halves apart while both post (forks included), then healed: time to equal heads.
    PartitionHeal(scenario::partition_heal::PartitionHeal),
    /// Nodes restart while authors post: delivery ratio and latency.
    Churn(scenario::churn::Churn),
    /// A peer floods invalid messages: honest latency vs baseline, the peer cut off.
    HostilePeer(scenario::hostile_peer::Hostile),
    /// A forum followed by its topic only: replies from many authors reach every follower and
    /// the authors they answer; a moderator's hides reach every node and apply there.
    Discussion(scenario::discussion::Discussion),
    /// Homes behind NAT routers reach each other through relays and punch holes (root only):
    /// share of connections made direct, time to direct, bytes relayed.
    Nat(scenario::nat::Nat),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,libp2p_kad=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<Report> = rt.block_on(async {
        match &cli.scenario {
            Scenario::Propagation(p) => scenario::propagation::run(p).await,
            Scenario::CatchUp(p) => scenario::catch_up::run(p).await,
            Scenario::ReleaseSpread(p) => scenario::release_spread::run(p).await,
            Scenario::PartitionHeal(p) => scenario::partition_heal::run(p).await,
            Scenario::Churn(p) => scenario::churn::run(p).await,
            Scenario::HostilePeer(p) => scenario::hostile_peer::run(p).await,
            Scenario::Discussion(p) => scenario::discussion::run(p).await,
            Scenario::Nat(p) => scenario::nat::run(p).await,
        }
    });
    drop(rt);
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let out = cli.out.unwrap_or_else(|| {
        PathBuf::from("testnet-reports").join(format!("{}-{}", report.scenario, report.nodes))
    });
    print!("{}", report.summary());
    match report.write(&out) {
        Ok(files) => {
            for f in files {
                println!("wrote {}", f.display());
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        eprintln!("{}: a target was not met (see above)", report.scenario);
        ExitCode::from(2)
    }
}
