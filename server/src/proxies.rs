//! Who the client is behind reverse proxies. `X-Forwarded-For` is believed only from the proxies
//! the operator lists (`http.trusted_proxies`): anyone else could write any address into it, and a
//! rate limit keyed on a made-up address limits nothing.

use std::net::IpAddr;

use ipnet::IpNet;

/// The client's address as [`TrustedProxies::client`] found it, in each request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client(pub IpAddr);

/// The configured proxies: addresses or ranges (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Read the configured entries, naming the first one that is neither an address nor a range.
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "http.trusted_proxies: `{entry}` is neither an IP address nor a range such as 10.0.0.0/8"
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client's address: the connection's peer, unless that is a trusted proxy; then the
    /// nearest address in `X-Forwarded-For` (read from the right, as each proxy appends the one
    /// it saw) that is not itself a trusted proxy. An unreadable entry stops the walk at the last
    /// address that was trusted to say it.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let mut client = peer;
        if !self.trusts(peer) {
            return client;
        }
        for hop in forwarded_for
            .iter()
            .rev()
            .flat_map(|header| header.rsplit(','))
        {
            match hop.trim().parse::<IpAddr>() {
                Ok(address) => {
                    client = address;
                    if !self.trusts(address) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into(), "192.0.2.7".into()]).unwrap();
        // Straight from the internet: the header is whatever the client wrote.
        assert_eq!(
            proxies.client(ip("203.0.113.9"), &["1.2.3.4"]),
            ip("203.0.113.9")
        );
        // Through our proxy: the address it saw.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &["198.51.100.4"]),
            ip("198.51.100.4")
        );
        // A client's own forged entries sit left of what our proxies appended.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &["1.2.3.4, 198.51.100.4, 192.0.2.7"]),
            ip("198.51.100.4")
        );
        // Over several headers, the last header's last entry is nearest.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &["1.2.3.4", "198.51.100.4"]),
            ip("198.51.100.4")
        );
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &["nonsense, 10.9.9.9"]),
            ip("10.9.9.9")
        );
        // No header: the proxy itself.
        assert_eq!(proxies.client(ip("10.1.2.3"), &[]), ip("10.1.2.3"));
        // Nobody trusted: never the header.
        assert_eq!(
            TrustedProxies::default().client(ip("10.1.2.3"), &["198.51.100.4"]),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn a_bad_entry_is_named() {
        let err = TrustedProxies::parse(&["10.0.0.0/8".into(), "proxy.local".into()]).unwrap_err();
        assert!(err.contains("`proxy.local`"), "{err}");
        assert!(TrustedProxies::parse(&["fd00::/8".into(), "::1".into()]).is_ok());
    }
}
