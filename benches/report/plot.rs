//! The SVG plots of a run, drawn with plotters' SVG backend: a latency CDF
//! per group of comparable rows (RPC round trips per size and path; broker
//! e2e per fixed rate and path), one line per transport, the y axis in
//! "nines" so the tail shows; and bars of maximum e2e throughput.

use std::collections::BTreeSet;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::model::{Record, Run};

/// One SVG written: `key` names the table section it belongs under.
pub struct Plot {
    pub key: String,
    pub file: String,
    pub title: String,
}

const EMULATED: &str = "TCG-emulated guest CPU, soft-RoCE: not a performance figure";

pub fn draw_all(run: &Run, dir: &Path) -> anyhow::Result<Vec<Plot>> {
    let mut plots = Vec::new();
    let with_cdf: Vec<&Record> = run
        .records
        .iter()
        .filter(|r| r.measured() && r.cdf.len() > 1)
        .collect();
    // Groups in the order the table shows them: by size or rate, then path
    // in the order the rows were run (loopback, veth, rdma, guest).
    let mut paths: Vec<&str> = Vec::new();
    for r in &with_cdf {
        if !paths.contains(&r.path.as_str()) {
            paths.push(&r.path);
        }
    }
    let groups: BTreeSet<(String, u64, usize)> = with_cdf
        .iter()
        .filter_map(|r| {
            let p = paths.iter().position(|p| *p == r.path)?;
            match (r.bench.as_str(), r.mode.as_deref()) {
                ("rtt", _) => Some(("rtt".to_string(), r.size?, p)),
                ("e2e", Some("latency")) => Some(("e2e".to_string(), r.rate?, p)),
                _ => None,
            }
        })
        .collect();
    for (bench, n, p) in groups {
        let path = paths[p].to_string();
        let rows: Vec<&&Record> = with_cdf
            .iter()
            .filter(|r| {
                r.bench == bench
                    && r.path == path
                    && if bench == "rtt" {
                        r.size == Some(n)
                    } else {
                        r.rate == Some(n) && r.mode.as_deref() == Some("latency")
                    }
            })
            .collect();
        let emulated = rows.iter().any(|r| r.emulated);
        let (key, mut title) = if bench == "rtt" {
            (
                format!("rtt/{n}"),
                format!("Neo RPC round trip, {n} B, {path}"),
            )
        } else {
            (
                format!("e2e/latency/{n}"),
                format!("Broker e2e latency at {n} msg/s, {path}"),
            )
        };
        if emulated {
            title = format!("{title} ({EMULATED})");
        }
        let file = format!("{bench}-{n}-{}.svg", slug(&path));
        let series: Vec<(&str, usize, &[[f64; 2]])> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.transport.as_str(), i, r.cdf.as_slice()))
            .collect();
        cdf_chart(&dir.join(&file), &title, &series)?;
        plots.push(Plot { key, file, title });
    }
    let bars: Vec<(String, usize, f64)> = run
        .records
        .iter()
        .filter(|r| r.measured() && r.bench == "e2e" && r.mode.as_deref() == Some("throughput"))
        .filter_map(|r| {
            let name = if r.emulated {
                format!("{} (TCG)", r.transport)
            } else {
                r.transport.clone()
            };
            Some((name, r.msgs_per_s?))
        })
        .enumerate()
        .map(|(i, (name, v))| (name, i, v))
        .collect();
    if !bars.is_empty() {
        let title = "Broker e2e maximum throughput, messages/s (closed loop)".to_string();
        let file = "e2e-throughput.svg".to_string();
        bar_chart(&dir.join(&file), &title, &bars)?;
        plots.push(Plot {
            key: "e2e/throughput".into(),
            file,
            title,
        });
    }
    Ok(plots)
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Strong, distinct colours (Tableau 10), one per series of a plot.
fn colour(i: usize) -> RGBAColor {
    const C: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = C[i % C.len()];
    RGBColor(r, g, b).to_rgba()
}

/// Percentile → "nines": 90 % → 1, 99 % → 2, 99.9 % → 3.
fn nines(p: f64) -> f64 {
    -(1.0 - p / 100.0).log10()
}

fn pct_label(v: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-v));
    let s = format!("{p:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

fn axis_us(v: f64) -> String {
    if v < 10.0 && v != v.round() {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// 1-2-5 ticks per decade between `lo` and `hi` (a log axis alone labels
/// only powers of ten, so a range inside one decade would have none).
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut t = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let v = m * decade;
            if v >= lo && v <= hi {
                t.push(v);
            }
        }
        decade *= 10.0;
    }
    t
}

fn cdf_chart(
    file: &Path,
    title: &str,
    series: &[(&str, usize, &[[f64; 2]])],
) -> anyhow::Result<()> {
    // The maximum (100 %) has no finite place on a nines axis.
    let pts: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|(_, _, c)| {
            c.iter()
                .filter(|p| p[0] < 99.9999 && p[1] > 0.0)
                .map(|p| (p[1], nines(p[0])))
                .collect()
        })
        .collect();
    let xs = pts.iter().flatten().map(|p| p.0);
    let lo = xs.clone().fold(f64::INFINITY, f64::min);
    let hi = xs.fold(0.0, f64::max);
    if !lo.is_finite() || hi <= 0.0 {
        anyhow::bail!("no points to plot in {}", file.display());
    }
    let top = pts.iter().flatten().map(|p| p.1).fold(1.0, f64::max).ceil();
    let root = SVGBackend::new(file, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 17))
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(72)
        .build_cartesian_2d(
            (lo * 0.8..hi * 1.25)
                .log_scale()
                .with_key_points(ticks(lo * 0.8, hi * 1.25)),
            0f64..top,
        )?;
    chart
        .configure_mesh()
        .x_desc("latency, µs (log scale)")
        .y_desc("percentile")
        .y_labels(top as usize + 1)
        .y_label_formatter(&|v| pct_label(*v))
        .x_label_formatter(&|v| axis_us(*v))
        .draw()?;
    for ((name, i, _), p) in series.iter().zip(pts) {
        let color = colour(*i);
        chart
            .draw_series(LineSeries::new(p, color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn bar_chart(file: &Path, title: &str, bars: &[(String, usize, f64)]) -> anyhow::Result<()> {
    let n = bars.len() as i32;
    let max = bars.iter().map(|b| b.2).fold(1.0, f64::max);
    let root = SVGBackend::new(file, (900, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 17))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((0..n - 1).into_segmented(), 0f64..max * 1.15)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(bars.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => {
                bars.get(*i as usize).map_or(String::new(), |b| b.0.clone())
            }
            _ => String::new(),
        })
        .y_desc("messages/s")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let i = i as i32;
        let mut r = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), b.2),
            ],
            colour(b.1).filled(),
        );
        r.set_margin(0, 0, 12, 12);
        r
    }))?;
    let label = ("sans-serif", 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        Text::new(
            format!("{:.0}", b.2),
            (SegmentValue::CenterOf(i as i32), b.2 * 1.01),
            label.clone(),
        )
    }))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes() {
        assert_eq!(ticks(1800.0, 9000.0), vec![2000.0, 5000.0]);
        assert_eq!(ticks(3.0, 120.0), vec![5.0, 10.0, 20.0, 50.0, 100.0]);
        assert!((nines(99.9) - 3.0).abs() < 1e-9);
        assert_eq!(pct_label(2.0), "99%");
        assert_eq!(pct_label(0.0), "0%");
    }
}
