//! Where webhooks may go. In production only `https`; and never to loopback, private,
//! link-local, shared (CGNAT) or cloud metadata addresses, checked on the URL at creation
//! and on the resolved addresses at every attempt (the connection goes to the address
//! that was checked), unless `WEBHOOK_ALLOW_PRIVATE_TARGETS=true`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::http::Uri;

/// The rules a target is checked against.
#[derive(Debug, Clone, Copy)]
pub struct TargetRules {
    pub require_https: bool,
    pub allow_private: bool,
}

/// Why a target is refused (the message is shown to the tenant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// A parsed target: the URL, and its host and port for resolution.
#[derive(Debug, Clone)]
pub struct Target {
    pub uri: Uri,
    pub host: String,
    pub port: u16,
}

/// Checks the URL's form: absolute, `http(s)` (`https` when required), no user info, at
/// most 2,000 characters; an IP literal host is checked here too.
pub fn parse(url: &str, rules: TargetRules) -> Result<Target, Refused> {
    if url.len() > 2000 {
        return Err(Refused("must be at most 2000 characters".into()));
    }
    let uri: Uri = url
        .parse()
        .map_err(|_| Refused("must be an absolute http(s) URL".into()))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") if !rules.require_https => false,
        Some("http") => return Err(Refused("must use https".into())),
        _ => return Err(Refused("must be an absolute http(s) URL".into())),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| Refused("must be an absolute http(s) URL".into()))?;
    if authority.as_str().contains('@') {
        return Err(Refused("must not carry credentials".into()));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if host.is_empty() {
        return Err(Refused("must name a host".into()));
    }
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    if let Ok(ip) = host.parse::<IpAddr>() {
        check_ip(ip, rules)?;
    }
    Ok(Target { uri, host, port })
}

/// Refuses an address the rules do not allow.
pub fn check_ip(ip: IpAddr, rules: TargetRules) -> Result<(), Refused> {
    if rules.allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(Refused(format!(
            "resolves to {ip}, a loopback, private, link-local or metadata address"
        )))
    }
}

/// Resolves `host` and checks every address: one forbidden address refuses the target
/// (a name that answers both public and private addresses is not trusted).
pub async fn resolve(
    host: &str,
    port: u16,
    rules: TargetRules,
) -> Result<Vec<SocketAddr>, Refused> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| Refused(format!("{host} does not resolve: {e}")))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(Refused(format!("{host} does not resolve")));
    }
    for addr in &addrs {
        check_ip(addr.ip(), rules)?;
    }
    Ok(addrs)
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254.0.0/16, the metadata address among them
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) carries an IPv4 address: judge that one.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let [.., a, b, c, d] = ip.octets();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local, fd00:ec2::254 (AWS metadata) among them
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[0..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible, ::/96
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: TargetRules = TargetRules {
        require_https: true,
        allow_private: false,
    };

    #[test]
    fn private_and_metadata_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            let ip: IpAddr = ip.parse().expect("an address");
            assert!(!is_public(ip), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            let ip: IpAddr = ip.parse().expect("an address");
            assert!(is_public(ip), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_credentials_and_literal_addresses() {
        assert!(parse("https://hooks.example.com/in", STRICT).is_ok());
        for bad in [
            "http://hooks.example.com/in",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00:ec2::254]/",
            "https://[::1]:8443/",
            "/relative",
        ] {
            assert!(parse(bad, STRICT).is_err(), "{bad}");
        }
        let relaxed = TargetRules {
            require_https: false,
            allow_private: true,
        };
        let t = parse("http://127.0.0.1:9000/hook", relaxed).expect("allowed");
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 9000));
    }
}
