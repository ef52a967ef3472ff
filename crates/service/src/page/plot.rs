//! The push-to-commit latency plot: an SVG drawn on the server, so the page needs no charting
//! script and works offline. Colours come from the stylesheet (classes, no inline style: the
//! page's Content-Security-Policy forbids it), so the plot follows light and dark mode.

use driftwatch_engine::store::Update;
use maud::{Markup, html};

use super::timeline::human;

/// Width and height of the drawing, in SVG units (it scales to the page's width).
const W: f64 = 640.0;
const H: f64 = 180.0;
/// Room for the axis labels on the left and below, and a margin elsewhere.
const LEFT: f64 = 64.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 12.0;
const RIGHT: f64 = 12.0;

/// One plotted update: what it was and how long from the registry push to the commit.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Shown on hover: the image and tag, and when it was committed.
    pub label: String,
    /// Push seen to commit pushed, in nanoseconds.
    pub nanos: i128,
}

/// The push-to-commit latencies of the newest `max` updates in `history` (newest first, as the
/// store returns it), oldest first. Rows whose times do not parse are left out.
pub fn latencies(history: &[Update], max: usize) -> Vec<Point> {
    let parse = |s: &str| {
        driftwatch_policy::Timestamp::parse(s)
            .ok()
            .map(driftwatch_policy::Timestamp::unix_nanos)
    };
    let mut points: Vec<Point> = history
        .iter()
        .filter_map(|u| {
            let seen = parse(&u.seen_at)?;
            let committed = parse(&u.committed_at)?;
            Some(Point {
                label: format!("{}:{} at {}", u.image, u.new, u.committed_at),
                nanos: (committed - seen).max(0),
            })
        })
        .take(max)
        .collect();
    points.reverse();
    points
}

/// The plot of `points` (oldest first), or a sentence when there is nothing to plot.
pub fn svg(points: &[Point]) -> Markup {
    if points.is_empty() {
        return html! { p.muted { "No updates recorded yet." } };
    }
    // The top of the scale: the slowest update, and never zero so the division below holds.
    let top = points
        .iter()
        .map(|p| p.nanos)
        .max()
        .unwrap_or(0)
        .max(1_000_000);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let x = |i: usize| {
        if points.len() == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (points.len() - 1) as f64
        }
    };
    let y = |n: i128| TOP + plot_h * (1.0 - n as f64 / top as f64);
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.nanos)))
        .collect();
    let summary = format!(
        "Push-to-commit latency of the last {} update(s); slowest {}",
        points.len(),
        human(top)
    );
    html! {
        svg.plot xmlns="http://www.w3.org/2000/svg" role="img" viewBox=(format!("0 0 {W} {H}"))
            aria-label=(summary) {
            title { (summary) }
            line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(H - BOTTOM) {}
            line.axis x1=(LEFT) y1=(H - BOTTOM) x2=(W - RIGHT) y2=(H - BOTTOM) {}
            line.grid x1=(LEFT) y1=(TOP) x2=(W - RIGHT) y2=(TOP) {}
            text.label x=(LEFT - 6.0) y=(TOP + 4.0) text-anchor="end" { (human(top)) }
            text.label x=(LEFT - 6.0) y=(H - BOTTOM) text-anchor="end" { "0" }
            text.label x=(LEFT) y=(H - 6.0) { "older" }
            text.label x=(W - RIGHT) y=(H - 6.0) text-anchor="end" { "newer" }
            polyline.series points=(line.join(" ")) {}
            @for (i, p) in points.iter().enumerate() {
                circle.point cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(p.nanos))) r="3.5" {
                    title { (p.label) ": " (human(p.nanos)) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(new: &str, seen: &str, committed: &str) -> Update {
        Update {
            app: "shop".into(),
            image: "reg/shop/backend".into(),
            old: "v1".into(),
            new: new.into(),
            commit: "abc".into(),
            repo: String::new(),
            branch: "main".into(),
            seen_at: seen.into(),
            decided_at: seen.into(),
            committed_at: committed.into(),
        }
    }

    #[test]
    fn latencies_oldest_first_and_bounded() {
        let history = [
            update("v3", "2026-11-02T10:02:00Z", "2026-11-02T10:02:03Z"),
            update("v2", "2026-11-02T10:01:00Z", "2026-11-02T10:01:01Z"),
            update("bad", "not a time", "2026-11-02T10:01:01Z"),
            update("v1", "2026-11-02T10:00:00Z", "2026-11-02T10:00:02Z"),
        ];
        let all = latencies(&history, 10);
        assert_eq!(
            all.iter()
                .map(|p| p.nanos / 1_000_000_000)
                .collect::<Vec<_>>(),
            [2, 1, 3]
        );
        let newest = latencies(&history, 2);
        assert!(newest[1].label.contains("v3"));
        assert_eq!(newest.len(), 2);
    }

    #[test]
    fn draws_one_point_per_update_scaled_to_the_slowest() {
        let points = [
            Point {
                label: "a:v1".into(),
                nanos: 1_000_000_000,
            },
            Point {
                label: "<script>alert(1)</script>".into(),
                nanos: 4_000_000_000,
            },
        ];
        let s = svg(&points).into_string();
        assert!(s.starts_with("<svg"), "{s}");
        assert_eq!(s.matches("<circle").count(), 2);
        // The slowest point touches the top; the first sits at a quarter of the height.
        assert!(s.contains(&format!("{:.1},{:.1}", W - RIGHT, TOP)), "{s}");
        assert!(s.contains(&format!(
            "{:.1},{:.1}",
            LEFT,
            TOP + (H - TOP - BOTTOM) * 0.75
        )));
        assert!(s.contains("4.0 s"));
        // Labels are text, never markup; and no inline style (the CSP forbids it).
        assert!(!s.contains("<script>") && s.contains("&lt;script&gt;"));
        assert!(!s.contains("style="));
    }

    #[test]
    fn nothing_to_plot_says_so() {
        assert!(svg(&[]).into_string().contains("No updates recorded yet"));
    }
}
