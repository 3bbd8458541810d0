//! Downloading an attached CSV file.

use std::time::Duration;

use crate::error::FaqError;

/// Largest CSV file an import accepts.
pub const MAX_IMPORT_BYTES: u64 = 4 * 1024 * 1024;

/// Downloads `url` (an attachment on Discord's CDN), refusing bodies over `max_bytes`.
pub async fn download(url: &str, max_bytes: u64) -> Result<Vec<u8>, FaqError> {
    let client = beacon_http::client(&beacon_http::ClientOptions::with_timeout(Duration::from_secs(30)))?;
    let mut response = client.get(url).send().await.map_err(|e| FaqError::Download(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(FaqError::Download(format!("the server answered {}", response.status())));
    }
    let too_big = || FaqError::Download(format!("the file is larger than {} KiB", max_bytes / 1024));
    if response.content_length().is_some_and(|n| n > max_bytes) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| FaqError::Download(e.without_url().to_string()))? {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > max_bytes {
            return Err(too_big());
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves one canned HTTP response on a local port.
    async fn serve_once(response: Vec<u8>) -> String {
        // `main` installs the TLS provider in the binary; the test process does it here.
        beacon_http::install_crypto_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(&response).await;
            let _ = socket.shutdown().await;
        });
        format!("http://{addr}/attachments/1/2/faq.csv")
    }

    fn http(status: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/csv\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    #[tokio::test]
    async fn downloads_a_file() {
        let url = serve_once(http("200 OK", b"question,answer\nq,a\n")).await;
        let body = download(&url, 1024).await.unwrap();
        assert_eq!(body, b"question,answer\nq,a\n");
    }

    #[tokio::test]
    async fn refuses_large_files_and_errors() {
        let url = serve_once(http("200 OK", &[b'x'; 2048])).await;
        let err = download(&url, 1024).await.unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        let url = serve_once(http("404 Not Found", b"")).await;
        let err = download(&url, 1024).await.unwrap_err();
        assert!(err.to_string().contains("404"), "{err}");
    }
}
