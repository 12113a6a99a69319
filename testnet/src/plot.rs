//! SVG plots of a report: delivery latency CDF, convergence over time, bytes per node.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use plotters::prelude::*;

use crate::report::Report;

const SIZE: (u32, u32) = (800, 480);

/// Writes the plots `report` has data for into `dir`; returns their paths.
pub fn plots(report: &Report, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let title = format!(
        "{} — {} nodes, {}",
        report.scenario, report.nodes, report.topology
    );
    if report.latency_cdf.len() > 1 {
        let path = dir.join("latency_cdf.svg");
        line_chart(
            &path,
            &format!("delivery latency CDF — {title}"),
            "latency (ms)",
            "fraction of deliveries",
            &report.latency_cdf,
        )?;
        out.push(path);
    }
    if report.convergence.len() > 1 {
        let path = dir.join("convergence.svg");
        line_chart(
            &path,
            &format!("convergence — {title}"),
            "seconds since start",
            "fraction delivered",
            &report.convergence,
        )?;
        out.push(path);
    }
    if !report.bytes.is_empty() {
        let path = dir.join("bytes_per_node.svg");
        bytes_chart(&path, &format!("bytes sent per node — {title}"), report)?;
        out.push(path);
    }
    Ok(out)
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("plot: {e}")
}

fn line_chart(
    path: &Path,
    caption: &str,
    x_desc: &str,
    y_desc: &str,
    points: &[(f64, f64)],
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let x_max = points.iter().map(|p| p.0).fold(0.0_f64, f64::max).max(1e-3) * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_max, 0.0..1.02)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            BLUE.stroke_width(2),
        ))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn bytes_chart(path: &Path, caption: &str, report: &Report) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let kib = |b: u64| b as f64 / 1024.0;
    let y_max = report
        .bytes
        .iter()
        .map(|b| kib(b.p2p_sent + b.file_bytes_served))
        .fold(0.0_f64, f64::max)
        .max(1.0)
        * 1.1;
    let n = report.bytes.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(72)
        .build_cartesian_2d((0..n).into_segmented(), 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("node")
        .y_desc("KiB sent (libp2p + files served)")
        .draw()
        .map_err(err)?;
    // Stacked: libp2p traffic, then file bytes served on top.
    chart
        .draw_series(report.bytes.iter().map(|b| {
            Rectangle::new(
                [
                    (SegmentValue::Exact(b.node), 0.0),
                    (SegmentValue::Exact(b.node + 1), kib(b.p2p_sent)),
                ],
                BLUE.mix(0.6).filled(),
            )
        }))
        .map_err(err)?
        .label("libp2p")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], BLUE.mix(0.6).filled()));
    chart
        .draw_series(report.bytes.iter().map(|b| {
            Rectangle::new(
                [
                    (SegmentValue::Exact(b.node), kib(b.p2p_sent)),
                    (
                        SegmentValue::Exact(b.node + 1),
                        kib(b.p2p_sent + b.file_bytes_served),
                    ),
                ],
                RED.mix(0.6).filled(),
            )
        }))
        .map_err(err)?
        .label("files served")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], RED.mix(0.6).filled()));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
