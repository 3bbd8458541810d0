//! The `website` source: the pages of one site, from a start page (following the site's own
//! links) or a `sitemap.xml`. Only the start address's site (scheme, host and port) is read;
//! robots.txt is obeyed; requests are paced and capped per sync; a page that is gone (404/410)
//! or no longer linked drops out of the knowledge base on the next sync, and any other failure
//! fails the sync (so nothing is deleted because the site was down).
//!
//! Addresses are http(s) only. Unless the operator allows it ([`CrawlOptions::allow_private`],
//! `BEACON_KB_CRAWL_ALLOW_PRIVATE`), hosts resolving to loopback, private, link-local or other
//! non-public addresses are refused — at connection time, so a redirect or a DNS change cannot
//! reach them either.

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::error::{KbError, Result};
use crate::robots::Robots;
use crate::source::{BoxFuture, BuildContext, Source, SourceDocument, SourceInput, SourceKind, config_as};

/// How the website source crawls (the deployment's settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrawlOptions {
    /// Wait between two requests to the site (a longer robots.txt `Crawl-delay`, up to a minute,
    /// wins).
    pub delay: Duration,
    /// Most pages read per sync.
    pub max_pages: usize,
    /// Whether hosts on private, loopback or link-local addresses may be crawled.
    pub allow_private: bool,
    /// Largest page read, in bytes (larger ones are skipped).
    pub max_page_bytes: usize,
}

impl Default for CrawlOptions {
    /// One second between requests, 200 pages, public addresses only, 2 MB pages.
    fn default() -> Self {
        CrawlOptions { delay: Duration::from_secs(1), max_pages: 200, allow_private: false, max_page_bytes: 2 << 20 }
    }
}

/// Stored config of a `website` source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebsiteConfig {
    /// The start page, or the site's sitemap (`…​.xml`).
    pub url: String,
}

/// The website kind, with the deployment's crawl options.
pub struct WebsiteKind {
    options: CrawlOptions,
}

impl WebsiteKind {
    /// The kind crawling with `options`.
    pub fn new(options: CrawlOptions) -> Self {
        WebsiteKind { options }
    }
}

fn refused(message: impl Into<String>) -> KbError {
    KbError::Rejected(message.into())
}

/// Parses and checks a start address: http(s), a host, no credentials; an IP address in it must be
/// public unless `allow_private`.
pub fn check_start_url(text: &str, allow_private: bool) -> Result<Url> {
    let mut url = Url::parse(text.trim()).map_err(|e| refused(format!("`url`: {text} is not a web address ({e}).")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused(format!("`url`: only http:// and https:// addresses can be read, not {}.", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refused("`url`: the address has no host."));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused("`url`: addresses with a user name or password are not read."));
    }
    if !allow_private
        && let Some(ip) = literal_ip(&url)
        && !is_public(ip)
    {
        return Err(refused(format!("`url`: {ip} is not a public address; this deployment reads public sites only.")));
    }
    url.set_fragment(None);
    Ok(url)
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    url.host_str()?.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// Whether `ip` is an ordinary public address (not loopback, private, link-local, shared,
/// unspecified, multicast, documentation or an IPv4-mapped one of those).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// Resolves names like the system does, keeping public addresses only.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} has no public address; this deployment reads public sites only").into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether `url` is on the same site as `base`: same scheme, host and port.
fn same_site(base: &Url, url: &Url) -> bool {
    base.scheme() == url.scheme()
        && base.host_str() == url.host_str()
        && base.port_or_known_default() == url.port_or_known_default()
}

impl SourceKind for WebsiteKind {
    fn name(&self) -> &'static str {
        "website"
    }

    fn guild_may_add(&self) -> bool {
        true
    }

    fn parse(&self, input: &SourceInput) -> Result<serde_json::Value> {
        let text = crate::source::required_field(input, "url")?;
        let url = check_start_url(text, self.options.allow_private)?;
        serde_json::to_value(WebsiteConfig { url: url.to_string() })
            .map_err(|source| KbError::Json { what: "website source config".into(), source })
    }

    fn build(&self, name: &str, config: &serde_json::Value, _: &BuildContext<'_>) -> Result<Box<dyn Source>> {
        let c: WebsiteConfig = config_as(self.name(), config)?;
        let start = check_start_url(&c.url, self.options.allow_private)?;
        let base = start.clone();
        let mut builder = beacon_http::builder(&beacon_http::ClientOptions::with_timeout(Duration::from_secs(30)))?
            .no_proxy()
            // Redirects stay on the site (at most 5).
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 || !same_site(&base, attempt.url()) {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }));
        if !self.options.allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let client = builder.build().map_err(|e| KbError::Http(beacon_http::HttpError::Build(e)))?;
        Ok(Box::new(WebsiteSource { id: name.to_owned(), start, options: self.options, client }))
    }
}

