//! Training curves as PNG: a bundle's `metrics.csv` drawn as two panels, the training loss
//! per epoch and the validation Dice (mean and per class) at the epochs that validated.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::overlay::encode_png;

/// The font the plots are labelled with (DejaVu Sans cut to ASCII; see `assets/`).
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-ascii.ttf");
const FONT_NAME: &str = "sans-serif";

/// Picture size in pixels: two panels side by side.
const WIDTH: u32 = 960;
const HEIGHT: u32 = 320;

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRow {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Mean validation Dice, when the epoch validated.
    pub mean_dice: Option<f64>,
    /// Validation Dice per foreground class (empty when the epoch did not validate).
    pub dice: Vec<f64>,
}

/// Reads a bundle's `metrics.csv` by its header's column names.
pub fn read_metrics(path: &Path) -> Result<Vec<EpochRow>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("empty file")?.split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (epoch, loss, mean) = match (column("epoch"), column("loss"), column("mean_dice")) {
        (Some(e), Some(l), Some(m)) => (e, l, m),
        _ => return Err("the header lacks epoch, loss or mean_dice".into()),
    };
    let dice_columns: Vec<usize> = (0..header.len())
        .filter(|&i| header[i].starts_with("dice_"))
        .collect();
    let number = |cell: &str| cell.parse::<f64>().ok();
    lines
        .enumerate()
        .map(|(i, line)| {
            let cells: Vec<&str> = line.split(',').collect();
            let cell = |k: usize| cells.get(k).copied().unwrap_or("");
            Ok(EpochRow {
                epoch: cell(epoch)
                    .parse()
                    .map_err(|_| format!("line {}: epoch {:?}", i + 2, cell(epoch)))?,
                loss: number(cell(loss)).unwrap_or(f64::NAN),
                mean_dice: number(cell(mean)),
                dice: dice_columns
                    .iter()
                    .filter_map(|&k| number(cell(k)))
                    .collect(),
            })
        })
        .collect()
}

/// Registers the crate's font with plotters, once.
fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The font is the crate's own and known to parse; a failure would show as no text.
        let _ = plotters::style::register_font(FONT_NAME, FontStyle::Normal, FONT);
    });
}

/// The learning-rate range test as a PNG: smoothed loss against log10 of the rate, the
/// suggested rate marked.
pub fn lr_finder_png(
    lrs: &[f64],
    losses: &[f64],
    suggestion: Option<f64>,
) -> Result<Vec<u8>, String> {
    register_font();
    let points: Vec<(f64, f64)> = (lrs.iter().zip(losses))
        .filter(|(lr, loss)| **lr > 0.0 && loss.is_finite())
        .map(|(lr, loss)| (lr.log10(), *loss))
        .collect();
    let span = |f: fn(&(f64, f64)) -> f64| {
        let values = points.iter().map(f);
        let lo = values.clone().fold(f64::INFINITY, f64::min);
        let hi = values.fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() && hi > lo {
            lo..hi
        } else {
            0.0..1.0
        }
    };
    let (width, height) = (WIDTH / 2, HEIGHT);
    let mut rgb = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption("learning-rate range test", (FONT_NAME, 18))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(span(|p| p.0), span(|p| p.1))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("learning rate")
            .x_label_formatter(&|x| format!("{:.0e}", 10f64.powf(*x)))
            .y_desc("smoothed loss")
            .light_line_style(WHITE)
            .label_style((FONT_NAME, 13))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                BLUE.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        if let Some(lr) = suggestion.filter(|lr| *lr > 0.0) {
            let y = span(|p| p.1);
            let x = lr.log10();
            chart
                .draw_series(LineSeries::new(
                    [(x, y.start), (x, y.end)],
                    RED.stroke_width(1),
                ))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    encode_png(&rgb, width, height).map_err(|e| e.to_string())
}

/// The loss and Dice panels of `rows` as a PNG.
pub fn training_curves_png(rows: &[EpochRow]) -> Result<Vec<u8>, String> {
    register_font();
    let mut rgb = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (left, right) = root.split_horizontally(WIDTH / 2);
        loss_panel(&left, rows)?;
        dice_panel(&right, rows)?;
        root.present().map_err(|e| e.to_string())?;
    }
    encode_png(&rgb, WIDTH, HEIGHT).map_err(|e| e.to_string())
}

