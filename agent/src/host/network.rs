//! Network interface counters from `<proc_root>/1/net/dev` (else `<proc_root>/self/net/dev`);
//! with the host's `/proc` mounted that is the node's network namespace:
//! `system.network.io{device,direction=receive|transmit}` (By), `system.network.packets`,
//! `system.network.errors`, `system.network.dropped`. Loopback is kept (`device="lo"`).

use crate::otlp_metric::{MetricSet, MetricSpec};

pub const NET_IO: MetricSpec =
    MetricSpec::counter("system.network.io", "By", "Bytes received and transmitted.");
pub const NET_PACKETS: MetricSpec = MetricSpec::counter(
    "system.network.packets",
    "{packet}",
    "Packets received and transmitted.",
);
pub const NET_ERRORS: MetricSpec = MetricSpec::counter(
    "system.network.errors",
    "{error}",
    "Receive and transmit errors.",
);
pub const NET_DROPPED: MetricSpec = MetricSpec::counter(
    "system.network.dropped",
    "{packet}",
    "Packets dropped on receive and transmit.",
);

/// Counters of one interface: `[bytes, packets, errors, dropped]` per direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceStats {
    pub device: String,
    pub receive: [u64; 4],
    pub transmit: [u64; 4],
}

/// Parse `/proc/net/dev` (two header lines, then `iface: 8 rx fields 8 tx fields`).
pub fn parse_net_dev(text: &str) -> Result<Vec<InterfaceStats>, String> {
    let mut out = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.contains('|') {
            continue;
        }
        let nums = rest
            .split_ascii_whitespace()
            .map(str::parse::<u64>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("line {}: {e}", lineno + 1))?;
        if nums.len() < 16 {
            return Err(format!(
                "line {}: {} counters, want 16",
                lineno + 1,
                nums.len()
            ));
        }
        out.push(InterfaceStats {
            device: name.trim().to_string(),
            receive: [nums[0], nums[1], nums[2], nums[3]],
            transmit: [nums[8], nums[9], nums[10], nums[11]],
        });
    }
    Ok(out)
}

pub fn push_metrics(set: &mut MetricSet, interfaces: &[InterfaceStats], start: u64) {
    for specs in [&NET_IO, &NET_PACKETS, &NET_ERRORS, &NET_DROPPED]
        .into_iter()
        .enumerate()
    {
        let (i, spec) = specs;
        for iface in interfaces {
            let dev = iface.device.as_str();
            set.push(
                spec,
                start,
                &[("device", dev), ("direction", "receive")],
                iface.receive[i],
            );
            set.push(
                spec,
                start,
                &[("device", dev), ("direction", "transmit")],
                iface.transmit[i],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixtures::NET_DEV;

    #[test]
    fn parses_interfaces_including_loopback() {
        let ifs = parse_net_dev(NET_DEV).unwrap();
        assert_eq!(ifs.len(), 3);
        assert_eq!(ifs[0].device, "lo");
        assert_eq!(
            ifs[2],
            InterfaceStats {
                device: "eth0".into(),
                receive: [195493641, 7633, 3, 7],
                transmit: [540705, 4861, 1, 2],
            }
        );
        let mut set = MetricSet::new(1);
        push_metrics(&mut set, &ifs, 0);
        assert_eq!(set.point_count(), 3 * 2 * 4);
        let names: Vec<_> = set.metrics().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "system.network.io",
                "system.network.packets",
                "system.network.errors",
                "system.network.dropped"
            ]
        );
    }

    #[test]
    fn rejects_short_or_bad_lines() {
        assert!(parse_net_dev("eth0: 1 2 3").is_err());
        assert!(parse_net_dev("eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x").is_err());
        assert_eq!(parse_net_dev("").unwrap(), vec![]);
    }
}
