//! `segresnet2d`: Auto3DSeg's 2D SegResNet for strongly anisotropic data, where slices are
//! so thick that a 3D network learns little across them. Each z-slice is segmented on its
//! own (a planar SegResNetDS: kernels and strides 1 along z); the images are not resampled.
//! Otherwise the segresnet recipe.

use serde_json::json;

use super::segresnet::{SegResNetTemplate, blocks_down, roi_and_levels};
use super::{Filled, Template, TemplateError, TemplateInput};
use crate::networks::{NetworkConfig, SegResNetDsConfig};

/// The 2D template.
pub struct SegResNet2dTemplate;

/// Auto3DSeg's 2D ROI before clipping (x, y; z is 1).
const DEFAULT_ROI: [usize; 3] = [384, 384, 1];

const MEDIAN_SPACING: &str = "stats_summary.image_stats.spacing.median";

impl Template for SegResNet2dTemplate {
    fn name(&self) -> &'static str {
        "segresnet2d"
    }

    fn summary(&self) -> &'static str {
        "a planar SegResNetDS segmenting each slice, for thick-slice data (Auto3DSeg's segresnet2d)"
    }

    fn skip_reason(&self, input: &TemplateInput) -> Result<Option<String>, TemplateError> {
        let [sx, sy, sz] = input.stats.triple(MEDIAN_SPACING)?;
        Ok((sz < 1.5 * (sx + sy)).then(|| {
            format!(
                "median z spacing {sz:.3} mm is under 1.5 x (x + y) = {:.3} mm: not \
                 anisotropic enough for a 2D network (Auto3DSeg's rule)",
                1.5 * (sx + sy)
            )
        }))
    }

    fn fill(&self, input: &TemplateInput) -> Result<Filled, TemplateError> {
        let mut filled = SegResNetTemplate.fill(input)?;
        let d = &mut filled.derivation;
        d.template = self.name().into();
        let shape_key = "stats_summary.image_stats.shape.percentile_99_5";
        let image = input.stats.triple(shape_key)?;
        // The 3D rule on the plane: z stands in as a copy of the smaller in-plane axis.
        let plane = [image[0], image[1], image[0].min(image[1])];
        let (roi, levels) = roi_and_levels(plane, [DEFAULT_ROI[0], DEFAULT_ROI[1], usize::MAX], 5);
        let roi = d.record(
            "patch_size",
            [roi[0], roi[1], 1],
            "384x384 slices clipped to the 99.5th-percentile image size, rounded up to a \
             multiple of 2^(levels-1) (Auto3DSeg's segresnet2d)",
            &[(shape_key, json!(image))],
        );
        d.record(
            "preprocessing.target_spacing",
            None::<[f64; 3]>,
            "never resampled: each slice is segmented at its own resolution (Auto3DSeg)",
            &[],
        );
        let config = &mut filled.config;
        let network: NetworkConfig =
            serde_json::from_value(config["network"].clone()).expect("segresnet's network config");
        let NetworkConfig::SegresnetDs(base) = network else {
            unreachable!("segresnet fills a SegResNetDS")
        };
        let network = SegResNetDsConfig {
            blocks_down: blocks_down(levels),
            dsdepth: 2.min(levels - 1).max(1),
            spatial_dims: 2,
            ..base
        };
        config.insert("network".into(), json!(NetworkConfig::SegresnetDs(network)));
        config.insert("patch_size".into(), json!(roi));
        config["preprocessing"]["target_spacing"] = json!(null);
        Ok(filled)
    }
}
