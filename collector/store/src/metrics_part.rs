//! Metrics parts: one row per sample, sorted by series id then time. Values that are
//! decimals with few digits are stored as integers after a per-series decimal scaling
//! (`value = value_int / 10^value_scale`, the VictoriaMetrics trick), delta-packed like
//! the timestamps; values that do not scale losslessly (NaN, stale markers, ±Inf, -0.0,
//! long fractions) go bit-exactly into `value_f64` with byte-stream-split encoding.
//! Exactly one of `value_int` / `value_f64` is set per row.
//!
//! Delta packing works per page, not per series, so a series boundary would put one
//! large jump into the value column and widen a whole 128-value block. Each series is
//! therefore stored shifted by a per-series `value_offset` chosen so that its first
//! integer equals the previous series' last one: the column is one continuous walk, and
//! `value_offset` (constant per series) costs next to nothing under RLE.
//! Integers of a series are also divided by their greatest common divisor
//! (`value_mult`), which removes the constant low bits of values that move in fixed steps.
//! Decoding: `value = (value_int + value_offset) * value_mult / 10^value_scale`.

use crate::memtable::SeriesChunk;
use crate::{Error, Result};
use arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, Int8Array, RecordBatch, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::sync::{Arc, OnceLock};

/// Powers of ten that are exact in an `f64`.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];
const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

pub(crate) fn schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(vec![
            Field::new("series_id", DataType::UInt32, false),
            Field::new("timestamp_ms", DataType::Int64, false),
            Field::new("value_int", DataType::Int64, true),
            Field::new("value_f64", DataType::Float64, true),
            Field::new("value_scale", DataType::Int8, false),
            Field::new("value_offset", DataType::Int64, false),
            Field::new("value_mult", DataType::Int64, false),
        ]))
    })
    .clone()
}

/// Writer settings: delta-packed ids, timestamps and scaled values, byte-stream-split
/// floats, zstd.
pub(crate) fn writer_properties() -> WriterProperties {
    let delta = |b: parquet::file::properties::WriterPropertiesBuilder, c: &str| {
        b.set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED)
            .set_column_dictionary_enabled(ColumnPath::from(c), false)
    };
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(9).unwrap_or_default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(1 << 20))
        .set_data_page_size_limit(4 << 20)
        .set_data_page_row_count_limit(1 << 20);
    for c in ["series_id", "timestamp_ms", "value_int"] {
        b = delta(b, c);
    }
    // Smaller delta blocks for timestamps: the one large backwards jump where a series
    // starts widens only its own 128 values. Small mini blocks for values: bit widths
    // follow each series' volatility closely. (Measured with examples/bytes_per_sample.)
    use parquet::file::properties::DeltaBinaryPackedEncoderOptions as Dbp;
    for (c, block, minis) in [("timestamp_ms", 128, 1), ("value_int", 512, 16)] {
        if let Ok(o) = Dbp::try_new(block, minis) {
            b = b.set_column_delta_binary_packed_encoder_options(ColumnPath::from(c), o);
        }
    }
    b.set_column_encoding(ColumnPath::from("value_f64"), Encoding::BYTE_STREAM_SPLIT)
        .set_column_dictionary_enabled(ColumnPath::from("value_f64"), false)
        .build()
}

/// Decimal digits needed to store `v` exactly as an integer, if any (≤ 15).
fn min_scale(v: f64) -> Option<usize> {
    if !v.is_finite() {
        return None;
    }
    (0..POW10.len()).find(|&d| scaled(v, d).is_some())
}

/// `v * 10^d` as an integer, if dividing it back gives exactly `v` (bit for bit).
fn scaled(v: f64, d: usize) -> Option<i64> {
    let m = (v * POW10[d]).round();
    if !m.is_finite() || m.abs() > MAX_EXACT {
        return None;
    }
    let i = m as i64;
    ((i as f64 / POW10[d]).to_bits() == v.to_bits()).then_some(i)
}

