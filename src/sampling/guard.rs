//! The SSRF guard. Tenants choose the URLs aupd fetches, so every outbound
//! request is checked here: scheme, credentials, and every address the host
//! resolves to. The HTTP client resolves through the same guard, so the
//! address it connects to is one that was checked (no DNS rebinding).
//! Reusable by webhook delivery.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use ipnet::IpNet;
use url::{Host, Url};

/// Why a URL or address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not http or https.
    #[error("scheme `{0}` is not allowed (only http and https)")]
    Scheme(String),
    /// `user:pass@` in the URL.
    #[error("URLs with credentials are not allowed")]
    Credentials,
    /// No host.
    #[error("the URL has no host")]
    NoHost,
    /// The address is in a forbidden range.
    #[error("{ip} is a {class} address")]
    Address {
        /// The address.
        ip: IpAddr,
        /// Which range, in words.
        class: &'static str,
    },
    /// The host did not resolve.
    #[error("cannot resolve {host}: {message}")]
    Resolve {
        /// Host.
        host: String,
        /// Cause.
        message: String,
    },
    /// Too many redirects.
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    /// A redirect without a usable `Location`.
    #[error("redirect with a bad Location: {0}")]
    BadRedirect(String),
}

/// Resolves host names to addresses.
pub trait Resolver: Send + Sync + fmt::Debug {
    /// Every address of `host`.
    fn resolve(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let host = host.to_string();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// A fixed table of names (for tests; like `curl --resolve`). Names not in
/// the table fail to resolve.
#[derive(Debug, Default, Clone)]
pub struct StaticResolver(HashMap<String, Vec<IpAddr>>);

impl StaticResolver {
    /// A table mapping each name to its addresses.
    pub fn new(entries: impl IntoIterator<Item = (String, Vec<IpAddr>)>) -> Self {
        StaticResolver(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        )
    }
}

impl Resolver for StaticResolver {
    fn resolve(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let found = self.0.get(&host.to_ascii_lowercase()).cloned();
        Box::pin(async move {
            found.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "unknown host"))
        })
    }
}

/// Checks URLs and addresses before aupd connects anywhere.
#[derive(Debug, Clone)]
pub struct Guard {
    allow: Vec<IpNet>,
    resolver: Arc<dyn Resolver>,
}

const METADATA_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack…
    Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task metadata
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
    Ipv4Addr::new(192, 0, 0, 192),     // Oracle Cloud
];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)];

fn in4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn in6(ip: Ipv6Addr, net: [u16; 8], bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    (u128::from(ip) & mask) == (u128::from(Ipv6Addr::from(net)) & mask)
}

/// Why `ip` is not a public unicast address, or `None` if it is.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if METADATA_V4.contains(&ip) {
        return Some("cloud metadata");
    }
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([255, 255, 255, 255], 32, "broadcast"),
        ([0, 0, 0, 0], 8, "unspecified (this-network)"),
        ([10, 0, 0, 0], 8, "private"),
        ([100, 64, 0, 0], 10, "carrier-grade NAT (shared)"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 0, 0, 0], 24, "IETF protocol assignment (reserved)"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([192, 88, 99, 0], 24, "6to4 relay (reserved)"),
        ([192, 168, 0, 0], 16, "private"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved"),
    ];
    RANGES
        .iter()
        .find(|(net, bits, _)| in4(ip, *net, *bits))
        .map(|(_, _, class)| *class)
}

/// The IPv4 address embedded in an IPv6 form that reaches it (mapped,
/// compatible, NAT64, 6to4), if any.
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if in6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96) // ::ffff:a.b.c.d mapped
        || in6(ip, [0, 0, 0, 0, 0, 0, 0, 0], 96) // ::a.b.c.d compatible
        || in6(ip, [0, 0, 0, 0, 0xffff, 0, 0, 0], 96) // ::ffff:0:a.b.c.d translated
        || in6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    // NAT64 well-known prefix
    {
        return Some(low32);
    }
    if in6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if METADATA_V6.contains(&ip) {
        return Some("cloud metadata");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    const RANGES: &[([u16; 8], u32, &str)] = &[
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "local-use NAT64"),
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only (reserved)"),
        ([0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48, "benchmarking"),
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, "documentation"),
        ([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28, "ORCHID (reserved)"),
        (
            [0x2001, 0, 0, 0, 0, 0, 0, 0],
            32,
            "Teredo tunnel (reserved)",
        ),
        (
            [0x2001, 0, 0, 0, 0, 0, 0, 0],
            23,
            "IETF protocol assignment (reserved)",
        ),
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "documentation"),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique-local (private)"),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local"),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "site-local (deprecated)"),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast"),
    ];
    if let Some((_, _, class)) = RANGES.iter().find(|(net, bits, _)| in6(ip, *net, *bits)) {
        return Some(class);
    }
    // Only 2000::/3 is allocated global unicast.
    if !in6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        return Some("reserved");
    }
    None
}

