//! Client addresses masked as access-log lines are read: an address keeps
//! its network part only (IPv4 /16 or /24, IPv6 /48), in the table, in the
//! quarantine and in every message, unless the source declares
//! `ip_mask: none`.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;

use crate::pipeline::IpMask;

/// The address with its host part zeroed; a value that is not an address
/// (`-`, a host name) is kept as written.
pub fn mask_address(value: &str, mask: IpMask) -> Cow<'_, str> {
    if mask == IpMask::None {
        return Cow::Borrowed(value);
    }
    match value.trim().parse::<IpAddr>() {
        Ok(address) => Cow::Owned(masked(address, mask).to_string()),
        Err(_) => Cow::Borrowed(value),
    }
}

/// Every IPv4 and IPv6 address in a text (a rejected line, a reason)
/// masked as [`mask_address`] masks one.
pub fn mask_addresses_in(text: &str, mask: IpMask) -> Cow<'_, str> {
    static IPV4: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"\b\d{1,3}(?:\.\d{1,3}){3}\b").ok());
    // Candidates only: each is kept if it does not parse as an address
    // (a time such as `10:05:03` does not).
    static IPV6: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}").ok());
    if mask == IpMask::None {
        return Cow::Borrowed(text);
    }
    let (Some(ipv4), Some(ipv6)) = (IPV4.as_ref(), IPV6.as_ref()) else {
        return Cow::Borrowed(text);
    };
    let replace = |re: &Regex, text: &str| -> Option<String> {
        re.is_match(text).then(|| {
            re.replace_all(text, |caps: &regex::Captures| {
                mask_address(&caps[0], mask).into_owned()
            })
            .into_owned()
        })
    };
    match replace(ipv4, text) {
        Some(once) => Cow::Owned(replace(ipv6, &once).unwrap_or(once)),
        None => replace(ipv6, text).map_or(Cow::Borrowed(text), Cow::Owned),
    }
}

fn masked(address: IpAddr, mask: IpMask) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let bits = match mask {
                IpMask::Prefix24 => 24,
                _ => 16,
            };
            let kept = u32::from(v4) & (u32::MAX << (32 - bits));
            IpAddr::V4(Ipv4Addr::from(kept))
        }
        IpAddr::V6(v6) => {
            let kept = u128::from(v6) & (u128::MAX << (128 - 48));
            IpAddr::V6(Ipv6Addr::from(kept))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_keep_their_network_part_only() {
        assert_eq!(mask_address("83.149.9.216", IpMask::Prefix16), "83.149.0.0");
        assert_eq!(mask_address("83.149.9.216", IpMask::Prefix24), "83.149.9.0");
        assert_eq!(
            mask_address("2001:db8:85a3:8d3:1319:8a2e:370:7348", IpMask::Prefix16),
            "2001:db8:85a3::"
        );
        assert_eq!(mask_address("83.149.9.216", IpMask::None), "83.149.9.216");
        assert_eq!(mask_address("-", IpMask::Prefix16), "-");
        assert_eq!(
            mask_address("host.example.it", IpMask::Prefix16),
            "host.example.it"
        );
    }

    #[test]
    fn addresses_inside_a_text_are_masked_and_times_are_not() {
        let line = "83.149.9.216 - - [17/May/2015:10:05:03 +0200] \"GET /a?from=10.1.2.3 HTTP/1.1\" 2001:db8:85a3::7348 oops";
        let masked = mask_addresses_in(line, IpMask::Prefix16);
        assert_eq!(
            masked,
            "83.149.0.0 - - [17/May/2015:10:05:03 +0200] \"GET /a?from=10.1.0.0 HTTP/1.1\" 2001:db8:85a3:: oops"
        );
        assert!(matches!(
            mask_addresses_in("no address here", IpMask::Prefix16),
            Cow::Borrowed(_)
        ));
    }
}
