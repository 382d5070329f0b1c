//! SSRF guard: which addresses a webhook may connect to, and resolving a URL to one checked
//! address that the request is then pinned to.
//!
//! Refused unless `allow_private`: loopback, RFC 1918 private, unique local (fc00::/7),
//! link-local, CGNAT (100.64/10), unspecified and "this network" (0/8), multicast,
//! broadcast, reserved (240/4), documentation (192.0.2/24, 198.51.100/24, 203.0.113/24,
//! 2001:db8::/32), benchmarking (198.18/15), IETF protocol assignments (192.0.0/24), the
//! deprecated site-local fec0::/10, and any IPv6 form that embeds a refused IPv4 address
//! (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
//! `2002::/16`). Every resolved address must pass, so a name that also resolves to a
//! private address is refused rather than raced.

use std::net::{IpAddr, SocketAddr};

pub use voidrunner_domain::net::refused_range;

/// Why a target was refused; the text is safe to show to the execution's owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not an http(s) URL, or no host.
    #[error("callback_url is not an http(s) URL with a host")]
    BadUrl,
    /// The host did not resolve.
    #[error("host {host} did not resolve: {reason}")]
    Unresolved {
        /// Host name.
        host: String,
        /// Resolver message.
        reason: String,
    },
    /// The host resolves to (or is) a refused address.
    #[error("refused target {addr} ({range}); set webhooks.allow_private to allow it")]
    Forbidden {
        /// The address.
        addr: IpAddr,
        /// Which range it is in.
        range: &'static str,
    },
}

/// Checks every address; returns the first one (to pin the connection to) when all pass.
pub fn pick(addrs: &[SocketAddr], allow_private: bool) -> Result<SocketAddr, Refusal> {
    if !allow_private
        && let Some((addr, range)) = addrs
            .iter()
            .find_map(|a| refused_range(a.ip()).map(|r| (a.ip(), r)))
    {
        return Err(Refusal::Forbidden { addr, range });
    }
    addrs.first().copied().ok_or_else(|| Refusal::Unresolved {
        host: String::new(),
        reason: "no addresses".to_owned(),
    })
}

/// A URL resolved to the one address the request will connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: reqwest::Url,
    /// Its host (a name, or an IP literal without brackets).
    pub host: String,
    /// The checked address the connection is pinned to.
    pub addr: SocketAddr,
}

/// Parses, resolves and checks a callback URL.
pub async fn resolve(url: &str, allow_private: bool) -> Result<Target, Refusal> {
    let url = reqwest::Url::parse(url).map_err(|_| Refusal::BadUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refusal::BadUrl);
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(Refusal::BadUrl),
    };
    let port = url.port_or_known_default().ok_or(Refusal::BadUrl)?;
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| Refusal::Unresolved {
                host: host.clone(),
                reason: e.to_string(),
            })?
            .collect(),
    };
    let addr = pick(&addrs, allow_private).map_err(|r| match r {
        Refusal::Unresolved { reason, .. } => Refusal::Unresolved {
            host: host.clone(),
            reason,
        },
        other => other,
    })?;
    Ok(Target { url, host, addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_and_allowed_addresses() {
        let refused = [
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.10",
            "198.51.100.7",
            "203.0.113.200",
            "198.18.0.1",
            "192.0.0.8",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
        ];
        for s in refused {
            let ip: IpAddr = s.parse().expect(s);
            assert!(refused_range(ip).is_some(), "{s} must be refused");
        }
        let allowed = [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ];
        for s in allowed {
            let ip: IpAddr = s.parse().expect(s);
            assert_eq!(refused_range(ip), None, "{s} must be allowed");
        }
    }

    #[test]
    fn every_resolved_address_must_pass() {
        let public: SocketAddr = "93.184.216.34:443".parse().expect("addr");
        let private: SocketAddr = "10.0.0.5:443".parse().expect("addr");
        assert_eq!(pick(&[public], false), Ok(public));
        assert!(matches!(
            pick(&[public, private], false),
            Err(Refusal::Forbidden { .. })
        ));
        assert_eq!(pick(&[private, public], true), Ok(private));
        assert!(pick(&[], true).is_err());
    }

    #[tokio::test]
    async fn literals_and_names_are_checked() {
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]/",
            "http://localhost:8080/hook",
            "https://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data",
        ] {
            let got = resolve(url, false).await;
            assert!(
                matches!(got, Err(Refusal::Forbidden { .. })),
                "{url}: {got:?}"
            );
        }
        let ok = resolve("http://localhost:8080/hook", true)
            .await
            .expect("allowed");
        assert!(ok.addr.ip().is_loopback());
        assert_eq!(ok.addr.port(), 8080);
        assert_eq!(ok.host, "localhost");
        for bad in ["ftp://example.com/", "not a url", "file:///etc/passwd"] {
            assert_eq!(resolve(bad, true).await, Err(Refusal::BadUrl), "{bad}");
        }
    }
}
