//! What a scenario found: figures, targets met or not, and the series behind the plots,
//! written as `report.json` next to SVG plots.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use serde::Serialize;

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// How many samples.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of `samples` (any order).
    pub fn of(samples: &[Duration]) -> Self {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        Self {
            count: ms.len(),
            p50: quantile(&ms, 0.5),
            p90: quantile(&ms, 0.9),
            p99: quantile(&ms, 0.99),
            max: ms.last().copied().unwrap_or(0.0),
        }
    }
}

/// The `q` quantile of sorted `v` (nearest rank).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// A target of the scenario and whether this run met it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// What is wanted, in words (`p99 ≤ 250 ms`).
    pub name: String,
    /// The value this run measured.
    pub value: f64,
    /// Whether it is met.
    pub met: bool,
}

/// What one node sent and served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NodeBytes {
    /// The node.
    pub node: usize,
    /// libp2p bytes sent (gossip, catch-up, Bitswap, DHT, …).
    pub p2p_sent: u64,
    /// libp2p bytes received.
    pub p2p_received: u64,
    /// File bytes it served to other nodes (iroh-blobs).
    pub file_bytes_served: u64,
}

/// A scenario's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// Nodes in the testnet.
    pub nodes: usize,
    /// Its topology.
    pub topology: String,
    /// Its links.
    pub links: usize,
    /// The seed.
    pub seed: u64,
    /// The scenario's parameters.
    pub params: serde_json::Value,
    /// Wall time of the measured part, in seconds.
    pub seconds: f64,
    /// Named figures.
    pub figures: BTreeMap<String, f64>,
    /// Delivery latency from publish to each follower, if the scenario measures it.
    pub latency_ms: Option<Percentiles>,
    /// The targets and whether they were met.
    pub targets: Vec<Target>,
    /// Latency CDF: (ms, fraction of deliveries at most that late).
    pub latency_cdf: Vec<(f64, f64)>,
    /// Convergence: (seconds since the start, fraction of what should arrive that arrived).
    pub convergence: Vec<(f64, f64)>,
    /// Bytes per node.
    pub bytes: Vec<NodeBytes>,
    /// Resident memory of the process once the nodes ran, and per node.
    pub memory: Memory,
    /// Problems noticed (lost records, missing deliveries), empty when none.
    pub problems: Vec<String>,
}

/// Memory use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// RSS with every node running, bytes: of this process, or with daemon processes the sum
    /// of theirs.
    pub rss_bytes: u64,
    /// Per node: the growth of this process's RSS from before the first node, divided by the
    /// nodes; or with daemon processes their mean RSS.
    pub per_node_bytes: u64,
}

impl Report {
    /// An empty report for `scenario` run on a testnet of this shape.
    pub fn new(
        scenario: &str,
        net: &crate::Testnet,
        params: impl Serialize,
        memory: Memory,
    ) -> Self {
        Self {
            seed: net.seed(),
            ..Self::bare(
                scenario,
                net.len(),
                &net.topology().to_string(),
                net.edges().len(),
                params,
                memory,
            )
        }
    }

    /// An empty report for `scenario` run on `nodes` nodes not made by [`crate::Testnet`]
    /// (in network namespaces, say): `shape` says how they are arranged, `links` how many
    /// links there are.
    pub fn bare(
        scenario: &str,
        nodes: usize,
        shape: &str,
        links: usize,
        params: impl Serialize,
        memory: Memory,
    ) -> Self {
        Self {
            scenario: scenario.to_owned(),
            nodes,
            topology: shape.to_owned(),
            links,
            seed: 0,
            params: serde_json::to_value(params).unwrap_or_default(),
            seconds: 0.0,
            figures: BTreeMap::new(),
            latency_ms: None,
            targets: Vec::new(),
            latency_cdf: Vec::new(),
            convergence: Vec::new(),
            bytes: Vec::new(),
            memory,
            problems: Vec::new(),
        }
    }

    /// Records a figure.
    pub fn figure(&mut self, name: &str, value: f64) {
        self.figures.insert(name.to_owned(), value);
    }

    /// Records a target.
    pub fn target(&mut self, name: &str, value: f64, met: bool) {
        self.targets.push(Target {
            name: name.to_owned(),
            value,
            met,
        });
    }

    /// Sets the latency percentiles and CDF from `samples`.
    pub fn latencies(&mut self, samples: &[Duration]) {
        self.latency_ms = Some(Percentiles::of(samples));
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        // At most ~500 points: enough for a smooth curve, small in JSON.
        let step = (ms.len() / 500).max(1);
        let n = ms.len() as f64;
        self.latency_cdf = ms
            .iter()
            .enumerate()
            .filter(|(i, _)| i % step == 0 || *i + 1 == ms.len())
            .map(|(i, &v)| (v, (i + 1) as f64 / n))
            .collect();
    }

    /// Sets the convergence curve from arrival times (seconds since the start) out of
    /// `expected` arrivals.
    pub fn arrivals(&mut self, mut at: Vec<f64>, expected: usize) {
        at.sort_by(f64::total_cmp);
        let step = (at.len() / 500).max(1);
        let n = expected.max(1) as f64;
        let mut curve = vec![(0.0, 0.0)];
        curve.extend(
            at.iter()
                .enumerate()
                .filter(|(i, _)| i % step == 0 || *i + 1 == at.len())
                .map(|(i, &t)| (t, (i + 1) as f64 / n)),
        );
        self.convergence = curve;
    }

    /// Whether every target was met and nothing went wrong.
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && self.targets.iter().all(|t| t.met)
    }

    /// Writes `report.json` and the plots into `dir`; returns the files written.
    pub fn write(&self, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let json = dir.join("report.json");
        std::fs::write(&json, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("write {}", json.display()))?;
        let mut files = vec![json];
        files.extend(crate::plot::plots(self, dir)?);
        Ok(files)
    }

    /// A few lines for a terminal.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} nodes, {} ({} links), seed {}, {:.2} s\n",
            self.scenario, self.nodes, self.topology, self.links, self.seed, self.seconds
        );
        if let Some(l) = &self.latency_ms {
            s += &format!(
                "  latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}  ({} deliveries)\n",
                l.p50, l.p90, l.p99, l.max, l.count
            );
        }
        for (k, v) in &self.figures {
            s += &format!("  {k}: {}\n", fmt_num(*v));
        }
        for t in &self.targets {
            s += &format!(
                "  target {}: {} {}\n",
                t.name,
                fmt_num(t.value),
                if t.met { "met" } else { "NOT MET" }
            );
        }
        if self.memory.rss_bytes > 0 {
            s += &format!(
                "  memory: {:.0} MiB resident, {:.1} MiB per node\n",
                self.memory.rss_bytes as f64 / 1048576.0,
                self.memory.per_node_bytes as f64 / 1048576.0
            );
        }
        for p in &self.problems {
            s += &format!("  problem: {p}\n");
        }
        s
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}
