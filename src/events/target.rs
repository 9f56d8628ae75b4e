//! Where a webhook may be sent: only `http` or `https` URLs with a host, and (unless
//! `webhooks.allow_private_targets` is on) never an address on loopback, a private or
//! link-local range, or any other range that is not the public internet. The check runs
//! on the URL at registration and, for host names, on every address the name resolves
//! to at delivery time, so a name that later resolves to a private address (DNS
//! rebinding) is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a webhook target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("url is not a valid absolute URL")]
    NotAUrl,
    #[error("url must use http or https")]
    Scheme,
    #[error("url must name a host")]
    NoHost,
    #[error("url must not carry a user name or password")]
    Credentials,
    #[error("url must be at most 2048 characters")]
    TooLong,
    #[error("url points at a private, loopback or reserved address ({0}); set webhooks.allow_private_targets to allow it")]
    Private(IpAddr),
}

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Checks a webhook URL as given by an operator. A literal IP address is checked here;
/// a host name is checked again, address by address, when it is resolved
/// ([`check_addr`]).
pub fn check_url(raw: &str, allow_private: bool) -> Result<reqwest::Url, TargetError> {
    if raw.len() > MAX_URL_LEN {
        return Err(TargetError::TooLong);
    }
    let url = reqwest::Url::parse(raw).map_err(|_| TargetError::NotAUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    let ip = match url.host() {
        None => return Err(TargetError::NoHost),
        Some(url::Host::Domain("")) => return Err(TargetError::NoHost),
        Some(url::Host::Domain(d)) => {
            // `localhost` and its subdomains resolve to loopback by definition (RFC 6761).
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d == "localhost" || d.ends_with(".localhost") {
                Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
            } else {
                None
            }
        }
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let Some(ip) = ip {
        check_addr(ip, allow_private)?;
    }
    Ok(url)
}

/// Checks one address a target resolved to.
pub fn check_addr(ip: IpAddr, allow_private: bool) -> Result<(), TargetError> {
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(TargetError::Private(ip))
    }
}

/// Whether `ip` is a unicast address of the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), RFC 6598.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, RFC 6890.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, RFC 2544.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved for future use, RFC 1112.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (s[0] & 0xfe00) == 0xfc00
        // Link-local, fe80::/10.
        || (s[0] & 0xffc0) == 0xfe80
        // Site-local (deprecated), fec0::/10.
        || (s[0] & 0xffc0) == 0xfec0
        // Documentation, 2001:db8::/32.
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        // IPv4-compatible (deprecated) and other addresses in ::/96.
        || s[..6] == [0, 0, 0, 0, 0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_public_http_targets_pass_by_default() {
        for ok in [
            "https://hooks.example.com/emporium",
            "http://93.184.216.34:8080/x",
            "https://[2606:4700::1111]/",
        ] {
            assert!(check_url(ok, false).is_ok(), "{ok}");
        }
        let refused = [
            ("ftp://example.com/", TargetError::Scheme),
            ("file:///etc/passwd", TargetError::Scheme),
            ("not a url", TargetError::NotAUrl),
            ("https://user:pw@example.com/", TargetError::Credentials),
        ];
        for (url, want) in refused {
            assert_eq!(check_url(url, false).unwrap_err(), want, "{url}");
        }
        for private in [
            "http://127.0.0.1:9000/",
            "http://localhost/",
            "http://api.localhost./",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::a00:1]/",
            "http://2130706433/",
        ] {
            assert!(
                matches!(check_url(private, false), Err(TargetError::Private(_))),
                "{private} must be refused"
            );
            assert!(
                check_url(private, true).is_ok(),
                "{private} is allowed when private targets are"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(check_url(&long, false).unwrap_err(), TargetError::TooLong);
    }

    proptest! {
        /// Every address of the private and loopback IPv4 ranges is refused, in every
        /// spelling the URL parser accepts for it (dotted, and mapped into IPv6).
        #[test]
        fn private_v4_ranges_are_refused_in_any_spelling(b in any::<u8>(), c in any::<u8>(), d in any::<u8>(), which in 0usize..5) {
            let ip = match which {
                0 => Ipv4Addr::new(10, b, c, d),
                1 => Ipv4Addr::new(172, 16 + (b % 16), c, d),
                2 => Ipv4Addr::new(192, 168, c, d),
                3 => Ipv4Addr::new(127, b, c, d),
                _ => Ipv4Addr::new(169, 254, c, d),
            };
            prop_assert!(!is_public(IpAddr::V4(ip)));
            prop_assert!(!is_public(IpAddr::V6(ip.to_ipv6_mapped())));
            let dotted = format!("http://{ip}/");
            let mapped = format!("http://[{}]/", ip.to_ipv6_mapped());
            prop_assert!(matches!(check_url(&dotted, false), Err(TargetError::Private(_))));
            prop_assert!(matches!(check_url(&mapped, false), Err(TargetError::Private(_))));
        }
    }
}
