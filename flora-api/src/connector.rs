//! The one seam where a request leaves the process.
//!
//! [`Client`](crate::Client)'s `send` hands every built request, to the API or to another
//! origin (signed upload hosts, media hosts), to one [`Connector`]. Production uses
//! [`ReqwestConnector`]; the fake (`FakeFlora`, feature `test-util`) implements it to answer
//! in-process, below the client's retries, idempotency keys, permits and timeouts, so a test
//! runs the production code paths. Timeouts are not the connector's job: `send` applies them
//! around it (a total per attempt, or no-progress for streamed bodies).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::Error;
use crate::urls::is_https_or_loopback;

/// Which kind of host a request goes to; it decides which HTTP settings apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The FLORA API at the base URL: carries the key; redirects are never followed.
    Api,
    /// Another origin (upload target, media host): no key, no custom headers; redirects are
    /// followed to `https://` (or loopback `http://`) only.
    Foreign,
}

/// What a connector's send returns: the answer's head (its body streams on), or a transport
/// error (connection refused, reset, TLS, DNS).
pub(crate) type Sending<'a> =
    Pin<Box<dyn Future<Output = Result<reqwest::Response, reqwest::Error>> + Send + 'a>>;

/// Sends one built HTTP request and returns its answer. No retries, no timeouts: those are
/// `Client::send`'s, written once above this seam.
pub(crate) trait Connector: Send + Sync + 'static {
    /// Sends `request` to a host of the given kind.
    fn send(&self, request: reqwest::Request, origin: Origin) -> Sending<'_>;

    /// Whether `send`'s per-attempt timeouts apply. An in-process fake answers at once, and
    /// under a paused test clock a timer would fire while a file is read on a blocking thread.
    fn timeouts_apply(&self) -> bool {
        true
    }
}

/// reqwest over the network: one client for the API, one key-less client for other origins.
pub(crate) struct ReqwestConnector {
    api: reqwest::Client,
    foreign: reqwest::Client,
}

/// Makes ring the process's rustls crypto provider, unless one is installed already (then it
/// is left in place). flora-api builds reqwest without a provider of its own (aws-lc-rs is a
/// C build), and reqwest panics building a client when none is installed: every client this
/// crate builds calls this first.
///
/// Call it yourself before building a `reqwest::Client` of your own with
/// [`flora_api::reqwest`](crate::reqwest) (for [`ClientBuilder::http_client`]) ahead of any
/// [`Client`](crate::Client). Calling it again does nothing.
///
/// [`ClientBuilder::http_client`]: crate::ClientBuilder::http_client
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // rustls 0.23.48 deprecates its ring provider (no post-quantum key exchange) and
            // offers no other way to name it; flora-api keeps ring (no C build; BENCHMARKS §7)
            // until rustls ships its successor. The allow covers this one call, so users'
            // `-D warnings` builds stay clean with the newest rustls (CI builds them).
            #[allow(deprecated)]
            let ring = rustls::crypto::ring::default_provider();
            // `Err`: another thread installed one meanwhile, which is all we need.
            let _ = ring.install_default();
        }
    });
}

impl ReqwestConnector {
    /// `api` is the user's client (`ClientBuilder::http_client`) or ours, which never follows
    /// redirects: the key must only ever go to the configured origin.
    pub(crate) fn new(api: Option<reqwest::Client>) -> Result<Self, Error> {
        install_crypto_provider();
        let api = match api {
            Some(c) => c,
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(build_failed)?,
        };
        Ok(ReqwestConnector {
            api,
            foreign: foreign_client()?,
        })
    }

    /// A client used only to shape requests (its builder), when another connector sends them.
    pub(crate) fn request_shaper() -> Result<reqwest::Client, Error> {
        install_crypto_provider();
        reqwest::Client::builder().build().map_err(build_failed)
    }

    /// The client whose builder shapes requests (multipart bodies, headers) before `send`.
    pub(crate) fn api_client(&self) -> &reqwest::Client {
        &self.api
    }
}

impl Connector for ReqwestConnector {
    fn send(&self, request: reqwest::Request, origin: Origin) -> Sending<'_> {
        let client = match origin {
            Origin::Api => &self.api,
            Origin::Foreign => &self.foreign,
        };
        Box::pin(client.execute(request))
    }
}

fn build_failed(e: reqwest::Error) -> Error {
    Error::Config(format!("could not build the HTTP client: {e}"))
}

/// The client for other origins. Redirects are followed (storage and CDN hosts use them) but
/// only to `https://` or loopback `http://`, and never from `https://` down to `http://` (a
/// media host must not make the client fetch a local service). No read or total timeout
/// here: `send` bounds an attempt by its progress, so a large upload may take as long as it
/// keeps moving.
fn foreign_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::custom(
            |attempt| match redirect_refusal(attempt.url(), attempt.previous()) {
                Some(why) => attempt.error(why),
                None => attempt.follow(),
            },
        ))
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(build_failed)
}

/// Connecting to another origin gives up after this long (each attempt; then `send` retries).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a URL names a private, loopback, link-local or unspecified address by its IP.
fn names_private_address(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => {
            ip.is_private()
                || ip.is_loopback()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
        }
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Why a redirect to `next` (after `previous`) is not followed, if it is not.
fn redirect_refusal(next: &url::Url, previous: &[url::Url]) -> Option<&'static str> {
    let downgrade = next.scheme() != "https" && previous.iter().any(|u| u.scheme() == "https");
    let inward =
        names_private_address(next) && !previous.first().is_some_and(names_private_address);
    if previous.len() >= 10 {
        Some("more than 10 redirects")
    } else if downgrade {
        Some("refusing a redirect from https:// to plain http://")
    } else if inward {
        Some("refusing a redirect from a public host to a private or local address")
    } else if !is_https_or_loopback(next) {
        Some("refusing a redirect to a non-https URL")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_never_goes_from_https_down_to_http_even_on_loopback() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        let https = [u("https://cdn.example/o.png")];
        assert!(redirect_refusal(&u("http://127.0.0.1:8080/admin"), &https).is_some());
        assert!(redirect_refusal(&u("https://other.example/o.png"), &https).is_none());
        // Nor from a public host inward, whatever the scheme.
        for inward in [
            "https://127.0.0.1/x",
            "https://10.0.0.8/x",
            "https://[::1]/x",
            "https://169.254.169.254/x",
        ] {
            assert!(redirect_refusal(&u(inward), &https).is_some(), "{inward}");
        }
        // A loopback test server may redirect within plain http.
        let local = [u("http://127.0.0.1:9/a")];
        assert!(redirect_refusal(&u("http://127.0.0.1:9/b"), &local).is_none());
        assert!(redirect_refusal(&u("http://example.com/b"), &local).is_some());
        let many: Vec<_> = (0..10).map(|i| u(&format!("https://h/{i}"))).collect();
        assert!(redirect_refusal(&u("https://h/x"), &many).is_some());
    }
}