/// Greatest common divisor of a series' integers (1 when there is none above 1), so
/// values moving in fixed steps (memory in 4 KiB pages, counters in 100s) pack tightly.
fn series_gcd(m: &[Option<i64>]) -> i64 {
    fn gcd(mut a: u64, mut b: u64) -> u64 {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }
    let g = m.iter().flatten().fold(
        0u64,
        |g, &x| if g == 1 { 1 } else { gcd(g, x.unsigned_abs()) },
    );
    i64::try_from(g).ok().filter(|&g| g > 1).unwrap_or(1)
}

/// Offset that makes a series' first stored integer equal `chain` (the previous
/// series' last one), so the delta-packed column has no jump between series. Falls back
/// to 0 when the shifted values would leave ±2^62.
fn series_offset(m: &[Option<i64>], chain: i64) -> i64 {
    const LIMIT: i64 = 1 << 62;
    let Some(first) = m.iter().flatten().next() else {
        return 0;
    };
    let Some(offset) = first.checked_sub(chain) else {
        return 0;
    };
    let fits = m.iter().flatten().all(|&x| {
        x.checked_sub(offset)
            .is_some_and(|y| (-LIMIT..LIMIT).contains(&y))
    });
    if fits {
        offset
    } else {
        0
    }
}

/// Builds a part's rows from series chunks (ascending ids), keeping only samples whose
/// `part_of(timestamp)` is `part` (`part_of` must be monotonic, like the hour of a time).
pub(crate) fn build_batch<'a>(
    series: impl Iterator<Item = (u32, &'a SeriesChunk)>,
    part_of: impl Fn(i64) -> i64,
    part: i64,
) -> Result<RecordBatch> {
    let mut ids = Vec::new();
    let mut ts = Vec::new();
    let mut ints: Vec<Option<i64>> = Vec::new();
    let mut floats: Vec<Option<f64>> = Vec::new();
    let mut scales = Vec::new();
    let mut offsets = Vec::new();
    let mut mults = Vec::new();
    // last value written to `value_int`; each series continues from it (see module docs)
    let mut chain = 0i64;
    for (id, chunk) in series {
        let lo = chunk.ts.partition_point(|&t| part_of(t) < part);
        let hi = chunk.ts.partition_point(|&t| part_of(t) <= part);
        if lo >= hi {
            continue;
        }
        let vals = &chunk.vals[lo..hi];
        let scale = vals.iter().filter_map(|&v| min_scale(v)).max().unwrap_or(0);
        let m: Vec<Option<i64>> = vals
            .iter()
            .map(|&v| scaled(v, scale).filter(|_| v.is_finite()))
            .collect();
        let mult = series_gcd(&m);
        let m: Vec<Option<i64>> = m.into_iter().map(|x| x.map(|x| x / mult)).collect();
        let offset = series_offset(&m, chain);
        for (i, (&v, m)) in vals.iter().zip(&m).enumerate() {
            ids.push(id);
            ts.push(chunk.ts[lo + i]);
            scales.push(scale as i8);
            offsets.push(offset);
            mults.push(mult);
            match m {
                Some(m) => {
                    chain = m - offset;
                    ints.push(Some(chain));
                    floats.push(None);
                }
                None => {
                    ints.push(None);
                    floats.push(Some(v));
                }
            }
        }
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from(ids)),
        Arc::new(Int64Array::from(ts)),
        Arc::new(Int64Array::from(ints)),
        Arc::new(Float64Array::from(floats)),
        Arc::new(Int8Array::from(scales)),
        Arc::new(Int64Array::from(offsets)),
        Arc::new(Int64Array::from(mults)),
    ];
    RecordBatch::try_new(schema(), cols).map_err(|e| Error::Parquet(e.to_string()))
}

