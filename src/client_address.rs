//! Where a request came from: the client address (audit log, per-IP limits) and the
//! user agent.
//!
//! The address is the socket peer, unless the peer is a proxy listed in
//! `TRUSTED_PROXIES`; then it is the right-most `X-Forwarded-For` hop that is not itself
//! a trusted proxy. Hops left of that one were written by the client and prove nothing,
//! so a client cannot choose the address it is limited and audited under.
//!
//! This module knows nothing of HTTP frameworks, so services can take a [`ClientInfo`];
//! the extractor that builds one from a request lives in `crate::http::extract`.

use std::{fmt, net::IpAddr, str::FromStr};

/// Where a request came from, for audit entries and per-IP limits.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client address, when known (requests that did not come over a socket, such as
    /// in-process tests, have none).
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// Builds the client description from the socket peer and the request headers.
    pub fn resolve(
        peer: Option<IpAddr>,
        forwarded_for: Option<&str>,
        user_agent: Option<&str>,
        trusted: &[Cidr],
    ) -> Self {
        Self {
            ip: client_ip(peer, forwarded_for, trusted).map(|ip| ip.to_string()),
            user_agent: user_agent
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| v.chars().take(512).collect()),
        }
    }
}

/// The client address: the peer, or — when the peer is a trusted proxy — the right-most
/// `X-Forwarded-For` hop that is not trusted. When every hop is trusted, the left-most
/// one is the best there is. A hop that is not an IP address ends the walk: it was
/// written by someone untrusted, so the hop to its right (trusted) is used.
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[Cidr],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let mut client = peer;
    // Several X-Forwarded-For headers are joined with commas before this is called.
    for hop in forwarded_for.unwrap_or_default().rsplit(',') {
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry: an address, maybe with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    hop.rsplit_once(':')
        .and_then(|(ip, port)| port.parse::<u16>().ok().and(ip.parse().ok()))
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a
/// single host). IPv4 networks also match IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`),
/// which is how a dual-stack socket reports IPv4 peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.matches(ip) || mapped.is_some_and(|ip| self.matches(ip))
    }

    fn matches(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                masked(bits_of(ip), width(ip), self.prefix) == bits_of(self.network)
            }
            _ => false,
        }
    }
}

/// An address as a number.
fn bits_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Bits in an address of this family.
fn width(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// `value` (an address `width` bits wide) with everything after the first `prefix` bits
/// cleared.
fn masked(value: u128, width: u8, prefix: u8) -> u128 {
    let host_bits = u32::from(width.saturating_sub(prefix));
    value & u128::MAX.checked_shl(host_bits).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let max = width(network);
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has a prefix length outside 0..={max}"))?,
        };
        // `10.0.0.1/8` is most likely a typo for a host or for `10.0.0.0/8`: refuse it
        // rather than guess.
        if masked(bits_of(network), max, prefix) != bits_of(network) {
            return Err(format!("{s:?} has bits set after the /{prefix} prefix"));
        }
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().expect("valid CIDR")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("valid IP")
    }

    #[test]
    fn ipv4_networks_contain_their_addresses_only() {
        let net = cidr("10.1.0.0/16");
        assert!(net.contains(ip("10.1.0.0")));
        assert!(net.contains(ip("10.1.255.254")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(!net.contains(ip("::1")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(cidr("192.0.2.7").contains(ip("192.0.2.7")));
        assert!(!cidr("192.0.2.7").contains(ip("192.0.2.8")));
        assert!(cidr("192.0.2.7/32").contains(ip("192.0.2.7")));
    }

    #[test]
    fn ipv6_networks_contain_their_addresses_only() {
        let net = cidr("2001:db8::/32");
        assert!(net.contains(ip("2001:db8::1")));
        assert!(net.contains(ip("2001:db8:ffff:ffff::1")));
        assert!(!net.contains(ip("2001:db9::1")));
        assert!(!net.contains(ip("10.0.0.1")));
        assert!(cidr("::/0").contains(ip("fe80::1")));
        assert!(cidr("::1").contains(ip("::1")));
        assert!(cidr("fd00::/8").contains(ip("fdff::1")));
    }

    #[test]
    fn ipv4_networks_match_ipv4_mapped_ipv6_addresses() {
        assert!(cidr("10.0.0.0/8").contains(ip("::ffff:10.9.8.7")));
        assert!(!cidr("10.0.0.0/8").contains(ip("::ffff:11.0.0.1")));
    }

    #[test]
    fn bad_cidrs_are_refused_with_a_reason() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/x",
            "example.com",
            "10.0.0.1/8",
            "10.0.0.0/-1",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
        assert_eq!(cidr(" 10.0.0.0/8 ").to_string(), "10.0.0.0/8");
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = [cidr("10.0.0.0/8")];
        assert_eq!(
            client_ip(Some(ip("203.0.113.5")), Some("1.2.3.4"), &trusted),
            Some(ip("203.0.113.5"))
        );
        assert_eq!(
            client_ip(Some(ip("203.0.113.5")), Some("1.2.3.4"), &[]),
            Some(ip("203.0.113.5"))
        );
        assert_eq!(client_ip(None, Some("1.2.3.4"), &trusted), None);
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted = [cidr("10.0.0.0/8"), cidr("fd00::/8")];
        let peer = Some(ip("10.0.0.2"));
        // The client spoofed 6.6.6.6; the proxies appended what they saw.
        assert_eq!(
            client_ip(peer, Some("6.6.6.6, 198.51.100.7, 10.0.0.9"), &trusted),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_ip(peer, Some("198.51.100.7"), &trusted),
            Some(ip("198.51.100.7"))
        );
        // Every hop trusted: the left-most is the best there is.
        assert_eq!(
            client_ip(peer, Some("10.0.0.5, 10.0.0.6"), &trusted),
            Some(ip("10.0.0.5"))
        );
        // No header: the proxy itself.
        assert_eq!(client_ip(peer, None, &trusted), peer);
        // Garbage ends the walk at the last trusted hop.
        assert_eq!(
            client_ip(peer, Some("nonsense, 10.0.0.7"), &trusted),
            Some(ip("10.0.0.7"))
        );
        // Ports and brackets are understood; mapped peers are matched as IPv4.
        assert_eq!(
            client_ip(
                Some(ip("::ffff:10.0.0.2")),
                Some("[2001:db8::5]:443, 192.0.2.1:8080"),
                &trusted
            ),
            Some(ip("192.0.2.1"))
        );
    }
}
