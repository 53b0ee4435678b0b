//! PNG figures with `plotters`' bitmap backend. Text is drawn by `ab_glyph` with DejaVu
//! Sans from the `dejavu` crate, so nothing is read from the system (no fontconfig or
//! FreeType).
//!
//! plotters draws into an RGB buffer and [`encode_png`] writes it (zlib through
//! `miniz_oxide`, CRC through `crc32fast`, both already built for burn with the same
//! features). plotters' own encoder would bring the `image` and `png` crates, whose
//! `simd-adler32` features differ from burn's graph: every build with and without this
//! crate would then compile burn twice.
//!
//! A figure is a row of panels: line charts (pass@k against k, with error bars) and
//! grouped bar charts (one group per category, one bar per series, with error bars).

use std::path::Path;
use std::sync::Once;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Series colours (matplotlib's tab10).
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// The colour of series `i`.
pub fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font("sans-serif", style, dejavu::sans::regular())
                .unwrap_or_else(|_| panic!("DejaVu Sans from the dejavu crate is a valid font"));
        }
    });
}

/// One line of a line chart.
#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    /// Half-height of an error bar at each point (e.g. the std over seeds).
    pub err: Option<Vec<f64>>,
    pub dashed: bool,
    /// Index into the colour cycle (black when `None`).
    pub color: Option<usize>,
}

/// One series of a grouped bar chart: a value (and error) per category.
#[derive(Debug, Clone)]
pub struct BarSeries {
    pub label: String,
    pub values: Vec<f64>,
    pub err: Option<Vec<f64>>,
}

/// One panel of a figure.
#[derive(Debug, Clone)]
pub enum Panel {
    Lines {
        title: String,
        x_label: String,
        y_label: String,
        /// Plot `log2(x)`, labelled with `x` (for k = 1, 2, 4, 8, …).
        log2_x: bool,
        lines: Vec<Line>,
    },
    Bars {
        title: String,
        y_label: String,
        categories: Vec<String>,
        series: Vec<BarSeries>,
    },
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing the plot: {e:?}")
}

/// Lower and upper bound of `values ± errors` with a margin, including `extra`.
fn y_range(points: impl Iterator<Item = (f64, f64)>, extra: &[f64]) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (v, e) in points {
        if v.is_finite() {
            lo = lo.min(v - e.abs());
            hi = hi.max(v + e.abs());
        }
    }
    for &v in extra {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.08 } else { 0.01 };
    // bars of non-negative values start at the axis
    let low = if lo >= 0.0 && extra.contains(&0.0) {
        0.0
    } else {
        lo - pad
    };
    (low, hi + pad)
}

/// Decimals that tell the y ticks of a span apart (2 to 6).
fn decimals(y0: f64, y1: f64) -> usize {
    let span = (y1 - y0).abs();
    if span <= 0.0 || !span.is_finite() {
        return 2;
    }
    ((-span.log10()).ceil() as i64 + 1).clamp(2, 6) as usize
}

/// Writes `panels` side by side into a PNG of `width × height` pixels, with a title.
pub fn figure(
    path: &Path,
    title: &str,
    width: u32,
    height: u32,
    panels: &[Panel],
) -> anyhow::Result<()> {
    register_font();
    let mut rgb = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root
            .titled(title, ("sans-serif", 22).into_font())
            .map_err(err)?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (panel, area) in panels.iter().zip(&areas) {
            match panel {
                Panel::Lines {
                    title,
                    x_label,
                    y_label,
                    log2_x,
                    lines,
                } => draw_lines(area, title, x_label, y_label, *log2_x, lines)?,
                Panel::Bars {
                    title,
                    y_label,
                    categories,
                    series,
                } => draw_bars(area, title, y_label, categories, series)?,
            }
        }
        root.present().map_err(err)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, encode_png(width, height, &rgb))
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))
}

