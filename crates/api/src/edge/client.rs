//! Who a request comes from: the socket peer, unless the peer is a proxy the operator trusts;
//! then the address that proxy (and any trusted proxy before it) vouches for in
//! `X-Forwarded-For` or `Forwarded`. Forwarding headers from anyone else are ignored: a
//! client cannot pick the address its limits are counted against.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap, HeaderName};

/// The address a request is attributed to, in every request's extensions (set by the router).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

/// An address or a network: `192.0.2.7`, `10.0.0.0/8`, `::1`, `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not an IP address or network like 10.0.0.0/8");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s.trim(), None),
        };
        let addr = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Which header trusted proxies put the client's address in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

impl FromStr for ForwardedHeader {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(Self::XForwardedFor),
            "forwarded" => Ok(Self::Forwarded),
            _ => Err(format!(
                "{s:?}: use \"x-forwarded-for\" or \"forwarded\" (the header your proxy sets)"
            )),
        }
    }
}

/// How the client address of a request is found.
#[derive(Debug, Clone, Default)]
pub struct ClientAddressing {
    /// Peers whose forwarding header is believed. Empty (the default): none.
    pub trusted_proxies: Vec<IpNet>,
    pub header: ForwardedHeader,
}

impl ClientAddressing {
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(ip))
    }

    /// The client behind `peer`: walking the forwarding header from the nearest hop back,
    /// every address a trusted proxy reports is believed until one is not itself a trusted
    /// proxy; that one is the client. An unreadable hop ends the walk at the last proxy.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.is_trusted(client) {
            return client;
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => hops(headers, &X_FORWARDED_FOR, xff_hop),
            ForwardedHeader::Forwarded => hops(headers, &FORWARDED, forwarded_hop),
        };
        for hop in hops.into_iter().rev() {
            let Some(ip) = hop else {
                return client;
            };
            client = canonical(ip);
            if !self.is_trusted(client) {
                return client;
            }
        }
        client
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Every hop of every line of `name`, in order (the last is the nearest proxy's peer).
fn hops(
    headers: &HeaderMap,
    name: &HeaderName,
    parse: fn(&str) -> Option<IpAddr>,
) -> Vec<Option<IpAddr>> {
    let mut out = Vec::new();
    for value in headers.get_all(name) {
        match value.to_str() {
            Ok(line) => out.extend(line.split(',').map(|hop| parse(hop.trim()))),
            Err(_) => out.push(None),
        }
    }
    out
}

/// `192.0.2.7`, `192.0.2.7:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn xff_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// One `Forwarded` element: its `for=` parameter, quoted or not; `unknown` and obfuscated
/// identifiers are unreadable.
fn forwarded_hop(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then_some(value.trim())
    })?;
    let value = value.trim_matches('"');
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.split_once(']'))
        .map_or(value, |(inside, _)| inside);
    xff_hop(bare)
}

/// IPv4-mapped IPv6 (`::ffff:192.0.2.7`, from a dual-stack listener) as plain IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// What per-client limits count against: an IPv4 address, or an IPv6 /64 (one subscriber
/// usually holds a whole /64, so single IPv6 addresses would be free to rotate).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// The per-client key of a request: its [`ClientAddr`] (or socket peer when the router did
/// not set one), as [`client_key`].
pub fn client_key_of(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ClientAddr>()
        .map(|c| c.0)
        .or_else(|| {
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })
        .map(client_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn addressing(trusted: &[&str], header: ForwardedHeader) -> ClientAddressing {
        ClientAddressing {
            trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
            header,
        }
    }

    fn headers(name: &'static str, lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append(name, HeaderValue::from_str(line).unwrap());
        }
        h
    }

    #[test]
    fn networks_parse_and_match() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.200.1.2")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.1.1.1")), "mapped IPv4 is IPv4");
        let one: IpNet = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
        assert!(
            "0.0.0.0/0"
                .parse::<IpNet>()
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        for bad in ["10.0.0.0/33", "nope", "::/129", "10.0.0.0/", ""] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let a = addressing(&[], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(a.client_of(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        let a = addressing(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        assert_eq!(a.client_of(ip("198.51.100.1"), &h), ip("198.51.100.1"));
    }

    #[test]
    fn trusted_proxies_vouch_hop_by_hop() {
        let a = addressing(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        // The client forged a first hop; the proxy appended what it saw.
        let h = headers("x-forwarded-for", &["1.1.1.1, 203.0.113.9"]);
        assert_eq!(a.client_of(ip("10.0.0.2"), &h), ip("203.0.113.9"));
        // Two proxies, over two header lines.
        let h = headers("x-forwarded-for", &["1.1.1.1, 203.0.113.9", "10.0.0.3"]);
        assert_eq!(a.client_of(ip("10.0.0.2"), &h), ip("203.0.113.9"));
        // An unreadable hop: the last proxy is all that is known.
        let h = headers("x-forwarded-for", &["203.0.113.9, garbage, 10.0.0.3"]);
        assert_eq!(a.client_of(ip("10.0.0.2"), &h), ip("10.0.0.3"));
        // No header: the proxy itself.
        assert_eq!(
            a.client_of(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        // Ports and brackets.
        let h = headers("x-forwarded-for", &["[2001:db8::7]:4711"]);
        assert_eq!(a.client_of(ip("10.0.0.2"), &h), ip("2001:db8::7"));
        // The other header is not read.
        let h = headers("forwarded", &["for=203.0.113.9"]);
        assert_eq!(a.client_of(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn forwarded_header_elements() {
        let a = addressing(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        let h = headers(
            "forwarded",
            &["for=1.1.1.1, for=\"[2001:db8:cafe::17]:4711\";proto=https;by=10.0.0.9"],
        );
        assert_eq!(a.client_of(ip("10.0.0.2"), &h), ip("2001:db8:cafe::17"));
        let h = headers("forwarded", &["For=203.0.113.9:80;proto=http"]);
        assert_eq!(a.client_of(ip("10.0.0.2"), &h), ip("203.0.113.9"));
        let h = headers("forwarded", &["for=unknown"]);
        assert_eq!(a.client_of(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        let h = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(a.client_of(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        assert_eq!(client_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_key(ip("192.0.2.7")), ip("192.0.2.7"));
    }
}
