//! Who connects to whom: the shapes a testnet can take, drawn from a seed.

use std::{collections::HashSet, fmt, str::FromStr};

use rand::{RngExt as _, SeedableRng as _, rngs::ChaCha8Rng};
use serde::Serialize;

/// The shape of a testnet. Every shape is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    /// 0 – 1 – 2 – … – n-1.
    Line,
    /// A line whose ends meet.
    Ring,
    /// Node 0 in the middle, every other node linked to it only.
    Star,
    /// A random graph in which every node has `degree` links (one fewer for one node when
    /// `n × degree` is odd).
    RandomRegular {
        /// Links per node.
        degree: usize,
    },
    /// Two halves, each a random regular graph, joined by `bridges` links.
    TwoClusters {
        /// Links per node inside a cluster.
        degree: usize,
        /// Links between the clusters.
        bridges: usize,
    },
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line => f.write_str("line"),
            Self::Ring => f.write_str("ring"),
            Self::Star => f.write_str("star"),
            Self::RandomRegular { degree } => write!(f, "regular:{degree}"),
            Self::TwoClusters { degree, bridges } => write!(f, "clusters:{degree}:{bridges}"),
        }
    }
}

/// A topology name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown topology {0:?}: use line, ring, star, regular[:DEGREE] or clusters[:DEGREE[:BRIDGES]]"
)]
pub struct TopologyError(String);

impl FromStr for Topology {
    type Err = TopologyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || TopologyError(s.to_owned());
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or_default();
        let mut num = |default: usize| -> Result<usize, TopologyError> {
            match parts.next() {
                None => Ok(default),
                Some(p) => p.parse().ok().filter(|&n| n > 0).ok_or_else(err),
            }
        };
        let t = match name {
            "line" => Self::Line,
            "ring" => Self::Ring,
            "star" => Self::Star,
            "regular" | "random-regular" => Self::RandomRegular { degree: num(4)? },
            "clusters" | "two-clusters" => Self::TwoClusters {
                degree: num(3)?,
                bridges: num(1)?,
            },
            _ => return Err(err()),
        };
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(t)
    }
}

impl Topology {
    /// The links of an `n`-node testnet, each `(a, b)` with `a < b`, sorted. The same `seed`
    /// gives the same graph.
    pub fn edges(&self, n: usize, seed: u64) -> Vec<(usize, usize)> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut edges: HashSet<(usize, usize)> = match *self {
            Self::Line => (1..n).map(|i| (i - 1, i)).collect(),
            Self::Ring => {
                let mut e: HashSet<_> = (1..n).map(|i| (i - 1, i)).collect();
                if n > 2 {
                    e.insert((0, n - 1));
                }
                e
            }
            Self::Star => (1..n).map(|i| (0, i)).collect(),
            Self::RandomRegular { degree } => {
                regular(&(0..n).collect::<Vec<_>>(), degree, &mut rng)
            }
            Self::TwoClusters { degree, bridges } => {
                let half = n / 2;
                let left: Vec<usize> = (0..half).collect();
                let right: Vec<usize> = (half..n).collect();
                let mut e = regular(&left, degree, &mut rng);
                e.extend(regular(&right, degree, &mut rng));
                if !left.is_empty() && !right.is_empty() {
                    let wanted = bridges.min(left.len() * right.len());
                    let mut added = 0;
                    while added < wanted {
                        let a = left[rng.random_range(0..left.len())];
                        let b = right[rng.random_range(0..right.len())];
                        if e.insert((a, b)) {
                            added += 1;
                        }
                    }
                }
                e
            }
        };
        edges.retain(|(a, b)| a != b);
        let mut edges: Vec<_> = edges.into_iter().collect();
        edges.sort_unstable();
        edges
    }

    /// For [`Topology::TwoClusters`], which side node `i` of `n` is on (0 or 1); the first half
    /// and the second half otherwise.
    pub fn side(n: usize, i: usize) -> usize {
        usize::from(i >= n / 2)
    }
}