/// One site's pages.
struct WebsiteSource {
    id: String,
    start: Url,
    options: CrawlOptions,
    client: reqwest::Client,
}

/// What one request brought back.
enum Fetched {
    /// A page (or sitemap) body with its content type.
    Body(String, String),
    /// Not there (404/410), not text, too big, or redirected off the site: nothing to read.
    Skip,
}

impl WebsiteSource {
    fn err(&self, message: String) -> KbError {
        KbError::Source { source_name: self.id.clone(), message }
    }

    async fn fetch(&self, url: &Url) -> Result<Fetched> {
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|source| KbError::Request { what: format!("reading {url}"), source })?;
        let status = response.status();
        if status.is_redirection() || matches!(status.as_u16(), 404 | 410) {
            return Ok(Fetched::Skip);
        }
        if !status.is_success() {
            return Err(self.err(format!("{url} answered {status}")));
        }
        if !same_site(&self.start, response.url()) {
            return Ok(Fetched::Skip);
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if response.content_length().is_some_and(|n| n > self.options.max_page_bytes as u64) {
            return Ok(Fetched::Skip);
        }
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|source| KbError::Request { what: format!("reading {url}"), source })?
        {
            body.extend_from_slice(&chunk);
            if body.len() > self.options.max_page_bytes {
                return Ok(Fetched::Skip);
            }
        }
        Ok(Fetched::Body(content_type, String::from_utf8_lossy(&body).into_owned()))
    }

    async fn crawl(&self) -> Result<Vec<SourceDocument>> {
        let origin = self.start.join("/robots.txt").map_err(|e| self.err(e.to_string()))?;
        let robots = match self.fetch(&origin).await? {
            Fetched::Body(_, text) => Robots::parse(&text, beacon_http::USER_AGENT),
            Fetched::Skip => Robots::allow_all(),
        };
        let delay = match robots.crawl_delay {
            Some(d) => self.options.delay.max(Duration::from_secs_f64(d.min(60.0))),
            None => self.options.delay,
        };
        let allowed = |url: &Url| {
            let path = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_owned(),
            };
            robots.allowed(&path)
        };
        let sitemap = self.start.path().to_ascii_lowercase().ends_with(".xml");
        let mut queue: VecDeque<Url> = VecDeque::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        if sitemap {
            tokio::time::sleep(delay).await;
            for url in self.sitemap_pages(&self.start, delay).await? {
                if seen.insert(url.to_string()) {
                    queue.push_back(url);
                }
            }
        } else {
            seen.insert(self.start.to_string());
            queue.push_back(self.start.clone());
        }
        let mut docs = Vec::new();
        let mut fetched = 0;
        while let Some(url) = queue.pop_front() {
            if fetched >= self.options.max_pages {
                break;
            }
            // The start page must be there: a site that is down or moved keeps what was read.
            let is_start = !sitemap && fetched == 0;
            if !allowed(&url) {
                if is_start {
                    return Err(self.err(format!("robots.txt does not let Beacon read {url}")));
                }
                continue;
            }
            tokio::time::sleep(delay).await;
            fetched += 1;
            let Fetched::Body(content_type, body) = self.fetch(&url).await? else {
                if is_start {
                    return Err(self.err(format!("the start page {url} could not be read")));
                }
                continue;
            };
            let html = content_type.contains("html");
            if !html && !content_type.starts_with("text/plain") {
                continue;
            }
            let (title, text, links) = if html {
                let page = crate::html::html_to_text(&body);
                (page.title, page.text, page.links)
            } else {
                (None, body, Vec::new())
            };
            if !sitemap {
                for link in links {
                    let Ok(mut next) = url.join(&link) else { continue };
                    next.set_fragment(None);
                    if same_site(&self.start, &next) && seen.insert(next.to_string()) {
                        queue.push_back(next);
                    }
                }
            }
            if text.trim().is_empty() {
                continue;
            }
            let key = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_owned(),
            };
            let title = title.or_else(|| crate::source::first_h1(&text)).unwrap_or_else(|| key.clone());
            docs.push(SourceDocument { key, title, text, url: Some(url.to_string()) });
        }
        Ok(docs)
    }

    /// The same-site page addresses a sitemap lists (a sitemap index's sitemaps read in turn,
    /// one level deep).
    async fn sitemap_pages(&self, sitemap: &Url, delay: Duration) -> Result<Vec<Url>> {
        let Fetched::Body(_, xml) = self.fetch(sitemap).await? else {
            return Err(self.err(format!("the sitemap {sitemap} could not be read")));
        };
        let locs = |xml: &str| -> Vec<Url> {
            xml_locs(xml)
                .into_iter()
                .filter_map(|l| Url::parse(&l).ok())
                .filter(|u| same_site(&self.start, u))
                .collect()
        };
        if !xml.contains("<sitemapindex") {
            return Ok(locs(&xml));
        }
        let mut pages = Vec::new();
        for child in locs(&xml) {
            tokio::time::sleep(delay).await;
            if let Fetched::Body(_, inner) = self.fetch(&child).await? {
                pages.extend(locs(&inner));
            }
        }
        Ok(pages)
    }
}

