//! Which addresses a server may connect to on a user's behalf (webhooks, commit statuses,
//! git sources): the SSRF rules, pure so every outbound path shares one list.
//!
//! Refused: loopback, RFC 1918 private, unique local (fc00::/7), link-local (with the cloud
//! metadata address 169.254.169.254), CGNAT (100.64/10), unspecified and "this network"
//! (0/8), multicast, broadcast, reserved (240/4), documentation (192.0.2/24, 198.51.100/24,
//! 203.0.113/24, 2001:db8::/32), benchmarking (198.18/15), IETF protocol assignments
//! (192.0.0/24), the deprecated site-local fec0::/10, and any IPv6 form that embeds a
//! refused IPv4 address (IPv4-mapped, IPv4-compatible, NAT64 `64:ff9b::/96`, 6to4
//! `2002::/16`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The range a refused IPv4 address is in, or `None` when it is a public address.
fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() => "unspecified",
        (0, _, _) => "this network",
        (127, _, _) => "loopback",
        (10, _, _) => "private",
        (172, 16..=31, _) => "private",
        (192, 168, _) => "private",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "carrier-grade NAT",
        (192, 0, 0) => "IETF protocol assignments",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        _ if ip.is_broadcast() => "broadcast",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

/// The range a refused IPv6 address is in, or `None` when it is a public address.
fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_range(v4).map(|_| "IPv4-mapped non-public address");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // IPv4-compatible (deprecated) ::a.b.c.d.
    if s[..6] == [0; 6] {
        return Some("IPv4-compatible address");
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    Some(match s[0] {
        0x0064 if s[1] == 0xff9b && s[2..6] == [0; 4] => {
            v4_range(embedded(s[6], s[7]))?;
            "NAT64 of a non-public address"
        }
        0x2002 => {
            v4_range(embedded(s[1], s[2]))?;
            "6to4 of a non-public address"
        }
        0x2001 if s[1] == 0x0db8 => "documentation",
        x if x & 0xfe00 == 0xfc00 => "unique local",
        x if x & 0xffc0 == 0xfe80 => "link-local",
        x if x & 0xffc0 == 0xfec0 => "site-local",
        x if x & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    })
}

/// The refused range `ip` is in, or `None` when it is a public address a server may
/// connect to on a user's behalf.
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }
}