/// Per-class Dice lines: strong, distinct colours (no pure blue: that is the loss's).
const CLASS_COLOURS: [RGBColor; 6] = [
    RGBColor(220, 50, 32),
    RGBColor(0, 150, 60),
    RGBColor(230, 140, 0),
    RGBColor(140, 60, 180),
    RGBColor(0, 160, 190),
    RGBColor(150, 100, 40),
];

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn epochs_range(rows: &[EpochRow]) -> std::ops::Range<f64> {
    let last = rows.iter().map(|r| r.epoch).max().unwrap_or(1).max(2);
    1.0..last as f64
}

type Chart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A titled panel over the epochs of `rows` and the value range `y`, axes drawn.
fn epoch_chart<'a, 'b>(
    area: &'a Area<'b>,
    title: &str,
    rows: &[EpochRow],
    y: std::ops::Range<f64>,
) -> Result<Chart<'a, 'b>, String> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT_NAME, 18))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(epochs_range(rows), y)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .light_line_style(WHITE)
        .label_style((FONT_NAME, 13))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

fn loss_panel(area: &Area, rows: &[EpochRow]) -> Result<(), String> {
    let losses: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.loss.is_finite())
        .map(|r| (r.epoch as f64, r.loss))
        .collect();
    let (lo, hi) = losses
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, l)| {
            (lo.min(l), hi.max(l))
        });
    let (lo, hi) = if lo.is_finite() {
        let pad = ((hi - lo) * 0.05).max(1e-3);
        (lo - pad, hi + pad)
    } else {
        (0.0, 1.0)
    };
    let mut chart = epoch_chart(area, "training loss", rows, lo..hi)?;
    chart
        .draw_series(LineSeries::new(losses, BLUE.stroke_width(2)))
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn dice_panel(area: &Area, rows: &[EpochRow]) -> Result<(), String> {
    let mut chart = epoch_chart(area, "validation Dice", rows, 0.0..1.0)?;
    let classes = rows.iter().map(|r| r.dice.len()).max().unwrap_or(0);
    for k in 0..classes {
        let colour = CLASS_COLOURS[k % CLASS_COLOURS.len()];
        let points = rows.iter().filter_map(|r| {
            r.dice
                .get(k)
                .filter(|d| d.is_finite())
                .map(|&d| (r.epoch as f64, d))
        });
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(1)))
            .map_err(|e| e.to_string())?
            .label(format!("class {}", k + 1))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour));
    }
    let mean = rows
        .iter()
        .filter_map(|r| r.mean_dice.map(|d| (r.epoch as f64, d)));
    chart
        .draw_series(LineSeries::new(mean, BLACK.stroke_width(3)))
        .map_err(|e| e.to_string())?
        .label("mean")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.stroke_width(3)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT_NAME, 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_read_by_column_name_and_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        std::fs::write(
            &path,
            "epoch,loss,learning_rate,seconds,validation_seconds,data_wait_seconds,mean_dice,dice_1,dice_2\n\
             1,1.2,0.01,3,0,0,,,\n2,0.9,0.01,3,1,0,0.5,0.4,0.6\n3,0.7,0.01,3,1,0,0.7,0.6,0.8\n",
        )
        .unwrap();
        let rows = read_metrics(&path).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].mean_dice, None);
        assert!(rows[0].dice.is_empty());
        assert_eq!(rows[2].dice, vec![0.6, 0.8]);
        assert_eq!(rows[1].loss, 0.9);
        let png_bytes = training_curves_png(&rows).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        // The curves and their text put dark pixels on the white page, in both panels.
        let dark_in = |x0: u32, x1: u32| {
            (0..HEIGHT).any(|y| (x0..x1).any(|x| pixels[((y * WIDTH + x) * 3) as usize] < 64))
        };
        assert!(dark_in(0, WIDTH / 2) && dark_in(WIDTH / 2, WIDTH));
    }

    #[test]
    fn a_file_without_the_columns_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        assert!(read_metrics(&path).unwrap_err().contains("header"));
    }
}
