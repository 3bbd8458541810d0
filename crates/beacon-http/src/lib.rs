//! The one place Beacon builds outgoing HTTP clients.
//!
//! Every TLS connection of the process (Discord REST and gateway, LLM providers, Notion, Google,
//! the model hub, S3, Discord's CDN) uses rustls with the `ring` provider. The binary installs that
//! provider once, at start, with [`install_crypto_provider`]; libraries never install it. Where no
//! provider is installed (a library used outside the binary), building a client returns
//! [`HttpError::NoCryptoProvider`] instead of panicking inside reqwest or rustls, and
//! [`require_tls`] lets clients that are not built here (twilight's) check first as well.
//!
//! ```no_run
//! # fn demo() -> Result<(), beacon_http::HttpError> {
//! beacon_http::install_crypto_provider(); // once, in `main`
//! let client = beacon_http::client(&beacon_http::ClientOptions::default())?;
//! # let _ = client;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

/// The `User-Agent` of every client built here.
pub const USER_AGENT: &str = concat!("beacon/", env!("CARGO_PKG_VERSION"));

/// Why no HTTP client (or no TLS connection) can be made.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The process has no rustls crypto provider: [`install_crypto_provider`] was not called.
    #[error("no TLS crypto provider is installed (the binary installs ring's at start)")]
    NoCryptoProvider,
    /// The system has no CA certificates, so no server certificate could be verified.
    #[error(
        "no CA certificates were found on this system: install the ca-certificates package or point SSL_CERT_FILE at a bundle"
    )]
    NoCaCertificates,
    /// reqwest refused the configuration (for example no usable root certificates).
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// Installs rustls' `ring` provider as the process default. The binary calls this once before
/// anything connects; test harnesses may call it too. A second call changes nothing.
pub fn install_crypto_provider() {
    // `Err` only means a provider is installed already, which is the state wanted.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Checks that TLS connections can be made: a crypto provider is installed and, where the system
/// store is read from files (Linux and other Unix), it holds CA certificates. For clients built
/// elsewhere that would panic instead of failing (twilight's).
pub fn require_tls() -> Result<(), HttpError> {
    require_crypto_provider()?;
    #[cfg(all(unix, not(target_os = "android"), not(target_vendor = "apple")))]
    if rustls_native_certs::load_native_certs().certs.is_empty() {
        return Err(HttpError::NoCaCertificates);
    }
    Ok(())
}

/// Checks that a rustls crypto provider is installed (reqwest and rustls panic without one).
pub fn require_crypto_provider() -> Result<(), HttpError> {
    match rustls::crypto::CryptoProvider::get_default() {
        Some(_) => Ok(()),
        None => Err(HttpError::NoCryptoProvider),
    }
}

/// How a client connects and how long it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Longest wait for a connection (TCP and TLS handshake).
    pub connect_timeout: Duration,
    /// Longest whole request, body included; `None` for streams that run as long as they send.
    pub timeout: Option<Duration>,
    /// Longest wait between two reads of a response.
    pub read_timeout: Option<Duration>,
    /// Whether redirects are followed (up to reqwest's limit of 10).
    pub follow_redirects: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(10),
            timeout: None,
            read_timeout: None,
            follow_redirects: true,
        }
    }
}

impl ClientOptions {
    /// The defaults with a limit on the whole request.
    pub fn with_timeout(timeout: Duration) -> Self {
        ClientOptions { timeout: Some(timeout), ..ClientOptions::default() }
    }
}

/// A reqwest client with Beacon's user agent, `options` and rustls over the installed provider,
/// verifying servers against the system's CA certificates.
pub fn client(options: &ClientOptions) -> Result<reqwest::Client, HttpError> {
    builder(options)?.build().map_err(HttpError::Build)
}

/// The builder [`client`] builds, for a caller that adds its own policy (a redirect rule, a DNS
/// resolver) before building.
pub fn builder(options: &ClientOptions) -> Result<reqwest::ClientBuilder, HttpError> {
    require_crypto_provider()?;
    let mut builder = reqwest::Client::builder().user_agent(USER_AGENT).connect_timeout(options.connect_timeout);
    if let Some(timeout) = options.timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(read) = options.read_timeout {
        builder = builder.read_timeout(read);
    }
    if !options.follow_redirects {
        builder = builder.redirect(reqwest::redirect::Policy::none());
    }
    Ok(builder)
}

/// How much of an error answer is read for its message, in bytes (a service's error is a short
/// JSON or text; anything past this is not read).
pub const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A response body could not be read within its limit.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is larger than the caller accepts (announced by `Content-Length` or counted while
    /// reading); nothing past the limit was kept.
    #[error("the response body is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The connection failed while the body was read.
    #[error("reading the response body: {0}")]
    Read(#[source] reqwest::Error),
}

/// Reads `response`'s body, refusing one larger than `limit` bytes: a service (an LLM provider,
/// the agent service, Notion, Google) decides how much it sends, so every body Beacon reads from
/// one is bounded in bytes as well as in time.
pub async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| BodyError::Read(e.without_url()))? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// [`read_body`] as text (invalid UTF-8 replaced, as `reqwest::Response::text` does).
pub async fn read_text(response: reqwest::Response, limit: usize) -> Result<String, BodyError> {
    let body = read_body(response, limit).await?;
    Ok(String::from_utf8(body).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_need_the_provider_and_then_build() {
        // The provider is process-wide and tests share the process: check the order in one test.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            assert!(matches!(client(&ClientOptions::default()), Err(HttpError::NoCryptoProvider)));
            assert!(matches!(require_tls(), Err(HttpError::NoCryptoProvider)));
        }
        install_crypto_provider();
        install_crypto_provider();
        let options = ClientOptions { follow_redirects: false, ..ClientOptions::with_timeout(Duration::from_secs(5)) };
        match require_tls() {
            Ok(()) => assert!(client(&options).is_ok()),
            Err(e) => assert!(matches!(e, HttpError::NoCaCertificates), "{e}"),
        }
    }
}

#[cfg(test)]
mod body_tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-connection HTTP/1.1 server answering `head` then `body`.
    async fn serve(head: String, body: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
        });
        format!("http://{addr}/")
    }

    async fn get(url: &str) -> reqwest::Response {
        install_crypto_provider();
        client(&ClientOptions::default()).expect("client").get(url).send().await.expect("response")
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let url =
            serve("HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n".into(), b"hello".to_vec()).await;
        assert_eq!(read_text(get(&url).await, 5).await.expect("body"), "hello");
    }

    #[tokio::test]
    async fn an_announced_length_past_the_limit_is_refused_unread() {
        let url = serve("HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n".into(), Vec::new()).await;
        assert!(matches!(read_body(get(&url).await, 1000).await, Err(BodyError::TooLarge { limit: 1000 })));
    }

    #[tokio::test]
    async fn a_body_without_a_length_is_cut_off_at_the_limit() {
        // Chunked, no Content-Length: counted while read.
        let chunk = format!("{:x}\r\n{}\r\n", 600, "x".repeat(600));
        let body = format!("{chunk}{chunk}0\r\n\r\n").into_bytes();
        let url =
            serve("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".into(), body).await;
        assert!(matches!(read_body(get(&url).await, 1000).await, Err(BodyError::TooLarge { limit: 1000 })));
    }
}
