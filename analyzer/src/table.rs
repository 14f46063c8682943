//! Column summaries over the per-case table, computed with Polars.
//!
//! Two kinds, as MONAI's summary analyzers have: [`describe`] gives a column's own statistics
//! (MONAI's `SampleOperations` over an array: numpy's averaging median, population stdev,
//! linear percentiles), and [`pool_case_stats`] combines per-case figures the way MONAI's
//! `SummaryOperations` does (max of the maxima, min of the minima, the mean of everything else).

use polars::prelude::*;

use crate::sample::{PERCENTILES, SampleStats};

/// Builds a frame of named f64 columns of equal length.
pub fn frame(columns: Vec<(String, Vec<f64>)>) -> PolarsResult<DataFrame> {
    let height = columns.first().map_or(0, |(_, v)| v.len());
    let columns = columns
        .into_iter()
        .map(|(name, values)| Column::new(name.into(), values))
        .collect();
    DataFrame::new(height, columns)
}

/// One column's statistics over its rows (MONAI's `SampleOperations` on a numpy array).
pub fn describe(df: &DataFrame) -> PolarsResult<Vec<SampleStats>> {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let mut exprs = Vec::new();
    for name in &names {
        let c = || col(name.as_str());
        exprs.push(c().max().alias(format!("{name}/max")));
        exprs.push(c().mean().alias(format!("{name}/mean")));
        exprs.push(c().median().alias(format!("{name}/median")));
        exprs.push(c().min().alias(format!("{name}/min")));
        exprs.push(c().std(0).alias(format!("{name}/stdev")));
        for (i, q) in PERCENTILES.iter().enumerate() {
            let p = c().quantile(lit(q / 100.0), QuantileMethod::Linear);
            exprs.push(p.alias(format!("{name}/p{i}")));
        }
    }
    let out = df.clone().lazy().select(exprs).collect()?;
    let get = |key: String| -> PolarsResult<f64> {
        let column = out.column(&key)?.cast(&DataType::Float64)?;
        Ok(column.f64()?.get(0).unwrap_or(f64::NAN))
    };
    names
        .iter()
        .map(|name| {
            Ok(SampleStats {
                max: get(format!("{name}/max"))?,
                mean: get(format!("{name}/mean"))?,
                median: get(format!("{name}/median"))?,
                min: get(format!("{name}/min"))?,
                stdev: get(format!("{name}/stdev"))?,
                percentile: [
                    get(format!("{name}/p0"))?,
                    get(format!("{name}/p1"))?,
                    get(format!("{name}/p2"))?,
                    get(format!("{name}/p3"))?,
                ],
            })
        })
        .collect()
}

/// Combines per-case sample figures as MONAI's `SummaryOperations`: max of the maxima, min of
/// the minima, and the mean of the means, medians, stdevs and percentiles. `None` when empty.
pub fn pool_case_stats(cases: &[SampleStats]) -> PolarsResult<Option<SampleStats>> {
    if cases.is_empty() {
        return Ok(None);
    }
    let column = |f: fn(&SampleStats) -> f64| cases.iter().map(f).collect::<Vec<f64>>();
    let df = frame(vec![
        ("max".into(), column(|s| s.max)),
        ("mean".into(), column(|s| s.mean)),
        ("median".into(), column(|s| s.median)),
        ("min".into(), column(|s| s.min)),
        ("stdev".into(), column(|s| s.stdev)),
        ("p0".into(), column(|s| s.percentile[0])),
        ("p1".into(), column(|s| s.percentile[1])),
        ("p2".into(), column(|s| s.percentile[2])),
        ("p3".into(), column(|s| s.percentile[3])),
    ])?;
    let out = df
        .lazy()
        .select([
            col("max").max(),
            col("mean").mean(),
            col("median").mean(),
            col("min").min(),
            col("stdev").mean(),
            col("p0").mean(),
            col("p1").mean(),
            col("p2").mean(),
            col("p3").mean(),
        ])
        .collect()?;
    let get = |name: &str| -> PolarsResult<f64> {
        Ok(out.column(name)?.f64()?.get(0).unwrap_or(f64::NAN))
    };
    Ok(Some(SampleStats {
        max: get("max")?,
        mean: get("mean")?,
        median: get("median")?,
        min: get("min")?,
        stdev: get("stdev")?,
        percentile: [get("p0")?, get("p1")?, get("p2")?, get("p3")?],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_uses_numpy_definitions() {
        let df = frame(vec![("a".into(), vec![4.0, 1.0, 3.0, 2.0])]).unwrap();
        let s = describe(&df).unwrap()[0];
        assert_eq!((s.max, s.min, s.mean), (4.0, 1.0, 2.5));
        assert_eq!(s.median, 2.5, "numpy's median averages the middle pair");
        assert!((s.stdev - 1.25f64.sqrt()).abs() < 1e-12, "population stdev");
        assert!((s.percentile[1] - 1.3).abs() < 1e-12);
        assert!((s.percentile[3] - 3.985).abs() < 1e-12);
    }

    #[test]
    fn pooling_takes_extremes_and_means() {
        let a = SampleStats {
            max: 5.0,
            mean: 2.0,
            median: 1.0,
            min: -1.0,
            stdev: 1.0,
            percentile: [0.0, 1.0, 2.0, 3.0],
        };
        let b = SampleStats {
            max: 7.0,
            mean: 4.0,
            median: 3.0,
            min: 0.0,
            stdev: 3.0,
            percentile: [2.0, 3.0, 4.0, 5.0],
        };
        let p = pool_case_stats(&[a, b]).unwrap().unwrap();
        assert_eq!(
            (p.max, p.min, p.mean, p.median, p.stdev),
            (7.0, -1.0, 3.0, 2.0, 2.0)
        );
        assert_eq!(p.percentile, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(pool_case_stats(&[]).unwrap(), None);
    }
}