/// A PNG of 8-bit RGB pixels (`rgb`: rows top to bottom, 3 bytes a pixel): signature,
/// `IHDR`, one zlib-compressed `IDAT` of the rows (filter type 0 each), `IEND`.
pub fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let stride = width as usize * 3;
    assert_eq!(rgb.len(), stride * height as usize, "RGB buffer size");
    let mut raw = Vec::with_capacity((stride + 1) * height as usize);
    for row in rgb.chunks(stride.max(1)) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(
        &mut out,
        b"IDAT",
        &miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6),
    );
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// Length, type, data, CRC-32 of type and data.
fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    out.extend_from_slice(&h.finalize().to_be_bytes());
}

fn draw_lines(
    area: &DrawingArea<BitMapBackend, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    log2_x: bool,
    lines: &[Line],
) -> anyhow::Result<()> {
    let tx = |x: f64| if log2_x { x.log2() } else { x };
    let xs: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.xs.iter().map(|&x| tx(x)))
        .collect();
    let (x0, x1) = (
        xs.iter().copied().fold(f64::INFINITY, f64::min),
        xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let (x0, x1) = if x0.is_finite() { (x0, x1) } else { (0.0, 1.0) };
    let xpad = ((x1 - x0) * 0.05).max(0.1);
    let (y0, y1) = y_range(
        lines.iter().flat_map(|l| {
            l.ys.iter().enumerate().map(|(i, &y)| {
                (
                    y,
                    l.err
                        .as_ref()
                        .and_then(|e| e.get(i).copied())
                        .unwrap_or(0.0),
                )
            })
        }),
        &[],
    );
    let ticks: Vec<f64> = {
        let mut t: Vec<f64> = lines.iter().flat_map(|l| l.xs.clone()).collect();
        t.sort_by(|a, b| a.total_cmp(b));
        t.dedup();
        t
    };
    // as many labels as x values: for k = 1, 2, 4, 8 (log2: 0..3) plotters then puts its
    // ticks on the integers, which the formatter names; other positions stay unlabelled
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((x0 - xpad)..(x1 + xpad), y0..y1)
        .map_err(err)?;
    let x_fmt = |v: &f64| {
        // label only the x values that occur (k = 1, 2, 4, 8)
        match ticks.iter().find(|&&t| (tx(t) - v).abs() < 1e-6) {
            Some(t) => format!("{t}"),
            None => String::new(),
        }
    };
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_labels(ticks.len())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&|v| format!("{v:.*}", decimals(y0, y1)))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    for line in lines {
        let c: RGBColor = line.color.map(color).unwrap_or(BLACK);
        let pts: Vec<(f64, f64)> = line
            .xs
            .iter()
            .zip(&line.ys)
            .map(|(&x, &y)| (tx(x), y))
            .collect();
        let style = c.stroke_width(2);
        let drawn = if line.dashed {
            chart.draw_series(DashedLineSeries::new(pts.clone(), 8, 5, style))
        } else {
            chart.draw_series(LineSeries::new(pts.clone(), style))
        }
        .map_err(err)?;
        drawn
            .label(line.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
            .map_err(err)?;
        if let Some(e) = &line.err {
            chart
                .draw_series(pts.iter().zip(e).map(|(&(x, y), &e)| {
                    ErrorBar::new_vertical(x, y - e, y, y + e, c.stroke_width(1), 8)
                }))
                .map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn draw_bars(
    area: &DrawingArea<BitMapBackend, Shift>,
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[BarSeries],
) -> anyhow::Result<()> {
    let (y0, y1) = y_range(
        series.iter().flat_map(|s| {
            s.values.iter().enumerate().map(|(i, &v)| {
                (
                    v,
                    s.err
                        .as_ref()
                        .and_then(|e| e.get(i).copied())
                        .unwrap_or(0.0),
                )
            })
        }),
        &[0.0],
    );
    let n = categories.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), y0..y1)
        .map_err(err)?;
    let cats = categories.to_vec();
    let x_fmt = move |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 {
            cats.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .y_desc(y_label)
        .x_labels(n)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&|v| format!("{v:.*}", decimals(y0, y1)))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .disable_x_mesh()
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    // zero line
    chart
        .draw_series(LineSeries::new(
            vec![(-0.5, 0.0), (n as f64 - 0.5, 0.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
    let k = series.len().max(1) as f64;
    let width = 0.8 / k;
    for (j, s) in series.iter().enumerate() {
        let c = color(j);
        let left = |i: usize| i as f64 - 0.4 + j as f64 * width;
        chart
            .draw_series(s.values.iter().enumerate().map(|(i, &v)| {
                Rectangle::new(
                    [(left(i) + 0.01, 0.0), (left(i) + width - 0.01, v)],
                    c.filled(),
                )
            }))
            .map_err(err)?
            .label(s.label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
        if let Some(e) = &s.err {
            chart
                .draw_series(s.values.iter().zip(e).enumerate().map(|(i, (&v, &e))| {
                    ErrorBar::new_vertical(
                        left(i) + width / 2.0,
                        v - e,
                        v,
                        v + e,
                        BLACK.stroke_width(1),
                        6,
                    )
                }))
                .map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_layout_by_hand() {
        // 2×1 image: a red and a blue pixel
        let png = encode_png(2, 1, &[255, 0, 0, 0, 0, 255]);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: length 13, type, width 2, height 1, depth 8, colour type 2, 0, 0, 0
        assert_eq!(&png[8..12], &[0, 0, 0, 13]);
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(&png[16..29], &[0, 0, 0, 2, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
        // the CRC of "IHDR" + data for a 2×1 RGB image (zlib.crc32 in Python)
        let crc = u32::from_be_bytes(png[29..33].try_into().unwrap());
        assert_eq!(crc, 0x7b40_e8dd);
        // IDAT inflates back to the filtered row
        let len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        assert_eq!(&png[37..41], b"IDAT");
        let rows = miniz_oxide::inflate::decompress_to_vec_zlib(&png[41..41 + len]).unwrap();
        assert_eq!(rows, vec![0, 255, 0, 0, 0, 0, 255]);
        // IEND closes it: length 0, type, the fixed CRC ae426082
        assert_eq!(&png[png.len() - 12..], b"\0\0\0\0IEND\xae\x42\x60\x82");
    }

    #[test]
    fn writes_a_png_with_lines_and_bars() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f.png");
        figure(
            &path,
            "test figure",
            900,
            400,
            &[
                Panel::Lines {
                    title: "pass@k".into(),
                    x_label: "k".into(),
                    y_label: "pass@k".into(),
                    log2_x: true,
                    lines: vec![
                        Line {
                            label: "before".into(),
                            xs: vec![1.0, 2.0, 4.0, 8.0],
                            ys: vec![0.3, 0.45, 0.6, 0.69],
                            err: None,
                            dashed: true,
                            color: None,
                        },
                        Line {
                            label: "GRPO".into(),
                            xs: vec![1.0, 2.0, 4.0, 8.0],
                            ys: vec![0.49, 0.55, 0.62, 0.66],
                            err: Some(vec![0.02, 0.02, 0.01, 0.01]),
                            dashed: false,
                            color: Some(0),
                        },
                    ],
                },
                Panel::Bars {
                    title: "change".into(),
                    y_label: "after − before".into(),
                    categories: vec!["GRPO".into(), "PSR".into()],
                    series: vec![
                        BarSeries {
                            label: "pass@1".into(),
                            values: vec![0.19, 0.06],
                            err: Some(vec![0.05, 0.02]),
                        },
                        BarSeries {
                            label: "pass@8".into(),
                            values: vec![-0.03, -0.09],
                            err: None,
                        },
                    ],
                },
            ],
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 5000, "{} bytes", bytes.len());
    }
}
