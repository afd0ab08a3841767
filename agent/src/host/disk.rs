//! Block device I/O from `/proc/diskstats`: `system.disk.io{device,direction}` (bytes =
//! sectors * 512, the kernel's fixed diskstats sector size), `system.disk.operations`,
//! `system.disk.merged`, `system.disk.io_time`, `system.disk.operation_time`,
//! `system.disk.weighted_io_time` and `system.disk.pending_operations`.
//! loop, ram and zram devices are skipped.

use crate::otlp_metric::{MetricSet, MetricSpec};

pub const DISK_IO: MetricSpec = MetricSpec::counter(
    "system.disk.io",
    "By",
    "Bytes read from and written to disk.",
);
pub const DISK_OPERATIONS: MetricSpec = MetricSpec::counter(
    "system.disk.operations",
    "{operation}",
    "Completed read and write operations.",
);
pub const DISK_MERGED: MetricSpec = MetricSpec::counter(
    "system.disk.merged",
    "{operation}",
    "Adjacent operations merged by the I/O scheduler.",
);
pub const DISK_IO_TIME: MetricSpec = MetricSpec::counter(
    "system.disk.io_time",
    "s",
    "Time the disk had at least one operation in flight.",
);
pub const DISK_OPERATION_TIME: MetricSpec = MetricSpec::counter(
    "system.disk.operation_time",
    "s",
    "Total time spent by read and write operations (summed over concurrent operations).",
);
pub const DISK_WEIGHTED_IO_TIME: MetricSpec = MetricSpec::counter(
    "system.disk.weighted_io_time",
    "s",
    "I/O time weighted by the number of operations in flight.",
);
pub const DISK_PENDING: MetricSpec = MetricSpec::updown(
    "system.disk.pending_operations",
    "{operation}",
    "Operations currently in flight.",
);

const SECTOR_BYTES: u64 = 512;

/// Counters of one device line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStats {
    pub device: String,
    pub reads: u64,
    pub reads_merged: u64,
    pub sectors_read: u64,
    pub read_ms: u64,
    pub writes: u64,
    pub writes_merged: u64,
    pub sectors_written: u64,
    pub write_ms: u64,
    pub in_flight: u64,
    pub io_ms: u64,
    pub weighted_io_ms: u64,
}

fn skipped(device: &str) -> bool {
    ["loop", "ram", "zram"].iter().any(|p| {
        device
            .strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Parse `/proc/diskstats`. Lines with fewer than the 14 classic fields are rejected.
pub fn parse_diskstats(text: &str) -> Result<Vec<DiskStats>, String> {
    let mut out = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() < 14 {
            return Err(format!(
                "line {}: {} fields, want at least 14",
                lineno + 1,
                fields.len()
            ));
        }
        let device = fields[2];
        if skipped(device) {
            continue;
        }
        let mut n = [0u64; 11];
        for (slot, raw) in n.iter_mut().zip(&fields[3..14]) {
            *slot = raw
                .parse()
                .map_err(|_| format!("line {}: bad counter {raw:?}", lineno + 1))?;
        }
        out.push(DiskStats {
            device: device.to_string(),
            reads: n[0],
            reads_merged: n[1],
            sectors_read: n[2],
            read_ms: n[3],
            writes: n[4],
            writes_merged: n[5],
            sectors_written: n[6],
            write_ms: n[7],
            in_flight: n[8],
            io_ms: n[9],
            weighted_io_ms: n[10],
        });
    }
    Ok(out)
}

pub fn push_metrics(set: &mut MetricSet, disks: &[DiskStats], start: u64) {
    for d in disks {
        let dev = d.device.as_str();
        let read = [("device", dev), ("direction", "read")];
        let write = [("device", dev), ("direction", "write")];
        set.push(
            &DISK_IO,
            start,
            &read,
            d.sectors_read.saturating_mul(SECTOR_BYTES),
        );
        set.push(
            &DISK_IO,
            start,
            &write,
            d.sectors_written.saturating_mul(SECTOR_BYTES),
        );
        set.push(&DISK_OPERATIONS, start, &read, d.reads);
        set.push(&DISK_OPERATIONS, start, &write, d.writes);
        set.push(&DISK_MERGED, start, &read, d.reads_merged);
        set.push(&DISK_MERGED, start, &write, d.writes_merged);
        set.push(&DISK_IO_TIME, start, &[("device", dev)], ms(d.io_ms));
        set.push(&DISK_OPERATION_TIME, start, &read, ms(d.read_ms));
        set.push(&DISK_OPERATION_TIME, start, &write, ms(d.write_ms));
        set.push(
            &DISK_WEIGHTED_IO_TIME,
            start,
            &[("device", dev)],
            ms(d.weighted_io_ms),
        );
        set.push(&DISK_PENDING, start, &[("device", dev)], d.in_flight);
    }
}

fn ms(v: u64) -> f64 {
    v as f64 / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixtures::DISKSTATS;

    #[test]
    fn parses_and_skips_virtual_devices() {
        let disks = parse_diskstats(DISKSTATS).unwrap();
        let names: Vec<_> = disks.iter().map(|d| d.device.as_str()).collect();
        assert_eq!(names, ["vda", "sda1"]);
        assert_eq!(
            disks[0],
            DiskStats {
                device: "vda".into(),
                reads: 50776,
                reads_merged: 8330,
                sectors_read: 4048274,
                read_ms: 37971,
                writes: 9717,
                writes_merged: 34654,
                sectors_written: 4559544,
                write_ms: 23913,
                in_flight: 0,
                io_ms: 6484,
                weighted_io_ms: 62455,
            }
        );
    }

    #[test]
    fn bytes_and_seconds() {
        let disks = parse_diskstats(DISKSTATS).unwrap();
        let mut set = MetricSet::new(1);
        push_metrics(&mut set, &disks[..1], 0);
        let m = set.into_metrics();
        assert_eq!(m[0].name, "system.disk.io");
        let Some(sightline_proto::otlp::metrics::v1::metric::Data::Sum(io)) = &m[0].data else {
            panic!("io is a sum")
        };
        use sightline_proto::otlp::metrics::v1::number_data_point::Value;
        assert_eq!(io.data_points[0].value, Some(Value::AsInt(4048274 * 512)));
        let Some(sightline_proto::otlp::metrics::v1::metric::Data::Sum(t)) = &m[3].data else {
            panic!("io_time is a sum")
        };
        assert_eq!(m[3].name, "system.disk.io_time");
        assert_eq!(t.data_points[0].value, Some(Value::AsDouble(6.484)));
    }

    #[test]
    fn skip_rules_and_errors() {
        assert!(skipped("loop12") && skipped("ram0") && skipped("zram0"));
        assert!(!skipped("nvme0n1") && !skipped("loopy"));
        assert!(parse_diskstats("8 0 sda 1 2 3").is_err());
        assert!(parse_diskstats("8 0 sda 1 2 3 4 5 6 7 8 9 10 x").is_err());
    }
}