/// A random regular graph on `nodes`: stubs paired at random (Steger–Wormald), redrawn until
/// the graph is simple and connected.
fn regular(nodes: &[usize], degree: usize, rng: &mut ChaCha8Rng) -> HashSet<(usize, usize)> {
    let n = nodes.len();
    if n < 2 {
        return HashSet::new();
    }
    let degree = degree.clamp(1, n - 1);
    for _ in 0..1000 {
        let mut stubs: Vec<usize> = nodes
            .iter()
            .flat_map(|&v| std::iter::repeat_n(v, degree))
            .collect();
        if stubs.len() % 2 == 1 {
            stubs.pop();
        }
        let mut edges = HashSet::new();
        let mut stuck = false;
        while !stubs.is_empty() {
            let mut paired = false;
            for _ in 0..200 {
                let (i, j) = (
                    rng.random_range(0..stubs.len()),
                    rng.random_range(0..stubs.len()),
                );
                let (a, b) = (stubs[i].min(stubs[j]), stubs[i].max(stubs[j]));
                if a != b && !edges.contains(&(a, b)) {
                    edges.insert((a, b));
                    stubs.swap_remove(i.max(j));
                    stubs.swap_remove(i.min(j));
                    paired = true;
                    break;
                }
            }
            if !paired {
                stuck = true;
                break;
            }
        }
        if !stuck && connected(nodes, &edges) {
            return edges;
        }
    }
    // Degree 1 (or an unlucky seed): a ring through the nodes is connected and close.
    (0..n)
        .map(|i| {
            let (a, b) = (nodes[i], nodes[(i + 1) % n]);
            (a.min(b), a.max(b))
        })
        .collect()
}

fn connected(nodes: &[usize], edges: &HashSet<(usize, usize)>) -> bool {
    let Some(&first) = nodes.first() else {
        return true;
    };
    let mut seen = HashSet::from([first]);
    let mut stack = vec![first];
    while let Some(v) = stack.pop() {
        for &(a, b) in edges {
            let w = if a == v {
                b
            } else if b == v {
                a
            } else {
                continue;
            };
            if seen.insert(w) {
                stack.push(w);
            }
        }
    }
    seen.len() == nodes.len()
}

/// Hops from `from` to every node (`usize::MAX` where unreachable).
pub fn hops(n: usize, edges: &[(usize, usize)], from: usize) -> Vec<usize> {
    let mut dist = vec![usize::MAX; n];
    if from >= n {
        return dist;
    }
    dist[from] = 0;
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(v) = queue.pop_front() {
        for &(a, b) in edges {
            let w = if a == v {
                b
            } else if b == v {
                a
            } else {
                continue;
            };
            if dist[w] == usize::MAX {
                dist[w] = dist[v] + 1;
                queue.push_back(w);
            }
        }
    }
    dist
}

#[cfg(test)]
mod tests {
    use super::*;

    fn degrees(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
        let mut d = vec![0; n];
        for &(a, b) in edges {
            d[a] += 1;
            d[b] += 1;
        }
        d
    }

    #[test]
    fn shapes_have_the_links_they_promise() {
        assert_eq!(Topology::Line.edges(4, 1), vec![(0, 1), (1, 2), (2, 3)]);
        assert_eq!(
            Topology::Ring.edges(4, 1),
            vec![(0, 1), (0, 3), (1, 2), (2, 3)]
        );
        assert_eq!(Topology::Star.edges(4, 1), vec![(0, 1), (0, 2), (0, 3)]);
        for (n, k) in [(10, 3), (50, 4), (100, 6), (7, 3)] {
            let e = Topology::RandomRegular { degree: k }.edges(n, 9);
            let d = degrees(n, &e);
            assert!(d.iter().all(|&x| x == k || x == k - 1), "{n} {k}: {d:?}");
            assert_eq!(d.iter().filter(|&&x| x != k).count(), (n * k) % 2);
            assert!(hops(n, &e, 0).iter().all(|&h| h != usize::MAX));
        }
    }

    #[test]
    fn two_clusters_meet_only_at_their_bridges() {
        let t = Topology::TwoClusters {
            degree: 3,
            bridges: 2,
        };
        let e = t.edges(20, 3);
        let across = e
            .iter()
            .filter(|&&(a, b)| Topology::side(20, a) != Topology::side(20, b))
            .count();
        assert_eq!(across, 2);
        assert!(hops(20, &e, 0).iter().all(|&h| h != usize::MAX));
    }

    #[test]
    fn same_seed_same_graph_and_names_round_trip() {
        let t = Topology::RandomRegular { degree: 4 };
        assert_eq!(t.edges(30, 5), t.edges(30, 5));
        assert_ne!(t.edges(30, 5), t.edges(30, 6));
        for s in ["line", "ring", "star", "regular:4", "clusters:3:1"] {
            assert_eq!(s.parse::<Topology>().map(|t| t.to_string()), Ok(s.into()));
        }
        assert!("mesh".parse::<Topology>().is_err());
        assert!("regular:0".parse::<Topology>().is_err());
        assert!("line:2".parse::<Topology>().is_err());
    }
}
