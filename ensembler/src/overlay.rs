//! Overlay pictures for a person checking predictions: axial slices of the image in grey,
//! the reference's outlines in green, the prediction's in red (yellow where both agree),
//! tiled into one PNG per case.

use std::path::Path;

use autoseg_datasets::{LabelVolume, Volume};

/// Slices tiled per picture.
pub const SLICES: usize = 6;

/// Writes the overlay montage of one case ([`overlay_png`]) to `path`, atomically.
pub fn write_overlay(
    image: &Volume,
    pred: &LabelVolume,
    reference: &LabelVolume,
    slices: usize,
    path: &Path,
) -> std::io::Result<()> {
    let bytes = overlay_png(image, pred, reference, slices)?;
    autoseg_datasets::fsutil::write_bytes_atomic(path, &bytes)
}

/// The overlay montage of one case (all three on the reference's grid) as PNG bytes:
/// `slices` axial slices spread over the reference's foreground (or the whole volume when
/// it has none), in radiological view (patient right on the left, anterior up).
pub fn overlay_png(
    image: &Volume,
    pred: &LabelVolume,
    reference: &LabelVolume,
    slices: usize,
) -> std::io::Result<Vec<u8>> {
    let (image, pred, reference) = (image.to_ras(), pred.to_ras(), reference.to_ras());
    let [nx, ny, _] = reference.dims();
    let scale = (256 / nx.max(ny)).max(1);
    let (tile_w, tile_h) = (nx * scale, ny * scale);
    let zs = slice_positions(&reference, slices);
    let (width, height) = (tile_w * zs.len(), tile_h);
    let (lo, hi) = window(image.channel(0));
    let mut rgb = vec![0u8; width * height * 3];
    for (t, &z) in zs.iter().enumerate() {
        for y in 0..ny {
            for x in 0..nx {
                let v = (z * ny + y) * nx + x;
                let grey = (((image.channel(0)[v] - lo) / (hi - lo).max(1e-6)).clamp(0.0, 1.0)
                    * 255.0) as u8;
                let colour = match (edge(&reference, x, y, z), edge(&pred, x, y, z)) {
                    (true, true) => [255, 230, 0],
                    (true, false) => [0, 220, 0],
                    (false, true) => [255, 40, 40],
                    (false, false) => [grey; 3],
                };
                // Radiological view: x runs right to left, y bottom to top.
                let (col, row) = (nx - 1 - x, ny - 1 - y);
                for dy in 0..scale {
                    for dx in 0..scale {
                        let px = t * tile_w + col * scale + dx;
                        let at = ((row * scale + dy) * width + px) * 3;
                        rgb[at..at + 3].copy_from_slice(&colour);
                    }
                }
            }
        }
    }
    encode_png(&rgb, width as u32, height as u32)
}

/// An RGB buffer (8 bits a channel, rows top to bottom) as PNG bytes.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(rgb)
            .map_err(std::io::Error::other)?;
    }
    Ok(bytes)
}

/// `count` z positions spread over the slices holding foreground (all slices if none).
fn slice_positions(labels: &LabelVolume, count: usize) -> Vec<usize> {
    let [nx, ny, nz] = labels.dims();
    let with_foreground: Vec<usize> = (0..nz)
        .filter(|&z| {
            labels.data()[z * nx * ny..(z + 1) * nx * ny]
                .iter()
                .any(|&l| l != 0)
        })
        .collect();
    let pool: Vec<usize> = if with_foreground.is_empty() {
        (0..nz).collect()
    } else {
        with_foreground
    };
    let count = count.min(pool.len()).max(1);
    (0..count)
        .map(|i| pool[(2 * i + 1) * pool.len() / (2 * count)])
        .collect()
}

/// The grey window: the 0.5th and 99.5th percentiles of the image.
fn window(values: &[f32]) -> (f32, f32) {
    let mut sorted: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return (0.0, 1.0);
    }
    sorted.sort_by(f32::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
    (at(0.005), at(0.995))
}

/// Whether voxel (x, y) of slice z is foreground on the edge of its region (a 4-neighbour
/// in the slice has another label, or it lies on the border).
fn edge(labels: &LabelVolume, x: usize, y: usize, z: usize) -> bool {
    let [nx, ny, _] = labels.dims();
    let at = |x: usize, y: usize| labels.data()[(z * ny + y) * nx + x];
    let here = at(x, y);
    if here == 0 {
        return false;
    }
    x == 0
        || y == 0
        || x + 1 == nx
        || y + 1 == ny
        || at(x - 1, y) != here
        || at(x + 1, y) != here
        || at(x, y - 1) != here
        || at(x, y + 1) != here
}