impl Guard {
    /// A guard that opens the `allow` ranges and resolves with `resolver`.
    pub fn new(allow: Vec<IpNet>, resolver: Arc<dyn Resolver>) -> Self {
        Guard { allow, resolver }
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        let v4 = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allow
            .iter()
            .any(|net| net.contains(&ip) || v4.is_some_and(|v4| net.contains(&v4)))
    }

    /// Checks one address. Cloud metadata addresses stay refused even when
    /// an allow-listed range covers them.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        match classify(ip) {
            None => Ok(()),
            Some(class @ "cloud metadata") => Err(Refusal::Address { ip, class }),
            Some(_) if self.allowed(ip) => Ok(()),
            Some(class) => Err(Refusal::Address { ip, class }),
        }
    }

    /// Checks the parts of a URL that need no lookup; returns the host to
    /// resolve, or the checked address of an IP-literal URL.
    pub fn check_url_shape(&self, url: &Url) -> Result<Target, Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::Scheme(url.scheme().to_string()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Credentials);
        }
        // The URL parser already turned decimal, octal and hex IPv4 forms
        // (http://2130706433/, http://0x7f.1/) into addresses.
        match url.host() {
            None => Err(Refusal::NoHost),
            Some(Host::Ipv4(ip)) => self
                .check_ip(IpAddr::V4(ip))
                .map(|_| Target::Ip(IpAddr::V4(ip))),
            Some(Host::Ipv6(ip)) => self
                .check_ip(IpAddr::V6(ip))
                .map(|_| Target::Ip(IpAddr::V6(ip))),
            Some(Host::Domain(d)) => Ok(Target::Name(d.trim_end_matches('.').to_string())),
        }
    }

    /// Resolves `host` and checks every address; refuses if any is forbidden.
    pub async fn resolve_checked(&self, host: &str) -> Result<Vec<IpAddr>, Refusal> {
        if let Ok(ip) = host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            self.check_ip(ip)?;
            return Ok(vec![ip]);
        }
        let addrs = self
            .resolver
            .resolve(host)
            .await
            .map_err(|e| Refusal::Resolve {
                host: host.to_string(),
                message: e.to_string(),
            })?;
        if addrs.is_empty() {
            return Err(Refusal::Resolve {
                host: host.to_string(),
                message: "no addresses".into(),
            });
        }
        for ip in &addrs {
            self.check_ip(*ip)?;
        }
        Ok(addrs)
    }

    /// Checks a URL fully: shape, then every address its host resolves to.
    pub async fn check_url(&self, url: &Url) -> Result<Vec<IpAddr>, Refusal> {
        match self.check_url_shape(url)? {
            Target::Ip(ip) => Ok(vec![ip]),
            Target::Name(host) => self.resolve_checked(&host).await,
        }
    }
}

/// Where a URL points, after its shape was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An IP-literal URL (already checked).
    Ip(IpAddr),
    /// A host name to resolve.
    Name(String),
}

/// The guard as reqwest's resolver: the client connects only to addresses
/// the guard checked at connect time.
#[derive(Debug, Clone)]
pub struct GuardedDns(pub Arc<Guard>);

