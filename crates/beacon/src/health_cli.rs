//! `beacon health`: the container health check. It asks the running process on
//! `BEACON_HTTP_ADDR` for `/health/ready` (the database, Redis and the gateway answer, no
//! shutdown under way), so an image needs no curl.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use beacon_config::Config;

/// How long the probe waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where to reach this install's HTTP server from the same host: a wildcard bind address is
/// probed on loopback.
pub fn probe_addr(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bound.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), bound.port()),
        _ => bound,
    }
}

/// Exit 0 when `/health/ready` answers 200; otherwise an error naming what failed.
pub async fn health(config: Arc<Config>) -> anyhow::Result<()> {
    let url = format!("http://{}/health/ready", probe_addr(config.http_addr));
    let client = beacon_http::client(&beacon_http::ClientOptions::with_timeout(PROBE_TIMEOUT))
        .context("building the probe's HTTP client")?;
    let response = client.get(&url).send().await.with_context(|| format!("{url} did not answer"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{url} answered {status}: {body}");
    }
    println!("ready");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_probed_on_loopback() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(probe_addr(any), "127.0.0.1:8080".parse().unwrap_or_else(|e| panic!("{e}")));
        let any6: SocketAddr = "[::]:9000".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(probe_addr(any6), "[::1]:9000".parse().unwrap_or_else(|e| panic!("{e}")));
        let fixed: SocketAddr = "10.0.0.5:8080".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(probe_addr(fixed), fixed);
    }
}
