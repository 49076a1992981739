//! SSRF guard: a webhook may only reach public addresses.
//!
//! The check runs on the addresses the connection will actually use: host names go through
//! [`GuardedResolver`] (installed as reqwest's DNS resolver), which resolves once and hands
//! the connector only the addresses it allowed — there is no second lookup an attacker's DNS
//! could answer differently (no rebinding window). IP-literal URLs are never resolved, so
//! [`Guard::check_url`] checks them before the request is made.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsrfError {
    #[error("refused by the SSRF guard: {host} is a {class} address ({ip})")]
    Forbidden {
        host: String,
        ip: IpAddr,
        class: &'static str,
    },
    #[error("unsupported URL: {0}")]
    BadUrl(String),
    #[error("cannot resolve {host}: {detail}")]
    Resolve { host: String, detail: String },
}

/// Which destinations are allowed.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Allow every address (development and tests on loopback).
    pub allow_private: bool,
    /// Host names (lowercase) or IP literals reachable whatever they resolve to.
    pub allow_hosts: HashSet<String>,
}

impl Guard {
    pub fn new(allow_private: bool, allow_hosts: impl IntoIterator<Item = String>) -> Self {
        Self {
            allow_private,
            allow_hosts: allow_hosts
                .into_iter()
                .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
                .collect(),
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.allow_private
            || self
                .allow_hosts
                .contains(&host.trim_matches(['[', ']']).to_ascii_lowercase())
    }

    /// Check a destination URL before sending: scheme, and IP-literal hosts (which are never
    /// resolved). Host names are checked at connect time by the resolver.
    pub fn check_url(&self, raw: &str) -> Result<url::Url, SsrfError> {
        let url = url::Url::parse(raw).map_err(|e| SsrfError::BadUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SsrfError::BadUrl(format!(
                "scheme {:?} is not http or https",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| SsrfError::BadUrl("no host".into()))?
            .to_owned();
        if self.host_allowed(&host) {
            return Ok(url);
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = ip
            && let Some(class) = forbidden_class(ip)
        {
            return Err(SsrfError::Forbidden { host, ip, class });
        }
        Ok(url)
    }

    /// The allowed subset of `addrs`, or the reason none is.
    pub fn filter(&self, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, SsrfError> {
        if self.host_allowed(host) {
            return Ok(addrs);
        }
        let mut refused = None;
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match forbidden_class(a.ip()) {
                Some(class) => {
                    refused.get_or_insert((a.ip(), class));
                    false
                }
                None => true,
            })
            .collect();
        match (allowed.is_empty(), refused) {
            (false, _) => Ok(allowed),
            (true, Some((ip, class))) => Err(SsrfError::Forbidden {
                host: host.to_owned(),
                ip,
                class,
            }),
            (true, None) => Err(SsrfError::Resolve {
                host: host.to_owned(),
                detail: "no addresses".into(),
            }),
        }
    }
}

/// reqwest DNS resolver that resolves with the system resolver and drops forbidden
/// addresses, so the connector can only ever dial an allowed one.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub guard: Arc<Guard>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| SsrfError::Resolve {
                    host: host.clone(),
                    detail: e.to_string(),
                })?
                .collect();
            let allowed = guard.filter(&host, addrs)?;
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The class of a non-public address, or `None` for a public one.
pub fn forbidden_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let class = match o {
        [169, 254, 169, 254] => "cloud-metadata",
        [0, ..] => "unspecified",
        [127, ..] => "loopback",
        [10, ..] => "private",
        [172, b, ..] if (16..=31).contains(&b) => "private",
        [192, 168, ..] => "private",
        [169, 254, ..] => "link-local",
        [100, b, ..] if (64..=127).contains(&b) => "CGNAT",
        [192, 0, 0, _] => "IETF-reserved",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "documentation",
        [198, 18 | 19, ..] => "benchmarking",
        [255, 255, 255, 255] => "broadcast",
        [a, ..] if (224..=239).contains(&a) => "multicast",
        [a, ..] if a >= 240 => "reserved",
        _ => return None,
    };
    Some(class)
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("cloud-metadata");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    let embedded_v4 =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d carry an IPv4 address the
    // kernel may dial as IPv4: judge the embedded address.
    if s[..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) {
        return v4_class(embedded_v4(s[6], s[7])).or(if s[5] == 0 {
            Some("IPv4-compatible")
        } else {
            None
        });
    }
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) also embed IPv4 destinations.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_class(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return v4_class(embedded_v4(s[1], s[2]));
    }
    let class = match s[0] {
        x if x & 0xfe00 == 0xfc00 => "unique-local",
        x if x & 0xffc0 == 0xfe80 => "link-local",
        x if x & 0xffc0 == 0xfec0 => "site-local",
        x if x & 0xff00 == 0xff00 => "multicast",
        0x2001 if s[1] == 0x0db8 => "documentation",
        0x3fff if s[1] & 0xf000 == 0 => "documentation",
        0x0100 if s[1..4] == [0, 0, 0] => "discard-only",
        _ => return None,
    };
    Some(class)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<&'static str> {
        forbidden_class(s.parse().unwrap())
    }

    #[test]
    fn every_class_is_refused() {
        let cases = [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.1.1", "link-local"),
            ("169.254.169.254", "cloud-metadata"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.254", "CGNAT"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("255.255.255.255", "broadcast"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("192.0.2.10", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.200", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("192.0.0.8", "IETF-reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fd00:ec2::254", "cloud-metadata"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "cloud-metadata"),
            ("::ffff:100.64.1.1", "CGNAT"),
            ("::127.0.0.1", "loopback"),
            ("::8.8.8.8", "IPv4-compatible"),
            ("64:ff9b::7f00:1", "loopback"),
            ("2002:a00:1::", "private"),
            ("2002:7f00:1::", "loopback"),
        ];
        for (ip, want) in cases {
            assert_eq!(class(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "100.63.255.255",
            "192.169.0.1",
            "169.255.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_before_sending() {
        let guard = Guard::default();
        for bad in [
            "http://127.0.0.1/hook",
            "http://[::1]:8080/",
            "http://[::ffff:7f00:1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[fd00:ec2::254]/",
        ] {
            assert!(
                matches!(guard.check_url(bad), Err(SsrfError::Forbidden { .. })),
                "{bad}"
            );
        }
        for bad in ["ftp://example.com/", "file:///etc/passwd", "not a url"] {
            assert!(
                matches!(guard.check_url(bad), Err(SsrfError::BadUrl(_))),
                "{bad}"
            );
        }
        assert!(guard.check_url("https://example.com/hook").is_ok());
        assert!(guard.check_url("http://8.8.8.8/").is_ok());
        let allowed = Guard::new(
            false,
            ["127.0.0.1".to_owned(), "Internal.Example".to_owned()],
        );
        assert!(allowed.check_url("http://127.0.0.1:9/").is_ok());
        assert!(allowed.check_url("http://10.0.0.1/").is_err());
        let local: SocketAddr = "10.0.0.5:0".parse().unwrap();
        assert!(allowed.filter("internal.example", vec![local]).is_ok());
        assert!(allowed.filter("other.example", vec![local]).is_err());
        assert!(Guard::new(true, []).check_url("http://127.0.0.1/").is_ok());
    }

    #[test]
    fn resolution_keeps_only_public_addresses() {
        let guard = Guard::default();
        let public: SocketAddr = "8.8.8.8:0".parse().unwrap();
        let private: SocketAddr = "192.168.0.1:0".parse().unwrap();
        assert_eq!(
            guard
                .filter("mixed.example", vec![private, public])
                .unwrap(),
            vec![public]
        );
        assert!(matches!(
            guard.filter("evil.example", vec![private]),
            Err(SsrfError::Forbidden {
                class: "private",
                ..
            })
        ));
    }
}