/// The `<loc>` values of a sitemap, entities decoded.
fn xml_locs(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<loc>") {
        rest = &rest[start + 5..];
        let Some(end) = rest.find("</loc>") else { break };
        let loc = rest[..end].trim();
        let loc = loc.strip_prefix("<![CDATA[").and_then(|l| l.strip_suffix("]]>")).unwrap_or(loc);
        out.push(crate::html::decode_entities(loc.trim()));
        rest = &rest[end..];
    }
    out
}

impl Source for WebsiteSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn documents(&self) -> BoxFuture<'_, Result<Vec<SourceDocument>>> {
        Box::pin(self.crawl())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_addresses_are_web_addresses_of_public_hosts() {
        assert!(check_start_url("https://docs.example.com/start#top", false).is_ok_and(|u| u.fragment().is_none()));
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "not a url",
            "http://user:pw@example.com/",
            "http://127.0.0.1:8080/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[::ffff:192.168.0.1]/",
            "http://100.64.0.1/",
        ] {
            assert!(matches!(check_start_url(bad, false), Err(KbError::Rejected(_))), "{bad} was accepted");
        }
        assert!(check_start_url("http://127.0.0.1:8080/", true).is_ok(), "the operator may allow private hosts");
        assert!(is_public("93.184.216.34".parse().unwrap()) && is_public("2606:4700::1111".parse().unwrap()));
        assert!(!is_public("fd00::1".parse().unwrap()) && !is_public("fe80::1".parse().unwrap()));
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = PublicOnly.resolve(name).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("no public address"), "{err}");
    }

    #[test]
    fn sitemaps_list_their_locations() {
        let xml = "<?xml version=\"1.0\"?><urlset><url><loc> https://a.example/x?a=1&amp;b=2 </loc></url>\
                   <url><loc><![CDATA[https://a.example/y]]></loc></url></urlset>";
        assert_eq!(xml_locs(xml), vec!["https://a.example/x?a=1&b=2".to_owned(), "https://a.example/y".to_owned()]);
        let base = Url::parse("https://a.example/").unwrap();
        assert!(same_site(&base, &Url::parse("https://a.example:443/z").unwrap()));
        assert!(!same_site(&base, &Url::parse("http://a.example/z").unwrap()));
        assert!(!same_site(&base, &Url::parse("https://b.a.example/z").unwrap()));
    }
}
