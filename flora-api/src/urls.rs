//! Origin rules, decided once: which URLs are sent where, and what of a URL may be shown.
//!
//! Plain `http://` is accepted only on loopback (local test servers); the API key goes only to
//! the configured base URL's origin; messages show a URL without its query (signed URLs carry
//! tokens there) and a host as `host:port`.

use url::{Host, Url};

/// Where FLORA serves its API on a host.
pub(crate) const API_PATH: &str = "/api/v1";

/// `localhost`, `127.0.0.0/8` or `::1`: the only hosts plain `http://` is allowed for.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `https://`, or `http://` on a loopback host: the URLs sent to upload and media hosts.
pub(crate) fn is_https_or_loopback(url: &Url) -> bool {
    url.scheme() == "https" || (url.scheme() == "http" && is_loopback(url))
}

/// Whether `url` is on the scheme, host and port of `base`: the only origin that may see the
/// API key (a `poll_url` elsewhere is ignored).
pub(crate) fn same_origin(url: &Url, base: &Url) -> bool {
    url.origin() == base.origin()
}

/// A URL without query and fragment, for messages (signed URLs carry tokens there).
pub(crate) fn strip_query(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            u.into()
        }
        Err(_) => url.split(['?', '#']).next().unwrap_or("").to_owned(),
    }
}

/// `host:port` of a URL, for messages (never the path or query).
pub(crate) fn host(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => "the server".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn loopback_and_https_rules() {
        for ok in [
            "https://example.com/x",
            "http://127.0.0.1:9/x",
            "http://127.9.9.9/",
            "http://localhost/",
            "http://[::1]:8/",
        ] {
            assert!(is_https_or_loopback(&u(ok)), "{ok}");
        }
        for bad in [
            "http://example.com/",
            "http://10.0.0.1/",
            "ftp://127.0.0.1/",
        ] {
            assert!(!is_https_or_loopback(&u(bad)), "{bad}");
        }
    }

    #[test]
    fn origins_and_what_messages_show() {
        let base = u("https://app.flora.ai/api/v1");
        assert!(same_origin(&u("https://app.flora.ai/api/v1/runs/r"), &base));
        assert!(!same_origin(&u("https://app.flora.ai:444/x"), &base));
        assert!(!same_origin(&u("http://app.flora.ai/x"), &base));
        assert_eq!(
            strip_query("https://h/a.png?X-Sig=secret#f"),
            "https://h/a.png"
        );
        assert_eq!(strip_query("not a url?token=1"), "not a url");
        assert_eq!(host(&u("https://h.example/a?b")), "h.example:443");
        assert_eq!(host(&u("http://127.0.0.1:8080/")), "127.0.0.1:8080");
    }
}