impl reqwest::dns::Resolve for GuardedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = guard
                .resolve_checked(&host)
                .await
                .map_err(|r| -> Box<dyn std::error::Error + Send + Sync> { Box::new(r) })?;
            let addrs: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allow: &[&str]) -> Guard {
        let resolver = StaticResolver::new([
            (
                "public.example".to_string(),
                vec!["93.184.216.34".parse().unwrap()],
            ),
            (
                "internal.example".to_string(),
                vec!["10.1.2.3".parse().unwrap()],
            ),
            (
                "mixed.example".to_string(),
                vec![
                    "93.184.216.34".parse().unwrap(),
                    "192.168.1.1".parse().unwrap(),
                ],
            ),
            (
                "metadata.example".to_string(),
                vec!["169.254.169.254".parse().unwrap()],
            ),
            ("v6local.example".to_string(), vec!["::1".parse().unwrap()]),
        ]);
        Guard::new(
            allow.iter().map(|s| s.parse().unwrap()).collect(),
            Arc::new(resolver),
        )
    }

    fn refused(url: &str) -> Refusal {
        let g = guard(&[]);
        let url = Url::parse(url).unwrap();
        futures_executor(g.check_url(&url)).unwrap_err()
    }

    fn futures_executor<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn class_of(url: &str) -> &'static str {
        match refused(url) {
            Refusal::Address { class, .. } => class,
            other => panic!("{url}: expected an address refusal, got {other:?}"),
        }
    }

    #[test]
    fn every_forbidden_ipv4_range_is_refused() {
        let cases = [
            ("http://127.0.0.1/", "loopback"),
            ("http://127.255.0.9/", "loopback"),
            ("http://10.0.0.1/", "private"),
            ("http://172.16.5.4/", "private"),
            ("http://172.31.255.255/", "private"),
            ("http://192.168.0.10/", "private"),
            ("http://169.254.1.1/", "link-local"),
            ("http://100.64.0.1/", "carrier-grade NAT (shared)"),
            ("http://100.127.255.254/", "carrier-grade NAT (shared)"),
            ("http://224.0.0.1/", "multicast"),
            ("http://239.255.255.250/", "multicast"),
            ("http://192.0.2.1/", "documentation"),
            ("http://198.51.100.7/", "documentation"),
            ("http://203.0.113.9/", "documentation"),
            ("http://198.18.0.1/", "benchmarking"),
            ("http://198.19.255.1/", "benchmarking"),
            ("http://240.0.0.1/", "reserved"),
            ("http://0.0.0.0/", "unspecified (this-network)"),
            ("http://255.255.255.255/", "broadcast"),
            ("http://192.0.0.8/", "IETF protocol assignment (reserved)"),
            ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
            ("http://169.254.170.2/v2/credentials", "cloud metadata"),
            ("http://100.100.100.200/", "cloud metadata"),
        ];
        for (url, class) in cases {
            assert_eq!(class_of(url), class, "{url}");
        }
    }

    #[test]
    fn every_forbidden_ipv6_range_is_refused() {
        let cases = [
            ("http://[::1]/", "loopback"),
            ("http://[::]/", "unspecified"),
            ("http://[fd00:ec2::254]/", "cloud metadata"),
            ("http://[fc00::1]/", "unique-local (private)"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[ff02::1]/", "multicast"),
            ("http://[2001:db8::1]/", "documentation"),
            ("http://[2001:2::1]/", "benchmarking"),
            ("http://[2001::1]/", "Teredo tunnel (reserved)"),
            ("http://[64:ff9b:1::1]/", "local-use NAT64"),
            ("http://[100::1]/", "discard-only (reserved)"),
            ("http://[fec0::1]/", "site-local (deprecated)"),
            ("http://[4000::1]/", "reserved"),
        ];
        for (url, class) in cases {
            assert_eq!(class_of(url), class, "{url}");
        }
    }

    #[test]
    fn ipv6_forms_of_forbidden_ipv4_addresses_are_refused() {
        let cases = [
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://[::ffff:a9fe:a9fe]/", "cloud metadata"),
            ("http://[::10.0.0.1]/", "private"),
            ("http://[64:ff9b::169.254.169.254]/", "cloud metadata"),
            ("http://[64:ff9b::7f00:1]/", "loopback"),
            ("http://[2002:7f00:1::]/", "loopback"),
            ("http://[2002:c0a8:101::1]/", "private"),
        ];
        for (url, class) in cases {
            assert_eq!(class_of(url), class, "{url}");
        }
    }

    #[test]
    fn decimal_octal_and_hex_ipv4_forms_are_refused() {
        for url in [
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.0.0.1/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://017700000001/",
        ] {
            assert_eq!(class_of(url), "loopback", "{url}");
        }
        assert_eq!(class_of("http://2852039166/"), "cloud metadata");
    }

    #[test]
    fn other_schemes_and_credentials_are_refused() {
        for url in [
            "file:///etc/passwd",
            "ftp://public.example/",
            "gopher://public.example/",
            "data:text/plain,hi",
        ] {
            assert!(matches!(refused(url), Refusal::Scheme(_)), "{url}");
        }
        assert_eq!(
            refused("http://user:pw@public.example/"),
            Refusal::Credentials
        );
        assert_eq!(refused("http://user@public.example/"), Refusal::Credentials);
    }

    #[test]
    fn a_hostname_resolving_to_a_private_address_is_refused() {
        assert_eq!(class_of("http://internal.example/"), "private");
        assert_eq!(class_of("http://metadata.example/"), "cloud metadata");
        assert_eq!(class_of("http://v6local.example/"), "loopback");
    }

    #[test]
    fn one_private_address_among_public_ones_refuses_the_host() {
        assert_eq!(class_of("https://mixed.example/feed"), "private");
    }

    #[test]
    fn unknown_hosts_are_refused_with_the_resolver_error() {
        assert!(matches!(
            refused("http://nowhere.example/"),
            Refusal::Resolve { .. }
        ));
    }

    #[test]
    fn public_addresses_and_names_pass() {
        let g = guard(&[]);
        for url in [
            "http://public.example/x",
            "https://93.184.216.34/",
            "http://[2606:2800:220:1:248:1893:25c8:1946]/",
        ] {
            assert!(
                futures_executor(g.check_url(&Url::parse(url).unwrap())).is_ok(),
                "{url}"
            );
        }
    }

    #[test]
    fn the_allow_list_opens_exactly_its_ranges_but_never_metadata() {
        let g = guard(&["127.0.0.0/8", "::1/128", "169.254.0.0/16"]);
        let check = |u: &str| futures_executor(g.check_url(&Url::parse(u).unwrap()));
        assert!(check("http://127.0.0.1:8080/").is_ok());
        assert!(check("http://[::1]/").is_ok());
        assert!(check("http://[::ffff:127.0.0.1]/").is_ok());
        assert!(check("http://v6local.example/").is_ok());
        assert!(check("http://169.254.1.1/").is_ok());
        assert!(check("http://10.0.0.1/").is_err());
        assert!(check("http://169.254.169.254/").is_err());
        assert!(check("http://[fd00:ec2::254]/").is_err());
    }
}
