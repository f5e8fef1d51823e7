//! Which addresses count as the public internet. Plugins' HTTP and the host's own notification
//! deliveries refuse everything else unless the operator names the address: private ranges,
//! loopback, link-local, and the IPv6 forms that embed or translate to IPv4 (NAT64, 6to4,
//! IPv4-compatible, Teredo), through which a private IPv4 address could be reached.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether an address is on the public internet: not loopback, private, link-local, shared,
/// multicast, documentation, translated or otherwise reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments (192.0.0.0/24), including DS-Lite and NAT64 discovery.
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(v6: Ipv6Addr) -> bool {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = v6.segments();
    let blocked = v6.is_loopback()
        || v6.is_unspecified()
        || v6.is_multicast()
        // IPv4-compatible (::/96, deprecated but still routed by some stacks).
        || s[..6] == [0; 6]
        // NAT64: the well-known prefix 64:ff9b::/96 and the local-use 64:ff9b:1::/48.
        || (s[0] == 0x64 && s[1] == 0xff9b)
        // 6to4 (2002::/16) and Teredo (2001::/32) tunnel to IPv4 addresses.
        || s[0] == 0x2002
        || (s[0] == 0x2001 && s[1] == 0)
        // Documentation (2001:db8::/32).
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        // Unique local (fc00::/7), link-local (fe80::/10), site-local (fec0::/10, deprecated).
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0;
    !blocked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_translated_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "192.0.0.170",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001:0:4136:e378::1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn public_addresses_are_public() {
        for ip in ["140.82.112.3", "1.1.1.1", "2606:4700::1111", "2a00:1450::1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
