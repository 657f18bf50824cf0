//! A small HTTP client for maintenance webhooks and release health checks.
//!
//! hyper over rustls with the system's root certificates, the same stack the
//! S3 client already builds, so no second TLS or HTTP library is compiled.
//! Only the status code matters to callers; bodies are read and dropped.
//! URLs and header values may carry tokens, so messages name the method
//! and host only ([`redact`]): a Slack-style webhook's path *is* its
//! secret.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::db::Secret;

/// One request as configured.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The URL; may hold a token, so it is never logged whole.
    pub url: Secret,
    /// Header names and values; values may hold tokens.
    pub headers: Vec<(String, Secret)>,
    /// The body, if any.
    pub body: Option<String>,
    /// How long one attempt may take.
    pub timeout: Duration,
}

/// A request that could not be made or timed out.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL, method or a header is not valid.
    #[error("{target}: {message}")]
    Invalid {
        /// Method and host.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// Connecting or exchanging failed.
    #[error("{target}")]
    Transport {
        /// Method and host.
        target: String,
        /// The client's error (its chain says why).
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// No answer within the timeout.
    #[error("{target}: no answer within {timeout:?}")]
    Timeout {
        /// Method and host.
        target: String,
        /// The limit.
        timeout: Duration,
    },
}

/// An HTTP/1.1 client for `http://` and `https://` URLs.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpClient {
    /// A client trusting the system's root certificates.
    pub fn new() -> Self {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            // A system store may hold certificates rustls cannot parse;
            // skipping them is what every client does.
            let _ = roots.add(cert);
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the default provider supports the default versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Sends `request` once and returns the status code.
    pub async fn send(&self, request: &Request) -> Result<u16, HttpError> {
        let target = format!("{} {}", request.method, redact(request.url.expose()));
        let invalid = |message: String| HttpError::Invalid {
            target: target.clone(),
            message,
        };
        let method = http::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| invalid(format!("`{}` is not an HTTP method", request.method)))?;
        let mut builder = http::Request::builder()
            .method(method)
            .uri(request.url.expose());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.expose());
        }
        let body = Full::new(Bytes::from(request.body.clone().unwrap_or_default()));
        // The message of a builder error may quote a header value.
        let built = builder
            .body(body)
            .map_err(|_| invalid("the URL or a header is not valid".into()))?;
        let exchange = async {
            let response = self.inner.request(built).await?;
            let status = response.status().as_u16();
            // Read the body so the connection can be reused; its content
            // does not matter.
            let _ = response.into_body().collect().await;
            Ok::<u16, hyper_util::client::legacy::Error>(status)
        };
        match tokio::time::timeout(request.timeout, exchange).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(source)) => Err(HttpError::Transport { target, source }),
            Err(_) => Err(HttpError::Timeout {
                target,
                timeout: request.timeout,
            }),
        }
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

/// `scheme://host[:port]/…`, for messages: no credentials, query or path,
/// any of which may be the secret (`hooks.slack.com/services/T…/B…/<token>`).
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if matches!(u.path(), "" | "/") && u.query().is_none() {
                "/"
            } else {
                "/…"
            };
            format!("{}://{host}{port}{rest}", u.scheme())
        }
        Err(_) => "<invalid URL>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_keep_the_host_only() {
        assert_eq!(
            redact("https://user:pw@hooks.example:8443/maint/on?token=abc"),
            "https://hooks.example:8443/…"
        );
        assert_eq!(
            redact("https://hooks.slack.com/services/T000/B000/hooksecretXYZ"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(redact("http://127.0.0.1:9000"), "http://127.0.0.1:9000/");
        assert_eq!(redact("not a url"), "<invalid URL>");
    }
}