/// Decodes rows of `b` for the wanted series (`slot(id)` gives the output slot) with
/// `start <= t <= end`, pushing `(slot, t, v)`.
pub(crate) fn read_batch(
    b: &RecordBatch,
    slot: impl Fn(u32) -> Option<usize>,
    start: i64,
    end: i64,
    out: &mut Vec<(usize, i64, f64)>,
) -> Result<()> {
    let col = |n: &str| {
        b.column_by_name(n)
            .ok_or_else(|| Error::Parquet(format!("column {n} missing")))
    };
    let bad = |n: &str| Error::Parquet(format!("column {n} has the wrong type"));
    let ids = col("series_id")?
        .as_any()
        .downcast_ref::<UInt32Array>()
        .ok_or_else(|| bad("series_id"))?;
    let ts = col("timestamp_ms")?
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| bad("timestamp_ms"))?;
    let ints = col("value_int")?
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| bad("value_int"))?;
    let floats = col("value_f64")?
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| bad("value_f64"))?;
    let scales = col("value_scale")?
        .as_any()
        .downcast_ref::<Int8Array>()
        .ok_or_else(|| bad("value_scale"))?;
    let offsets = col("value_offset")?
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| bad("value_offset"))?;
    let mults = col("value_mult")?
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| bad("value_mult"))?;
    for i in 0..b.num_rows() {
        let Some(s) = slot(ids.value(i)) else {
            continue;
        };
        let t = ts.value(i);
        if t < start || t > end {
            continue;
        }
        let v = if ints.is_valid(i) {
            let d = usize::try_from(scales.value(i))
                .ok()
                .filter(|&d| d < POW10.len())
                .ok_or_else(|| bad("value_scale"))?;
            let m = ints
                .value(i)
                .wrapping_add(offsets.value(i))
                .wrapping_mul(mults.value(i));
            m as f64 / POW10[d]
        } else {
            floats.value(i)
        };
        out.push((s, t, v));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_is_lossless_and_falls_back_bit_exactly() {
        let vals = vec![
            0.1,
            12.25,
            -3.0,
            1e15,
            0.1 + 0.2,
            f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0002),
            f64::INFINITY,
            -0.0,
            1.0 / 3.0,
            123456789.123,
        ];
        let chunk = SeriesChunk {
            ts: (0..vals.len() as i64).collect(),
            vals: vals.clone(),
        };
        let other = SeriesChunk {
            ts: vec![5, 100],
            vals: vec![7.0, 8.0],
        };
        let pages = SeriesChunk {
            ts: vec![1, 2, 3],
            vals: vec![4096.0, 8192.0, 40960.0],
        };
        let b = build_batch(
            [(1, &chunk), (2, &other), (3, &pages)].into_iter(),
            |t| t / 100,
            0,
        )
        .unwrap();
        assert_eq!(b.num_rows(), vals.len() + 4);
        let scales = b.column(4).as_any().downcast_ref::<Int8Array>().unwrap();
        assert_eq!(scales.value(0), 3);
        assert_eq!(scales.value(vals.len()), 0, "per-series scale");
        let mut out = Vec::new();
        read_batch(&b, |id| (id == 1).then_some(0), 0, 1000, &mut out).unwrap();
        let back: Vec<u64> = out.iter().map(|x| x.2.to_bits()).collect();
        assert_eq!(back, vals.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        let ints = b.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
        let offs = b.column(5).as_any().downcast_ref::<Int64Array>().unwrap();
        let mults = b.column(6).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!((ints.value(0) + offs.value(0)) * mults.value(0), 100);
        assert_eq!(mults.value(vals.len()), 7, "only 7.0 is inside the hour");
        // the second series continues where the first one's integers ended
        assert_eq!(ints.value(vals.len()), ints.value(10));
        assert!(ints.is_null(5) && ints.is_null(8), "NaN and -0.0 are raw");
        assert_eq!(mults.value(vals.len() + 1), 4096);
        let mut out = Vec::new();
        read_batch(&b, |id| (id == 3).then_some(0), 0, 1000, &mut out).unwrap();
        assert_eq!(
            out.iter().map(|x| x.2).collect::<Vec<_>>(),
            vec![4096.0, 8192.0, 40960.0]
        );
    }
}
